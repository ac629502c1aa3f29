"""Which characters a text of the graph may hold, and how to show one that holds others.

Every string the platform takes in ends up in RDF/XML exports, SPARQL XML results and JSON
answers. XML 1.0 cannot carry C0 control characters other than tab, line feed and carriage
return, nor U+FFFE, U+FFFF or lone surrogates (a lone surrogate cannot even be encoded as UTF-8);
DEL and the C1 controls (U+0080-U+009F) are "discouraged" there and are terminal escape sequences
on a console. One such character makes a whole catalogue export unreadable, so input holding any
of them is refused (metadata.values), and anything that echoes input back (an error message)
shows them escaped (`printable`).

This module depends on nothing else of the package, so that metadata.issues can use it.
"""

from __future__ import annotations

import math
import re
from typing import Any

FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
"""A character no text of the graph may hold (see the module's docstring)."""

_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "BS", 0x0B: "VT", 0x0C: "FF", 0x1B: "ESC", 0x7F: "DEL", 0x85: "NEL",
          0xFFFE: "a noncharacter", 0xFFFF: "a noncharacter"}
_MAX_DEPTH = 32
"""How deep `printable` follows nested values: echoed values are for reading, not for reuse."""


def describe(character: str) -> str:
    """'U+001B (ESC)', 'U+D800 (a lone surrogate)', 'U+0001 (a control character)'."""
    code = ord(character)
    if 0xD800 <= code <= 0xDFFF:
        name = "a lone surrogate"
    else:
        name = _NAMES.get(code, "a control character")
    return f"U+{code:04X} ({name})"


def escaped(text: str) -> str:
    """The text with each forbidden character written as a Python escape (\\x1b, \\ud800)."""
    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"

    return FORBIDDEN.sub(escape, text)


def printable(value: Any, depth: int = 0) -> Any:
    """The value with every forbidden character of its texts (keys too) escaped and every
    non-finite number written as text ('inf', 'nan'), so that it can go into JSON, XML or a
    terminal as it is. The value itself when nothing needs to change (values can be large)."""
    if isinstance(value, str):
        return escaped(value) if FORBIDDEN.search(value) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple, dict)) and depth >= _MAX_DEPTH:
        return "…"
    if isinstance(value, (list, tuple)):
        items = [printable(item, depth + 1) for item in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        pairs = [(printable(k, depth + 1), printable(v, depth + 1)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(pairs, value.items())):
            return value
        return dict(pairs)
    return value
