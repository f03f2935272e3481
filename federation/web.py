"""The network surface's edge: peer certificates checked on every request, and one JSON error format.

Every endpoint of the network surface declares :class:`PeerCertificate` (service.policies): the TLS
layer has already checked that the client certificate chains to the network CA and is within its
validity; the policy refuses revoked certificates and roles the endpoint does not accept, lets the
service refuse a peer that may not call now (the exchange: a member that is unknown or suspended; a node:
anyone but its own exchange), records the peer for :func:`current_peer`, and counts the request against
the peer's rate limit (federation.ratelimit).

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
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from certs.identity import NetworkIdentity, load_pem_certificate
from federation.errors import InternalError, ProtocolError
from federation.ratelimit import RateLimits
from federation.signing import json_problem
from service import policies

log = logging.getLogger(__name__)

PeerAuthorizer = Callable[[NetworkIdentity], object]
"""Raises if a peer with a valid certificate may not call this service now."""

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


@dataclass(frozen=True)
class PeerCertificate:
    """A network peer holding one of ``roles``, authorized by the service (``authorize_peer``)."""

    roles: tuple[str, ...]

    def check(self) -> None:
        peer = self.verify()
        authorize: PeerAuthorizer | None = current_app.extensions.get("authorize_peer")
        if authorize is not None:
            authorize(peer)
        g.peer = g.principal = peer
        limits: RateLimits | None = current_app.extensions.get("rate_limits")
        if limits is not None:
            limits.check(request.blueprint or "default", peer.member_id)

    def verify(self) -> NetworkIdentity:
        """The peer's verified identity, holding one of the roles (the TLS layer checked the chain)."""
        unverified_pem = request.environ.get("SSL_CLIENT_CERT")
        if not unverified_pem or request.environ.get("SSL_CLIENT_VERIFY") != "SUCCESS":
            raise ClientCertificateRequiredError("a client certificate issued by the network CA is required")
        certificate = load_pem_certificate(unverified_pem.encode("ascii"))
        peer = current_app.extensions["hotline"].trust.verify_certificate(certificate, at=dt.datetime.now(dt.UTC))
        if peer.role not in self.roles:
            raise ForbiddenError(f"this endpoint is for {' or '.join(self.roles)} certificates")
        return peer

    def describe(self) -> str:
        return f"peer certificate ({', '.join(self.roles)})"


@dataclass(frozen=True)
class OwnCertificate(PeerCertificate):
    """This service's own certificate only (the node's local operator API, until people have accounts)."""

    roles: tuple[str, ...] = ("member", "exchange")

    def check(self) -> None:
        peer = self.verify()
        if peer.member_id != current_app.extensions["hotline"].member_id:
            raise ForbiddenError("this endpoint is for this service's own operators")
        g.peer = g.principal = peer

    def describe(self) -> str:
        return "this service's own certificate"


def current_peer() -> NetworkIdentity:
    """The authenticated peer of this request."""
    peer: NetworkIdentity = g.peer
    return peer


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


def init_app(app: Flask, *, authorize_peer: PeerAuthorizer, rate_limits: dict[str, str] | None = None) -> None:
    """Make ``app`` a network surface: policies checked at the edge, per-peer limits, JSON errors.

    ``rate_limits`` maps a blueprint name to its limit (``"100/second"``); others get ``RATE_LIMIT_DEFAULT``.
    """
    app.extensions["rate_limits"] = RateLimits(
        app.config["RATE_LIMIT_STORAGE_URI"], rate_limits or {}, app.config["RATE_LIMIT_DEFAULT"]
    )
    app.extensions["authorize_peer"] = authorize_peer
    policies.init_app(app, unmatched=PeerCertificate(roles=("member", "exchange")))
    app.register_error_handler(ProtocolError, _protocol_error)
    app.register_error_handler(InternalError, _internal_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)


def json_body() -> Any:
    """The request body parsed as JSON.

    Raises:
        ProtocolError: ``malformed_json`` when it is not.
    """
    try:
        return json.loads(request.get_data(cache=False))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError(f"body is not valid JSON: {json_problem(exc)}", code="malformed_json") from exc
