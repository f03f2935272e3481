"""``POST /v1/lookup`` on the exchange's network surface: active members, mutual TLS."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from exchange.lookup.services import answer_lookup
from federation.runtime import runtime
from federation.web import PeerCertificate, json_body
from service.policies import policy

blueprint = Blueprint("lookup", __name__)


@blueprint.post("/v1/lookup")
@policy(PeerCertificate(roles=("member",)))
def lookup() -> Any:
    """Which confirmed locations and hashes lie under these prefixes (section 16 of the protocol)."""
    answer = answer_lookup(runtime().db.session, json_body())
    return jsonify(answer)
