"""Dead letters at the exchange: what could not be delivered, why, and what the secretariat did about it.

A document goes dead (outbox state ``dead``) when its destination refuses it or it runs out of delivery attempts
(``federation.delivery``); a refused report has already been handled then (its case rejected, its origin
told: ``exchange.cases.services``). Once the cause is fixed (a member's endpoint repaired, a routing
override set), an admin **re-queues** it: a report opens its case again and is routed anew, any other
document goes to its destination again. Or an admin **closes** it with a reason, and its signed token is
erased (the outbox is not an archive). Both are audited, and the row leaves the ``dead`` state (``requeued``
or ``closed``), so the members' health counts only dead letters that still wait for a person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from audit.services import AuditLog
from exchange.audit.models import AUDIT
from exchange.cases.services import CaseBook
from exchange.deadletters.models import CLOSED, REQUEUED, DeadLetterAction
from exchange.messaging.models import Outbox
from federation.delivery import Outbox as OutboxQueue
from federation.errors import ProtocolError
from federation.messages import REPORT
from federation.signing import Signer
from service.database import DBSession, spelled_out


class DeadLetterError(ProtocolError):
    status = 409
    code = "dead_letter_settled"


class UnknownDeadLetterError(ProtocolError):
    status = 404
    code = "unknown_dead_letter"


class ReasonRequiredError(ProtocolError):
    status = 422
    code = "reason_required"


def open_letters(session: DBSession, *, destination: str | None = None) -> Any:
    """The query of dead letters nobody has re-queued or closed, newest first."""
    query = (
        select(Outbox)
        .outerjoin(DeadLetterAction, DeadLetterAction.outbox_id == Outbox.id)
        # "dead" spelled out, so both databases see that the partial index ``ix_outbox_dead`` applies.
        .where(Outbox.state == spelled_out("dead"), DeadLetterAction.outbox_id.is_(None))
    )
    if destination:
        query = query.where(Outbox.destination == destination)
    return query.order_by(Outbox.id.desc())


def settled_letters(session: DBSession, limit: int = 20) -> list[tuple[Any, DeadLetterAction]]:
    """The latest dead letters that were re-queued or closed, with what was done."""
    query = (
        select(Outbox, DeadLetterAction)
        .join(DeadLetterAction, DeadLetterAction.outbox_id == Outbox.id)
        .order_by(DeadLetterAction.at.desc())
        .limit(limit)
    )
    return [(row, action) for row, action in session.execute(query).all()]


def count_open(session: DBSession) -> int:
    return int(session.scalar(select(func.count()).select_from(open_letters(session).subquery())) or 0)


@dataclass
class DeadLetterDesk:
    session: DBSession
    signer: Signer
    actor: str
    now: dt.datetime

    def _letter(self, outbox_id: int) -> Any:
        row = self.session.get(Outbox, outbox_id)
        if row is None or row.state not in ("dead", REQUEUED, CLOSED):
            raise UnknownDeadLetterError(f"no dead letter {outbox_id}")
        done = self.session.get(DeadLetterAction, outbox_id)
        if done is not None:
            raise DeadLetterError(f"dead letter {outbox_id} was {done.action} already, by {done.by}")
        return row

    def requeue(self, outbox_id: int, *, reason: str) -> str:
        """Send it again (a report: routed anew). Returns the member it goes to now.

        Raises (before any write): UnknownDeadLetterError, DeadLetterError, ReasonRequiredError,
        RequeueError, NoRouteError, HostedAtOriginError.
        """
        row = self._letter(outbox_id)
        reason = _required(reason, "say what was fixed: the reason is kept in the audit trail")
        if row.token is None:
            raise DeadLetterError(f"dead letter {outbox_id} no longer holds its document")
        queue = OutboxQueue(self.session, Outbox)
        audit = AuditLog(self.session, AUDIT)
        if row.typ == REPORT:
            book = CaseBook(session=self.session, signer=self.signer, outbox=queue, now=self.now, audit=audit)
            destination = book.requeue_report(row.doc_id, row.author, row.token)
        else:
            destination = row.destination
            queue.enqueue(
                destination,
                typ=row.typ,
                token=row.token,
                doc_id=row.doc_id,
                author=row.author,
                priority=row.priority,
                now=self.now,
            )
        self.session.flush()
        again = self.session.scalar(
            select(Outbox.id)
            .where(Outbox.doc_id == row.doc_id, Outbox.author == row.author, Outbox.state == "pending")
            .order_by(Outbox.id.desc())
        )
        self.session.add(
            DeadLetterAction(
                outbox_id=row.id, action=REQUEUED, reason=reason, at=self.now, by=self.actor, requeued_as=again
            )
        )
        row.token, row.state = None, REQUEUED  # The new row carries it; this one no longer counts as dead.
        audit.flush()
        AuditLog(self.session, AUDIT).record(
            self.actor,
            "dead_letter.requeue",
            "outbox",
            str(row.id),
            now=self.now,
            doc_id=row.doc_id,
            typ=row.typ,
            to=destination,
            reason=reason,
        )
        return destination

    def close(self, outbox_id: int, *, reason: str) -> None:
        """Leave it undelivered for good, with the reason; its signed token is erased.

        Raises (before any write): UnknownDeadLetterError, DeadLetterError, ReasonRequiredError.
        """
        row = self._letter(outbox_id)
        reason = _required(reason, "say why it is closed: the reason is kept in the audit trail")
        self.session.add(DeadLetterAction(outbox_id=row.id, action=CLOSED, reason=reason, at=self.now, by=self.actor))
        row.token, row.state = None, CLOSED
        AuditLog(self.session, AUDIT).record(
            self.actor, "dead_letter.close", "outbox", str(row.id), now=self.now, doc_id=row.doc_id, reason=reason
        )


def _required(reason: str | None, message: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise ReasonRequiredError(message)
    if len(text) > 500:
        raise ReasonRequiredError("keep the reason under 500 characters")
    return text
