"""One problem found in a document, said in the user's terms: the field, the rule, the value."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = self.field or "(document)"
        shown = "" if self.value is None else f" (value: {short(self.value)})"
        return f"{self.severity}: {where}: {self.message} [{self.rule}]{shown}"


def short(value: Any, limit: int = 80) -> str:
    text = repr(value) if not isinstance(value, str) else repr(value)
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
