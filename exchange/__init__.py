"""The central exchange: member directory, routing by hosting country, deduplication, delivery, status.

The exchange runs as one process per kind of trust (``hotline-exchange --help``):

- **network** (``hotline-exchange network``): the other services of the network, over mutual TLS:
  transactions, the mailbox, the signed directory.
- **console** (``hotline-exchange console``): the secretariat's people, with accounts.
- **worker** (``hotline-exchange worker``): nobody; delivery and scheduled jobs, exactly one per deployment.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from exchange.db import db

SURFACES = ("network", "console", "worker")


def create_app(config: Mapping[str, Any] | None = None, *, surface: str = "network") -> Flask:
    """Build the exchange's app for one surface: load config, wire its parts, register its endpoints."""
    import people
    from exchange import surfaces
    from exchange.accounts.models import Account, ApiToken
    from exchange.audit.models import AUDIT
    from exchange.cases.services import CaseHandlers, dead_letters
    from exchange.config import EXCHANGE
    from exchange.members.services import DirectoryVersion, endpoint_of
    from exchange.messaging.models import MODELS
    from federation.runtime import Runtime
    from people.services import EXCHANGE_ROLES
    from service import database, logs, migrations, policies
    from service.config import load_config

    app = Flask(__name__)
    load_config(app, EXCHANGE, surface=surface, overrides=config)
    logs.init_app(app)
    database.init_app(app, db)
    migrations.init_app(app, db, Path(__file__).parent / "migrations")
    people.register(app, people.StaffModels(account=Account, token=ApiToken, roles=EXCHANGE_ROLES, audit=AUDIT))
    app.extensions["hotline"] = Runtime(
        app,
        db,
        models=MODELS,
        handlers=lambda rt: CaseHandlers(rt.signer, clock_skew=rt.clock_skew).handlers(),
        endpoint_for=lambda member_id: endpoint_of(db.session, member_id),
        peer_role="member",
        worker=surface == "worker",
        dead_letters=lambda rt: dead_letters(rt.signer, MODELS["outbox"]),
        envelope=DirectoryVersion(db, app, clock=lambda: app.extensions["hotline"].clock()).claims,
    )
    surfaces.SETUP[surface](app)
    policies.require_declared(app)
    return app
