"""One member cannot hurt the others: long-polls, rate limits, suspension and revocation on open polls.

Real processes on loopback, on SQLite and on PostgreSQL. The one timing bound here is functional, not a
benchmark: a transaction that waits for a request thread held by another member's long-polls would take
the whole poll length (20 s); it must be answered long before that.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from cryptography import x509

from certs import authority
from demo.network import Network
from tests.forgery import peer_as, report_claims
from tests.test_routing import wait_until


def poll(network: Network, member: str, wait: int = 20) -> requests.Response:
    """Open a long-poll on the exchange's mailbox as ``member``."""
    spec = network.layout.members[member]
    session = requests.Session()
    session.trust_env = False
    return session.get(
        f"{network.layout.exchange.url}/v1/mailbox?wait={wait}",
        cert=(str(spec.cert), str(spec.key)),
        verify=str(network.layout.ca_cert),
        timeout=60,
    )


def test_a_new_poll_ends_the_members_older_one(network_factory: Any) -> None:
    network = network_factory()
    network.start("exchange")
    with ThreadPoolExecutor(2) as pool:
        older = pool.submit(poll, network, "hotline-fr")
        time.sleep(0.5)
        newer = pool.submit(poll, network, "hotline-fr", 2)
        started = time.monotonic()
        assert older.result(timeout=10).status_code == 204
        assert time.monotonic() - started < 5  # It answered when superseded, not after its 20 s.
        assert newer.result(timeout=10).status_code == 204


def test_one_member_holding_many_polls_does_not_starve_anothers_transaction(network_factory: Any) -> None:
    network = network_factory(SERVER_THREADS=8, MAILBOX_MAX_POLLS=4)
    network.start("exchange")
    with ThreadPoolExecutor(20) as pool:
        polls = [pool.submit(poll, network, "hotline-fr", 4) for _ in range(20)]
        time.sleep(1.0)
        nl = peer_as(network.layout, "hotline-nl")
        started = time.monotonic()
        response = nl.post(nl.transaction([]))
        elapsed = time.monotonic() - started
        assert response.status_code == 200 and elapsed < 5, elapsed
        assert {p.result(timeout=60).status_code for p in polls} <= {204, 429}


def test_too_many_requests_from_one_member_are_refused_with_retry_after(network_factory: Any) -> None:
    network = network_factory(RATE_LIMIT_TRANSACTIONS="5/second")
    network.start("exchange")
    nl, sec = peer_as(network.layout, "hotline-nl"), peer_as(network.layout, "secretariat")
    answers = [nl.post(nl.transaction([])) for _ in range(12)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].json()["error"] == "rate_limited" and int(limited[0].headers["Retry-After"]) >= 1
    assert sec.post(sec.transaction([])).status_code == 200  # Another member is not affected.


def test_suspension_ends_an_open_long_poll(network_factory: Any) -> None:
    network = network_factory()
    network.start("exchange")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(poll, network, "hotline-fr")
        time.sleep(0.5)
        env = {"EXCHANGE_CONFIG": str(network.layout.exchange.config)}
        subprocess.run(
            [sys.executable, "-c", "from exchange.cli import main; main()", "members", "suspend", "hotline-fr"],
            env={**__import__("os").environ, **env},
            check=True,
            capture_output=True,
            timeout=60,
        )
        answer = pending.result(timeout=15)
    assert (answer.status_code, answer.json()["error"]) == (403, "member_suspended")


def test_revocation_ends_an_open_long_poll_before_anything_is_handed_over(network_factory: Any) -> None:
    network = network_factory()
    network.start("exchange")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(poll, network, "hotline-fr")
        time.sleep(0.5)
        fr = network.layout.members["hotline-fr"]
        serial = x509.load_pem_x509_certificate(fr.cert.read_bytes()).serial_number
        authority.revoke(network.layout.ca_dir, serial, reason="keyCompromise")
        # Something for hotline-fr arrives: it must not be handed to the revoked key.
        nl = peer_as(network.layout, "hotline-nl")
        claims = report_claims(nl.signer, f"http://for-fr.example/{uuid.uuid4()}", country="FR")
        nl.post(nl.transaction([nl.signer.sign_compact("hotline.report.v1", claims)]))
        answer = pending.result(timeout=15)
    assert (answer.status_code, answer.json()["error"]) == (403, "certificate_revoked")


def test_a_pull_node_retries_the_exchange_at_once_when_it_hears_from_it(network_factory: Any) -> None:
    # A long backoff: without the reset, the report would wait up to a minute after the exchange returns.
    network = network_factory(DELIVERY_BACKOFF_BASE_SECONDS=30.0, DELIVERY_BACKOFF_CAP_SECONDS=60.0)
    network.start("hotline-fr")  # Pull mode; the exchange is down.
    fr = network.client("hotline-fr")
    report = fr.report(url="http://after-outage.example/", hosting_country="DE", legal_status="baseline")
    peers = "SELECT failures FROM peers WHERE member_id = 'exchange'"
    from tests.conftest import query

    wait_until(
        lambda: (
            bool(query(network.layout.members["hotline-fr"].database, peers))
            and query(network.layout.members["hotline-fr"].database, peers)[0][0] >= 1
        ),
        what="hotline-fr backing off",
    )
    network.start("exchange")
    started = time.monotonic()
    wait_until(
        lambda: bool(query(network.layout.exchange.database, "SELECT 1 FROM cases WHERE id = :id", id=report["id"])),
        timeout=12,
        what="the report at the exchange",
    )
    assert time.monotonic() - started < 12  # Its own backoff (15 to 30 s) would have kept it waiting.


def test_several_long_polls_of_several_members_never_block_each_other(network_factory: Any) -> None:
    network = network_factory()
    network.start("exchange")
    results: dict[str, int] = {}

    def run(member: str) -> None:
        results[member] = poll(network, member, 1).status_code

    threads = [threading.Thread(target=run, args=(m,)) for m in ("hotline-fr", "hotline-nl", "secretariat")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert results == {"hotline-fr": 204, "hotline-nl": 204, "secretariat": 204}
