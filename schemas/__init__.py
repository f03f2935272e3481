"""The JSON Schemas (2020-12) of every network message, and the one validator every boundary uses.

Besides the network's messages, the folder holds the request bodies of the node's partner API
(``partner-report``, ``partner-batch``): they share the network's definitions (content hashes) and are
served inside the API's OpenAPI document.

Schemas are files beside this module (``<name>.schema.json``) so that other hotlines can use them as they
are. They refer to each other by ``$id`` (``urn:hotline-net:schema:v1:<name>``), resolved here from the
same folder and never over the network. Formats (``date-time``) are checked: without a format checker
``jsonschema`` silently accepts any string.

Validation runs on every message at every hop, so it has a fast path: each schema, with its references
inlined, is compiled by ``jsonschema-rs`` (in Rust: 4-7 µs for a report where ``fastjsonschema`` took
85-120 µs and ``jsonschema`` about ten times that), with the RFC 3339 checker the reference uses for
``date-time``. Only when the fast path refuses an instance does ``jsonschema`` walk it again, to name
the first failing location precisely. The two agree on every schema's valid and invalid examples (the
test suite checks it), except where the fast path is deliberately stricter and such an instance is
refused: ``pattern`` follows ECMA-262 as JSON Schema says, so ``$`` does not match before a trailing
newline (Python's ``re``, which ``jsonschema`` uses, lets ``"…\n"`` through); and a ``date-time`` must
write "T" and "Z" in upper case (``jsonschema`` upper-cases the value before checking it).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema.validators import Draft202012Validator
from referencing import Registry, Resource
from rfc3339_validator import validate_rfc3339

from federation.errors import ProtocolError

SCHEMA_NAMES = (
    "common",
    "jws-header",
    "transaction",
    "transaction-receipt",
    "routing-header",
    "report",
    "receipt",
    "status",
    "note",
    "duplicate",
    "refusal",
    "material",
    "reroute",
    "directory",
    "audit-checkpoint",
    "police-referral",
    "error",
    "partner-report",
    "partner-batch",
    "lookup-request",
    "lookup-answer",
)
_URN = "urn:hotline-net:schema:v1:"


class SchemaValidationError(ProtocolError):
    """A message does not match its schema."""

    status = 422
    code = "schema_invalid"


def load_schema(name: str) -> dict[str, Any]:
    """Return the parsed schema file ``<name>.schema.json``."""
    text = resources.files(__name__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _registry() -> Registry:
    resources_ = [(f"{_URN}{name}", Resource.from_contents(load_schema(name))) for name in SCHEMA_NAMES]
    return Registry().with_resources(resources_)


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _inline(node: Any, base: str) -> Any:
    """Return ``node`` with every ``$ref`` replaced by what it points at (our schemas are not recursive)."""
    if isinstance(node, list):
        return [_inline(item, base) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        reference = node["$ref"]
        document, _, pointer = reference.partition("#")
        document = document or base
        target: Any = load_schema(document.removeprefix(_URN))
        for part in filter(None, pointer.split("/")):
            target = target[part]
        rest = {key: value for key, value in node.items() if key != "$ref"}
        return _inline({**target, **rest} if rest else target, document)
    return {key: _inline(value, base) for key, value in node.items() if key not in ("$defs", "$id", "$schema")}


def self_contained(name: str) -> dict[str, Any]:
    """Schema ``name`` with every reference inlined, for documents that embed it (the OpenAPI documents)."""
    inlined: dict[str, Any] = _inline(load_schema(name), f"{_URN}{name}")
    return inlined


@cache
def _fast_validator(name: str) -> Any:
    """``name`` with its references inlined, compiled once by jsonschema-rs (``date-time`` checked by the
    reference's RFC 3339 checker, without the reference's upper-casing)."""
    schema = _inline(load_schema(name), f"{_URN}{name}")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return jsonschema_rs.validator_for(schema, validate_formats=True, formats={"date-time": validate_rfc3339})


def validate(name: str, instance: Any) -> None:
    """Validate ``instance`` against schema ``name``.

    Raises:
        SchemaValidationError: naming the first failing location and the rule it breaks. The message
            never quotes a value from the instance: a refused report may still carry a live abuse URL, and
            error messages end up in logs and in the peer's hands.
    """
    fast = _fast_validator(name)
    if fast.is_valid(instance):
        return
    error = jsonschema.exceptions.best_match(_validator(name).iter_errors(instance))
    if error is None:  # The fast path is stricter here (ECMA-262 patterns, date-times); refuse all the same.
        fast_error = next(iter(fast.iter_errors(instance)))
        where = "/".join(str(part) for part in fast_error.instance_path) or "(top level)"
        rule = fast_error.schema_path[-1] if fast_error.schema_path else "schema"
        raise SchemaValidationError(f"{name}: at {where}: breaks the {rule} rule")
    where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
    raise SchemaValidationError(f"{name}: at {where}: {_rule_text(error)}")


_PLAIN_NAME = re.compile(r"^[a-z_]{1,40}$")


def _rule_text(error: jsonschema.ValidationError) -> str:
    """Say which rule the instance breaks, from the schema's side only (never the instance's values)."""
    rule, expected = error.validator, error.validator_value
    instance = error.instance
    if rule == "required" and isinstance(instance, dict):
        missing = [str(key) for key in expected if key not in instance]
        return f"missing required {'property' if len(missing) == 1 else 'properties'} {', '.join(missing)}"
    if rule == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [key for key in instance if key not in allowed]
        names = [key for key in extra if isinstance(key, str) and _PLAIN_NAME.match(key)]
        shown = f" ({', '.join(sorted(names)[:5])})" if names and len(names) == len(extra) else ""
        return f"has {'a property' if len(extra) == 1 else 'properties'} the schema does not allow{shown}"
    texts = {
        "type": lambda: f"must be of type {expected if isinstance(expected, str) else ' or '.join(expected)}",
        "enum": lambda: f"must be one of {', '.join(json.dumps(value) for value in expected)}",
        "const": lambda: f"must be {json.dumps(expected)}",
        "pattern": lambda: f"does not match the pattern {expected}",
        "format": lambda: f"is not a valid {expected}",
        "maxLength": lambda: f"is longer than {expected} characters",
        "minLength": lambda: f"is shorter than {expected} characters",
        "maxItems": lambda: f"has more than {expected} items",
        "minItems": lambda: f"has fewer than {expected} items",
        "maximum": lambda: f"is greater than {expected}",
        "minimum": lambda: f"is less than {expected}",
        "uniqueItems": lambda: "has repeated items",
    }
    text = texts.get(str(rule))
    return text() if text is not None else f"does not match the {rule} rule"
