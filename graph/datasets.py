"""What dataset a SPARQL query names (FROM / FROM NAMED), read without running it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rdflib.plugins.sparql import algebra, parser

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
    try:
        parsed = algebra.translateQuery(parser.parseQuery(sparql), base=base_iri)
    except Exception as exc:  # noqa: BLE001 - pyparsing and rdflib raise many kinds
        raise SyntaxError(f"the query's FROM clauses could not be read: {exc}") from None
    clauses = parsed.algebra.get("datasetClause") or []
    # rdflib's CompValue.get raises for missing keys: read the clauses as plain dicts
    default = tuple(str(dict.get(c, "default")) for c in clauses if dict.get(c, "default") is not None)
    named = tuple(str(dict.get(c, "named")) for c in clauses if dict.get(c, "named") is not None)
    return DatasetClause(default, named) if default or named else None
