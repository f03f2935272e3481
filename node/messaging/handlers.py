"""Which function applies each kind of document the exchange delivers to a node, and what a dead letter means."""

from __future__ import annotations

from functools import partial

from federation.inbox import Handler
from federation.messages import DUPLICATE, MATERIAL, NOTE, RECEIPT, REFUSAL, REPORT, REROUTE, STATUS
from node.received.services import InboundRules, accept_report, apply_material
from node.reports.services import (
    FollowRules,
    apply_duplicate,
    apply_note,
    apply_receipt,
    apply_refusal,
    apply_reroute,
    apply_status,
)
from node.reports.services import dead_letter as dead_letters

__all__ = ["dead_letters", "make_handlers"]


def make_handlers(inbound: InboundRules, follow: FollowRules) -> dict[str, Handler]:
    return {
        REPORT: partial(accept_report, rules=inbound),
        MATERIAL: partial(apply_material, rules=inbound),
        RECEIPT: partial(apply_receipt, rules=follow),
        DUPLICATE: partial(apply_duplicate, rules=follow),
        REFUSAL: partial(apply_refusal, rules=follow),
        STATUS: partial(apply_status, rules=follow),
        NOTE: partial(apply_note, rules=follow),
        REROUTE: partial(apply_reroute, rules=follow),
    }
