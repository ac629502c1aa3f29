"""Relay connections: a page of edges (cursor, node) and its page information."""

from __future__ import annotations

from typing import Generic, Optional, TypeVar

import strawberry


# -- connections ---------------------------------------------------------------------------------

N = TypeVar("N")


@strawberry.type(description="Relay page information. Cursors are keyset positions (sort value, IRI; for "
                             "deployments, the order they were created in): a page never skips or repeats an asset "
                             "when others are added or removed meanwhile.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(description="True when the page starts after a cursor.")
    start_cursor: Optional[str]
    end_cursor: Optional[str]


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    page_info: PageInfo
