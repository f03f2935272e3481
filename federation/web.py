"""The HTTP edge both services share: peer authentication on by default, and one error format.

Every request is authenticated before any view runs: the TLS layer has already checked that the client
certificate chains to the network CA and is within its validity; here we refuse revoked certificates
and read the member id, which views receive through :func:`current_peer`. A view that must be reachable
without a network certificate says so with :func:`public`, visibly, at its definition.

After authentication each request is counted against its peer's rate limit (federation.ratelimit).

Every refusal is JSON ``{"error": code, "message": text}`` (schemas/error.schema.json). An
:class:`~federation.errors.InternalError` (a CRL file that cannot be read, say) is logged in full and
answered with its generic public code and message, never with a path; anything else that is not a
:class:`ProtocolError` is logged with its traceback and answered with a generic 500.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from certs.identity import NetworkIdentity, load_pem_certificate
from federation.errors import InternalError, ProtocolError
from federation.ratelimit import RateLimits
from federation.signing import json_problem

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


class ClientCertificateRequiredError(ProtocolError):
    status = 401
    code = "client_certificate_required"


class ForbiddenError(ProtocolError):
    status = 403
    code = "forbidden"


def public(view: F) -> F:
    """Mark a view as reachable without peer authentication."""
    view.public = True  # type: ignore[attr-defined]
    return view


def current_peer() -> NetworkIdentity:
    """The authenticated peer of this request."""
    peer: NetworkIdentity = g.peer
    return peer


def require_role(*roles: str) -> Callable[[F], F]:
    """Allow only peers whose certificate carries one of ``roles``."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if current_peer().role not in roles:
                raise ForbiddenError(f"this endpoint is for {' or '.join(roles)} certificates")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def _authenticate() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, "public", False):
        return
    unverified_pem = request.environ.get("SSL_CLIENT_CERT")
    if not unverified_pem or request.environ.get("SSL_CLIENT_VERIFY") != "SUCCESS":
        raise ClientCertificateRequiredError("a client certificate issued by the network CA is required")
    certificate = load_pem_certificate(unverified_pem.encode("ascii"))
    trust = current_app.extensions["hotline"].trust
    g.peer = trust.verify_certificate(certificate, at=dt.datetime.now(dt.UTC))
    limits: RateLimits | None = current_app.extensions.get("rate_limits")
    if limits is not None:
        limits.check(request.blueprint or "default", g.peer.member_id)


def _protocol_error(error: ProtocolError) -> Any:
    response = jsonify(error.to_dict())
    response.status_code = error.status
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _internal_error(error: InternalError) -> Any:
    log.error("internal error on %s %s: %s", request.method, request.path, error, exc_info=error)
    response = jsonify({"error": error.public_code, "message": error.public_message})
    response.status_code = error.public_status
    response.headers["Retry-After"] = "5"
    return response


def _http_error(error: HTTPException) -> Any:
    status = error.code or 500
    code = _HTTP_CODES.get(status, "http_error")
    message = "request body is larger than this service accepts" if status == 413 else (error.description or "")
    return jsonify({"error": code, "message": message}), status


def _unexpected_error(error: Exception) -> Any:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return jsonify({"error": "internal_error", "message": "internal error; it has been logged"}), 500


def init_app(app: Flask, *, rate_limits: dict[str, str] | None = None) -> None:
    """Authenticate every request, count it against its peer's limits, and render every error as JSON.

    ``rate_limits`` maps a blueprint name to its limit (``"100/second"``); others get ``RATE_LIMIT_DEFAULT``.
    """
    app.extensions["rate_limits"] = RateLimits(
        app.config["RATE_LIMIT_STORAGE_URI"], rate_limits or {}, app.config["RATE_LIMIT_DEFAULT"]
    )
    app.before_request(_authenticate)
    app.register_error_handler(ProtocolError, _protocol_error)
    app.register_error_handler(InternalError, _internal_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)


def require_own_certificate(view: F) -> F:
    """Allow only the service's own certificate: the local operator of a node, for now."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_peer().member_id != current_app.extensions["hotline"].member_id:
            raise ForbiddenError("this endpoint is for this service's own operators")
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def json_body() -> Any:
    """The request body parsed as JSON.

    Raises:
        ProtocolError: ``malformed_json`` when it is not.
    """
    try:
        return json.loads(request.get_data(cache=False))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError(f"body is not valid JSON: {json_problem(exc)}", code="malformed_json") from exc
