"""The central exchange: member directory, routing by hosting country, deduplication, delivery, status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from exchange import config as exchange_config
from exchange.db import db


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the exchange app: load config, wire the federation runtime, register blueprints."""
    from exchange.cases.services import CaseHandlers, dead_letters
    from exchange.cli import register_commands
    from exchange.mailbox import views as mailbox_views
    from exchange.members import views as member_views
    from exchange.members.services import endpoint_of, require_active
    from exchange.messaging.models import MODELS
    from exchange.status import views as status_views
    from federation import database, logs, web
    from federation.config import load_config
    from federation.runtime import Runtime
    from federation.views import transactions_blueprint

    app = Flask(__name__)
    load_config(
        app,
        prefix=exchange_config.PREFIX,
        defaults=exchange_config.DEFAULTS,
        required=exchange_config.REQUIRED,
        overrides=config,
    )
    logs.init_app(app)
    database.init_app(app, db)
    web.init_app(
        app,
        rate_limits={
            "transactions": app.config["RATE_LIMIT_TRANSACTIONS"],
            "mailbox": app.config["RATE_LIMIT_MAILBOX"],
        },
    )
    app.extensions["hotline"] = Runtime(
        app,
        db,
        models=MODELS,
        handlers=lambda rt: CaseHandlers(rt.signer, clock_skew=rt.clock_skew).handlers(),
        endpoint_for=lambda member_id: endpoint_of(db.session, member_id),
        peer_role="member",
        dead_letters=lambda rt: dead_letters(rt.signer, MODELS["outbox"]),
    )
    app.register_blueprint(
        transactions_blueprint(
            sender_roles=("member",), authorize_sender=lambda peer: require_active(db.session, peer.member_id)
        )
    )
    app.register_blueprint(member_views.blueprint)
    app.register_blueprint(mailbox_views.blueprint)
    app.register_blueprint(status_views.blueprint)
    register_commands(app)
    return app
