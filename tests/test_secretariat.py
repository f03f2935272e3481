"""The secretariat's work on a running network: onboarding a member from its request, suspension and
reinstatement, certificate rotation during traffic, routing overrides, dead letters re-queued or closed,
and the CRL members fetch. Real processes on loopback, on SQLite and on PostgreSQL; the secretariat works
through the exchange's command line here (the console is driven in tests/browser/test_secretariat.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cryptography import x509

from certs import authority
from certs.devnet import DEV_MEMBERS, DevMember, issue_dev_identity
from demo.network import Network, read_toml, write_toml
from tests.conftest import query, query_plan
from tests.test_routing import wait_until

BE = DevMember("hotline-be", "Hotline Belgium (dev)", ("BE",))


def run_cli(module: str, config: tuple[str, Path], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A service's command line (``exchange.cli`` or ``node.cli``) with its configuration, as an operator runs it."""
    done = subprocess.run(
        [sys.executable, "-c", f"from {module} import main; main()", *args],
        env={**os.environ, config[0]: str(config[1])},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def exchange_cli(network: Network, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli("exchange.cli", ("EXCHANGE_CONFIG", network.layout.exchange.config), *args, check=check)


def test_a_member_onboarded_from_its_request_exchanges_reports(network_factory: Any, tmp_path: Any) -> None:
    # The layout made hotline-be a key and certificate but no directory entry: it joins from a request.
    network: Network = network_factory(members=(*DEV_MEMBERS, BE), unregistered=("hotline-be",))
    be = network.layout.spec("hotline-be")
    network.start("exchange", "hotline-nl", "hotline-de")
    pair = authority.new_key_and_csr("hotline-be")
    csr = tmp_path / "be.csr"
    csr.write_bytes(pair.csr_pem)

    refused = exchange_cli(
        network,
        "members",
        "onboard",
        "hotline-be",
        "--name",
        "Hotline Belgium",
        "--country",
        "DE",
        "--csr",
        str(csr),
        "--out",
        str(tmp_path / "x.pem"),
        check=False,
    )
    assert refused.returncode != 0 and "hotline-de already covers DE" in refused.stderr
    garbage = tmp_path / "garbage.csr"
    garbage.write_text("not a request")
    refused = exchange_cli(
        network,
        "members",
        "onboard",
        "hotline-be",
        "--name",
        "Hotline Belgium",
        "--country",
        "BE",
        "--csr",
        str(garbage),
        "--out",
        str(tmp_path / "x.pem"),
        check=False,
    )
    assert refused.returncode != 0 and "certificate signing request" in refused.stderr
    assert query(network.layout.exchange.database, "SELECT count(*) FROM members WHERE id = 'hotline-be'") == [(0,)]

    done = exchange_cli(
        network,
        "members",
        "onboard",
        "hotline-be",
        "--name",
        "Hotline Belgium (dev)",
        "--country",
        "BE",
        "--contact",
        "it-desk@hotline-be.example",
        "--endpoint",
        be.url,
        "--csr",
        str(csr),
        "--out",
        str(be.cert),
    )
    assert "onboarded" in done.stdout
    be.key.unlink()
    authority.write_private_key(be.key, pair.key_pem)
    network.start("hotline-be")

    nl, node_be = network.client("hotline-nl"), network.client("hotline-be")
    report = nl.report(url="http://welcome.example/first", hosting_country="BE", legal_status="baseline")
    case = node_be.wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    assert case["origin"] == "hotline-nl"
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["destination"] == "hotline-be" and r["received_at"])
    certificates = json.loads(exchange_cli(network, "members", "certificates", "hotline-be").stdout)
    assert [c["state"] for c in certificates] == ["current"]
    actions = [
        row[0]
        for row in query(
            network.layout.exchange.database,
            "SELECT action FROM audit_entries WHERE object_id = 'hotline-be' ORDER BY seq",
        )
    ]
    assert actions[:2] == ["member.save", "member.onboard"]


def test_suspended_members_countries_go_to_the_fallback_and_reinstating_refuses_a_taken_country(
    network: Network,
) -> None:
    nl = network.client("hotline-nl")
    exchange_cli(network, "members", "suspend", "hotline-de", "--reason", "server migration")
    routes = json.loads(exchange_cli(network, "routing", "show").stdout)
    assert {r["country"]: (r["member"], r["how"]) for r in routes["routes"]}["DE"] == ("secretariat", "fallback")
    report = nl.report(url="http://paused.example/1", hosting_country="DE", legal_status="baseline")
    network.client("secretariat").wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["destination"] == "secretariat")

    # Meanwhile another member takes AT: hotline-de cannot come back while AT is covered twice.
    exchange_cli(network, "members", "add", "hotline-at", "--name", "Hotline Austria", "--country", "AT")
    refused = exchange_cli(network, "members", "reinstate", "hotline-de", check=False)
    assert refused.returncode != 0 and "hotline-at covers AT now" in refused.stderr
    exchange_cli(network, "members", "suspend", "hotline-at", "--reason", "test member")
    exchange_cli(network, "members", "reinstate", "hotline-de")
    again = nl.report(url="http://paused.example/2", hosting_country="DE", legal_status="baseline")
    network.client("hotline-de").wait_for(f"/api/v1/received/{again['id']}", lambda c: True)
    actions = query(
        network.layout.exchange.database,
        "SELECT action FROM audit_entries WHERE object_id = 'hotline-de' AND action = 'member.status' ORDER BY seq",
    )
    assert len(actions) == 2


def test_an_override_sends_a_countrys_reports_to_another_member_until_it_is_removed(network: Network) -> None:
    nl, de, sec = network.client("hotline-nl"), network.client("hotline-de"), network.client("secretariat")
    before = nl.report(url="http://overridden.example/1", hosting_country="BE", legal_status="baseline")
    sec.wait_for(f"/api/v1/received/{before['id']}", lambda c: True)  # Nobody covers BE: the fallback.

    refused = exchange_cli(network, "routing", "override", "BE", "hotline-xx", "--reason", "x", check=False)
    assert refused.returncode != 0 and "not an active member" in refused.stderr
    refused = exchange_cli(
        network, "routing", "override", "BE", "hotline-de", "--reason", "x", "--until", "2020-01-01", check=False
    )
    assert refused.returncode != 0 and "future" in refused.stderr
    exchange_cli(network, "routing", "override", "be", "hotline-de", "--reason", "BE hotline not yet a member")
    routes = {r["country"]: r for r in json.loads(exchange_cli(network, "routing", "show").stdout)["routes"]}
    assert routes["BE"]["member"] == "hotline-de" and routes["BE"]["how"] == "override"

    # hotline-de does not cover BE by its certificate: it accepts the report because the directory says so,
    # and hotline-nl accepts hotline-de's receipt for the same reason.
    during = nl.report(url="http://overridden.example/2", hosting_country="BE", legal_status="baseline")
    de.wait_for(f"/api/v1/received/{during['id']}", lambda c: True)
    nl.wait_for(f"/api/v1/reports/{during['id']}", lambda r: r["destination"] == "hotline-de" and r["received_at"])

    exchange_cli(network, "routing", "clear", "BE", "--reason", "test over")
    after = nl.report(url="http://overridden.example/3", hosting_country="BE", legal_status="baseline")
    sec.wait_for(f"/api/v1/received/{after['id']}", lambda c: True)
    actions = [
        row[0]
        for row in query(
            network.layout.exchange.database, "SELECT action FROM audit_entries WHERE object_id = 'BE' ORDER BY seq"
        )
    ]
    assert actions == ["routing.override", "routing.override_removed"]


def test_a_dead_letter_is_requeued_once_the_cause_is_fixed_and_another_closed(network_factory: Any) -> None:
    network: Network = network_factory(DELIVERY_MAX_ATTEMPTS=3)
    network.start()
    nl, de = network.client("hotline-nl"), network.client("hotline-de")
    exchange_db = network.layout.exchange.database
    network.processes["hotline-de"].stop()  # Down: every delivery to it fails until it runs out of attempts.
    lost = nl.report(url="http://dead.example/requeue", hosting_country="DE", legal_status="baseline")
    closed = nl.report(url="http://dead.example/close", hosting_country="DE", legal_status="baseline")
    for report in (lost, closed):
        refused = nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "refused", timeout=60)
        assert refused["refused"]["reason"] == "undeliverable"
    letters = {row["doc_id"]: row for row in json.loads(exchange_cli(network, "dead-letters", "list").stdout)}
    assert {lost["id"], closed["id"]} <= set(letters)
    assert letters[lost["id"]]["error"].startswith("undeliverable")
    assert query(exchange_db, "SELECT state FROM cases WHERE id = :id", id=lost["id"]) == [("rejected",)]

    refused = exchange_cli(
        network, "dead-letters", "requeue", str(letters[lost["id"]]["id"]), "--reason", " ", check=False
    )
    assert refused.returncode != 0 and "say what was fixed" in refused.stderr
    network.processes["hotline-de"].start()
    network.processes["hotline-de"].wait_ready()
    done = exchange_cli(
        network, "dead-letters", "requeue", str(letters[lost["id"]]["id"]), "--reason", "hotline-de is back"
    )
    assert "re-queued for hotline-de" in done.stdout
    de.wait_for(f"/api/v1/received/{lost['id']}", lambda c: True)
    received = nl.wait_for(f"/api/v1/reports/{lost['id']}", lambda r: r["state"] == "received")
    assert received["refused"] is None and received["destination"] == "hotline-de"
    assert query(exchange_db, "SELECT state FROM cases WHERE id = :id", id=lost["id"]) == [("confirmed",)]

    exchange_cli(network, "dead-letters", "close", str(letters[closed["id"]]["id"]), "--reason", "origin resubmits")
    again = exchange_cli(
        network, "dead-letters", "requeue", str(letters[closed["id"]]["id"]), "--reason", "x", check=False
    )
    assert again.returncode != 0 and "closed already" in again.stderr
    assert query(exchange_db, "SELECT token FROM outbox WHERE id = :id", id=letters[closed["id"]]["id"]) == [(None,)]
    assert json.loads(exchange_cli(network, "dead-letters", "list").stdout) == []


def test_a_rotation_during_traffic_refuses_nothing(network_factory: Any, tmp_path: Any) -> None:
    """hotline-de gets a new key and certificate while reports flow to it; its old certificate works for the
    overlap, then the worker revokes it as superseded and republishes the CRL. Nothing is refused or lost."""
    network: Network = network_factory(ROTATION_OVERLAP_HOURS=0.006, CERTIFICATES_SECONDS=1)
    network.start()
    nl, de = network.client("hotline-nl"), network.client("hotline-de")
    sent: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            sent.append(
                nl.report(url=f"http://rotation.example/{len(sent)}", hosting_country="DE", legal_status="baseline")[
                    "id"
                ]
            )
            time.sleep(0.05)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        time.sleep(1.5)
        spec = network.layout.spec("hotline-de")
        pair = authority.new_key_and_csr("hotline-de")
        csr = tmp_path / "de.csr"
        csr.write_bytes(pair.csr_pem)
        new_cert = tmp_path / "de-new.pem"
        exchange_cli(network, "members", "rotate", "hotline-de", "--csr", str(csr), "--out", str(new_cert))
        # The member installs its new key and certificate and restarts, while the old one still works.
        network.processes["hotline-de"].stop()
        spec.key.unlink()
        authority.write_private_key(spec.key, pair.key_pem)
        spec.cert.write_bytes(new_cert.read_bytes())
        network.processes["hotline-de"].start()
        network.processes["hotline-de"].wait_ready()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            states = [
                c["state"] for c in json.loads(exchange_cli(network, "members", "certificates", "hotline-de").stdout)
            ]
            if sorted(states) == ["current", "superseded"]:
                break
            time.sleep(0.5)
        assert sorted(states) == ["current", "superseded"]
        time.sleep(1.0)
    finally:
        stop.set()
        sender.join()
    for report_id in sent:
        nl.wait_for(f"/api/v1/reports/{report_id}", lambda r: r["state"] == "received", timeout=60)
    assert len(de.items("/api/v1/received?per_page=200")) == len(sent) > 20
    assert json.loads(exchange_cli(network, "dead-letters", "list").stdout) == []
    assert query(network.layout.spec("hotline-nl").database, "SELECT count(*) FROM outbox WHERE state = 'dead'") == [
        (0,)
    ]


def node_cli(network: Network, member_id: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli("node.cli", ("NODE_CONFIG", network.layout.spec(member_id).config), *args, check=check)


def test_nodes_fetch_the_crl_and_keep_working_from_their_copies_while_the_exchange_is_away(
    network_factory: Any,
) -> None:
    network: Network = network_factory()
    # hotline-nl keeps its own copy of the CRL (the others read the CA's file, as in the demo).
    spec = network.layout.spec("hotline-nl")
    own_crl = spec.config.parent / "hotline-nl-crl.pem"
    own_crl.write_bytes(network.layout.crl.read_bytes())
    write_toml(spec.config, {**read_toml(spec.config), "CRL": str(own_crl)})
    network.start()
    nl = network.client("hotline-nl")
    current = authority.crl_number(network.layout.crl.read_bytes())
    assert f"CRL #{current} is current" in node_cli(network, "hotline-nl", "tasks", "run", "refresh-crl").stdout
    # The worker refreshes once at start too: let that run first, so the new CRL below is the command's.
    worker_log = network.processes["hotline-nl"].log_path
    wait_until(lambda: "task refresh-crl ran at start" in worker_log.read_text(errors="replace"), timeout=60)

    # The secretariat revokes a stray certificate: the CA republishes; hotline-nl installs the new list.
    stray = issue_dev_identity(network.layout.ca_dir, network.layout.root / "stray", "hotline-fr", countries=("FR",))
    serial = x509.load_pem_x509_certificate(stray.cert.read_bytes()).serial_number
    authority.revoke(network.layout.ca_dir, serial, reason="keyCompromise")
    assert authority.crl_number(own_crl.read_bytes()) == current
    ran = node_cli(network, "hotline-nl", "tasks", "run", "refresh-crl").stdout
    assert f"CRL #{current + 1} installed" in ran
    assert own_crl.read_bytes() == network.layout.crl.read_bytes()
    fetched = query(
        network.layout.exchange.database, "SELECT crl_number FROM crl_fetches WHERE member_id = 'hotline-nl'"
    )
    assert fetched == [(current + 1,)]

    # The exchange goes away; hotline-nl restarts and keeps taking reports from its directory and CRL copies.
    network.processes["exchange"].stop()
    failed = node_cli(network, "hotline-nl", "tasks", "run", "refresh-crl", check=False)
    assert failed.returncode != 0 and own_crl.read_bytes() == network.layout.crl.read_bytes()
    network.processes["hotline-nl"].stop()
    network.processes["hotline-nl"].start()
    network.processes["hotline-nl"].wait_ready()
    report = nl.report(url="http://while-away.example/", hosting_country="DE", legal_status="baseline")
    assert report["state"] == "sent"
    network.processes["exchange"].start()
    network.processes["exchange"].wait_ready()
    network.client("hotline-de").wait_for(f"/api/v1/received/{report['id']}", lambda c: True, timeout=60)
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "received", timeout=60)


def test_the_dead_letters_are_read_from_their_own_index_not_the_whole_outbox(store: Any) -> None:
    """The outbox keeps a row for every document ever sent; the list of dead letters (every destination)
    reads a partial index of the dead rows alone, newest first, and the latest settled ones start from
    their own index, on both databases."""
    import datetime as dt
    import re

    from sqlalchemy import func, insert, select
    from sqlalchemy.orm import Session

    from console import paginate
    from exchange.deadletters.models import DeadLetterAction
    from exchange.deadletters.services import open_letters, settled_letters
    from exchange.messaging.models import Outbox

    at = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)
    states = {n: "delivered" for n in range(1, 5001)} | {n: "dead" for n in (7, 1234, 4321, 4999)}
    settled = {n: "closed" for n in range(2000, 4000)}  # Closed by the secretariat over time.
    states |= {n: "pending" for n in (4990, 4991)} | settled
    with Session(store("exchange")) as session:
        session.execute(
            insert(Outbox),
            [
                {
                    "id": n,
                    "destination": "hotline-fr" if n == 4321 else f"hotline-{n % 40}",
                    "author": "hotline-nl",
                    "doc_id": f"{n:036d}",
                    "typ": "hotline.report.v1",
                    "token": None,
                    "priority": 1,
                    "state": state,
                    "attempts": 1,
                    "created_at": at,
                }
                for n, state in states.items()
            ],
        )
        session.execute(
            insert(DeadLetterAction),
            [
                {
                    "outbox_id": n,
                    "action": "closed",
                    "reason": "spam",
                    "at": at + dt.timedelta(minutes=n),
                    "by": "admin",
                }
                for n in settled
            ],
        )
        session.commit()
        assert [row.id for row in session.scalars(open_letters(session))] == [4999, 4321, 1234, 7]
        assert [row.id for row, _ in settled_letters(session)] == list(range(3999, 3979, -1))  # The latest 20.
        assert [row.id for row in session.scalars(open_letters(session, destination="hotline-fr"))] == [4321]
        page = paginate(session, open_letters(session), number=1, size=2)
        assert (page.total, [row.id for row in page.items]) == (4, [4999, 4321])
        listed = query_plan(session, lambda: session.scalars(open_letters(session)).all())
        counted = query_plan(
            session, lambda: session.scalar(select(func.count()).select_from(open_letters(session).subquery()))
        )
        latest = query_plan(session, lambda: settled_letters(session))
    for plan in (listed, counted):
        assert "ix_outbox_dead" in plan, plan
    # The latest settled letters start from when they were settled, and find their rows by key.
    assert "ix_dead_letter_actions_at" in latest, latest
    for plan in (listed, counted, latest):
        assert not re.search(r"SCAN outbox(?! USING)|Seq Scan on outbox", plan), plan
