"""The JSON Schemas (2020-12) of every network message, and the one validator every boundary uses.

Schemas are files beside this module (``<name>.schema.json``) so that other hotlines can use them as they
are. They refer to each other by ``$id`` (``urn:hotline-net:schema:v1:<name>``), resolved here from the
same folder and never over the network. Formats (``date-time``) are checked: without a format checker
``jsonschema`` silently accepts any string.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.validators import Draft202012Validator
from referencing import Registry, Resource

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
    "duplicate",
    "directory",
    "error",
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
    return Draft202012Validator(
        schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def validate(name: str, instance: Any) -> None:
    """Validate ``instance`` against schema ``name``.

    Raises:
        SchemaValidationError: naming the first failing location and why.
    """
    error = jsonschema.exceptions.best_match(_validator(name).iter_errors(instance))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
        raise SchemaValidationError(f"{name}: at {where}: {message}")
