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
    claims = {
        "iss": "hotline-de",
        "aud": "exchange",
        "jti": "6f1c2a9e-4b1d-4c8a-9f3e-2d7b5a1c0e42",
        "iat": 1,
        "case_id": "6f1c2a9e-4b1d-4c8a-9f3e-2d7b5a1c0e42",
        "status": "removed",
        "at": "2026-11-25T10:00:00Z",
    }
    schemas.validate("status", claims)
    with pytest.raises(schemas.SchemaValidationError, match="date-time"):
        schemas.validate("status", {**claims, "at": "yesterday"})


def test_content_hash_lengths_follow_the_algorithm() -> None:
    header = {
        "url_fingerprint": "a" * 64,
        "hosting_country": "DE",
        "legal_status": "baseline",
        "priority": "normal",
        "confirmed_at": "2026-11-25T10:00:00Z",
        "content_hashes": [{"alg": "md5", "value": "b" * 32}],
    }
    schemas.validate("routing-header", header)
    with pytest.raises(schemas.SchemaValidationError):
        schemas.validate("routing-header", {**header, "content_hashes": [{"alg": "md5", "value": "b" * 64}]})


def test_the_routing_header_has_no_place_for_a_url() -> None:
    header = {
        "url_fingerprint": "a" * 64,
        "hosting_country": "DE",
        "legal_status": "baseline",
        "priority": "normal",
        "confirmed_at": "2026-11-25T10:00:00Z",
        "content_hashes": [],
    }
    with pytest.raises(schemas.SchemaValidationError, match="url"):
        schemas.validate("routing-header", {**header, "url": "http://example.com/"})


def _report() -> dict[str, object]:
    return {
        "iss": "hotline-nl",
        "aud": "exchange",
        "jti": "6f1c2a9e-4b1d-4c8a-9f3e-2d7b5a1c0e42",
        "iat": 1,
        "header": {
            "url_fingerprint": "a" * 64,
            "content_hashes": [{"alg": "sha1", "value": "c" * 40}],
            "hosting_country": "DE",
            "legal_status": "baseline",
            "priority": "urgent",
            "confirmed_at": "2026-11-25T10:00:00.123+01:00",
        },
        "body": {"url": "http://x.example/", "commercial": True, "notes": "n"},
    }


MUTATIONS = [
    lambda r: r,
    lambda r: {**r, "extra": 1},
    lambda r: {**r, "iat": -1},
    lambda r: {**r, "iat": "1"},
    lambda r: {**r, "jti": "6F1C2A9E-4B1D-4C8A-9F3E-2D7B5A1C0E42"},
    lambda r: {**r, "header": {**r["header"], "confirmed_at": "2026-02-30T10:00:00Z"}},
    lambda r: {**r, "header": {**r["header"], "confirmed_at": "2026-11-25 10:00:00Z"}},
    lambda r: {**r, "header": {**r["header"], "confirmed_at": "2026-12-31T23:59:60Z"}},
    lambda r: {**r, "header": {**r["header"], "confirmed_at": "0000-01-01T00:00:00Z"}},
    lambda r: {**r, "header": {**r["header"], "content_hashes": [{"alg": "md5", "value": "c" * 40}]}},
    lambda r: {**r, "header": {**r["header"], "content_hashes": [{"alg": "sha256", "value": "c" * 64}] * 2}},
    lambda r: {**r, "iat": 1.0},
    lambda r: {**r, "iat": 10**30},
    lambda r: {**r, "header": {**r["header"], "content_hashes": [{"alg": "sha1", "value": "c" * 41}]}},
    lambda r: {**r, "header": {**r["header"], "content_hashes": [{"alg": "crc", "value": "c" * 40}]}},
    lambda r: {**r, "header": {**r["header"], "priority": None}},
    lambda r: {**r, "body": {**r["body"], "commercial": "yes"}},
    lambda r: {**r, "body": {}},
    lambda r: {k: v for k, v in r.items() if k != "header"},
]


@pytest.mark.parametrize("mutate", MUTATIONS)
def test_fast_path_and_reference_validator_agree(mutate: object) -> None:
    """The compiled fast path must accept exactly what jsonschema (2020-12, formats on) accepts."""
    instance = mutate(_report())  # type: ignore[operator]
    reference_ok = schemas._validator("report").is_valid(instance)
    assert schemas._fast_validator("report").is_valid(instance) == reference_ok


STRICTER = [
    # ECMA-262, as JSON Schema says: ``$`` is the end of the string; Python's ``re`` lets "…\\n" through.
    ("header/content_hashes/0/value", "pattern", {"content_hashes": [{"alg": "sha1", "value": "c" * 40 + "\n"}]}),
    # RFC 3339 lets "t" and "z" be lower case and jsonschema upper-cases before checking; we never did.
    ("header/confirmed_at", "format", {"confirmed_at": "2026-11-25t10:00:00z"}),
]


@pytest.mark.parametrize(("where", "rule", "header"), STRICTER)
def test_where_the_fast_path_is_stricter_validate_refuses(where: str, rule: str, header: dict[str, object]) -> None:
    """The reference accepts these; the fast path refuses them, and so does validate (fail closed)."""
    report = _report()
    instance = {**report, "header": {**report["header"], **header}}  # type: ignore[dict-item]
    assert schemas._validator("report").is_valid(instance)
    assert not schemas._fast_validator("report").is_valid(instance)
    with pytest.raises(schemas.SchemaValidationError, match=f"at {where}: breaks the {rule} rule"):
        schemas.validate("report", instance)
