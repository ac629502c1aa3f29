"""Check a parsed document against the strict JSON Schema of its ai4-metadata generation.

The schemas live in mappings/ beside the RML mappings they guard: they fix the structure,
types, URL/date/DOI formats and lengths that the mapping relies on. Keys outside the schema are
reported as warnings (and still carried where the mapping has a place for them).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from .issues import Issue, format_path
from .values import with_value_issues

if TYPE_CHECKING:  # jsonschema is imported where a validator is made (not at the command line's start)
    import jsonschema

Generation = Literal["v1", "v2"]

_RULE_NAMES = {
    "pattern": "format", "format": "format", "type": "type", "required": "required",
    "enum": "allowed-values", "uniqueItems": "unique", "minimum": "minimum", "maxLength": "max-length",
    "minLength": "non-empty", "additionalProperties": "unknown-key", "const": "allowed-values",
}


@cache
def load_schema(generation: Generation) -> dict[str, Any]:
    text = resources.files("ai4kg").joinpath(f"mappings/ai4-metadata-{generation}.schema.json").read_text("utf-8")
    return json.loads(text)


@cache
def _validator(generation: Generation) -> jsonschema.protocols.Validator:
    return validator_of(load_schema(generation))


def validator_of(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """A validator of the schema's own draft that checks formats (dates, date-times)."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def detect_generation(document: dict[str, Any]) -> Generation:
    """V2 documents declare metadata_version; legacy metadata.json files do not."""
    return "v2" if "metadata_version" in document else "v1"


def _message(error: jsonschema.ValidationError) -> tuple[str, str]:
    rule = _RULE_NAMES.get(str(error.validator), str(error.validator))
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return "required", f"the field '{missing}' is required"
    if error.validator in ("pattern", "format"):
        what = schema.get("description", f"a value matching {error.validator_value}")
        if error.validator == "format":
            what = {"date": "a real calendar date YYYY-MM-DD",
                    "date-time": "an RFC 3339 date and time, e.g. 2025-05-09T08:37:26Z"}.get(str(error.validator_value), what)
        return "format", f"must be {what}"
    if error.validator == "type":
        return "type", f"must be of type {error.validator_value}, not {type(error.instance).__name__}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return "allowed-values", f"must be one of: {allowed}"
    if error.validator == "maxLength":
        return rule, f"is {len(error.instance):,} characters; at most {error.validator_value:,} are allowed"
    if error.validator == "minLength":
        return rule, "must not be empty"
    if error.validator == "minimum":
        return rule, f"must be at least {error.validator_value}"
    if error.validator == "uniqueItems":
        return rule, "lists a value more than once"
    return rule, error.message


def check_document(document: dict[str, Any], generation: Generation) -> list[Issue]:
    """All issues of the document, errors and warnings, in document order: the schema's, and the
    rules every value meets (metadata.values: control characters, infinity, credentials in URLs)."""
    issues = with_value_issues(schema_issues(_validator(generation), document, f"ai4-metadata {_label(generation)}"),
                               document)
    if generation == "v1":
        issues.append(Issue("", "legacy-format",
                            "legacy V1 metadata (metadata.json); `ai4kg migrate FILE` writes the ai4-metadata 2.x form",
                            None, "warning"))
    return sorted(issues, key=lambda i: (i.severity != "error", i.field))


def schema_issues(validator: jsonschema.protocols.Validator, document: Any, format_name: str,
                  prefix: tuple[Any, ...] = ()) -> list[Issue]:
    """Every issue the validator finds, named by field path (under `prefix`): errors, and a warning
    per key that a closed object of the schema does not know (`format_name` says whose field it is not)."""
    issues: list[Issue] = []
    for error in validator.iter_errors(document):
        path = [*prefix, *error.absolute_path]
        if error.validator == "additionalProperties":
            known = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
            for key in error.instance:
                if key not in known:
                    issues.append(Issue(format_path([*path, key]), "unknown-key",
                                        f"'{key}' is not a field of {format_name}", None, "warning"))
            continue
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            path = [*path, missing] if missing else path
            issues.append(Issue(format_path(path), "required", "this field is required", None))
            continue
        rule, message = _message(error)
        issues.append(Issue(format_path(path), rule, message, error.instance))
    # One message per field and rule: a date can break both its pattern and its calendar check.
    return list({(i.field, i.rule, i.severity): i for i in issues}.values())


def _label(generation: Generation) -> str:
    return "2.x" if generation == "v2" else "1.0.0"
