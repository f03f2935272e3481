from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from exchange.status.services import network_status
from federation.runtime import runtime

blueprint = Blueprint("status", __name__)


@blueprint.get("/v1/status")
def status() -> Any:
    """Network-wide status (counts and member health; no URLs, no report contents)."""
    rt = runtime()
    return jsonify(network_status(rt.db.session, now=rt.clock()))
