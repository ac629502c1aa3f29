"""Filters and sorts of the application listings (ApplicationFilter, Sort), and how a filter is read:
brought into disjunctive normal form, each AND branch one `FacetQuery` of the search index, with date
ranges from one SPARQL query."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Optional

import strawberry

from ...graph.search import FacetQuery, IndexRow
from ...graph.store import KnowledgeGraph
from ...metadata import vocabulary
from .context import _dated
from .errors import InputError
from .limits import MAX_BRANCHES, MAX_CONDITIONS, MAX_FILTER_DEPTH, MAX_VALUES, SCAN_PAGE

TOOLS_CATEGORY = ("category", "ai4-tools")


# -- filters -------------------------------------------------------------------------------------

@strawberry.input(description="Conditions on one multi-valued field; both must hold when both are given.")
class ValuesFilter:
    in_: Optional[list[str]] = strawberry.field(
        name="in", default=None, description="Has at least one of these values (an empty list matches nothing).")
    all: Optional[list[str]] = strawberry.field(default=None, description="Has every one of these values.")


@strawberry.input(description="Dates from and to, both included; either may be left out.")
class DateRange:
    from_: Optional[datetime.date] = strawberry.field(name="from", default=None)
    to: Optional[datetime.date] = None


@strawberry.input(description=(
    "Conditions on applications. All conditions given in one object must hold; `and`, `or` and `not` "
    "compose them (`or: []` matches nothing, `and: []` everything). Tags match in any case; tasks, "
    "libraries, categories and data types accept any label of their vocabulary (preferred or "
    "alternative, any case). Free text matches every word (the last one as a prefix) in title, "
    "summary, description and tags; it cannot be negated, and each AND branch may hold one."))
class ApplicationFilter:
    tags: Optional[ValuesFilter] = None
    tasks: Optional[ValuesFilter] = None
    libraries: Optional[ValuesFilter] = None
    categories: Optional[ValuesFilter] = None
    data_types: Optional[ValuesFilter] = None
    created: Optional[DateRange] = None
    updated: Optional[DateRange] = None
    text: Optional[str] = None
    and_: Optional[list["ApplicationFilter"]] = strawberry.field(name="and", default=None)
    or_: Optional[list["ApplicationFilter"]] = strawberry.field(name="or", default=None)
    not_: Optional["ApplicationFilter"] = strawberry.field(name="not", default=None)


@strawberry.enum
class SortField(Enum):
    IDENTIFIER = "identifier"
    TITLE = "title"
    CREATED = "created"
    UPDATED = "updated"


@strawberry.enum
class SortDirection(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.input(description="Order of a listing; ties are broken by IRI.")
class Sort:
    field: SortField = SortField.IDENTIFIER
    direction: SortDirection = SortDirection.ASC


_FACETS = {"tags": "tag", "tasks": "task", "libraries": "library", "categories": "category", "data_types": "dataType"}
_SCHEMES = {"tasks": "task", "libraries": "library", "categories": "category", "data_types": "data-type"}
_GRAPHQL_NAMES = {"data_types": "dataTypes"}


@dataclass(frozen=True)
class _Facet:
    field: str
    values: tuple[str, ...]
    every: bool
    """all (True) or in (False)"""
    negated: bool = False


@dataclass(frozen=True)
class _Text:
    text: str
    argument: str


@dataclass(frozen=True)
class _Dates:
    field: str
    start: datetime.date | None
    end: datetime.date | None
    negated: bool = False


_Atom = _Facet | _Text | _Dates
_Conjunction = tuple[_Atom, ...]


@dataclass
class _Node:
    kind: str  # and, or, not
    children: list[Any] = field(default_factory=list)


def _values(name: str, values: list[str], argument: str) -> tuple[str, ...]:
    """Tags in lower case; vocabulary labels as concept slugs (an unknown label is an error)."""
    if len(values) > MAX_VALUES:
        raise InputError(f"at most {MAX_VALUES} values in one list", argument, len(values))
    if name == "tags":
        return tuple(dict.fromkeys(v.strip().lower() for v in values if v.strip()))
    scheme = vocabulary.schemes()[_SCHEMES[name]]
    concepts = []
    for value in values:
        concept = scheme.concept_of(value)
        if concept is None:
            allowed = ", ".join(sorted(scheme.preferred.values()))
            raise InputError(f"{value!r} is not a value of {_GRAPHQL_NAMES.get(name, name)}; allowed: {allowed}",
                             argument, value)
        concepts.append(concept)
    return tuple(dict.fromkeys(concepts))


def _tree(spec: ApplicationFilter, argument: str, depth: int = 0, counted: list[int] | None = None) -> _Node:
    """The filter as an AND of its conditions and of its and / or / not parts."""
    if depth > MAX_FILTER_DEPTH:
        raise InputError(f"and / or / not nest at most {MAX_FILTER_DEPTH} levels deep", argument)
    counted = [0] if counted is None else counted

    def sub(part: ApplicationFilter, where: str) -> _Node:
        return _tree(part, where, depth + 1, counted)

    node = _Node("and")
    for name, facet in _FACETS.items():
        condition: ValuesFilter | None = getattr(spec, name)
        if condition is None:
            continue
        where = f"{argument}.{_GRAPHQL_NAMES.get(name, name)}"
        if condition.in_ is not None:
            node.children.append(_Facet(facet, _values(name, condition.in_, f"{where}.in"), every=False))
        if condition.all is not None:
            node.children.append(_Facet(facet, _values(name, condition.all, f"{where}.all"), every=True))
    for name in ("created", "updated"):
        dates: DateRange | None = getattr(spec, name)
        if dates is not None and (dates.from_ is not None or dates.to is not None):
            node.children.append(_Dates(name, dates.from_, dates.to))
    if spec.text is not None:
        node.children.append(_Text(spec.text, f"{argument}.text"))
    counted[0] += len(node.children)
    if counted[0] > MAX_CONDITIONS:
        raise InputError(f"a filter holds at most {MAX_CONDITIONS} conditions", argument)
    if spec.and_ is not None:
        node.children.append(_Node("and", [sub(s, f"{argument}.and[{i}]") for i, s in enumerate(spec.and_)]))
    if spec.or_ is not None:
        node.children.append(_Node("or", [sub(s, f"{argument}.or[{i}]") for i, s in enumerate(spec.or_)]))
    if spec.not_ is not None:
        node.children.append(_Node("not", [sub(spec.not_, f"{argument}.not")]))
    return node


_TRUE: list[_Conjunction] = [()]
_FALSE: list[_Conjunction] = []


def _dnf(node: _Node | _Atom, negated: bool = False) -> list[_Conjunction]:
    """Disjunctive normal form, negations pushed onto the atoms (De Morgan)."""
    if isinstance(node, _Facet):
        if not node.values:  # in [] is false, all [] is true
            return _TRUE if node.every != negated else _FALSE
        return [(replace(node, negated=negated),)]
    if isinstance(node, _Dates):
        return [(replace(node, negated=negated),)]
    if isinstance(node, _Text):
        if negated:
            raise InputError("free text cannot be negated (under `not`)", node.argument, node.text)
        return [(node,)]
    if node.kind == "not":
        return _dnf(node.children[0], not negated)
    parts = [_dnf(child, negated) for child in node.children]
    if (node.kind == "and") != negated:
        result = _TRUE
        for part in parts:
            if len(result) * len(part) > MAX_BRANCHES:
                raise _too_many()
            result = [a + b for a in result for b in part]
        return result
    result = [conjunction for part in parts for conjunction in part]
    if len(result) > MAX_BRANCHES:
        raise _too_many()
    return result


def _too_many() -> InputError:
    return InputError(f"the filter expands to more than {MAX_BRANCHES} alternatives (OR branches); simplify it",
                      "filter")


@dataclass(frozen=True)
class _Branch:
    query: FacetQuery
    dates: tuple[_Dates, ...]


def _branch(conjunction: _Conjunction, base: FacetQuery, tools: bool) -> _Branch:
    facets = [a for a in conjunction if isinstance(a, _Facet)]
    texts = [a for a in conjunction if isinstance(a, _Text)]
    if len(texts) > 1:
        raise InputError("each AND branch of a filter may hold one free-text condition; put the words in one `text`",
                         texts[1].argument, texts[1].text)
    any_of = [(f.field, f.values) for f in facets if not f.every and not f.negated]
    none_of = [(f.field, f.values) for f in facets if not f.every and f.negated]
    (any_of if tools else none_of).append((TOOLS_CATEGORY[0], (TOOLS_CATEGORY[1],)))
    query = replace(base, text=texts[0].text if texts else None,
                    all_of=tuple((f.field, v) for f in facets if f.every and not f.negated for v in f.values),
                    any_of=tuple(any_of), none_of=tuple(none_of),
                    not_all_of=tuple((f.field, f.values) for f in facets if f.every and f.negated))
    return _Branch(query, tuple(a for a in conjunction if isinstance(a, _Dates)))


def _branch_page(graph: KnowledgeGraph, branch: _Branch, first: int,
                 dated: dict[_Dates, frozenset[str]]) -> tuple[list[IndexRow], bool]:
    """Up to `first` index rows of one branch after its cursor, and whether it has more."""
    if not branch.dates:
        page = graph.index.filter(replace(branch.query, limit=first))
        return page.rows, page.next_after is not None

    def keep(iri: str) -> bool:
        return all((iri in dated[replace(d, negated=False)]) != d.negated for d in branch.dates)

    query = replace(branch.query, limit=SCAN_PAGE)
    # A range on the sort key is a keyset window: start at its near end, stop past its far end.
    ranges = [d for d in branch.dates if d.field == query.sort and not d.negated]
    low = max((d.start.isoformat() for d in ranges if d.start), default=None)
    high = min((d.end.isoformat() for d in ranges if d.end), default=None)
    if query.descending:
        entry, beyond = ((high, "\U0010ffff") if high else None), (lambda value: low is not None and value < low)
    else:
        entry, beyond = ((low, "") if low else None), (lambda value: high is not None and value > high)
    if entry and (query.after is None or (entry < query.after if query.descending else entry > query.after)):
        query = replace(query, after=entry)
    found: list[IndexRow] = []
    while True:
        page = graph.index.filter(query)
        for row in page.rows:
            if keep(row.iri):
                found.append(row)
                if len(found) > first:
                    return found[:first], True
        if page.next_after is None or beyond(page.next_after[0]):
            return found, False
        query = replace(query, after=page.next_after)


def _read_branches(graph: KnowledgeGraph, branches: list[_Branch], first: int) -> tuple[list[IndexRow], bool]:
    """The index rows every branch contributes to the page (up to `first` each), and whether any has more."""
    ranges = {replace(d, negated=False) for branch in branches for d in branch.dates}
    dated = {key: _dated(graph, key.field, key.start, key.end) for key in ranges}
    rows: dict[str, IndexRow] = {}
    more = False
    for branch in branches:
        found, has_more = _branch_page(graph, branch, first, dated)
        for row in found:
            rows.setdefault(row.iri, row)
        more = more or has_more
    return list(rows.values()), more
