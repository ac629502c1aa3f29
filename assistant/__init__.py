"""The assistant: a question in English -> the SPARQL that answers it, run with the reader's rights.

`ask()` is the one entry (the CLI, REST, Server-Sent Events and GraphQL all call it):
1. the question is read (length and characters, metadata/text rules);
2. a generator writes a query: a configured OpenAI-compatible model (assistant/model.py), or the
   embedded parser (assistant/parser.py + compiler.py), which is also the model's fallback;
3. the query passes the checks (assistant/checks.py), whoever wrote it;
4. it runs over the graphs the reader may see, with the question's values bound, a deadline and a row
   limit; it never writes;
5. the rows become a short answer in words, beside the rows, the SPARQL and the interpretation.
A question the graph cannot answer is refused ("the catalogue does not hold that"), and a name that
fits several assets is answered with the candidates.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any, Callable

import pyoxigraph as ox
import yaml

from ..graph.search import Readers
from ..graph.store import KnowledgeGraph
from .checks import QueryRefused, check_query
from .compiler import RANKED, Query, compile_query
from .lexicon import names, plural, vocabulary
from .parser import Ambiguity, Interpretation, Refusal, parse
from .schema import schema
from ..threads import once

log = logging.getLogger("ai4kg.assistant")

MAX_QUESTION_CHARACTERS = 500
SHOWN = 20
"""Assets an answer names in its text; its values and rows hold all of them."""
NOT_HELD = "The catalogue does not hold that"


class QuestionRejected(ValueError):
    """A question that is not one: empty, too long, or with control characters."""


@dataclass
class Answer:
    question: str
    status: str
    """answered, refused or ambiguous."""
    text: str
    sparql: str | None = None
    """The query as it ran: run it again at /sparql."""
    interpretation: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, dict[str, str]]] = field(default_factory=list)
    """SPARQL JSON results bindings: {column: {"type": "uri"|"literal", "value": ..., "datatype"?}}."""
    values: list[Any] | int | bool | None = None
    """The answer itself: the assets, values or (key, count) pairs; a number; yes or no."""
    candidates: list[dict[str, Any]] = field(default_factory=list)
    ambiguous: str | None = None
    """The question's words that fit the candidates (an ambiguous answer only)."""
    reason: str | None = None
    generator: str = "embedded"
    seconds: float = 0.0
    model_seconds: float = 0.0
    """Of `seconds`, the time spent waiting for a language model (the model path only)."""
    query_seconds: float = 0.0
    """Of `seconds`, the time the answering query ran."""
    cut: str | None = None
    """Why the rows stop early (the result limit, the timeout); None when they are all there."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_question(question: str) -> str:
    text = " ".join(question.split())
    if not text:
        raise QuestionRejected("question: must not be empty")
    if len(text) > MAX_QUESTION_CHARACTERS:
        raise QuestionRejected(f"question: at most {MAX_QUESTION_CHARACTERS} characters (it has {len(text)})")
    bad = next((c for c in question if ord(c) < 32 and c not in "\t\n\r" or ord(c) == 127), None)
    if bad is not None:
        raise QuestionRejected(f"question: control character U+{ord(bad):04X} is not allowed")
    return text


def ask(graph: KnowledgeGraph, question: str, readers: Readers = None, *, today: dt.date | None = None,
        timeout: float | None = None, on_token: Callable[[str], None] | None = None) -> Answer:
    """Answer `question` from what `readers` may see (None: everything, the platform itself).
    With a model configured (Settings.assistant_url), the model writes the query and `on_token`
    hears its reply as it streams; without one, or when it fails, the embedded parser answers."""
    started = time.perf_counter()
    text = check_question(question)
    timeout = timeout or graph.settings.sparql_timeout
    if graph.settings.assistant_url:
        answer = _from_model(graph, text, readers, timeout, on_token)
        if answer is not None:
            answer.seconds = time.perf_counter() - started
            return answer
    vocab = vocabulary()
    shape = schema(graph)
    parsed = parse(text, vocab, names(graph, readers), shape, today)
    if isinstance(parsed, Refusal):
        answer = Answer(text, "refused", f"{NOT_HELD}: {parsed.reason}.", reason=parsed.reason)
    elif isinstance(parsed, Ambiguity):
        candidates = [{"title": c.title, "iris": list(c.iris), "kind": c.kind} for c in parsed.candidates]
        answer = Answer(text, "ambiguous", f"'{parsed.words}' fits {len(candidates)} assets: "
                        + "; ".join(c["title"] + " (" + ", ".join(c["iris"]) + ")" for c in candidates)
                        + ". Which one do you mean?", candidates=candidates, ambiguous=parsed.words)
    else:
        query = compile_query(parsed, shape.implied(parsed.cls))
        check_query(query.sparql, vocab)  # the parser's own queries pass the same checks as a model's
        answer = _answered(graph, text, parsed, query, readers, timeout)
    answer.seconds = time.perf_counter() - started
    return answer


def _from_model(graph: KnowledgeGraph, question: str, readers: Readers, timeout: float,
                on_token: Callable[[str], None] | None) -> Answer | None:
    """The configured model's query, checked and run; None (the embedded parser answers) when the
    model is unreachable, too slow, or writes no query that passes the checks after one repair."""
    from .model import ModelContext, ModelSettings, ModelUnavailable, propose

    settings = graph.settings
    vocab = vocabulary()

    def check(sparql: str) -> str | None:
        try:
            check_query(sparql, vocab)
        except QueryRefused as exc:
            return str(exc)
        return None

    context = ModelContext(schema(graph).summary(vocab), closest_examples(question), check)
    model = ModelSettings(settings.assistant_url, settings.assistant_model or "", settings.assistant_key,
                          settings.assistant_timeout)
    try:
        proposal = propose(question, context, model, stream=on_token is not None, on_token=on_token)
    except ModelUnavailable as exc:
        log.warning("assistant model unavailable, the embedded parser answers: %s", exc)
        return None
    if proposal is None:
        return None
    check_query(proposal.sparql, vocab)  # checked again here: whatever `propose` did, this is what runs
    started = time.perf_counter()
    try:
        rows, boolean = run(graph, Query(proposal.sparql), readers, timeout)
    except (SyntaxError, ValueError, OSError) as exc:  # a query rdflib takes and Oxigraph does not
        log.warning("the model's query failed in the store, the embedded parser answers: %s", exc)
        return None
    answer = Answer(question, "answered", "", sparql=proposal.sparql, generator="model",
                    interpretation=f"written by the model {settings.assistant_model}",
                    model_seconds=proposal.model_seconds, query_seconds=time.perf_counter() - started)
    answer.rows, answer.columns = _json_rows(rows), list(rows[0]) if rows else []
    if boolean is not None:
        answer.values, answer.text = boolean, "Yes." if boolean else "No."
    else:
        first = answer.columns[0] if answer.columns else None
        answer.values = list(dict.fromkeys(_value(r[first]) for r in rows if first and r.get(first) is not None))
        answer.text = "; ".join(_label(r[first]) for r in rows[:20] if first and r.get(first) is not None) + "." \
            if answer.values else "None matches."
    _say_if_cut(answer, rows)
    return answer


@once
def _examples() -> list[tuple[str, str]]:
    data = yaml.safe_load(resources.files("ai4kg").joinpath("assistant/examples.yaml").read_text("utf-8"))
    return [(entry["question"], entry["sparql"]) for entry in data]


def closest_examples(question: str, count: int = 4) -> list[tuple[str, str]]:
    """The example pairs whose questions share most words with `question` (SPARQL-LLM's few-shot choice)."""
    from rapidfuzz import fuzz, process

    examples = _examples()
    found = process.extract(question, [q for q, _ in examples], scorer=fuzz.token_set_ratio, limit=count)
    return [examples[index] for _, _, index in found]


def _answered(graph: KnowledgeGraph, question: str, parsed: Interpretation, query: Query, readers: Readers,
              timeout: float) -> Answer:
    started = time.perf_counter()
    rows, boolean = run(graph, query, readers, timeout)
    answer = Answer(question, "answered", "", sparql=query.sparql, interpretation="; ".join(parsed.understood),
                    columns=query.columns, query_seconds=time.perf_counter() - started)
    answer.rows = _json_rows(rows)
    if parsed.form in ("lookup", "path") and not rows:
        # nothing found: a fact of this asset the catalogue lacks, or one it holds for no asset at all
        asked = [*parsed.attribute, *(step.property for step in parsed.steps)]
        missing = next((p for p in asked if not _recorded(graph, p, readers)), None)
        if missing is not None:
            properties = vocabulary().properties
            label = properties[missing].label if missing in properties else missing
            answer.status, answer.reason = "refused", f"no asset records a {label}"
            answer.text = f"{NOT_HELD}: no asset in the catalogue records a {label}."
            return answer
    answer.values, answer.text = _words(parsed, query, rows, boolean, names(graph, readers).titles)
    _say_if_cut(answer, rows)
    return answer


def _say_if_cut(answer: Answer, rows: Rows) -> None:
    if rows.cut:
        answer.cut = rows.cut
        answer.text += f" (cut short at {rows.cut}: there may be more)"


class Rows(list):  # type: ignore[type-arg]
    """A query's rows; `cut` says why there are no more when the query was stopped early."""
    cut: str | None = None


def run(graph: KnowledgeGraph, query: Query, readers: Readers, timeout: float) -> tuple[Rows, bool | None]:
    """The query's rows (or its yes/no) over the graphs `readers` may see, stopping at the deadline
    or the result limit (`Rows.cut` says which)."""
    visible = graph.visible_graphs(readers)
    dataset = {} if visible is None else {"default_graph": [ox.NamedNode(g) for g in visible],
                                          "named_graphs": [ox.NamedNode(g) for g in visible]}
    deadline = time.monotonic() + timeout
    result = graph.query(query.sparql, **dataset)
    rows = Rows()
    if isinstance(result, ox.QueryBoolean):
        return rows, bool(result)
    names_ = [v.value for v in result.variables]
    limit = graph.settings.sparql_result_limit
    for solution in result:
        if len(rows) >= limit or time.monotonic() > deadline:
            rows.cut = f"the result limit of {limit} rows" if len(rows) >= limit else f"the timeout of {timeout:g} s"
            break
        rows.append({name: solution[name] for name in names_})
    return rows, None


def _recorded(graph: KnowledgeGraph, prop: str, readers: Readers) -> bool:
    """Whether any asset the reader may see has a value for `prop`."""
    check = Query(f"ASK {{ ?s <{ox.NamedNode(prop).value}> ?o }}")
    return bool(run(graph, check, readers, graph.settings.sparql_timeout)[1])


def _json_rows(rows: list[dict[str, ox.Term | None]]) -> list[dict[str, dict[str, str]]]:
    """Rows as the bindings of SPARQL JSON results (unbound columns left out)."""
    return [{name: _json_term(term) for name, term in row.items() if term is not None} for row in rows]


def _json_term(term: ox.Term) -> dict[str, str]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.Literal):
        found = {"type": "literal", "value": term.value}
        if term.language:
            found["xml:lang"] = term.language
        elif term.datatype.value != "http://www.w3.org/2001/XMLSchema#string":
            found["datatype"] = term.datatype.value
        return found
    return {"type": "bnode", "value": str(term)}


def _label(term: ox.Term | None) -> str:
    if term is None:
        return ""
    if isinstance(term, ox.NamedNode):
        concept = vocabulary().concepts.get(term.value)
        return concept.label if concept else term.value
    return term.value


def _value(term: ox.Term) -> Any:
    """An IRI or a literal's text; a number for a numeric literal."""
    if isinstance(term, ox.Literal) and term.datatype.value.rsplit("#", 1)[-1] in (
            "integer", "decimal", "double", "float", "int", "long", "nonNegativeInteger"):
        return _number(term)
    return term.value


def _number(term: ox.Term | None) -> int | float | str:
    text = term.value if term is not None else "0"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _words(parsed: Interpretation, query: Query, rows: list[dict[str, ox.Term | None]], boolean: bool | None,
           titles: dict[str, str]) -> tuple[Any, str]:
    """The answer's values and its text; `titles`: asset IRI -> title, from the search index."""
    form = parsed.form
    if form == "ask":
        return boolean, "Yes." if boolean else "No."
    if form in ("count", "count-values"):
        count = _number(rows[0]["count"]) if rows else 0
        if form == "count":
            label = re.sub(r"(?<!^)(?=[A-Z])", " ", parsed.cls.rsplit("#", 1)[-1]).lower()
            what = label if count == 1 else plural(label)
        else:
            what = "distinct value" if count == 1 else "distinct values"
        return count, f"{count} {what}."
    if form == "group":
        pairs = [[r["value"].value, _number(r["count"])] for r in rows if r.get("value") is not None]
        shown = ", ".join(f"{_label(r['value'])}: {_number(r['count'])}" for r in rows if r.get("value") is not None)
        return pairs, shown + "." if shown else "None."
    if form in ("superlative", "compare") and not parsed.rank_by_count and rows:
        best = rows[0].get("rank")  # the query ranks; the answer is its first rank (ties included)
        first = [r for r in rows if r.get("rank") == best]
        if len(first) == len(rows) == RANKED and isinstance(rows, Rows):
            rows.cut = f"the first {RANKED} assets of equal rank"
        rows = first
    if form in ("list", "superlative", "compare", "threshold"):
        items = list(dict.fromkeys(r["asset"].value for r in rows if r.get("asset") is not None))
        if not items:
            return [], "None matches."
        named = sorted((titles.get(iri) or iri, iri) for iri in items)
        items = [iri for _, iri in named]
        shown = "; ".join(title for title, _ in named[:SHOWN])
        more = f"; and {len(named) - SHOWN} more" if len(named) > SHOWN else ""
        return items, f"{len(items)}: {shown}{more}."
    column = "value" if form == "lookup" else "answer"
    values = list(dict.fromkeys(_value(r[column]) for r in rows if r.get(column) is not None))
    if not values:
        return [], "The catalogue records none."
    text = "; ".join(_label(r[column]) for r in rows if r.get(column) is not None)
    return values, text if text.endswith((".", "!", "?")) else text + "."


__all__ = ["Answer", "QueryRefused", "QuestionRejected", "Rows", "ask", "check_question", "run"]
