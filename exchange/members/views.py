from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from exchange.members.services import require_active, signed_directory
from federation.runtime import runtime
from federation.web import current_peer, require_role

blueprint = Blueprint("members", __name__)


@blueprint.get("/v1/directory")
@require_role("member")
def directory() -> Any:
    """The member directory, signed by the exchange, for active members."""
    rt = runtime()
    require_active(rt.db.session, current_peer().member_id)
    return jsonify(signed_directory(rt.db.session, rt.signer, audience=current_peer().member_id, now=rt.clock()))
