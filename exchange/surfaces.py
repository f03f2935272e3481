"""What each of the exchange's surfaces serves, and what its worker runs."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from audit import tasks as audit_tasks
from certs.identity import NetworkIdentity
from console import NavItem
from exchange.accounts.models import Account, ApiToken
from exchange.audit.models import AUDIT
from exchange.db import db
from exchange.deadletters import views as deadletter_views
from exchange.lookup import views as lookup_views
from exchange.mailbox import tasks as mailbox_tasks
from exchange.mailbox import views as mailbox_views
from exchange.members import pages as member_pages
from exchange.members import tasks as member_tasks
from exchange.members import views as member_views
from exchange.members.services import require_active_now
from exchange.routing import views as routing_views
from exchange.status import tasks as status_tasks
from exchange.status import views as status_views
from federation import tasks as federation_tasks
from federation import web
from federation.views import transactions_blueprint
from people.services import EXCHANGE_ROLES
from service import policies
from service.worker import Task


def _require_active_peer(peer: NetworkIdentity) -> None:
    """Only active members use the network (read outside the request's transaction: every request asks)."""
    require_active_now(db.engine, peer.member_id)


def network(app: Flask) -> None:
    """Mutual TLS, active members only: transactions, the mailbox, the signed directory, own health."""
    web.init_app(
        app,
        authorize_peer=_require_active_peer,
        rate_limits={
            "transactions": app.config["RATE_LIMIT_TRANSACTIONS"],
            "mailbox": app.config["RATE_LIMIT_MAILBOX"],
            "lookup": app.config["RATE_LIMIT_LOOKUP"],
        },
    )
    app.register_blueprint(transactions_blueprint(sender_roles=("member",)))
    app.register_blueprint(member_views.blueprint)
    app.register_blueprint(member_pages.network)
    app.register_blueprint(mailbox_views.blueprint)
    app.register_blueprint(lookup_views.blueprint)
    app.register_blueprint(status_views.network)


def console(app: Flask) -> None:
    """The secretariat's pages and API (accounts, sessions, personal tokens)."""
    import console as console_kit
    import people

    name = "Network exchange"
    people.init_app(
        app,
        account_model=Account,
        token_model=ApiToken,
        roles=EXCHANGE_ROLES,
        audit_models=AUDIT,
        service_name=name,
        home="dashboard.home",
    )
    console_kit.init_app(
        app,
        service_name=name,
        nav=[
            NavItem("Network", "dashboard.home"),
            NavItem("Members", "members_console.index"),
            NavItem("Routing", "routing.index"),
            NavItem("Dead letters", "deadletters.index"),
            NavItem("Accounts", "people.accounts", EXCHANGE_ROLES.managers),
            NavItem("Audit trail", "audit.index", EXCHANGE_ROLES.managers),
        ],
        home="dashboard.home",
        behind_proxy=app.config["PROXY_HOPS"],
    )
    policies.init_app(app)
    app.register_blueprint(status_views.pages)
    app.register_blueprint(member_pages.pages)
    app.register_blueprint(routing_views.pages)
    app.register_blueprint(deadletter_views.pages)
    app.register_blueprint(status_views.console_api)


def worker(app: Flask) -> None:
    """No endpoints: the worker only sends and runs jobs."""


SETUP: dict[str, Callable[[Flask], None]] = {"network": network, "console": console, "worker": worker}

TASKS: list[Task] = [
    *federation_tasks.TASKS,
    *mailbox_tasks.TASKS,
    *audit_tasks.TASKS,
    *member_tasks.TASKS,
    *status_tasks.TASKS,
]
"""Every scheduled job of the exchange, run by its one worker (and each a ``tasks run`` command)."""
