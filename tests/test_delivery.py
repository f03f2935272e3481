"""Delivery bookkeeping with a controlled clock and random source: backoff, cap, jitter, dead letters, reset.

The node app runs in-process against a real SQLite database; its exchange address is a closed port
on loopback, so every attempt really fails to connect.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from certs.devnet import write_dev_network
from demo.network import free_port
from federation.runtime import Runtime, runtime
from node import create_app
from node.messaging.models import Outbox, Peer
from node.reports.services import confirm_report
from service.config import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def node_config(root: Path, **overrides: Any) -> dict[str, Any]:
    ids = write_dev_network(root / "pki")
    return {
        "TLS_CERT": str(ids["hotline-nl"].cert),
        "TLS_KEY": str(ids["hotline-nl"].key),
        "CA_CERT": str(root / "pki" / "ca" / "ca.pem"),
        "CRL": str(root / "pki" / "ca" / "crl.pem"),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{root / 'node.db'}",
        "EXCHANGE_URL": f"https://127.0.0.1:{free_port()}",
        "SCHEDULER_ENABLED": False,
        "DELIVERY_BACKOFF_BASE_SECONDS": 2.0,
        "DELIVERY_BACKOFF_CAP_SECONDS": 60.0,
        "DELIVERY_MAX_ATTEMPTS": 10,
        **overrides,
    }


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    application = create_app(node_config(tmp_path))
    with application.app_context():
        runtime().db.create_all()
        yield application
        runtime().db.engine.dispose()


def queue_report(rt: Runtime) -> str:
    report, _ = confirm_report(
        rt.db.session,
        signer=rt.signer,
        outbox=rt.outbox(),
        exchange_id="exchange",
        unverified_input={"url": "http://x.example/", "hosting_country": "DE", "legal_status": "baseline"},
        now=rt.clock(),
    )
    rt.db.session.commit()
    return report.id


def test_backoff_doubles_with_jitter_caps_and_ends_in_dead_letter(app: Flask) -> None:
    rt = runtime()
    clock = Clock()
    rt.clock, rt.rng = clock, random.Random(7)
    queue_report(rt)
    delays = []
    for _ in range(10):
        assert rt.deliverer().deliver_batch("exchange") == 0
        peer = rt.db.session.get(Peer, "exchange")
        delay = (peer.next_attempt_at - clock.now).total_seconds()
        delays.append(delay)
        # Not due yet: a second try now sends nothing and counts no attempt.
        attempts = rt.db.session.query(Outbox).one().attempts
        assert rt.deliverer().deliver_batch("exchange") == 0
        assert rt.db.session.query(Outbox).one().attempts == attempts
        clock.advance(delay + 0.001)
    for failures, delay in enumerate(delays, start=1):
        nominal = min(60.0, 2.0 * 2 ** (failures - 1))
        assert nominal * 0.5 <= delay <= nominal, (failures, delay)
    assert len(set(delays)) == len(delays)  # Jittered, not lock-step.
    row = rt.db.session.query(Outbox).one()
    assert (row.state, row.attempts) == ("dead", 10)
    assert row.last_error.startswith("undeliverable: out of attempts; last error: POST https://127.0.0.1:")


def test_a_peer_that_talks_to_us_is_retried_at_once(app: Flask) -> None:
    rt = runtime()
    clock = Clock()
    rt.clock = clock
    queue_report(rt)
    rt.deliverer().deliver_batch("exchange")
    rt.deliverer().deliver_batch("exchange")
    assert rt.deliverer().due_destinations() == []
    rt.deliverer().peer_contacted("exchange", clock.now, certificate_not_after=clock.now)
    rt.db.session.commit()
    assert rt.deliverer().due_destinations() == ["exchange"]


def test_an_unexpected_failure_counts_as_a_failed_attempt_with_backoff(app: Flask, tmp_path: Path) -> None:
    """Our own failure (here: the CRL file vanished while a peer's certificate is checked) is no tight loop."""
    import threading

    from federation.transport import make_server

    rt = runtime()
    clock = Clock()
    rt.clock = clock
    pki = tmp_path / "pki"
    port = int(app.config["EXCHANGE_URL"].rsplit(":", 1)[1])
    server = make_server(
        lambda environ, start: [],
        host="127.0.0.1",
        port=port,
        certificate=pki / "exchange" / "cert.pem",
        key=pki / "exchange" / "key.pem",
        ca=pki / "ca" / "ca.pem",
        threads=2,
    )
    server.prepare()
    threading.Thread(target=server.serve, daemon=True).start()
    try:
        queue_report(rt)
        (pki / "ca" / "crl.pem").unlink()
        assert rt.deliverer().deliver_batch("exchange") == 0
        row = rt.db.session.query(Outbox).one()
        assert (row.state, row.attempts, row.last_error) == ("pending", 1, "internal error: TrustStoreError")
        peer = rt.db.session.get(Peer, "exchange")
        assert peer is not None and peer.failures == 1 and peer.next_attempt_at > clock.now
        assert rt.deliverer().due_destinations() == []  # Backing off, not retried at once.
    finally:
        server.stop()


def test_outbox_and_report_are_one_unit_of_work(app: Flask) -> None:
    from node.reports.models import Report

    rt = runtime()
    confirm_report(
        rt.db.session,
        signer=rt.signer,
        outbox=rt.outbox(),
        exchange_id="exchange",
        unverified_input={"url": "http://x.example/", "hosting_country": "DE", "legal_status": "baseline"},
        now=rt.clock(),
    )
    assert rt.db.session.query(Outbox).count() == 1  # Flushed, inside the unit of work...
    rt.db.session.rollback()  # ...which the request layer rolls back on any error:
    assert (rt.db.session.query(Report).count(), rt.db.session.query(Outbox).count()) == (0, 0)
    queue_report(rt)
    assert (rt.db.session.query(Report).count(), rt.db.session.query(Outbox).count()) == (1, 1)


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"TLS_CERT": ""}, "TLS_CERT"),
        ({"CA_CERT": "/nowhere/ca.pem"}, "CA_CERT"),
        ({"CLOCK_SKEW_SECONDS": -1}, "CLOCK_SKEW_SECONDS"),
        ({"DELIVERY_BATCH_SIZE": "many"}, "DELIVERY_BATCH_SIZE"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path: Path, overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        create_app(node_config(tmp_path, **overrides))
