"""Network status: a member's own health on the network surface; the whole picture in the console.

The full figures (every member's health, refusals) are for the secretariat: its console pages and the
console API (``GET /api/v1/status``, with a session or a personal API token). A member reads only its
own entry, with its certificate, at ``GET /v1/status``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template

from exchange.status.services import network_status
from federation.runtime import runtime
from federation.web import PeerCertificate, current_peer
from people.sessions import StaffAccess
from service.policies import policy

SECRETARIAT = ("secretariat-viewer", "secretariat-admin")

network = Blueprint("status", __name__)
console_api = Blueprint("status_api", __name__)
pages = Blueprint("dashboard", __name__, template_folder="templates")


@network.get("/v1/status")
@policy(PeerCertificate(roles=("member",)))
def own_status() -> Any:
    """A member's own entry: its queue at the exchange, its last contact, its certificate's expiry."""
    rt = runtime()
    member_id = current_peer().member_id
    figures = network_status(rt.db.session, now=rt.clock())
    return jsonify(
        {"generated_at": figures["generated_at"], "members": {member_id: figures["members"].get(member_id, {})}}
    )


@console_api.get("/api/v1/status")
@policy(StaffAccess(roles=SECRETARIAT, api=True, tokens=True))
def status() -> Any:
    """Network-wide status (counts and member health; no URLs, no report contents)."""
    rt = runtime()
    return jsonify(network_status(rt.db.session, now=rt.clock()))


@pages.get("/")
@policy(StaffAccess(roles=SECRETARIAT))
def home() -> Any:
    rt = runtime()
    figures = network_status(rt.db.session, now=rt.clock())
    return render_template("status/home.html", figures=figures, now=rt.clock())
