"""Every wire fact of protocol v1 that more than one module needs, said once.

Message types (the JWS ``typ``), the case statuses, how a report's priority maps onto a delivery queue, and
how a timestamp is written on the wire. docs/protocol.md is the text of the same facts; the schemas in
``schemas/`` are their machine-readable form.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

TRANSACTION: Final = "hotline.transaction.v1"
TRANSACTION_RECEIPT: Final = "hotline.transaction-receipt.v1"
REPORT: Final = "hotline.report.v1"
RECEIPT: Final = "hotline.receipt.v1"
STATUS: Final = "hotline.status.v1"
NOTE: Final = "hotline.note.v1"
DUPLICATE: Final = "hotline.duplicate.v1"
REFUSAL: Final = "hotline.refusal.v1"
MATERIAL: Final = "hotline.material.v1"
REROUTE: Final = "hotline.reroute.v1"
"""The exchange tells a case's followers that its content moved to another country and who has it now."""
DIRECTORY: Final = "hotline.directory.v1"
AUDIT_CHECKPOINT: Final = "hotline.audit-checkpoint.v1"
"""Not sent on the network: a service's signed statement of the head of its own audit chain (audit.services)."""
POLICE_REFERRAL: Final = "hotline.police-referral.v1"
"""Not sent on the network: a node's signed export of cases for the national police (node.referrals)."""

DOCUMENT_TYPES: Final = (REPORT, RECEIPT, STATUS, NOTE, DUPLICATE, REFUSAL, MATERIAL, REROUTE)
"""Types that travel as documents inside transactions (the rest are hop-level envelopes)."""

CASE_STATUSES: Final = (
    "assessed",
    "not_illegal_here",
    "ntd_sent",
    "police_notified",
    "removed",
    "reappeared",
    "moved",
)
"""What a destination may report about a case (schemas/common.schema.json ``case_status``)."""

PRIORITY_URGENT: Final = 0
PRIORITY_NORMAL: Final = 1


def schema_name(typ: str) -> str:
    """The schema file a message type is validated against (``hotline.report.v1`` → ``report``)."""
    return typ.removeprefix("hotline.").removesuffix(".v1")


def queue_priority(priority: str) -> int:
    """The delivery queue position of a document about a report of ``priority`` (urgent goes first)."""
    return PRIORITY_URGENT if priority == "urgent" else PRIORITY_NORMAL


def format_timestamp(value: dt.datetime) -> str:
    """An aware datetime as the RFC 3339 text the wire carries, in UTC with a ``Z``."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
