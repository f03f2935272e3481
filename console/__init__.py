"""The look and the rules of every page people use: one layout, one stylesheet, a few components.

``init_app`` makes a Flask app a people's surface (the console of a node or of the exchange, or a node's
public page): the shared templates and assets, security headers with a strict Content-Security-Policy
(no inline script, nothing from another origin), HTML error pages in the same design for pages and RFC 9457
``application/problem+json`` for APIs, and the template helpers (defanged URLs, times, pagination).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, g, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from sqlalchemy import Select, func, or_, select
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from federation.errors import InternalError, ProtocolError
from federation.signing import SHORT_ID, short_id
from service.policies import Public, policy

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

blueprint = Blueprint(
    "console", __name__, template_folder="templates", static_folder="static", static_url_path="/assets"
)


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    roles: tuple[str, ...] | None = None
    """Shown to these roles only (None: every signed-in person)."""


@dataclass
class Page:
    """One page of a list: its rows, and enough to draw the pager and keep the filters in the URL."""

    items: list[Any]
    total: int
    number: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def first_row(self) -> int:
        return 0 if self.total == 0 else (self.number - 1) * self.size + 1

    @property
    def last_row(self) -> int:
        return min(self.total, self.number * self.size)


def page_number(default_size: int = 50, max_size: int = 200) -> tuple[int, int]:
    """The ``page`` and ``per_page`` of the request, bounded (bad values fall back to the defaults)."""
    try:
        number = max(1, int(request.args.get("page", "1")))
    except ValueError:
        number = 1
    try:
        size = min(max_size, max(1, int(request.args.get("per_page", str(default_size)))))
    except ValueError:
        size = default_size
    return number, size


def paginate(db_session: Any, query: Select[Any], *, number: int, size: int, scalars: bool = True) -> Page:
    """Count and fetch one page of ``query`` in the database (never the whole list)."""
    total = db_session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    number = min(number, max(1, math.ceil(total / size)))
    result = db_session.execute(query.limit(size).offset((number - 1) * size))
    items = list(result.scalars() if scalars else result.all())
    return Page(items=items, total=total, number=number, size=size)


def page_json(page: Page, serialize: Callable[[Any], Any]) -> dict[str, Any]:
    """One page of an API list: the items, and where the list stands (no silent caps)."""
    return {
        "items": [serialize(item) for item in page.items],
        "page": page.number,
        "per_page": page.size,
        "total": page.total,
        "pages": page.pages,
    }


def search_clause(id_column: Any, text_column: Any, q: str) -> Any:
    """A list's search box: the full id, the short id the pages show (:func:`short_id`, its last eight
    hex digits), or text ``text_column`` contains."""
    clauses = [id_column == q, text_column.contains(q)]
    if SHORT_ID.fullmatch(q.lower()):
        clauses.append(id_column.endswith(q.lower()))
    return or_(*clauses)


def url_with(**changes: Any) -> str:
    """The current URL with some query parameters changed (None removes one): filters live in the URL."""
    args = {key: value for key, value in request.args.items() if key not in changes}
    args.update({key: value for key, value in changes.items() if value not in (None, "")})
    query = urlencode(sorted(args.items()))
    return f"{request.path}?{query}" if query else request.path


def defang(url: str | None) -> str:
    """A URL that no tool turns into a link: ``hxxp://example[.]com/...`` (the way analysts write them)."""
    if not url:
        return ""
    text = url.replace("http://", "hxxp://").replace("https://", "hxxps://").replace("ftp://", "fxp://")
    scheme, sep, rest = text.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.replace('.', '[.]')}{slash}{path}" if sep else text.replace(".", "[.]")


def when(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time as people read it here: UTC, to the minute."""
    if value is None:
        return "—"
    return value.astimezone(dt.UTC).strftime(fmt) + " UTC"


def ago(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """How long ago, roughly (``5 min``, ``3 h``, ``2 d``)."""
    if value is None:
        return "—"
    seconds = ((now or dt.datetime.now(dt.UTC)) - value).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400 * 2:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    # Same-origin: CSRF checks on HTTPS compare the Referer with the host; no other site ever receives one
    # (a reported URL opened from the console must not learn where it was opened from).
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if not request.path.startswith("/assets/"):
        headers.setdefault("Cache-Control", "no-store")
    return response


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/oauth/")) or request.path == "/openapi.json"


def problem(status: int, code: str, detail: str, *, title: str | None = None, **extra: Any) -> Response:
    """An RFC 9457 problem document, with our machine-readable ``code``."""
    body = {
        "type": "about:blank",
        "title": str(title or _TITLES.get(status, "Error")),
        "status": status,
        "detail": detail,
    }
    body.update(code=code, **extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


_TITLES = {
    400: _l("Bad request"),
    401: _l("Not signed in"),
    403: _l("Not allowed"),
    404: _l("Not found"),
    405: _l("Method not allowed"),
    409: _l("Conflict"),
    413: _l("Too large"),
    415: _l("Unsupported media type"),
    422: _l("Not acceptable"),
    429: _l("Too many requests"),
    500: _l("Something went wrong"),
    503: _l("Temporarily unavailable"),
}


def error_page(status: int, title: str, message: str, *, code: str = "error") -> Any:
    if wants_json():
        return problem(status, code, message, title=title)
    return render_template("console/error.html", status=status, title=title, message=message), status


def init_app(
    app: Flask,
    *,
    service_name: str,
    nav: list[NavItem],
    home: str,
    behind_proxy: int = 0,
    translations: Path | None = None,
    locale_selector: Callable[[], str] | None = None,
    public: bool = False,
) -> None:
    """Make ``app`` a people's surface with the shared look, headers, languages and error handling."""
    from console import i18n

    i18n.init_app(app, translations=translations, locale_selector=locale_selector)
    if behind_proxy:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=behind_proxy, x_proto=behind_proxy, x_host=behind_proxy)  # type: ignore[method-assign]
    app.register_blueprint(blueprint)
    app.extensions["console"] = {"service_name": service_name, "nav": nav, "home": home, "public": public}
    app.after_request(_security_headers)
    app.jinja_env.filters.update(defang=defang, when=when, ago=ago, short=short_id)
    app.jinja_env.globals.update(url_with=url_with, service_name=service_name)
    app.context_processor(_context)
    _register_errors(app)


def _context() -> dict[str, Any]:
    principal = None if getattr(g, "signing_in", False) else getattr(g, "principal", None)
    console = _console()
    nav = [
        item
        for item in console["nav"]
        if principal is not None
        and getattr(principal, "role", None)
        and (item.roles is None or principal.role in item.roles)
    ]
    return {
        "principal": principal,
        "nav": nav,
        "home_endpoint": console["home"],
        "lang": str(get_locale() or "en"),
        "public_site": console["public"],
    }


def _console() -> dict[str, Any]:
    from flask import current_app

    found: dict[str, Any] = current_app.extensions["console"]
    return found


def _register_errors(app: Flask) -> None:
    from people.sessions import RoleForbiddenError, SetupRequiredError, SignInRequiredError

    @app.errorhandler(SignInRequiredError)
    def _sign_in(error: SignInRequiredError) -> Any:
        if wants_json():
            response = problem(401, "not_signed_in", str(error))
            response.headers["WWW-Authenticate"] = 'Bearer realm="hotline"'
            return response
        target = request.full_path if request.method == "GET" else None
        return redirect(url_for("people.sign_in", next=target.rstrip("?") if target else None))

    @app.errorhandler(SetupRequiredError)
    def _setup(error: SetupRequiredError) -> Any:
        if wants_json():
            return problem(403, "account_setup_required", "finish setting up the account in the console first")
        return redirect(url_for("people.password" if error.what == "password" else "people.second_factor"))

    @app.errorhandler(RoleForbiddenError)
    def _forbidden(error: RoleForbiddenError) -> Any:
        return error_page(
            403, "Not allowed", "Your role does not allow this. Ask a supervisor if you need it.", code="forbidden"
        )

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> Any:
        return error_page(
            400,
            "The form has expired",
            "For your safety the form could not be accepted. Go back, reload the page and try again.",
            code="csrf_failed",
        )

    @app.errorhandler(ProtocolError)
    def _protocol(error: ProtocolError) -> Any:
        response = error_page(error.status, str(_TITLES.get(error.status, "Error")), error.message, code=error.code)
        if error.retry_after is not None:
            response_obj = response if isinstance(response, Response) else app.make_response(response)
            response_obj.headers["Retry-After"] = str(error.retry_after)
            return response_obj
        return response

    @app.errorhandler(InternalError)
    def _internal(error: InternalError) -> Any:
        log.error("internal error on %s %s: %s", request.method, request.path, error, exc_info=error)
        return error_page(
            503,
            gettext("Temporarily unavailable"),
            gettext("This service cannot do that right now. It has been logged."),
        )

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        status = error.code or 500
        messages = {
            404: gettext("There is nothing at this address. Check the link, or go back to the start."),
            405: gettext("That cannot be done from here."),
            413: gettext("What was sent is larger than this service accepts."),
        }
        page = error_page(
            status,
            str(_TITLES.get(status, "Error")),
            messages.get(status, error.description or ""),
            code=f"http_{status}",
        )
        response = app.make_response(page)
        for name, value in error.get_headers():
            if name.lower() in ("allow", "retry-after", "www-authenticate"):
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_page(
            500,
            gettext("Something went wrong"),
            gettext("The error has been logged. Try again later."),
            code="internal_error",
        )


@blueprint.get("/healthz")
@policy(Public("health checks by load balancers"))
def health() -> Any:
    return jsonify({"ok": True})


def iterate_query(db_session: Any, query: Select[Any], batch: int = 1000) -> Iterator[Any]:
    """Rows of ``query`` in batches, for CSV exports that must not load a whole table."""
    yield from db_session.execute(query.execution_options(yield_per=batch)).scalars()


def csv_safe(value: Any) -> str:
    """A cell value that spreadsheets will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


Callback = Callable[..., Any]
__all__ = [
    "Markup",
    "NavItem",
    "Page",
    "ago",
    "csv_safe",
    "defang",
    "error_page",
    "iterate_query",
    "page_number",
    "paginate",
    "problem",
    "url_with",
    "when",
]
