"""Routing that cannot be poisoned: a case is a location, provisional until its destination confirms it.

Each test plays a hostile or buggy member against real processes (exchange and nodes, mutual TLS on
loopback), on SQLite and on PostgreSQL, and checks that genuine reports still reach the hotline of the
hosting country, that a refusal is never silent, and that a member learns nothing about a location it
cannot name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from demo.network import Network
from federation.canonical import url_fingerprint
from tests.conftest import query
from tests.forgery import decode, peer_as, report_claims


def wait_until(condition: Callable[[], bool], *, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout} s")
        time.sleep(0.05)


def poison(network: Network, member: str, *, claimed_url: str, country: str = "DE", **header: Any) -> str:
    """``member`` sends a report whose header fingerprints ``claimed_url`` while its body names a decoy."""
    forger = peer_as(network.layout, member)
    claims = report_claims(
        forger.signer,
        f"http://decoy.example/{time.monotonic_ns()}",
        country=country,
        url_fingerprint=url_fingerprint(claimed_url),
        **header,
    )
    outcome = forger.outcomes(
        forger.post(forger.transaction([forger.signer.sign_compact("hotline.report.v1", claims)]))
    )
    assert outcome[0]["outcome"] == "accepted", outcome
    return str(claims["jti"])


def case_state(network: Network, case_id: str) -> Any:
    rows = query(network.layout.exchange.database, "SELECT state FROM cases WHERE id = :id", id=case_id)
    return rows[0][0] if rows else None


def sent_to(network: Network, member: str) -> list[tuple[str, dict[str, Any]]]:
    """Every document the exchange queued for ``member`` (pending or dead rows still hold their tokens)."""
    rows = query(
        network.layout.exchange.database,
        "SELECT token FROM outbox WHERE destination = :member AND token IS NOT NULL ORDER BY id",
        member=member,
    )
    return [decode(row[0]) for row in rows]


def test_a_poisoned_header_cannot_swallow_later_genuine_reports(network_factory: Any) -> None:
    network = network_factory()
    network.start("exchange", "hotline-nl", "hotline-de")  # hotline-fr plays the hostile member.
    victim = "http://victim.example/gallery/1"
    poisoned = poison(network, "hotline-fr", claimed_url=victim)
    wait_until(lambda: case_state(network, poisoned) == "rejected", what="the poisoned case rejected")
    [(typ, refusal)] = sent_to(network, "hotline-fr")
    assert typ == "hotline.refusal.v1" and refusal["report_id"] == poisoned
    assert refusal["error"] == "fingerprint_mismatch" and refusal["iss"] == "exchange"

    nl, de = network.client("hotline-nl"), network.client("hotline-de")
    genuine = nl.report(url=victim, hosting_country="DE", legal_status="baseline", priority="urgent")
    case = de.wait_for(f"/api/v1/received/{genuine['id']}", lambda c: True)
    assert case["priority"] == "urgent" and case["origin"] == "hotline-nl"
    reached = nl.wait_for(f"/api/v1/reports/{genuine['id']}", lambda r: r["received_at"] is not None)
    assert reached["state"] == "received" and reached["duplicate_of"] is None
    assert case_state(network, genuine["id"]) == "confirmed"


def test_reports_held_on_a_provisional_case_are_routed_on_their_own_when_it_is_rejected(network_factory: Any) -> None:
    network = network_factory()
    network.start("exchange", "hotline-nl", "secretariat")  # hotline-de is down: the poisoned case waits.
    victim = "http://held.example/a"
    poisoned = poison(network, "hotline-fr", claimed_url=victim)
    nl, sec = network.client("hotline-nl"), network.client("secretariat")
    first = nl.report(url=victim, hosting_country="DE", legal_status="baseline", priority="urgent")
    second = sec.report(url=victim, hosting_country="DE", legal_status="baseline")
    exchange_db = network.layout.exchange.database
    wait_until(
        lambda: query(exchange_db, "SELECT count(*) FROM case_reports WHERE state = 'held'")[0][0] == 2,
        what="both genuine reports held on the provisional case",
    )
    # Until the destination decides, the genuine reporters are told nothing about the case.
    assert sent_to(network, "hotline-nl") == [] and sent_to(network, "secretariat") == []

    network.start("hotline-de")
    wait_until(lambda: case_state(network, poisoned) == "rejected", what="poisoned case rejected")
    de = network.client("hotline-de")
    # The two genuine reports raced to the exchange from two nodes: whichever arrived first opens the new
    # case at the location, and the other joins it. Either way hotline-de has one case with both reporters.
    wait_until(
        lambda: len(de.items("/api/v1/received")) == 1 and len(de.items("/api/v1/received")[0]["reports"]) == 2,
        what="one case at hotline-de with both reports",
    )
    [case] = de.items("/api/v1/received")
    assert {r["origin"] for r in case["reports"]} == {"hotline-nl", "secretariat"}
    assert case["id"] in (first["id"], second["id"])
    views = {
        "hotline-nl": nl.wait_for(f"/api/v1/reports/{first['id']}", lambda r: r["received_at"] is not None),
        "secretariat": sec.wait_for(f"/api/v1/reports/{second['id']}", lambda r: r["received_at"] is not None),
    }
    assert sorted(view["state"] for view in views.values()) == ["duplicate", "received"]
    assert {view["case_id"] for view in views.values()} == {case["id"]}
    assert all(view["destination"] == "hotline-de" for view in views.values())


def test_an_undeliverable_report_is_refused_visibly_at_its_origin(network_factory: Any) -> None:
    network = network_factory(DELIVERY_MAX_ATTEMPTS=2)
    network.start("exchange", "hotline-nl")
    nl = network.client("hotline-nl")
    report = nl.report(url="http://nobody-home.example/", hosting_country="DE", legal_status="baseline")
    refused = nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "refused")
    assert refused["refused"]["reason"] == "undeliverable"
    assert case_state(network, report["id"]) == "rejected"
    # The location no longer matches: the next report of it is a new case.
    again = nl.report(url="http://nobody-home.example/", hosting_country="DE", legal_status="baseline")
    wait_until(lambda: case_state(network, again["id"]) == "provisional", what="a new case for the next report")


def test_a_member_without_the_url_learns_nothing_from_a_fingerprint(network_factory: Any) -> None:
    network = network_factory()
    network.start("exchange", "hotline-nl", "hotline-de")
    nl, de = network.client("hotline-nl"), network.client("hotline-de")
    known = "http://known.example/x"
    case = nl.report(url=known, hosting_country="DE", legal_status="baseline")
    nl.wait_for(f"/api/v1/reports/{case['id']}", lambda r: r["received_at"] is not None)
    de.request("POST", f"/api/v1/received/{case['id']}/status", json={"status": "ntd_sent"})
    nl.wait_for(f"/api/v1/reports/{case['id']}", lambda r: r["state"] == "ntd_sent")

    # hotline-fr holds the fingerprint of a known location (and claims a hash for it), and of an unknown one.
    extra = {"alg": "sha256", "value": "ee" * 32}
    poison(network, "hotline-fr", claimed_url=known, content_hashes=[extra])
    poison(network, "hotline-fr", claimed_url="http://unknown.example/y")
    wait_until(lambda: len(sent_to(network, "hotline-fr")) == 2, what="both answers")
    answers = sent_to(network, "hotline-fr")
    # The same answer either way: a refusal, with the same code, and never the case, its destination or status.
    assert [typ for typ, _ in answers] == ["hotline.refusal.v1", "hotline.refusal.v1"]
    assert {claims["error"] for _, claims in answers} == {"fingerprint_mismatch"}
    assert all(set(claims) == set(answers[0][1]) for _, claims in answers)
    # The claimed hash never joined the case: only a report whose URL the destination checked brings hashes.
    hashes = query(network.layout.exchange.database, "SELECT alg, value FROM case_hashes")
    assert ("sha256", "ee" * 32) not in [tuple(row) for row in hashes]
    assert [r["origin"] for r in de.get(f"/api/v1/received/{case['id']}")["reports"]] == ["hotline-nl"]


def test_whether_a_report_is_accepted_depends_on_its_header_alone(network_factory: Any) -> None:
    network = network_factory()
    network.start("exchange", "hotline-nl", "hotline-de")
    nl = network.client("hotline-nl")
    known = "http://header-only.example/"
    first = nl.report(url=known, hosting_country="DE", legal_status="baseline")
    nl.wait_for(f"/api/v1/reports/{first['id']}", lambda r: r["received_at"] is not None)
    # hotline-de reports locations hosted in its own country: refused the same way, known location or not.
    de_peer = peer_as(network.layout, "hotline-de")
    outcomes = []
    for url in (known, "http://never-reported.example/"):
        claims = report_claims(de_peer.signer, url, country="DE")
        token = de_peer.signer.sign_compact("hotline.report.v1", claims)
        outcomes.append(de_peer.outcomes(de_peer.post(de_peer.transaction([token])))[0])
    assert [(o["outcome"], o["error"]) for o in outcomes] == [("rejected", "hosted_at_origin")] * 2
