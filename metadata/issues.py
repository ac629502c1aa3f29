"""One problem found in a document, said in the user's terms: the field, the rule, the value."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from .text import FORBIDDEN, escaped, printable

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Issue:
    field: str
    """The field path as written in the input: links.source_code, resources.inference.cpu, tags[2]."""
    rule: str
    """The rule that failed, short and stable (e.g. 'url', 'date', 'required', 'vocabulary')."""
    message: str
    """What is wrong and how to fix it, in a sentence."""
    value: Any = None
    """The offending value, shortened for display; None when a value is missing."""
    severity: Severity = "error"

    def __post_init__(self) -> None:
        # An issue echoes the input back (a key in the field path, a value): a control character or a
        # lone surrogate in it would break the JSON, XML or terminal the issue is written to.
        for name in ("field", "message"):
            text = getattr(self, name)
            if isinstance(text, str) and FORBIDDEN.search(text):
                object.__setattr__(self, name, escaped(text))
        object.__setattr__(self, "value", printable(self.value))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = self.field or "(document)"
        shown = "" if self.value is None else f" (value: {short(self.value)})"
        return f"{self.severity}: {where}: {self.message} [{self.rule}]{shown}"


def short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 15]}…' ({len(str(value)):,} chars)"


def format_path(parts: list[Any] | tuple[Any, ...]) -> str:
    """['links', 'source_code'] -> 'links.source_code'; ['tags', 2] -> 'tags[2]'."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
