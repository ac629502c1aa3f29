"""The rules every value of every input document meets, whatever its schema says.

The catalogue's metadata files, provenance fragments, deployment requests, federation requests
and round records are all checked here (each check function calls `with_value_issues`), on every
string and number they hold: the keys too, and the fields a schema does not know (unknown links
are still published, fragments are stored verbatim). A JSON Schema cannot say these for keys
and unknown fields, and its errors would be the wrong ones (NaN fails `minimum` with a confusing
message, or passes it), so they live here once instead:

- control-character: no text holds a character XML 1.0 cannot carry (metadata.text);
- finite-number: no number is infinite or NaN (YAML's .inf and .nan, JSON's Infinity and NaN,
  1e400 overflowing to infinity): xsd:decimal has no such values and JSON cannot write them;
- url-credentials: no URL carries a user name or password (https://user:secret@host/): what is
  put in is published, and credentials must never be.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .issues import Issue, format_path
from .text import FORBIDDEN, describe

_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#\s]*)@")
"""A URL's scheme and user information (what comes before '@' in its authority)."""
_WEB_SCHEMES = {"http", "https", "ftp", "ftps", "ws", "wss"}
"""Schemes whose URLs never need a user name: any one there is a credential (a token, an account)."""


def value_issues(document: Any, prefix: tuple[Any, ...] = ()) -> list[Issue]:
    """Every string (key or value) and number of the document that breaks a rule of this module,
    named by its field path (under `prefix`), in document order.

    Iterative, not recursive: it runs on parsed request bodies, whose nesting only the JSON
    parser bounded."""
    issues: list[Issue] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [(prefix, document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            children = []
            for key, item in value.items():
                if isinstance(key, str) and FORBIDDEN.search(key):
                    issues.append(_control_character([*path, key], key, "the key"))
                children.append(((*path, key), item))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend(reversed([((*path, index), item) for index, item in enumerate(value)]))
        elif isinstance(value, str):
            if FORBIDDEN.search(value):
                issues.append(_control_character(list(path), value, "the text"))
            elif "@" in value and (masked := url_credentials(value)):
                issues.append(Issue(format_path(path), "url-credentials",
                                    "a URL must not hold a user name or password (user:password@host): what is "
                                    "given here is published, and credentials must never be; give the URL without "
                                    "them", masked))
        elif isinstance(value, float) and not math.isfinite(value):
            issues.append(Issue(format_path(path), "finite-number",
                                "must be a finite number, not infinity or NaN (.inf, .nan, Infinity, NaN, or a "
                                "number beyond the range of a 64-bit float such as 1e400)", value))
    return issues


def _control_character(path: list[Any], text: str, what: str) -> Issue:
    match = FORBIDDEN.search(text)
    assert match is not None
    return Issue(format_path(path), "control-character",
                 f"{what} holds {describe(match.group())} at character {match.start() + 1}; XML 1.0 (exports, SPARQL "
                 "results) cannot carry control characters other than tab, line feed and carriage return, nor "
                 "U+FFFE, U+FFFF or lone surrogates: remove it", text)


def url_credentials(text: str) -> str | None:
    """The URL with its user information masked, when the text is a URL that holds credentials: a
    password (scheme://user:password@...) in any scheme, or any user name in a web URL
    (https://TOKEN@github.com/...). None otherwise (ssh://git@host/ names no secret)."""
    match = _USERINFO.match(text.strip())
    if not match:
        return None
    scheme, userinfo = match.group(1).lower(), match.group(2)
    if ":" not in userinfo and scheme.rsplit("+", 1)[-1] not in _WEB_SCHEMES:
        return None
    return f"{match.group(1)}://***@{text.strip()[match.end():]}"


def with_value_issues(schema_found: list[Issue], document: Any, prefix: tuple[Any, ...] = ()) -> list[Issue]:
    """`schema_found` (a schema's issues of the document) and the document's value issues, the
    schema's dropped where a value issue names the same field: it says the same thing less well
    (NaN "must be at least 1", a URL with a password "must be an absolute http(s) URL")."""
    found = value_issues(document, prefix)
    fields = {issue.field for issue in found}
    return [issue for issue in schema_found if issue.field not in fields] + found
