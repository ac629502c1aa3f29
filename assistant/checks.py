"""The checks every generated query passes before it reaches the store, whoever wrote it.

A query from the embedded parser or from a language model is parsed (rdflib's SPARQL parser, the
algebra it gives) and refused unless it is a SELECT or an ASK, names no dataset (FROM / FROM NAMED)
and calls no other endpoint (SERVICE), and every class and property it uses is one the ontology or
the lexicon defines. Scope (the reader's graphs), a timeout and a row limit are applied when it runs
(assistant/__init__.py), as for /sparql.
"""

from __future__ import annotations

import functools
import re
from typing import Callable

from rdflib import URIRef
from rdflib.paths import Path
from rdflib.plugins.sparql import algebra, parser
from rdflib.plugins.sparql.parserutils import CompValue

from ..threads import RDFLIB_SPARQL
from .lexicon import RDF_TYPE, Vocabulary

READ_FORMS = ("SelectQuery", "AskQuery")
ALWAYS_ALLOWED = frozenset({RDF_TYPE})


class QueryRefused(ValueError):
    """A generated query that fails a check; the message says which and why."""


_VALUES = re.compile(r"""(VALUES\s+\?\w+\s*\{)((?:\s*(?:<[^<>"\s]*>|"(?:[^"\\\n]|\\.)*"(?:\^\^<[^<>"\s]*>|@[\w-]+)?))+)(\s*\})""")
"""A one-variable VALUES clause of IRIs or literals: what the compiler binds the question's values with."""


def shape(sparql: str) -> str:
    """`sparql` with the data of its VALUES clauses left out. The checks' verdict does not depend on it
    (a value is a term, never a keyword, a class or a property), so it is checked once per shape:
    rdflib's parser takes about 25 ms a query, most of what answering a question costs."""
    return _VALUES.sub(lambda m: m.group(1) + ' "" ' + m.group(3), sparql)


def check_query(sparql: str, vocab: Vocabulary) -> None:
    """Nothing when `sparql` passes every check; QueryRefused naming the first it fails."""
    verdict = _checker(vocab)(shape(sparql))
    if verdict is not None:
        raise QueryRefused(verdict)


_checkers: dict[int, Callable[[str], str | None]] = {}


def _checker(vocab: Vocabulary) -> Callable[[str], str | None]:
    """The verdicts on query shapes against `vocab`, remembered (the closure keeps `vocab`, so its id
    names it for as long as the entry lives)."""
    found = _checkers.get(id(vocab))
    if found is None:
        @functools.lru_cache(maxsize=2048)
        def verdict(text: str) -> str | None:
            try:
                _check(text, vocab)
            except QueryRefused as exc:
                return str(exc)
            return None
        found = _checkers.setdefault(id(vocab), verdict)
    return found


def _check(sparql: str, vocab: Vocabulary) -> None:
    try:
        with RDFLIB_SPARQL:
            tree = parser.parseQuery(sparql)
            query = algebra.translateQuery(tree)
    except Exception as exc:  # noqa: BLE001 - pyparsing and rdflib raise many kinds; all mean "does not parse"
        raise QueryRefused(f"the query does not parse: {exc}") from None
    form = query.algebra.name
    if form not in READ_FORMS:
        raise QueryRefused(f"only SELECT and ASK queries are run, not {form.removesuffix('Query').upper()}")
    if query.algebra.get("datasetClause"):
        raise QueryRefused("the query names its own dataset (FROM / FROM NAMED); the assistant queries the "
                           "graphs the reader may see")
    allowed = vocab.terms() | ALWAYS_ALLOWED
    for kind, iri in _terms(query.algebra):
        if kind == "service":
            raise QueryRefused("the query calls another endpoint (SERVICE)")
        if iri not in allowed:
            raise QueryRefused(f"the query uses {'class' if kind == 'class' else 'property'} <{iri}>, which the "
                               "ontology does not define")


def _terms(node: object, seen: set[int] | None = None):
    """(kind, IRI) of the properties and classes a query's algebra uses; ("service", "") for SERVICE."""
    seen = seen if seen is not None else set()
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, CompValue):
        if node.name in ("ServiceGraphPattern", "Service"):
            yield "service", ""
        if node.name == "BGP":
            for subject, predicate, obj in node.get("triples", []):
                yield from _predicate(predicate)
                if predicate == URIRef(RDF_TYPE) and isinstance(obj, URIRef):
                    yield "class", str(obj)
        for value in node.values():
            yield from _terms(value, seen)
    elif isinstance(node, (list, tuple, set)):
        for value in node:
            yield from _terms(value, seen)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _terms(value, seen)
    elif isinstance(node, Path):
        yield from _predicate(node)


def _predicate(predicate: object):
    if isinstance(predicate, URIRef):
        yield "property", str(predicate)
    elif isinstance(predicate, Path):
        for attribute in ("args", "arg", "path"):
            inner = getattr(predicate, attribute, None)
            for part in inner if isinstance(inner, (list, tuple)) else ([inner] if inner is not None else []):
                yield from _predicate(part)
