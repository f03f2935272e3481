"""A member hotline's node: intake, the analysts' console, reports out, reports from abroad in, status back.

A node runs as one process per kind of trust (``hotline-node --help``):

- **network** (``hotline-node network``): the exchange, over mutual TLS, for a node in push mode.
- **console** (``hotline-node console``): the hotline's analysts and supervisors, with accounts.
- **public** (``hotline-node public``): the public and partner platforms; internet-facing; never holds the
  signing key.
- **worker** (``hotline-node worker``): nobody; delivery, the mailbox poll, scheduled jobs; one per node.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from node.db import db

SURFACES = ("network", "console", "public", "worker")


def create_app(config: Mapping[str, Any] | None = None, *, surface: str = "network") -> Flask:
    """Build the node's app for one surface: load config, wire its parts, register its endpoints."""
    import people
    from node import models as _every_table  # noqa: F401 - the whole schema, on every surface.
    from node import surfaces
    from node.accounts.models import Account, ApiToken
    from node.audit.models import AUDIT
    from node.config import NODE
    from node.notices.ladder import check_quiet_days
    from people.services import NODE_ROLES
    from service import clock, database, logs, migrations, policies
    from service.config import ConfigError, load_config

    app = Flask(__name__)
    load_config(app, NODE, surface=surface, overrides=config)
    logs.init_app(app)
    database.init_app(app, db)
    migrations.init_app(app, db, Path(__file__).parent / "migrations")
    people.register(app, people.StaffModels(account=Account, token=ApiToken, roles=NODE_ROLES, audit=AUDIT))
    if app.config["INBOUND_MODE"] not in ("pull", "push"):
        raise ConfigError(f"INBOUND_MODE must be 'pull' or 'push', not {app.config['INBOUND_MODE']!r}")
    if app.config["SMTP_HOST"] and "@" not in str(app.config["NOTICE_FROM"]):
        raise ConfigError("NOTICE_FROM must be the address notices come from (like abuse-desk@hotline.example)")
    group = app.config["NOTICE_GROUP_SECONDS"]
    if isinstance(group, bool) or not isinstance(group, int | float) or group < 0:
        raise ConfigError(f"NOTICE_GROUP_SECONDS must be a number of seconds, 0 or more, not {group!r}")
    try:
        app.config["NOTICE_QUIET_DAYS"] = check_quiet_days(app.config["NOTICE_QUIET_DAYS"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"NOTICE_QUIET_DAYS lists ISO dates (2026-12-25) and weekday names (sunday): {exc}") from exc
    if surface != "public":  # The internet-facing surface never loads the signing key.
        rt = surfaces.runtime_for(app, worker=surface == "worker")
        clock.init_app(app, lambda: rt.clock())
    else:
        clock.init_app(app)
    surfaces.SETUP[surface](app)
    policies.require_declared(app)
    return app
