"""What each of the node's surfaces serves, and what its worker runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from flask import Flask

from audit import tasks as audit_tasks
from certs.identity import NetworkIdentity
from console import NavItem
from federation import tasks as federation_tasks
from federation import web
from federation.inbox import Handler
from federation.runtime import Runtime
from federation.views import transactions_blueprint
from federation.web import ForbiddenError
from node.accounts.models import Account, ApiToken
from node.audit.models import AUDIT
from node.cases import tasks as case_tasks
from node.db import db
from node.directory import revocations as revocation_tasks
from node.directory import tasks as directory_tasks
from node.directory.services import WAKE_REFRESH, DirectoryCache
from node.intake import tasks as intake_tasks
from node.messaging.models import MODELS
from node.notices import tasks as notice_tasks
from node.removal import tasks as removal_tasks
from people.services import NODE_ROLES
from service import policies
from service.config import ConfigError
from service.worker import Task


def runtime_for(app: Flask, *, worker: bool) -> Runtime:
    """The node's federation runtime: its key, trust, transport, outbox, and the handlers of its inbox."""
    from node.messaging.handlers import dead_letters

    exchange_id, exchange_url = app.config["EXCHANGE_ID"], app.config["EXCHANGE_URL"].rstrip("/")
    rt = Runtime(
        app,
        db,
        models=MODELS,
        handlers=lambda rt: _handlers(rt, exchange_id=exchange_id, exchange_url=exchange_url),
        endpoint_for=lambda member_id: exchange_url if member_id == exchange_id else None,
        peer_role="exchange",
        worker=worker,
        dead_letters=lambda rt: dead_letters,
    )
    app.extensions["hotline"] = rt
    if not worker:
        app.extensions["directory"].ask_refresh = lambda: rt.wakeup.now(WAKE_REFRESH)
    return rt


def _handlers(rt: Runtime, *, exchange_id: str, exchange_url: str) -> Mapping[str, Handler]:
    from node.messaging.handlers import make_handlers
    from node.received.services import InboundRules
    from node.reports.services import FollowRules

    directory = DirectoryCache(rt, exchange_id=exchange_id, exchange_url=exchange_url)
    rt.app.extensions["directory"] = directory
    return make_handlers(
        InboundRules(signer=rt.signer, exchange_id=exchange_id, directory=directory),
        FollowRules(exchange_id=exchange_id, directory=directory, clock_skew=rt.clock_skew, signer=rt.signer),
    )


def _only_the_exchange(app: Flask) -> Callable[[NetworkIdentity], None]:
    exchange_id = app.config["EXCHANGE_ID"]

    def authorize(peer: NetworkIdentity) -> None:
        if peer.member_id != exchange_id:
            raise ForbiddenError(f"this node accepts transactions only from {exchange_id}")

    return authorize


def network(app: Flask) -> None:
    """Mutual TLS, the configured exchange only: pushed transactions (push mode)."""
    web.init_app(
        app,
        authorize_peer=_only_the_exchange(app),
        rate_limits={"transactions": app.config["RATE_LIMIT_TRANSACTIONS"]},
    )
    app.register_blueprint(transactions_blueprint(sender_roles=("exchange",)))


def console(app: Flask) -> None:
    """The hotline's analysts and supervisors: queues, cases, reports; the operator API behind tokens."""
    import console as console_kit
    import people
    from node.cases import views as case_views
    from node.hosting import services as hosting
    from node.intake import views as intake_views
    from node.notices import views as notice_views
    from node.partners import views as partner_views
    from node.received import views as received_views
    from node.referrals import views as referral_views
    from node.removal import views as removal_views
    from node.reports import views as report_views

    people.init_app(
        app,
        account_model=Account,
        token_model=ApiToken,
        roles=NODE_ROLES,
        audit_models=AUDIT,
        service_name=_name(app),
        home="reports.home",
    )
    console_kit.init_app(
        app,
        service_name=_name(app),
        nav=[
            NavItem("Home", "reports.home"),
            NavItem("Cases", "cases.index"),
            NavItem("Sent abroad", "reports.index"),
            NavItem("Received", "received.index"),
            NavItem("Contacts", "notices.contacts"),
            NavItem("Police", "referrals.index"),
            NavItem("Partners", "partners.index", ("supervisor",)),
            NavItem("Exposure", "cases.exposure", ("supervisor",)),
            NavItem("Accounts", "people.accounts", NODE_ROLES.managers),
            NavItem("Audit trail", "audit.index", NODE_ROLES.managers),
        ],
        home="reports.home",
        behind_proxy=app.config["PROXY_HOPS"],
    )
    policies.init_app(app)
    hosting.tools(app)  # A hosting trace that cannot start is a configuration error, said at start-up.
    app.register_blueprint(report_views.pages)
    app.register_blueprint(report_views.api)
    app.register_blueprint(received_views.pages)
    app.register_blueprint(received_views.api)
    app.register_blueprint(case_views.pages)
    app.register_blueprint(case_views.api)
    app.register_blueprint(intake_views.queue_api)
    app.register_blueprint(notice_views.pages)
    app.register_blueprint(notice_views.api)
    app.register_blueprint(removal_views.pages)
    app.register_blueprint(removal_views.api)
    app.register_blueprint(referral_views.pages)
    app.register_blueprint(referral_views.api)
    app.register_blueprint(partner_views.pages)


TRANSLATIONS = Path(__file__).parent / "translations"


def public(app: Flask) -> None:
    """The public reporting page and the partner API: internet-facing, anonymous or OAuth2, no signing key."""
    import console as console_kit
    from node.intake import api as partner_api
    from node.intake import views as intake_views
    from node.partners import oauth
    from node.partners import views as partner_views
    from service import logs
    from service.throttle import AnonymousThrottle

    logs.anonymize()  # No log line of this process may carry a reporter's address.
    app.config.update(
        # The one cookie of the public site: it carries the form's CSRF token (and, for one page view, the
        # reference just issued), lives until the browser closes, and goes back to this site only.
        SESSION_COOKIE_NAME="__Host-report-form",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=4 * 3600,
        MAX_CONTENT_LENGTH=app.config["PARTNER_MAX_BODY_BYTES"],
    )
    try:
        app.extensions["intake_throttle"] = AnonymousThrottle(
            app.config["RATE_LIMIT_STORAGE_URI"],
            {
                "report": app.config["PUBLIC_RATE_LIMIT_REPORTS"],
                "status": app.config["PUBLIC_RATE_LIMIT_STATUS"],
                "token": app.config["PUBLIC_RATE_LIMIT_TOKEN"],
            },
            namespace="hotline-public",
        )
    except ValueError as exc:
        raise ConfigError(f"a PUBLIC_RATE_LIMIT_* value is not a rate limit like '10/minute;30/hour': {exc}") from exc
    console_kit.init_app(
        app,
        service_name=_name(app, default="Report abuse online"),
        nav=[],
        home="intake.root",
        behind_proxy=app.config["PROXY_HOPS"],
        translations=TRANSLATIONS,
        locale_selector=intake_views.locale,
        public=True,
    )
    oauth.init_app(app)
    policies.init_app(app)
    app.register_blueprint(intake_views.pages)
    app.register_blueprint(partner_views.oauth)
    app.register_blueprint(partner_api.api)
    app.register_blueprint(partner_api.document)


def worker(app: Flask) -> None:
    """No endpoints: the worker only sends, polls and runs jobs."""


def _name(app: Flask, default: str = "Hotline console") -> str:
    return str(app.config.get("HOTLINE_NAME") or default)


SETUP: dict[str, Callable[[Flask], None]] = {"network": network, "console": console, "public": public, "worker": worker}

TASKS: list[Task] = [
    *federation_tasks.TASKS,
    *directory_tasks.TASKS,
    *revocation_tasks.TASKS,
    *audit_tasks.TASKS,
    *intake_tasks.TASKS,
    *case_tasks.TASKS,
    *notice_tasks.TASKS,
    *removal_tasks.TASKS,
]
"""Every scheduled job of the node, run by its one worker (and each a ``tasks run`` command)."""
