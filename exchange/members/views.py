from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from exchange.members.services import signed_directory
from federation.runtime import runtime
from federation.web import PeerCertificate, current_peer
from service.policies import policy

blueprint = Blueprint("members", __name__)


@blueprint.get("/v1/directory")
@policy(PeerCertificate(roles=("member",)))
def directory() -> Any:
    """The member directory, signed by the exchange, for active members."""
    rt = runtime()
    return jsonify(signed_directory(rt.db.session, rt.signer, audience=current_peer().member_id, now=rt.clock()))
