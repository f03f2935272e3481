"""Two exchange processes on one PostgreSQL: poisoned and genuine reports race, nothing is lost or doubled.

Every member pulls (no inbound port), each from one of the two exchange processes, so documents are
committed by one process and collected, acknowledged and settled through the other. A hostile member
announces the fingerprint of a genuine URL with a decoy body while three hotlines report that URL and
others for real, all at once. Every genuine report must reach the hotline of its hosting country exactly
once.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from certs.devnet import DEV_MEMBERS, DevMember
from demo.network import Service, ServiceSpec, free_port, read_toml, write_toml
from federation.canonical import url_fingerprint
from tests.conftest import PostgresDatabases, make_network, query
from tests.forgery import peer_as, report_claims
from tests.test_routing import wait_until

PULL_MEMBERS = tuple(
    DevMember(m.member_id, m.name, m.countries, fallback=m.fallback, inbound="pull") for m in DEV_MEMBERS
)


@pytest.fixture
def two_exchanges(tmp_path: Path) -> Any:
    postgres = PostgresDatabases()
    network = make_network(tmp_path / "net", "postgresql", postgres, members=PULL_MEMBERS)
    layout = network.layout
    # A second exchange: the same identity and database, its own network surface and its own worker
    # (which waits on the worker lock, and takes over if the first worker dies).
    second = ServiceSpec(**{**layout.exchange.__dict__, "port": free_port(), "config": layout.root / "exchange-b.toml"})
    write_toml(second.config, {**read_toml(layout.exchange.config), "PORT": second.port})
    # hotline-de and the secretariat talk to the second process; the others to the first.
    for member in ("hotline-de", "secretariat"):
        config = layout.members[member].config
        write_toml(config, {**read_toml(config), "EXCHANGE_URL": second.url})
    network.processes["exchange-b"] = Service(
        second, layout.root / "logs", label="exchange-b", launcher=network.launcher
    )
    yield network, second
    network.stop()
    postgres.drop_all()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_exchange_processes_deliver_every_genuine_report_exactly_once(backend: str, two_exchanges: Any) -> None:
    network, second = two_exchanges
    network.start()
    network.processes["exchange-b"].start(("network", "worker"))
    network.processes["exchange-b"].surfaces["network"].wait_ready()
    for member in ("hotline-nl", "hotline-fr", "secretariat"):
        network.client(member)  # Start their consoles before the threads race to use them.
    contested = f"http://contested.example/{uuid.uuid4()}"
    genuine: list[str] = []
    lock = threading.Lock()

    def report(member: str, url: str, priority: str = "normal") -> None:
        client = network.client(member)
        for _ in range(100):
            try:
                created = client.report(url=url, hosting_country="DE", legal_status="baseline", priority=priority)
                break
            except RuntimeError:
                time.sleep(0.1)
        with lock:
            genuine.append(created["id"])

    def poison() -> None:
        forger = peer_as(network.layout, "hotline-fr", url=second.url)
        claims = report_claims(
            forger.signer, "http://decoy.example/", country="DE", url_fingerprint=url_fingerprint(contested)
        )
        token = forger.signer.sign_compact("hotline.report.v1", claims)
        for _ in range(100):
            if forger.post(forger.transaction([token])).status_code == 200:
                return
            time.sleep(0.1)

    jobs = [threading.Thread(target=poison)]
    jobs += [threading.Thread(target=report, args=(m, contested, "urgent")) for m in ("hotline-nl", "secretariat")]
    jobs += [
        threading.Thread(target=report, args=(m, f"http://{m}.example/{n}"))
        for m in ("hotline-nl", "hotline-fr", "secretariat")
        for n in range(10)
    ]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(60)
    assert len(genuine) == 32

    de_db = network.layout.members["hotline-de"].database

    def arrived() -> list[Any]:
        return query(de_db, "SELECT id, count(*) FROM inbound_reports GROUP BY id")

    wait_until(lambda: {row[0] for row in arrived()} >= set(genuine), timeout=90, what="every genuine report at DE")
    time.sleep(1.0)  # Anything delivered twice would show now.
    rows = arrived()
    assert {row[0] for row in rows} == set(genuine)
    assert all(count == 1 for _, count in rows)
    # The contested URL is one case at hotline-de, with both genuine reporters; the decoy is nowhere.
    contested_cases = query(
        de_db, "SELECT case_id, count(*) FROM inbound_reports WHERE url = :url GROUP BY case_id", url=contested
    )
    assert [count for _, count in contested_cases] == [2]
    assert query(de_db, "SELECT count(*) FROM inbound_reports WHERE url = 'http://decoy.example/'") == [(0,)]
    exchange_db = network.layout.exchange.database
    states = dict(query(exchange_db, "SELECT state, count(*) FROM cases GROUP BY state"))
    assert states.get("rejected", 0) <= 1  # The decoy's case, if it opened one before a genuine report did.
