"""Read an ai4-metadata file (YAML or JSON) into plain Python data, refusing anything dangerous.

The loader is the first line of defence: it never evaluates tags, refuses YAML anchors and
aliases (the "billion laughs" bomb needs them and no ai4-metadata file uses them), refuses
duplicate keys (YAML and JSON silently keep the last one), bounds nesting depth and file size,
and requires UTF-8.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 1024 * 1024
"""The largest real ai4-metadata file is about 5 KB; 1 MiB leaves room and stops abuse early."""
MAX_DEPTH = 16


class UnreadableFile(Exception):
    """The file could not be read at all (missing, a directory, permissions)."""


@dataclass
class ParseError(Exception):
    """The bytes are not a well-formed, safe document. `line` is 1-based when known."""

    message: str
    line: int | None = None
    rule: str = "syntax"
    """What kind of problem: syntax, encoding, size, yaml-alias, duplicate-key, nesting, not-a-mapping."""

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases, duplicate keys or implicit timestamps.

    Timestamps stay strings so that '2024-03-26' round-trips as written and date checks see the text.
    """

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise ParseError("YAML aliases (*name) are not allowed in metadata files", event.start_mark.line + 1,
                             "yaml-alias")
        if getattr(event, "anchor", None):
            raise ParseError("YAML anchors (&name) are not allowed in metadata files", event.start_mark.line + 1,
                             "yaml-alias")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise ParseError(f"duplicate key {key!r}", key_node.start_mark.line + 1, "duplicate-key")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _reject_duplicate_json_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ParseError(f"duplicate key {key!r}", rule="duplicate-key")
        result[key] = value
    return result


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def parse_bytes(data: bytes, name: str = "<input>") -> Any:
    """Parse metadata bytes; JSON when the name ends in .json, else YAML (a superset of JSON)."""
    if len(data) > MAX_FILE_BYTES:
        raise ParseError(f"file is {len(data):,} bytes; metadata files are limited to {MAX_FILE_BYTES:,} bytes",
                         rule="size")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ParseError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})", line,
                         "encoding") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if name.lower().endswith(".json"):
        try:
            document = json.loads(text, object_pairs_hook=_reject_duplicate_json_keys)
        except json.JSONDecodeError as exc:
            raise ParseError(f"invalid JSON: {exc.msg}", exc.lineno) from None
    else:
        try:
            document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        except ParseError:
            raise
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise ParseError(f"invalid YAML: {exc.problem or exc.context}", mark.line + 1 if mark else None) from None
        except yaml.YAMLError as exc:
            raise ParseError(f"invalid YAML: {exc}") from None
        except RecursionError:
            raise ParseError(f"nesting deeper than {MAX_DEPTH} levels", rule="nesting") from None
    if _depth(document) > MAX_DEPTH:
        raise ParseError(f"nesting deeper than {MAX_DEPTH} levels", rule="nesting")
    if not isinstance(document, dict):
        kind = "empty" if document is None else type(document).__name__
        raise ParseError(f"a metadata file must hold a mapping of fields, found {kind}", rule="not-a-mapping")
    return document


def read_file(path: Path) -> Any:
    """Read and parse one file; UnreadableFile when it cannot be read, ParseError when it is malformed."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ParseError(f"file is {size:,} bytes; metadata files are limited to {MAX_FILE_BYTES:,} bytes",
                             rule="size")
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, PermissionError, NotADirectoryError) as exc:
        raise UnreadableFile(f"{path}: {exc.strerror or exc}") from None
    except OSError as exc:
        raise UnreadableFile(f"{path}: {exc}") from None
    return parse_bytes(data, path.name)
