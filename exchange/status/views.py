from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from exchange.members.services import require_active
from exchange.status.services import network_status
from federation.runtime import runtime
from federation.web import current_peer, require_role

blueprint = Blueprint("status", __name__)


@blueprint.get("/v1/status")
@require_role("member")
def status() -> Any:
    """Network-wide status (counts and member health; no URLs, no report contents), for active members."""
    rt = runtime()
    require_active(rt.db.session, current_peer().member_id)
    return jsonify(network_status(rt.db.session, now=rt.clock()))
