"""The audit trail is tamper-evident: verification names the first entry edited, deleted, inserted or reordered.

The chain and its checkpoints live in a real database (SQLite here; the chain code is the same on
PostgreSQL, where appends are serialised by a row lock that the multi-process tests exercise). Tampering
is done the way an attacker with database access would: with SQL, recomputing hashes where that helps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import text

from audit.services import AuditLog, ChainBrokenError, entry_hash, sign_checkpoint, verify_chain
from certs.devnet import write_dev_network
from demo.network import read_toml, write_toml
from federation.runtime import runtime
from node import create_app
from node.audit.models import AUDIT


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    ids = write_dev_network(tmp_path / "pki")
    path = tmp_path / "node.toml"
    write_toml(
        path,
        {
            "TLS_CERT": str(ids["hotline-nl"].cert),
            "TLS_KEY": str(ids["hotline-nl"].key),
            "CA_CERT": str(tmp_path / "pki" / "ca" / "ca.pem"),
            "CRL": str(tmp_path / "pki" / "ca" / "crl.pem"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'node.db'}",
            "EXCHANGE_URL": "https://127.0.0.1:1",
            "SCHEDULER_ENABLED": False,
        },
    )
    return path


@pytest.fixture
def app(config_file: Path) -> Iterator[Flask]:
    application = create_app(read_toml(config_file), surface="worker")
    with application.app_context():
        runtime().db.create_all()
        yield application
        runtime().db.engine.dispose()


def write_entries(count: int, *, checkpoint_at: int | None = None) -> None:
    rt = runtime()
    # A minute ago, and after this test's certificates were issued (5 minutes' slack before issue): a time
    # taken when the module loads can be older than that in a long run.
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    for n in range(1, count + 1):
        log = AuditLog(rt.db.session, AUDIT)
        log.record(
            "account:alice", "case.status", "case", f"case-{n}", now=start + dt.timedelta(seconds=n), status="ntd_sent"
        )
        rt.db.session.commit()
        if checkpoint_at == n:
            sign_checkpoint(rt.db.session, AUDIT, rt.signer, now=start + dt.timedelta(seconds=n))
            rt.db.session.commit()


def verify() -> Any:
    rt = runtime()
    return verify_chain(rt.db.session, AUDIT, trust=rt.trust, member_id=rt.member_id, now=dt.datetime.now(dt.UTC))


def sql(statement: str, **params: Any) -> None:
    session = runtime().db.session
    session.execute(text(statement), params)
    session.commit()
    session.expire_all()


def rehash(seq: int) -> None:
    """Recompute an entry's own hash after editing it, as a careful attacker would."""
    session = runtime().db.session
    row = session.execute(text("SELECT * FROM audit_entries WHERE seq = :seq"), {"seq": seq}).mappings().one()
    entry = session.get(AUDIT.entry, seq)
    assert entry is not None
    digest = entry_hash(
        seq=row["seq"],
        at=entry.at,
        actor=row["actor"],
        action=row["action"],
        object_type=row["object_type"],
        object_id=row["object_id"],
        detail=entry.detail,
        prev_hash=row["prev_hash"],
    )
    sql("UPDATE audit_entries SET hash = :hash WHERE seq = :seq", hash=digest, seq=seq)


def broken_at() -> int:
    with pytest.raises(ChainBrokenError) as raised:
        verify()
    return raised.value.seq


def test_an_intact_chain_verifies_with_its_checkpoints(app: Flask) -> None:
    write_entries(5, checkpoint_at=3)
    summary = verify()
    assert (summary.entries, summary.checkpoints, summary.last_checkpoint_seq) == (5, 1, 3)


def test_entries_appended_together_chain_and_a_session_holding_the_head_sees_its_new_end(app: Flask) -> None:
    write_entries(1)
    session = runtime().db.session
    held = session.get(AUDIT.head, 1)
    assert held is not None and held.seq == 1
    log = AuditLog(session, AUDIT)
    now = dt.datetime.now(dt.UTC)
    for n in (2, 3):
        log.defer("member:hotline-de", "case.open", "case", f"case-{n}", now=now, destination="hotline-nl")
    log.flush()  # Appends with plain statements: the object the session holds must not go stale.
    head = session.get(AUDIT.head, 1)
    assert head is not None and head.seq == 3
    session.commit()
    assert verify().entries == 3


def test_an_edited_entry_is_named(app: Flask) -> None:
    write_entries(5)
    sql("UPDATE audit_entries SET actor = 'account:mallory' WHERE seq = 3")
    assert broken_at() == 3


def test_an_edited_entry_with_a_recomputed_hash_breaks_the_next_link(app: Flask) -> None:
    write_entries(5)
    sql("UPDATE audit_entries SET object_id = 'case-other' WHERE seq = 3")
    rehash(3)
    assert broken_at() == 4


def test_a_deleted_entry_is_named(app: Flask) -> None:
    write_entries(5)
    sql("DELETE FROM audit_entries WHERE seq = 2")
    with pytest.raises(ChainBrokenError, match="entry 2 is missing"):
        verify()


def test_an_inserted_entry_is_found(app: Flask) -> None:
    write_entries(4)
    # Make room after entry 2 and slip an entry in, renumbering the rest: their hashes no longer match.
    sql("UPDATE audit_entries SET seq = seq + 10 WHERE seq > 2")
    sql("UPDATE audit_entries SET seq = seq - 9 WHERE seq > 10")
    sql(
        "INSERT INTO audit_entries (seq, at, actor, action, object_type, object_id, detail, prev_hash, hash) "
        "SELECT 3, at, 'account:mallory', 'case.view', 'case', 'case-x', '{}', hash, hash "
        "FROM audit_entries WHERE seq = 2"
    )
    rehash(3)
    assert broken_at() == 4


def test_reordered_entries_are_found(app: Flask) -> None:
    write_entries(4)
    sql("UPDATE audit_entries SET seq = 99 WHERE seq = 2")
    sql("UPDATE audit_entries SET seq = 2 WHERE seq = 3")
    sql("UPDATE audit_entries SET seq = 3 WHERE seq = 99")
    assert broken_at() == 2


def test_entries_cut_from_the_end_are_found_by_the_head_and_the_checkpoint(app: Flask) -> None:
    write_entries(5, checkpoint_at=5)
    sql("DELETE FROM audit_entries WHERE seq >= 4")
    sql("UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit_entries WHERE seq = 3)")
    with pytest.raises(ChainBrokenError, match="checkpoint covers entry 5"):
        verify()


def test_a_rewritten_chain_does_not_match_its_signed_checkpoint(app: Flask) -> None:
    write_entries(3, checkpoint_at=3)
    sql("UPDATE audit_entries SET actor = 'account:mallory' WHERE seq = 1")
    for seq in (1, 2, 3):  # Recompute every hash and link: the chain is consistent again...
        if seq > 1:
            sql(
                "UPDATE audit_entries SET prev_hash = (SELECT hash FROM audit_entries WHERE seq = :prev) "
                "WHERE seq = :seq",
                prev=seq - 1,
                seq=seq,
            )
        rehash(seq)
    sql("UPDATE audit_head SET hash = (SELECT hash FROM audit_entries WHERE seq = 3)")
    with pytest.raises(ChainBrokenError, match="differ from what was signed"):  # ...but not what was signed.
        verify()


def test_the_verify_command_exits_non_zero_naming_the_entry(app: Flask, config_file: Path) -> None:
    from node.cli import main

    write_entries(4)
    runner = CliRunner()
    env = {"NODE_CONFIG": str(config_file)}
    intact = runner.invoke(main, ["audit", "verify"], env=env)
    assert intact.exit_code == 0 and "audit trail intact: 4 entries" in intact.output
    signed = runner.invoke(main, ["audit", "checkpoint"], env=env)
    assert signed.exit_code == 0 and "checkpoint signed at entry 4" in signed.output
    sql('UPDATE audit_entries SET detail = \'{"status": "removed"}\' WHERE seq = 2')
    broken = runner.invoke(main, ["audit", "verify"], env=env)
    assert broken.exit_code == 1 and "audit entry 2 was edited" in broken.output
