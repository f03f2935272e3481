"""The audit trail as a hash chain, signed at checkpoints, verifiable end to end.

How it works:

- **Appending.** Every staff action and every routing decision is written as an entry in the same
  database transaction as the change it records (:meth:`AuditLog.record`), so an action without its
  entry, or an entry without its action, cannot be committed. Each entry carries a sequence number (1,
  2, 3, ... with no gaps), the hash of the entry before it, and its own hash: SHA-256 over its content
  and that previous hash (:func:`entry_hash`). Appends are serialised by a lock on the one-row chain head
  (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serialises writers anyway), taken as late as possible
  in the transaction, so the chain is the commit order.
- **Checkpoints.** The worker periodically signs the head of the chain (its sequence number and hash)
  with the service's network key, as a JWS whose certificate chains to the network CA
  (:func:`sign_checkpoint`). Anyone holding the CA certificate and the CRL can check a checkpoint, and
  nobody without the service's key can make one; so entries up to a checkpoint cannot be rewritten,
  even by someone who can write to the database and recompute every hash.
- **Verifying.** :func:`verify_chain` walks the whole chain and every checkpoint and raises
  :class:`ChainBrokenError` naming the first entry that was edited, deleted, inserted or reordered. It
  numbers its steps as this list does. What it cannot see: entries appended after the last checkpoint
  by someone with write access to the database and knowledge of the format; keep the checkpoint interval
  short, and copy checkpoints elsewhere if that threat matters.

Entries never hold a reported URL or a report's content; they name objects by id.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm.util import identity_key

from federation.errors import ProtocolError
from federation.messages import AUDIT_CHECKPOINT
from federation.signing import Signer, verify_jws
from federation.trust import TrustStore
from service.database import DBSession, Query, insert_rows

GENESIS = "0" * 64
"""The "previous hash" of the first entry."""
HEAD_ID = 1


@dataclass(frozen=True)
class AuditModels:
    """A service's concrete audit tables."""

    entry: type[Any]
    head: type[Any]
    checkpoint: type[Any]


class ChainBrokenError(ProtocolError):
    """The chain does not verify; ``seq`` names the first entry found wrong."""

    status = 409
    code = "audit_chain_broken"

    def __init__(self, message: str, *, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def entry_hash(
    *,
    seq: int,
    at: dt.datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 over an entry's content and the previous entry's hash (compact JSON, keys sorted)."""
    content = {
        "seq": seq,
        "at": _timestamp(at),
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "detail": detail,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class _Pending:
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any]
    at: dt.datetime


class AuditLog:
    """Appends entries to a service's chain inside the caller's unit of work."""

    def __init__(self, session: DBSession, models: AuditModels) -> None:
        self.session = session
        self.models = models
        self._pending: list[_Pending] = []

    def record(
        self, actor: str, action: str, object_type: str, object_id: str, *, now: dt.datetime, **detail: Any
    ) -> None:
        """Append one entry now (locks the chain head until the transaction ends)."""
        self.defer(actor, action, object_type, object_id, now=now, **detail)
        self.flush()

    def defer(
        self, actor: str, action: str, object_type: str, object_id: str, *, now: dt.datetime, **detail: Any
    ) -> None:
        """Collect an entry to append with the others at :meth:`flush` (one lock for a whole batch)."""
        self._pending.append(_Pending(actor, action, object_type, str(object_id), detail, now))

    def flush(self) -> None:
        """Append the collected entries to the chain, in the order they were collected.

        Core statements built once per service (this runs in every transaction that routes a report);
        a head the session already holds as an object is expired, so it reads the new end of the chain.
        """
        if not self._pending:
            return
        statements = _statements(self.models)
        connection = self.session.connection()
        head = statements.head.first(connection)
        seq, previous = (0, GENESIS) if head is None else head
        first = seq
        rows = []
        for item in self._pending:
            seq += 1
            digest = entry_hash(
                seq=seq,
                at=item.at,
                actor=item.actor,
                action=item.action,
                object_type=item.object_type,
                object_id=item.object_id,
                detail=item.detail,
                prev_hash=previous,
            )
            rows.append(
                {
                    "seq": seq,
                    "at": item.at,
                    "actor": item.actor,
                    "action": item.action,
                    "object_type": item.object_type,
                    "object_id": item.object_id,
                    "detail": item.detail,
                    "prev_hash": previous,
                    "hash": digest,
                }
            )
            previous = digest
        insert_rows(connection, self.models.entry.__table__, rows)
        if head is None:
            insert_rows(connection, self.models.head.__table__, [{"id": HEAD_ID, "seq": seq, "hash": previous}])
        else:
            moved = statements.move.run(connection, {"first": first, "seq": seq, "hash": previous})
            if moved != 1:  # The head's lock (SQLite: the one writer) makes this impossible.
                raise RuntimeError(f"the audit chain's head moved from {first} under this transaction")
        held = self.session.identity_map.get(identity_key(self.models.head, HEAD_ID))
        if held is not None:
            self.session.expire(held)
        self._pending.clear()


@dataclass(frozen=True)
class _Statements:
    head: Query
    move: Query


_STATEMENTS: dict[AuditModels, _Statements] = {}


def _statements(models: AuditModels) -> _Statements:
    """The chain head's statements for a service's audit tables (built on first use; the entries and a
    new head are inserted with ``insert_rows``)."""
    found = _STATEMENTS.get(models)
    if found is None:
        head = models.head.__table__
        found = _STATEMENTS[models] = _Statements(
            head=Query(select(head.c.seq, head.c.hash).where(head.c.id == HEAD_ID).with_for_update()),
            # Only from where this transaction read it: the lock (or SQLite's single writer) makes that so.
            move=Query(
                update(head)
                .where(head.c.id == HEAD_ID, head.c.seq == bindparam("first"))
                .values(seq=bindparam("seq"), hash=bindparam("hash"))
            ),
        )
    return found


def sign_checkpoint(session: DBSession, models: AuditModels, signer: Signer, *, now: dt.datetime) -> Any | None:
    """Sign the head of the chain if it moved since the last checkpoint; return the new checkpoint."""
    head = session.get(models.head, HEAD_ID)
    if head is None or head.seq == 0:
        return None
    last = session.scalar(select(models.checkpoint.seq).order_by(models.checkpoint.seq.desc()).limit(1))
    if last is not None and last >= head.seq:
        return None
    claims = signer.claims(signer.member_id, now=now, seq=head.seq, hash=head.hash)
    checkpoint = models.checkpoint(
        seq=head.seq, hash=head.hash, at=now, token=signer.sign_compact(AUDIT_CHECKPOINT, claims)
    )
    session.add(checkpoint)
    return checkpoint


@dataclass(frozen=True)
class ChainSummary:
    entries: int
    checkpoints: int
    last_seq: int
    last_checkpoint_seq: int | None


def verify_chain(
    session: DBSession, models: AuditModels, *, trust: TrustStore, member_id: str, now: dt.datetime
) -> ChainSummary:
    """Check the whole chain and every checkpoint.

    Raises:
        ChainBrokenError: naming the first entry that was edited, deleted, inserted or reordered.
    """
    entry_model = models.entry
    previous, expected, hashes = GENESIS, 1, {}
    for entry in session.scalars(select(entry_model).order_by(entry_model.seq)).yield_per(1000):
        # 1. Sequence numbers run 1, 2, 3 ... without a gap: a gap is a deleted entry.
        if entry.seq != expected:
            raise ChainBrokenError(
                f"audit entry {expected} is missing (deleted); the chain goes on at {entry.seq}", seq=expected
            )
        # 2. Each entry's hash is the hash of its own content: otherwise it was edited.
        recomputed = entry_hash(
            seq=entry.seq,
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            object_type=entry.object_type,
            object_id=entry.object_id,
            detail=entry.detail,
            prev_hash=entry.prev_hash,
        )
        if recomputed != entry.hash:
            raise ChainBrokenError(
                f"audit entry {entry.seq} was edited: its content does not match its hash", seq=entry.seq
            )
        # 3. Each entry names the hash of the one before: otherwise entries were inserted, removed or
        #    reordered here, or the one before was rewritten with a recomputed hash.
        if entry.prev_hash != previous:
            raise ChainBrokenError(
                f"audit entry {entry.seq} does not follow entry {entry.seq - 1}: an entry was inserted, deleted "
                f"or reordered here, or entry {entry.seq - 1} was rewritten",
                seq=entry.seq,
            )
        hashes[entry.seq] = entry.hash
        previous, expected = entry.hash, expected + 1
    last_seq = expected - 1
    # 4. The head names the last entry: otherwise entries were cut from the end.
    head = session.get(models.head, HEAD_ID)
    if head is not None and (head.seq, head.hash) != (last_seq, previous):
        raise ChainBrokenError(
            f"the chain ends at entry {last_seq} but its head says {head.seq}: entries were deleted from the end",
            seq=min(head.seq, last_seq) + 1,
        )
    # 5. Every checkpoint is signed by this service and matches the entry it names.
    checkpoints = list(session.scalars(select(models.checkpoint).order_by(models.checkpoint.seq)))
    for checkpoint in checkpoints:
        signed = verify_jws(
            checkpoint.token, expected_typ=AUDIT_CHECKPOINT, trust=trust, now=now, clock_skew=dt.timedelta(seconds=300)
        )
        if signed.author.member_id != member_id or signed.claims["seq"] != checkpoint.seq:
            raise ChainBrokenError(
                f"the checkpoint at entry {checkpoint.seq} is not this service's", seq=checkpoint.seq
            )
        if checkpoint.seq > last_seq:
            raise ChainBrokenError(
                f"a signed checkpoint covers entry {checkpoint.seq} but the chain ends at {last_seq}: "
                "entries were deleted from the end",
                seq=last_seq + 1,
            )
        if hashes.get(checkpoint.seq) != signed.claims["hash"]:
            raise ChainBrokenError(
                f"entries up to {checkpoint.seq} differ from what was signed at that checkpoint: rewritten",
                seq=checkpoint.seq,
            )
    return ChainSummary(
        entries=last_seq,
        checkpoints=len(checkpoints),
        last_seq=last_seq,
        last_checkpoint_seq=checkpoints[-1].seq if checkpoints else None,
    )


CSV_COLUMNS = ("seq", "at", "actor", "action", "object_type", "object_id", "detail", "hash")


def export_csv(entries: Iterator[Any]) -> Iterator[str]:
    """The entries as CSV lines (the header first), for download or archive."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    for entry in entries:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(
            [
                entry.seq,
                _timestamp(entry.at),
                entry.actor,
                entry.action,
                entry.object_type,
                entry.object_id,
                json.dumps(entry.detail, sort_keys=True),
                entry.hash,
            ]
        )
        yield buffer.getvalue()


def entries_about(
    session: DBSession, models: AuditModels, object_type: str, object_id: str, *, limit: int
) -> list[Any]:
    """The newest ``limit`` entries about one object (a partner's calls, a case's history), newest first."""
    entry = models.entry
    query = (
        select(entry)
        .where(entry.object_id == object_id, entry.object_type == object_type)
        .order_by(entry.seq.desc())
        .limit(limit)
    )
    return list(session.scalars(query))
