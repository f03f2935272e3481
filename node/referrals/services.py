"""Referring cases to the police: one signed document for one case or a batch, its CSV twin, and the
"police notified" status that goes back to every hotline that reported each location.

The document is a JWS signed with the node's network key (``typ`` hotline.police-referral.v1, the node's
certificate in ``x5c``), so the police can check who referred what, and when, with the network CA alone
(``hotline-node referrals verify``). It is kept as handed over.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

from sqlalchemy import select

from audit.services import AuditLog
from federation.errors import ProtocolError
from federation.messages import POLICE_REFERRAL, format_timestamp
from federation.signing import Signer
from node.audit.models import AUDIT
from node.notices.models import SENT, AbuseContact, Notice
from node.received.models import InboundCase
from node.referrals.models import Referral
from node.removal.models import Check
from service.database import DBSession

MAX_CASES = 1000
CSV_COLUMNS = (
    "case_id",
    "url",
    "hosting_country",
    "legal_status",
    "priority",
    "media_type",
    "content_hashes",
    "first_reported_at",
    "reported_by",
    "status",
    "notices",
    "last_check",
)


class ReferralError(ProtocolError):
    status = 422
    code = "invalid_referral"


def _case_entry(session: DBSession, case: InboundCase) -> dict[str, Any]:
    notices = session.scalars(
        select(Notice)
        .where(Notice.case_kind == "received", Notice.case_id == case.id, Notice.state == SENT)
        .order_by(Notice.sent_at)
    )
    entry: dict[str, Any] = {
        "case_id": case.id,
        "url": case.url,
        "hosting_country": case.hosting_country,
        "legal_status": case.legal_status,
        "priority": case.priority,
        "content_hashes": case.content_hashes,
        "first_reported_at": format_timestamp(case.confirmed_at),
        "reported_by": case.origin,
        "status": case.status,
        "notices": [
            {"to": n.recipient, "sent_at": format_timestamp(n.sent_at), "message_id": n.message_id or ""}
            for n in notices
            if n.sent_at is not None
        ],
    }
    media = (case.details or {}).get("media_type")
    if media in ("image", "video", "other"):
        entry["media_type"] = media
    check = session.scalar(
        select(Check)
        .where(Check.case_kind == "received", Check.case_id == case.id)
        .order_by(Check.checked_at.desc())
        .limit(1)
    )
    if check is not None:
        entry["last_check"] = {
            "at": format_timestamp(check.checked_at),
            "outcome": check.outcome,
            "http_status": check.http_status,
        }
    return entry


def refer(
    session: DBSession,
    *,
    signer: Signer,
    outbox: Any,
    exchange_id: str,
    case_ids: list[str],
    police: AbuseContact,
    actor: str,
    now: dt.datetime,
) -> Referral:
    """Sign a referral of ``case_ids`` for ``police`` and record "police notified" on each case (sent
    back through the exchange), all in the caller's transaction.

    Raises:
        ReferralError: no cases, too many, an unknown case, or a contact that is not a police contact.
    """
    from node.received.services import record_status

    wanted = list(dict.fromkeys(case_ids))
    if not wanted or len(wanted) > MAX_CASES:
        raise ReferralError(f"refer 1 to {MAX_CASES} cases at a time")
    if police.role != "police" or police.disabled_at is not None or not police.country:
        raise ReferralError(f"{police.name} is not a police contact in the directory")
    cases = {c.id: c for c in session.scalars(select(InboundCase).where(InboundCase.id.in_(wanted)))}
    missing = [case_id for case_id in wanted if case_id not in cases]
    if missing:
        raise ReferralError(f"no case {missing[0][:36]} was received here")
    claims = signer.claims(
        signer.member_id,
        now=now,
        country=police.country,
        police=police.name,
        cases=[_case_entry(session, cases[case_id]) for case_id in wanted],
    )
    token = signer.sign_compact(POLICE_REFERRAL, claims)
    referral = Referral(
        id=claims["jti"],
        created_at=now,
        created_by=actor,
        police=police.name,
        country=police.country,
        case_ids=wanted,
        token=token,
    )
    session.add(referral)
    for case_id in wanted:
        if cases[case_id].status != "police_notified":
            record_status(
                session,
                signer=signer,
                outbox=outbox,
                exchange_id=exchange_id,
                case_id=case_id,
                unverified_input={"status": "police_notified"},
                now=now,
            )
    AuditLog(session, AUDIT).record(
        actor, "referral.create", "referral", referral.id, now=now, police=police.name, cases=len(wanted)
    )
    return referral


def claims_of(referral: Referral) -> dict[str, Any]:
    """The signed claims (read back from the kept token, without verifying: it is our own)."""
    import base64

    payload = referral.token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def as_csv(referral: Referral) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for case in claims_of(referral)["cases"]:
        writer.writerow(
            [
                case["case_id"],
                case["url"],
                case["hosting_country"],
                case["legal_status"],
                case["priority"],
                case.get("media_type", ""),
                " ".join(f"{h['alg']}:{h['value']}" for h in case["content_hashes"]),
                case["first_reported_at"],
                case["reported_by"],
                case.get("status", ""),
                " ".join(f"{n['sent_at']} {n['to']}" for n in case["notices"]),
                f"{case['last_check']['at']} {case['last_check']['outcome']}" if "last_check" in case else "",
            ]
        )
    return out.getvalue()
