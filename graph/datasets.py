"""What a SPARQL request names without running it: the dataset of a query (FROM / FROM NAMED), the
graphs an update writes, and an update with the protocol's USING graphs written into it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..threads import RDFLIB_SPARQL

# Comments, strings and IRIs, blanked out before looking for a FROM keyword.
_NOT_KEYWORDS = re.compile(r"""
    <[^<>"{}|^`\\\x00-\x20]*>
  | \"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
  | '''(?:[^'\\]|\\.|'(?!''))*'''
  | "(?:[^"\\\n\r]|\\.)*"
  | '(?:[^'\\\n\r]|\\.)*'
  | \#[^\n\r]*
""", re.VERBOSE)
_FROM_KEYWORD = re.compile(r"(?<![\w?$:.@-])FROM(?![\w:.-])", re.IGNORECASE)
_UPDATE_TOKENS = re.compile(r"[{};]|(?<![\w?$:.@-])(?:INSERT|DELETE|WHERE|WITH|USING)(?![\w:.-])", re.IGNORECASE)


def has_dataset_clause(sparql: str) -> bool:
    """Whether a query names its dataset (FROM / FROM NAMED), which then wins over the union default graph."""
    return _FROM_KEYWORD.search(_NOT_KEYWORDS.sub(" ", sparql)) is not None


@dataclass(frozen=True)
class DatasetClause:
    default: tuple[str, ...]
    named: tuple[str, ...]


def dataset_clause(sparql: str, base_iri: str | None = None) -> DatasetClause | None:
    """The graphs a query's FROM and FROM NAMED name, or None when it names none.

    rdflib's parser resolves prefixes and the base; it is slower than the keyword test above, so
    it only runs where the answer decides what a reader may see. Raises SyntaxError when rdflib
    cannot read the query."""
    if not has_dataset_clause(sparql):
        return None
    from rdflib.plugins.sparql import algebra, parser  # 0.3 CPU-s to import: only for a query that needs it

    try:
        with RDFLIB_SPARQL:  # rdflib's parser is not safe in two threads at once (threads.py)
            parsed = algebra.translateQuery(parser.parseQuery(sparql), base=base_iri)
    except Exception as exc:  # noqa: BLE001 - pyparsing and rdflib raise many kinds
        raise SyntaxError(f"the query's FROM clauses could not be read: {exc}") from None
    clauses = parsed.algebra.get("datasetClause") or []
    # rdflib's CompValue.get raises for missing keys: read the clauses as plain dicts
    default = tuple(str(dict.get(c, "default")) for c in clauses if dict.get(c, "default") is not None)
    named = tuple(str(dict.get(c, "named")) for c in clauses if dict.get(c, "named") is not None)
    return DatasetClause(default, named) if default or named else None


ANY_GRAPH = None
"""What `graphs_written` says when an update may write to any graph (CLEAR ALL, GRAPH ?g { ... })."""


def graphs_written(update: str, base_iri: str | None = None) -> set[str] | None:
    """The named graphs a SPARQL Update may change, or ANY_GRAPH when that cannot be told from
    its text (a graph variable, ALL / NAMED, or text rdflib cannot read). The default graph is
    left out: it holds no asset."""
    from rdflib import URIRef, Variable
    from rdflib.plugins.sparql import algebra, parser  # 0.3 CPU-s to import: only for an update

    try:
        with RDFLIB_SPARQL:
            operations = algebra.translateUpdate(parser.parseUpdate(update), base=base_iri).algebra
    except Exception:  # noqa: BLE001 - pyparsing and rdflib raise many kinds; Oxigraph judges the syntax
        return ANY_GRAPH
    written: set[object] = set()
    for operation in operations:
        name = operation.name
        if name in ("Clear", "Drop", "Create", "Load"):
            target = dict.get(operation, "graphiri")
            if target in ("ALL", "NAMED"):
                return ANY_GRAPH
            written.add(target)
        elif name in ("Add", "Copy", "Move"):
            source, target = operation["graph"]
            written.update((target, source) if name == "Move" else (target,))
        elif name in ("InsertData", "DeleteData", "DeleteWhere"):
            written.update(operation["quads"])
        elif name == "Modify":
            for template in (dict.get(operation, "delete"), dict.get(operation, "insert")):
                if template is not None:
                    written.update(template["quads"])
                    if template["triples"]:
                        written.add(dict.get(operation, "withClause"))
        else:
            return ANY_GRAPH
    if any(isinstance(graph, Variable) for graph in written):
        return ANY_GRAPH
    return {str(graph) for graph in written if isinstance(graph, URIRef)}


class DatasetConflict(ValueError):
    """The protocol names USING graphs for an update that names its own (USING or WITH)."""


def with_using(update: str, default: list[str], named: list[str]) -> str:
    """The update with the protocol's using-graph-uri / using-named-graph-uri as USING clauses of
    each of its DELETE/INSERT operations (DELETE WHERE { P } becomes DELETE { P } USING ... WHERE { P }).

    pyoxigraph's update call has no dataset option, so the clauses go into the text, at the
    positions the grammar gives them, found with comments, strings and IRIs blanked out (offsets
    kept). The IRIs must be validated (written as <iri>) by the caller.
    Raises DatasetConflict when the update has USING or WITH itself (SPARQL 1.1 Protocol 2.2.3)."""
    if not default and not named:
        return update
    clauses = " ".join([*(f"USING {iri}" for iri in default), *(f"USING NAMED {iri}" for iri in named)])
    masked = _NOT_KEYWORDS.sub(lambda m: " " * len(m.group()), update)
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in the original text
    depth, previous, block_start, delete_where = 0, "", 0, -1
    for match in _UPDATE_TOKENS.finditer(masked):
        token = match.group().upper()
        if token == "{":
            block_start = match.start() if depth == 0 else block_start
            depth += 1
            continue
        if token == "}":
            depth -= 1
            if depth == 0:
                if delete_where >= 0:  # the quad pattern of DELETE WHERE serves as template and pattern
                    pattern = update[block_start:match.end()]
                    edits.append((delete_where, match.end(), f"{pattern} {clauses} WHERE {pattern}"))
                    delete_where = -1
                previous = "}"
            continue
        if depth:
            continue
        if token in ("USING", "WITH"):
            raise DatasetConflict(f"the update has its own {token} clause; using-graph-uri and "
                                  "using-named-graph-uri cannot be combined with USING or WITH")
        if token == "WHERE" and previous == "}":
            edits.append((match.start(), match.start(), f"{clauses} "))
        elif token == "WHERE" and previous == "DELETE":
            delete_where = match.start()
        previous = token
    for start, end, replacement in reversed(edits):
        update = update[:start] + replacement + update[end:]
    return update


@dataclass(frozen=True)
class ServiceCall:
    """A SERVICE clause of a query: where its endpoint is written in the text, and what is written."""

    start: int
    end: int
    """Offsets of the endpoint term (`<iri>`, a variable or a prefixed name) in the query text."""
    endpoint: str
    """The term as written: `<http://...>`, `?var` or `prefix:name`."""


_SERVICE_KEYWORD = re.compile(r"(?<![\w?$:.@-])SERVICE(?![\w:.-])", re.IGNORECASE)
_SILENT_THEN_TERM = re.compile(r"\s*(?:SILENT(?![\w:.-])\s*)?(<[^<>\"{}|^`\\\x00-\x20]*>|[?$]\w+|[\w.-]*:[\w.%-]*)",
                               re.IGNORECASE)


def service_calls(sparql: str) -> list[ServiceCall]:
    """The SERVICE clauses of a query (SPARQL 1.1 Federated Query), found with comments, strings and
    IRIs blanked out (offsets kept), so the word inside a literal or an IRI is not one; a prefixed
    name or variable spelled `service` is not the keyword either. The endpoint term is read from the
    original text at the offset the keyword gives."""
    masked = _NOT_KEYWORDS.sub(lambda m: " " * len(m.group()), sparql)
    calls = []
    for keyword in _SERVICE_KEYWORD.finditer(masked):
        term = _SILENT_THEN_TERM.match(sparql, keyword.end())
        if term is None:  # not a SERVICE clause Oxigraph would accept: its parser will say so
            calls.append(ServiceCall(keyword.start(), keyword.end(), ""))
            continue
        calls.append(ServiceCall(term.start(1), term.end(1), term.group(1)))
    return calls


_ORDER_BY = re.compile(r"(?<![\w?$:.@-])ORDER\s+BY(?![\w:.-])", re.IGNORECASE)
_DIRECTION = re.compile(r"(ASC|DESC)\s*\(", re.IGNORECASE)
_VARIABLE = re.compile(r"[?$]\w+")
_CALL = re.compile(r"(?:[A-Za-z_][\w-]*)?(?::[\w.%-]*)?\s*\(")
"""A built-in call (STR(...)) or a function named by a prefixed name (ex:fn(...)) in an ORDER BY."""
_STOP_WORDS = {"LIMIT", "OFFSET", "VALUES"}


def _closing(masked: str, opening: int) -> int:
    """The offset of the parenthesis that closes the one at `opening` (strings and IRIs are blanked)."""
    depth = 0
    for position in range(opening, len(masked)):
        if masked[position] == "(":
            depth += 1
        elif masked[position] == ")":
            depth -= 1
            if depth == 0:
                return position
    raise ValueError("unbalanced parentheses")


def _order_conditions(sparql: str, masked: str, position: int) -> tuple[list[tuple[str, str]], int]:
    """The conditions of the ORDER BY clause that starts at `position`: (direction, expression) each,
    and where the clause ends."""
    conditions: list[tuple[str, str]] = []
    while True:
        while position < len(masked) and masked[position].isspace() and sparql[position] != "<":
            position += 1
        if position >= len(masked):
            break
        rest = masked[position:]
        if (direction := _DIRECTION.match(rest)) is not None:
            opening = position + direction.end() - 1
            end = _closing(masked, opening)
            conditions.append((direction.group(1).upper(), sparql[opening + 1:end]))
        elif rest.startswith("("):
            end = _closing(masked, position)
            conditions.append(("ASC", sparql[position + 1:end]))
        elif (variable := _VARIABLE.match(rest)) is not None:
            end = position + variable.end() - 1
            conditions.append(("ASC", variable.group()))
        elif sparql[position] == "<" or ((call := _CALL.match(rest)) is not None and call.group().strip() != "("
                                          and rest.split("(", 1)[0].strip().upper() not in _STOP_WORDS):
            if sparql[position] == "<":  # a function named by an IRI: <...>(args)
                iri_end = sparql.index(">", position)
                opening = masked.index("(", iri_end)
                if masked[iri_end + 1:opening].strip():
                    break
            else:
                opening = position + call.end() - 1
            end = _closing(masked, opening)
            conditions.append(("ASC", sparql[position:end + 1]))
        else:
            break
        position = end + 1
    return conditions, position


def total_order(sparql: str) -> str:
    """The query with each ORDER BY condition preceded by two that sort by kind of term first:
    unbound, blank node, IRI, number, NaN, other literals; those by datatype and language.

    Oxigraph 0.5 compares terms of different kinds inconsistently (the number 10, the string "11"
    and the number 2 make a cycle: "10" < "11" < "2" as text, 10 > 2 as numbers), and Rust's sort
    aborts the whole process when it notices ("user-provided comparison function does not correctly
    implement a total order"): one anonymous ORDER BY over mixed values took the server down. With
    the kind and datatype keys first, the engine only ever compares like with like. SPARQL orders
    unbound < blank < IRI < literal and leaves the order between literals of different types open,
    so the result is one the standard allows. A query whose ORDER BY cannot be read here is left
    as it is (Oxigraph's parser then judges it)."""
    masked = _NOT_KEYWORDS.sub(lambda m: " " * len(m.group()), sparql)
    edits: list[tuple[int, int, str]] = []
    for clause in _ORDER_BY.finditer(masked):
        try:
            conditions, end = _order_conditions(sparql, masked, clause.end())
        except ValueError:
            continue
        if not conditions:
            continue
        keys = []
        for direction, expression in conditions:
            kind = (f"COALESCE(IF(isBLANK({expression}), 1, IF(isIRI({expression}), 2, IF(isNUMERIC({expression}), "
                    f"IF(({expression}) = ({expression}), 3, 4), 5))), 0)")
            datatype = (f'COALESCE(IF(isLITERAL({expression}) && !isNUMERIC({expression}), '
                        f'CONCAT(STR(DATATYPE({expression})), "@", LANG({expression})), ""), "")')
            keys.append(f"{direction}({kind}) {direction}({datatype}) {direction}({expression})")
        edits.append((clause.end(), end, " " + " ".join(keys) + " "))
    for start, end, replacement in reversed(edits):
        sparql = sparql[:start] + replacement + sparql[end:]
    return sparql


_COMPUTED_WHOLE = re.compile(r"(?<![\w?$:.@-])(?:ORDER\s+BY|GROUP\s+BY|ASK|COUNT|SUM|MIN|MAX|AVG|SAMPLE|GROUP_CONCAT)"
                             r"(?![\w:.-])", re.IGNORECASE)


def computes_whole(sparql: str) -> bool:
    """Whether Oxigraph computes (part of) the query whole before it gives a first row, inside one
    call that cannot be interrupted: a sort, a group, an aggregate, an ASK (api/query_process.py
    runs such a query where it can be killed). The keywords are looked for outside strings, IRIs
    and comments; a variable or prefixed name spelled like one is no keyword."""
    return _COMPUTED_WHOLE.search(_NOT_KEYWORDS.sub(" ", sparql)) is not None
