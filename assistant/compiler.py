"""An `Interpretation` -> one SPARQL query, with the question's values bound, never pasted.

Values that come from the question (a tag, a word to look for, a date) are variables of the query,
bound by a VALUES clause in the group that uses them, each value an RDF term serialised by
pyoxigraph (quotes and escapes are its business): no text a user types can change the query's shape.
Concept, class, property and asset IRIs come from the vocabulary and the search index, never from the
question's text. The query as run is the query shown: it can be read, copied and run again at /sparql.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pyoxigraph as ox

from .lexicon import AI4KG, XSD
from .parser import Condition, Interpretation, Text
from .schema import PREFIXES, _curie

TEXT_FIELDS = ("title", "tag", "summary", "description")
MODULE = AI4KG + "Module"
RANKED = 20
"""Rows a superlative's query returns, best first; the answer is those with the best value."""


@dataclass
class Query:
    sparql: str
    bindings: dict[str, ox.Literal] = field(default_factory=dict)
    """The question's values, by the variable that holds them."""
    columns: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self, implied: frozenset[str]) -> None:
        self.implied = implied
        self.bindings: dict[str, ox.Literal] = {}
        self.counter = 0
        self._unplaced: list[str] = []

    def bind(self, value: ox.Literal, stem: str) -> str:
        """A variable for `value`; its VALUES clause goes with the next `values()`."""
        self.counter += 1
        name = f"{stem}{self.counter}"
        self.bindings[name] = value
        self._unplaced.append(f"VALUES ?{name} {{ {value} }}")
        return f"?{name}"

    def values(self) -> str:
        placed, self._unplaced = self._unplaced, []
        return " ".join(placed) + (" " if placed else "")

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"?{stem}{self.counter}"

    def path(self, properties: tuple[str, ...]) -> str:
        return "/".join(_curie(p) for p in properties)

    def condition(self, subject: str, condition: Condition) -> str:
        """One condition: a triple pattern the asset must match (Oxigraph answers it from an index),
        or, negated or a search of the asset's text, a FILTER [NOT] EXISTS."""
        value = condition.value
        if isinstance(value, Text) and not condition.path:  # a word of the asset's text
            field_var, text_var = self.fresh("field"), self.fresh("text")
            word = self.bind(ox.Literal(value.text.lower()), "word")
            fields = " ".join(f"ai4kg:{f}" for f in TEXT_FIELDS)
            pattern = (f"{self.values()}VALUES {field_var} {{ {fields} }} {subject} {field_var} {text_var} . "
                       f"FILTER(CONTAINS(LCASE(STR({text_var})), {word}))")
            return f"FILTER {'NOT ' if condition.negated else ''}EXISTS {{ {pattern} }}"
        if isinstance(value, Text) and value.how == "exact":  # a value the catalogue holds as it is
            found = self.bind(ox.Literal(value.text), "value")
            pattern = f"{self.values()}{subject} {self.path(condition.path)} {found} ."
        elif isinstance(value, Text):
            found = self.fresh("value")
            text = self.bind(ox.Literal(value.text.lower()), "text")
            test = {"equals": f"LCASE(STR({found})) = {text}", "contains": f"CONTAINS(LCASE(STR({found})), {text})",
                    "startswith": f"STRSTARTS(LCASE(STR({found})), {text})"}[value.how]
            pattern = f"{self.values()}{subject} {self.path(condition.path)} {found} . FILTER({test})"
        elif isinstance(value, str):
            pattern = f"{subject} {self.path(condition.path)} <{ox.NamedNode(value).value}> ."
        else:
            pattern = f"{subject} {self.path(condition.path)} {self.fresh('any')} ."
        if condition.negated:
            return f"FILTER NOT EXISTS {{ {pattern} }}"
        return pattern

    def where(self, subject: str, interpretation: Interpretation, *extra: str) -> list[str]:
        """The patterns of the asset `subject` (and `extra` ones about it). A module's facts all lie in
        its own graph, named by its IRI: matched there (GRAPH), they are joined inside one graph,
        not over the union of all (about 30 % faster on 10,000 modules)."""
        lines = self._where(subject, interpretation, bool(extra)) + list(extra)
        if interpretation.cls != MODULE:
            return lines
        return [f"GRAPH {subject} {{", *("  " + line for line in lines), "}"]

    def _where(self, subject: str, interpretation: Interpretation, with_attribute: bool) -> list[str]:
        # the conditions that name a value first: the most selective patterns lead the join
        ordered = sorted(interpretation.conditions, key=lambda c: (c.negated, not isinstance(c.value, str)))
        lines = [self.condition(subject, c) for c in ordered if not c.negated]
        lines.append(self._type(subject, interpretation, with_attribute))
        if interpretation.entities and interpretation.form in ("lookup", "compare", "ask"):
            iris = " ".join(f"<{iri}>" for e in interpretation.entities for iri in e.iris)
            lines.insert(0, f"VALUES {subject} {{ {iris} }}")
        lines += [self.condition(subject, c) for c in ordered if c.negated]
        for span in interpretation.dates:
            date = self.fresh("date")
            lines.append(f"{subject} {self.path(span.path)} {date} .")
            if span.start:
                lines.append(f"FILTER({date} >= {self.bind(_date(span.start), 'from')})")
            if span.end:
                lines.append(f"FILTER({date} < {self.bind(_date(span.end), 'until')})")
            lines.insert(0, self.values().strip())
        return [line for line in lines if line]

    def _type(self, subject: str, interpretation: Interpretation, with_attribute: bool) -> str:
        """The subject's type, or, where a property only that class's instances have is matched,
        a comment saying so: the type's join was most of such a query's time."""
        matched = [c.path[0] for c in interpretation.conditions if c.path and not c.negated]
        matched += [span.path[0] for span in interpretation.dates if span.path]
        if with_attribute and interpretation.attribute:
            matched.append(interpretation.attribute[0])
        implying = next((p for p in matched if p in self.implied), None)
        cls = _curie(interpretation.cls)
        if implying is None:
            return f"{subject} a {cls} ."
        return f"# {subject} a {cls}: implied, as only instances of {cls} have {_curie(implying)}"


def _date(day: dt.date) -> ox.Literal:
    return ox.Literal(day.isoformat(), datatype=ox.NamedNode(XSD + "date"))


def compile_query(interpretation: Interpretation, implied: frozenset[str] = frozenset()) -> Query:
    """The query of `interpretation`; `implied` are the properties only instances of its class have
    (`Schema.implied`), whose match makes matching the class itself unneeded."""
    b = _Builder(implied)
    form = interpretation.form
    attribute = b.path(interpretation.attribute) if interpretation.attribute else ""
    valued = (f"?asset {attribute} ?value .",) if attribute else ()
    body = [] if form in ("superlative", "compare", "threshold") else b.where(
        "?asset", interpretation, *(valued if form in ("count-values", "group", "lookup") else ()))
    if form == "list":
        # no titles and no order here: on 10,000 modules the OPTIONAL and the sort took 3x the query;
        # the answer takes titles from the search index and sorts by them
        sparql = _select("?asset", body, distinct=True)
        columns = ["asset"]
    elif form == "ask":
        sparql = "ASK {\n  " + "\n  ".join(body) + "\n}"
        columns = []
    elif form == "count":
        sparql = _select("(COUNT(DISTINCT ?asset) AS ?count)", body)
        columns = ["count"]
    elif form == "count-values":
        sparql = _select("(COUNT(DISTINCT ?value) AS ?count)", body)
        columns = ["count"]
    elif form == "group":
        sparql = _select("?value (COUNT(DISTINCT ?asset) AS ?count)", body,
                         tail="GROUP BY ?value\nORDER BY DESC(?count) ?value")
        columns = ["value", "count"]
    elif form == "lookup":
        sparql = _select("?value", body, distinct=True, tail="ORDER BY ?value")
        columns = ["value"]
    elif form in ("superlative", "compare"):
        best = "MAX" if interpretation.order == "max" else "MIN"
        if interpretation.rank_by_count:
            ranked = _select("?asset (COUNT(DISTINCT ?value) AS ?rank)",
                             b.where("?asset", interpretation, f"?asset {attribute} ?value ."), tail="GROUP BY ?asset")
            others = _select("?other (COUNT(DISTINCT ?otherValue) AS ?otherRank)",
                             b.where("?other", interpretation, f"?other {attribute} ?otherValue ."), tail="GROUP BY ?other")
            bound = _select(f"({best}(?otherRank) AS ?best)", ["{ " + _indent(others) + " }"])
            sparql = _select("?asset ?title ?rank", ["{ " + _indent(ranked) + " }", "{ " + _indent(bound) + " }",
                                                     "FILTER(?rank = ?best)", "OPTIONAL { ?asset ai4kg:title ?title }"],
                             distinct=True, tail="ORDER BY ?asset")
        else:
            # ranked, the first RANKED rows: one pass over the assets where a MAX subquery and a join
            # on it made two (56 vs 93 ms on 10,000 modules); the answer is the rows of the first rank
            order = "DESC(?rank)" if interpretation.order == "max" else "?rank"
            sparql = _select("?asset ?rank", b.where("?asset", interpretation, f"?asset {attribute} ?rank ."),
                             distinct=True, tail=f"ORDER BY {order} ?asset\nLIMIT {RANKED}")
        columns = ["asset", "title", "rank"] if interpretation.rank_by_count else ["asset", "rank"]
    elif form == "threshold":
        # "more than 5 tags": the count of values per asset; "over 8000 MB": the value itself
        figure = f'"{int(interpretation.figure)}"^^xsd:integer'
        if interpretation.rank_by_count:
            sparql = _select("?asset (COUNT(DISTINCT ?value) AS ?rank)",
                             b.where("?asset", interpretation, f"?asset {attribute} ?value ."),
                             tail=f"GROUP BY ?asset\nHAVING (COUNT(DISTINCT ?value) {interpretation.order} {figure})")
        else:
            sparql = _select("?asset ?rank", b.where("?asset", interpretation, f"?asset {attribute} ?rank .",
                                                     f"FILTER(?rank {interpretation.order} {figure})"), distinct=True)
        columns = ["asset", "rank"]
    elif form == "path":
        iris = " ".join(f"<{iri}>" for e in interpretation.entities for iri in e.iris)
        lines = [f"VALUES ?asset {{ {iris} }}"]
        last = "?asset"
        for step in interpretation.steps:
            source, target = f"?{step.source}", f"?{step.target}"
            lines.append(f"{target} {_curie(step.property)} {source} ." if step.inverse
                         else f"{source} {_curie(step.property)} {target} .")
            if step.cls:
                lines.append(f"{target} a {_curie(step.cls)} .")
            last = target
        if interpretation.answer_label:
            lines.append(f"{last} rdfs:label ?answer .")
        elif interpretation.attribute:
            lines.append(f"{last} {attribute} ?answer .")
        else:
            lines.append(f"BIND({last} AS ?answer)")
        sparql = _select("?answer", lines, distinct=True, tail="ORDER BY ?answer")
        columns = ["answer"]
    else:  # pragma: no cover - the parser makes no other form
        raise ValueError(f"no query for the form {form!r}")
    return Query(_prefixes(sparql) + sparql, b.bindings, columns)


def _select(projection: str, lines: list[str], distinct: bool = False, tail: str = "") -> str:
    text = f"SELECT {'DISTINCT ' if distinct else ''}{projection} WHERE {{\n  " + "\n  ".join(lines) + "\n}"
    return text + ("\n" + tail if tail else "")


def _indent(text: str) -> str:
    return text.replace("\n", "\n    ")


def _prefixes(sparql: str) -> str:
    used = [p for p in PREFIXES if f"{p}:" in sparql]
    return "".join(f"PREFIX {p}: <{PREFIXES[p]}>\n" for p in used)


__all__ = ["Query", "compile_query"]
