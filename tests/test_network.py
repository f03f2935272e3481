"""A report crosses the network: origin → exchange → destination, receipts and statuses back, duplicates linked.

Every test here starts real processes (the exchange and four nodes) talking mutual TLS on loopback, and
runs once on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import requests

from demo.network import Network
from tests.conftest import count_rows, query, wait_for_directory

SHA256 = "5f" * 32


def test_report_reaches_destination_and_receipt_and_status_come_back(network: Network) -> None:
    nl, de = network.client("hotline-nl"), network.client("hotline-de")
    report = nl.report(
        url="https://Example.org/a/./b/../c.html#frag",
        hosting_country="DE",
        legal_status="baseline",
        priority="urgent",
        content_hashes=[{"alg": "sha256", "value": SHA256}],
        media_type="image",
    )
    assert report["canonical_url"] == "https://example.org/a/c.html"

    case = de.wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    assert case["origin"] == "hotline-nl"
    assert case["url"] == "https://Example.org/a/./b/../c.html#frag"  # The body passes through untouched.
    assert case["priority"] == "urgent" and case["details"] == {"media_type": "image"}

    delivered = nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["received_at"] is not None)
    assert delivered["destination"] == "hotline-de" and delivered["case_id"] == report["id"]

    for status in ("ntd_sent", "removed"):
        assert de.request("POST", f"/api/v1/received/{report['id']}/status", json={"status": status}).status_code == 201
    final = nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "removed")
    assert [event["status"] for event in final["timeline"]] == ["ntd_sent", "removed"]
    assert {event["by"] for event in final["timeline"]} == {"hotline-de"}

    # The exchange kept fingerprints and metadata, never the URL.
    exchange_db = network.layout.exchange.database
    rows = query(exchange_db, "SELECT status, removed_at FROM cases WHERE id = :id", id=report["id"])
    assert rows[0][0] == "removed" and rows[0][1] is not None
    outbox_tokens = query(exchange_db, "SELECT count(*) FROM outbox WHERE token IS NOT NULL")
    assert outbox_tokens[0][0] == 0  # Delivered tokens are erased.

    # Every routing decision is in the exchange's audit trail, and the chain verifies.
    actions = [row[0] for row in query(exchange_db, "SELECT action FROM audit_entries ORDER BY seq")]
    assert actions[-4:] == ["case.open", "case.confirm", "case.status", "case.status"]
    verified = subprocess.run(
        [sys.executable, "-c", "from exchange.cli import main; main()", "audit", "verify"],
        env={**os.environ, "EXCHANGE_CONFIG": str(network.layout.exchange.config)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0 and "audit trail intact" in verified.stdout, verified.stderr


def test_a_second_report_of_the_same_url_joins_the_case_and_follows_it(network: Network) -> None:
    nl, de, fr = (network.client(m) for m in ("hotline-nl", "hotline-de", "hotline-fr"))
    first = nl.report(url="http://dup.example/item/1", hosting_country="DE", legal_status="baseline")
    nl.wait_for(f"/api/v1/reports/{first['id']}", lambda r: r["received_at"] is not None)

    by_url = fr.report(url="HTTP://DUP.EXAMPLE:80/item/./1", hosting_country="DE", legal_status="baseline")
    linked = fr.wait_for(f"/api/v1/reports/{by_url['id']}", lambda r: r["duplicate_of"] is not None)
    assert linked["duplicate_of"] == first["id"] and linked["destination"] == "hotline-de"
    assert linked["first_reported_at"] is not None

    # The destination files both reports under one case: nobody there assesses the location twice.
    cases = de.items("/api/v1/received")
    assert len(cases) == 1
    assert {r["origin"] for r in cases[0]["reports"]} == {"hotline-nl", "hotline-fr"}

    de.request("POST", f"/api/v1/received/{first['id']}/status", json={"status": "removed", "note": "gone"})
    origin_view = nl.wait_for(f"/api/v1/reports/{first['id']}", lambda r: r["state"] == "removed")
    duplicate_view = fr.wait_for(f"/api/v1/reports/{by_url['id']}", lambda r: r["state"] == "removed")
    # Free text goes to the origin alone; the duplicate reporter gets the code and the time.
    nl.wait_for(f"/api/v1/reports/{first['id']}", lambda r: r["timeline"][-1]["note"] == "gone")
    assert duplicate_view["timeline"][-1]["note"] is None
    assert origin_view["timeline"][-1]["at"] == duplicate_view["timeline"][-1]["at"]

    counts = count_rows(network.layout.exchange.database, "cases", "case_reports")
    assert counts == {"cases": 1, "case_reports": 2}
    assert query(network.layout.exchange.database, "SELECT count(*) FROM case_statuses WHERE token LIKE '%gone%'") == [
        (0,)
    ]


def test_the_same_material_at_another_url_is_a_case_of_its_own_linked_as_same_material(network: Network) -> None:
    """A case is a location: the same file re-uploaded elsewhere must reach the hotline that can remove it."""
    nl, de, fr, sec = (network.client(m) for m in ("hotline-nl", "hotline-de", "hotline-fr", "secretariat"))
    md5 = {"alg": "md5", "value": "0" * 32}
    first = nl.report(
        url="http://host-a.example/1.jpg", hosting_country="DE", legal_status="baseline", content_hashes=[md5]
    )
    nl.wait_for(f"/api/v1/reports/{first['id']}", lambda r: r["received_at"] is not None)

    # The same file at a new host in another country: a new case, routed to that country's hotline.
    moved = sec.report(
        url="http://host-b.example/copy.jpg", hosting_country="FR", legal_status="baseline", content_hashes=[md5]
    )
    arrived = fr.wait_for(f"/api/v1/received/{moved['id']}", lambda c: c["same_material"] != [])
    link = arrived["same_material"][0]
    assert link["case_id"] == first["id"] and link["matched_on"] == ["md5"]
    assert link["legal_status"] == "baseline" and link["hosting_country"] == "DE"
    reached = sec.wait_for(f"/api/v1/reports/{moved['id']}", lambda r: r["received_at"] is not None)
    assert reached["destination"] == "hotline-fr" and reached["duplicate_of"] is None

    # The status of one location never carries over to another.
    de.request("POST", f"/api/v1/received/{first['id']}/status", json={"status": "removed"})
    nl.wait_for(f"/api/v1/reports/{first['id']}", lambda r: r["state"] == "removed")
    assert sec.get(f"/api/v1/reports/{moved['id']}")["state"] == "received"
    assert len(de.items("/api/v1/received")) == 1 and len(fr.items("/api/v1/received")) == 1
    exchange_db = network.layout.exchange.database
    assert count_rows(exchange_db, "cases", "material_links") == {"cases": 2, "material_links": 1}
    # Duplicates avoided counts only the same location, never same material.
    status = _status_when(network, lambda s: s["cases"]["total"] == 2)
    assert status["cases"]["duplicates_avoided"] == 0 and status["cases"]["total"] == 2


def _status_when(network: Network, ready: Any, timeout: float = 15.0) -> dict:  # type: ignore[type-arg]
    """The secretariat's full status once ``ready`` holds for it: the figures are those of the worker's last
    status-rollup run (every 0.5 s in test networks), so a test waits for the run after its changes."""
    deadline = time.monotonic() + timeout
    status = _status(network)
    while not ready(status) and time.monotonic() < deadline:
        time.sleep(0.2)
        status = _status(network)
    return status


def _status(network: Network, member_id: str | None = None) -> dict:  # type: ignore[type-arg]
    """The secretariat's full status (console API, with a token); or a member's own entry (its certificate)."""
    if member_id is None:
        return network.client("exchange").get("/api/v1/status")  # type: ignore[no-any-return]
    layout = network.layout
    identity = layout.members[member_id]
    session = requests.Session()
    session.trust_env = False
    response = session.get(
        f"{layout.exchange.url}/v1/status",
        cert=(str(identity.cert), str(identity.key)),
        verify=str(layout.ca_cert),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_late_duplicate_hears_the_case_history(network: Network) -> None:
    nl, de, fr = network.client("hotline-nl"), network.client("hotline-de"), network.client("hotline-fr")
    first = nl.report(url="http://late.example/x", hosting_country="AT", legal_status="baseline")
    de.wait_for(f"/api/v1/received/{first['id']}", lambda c: True)
    de.request("POST", f"/api/v1/received/{first['id']}/status", json={"status": "ntd_sent"})
    nl.wait_for(f"/api/v1/reports/{first['id']}", lambda r: r["state"] == "ntd_sent")
    late = fr.report(url="http://late.example/x", hosting_country="AT", legal_status="baseline")
    followed = fr.wait_for(f"/api/v1/reports/{late['id']}", lambda r: r["state"] == "ntd_sent")
    assert followed["duplicate_of"] == first["id"]
    assert [event["status"] for event in followed["timeline"]] == ["ntd_sent"]


def test_uncovered_country_goes_to_the_fallback(network: Network) -> None:
    nl, sec = network.client("hotline-nl"), network.client("secretariat")
    report = nl.report(url="http://nowhere.example/", hosting_country="BR", legal_status="baseline")
    case = sec.wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    assert case["hosting_country"] == "BR"
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["destination"] == "secretariat")


def test_operator_api_refuses_bad_input_clearly_and_stores_nothing(network: Network) -> None:
    nl = network.client("hotline-nl")
    cases = [
        ({"url": "not a url at all", "hosting_country": "DE", "legal_status": "baseline"}, 400, "invalid_url"),
        ({"url": "http://x.example/", "hosting_country": "DE", "legal_status": "maybe"}, 422, "schema_invalid"),
        ({"url": "http://x.example/", "hosting_country": "Germany", "legal_status": "baseline"}, 422, "schema_invalid"),
        ({"url": "http://x.example/", "hosting_country": "NL", "legal_status": "baseline"}, 422, "hosted_at_home"),
        (
            {"url": "http://x.example/", "hosting_country": "DE", "legal_status": "baseline", "image": "..."},
            422,
            "invalid_report",
        ),
        (
            {
                "url": "http://x.example/",
                "hosting_country": "DE",
                "legal_status": "baseline",
                "content_hashes": [{"alg": "md5", "value": "zz"}],
            },
            422,
            "schema_invalid",
        ),
    ]
    for body, status, code in cases:
        response = nl.request("POST", "/api/v1/reports", json=body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    response = nl.request("POST", "/api/v1/reports", data=b"{not json", headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (400, "malformed_json")
    assert nl.request("GET", "/api/v1/reports/nope").json()["code"] == "unknown_report"
    assert count_rows(network.layout.members["hotline-nl"].database, "reports", "outbox") == {"reports": 0, "outbox": 0}


def test_the_operator_api_takes_only_this_nodes_tokens_and_never_the_service_key(network: Network) -> None:
    nl = network.client("hotline-nl")
    fr = network.client("hotline-fr")
    session = requests.Session()
    session.trust_env = False
    url = f"{network.layout.members['hotline-nl'].console_url}/api/v1/reports"
    web_ca = str(network.layout.web.ca)
    for headers in ({}, {"Authorization": f"Bearer {fr.spec.api_token}"}, {"Authorization": "Bearer hnt_x_y"}):
        response = session.get(url, headers=headers, verify=web_ca, timeout=10)
        assert (response.status_code, response.json()["code"]) == (401, "not_signed_in"), headers
    # People never authenticate with the service's key: the network surface takes only the exchange.
    nl_spec = network.layout.members["hotline-nl"]
    response = session.get(
        f"{nl_spec.url}/api/v1/reports",
        cert=(str(nl_spec.cert), str(nl_spec.key)),
        verify=str(network.layout.ca_cert),
        timeout=10,
    )
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    assert nl.request("GET", "/api/v1/reports").status_code == 200


def test_network_status_counts_cases_and_member_health(network: Network) -> None:
    nl, de = network.client("hotline-nl"), network.client("hotline-de")
    report = nl.report(url="http://status.example/1", hosting_country="DE", legal_status="baseline")
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["received_at"] is not None)
    de.request("POST", f"/api/v1/received/{report['id']}/status", json={"status": "removed"})
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "removed")
    status = _status_when(network, lambda s: s["cases"]["removed"] == 1)
    assert status["as_of"] is not None
    assert status["cases"]["total"] == 1 and status["cases"]["removed"] == 1
    assert status["cases"]["removed_within_3_days"] == 1
    assert status["cases"]["by_hosting_country"] == {"DE": 1}
    assert status["cases"]["by_state"] == {"confirmed": 1}
    assert status["members"]["hotline-nl"]["last_contact"] is not None
    assert status["members"]["hotline-de"]["backlog"] == 0


def test_a_member_reads_only_its_own_health_in_network_status(network: Network) -> None:
    own = _status(network, "hotline-nl")
    assert set(own) == {"generated_at", "members"}
    assert set(own["members"]) == {"hotline-nl"}


def test_a_member_without_an_inbound_port_collects_from_the_mailbox(network: Network) -> None:
    assert network.layout.members["hotline-fr"].inbound == "pull"
    nl, fr = network.client("hotline-nl"), network.client("hotline-fr")
    report = nl.report(url="http://pull.example/1", hosting_country="LU", legal_status="baseline")
    case = fr.wait_for(f"/api/v1/received/{report['id']}", lambda c: True, timeout=10)
    assert case["origin"] == "hotline-nl"
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["destination"] == "hotline-fr")
    fr.request("POST", f"/api/v1/received/{report['id']}/status", json={"status": "police_notified"})
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "police_notified")
    rows = query(network.layout.exchange.database, "SELECT state FROM outbox WHERE destination = 'hotline-fr'")
    assert rows and {row[0] for row in rows} == {"delivered"}


def test_a_retried_submission_with_the_same_idempotency_key_stores_one_report(network: Network) -> None:
    nl = network.client("hotline-nl")
    body = {"url": "http://retry.example/1", "hosting_country": "DE", "legal_status": "baseline"}
    first = nl.request("POST", "/api/v1/reports", json=body, headers={"Idempotency-Key": "analyst-7:case-42"})
    again = nl.request("POST", "/api/v1/reports", json=body, headers={"Idempotency-Key": "analyst-7:case-42"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert count_rows(network.layout.members["hotline-nl"].database, "reports", "outbox") == {"reports": 1, "outbox": 1}
    too_long = nl.request("POST", "/api/v1/reports", json=body, headers={"Idempotency-Key": "k" * 201})
    assert (too_long.status_code, too_long.json()["code"]) == (422, "invalid_report")


def test_content_that_moved_is_rerouted_with_its_history_and_first_report_time(network: Network) -> None:
    """DE finds the content now hosted in France: the case goes to hotline-fr with its id and first-report time,
    the origin sends its report again (the exchange never reads a body), and FR's statuses reach everyone."""
    nl, de, fr, sec = (network.client(m) for m in ("hotline-nl", "hotline-de", "hotline-fr", "secretariat"))
    first = nl.report(url="http://moving.example/a.jpg", hosting_country="DE", legal_status="baseline")
    nl.wait_for(f"/api/v1/reports/{first['id']}", lambda r: r["received_at"] is not None)
    follower = sec.report(url="http://MOVING.example/a.jpg", hosting_country="DE", legal_status="baseline")
    sec.wait_for(f"/api/v1/reports/{follower['id']}", lambda r: r["duplicate_of"] == first["id"])
    de.request("POST", f"/api/v1/received/{first['id']}/status", json={"status": "ntd_sent"})
    nl.wait_for(f"/api/v1/reports/{first['id']}", lambda r: r["state"] == "ntd_sent")
    exchange_db = network.layout.exchange.database
    (confirmed_at,) = query(exchange_db, "SELECT confirmed_at FROM cases WHERE id = :id", id=first["id"])[0]

    wait_for_directory(network, "hotline-de")
    moved = de.request(
        "POST", f"/api/v1/received/{first['id']}/status", json={"status": "moved", "moved_to": "fr", "note": "new host"}
    )
    assert moved.status_code == 201, moved.text
    assert moved.json()["status"] == "moved"

    # The new country's hotline has the case under the same id, first reported when NL confirmed it.
    at_fr = fr.wait_for(f"/api/v1/received/{first['id']}", lambda c: True)
    assert at_fr["origin"] == "hotline-nl" and at_fr["hosting_country"] == "FR"
    assert at_fr["url"] == "http://moving.example/a.jpg"
    assert at_fr["confirmed_at"] == nl.get(f"/api/v1/reports/{first['id']}")["confirmed_at"]
    origin_view = nl.wait_for(
        f"/api/v1/reports/{first['id']}", lambda r: r["destination"] == "hotline-fr" and r["received_at"] is not None
    )
    assert origin_view["hosting_country"] == "FR" and origin_view["case_id"] == first["id"]
    assert [e["status"] for e in origin_view["timeline"]] == ["ntd_sent", "moved", "rerouted"]
    nl.wait_for(f"/api/v1/reports/{first['id']}", lambda r: r["timeline"][1]["note"] == "new host")

    # FR acts; the origin and the duplicate reporter hear it. DE's part has ended.
    assert fr.request("POST", f"/api/v1/received/{first['id']}/status", json={"status": "removed"}).status_code == 201
    nl.wait_for(f"/api/v1/reports/{first['id']}", lambda r: r["state"] == "removed")
    followed = sec.wait_for(f"/api/v1/reports/{follower['id']}", lambda r: r["state"] == "removed")
    assert followed["destination"] == "hotline-fr"
    assert de.get(f"/api/v1/received/{first['id']}")["status"] == "moved"

    row = query(
        exchange_db,
        "SELECT hosting_country, destination, state, confirmed_at, moved_at, removed_at FROM cases WHERE id = :id",
        id=first["id"],
    )[0]
    assert row[:3] == ("FR", "hotline-fr", "confirmed")
    assert row[3] == confirmed_at and row[4] is not None and row[5] is not None
    states = dict(query(exchange_db, "SELECT report_id, state FROM case_reports WHERE case_id = :id", id=first["id"]))
    assert states[first["id"]] == "moved" and states[follower["id"]] == "verified"
    assert sorted(states.values()) == ["moved", "opened", "verified"]
    actions = [row[0] for row in query(exchange_db, "SELECT action FROM audit_entries ORDER BY seq")]
    assert (
        actions.index("case.move")
        < actions.index("case.resend")
        < actions.index("case.confirm", actions.index("case.resend"))
    )


def test_content_that_moved_into_the_origins_country_is_handled_there(network: Network) -> None:
    nl, de = network.client("hotline-nl"), network.client("hotline-de")
    first = nl.report(url="http://homecoming.example/", hosting_country="AT", legal_status="baseline")
    nl.wait_for(f"/api/v1/reports/{first['id']}", lambda r: r["received_at"] is not None)
    wait_for_directory(network, "hotline-de")  # A move is checked against it: the worker fetches it at start.
    assert (
        de.request(
            "POST", f"/api/v1/received/{first['id']}/status", json={"status": "moved", "moved_to": "NL"}
        ).status_code
        == 201
    )
    here = nl.wait_for(f"/api/v1/received/{first['id']}", lambda c: True)
    assert here["origin"] == "hotline-nl" and here["hosting_country"] == "NL"
    assert here["confirmed_at"] == nl.get(f"/api/v1/reports/{first['id']}")["confirmed_at"]
    row = query(network.layout.exchange.database, "SELECT destination, state FROM cases WHERE id = :id", id=first["id"])
    assert row == [("hotline-nl", "confirmed")]


def test_a_move_that_cannot_be_made_is_refused_clearly_and_sends_nothing(network: Network) -> None:
    nl, de = network.client("hotline-nl"), network.client("hotline-de")
    first = nl.report(url="http://staying.example/", hosting_country="DE", legal_status="baseline")
    de.wait_for(f"/api/v1/received/{first['id']}", lambda c: True)
    before = count_rows(network.layout.spec("hotline-de").database, "outbox", "case_events")
    for body, says in [
        ({"status": "moved"}, "moved_to"),
        ({"status": "moved", "moved_to": "DE"}, "already hosted in DE"),
        ({"status": "moved", "moved_to": "AT"}, "covers AT too"),
        ({"status": "moved", "moved_to": "F"}, "two-letter"),
        ({"status": "removed", "moved_to": "FR"}, "only with the status moved"),
    ]:
        answer = de.request("POST", f"/api/v1/received/{first['id']}/status", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["code"] == "invalid_status" and says in answer.json()["detail"], answer.json()
    assert count_rows(network.layout.spec("hotline-de").database, "outbox", "case_events") == before


def test_an_operator_batch_forwards_every_good_report_and_refuses_the_bad_ones_alone(network: Network) -> None:
    nl, de = network.client("hotline-nl"), network.client("hotline-de")
    good = [{"url": f"http://batch.example/{n}", "hosting_country": "DE", "legal_status": "baseline"} for n in range(5)]
    answer = nl.request(
        "POST",
        "/api/v1/reports/batch",
        json={
            "reports": [
                {**good[0], "idempotency_key": "batch-0"},
                *good[1:],
                {"url": "not a url", "hosting_country": "DE", "legal_status": "baseline"},
                {"url": "http://batch.example/home", "hosting_country": "NL", "legal_status": "baseline"},
                {**good[0], "idempotency_key": "batch-0"},
            ]
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["duplicate"], body["refused"]) == (5, 1, 2)
    outcomes = body["results"]
    assert [r["outcome"] for r in outcomes] == ["accepted"] * 5 + ["refused", "refused", "duplicate"]
    assert outcomes[6]["error"] == "hosted_at_home" and outcomes[7]["id"] == outcomes[0]["id"]
    for result in outcomes[:5]:
        de.wait_for(f"/api/v1/received/{result['id']}", lambda c: True)
        nl.wait_for(f"/api/v1/reports/{result['id']}", lambda r: r["state"] == "received")
    again = nl.request("POST", "/api/v1/reports/batch", json={"reports": [{**good[0], "idempotency_key": "batch-0"}]})
    assert again.json()["results"][0] == {"index": 0, "outcome": "duplicate", "id": outcomes[0]["id"]}
    for bad in ({"reports": []}, {"reports": "x"}, [], {"reports": [{}], "extra": 1}):
        refused = nl.request("POST", "/api/v1/reports/batch", json=bad)
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_report", refused.text
