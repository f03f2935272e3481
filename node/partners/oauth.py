"""OAuth2 for partners: authlib's authorization server (client credentials) and the API's bearer policy.

The token endpoint (``POST /oauth/token``) is authlib's ``AuthorizationServer`` with one grant, client
credentials (RFC 6749 section 4.4), with the client authenticating by HTTP Basic or by form fields. Its
answers are RFC 6749's (``{"access_token", "token_type": "Bearer", "expires_in", "scope"}``, errors as
``{"error", "error_description"}``) because that is what every OAuth2 client library expects.

Every API endpoint declares :class:`PartnerAccess` with the scope it needs. The policy asks authlib's
``ResourceProtector`` for the bearer token, in order:

1. an ``Authorization: Bearer`` header is present (else 401 ``missing_token``);
2. the token's SHA-256 names a token issued here (else 401 ``invalid_token``);
3. it has not expired and was not revoked (else 401 ``invalid_token``; suspending a partner or giving it a
   new secret revokes its tokens);
4. its scope includes the endpoint's (else 403 ``insufficient_scope``);
5. its partner is active now (else 403 ``partner_suspended``: a suspension takes effect at once);
6. the partner is within its request rate (else 429 ``rate_limited``).

Errors from the API are ``application/problem+json`` with these codes and RFC 6750's ``WWW-Authenticate``.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, MissingAuthorizationError, TokenMixin
from authlib.oauth2.rfc6749.errors import UnauthorizedClientError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6750 import BearerTokenValidator
from flask import Flask, current_app, g

from federation.errors import ProtocolError
from federation.ratelimit import RateLimits
from node.db import db
from node.partners.models import SCOPES, Partner, PartnerToken
from node.partners.services import PartnerBook, actor_of
from service.clock import now as clock

log = logging.getLogger(__name__)

TOKEN_PREFIX = "hpt_"  # noqa: S105 - a prefix that marks our tokens, not a secret.
REALM = "partner-api"


def _token_refused(partner: Partner, reason: str) -> None:
    """A known partner was refused a token: the audit trail says so (the view commits it)."""
    PartnerBook(db.session).audit.record(
        actor_of(partner), "partner.token_refused", "partner", partner.id, now=clock(), reason=reason
    )


class PartnerClient(ClientMixin):  # type: ignore[misc]
    """A partner as authlib sees an OAuth2 client: confidential, client credentials only."""

    def __init__(self, partner: Partner) -> None:
        self.partner = partner

    def get_client_id(self) -> str:
        return self.partner.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = self.partner.scope_list
        if not scope:
            return " ".join(allowed)
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        book = PartnerBook(db.session)
        ok = book.authenticate(self.partner.client_id, client_secret) is not None
        if not ok:
            book.audit.record(
                actor_of(self.partner),
                "partner.token_refused",
                "partner",
                self.partner.id,
                now=clock(),
                reason="wrong secret",
            )
        return ok

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class PartnerCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.partner.active:
            PartnerBook(db.session).audit.record(
                actor_of(client.partner),
                "partner.token_refused",
                "partner",
                client.partner.id,
                now=clock(),
                reason="suspended",
            )
            raise UnauthorizedClientError(description="this partner is suspended; ask the hotline to reinstate it")
        self.request.client = client
        self.validate_requested_scope()
        if not client.get_allowed_scope(self.request.payload.scope):
            from authlib.oauth2.rfc6749.errors import InvalidScopeError

            raise InvalidScopeError(description="none of the requested scopes is granted to this partner")


@dataclass
class IssuedToken(TokenMixin):  # type: ignore[misc]
    """A stored token as authlib's validator sees it."""

    token: PartnerToken
    partner: Partner
    now: dt.datetime

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.partner.client_id)

    def get_scope(self) -> str:
        return self.token.scope

    def get_expires_in(self) -> int:
        return int((self.token.expires_at - self.token.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return self.token.expires_at <= self.now

    def is_revoked(self) -> bool:
        return self.token.revoked_at is not None


class PartnerTokenValidator(BearerTokenValidator):  # type: ignore[misc]
    def authenticate_token(self, token_string: str) -> IssuedToken | None:
        if not token_string.startswith(TOKEN_PREFIX) or len(token_string) > 200:
            return None
        now = clock()
        found = PartnerBook(db.session).token(token_string, now=now)
        if found is None:
            return None
        token, partner = found
        return IssuedToken(token, partner, now)


def _query_client(client_id: str) -> PartnerClient | None:
    if not isinstance(client_id, str) or len(client_id) > 64:
        return None
    partner = db.session.query(Partner).filter_by(client_id=client_id).one_or_none()
    return PartnerClient(partner) if partner is not None else None


def _save_token(token: dict[str, Any], request: Any) -> None:
    partner = request.client.partner
    PartnerBook(db.session).issue(
        partner,
        access_token=token["access_token"],
        scope=token.get("scope", ""),
        expires_in=token["expires_in"],
        now=clock(),
    )


def init_app(app: Flask) -> None:
    """The token endpoint's server and the API's token checks, configured from the node's settings."""
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"client_credentials": app.config["PARTNER_TOKEN_SECONDS"]}
    app.config["OAUTH2_ACCESS_TOKEN_GENERATOR"] = lambda *args, **kwargs: TOKEN_PREFIX + secrets.token_urlsafe(32)
    app.config["OAUTH2_SCOPES_SUPPORTED"] = list(SCOPES)
    server = AuthorizationServer()
    server.init_app(app, query_client=_query_client, save_token=_save_token)
    server.register_grant(PartnerCredentialsGrant)
    protector = ResourceProtector()
    protector.register_token_validator(PartnerTokenValidator(realm=REALM))
    app.extensions["partner_oauth"] = server
    app.extensions["partner_protector"] = protector
    app.extensions["partner_limits"] = RateLimits(
        app.config["RATE_LIMIT_STORAGE_URI"], {}, default=app.config["PARTNER_RATE_LIMIT"]
    )


def authorization_server() -> AuthorizationServer:
    server: AuthorizationServer = current_app.extensions["partner_oauth"]
    return server


class TokenRefusedError(ProtocolError):
    """The bearer token does not allow this call (401 or 403, with RFC 6750's ``WWW-Authenticate``)."""

    def __init__(self, message: str, *, code: str, status: int, challenge: str) -> None:
        super().__init__(message, code=code, status=status)
        self.challenge = challenge


@dataclass(frozen=True)
class PartnerPrincipal:
    partner: Partner
    token: PartnerToken

    @property
    def actor(self) -> str:
        return actor_of(self.partner)


@dataclass(frozen=True)
class PartnerAccess:
    """An API endpoint for partners whose token carries ``scope``."""

    scope: str

    def check(self) -> None:
        protector: ResourceProtector = current_app.extensions["partner_protector"]
        try:
            issued: IssuedToken = protector.acquire_token()
        except MissingAuthorizationError:
            raise TokenRefusedError(
                "send a bearer token from /oauth/token in the Authorization header",
                code="missing_token",
                status=401,
                challenge=f'Bearer realm="{REALM}"',
            ) from None
        except OAuth2Error:
            raise TokenRefusedError(
                "the token is expired, revoked or unknown: get a new one from /oauth/token",
                code="invalid_token",
                status=401,
                challenge=f'Bearer realm="{REALM}", error="invalid_token"',
            ) from None
        # From here on the caller is a known partner: its refusals go into the audit trail too.
        g.principal = PartnerPrincipal(issued.partner, issued.token)
        if self.scope not in issued.get_scope().split():
            raise TokenRefusedError(
                f"this token does not carry the {self.scope} scope",
                code="insufficient_scope",
                status=403,
                challenge=f'Bearer realm="{REALM}", error="insufficient_scope", scope="{self.scope}"',
            )
        if not issued.partner.active:
            raise TokenRefusedError(
                "this partner is suspended; ask the hotline to reinstate it",
                code="partner_suspended",
                status=403,
                challenge=f'Bearer realm="{REALM}", error="invalid_token"',
            )
        limits: RateLimits = current_app.extensions["partner_limits"]
        limits.check("partner-api", issued.partner.client_id)

    def describe(self) -> str:
        return f"partner OAuth2 token with scope {self.scope}"


def current_partner() -> PartnerPrincipal:
    principal: PartnerPrincipal = g.principal
    return principal
