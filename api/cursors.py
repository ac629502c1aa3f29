"""Keyset cursors, one format for REST and GraphQL, so a cursor of one API works in the other."""

from __future__ import annotations

import base64
import binascii
import json


class InvalidCursor(ValueError):
    """The text is not a cursor this API gave out, or one for another sort order."""


def encode(sort: str, value: str, iri: str) -> str:
    """The position after (sort value, IRI) of a page's last row, for the given sort."""
    return base64.urlsafe_b64encode(json.dumps([sort, value, iri]).encode()).decode().rstrip("=")


def decode(cursor: str, sort: str) -> tuple[str, str]:
    """The (sort value, IRI) a cursor holds; InvalidCursor when it is foreign or of another sort."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        cursor_sort, value, iri = data
        if not all(isinstance(x, str) for x in data):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor("the cursor is not one this API gave out") from None
    if cursor_sort != sort:
        raise InvalidCursor(f"the cursor belongs to another sort ({cursor_sort}), not {sort}")
    return value, iri
