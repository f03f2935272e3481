"""A member hotline's node: confirmed reports out, reports from abroad in, status both ways."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask

from certs.identity import NetworkIdentity
from federation.inbox import Handler
from federation.runtime import Runtime
from federation.web import ForbiddenError
from node import config as node_config
from node.db import db


def _only(exchange_id: str) -> Callable[[NetworkIdentity], None]:
    """Accept pushes only from the configured exchange, not from any certificate with the exchange role."""

    def authorize(peer: NetworkIdentity) -> None:
        if peer.member_id != exchange_id:
            raise ForbiddenError(f"this node accepts transactions only from {exchange_id}")

    return authorize


def _handlers(rt: Runtime, *, exchange_id: str, exchange_url: str) -> Mapping[str, Handler]:
    """The node's document handlers, with the directory cache they authorize against."""
    from node.cases.services import InboundRules
    from node.directory.services import DirectoryCache
    from node.messaging.handlers import make_handlers
    from node.reports.services import FollowRules

    directory = DirectoryCache(rt, exchange_id=exchange_id, exchange_url=exchange_url)
    rt.app.extensions["directory"] = directory
    return make_handlers(
        InboundRules(signer=rt.signer, exchange_id=exchange_id, directory=directory),
        FollowRules(exchange_id=exchange_id, directory=directory, clock_skew=rt.clock_skew),
    )


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build a node app: load config, wire the federation runtime, register blueprints."""
    from federation import database, logs, web
    from federation.config import ConfigError, load_config
    from federation.views import transactions_blueprint
    from node.cases import views as case_views
    from node.cli import register_commands
    from node.messaging.handlers import dead_letters
    from node.messaging.models import MODELS
    from node.reports import views as report_views

    app = Flask(__name__)
    load_config(
        app, prefix=node_config.PREFIX, defaults=node_config.DEFAULTS, required=node_config.REQUIRED, overrides=config
    )
    logs.init_app(app)
    database.init_app(app, db)
    web.init_app(app, rate_limits={"transactions": app.config["RATE_LIMIT_TRANSACTIONS"]})
    if app.config["INBOUND_MODE"] not in ("pull", "push"):
        raise ConfigError(f"INBOUND_MODE must be 'pull' or 'push', not {app.config['INBOUND_MODE']!r}")
    exchange_id, exchange_url = app.config["EXCHANGE_ID"], app.config["EXCHANGE_URL"].rstrip("/")
    app.extensions["hotline"] = Runtime(
        app,
        db,
        models=MODELS,
        handlers=lambda rt: _handlers(rt, exchange_id=exchange_id, exchange_url=exchange_url),
        endpoint_for=lambda member_id: exchange_url if member_id == exchange_id else None,
        peer_role="exchange",
        dead_letters=lambda rt: dead_letters,
    )
    app.register_blueprint(transactions_blueprint(sender_roles=("exchange",), authorize_sender=_only(exchange_id)))
    app.register_blueprint(report_views.blueprint)
    app.register_blueprint(case_views.blueprint)
    register_commands(app)
    return app
