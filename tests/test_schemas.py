"""Every schema is valid 2020-12, and formats are really checked (jsonschema skips them silently otherwise)."""

from __future__ import annotations

import pytest
from jsonschema.validators import Draft202012Validator

import schemas


@pytest.mark.parametrize("name", schemas.SCHEMA_NAMES)
def test_schema_is_valid_2020_12(name: str) -> None:
    schema = schemas.load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"urn:hotline-net:schema:v1:{name}"


def test_date_time_format_is_enforced() -> None:
    claims = {"iss": "hotline-de", "aud": "exchange", "jti": "6f1c2a9e-4b1d-4c8a-9f3e-2d7b5a1c0e42", "iat": 1,
              "case_id": "6f1c2a9e-4b1d-4c8a-9f3e-2d7b5a1c0e42", "status": "removed", "at": "2026-11-25T10:00:00Z"}
    schemas.validate("status", claims)
    with pytest.raises(schemas.SchemaValidationError, match="date-time"):
        schemas.validate("status", {**claims, "at": "yesterday"})


def test_content_hash_lengths_follow_the_algorithm() -> None:
    header = {"url_fingerprint": "a" * 64, "hosting_country": "DE", "legal_status": "baseline", "priority": "normal",
              "confirmed_at": "2026-11-25T10:00:00Z", "content_hashes": [{"alg": "md5", "value": "b" * 32}]}
    schemas.validate("routing-header", header)
    with pytest.raises(schemas.SchemaValidationError):
        schemas.validate("routing-header", {**header, "content_hashes": [{"alg": "md5", "value": "b" * 64}]})


def test_the_routing_header_has_no_place_for_a_url() -> None:
    header = {"url_fingerprint": "a" * 64, "hosting_country": "DE", "legal_status": "baseline", "priority": "normal",
              "confirmed_at": "2026-11-25T10:00:00Z", "content_hashes": []}
    with pytest.raises(schemas.SchemaValidationError, match="url"):
        schemas.validate("routing-header", {**header, "url": "http://example.com/"})
