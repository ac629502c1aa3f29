"""How morph-kgc (2.10, the reference engine) turns a record value into a lexical form, for the
compiled RML engine (metadata/rml_compiler.py).

What morph-kgc does with the in-memory source `{name}`, a list of dicts, is
  1. build a pandas frame of the referenced keys, so a column's dtype is inferred from every record
     of the call (an int column with a record lacking the key becomes float64: 4 -> "4.0"; a None
     among text is the string "None");
  2. `str()` every cell; the strings "" and "nan" (its na_values) are null, and a rule makes no
     triple for a record where any key it references is null;
  3. xsd:integer literals go through float then int64 (precision above 2^53 is lost; a non-finite
     value raises), xsd:boolean is lower-cased, a space in xsd:dateTime becomes "T";
  4. template values in IRIs are percent-encoded except RFC 3986's unreserved characters; reference
     values are written as they are, and N-Quads' \\u escapes in them are decoded by its parser.
`column_strings` and `integer_lexical` reproduce 1 to 3 without pandas; tests/test_rml_compiled.py
compares them with pandas and both engines' graphs.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import Any, Callable, Sequence
from urllib.parse import quote

import pyoxigraph as ox

XSD = "http://www.w3.org/2001/XMLSchema#"
NA = ("", "nan")
"""morph-kgc's default na_values: cells whose string is one of these are null."""
MISSING = float("nan")
"""A key absent from a record: pandas fills it with NaN."""


class RecordError(ValueError):
    """A record value the mapping cannot turn into a term (an IRI that is not one, a non-number for
    xsd:integer); the message names the mapping, the triples map and the record key."""


def column_strings(values: Sequence[Any]) -> list[str | None]:
    """The strings morph-kgc makes of one key over every record of a call (None: null), following
    pandas' dtype inference for a column of a frame built from a list of dicts."""
    if len(values) == 1:  # one record: its own type decides
        v = values[0]
        if v is MISSING:
            return [None]
        if v.__class__ is str:
            return [None if v in NA else v]
    elif all(v.__class__ is str or v is MISSING for v in values):  # the common case: text or absent
        return [None if v is MISSING or v in NA else v for v in values]
    # pandas' maybe_convert_objects: any text, bool or int out of range makes an object column,
    # where None is "None"; else NaN or None (ints after a None are not range-checked) make float64
    text = has_bool = has_int = has_float = has_none = signed = unsigned = False
    for v in values:
        if v is None:
            has_none = True
        elif isinstance(v, bool):
            has_bool = True
        elif isinstance(v, int):
            has_int = True
            if not has_none and not text:
                signed = signed or -2 ** 63 <= v < 0
                unsigned = unsigned or 2 ** 63 <= v < 2 ** 64
                text = (signed and unsigned) or not -2 ** 63 <= v < 2 ** 64
        elif isinstance(v, float):
            has_float = True  # NaN, and an absent key, too
        elif isinstance(v, (datetime.datetime, datetime.timedelta)):
            raise RecordError(f"a record value is a {type(v).__name__} ({v!r}): records hold JSON values")
        else:
            text = True
    if text or has_bool or not (has_int or has_float):
        strings = [str(v) for v in values]  # an object column: None is "None", NaN "nan"
    elif has_float or has_none:  # float64
        strings = ["nan" if v is None else repr(float(v)) for v in values]
    else:  # int64 / uint64
        strings = [str(v) for v in values]
    return [None if s in NA else s for s in strings]


def integer_lexical(text: str) -> str:
    """xsd:integer as morph-kgc writes it: `astype(float).astype(int)`."""
    number = float(text)  # raises ValueError for what is not a number, as pandas does
    if math.isnan(number) or math.isinf(number):
        raise ValueError("Cannot convert non-finite values (NA or inf) to integer")
    if -2.0 ** 63 <= number < 2.0 ** 63:
        return str(int(number))
    import numpy  # out of int64's range numpy's cast decides (x86-64: -2^63); rare, so imported here

    with numpy.errstate(invalid="ignore"):
        return str(int(numpy.array([number]).astype(numpy.int64)[0]))


CONVERSIONS: dict[str, Callable[[str], str]] = {
    XSD + "integer": integer_lexical, XSD + "boolean": str.lower, XSD + "dateTime": lambda s: s.replace(" ", "T")}
_UCHAR = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")


def iri_of(text: str) -> ox.NamedNode:
    try:
        return ox.NamedNode(text)
    except ValueError:
        if "\\" not in text:
            raise
    # morph-kgc writes <text> into N-Quads, whose parser decodes the escapes \u plus 4 hex digits
    # and \U plus 8: the same IRI is made here
    return ox.NamedNode(_UCHAR.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text))


def encoded(text: str) -> str:
    """A template value in an IRI: everything but RFC 3986's unreserved characters percent-encoded
    (falcon's encode_value, which morph-kgc uses)."""
    return quote(text, safe="~")


__all__ = ["CONVERSIONS", "MISSING", "RecordError", "column_strings", "encoded", "integer_lexical", "iri_of"]
