"""Which function applies each kind of document the exchange delivers to a node."""

from __future__ import annotations

from functools import partial

from federation.inbox import Handler
from federation.signing import Signer
from node.cases.services import accept_report, apply_status
from node.reports.services import apply_duplicate, apply_receipt


def make_handlers(signer: Signer, *, exchange_id: str) -> dict[str, Handler]:
    return {
        "hotline.report.v1": partial(accept_report, signer=signer, exchange_id=exchange_id),
        "hotline.receipt.v1": apply_receipt,
        "hotline.status.v1": partial(apply_status, exchange_id=exchange_id),
        "hotline.duplicate.v1": partial(apply_duplicate, exchange_id=exchange_id),
    }
