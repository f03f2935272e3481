from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from exchange.members.services import require_active
from exchange.status.services import network_status
from federation.runtime import runtime
from federation.web import current_peer, require_role

blueprint = Blueprint("status", __name__)


@blueprint.get("/v1/status")
@require_role("member", "exchange")
def status() -> Any:
    """Network-wide status (counts and member health; no URLs, no report contents).

    The whole picture, every member's health included, is for the secretariat (the exchange's own
    certificate); an active member reads its own entry only.
    """
    rt = runtime()
    peer = current_peer()
    figures = network_status(rt.db.session, now=rt.clock())
    if peer.member_id == rt.member_id:
        return jsonify(figures)
    require_active(rt.db.session, peer.member_id)
    own = figures["members"].get(peer.member_id, {})
    return jsonify({"generated_at": figures["generated_at"], "members": {peer.member_id: own}})
