from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from exchange.members.services import signed_directory
from federation.runtime import runtime
from federation.web import current_peer

blueprint = Blueprint("members", __name__)


@blueprint.get("/v1/directory")
def directory() -> Any:
    """The member directory, signed by the exchange, for any authenticated peer."""
    rt = runtime()
    return jsonify(signed_directory(rt.db.session, rt.signer, audience=current_peer().member_id, now=rt.clock()))
