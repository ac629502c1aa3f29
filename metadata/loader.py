"""Read an ai4-metadata file (YAML or JSON) into plain Python data, refusing anything dangerous.

The loader is the first line of defence: it never evaluates tags, refuses YAML anchors and
aliases (the "billion laughs" bomb needs them and no ai4-metadata file uses them), merge keys
and complex keys (a list or mapping as a key), refuses duplicate keys (YAML and JSON silently
keep the last one), bounds nesting depth, the digits of a number and the file size, requires
UTF-8, and reads only regular files. Each bound is checked before the step it protects, never
after: a parser given 50,000 nested brackets or a 5,000-digit number fails with a RecursionError
or ValueError, and /dev/zero or a named pipe never ends.

What it returns holds only JSON's types (dict with text keys, list, str, int, float, bool, None);
the rules on their values (control characters, infinity, credentials in URLs) are metadata.values'.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 1024 * 1024
"""The largest real ai4-metadata file is about 5 KB; 1 MiB leaves room and stops abuse early."""
MAX_DEPTH = 16
MAX_NUMBER_DIGITS = 100
"""No field of any input needs more than 20 digits (a 64-bit integer); Python refuses to convert
more than 4,300 (sys.get_int_max_str_digits) and the limit must not depend on that setting."""


class UnreadableFile(Exception):
    """The file could not be read at all (missing, a directory, not a regular file, permissions)."""


@dataclass
class ParseError(Exception):
    """The bytes are not a well-formed, safe document. `line` is 1-based when known."""

    message: str
    line: int | None = None
    rule: str = "syntax"
    """What kind of problem: syntax, encoding, size, yaml-alias, yaml-tag, yaml-key, duplicate-key,
    nesting, number-size, not-a-mapping."""

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


_YAML_KEY_KINDS = {bool: "true/false", int: "a number", float: "a number", type(None): "null"}


try:  # libyaml's scanner and parser (C), with PyYAML's composer and constructor over their events
    from yaml._yaml import CParser

    class _SafeBase(yaml.composer.Composer, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """yaml.SafeLoader with the scanning and parsing in C: a metadata file in 0.5 ms, not 2.1.
        Composing stays in Python (the checks below run as each node opens), and so do the
        constructors; the events carry the same line marks."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
except ImportError:  # PyYAML built without libyaml
    _SafeBase = yaml.SafeLoader  # type: ignore[misc,assignment]


class _Strict:
    """SafeLoader without aliases, tags, merge keys, complex or duplicate keys, implicit timestamps,
    deep nesting or huge numbers: each refused as the composer or constructor meets it.

    Timestamps stay strings so that '2024-03-26' round-trips as written and date checks see the text.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nesting = 0

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            raise ParseError("YAML aliases (*name) are not allowed in metadata files", line, "yaml-alias")
        if getattr(event, "anchor", None):
            raise ParseError("YAML anchors (&name) are not allowed in metadata files", line, "yaml-alias")
        if getattr(event, "tag", None) is not None:
            # !!binary, !!set, !!timestamp, !!python/... and custom tags make values that are not JSON's.
            tag = event.tag.replace("tag:yaml.org,2002:", "!!")
            raise ParseError(f"YAML tags ({tag}) are not allowed in metadata files", line, "yaml-tag")
        container = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if container:
            # Checked here, as nodes open: the composer recurses once per level, so a post-parse
            # check would come after a RecursionError.
            self._nesting += 1
            if self._nesting > MAX_DEPTH:
                raise ParseError(f"nesting deeper than {MAX_DEPTH} levels", line, "nesting")
        try:
            return super().compose_node(parent, index)
        finally:
            if container:
                self._nesting -= 1

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        seen: set[str] = set()
        for key_node, _ in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                raise ParseError(f"a key must be a name, not a {kind} (a YAML complex key '? ...')", line, "yaml-key")
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                kind = _YAML_KEY_KINDS.get(type(key), type(key).__name__)
                raise ParseError(f"a key must be text, not {kind} ({key_node.value!r}): put it in quotes", line,
                                 "yaml-key")
            if key in seen:
                raise ParseError(f"duplicate key {key!r}", line, "duplicate-key")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):  # type: ignore[no-untyped-def]
        _check_digits(node.value, node.start_mark.line + 1)
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # forms the resolver lets through, such as 0x_ (no digits left)
            raise ParseError(f"{node.value!r} is not a number", node.start_mark.line + 1) from None

    def construct_yaml_float(self, node):  # type: ignore[no-untyped-def]
        try:
            return super().construct_yaml_float(node)
        except ValueError:
            raise ParseError(f"{node.value!r} is not a number", node.start_mark.line + 1) from None


class _StrictLoader(_Strict, _SafeBase):  # type: ignore[misc]
    """The strict loader on libyaml's parser (see `_SafeBase`)."""


class _StrictPythonLoader(_Strict, yaml.SafeLoader):  # type: ignore[misc]
    """The strict loader on PyYAML's own parser: what a document libyaml refuses is read again with
    (libyaml and PyYAML disagree on some inputs, a lone surrogate escape among them; PyYAML's
    reading and its messages are the ones the rest of the checks were written for)."""


for _loader in (_StrictLoader, _StrictPythonLoader):
    _loader.add_constructor("tag:yaml.org,2002:int", _Strict.construct_yaml_int)
    _loader.add_constructor("tag:yaml.org,2002:float", _Strict.construct_yaml_float)
_UNRESOLVED = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"}
"""Implicit types left out: timestamps stay text; '<<' (merge) and '=' (value) are plain keys and
text, not YAML 1.1's merging (which silently overrides keys) or its value key (which no constructor takes)."""
_StrictLoader.yaml_implicit_resolvers = _StrictPythonLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _UNRESOLVED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _check_digits(literal: str, line: int | None) -> None:
    digits = len(literal.lstrip("+-").replace("_", ""))
    if digits > MAX_NUMBER_DIGITS:
        raise ParseError(f"a number of {digits:,} digits; numbers are limited to {MAX_NUMBER_DIGITS} digits", line,
                         "number-size")


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


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_DEPTH_STEP = [0] * 256
for _opening in b"[{":
    _DEPTH_STEP[_opening] = 1
for _closing in b"]}":
    _DEPTH_STEP[_closing] = -1
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
"""Every byte but the four brackets: what `translate` deletes to leave the brackets alone."""


def json_depth(data: bytes) -> int:
    """How deep arrays and objects nest in JSON text (brackets inside strings do not count), found
    without parsing: Python's parser recurses once per level and fails with a RecursionError (not a
    JSONDecodeError) some 1,000 levels down. Text that is not JSON gets a depth too (an unclosed
    string's brackets count): the count never underestimates what a parser would enter."""
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _line_past_depth(data: bytes, max_depth: int) -> int | None:
    """The line where JSON text first nests deeper than `max_depth` (for the error message only; a
    JSON string holds no raw line break, so blanking strings keeps the lines)."""
    outside_strings = _JSON_STRING.sub(b'""', data)
    depth = 0
    for position, step in enumerate(map(_DEPTH_STEP.__getitem__, outside_strings)):
        depth += step
        if depth > max_depth:
            return outside_strings.count(b"\n", 0, position) + 1
    return None


def parse_json(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text under the loader's rules (no duplicate keys, nesting and digits bounded);
    ParseError otherwise. Any JSON input of the platform (a request body, a fragment) can be read
    with it: json.loads fails on such input with RecursionError or ValueError instead."""
    data = text.encode("utf-8", "surrogatepass")
    if json_depth(data) > max_depth:
        raise ParseError(f"nesting deeper than {max_depth} levels", _line_past_depth(data, max_depth), "nesting")

    def integer(literal: str) -> int:
        if len(literal) > MAX_NUMBER_DIGITS:  # the line is looked for only then: finding it costs a scan
            _check_digits(literal, text.count("\n", 0, max(text.find(literal), 0)) + 1)
        return int(literal)

    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_json_keys, parse_int=integer)
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc.msg}", exc.lineno) from None


def _too_big(size: int, exact: bool = True) -> ParseError:
    said = f"{size:,} bytes" if exact else f"more than {MAX_FILE_BYTES:,} bytes"
    return ParseError(f"file is {said}; metadata files are limited to {MAX_FILE_BYTES:,} bytes", rule="size")


def parse_bytes(data: bytes, name: str = "<input>") -> Any:
    """Parse metadata bytes; JSON when the name ends in .json, else YAML (a superset of JSON)."""
    if len(data) > MAX_FILE_BYTES:
        raise _too_big(len(data))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ParseError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})", line,
                         "encoding") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if name.lower().endswith(".json"):
        document = parse_json(text)
    else:
        try:
            try:
                document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
            except yaml.YAMLError:  # refused by libyaml: PyYAML's parser says what and where, as it always did
                document = yaml.load(text, Loader=_StrictPythonLoader)  # noqa: S506 - a SafeLoader subclass
        except ParseError:
            raise
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise ParseError(f"invalid YAML: {exc.problem or exc.context}", mark.line + 1 if mark else None) from None
        except yaml.YAMLError as exc:
            raise ParseError(f"invalid YAML: {exc}") from None
    if _depth(document) > MAX_DEPTH:
        raise ParseError(f"nesting deeper than {MAX_DEPTH} levels", rule="nesting")
    if not isinstance(document, dict):
        kind = "empty" if document is None else type(document).__name__
        raise ParseError(f"a metadata file must hold a mapping of fields, found {kind}", rule="not-a-mapping")
    return document


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_regular_file(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of one file; UnreadableFile when it cannot be read, ParseError when it is too big.

    Only a regular file (or a link to one) is read, and never more than `limit` + 1 bytes: a named
    pipe would block forever and /dev/zero never ends (and both report a size of 0)."""
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer; O_NOCTTY: nor adopt a terminal.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise UnreadableFile(f"{path}: {exc.strerror or exc}") from None
    with open(fd, "rb") as stream:
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
                raise UnreadableFile(f"{path}: {kind}, not a regular file")
            if info.st_size > limit:
                raise _too_big(info.st_size)
            data = stream.read(limit + 1)
        except OSError as exc:
            raise UnreadableFile(f"{path}: {exc.strerror or exc}") from None
    if len(data) > limit:  # it grew after fstat
        raise _too_big(len(data), exact=False)
    return data


def read_file(path: Path) -> Any:
    """Read and parse one metadata file (`read_regular_file`, then `parse_bytes`)."""
    return parse_bytes(read_regular_file(path), path.name)
