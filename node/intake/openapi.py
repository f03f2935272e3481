"""The partner API's OpenAPI 3.1 document, served at ``/openapi.json`` on the public surface.

The request bodies are the JSON Schemas the API validates with (``schemas/partner-report.schema.json``
and ``partner-batch``), inlined here, so the document and the checks cannot drift apart; the responses
are written out below. The test suite runs schemathesis against the served document: every operation,
with valid and invalid input, must answer as described here and never with a 500.
"""

from __future__ import annotations

from typing import Any

from rfc3339_validator import validate_rfc3339

from node.partners.models import SCOPES
from schemas import self_contained

PROBLEM_CODES = {
    "missing_token": "No bearer token was sent.",
    "invalid_token": "The token is unknown, expired or revoked.",
    "insufficient_scope": "The token lacks the operation's scope.",
    "partner_suspended": "The partner is suspended.",
    "rate_limited": "Too many requests; see Retry-After.",
    "malformed_json": "The body is not JSON in UTF-8.",
    "unsupported_media_type": "The body is not application/json.",
    "invalid_idempotency_key": "The Idempotency-Key header is not 1 to 200 printable ASCII characters.",
    "idempotency_key_reused": "The Idempotency-Key was used before for a different request.",
    "schema_invalid": "The body does not match the operation's schema.",
    "invalid_report": "The report does not match the partner-report schema.",
    "url_missing": "The URL is empty.",
    "url_too_long": "The URL is longer than 8,192 characters.",
    "unsupported_scheme": "The URL's scheme is not http, https or ftp (javascript:, data:, file: ...).",
    "credentials_in_url": "The URL contains a user name or password.",
    "invalid_url": "The URL cannot be canonicalised (no host, a host no browser accepts ...).",
    "detected_in_future": "detected_at is in the future.",
    "invalid_parameter": "A query parameter is not valid.",
    "unknown_report": "No report of this partner has this id.",
}


def check_date_time(value: str) -> None:
    """Raises ValueError unless ``value`` is an RFC 3339 date-time (the ``date-time`` format)."""
    if not validate_rfc3339(value):
        raise ValueError(value)


def _problem_response(description: str, *, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if headers:
        response["headers"] = headers
    return response


_AUTH_ERRORS = {
    "401": _problem_response(
        "No token, or a token that is unknown, expired or revoked (`missing_token`, `invalid_token`).",
        headers={"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
    ),
    "403": _problem_response(
        "The token lacks the scope, or the partner is suspended (`insufficient_scope`, `partner_suspended`).",
        headers={"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
    ),
    "429": _problem_response(
        "Too many requests (`rate_limited`).",
        headers={"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}, "required": True}},
    ),
}

_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Any unique string of yours (a UUID is best). A retry with the same key and the same body gets the "
        "first answer again (with `Idempotent-Replayed: true`) and stores nothing new; the same key with a "
        "different body is refused (`idempotency_key_reused`). Keys are kept for 24 hours."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[\\x21-\\x7e]+$"},
}

_WRITE_ERRORS = {
    "400": _problem_response(
        "The body is not JSON, or a header is invalid (`malformed_json`, `invalid_idempotency_key`)."
    ),
    **_AUTH_ERRORS,
    "413": _problem_response("The body is larger than the node accepts."),
    "415": _problem_response("The body is not `application/json` (`unsupported_media_type`)."),
}


def _time_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", "format": "date-time"},
    }


def document(*, service_name: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the partner API."""
    report_status = {"enum": ["received", "assessed", "action_taken", "closed"]}
    outcome = {
        "type": "object",
        "required": ["index", "outcome"],
        "properties": {
            "index": {"type": "integer", "minimum": 0, "description": "The item's position in the batch."},
            "outcome": {"enum": ["accepted", "duplicate", "refused"]},
            "id": {"type": "string", "description": "The report's id (for a duplicate: the earlier report's)."},
            "external_id": {"type": "string"},
            "code": {"type": "string", "description": "Why it was refused (see Problem.code)."},
            "detail": {"type": "string"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{service_name}: partner API",
            "version": "1",
            "description": (
                "Platforms and trusted flaggers report web addresses of child sexual abuse material to this "
                "hotline. Authenticate with OAuth2 client credentials at `/oauth/token` (the hotline "
                "registers you and gives you a client id and secret), then call the API with the bearer "
                "token. Send web addresses, never the material itself. Each report gets its own outcome: "
                "accepted, a duplicate of a report of yours of the same location that is still open, or "
                "refused with a code. Errors are RFC 9457 problem documents with a machine-readable `code`."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"partnerOAuth": []}],
        "paths": {
            "/oauth/token": {
                "post": {
                    "operationId": "issueToken",
                    "summary": "Exchange client credentials for a bearer token (RFC 6749 section 4.4)",
                    "security": [],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "required": ["grant_type"],
                                    "properties": {
                                        "grant_type": {"const": "client_credentials"},
                                        "scope": {
                                            "type": "string",
                                            "description": "Space-separated; default: every scope granted.",
                                        },
                                        "client_id": {"type": "string", "description": "Or use HTTP Basic."},
                                        "client_secret": {"type": "string", "description": "Or use HTTP Basic."},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "A bearer token.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Token"}}},
                        },
                        "400": {
                            "description": "An invalid request (RFC 6749 section 5.2).",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}},
                        },
                        "401": {
                            "description": "The client could not be authenticated (`invalid_client`).",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}},
                        },
                        "413": _problem_response("The body is larger than the node accepts."),
                        "429": _AUTH_ERRORS["429"],
                    },
                }
            },
            "/api/v1/reports": {
                "post": {
                    "operationId": "submitReport",
                    "summary": "Submit one report",
                    "security": [{"partnerOAuth": ["reports:write"]}],
                    "parameters": [_IDEMPOTENCY_KEY],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PartnerReport"}}},
                    },
                    "responses": {
                        "201": {
                            "description": "Accepted: it is in the hotline's queue.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Submitted"}}},
                        },
                        "200": {
                            "description": (
                                "A duplicate of an open report of yours of the same location; `id` is that report's."
                            ),
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Submitted"}}},
                        },
                        **_WRITE_ERRORS,
                        "422": _problem_response(
                            "Refused: `invalid_report` (schema), `url_missing`, `url_too_long`, `unsupported_scheme`, "
                            "`credentials_in_url`, `invalid_url`, `detected_in_future`, `idempotency_key_reused`."
                        ),
                    },
                },
                "get": {
                    "operationId": "listReports",
                    "summary": "Your reports and their status, oldest first, a page at a time",
                    "security": [{"partnerOAuth": ["reports:read"]}],
                    "parameters": [
                        _time_parameter("since", "Received at or after this time."),
                        _time_parameter("until", "Received before this time."),
                        _time_parameter("changed_since", "Status changed at or after this time (for polling)."),
                        {
                            "name": "page",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 1},
                        },
                        {
                            "name": "per_page",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "One page of your reports.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReportPage"}}},
                        },
                        "400": _problem_response("A query parameter is not valid (`invalid_parameter`)."),
                        **_AUTH_ERRORS,
                    },
                },
            },
            "/api/v1/reports/batch": {
                "post": {
                    "operationId": "submitBatch",
                    "summary": "Submit up to 1,000 reports; each gets its own outcome",
                    "security": [{"partnerOAuth": ["reports:write"]}],
                    "parameters": [_IDEMPOTENCY_KEY],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PartnerBatch"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "One outcome per item, in order; one bad item never sinks the batch.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchResult"}}},
                        },
                        **_WRITE_ERRORS,
                        "422": _problem_response(
                            "The body is not a batch (`schema_invalid`: not an object with 1 to 1,000 objects in "
                            "`reports`), or `idempotency_key_reused`."
                        ),
                    },
                }
            },
            "/api/v1/reports/{report_id}": {
                "get": {
                    "operationId": "getReport",
                    "summary": "One of your reports and its status",
                    "security": [{"partnerOAuth": ["reports:read"]}],
                    "parameters": [{"name": "report_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {
                            "description": "The report.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReportStatus"}}},
                        },
                        "404": _problem_response("No report of yours has this id (`unknown_report`)."),
                        **_AUTH_ERRORS,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "partnerOAuth": {
                    "type": "oauth2",
                    "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": dict(SCOPES)}},
                }
            },
            "schemas": {
                "PartnerReport": self_contained("partner-report"),
                "PartnerBatch": self_contained("partner-batch"),
                "Submitted": {
                    "type": "object",
                    "required": ["id", "outcome", "status"],
                    "properties": {
                        "id": {"type": "string"},
                        "outcome": {"enum": ["accepted", "duplicate"]},
                        "external_id": {"type": "string"},
                        "status": report_status,
                    },
                },
                "BatchOutcome": outcome,
                "BatchResult": {
                    "type": "object",
                    "required": ["results", "accepted", "duplicates", "refused"],
                    "properties": {
                        "results": {"type": "array", "items": {"$ref": "#/components/schemas/BatchOutcome"}},
                        "accepted": {"type": "integer", "minimum": 0},
                        "duplicates": {"type": "integer", "minimum": 0},
                        "refused": {"type": "integer", "minimum": 0},
                    },
                },
                "ReportStatus": {
                    "type": "object",
                    "required": ["id", "url", "status", "received_at", "status_changed_at"],
                    "properties": {
                        "id": {"type": "string"},
                        "external_id": {"type": ["string", "null"]},
                        "url": {"type": "string"},
                        "status": report_status,
                        "received_at": {"type": "string", "format": "date-time"},
                        "status_changed_at": {"type": "string", "format": "date-time"},
                    },
                },
                "ReportPage": {
                    "type": "object",
                    "required": ["items", "page", "per_page", "total", "pages"],
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/ReportStatus"}},
                        "page": {"type": "integer", "minimum": 1},
                        "per_page": {"type": "integer", "minimum": 1},
                        "total": {"type": "integer", "minimum": 0},
                        "pages": {"type": "integer", "minimum": 1},
                    },
                },
                "Token": {
                    "type": "object",
                    "required": ["access_token", "token_type", "expires_in"],
                    "properties": {
                        "access_token": {"type": "string"},
                        "token_type": {"const": "Bearer"},
                        "expires_in": {"type": "integer", "minimum": 1},
                        "scope": {"type": "string"},
                    },
                },
                "OAuthError": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
                },
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail", "code"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "code": {
                            "type": "string",
                            "description": " ".join(f"`{k}`: {v}" for k, v in PROBLEM_CODES.items()),
                        },
                    },
                },
            },
        },
    }
