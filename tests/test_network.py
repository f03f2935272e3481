"""A report crosses the network: origin → exchange → destination, receipts and statuses back, duplicates linked.

Every test here starts real processes (the exchange and four nodes) talking mutual TLS on loopback, and
runs once on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import requests

from demo.network import Network
from tests.conftest import count_rows, query

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

    case = de.wait_for(f"/api/v1/cases/{report['id']}", lambda c: True)
    assert case["origin"] == "hotline-nl"
    assert case["url"] == "https://Example.org/a/./b/../c.html#frag"  # The body passes through untouched.
    assert case["priority"] == "urgent" and case["details"] == {"media_type": "image"}

    delivered = nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["received_at"] is not None)
    assert delivered["destination"] == "hotline-de" and delivered["case_id"] == report["id"]

    for status in ("ntd_sent", "removed"):
        assert de.request("POST", f"/api/v1/cases/{report['id']}/status", json={"status": status}).status_code == 201
    final = nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "removed")
    assert [event["status"] for event in final["timeline"]] == ["ntd_sent", "removed"]
    assert {event["by"] for event in final["timeline"]} == {"hotline-de"}

    # The exchange kept fingerprints and metadata, never the URL.
    exchange_db = network.layout.exchange.database
    rows = query(exchange_db, "SELECT status, removed_at FROM cases WHERE id = :id", id=report["id"])
    assert rows[0][0] == "removed" and rows[0][1] is not None
    outbox_tokens = query(exchange_db, "SELECT count(*) FROM outbox WHERE token IS NOT NULL")
    assert outbox_tokens[0][0] == 0  # Delivered tokens are erased.


def test_duplicates_by_url_and_by_hash_are_linked_and_follow_the_case(network: Network) -> None:
    nl, de, fr, sec = (network.client(m) for m in ("hotline-nl", "hotline-de", "hotline-fr", "secretariat"))
    first = nl.report(
        url="http://dup.example/item/1",
        hosting_country="DE",
        legal_status="baseline",
        content_hashes=[{"alg": "md5", "value": "0" * 32}],
    )
    de.wait_for(f"/api/v1/cases/{first['id']}", lambda c: True)

    by_url = fr.report(url="HTTP://DUP.EXAMPLE:80/item/./1", hosting_country="DE", legal_status="baseline")
    by_hash = sec.report(
        url="http://mirror.example/other",
        hosting_country="DE",
        legal_status="nationally_illegal",
        content_hashes=[{"alg": "md5", "value": "0" * 32}],
    )
    linked_url = fr.wait_for(f"/api/v1/reports/{by_url['id']}", lambda r: r["duplicate_of"] is not None)
    linked_hash = sec.wait_for(f"/api/v1/reports/{by_hash['id']}", lambda r: r["duplicate_of"] is not None)
    assert linked_url["duplicate_of"] == first["id"] and linked_url["duplicate_matched_on"] == ["url"]
    assert linked_hash["duplicate_of"] == first["id"] and linked_hash["duplicate_matched_on"] == ["content_hash"]
    assert linked_url["destination"] == "hotline-de"

    # The destination is not asked to handle the same content twice.
    assert len(de.get("/api/v1/cases")) == 1

    de.request("POST", f"/api/v1/cases/{first['id']}/status", json={"status": "removed", "note": "gone"})
    for client, report_id in ((fr, by_url["id"]), (sec, by_hash["id"]), (nl, first["id"])):
        followed = client.wait_for(f"/api/v1/reports/{report_id}", lambda r: r["state"] == "removed")
        assert followed["timeline"][-1]["note"] == "gone"

    counts = count_rows(network.layout.exchange.database, "cases", "case_reports")
    assert counts == {"cases": 1, "case_reports": 3}


def test_a_late_duplicate_hears_the_case_history(network: Network) -> None:
    nl, de, fr = network.client("hotline-nl"), network.client("hotline-de"), network.client("hotline-fr")
    first = nl.report(url="http://late.example/x", hosting_country="AT", legal_status="baseline")
    de.wait_for(f"/api/v1/cases/{first['id']}", lambda c: True)
    de.request("POST", f"/api/v1/cases/{first['id']}/status", json={"status": "ntd_sent"})
    nl.wait_for(f"/api/v1/reports/{first['id']}", lambda r: r["state"] == "ntd_sent")
    late = fr.report(url="http://late.example/x", hosting_country="AT", legal_status="baseline")
    followed = fr.wait_for(f"/api/v1/reports/{late['id']}", lambda r: r["state"] == "ntd_sent")
    assert followed["duplicate_of"] == first["id"]


def test_uncovered_country_goes_to_the_fallback(network: Network) -> None:
    nl, sec = network.client("hotline-nl"), network.client("secretariat")
    report = nl.report(url="http://nowhere.example/", hosting_country="BR", legal_status="baseline")
    case = sec.wait_for(f"/api/v1/cases/{report['id']}", lambda c: True)
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
        assert (response.status_code, response.json()["error"]) == (status, code), body
    response = nl.request("POST", "/api/v1/reports", data=b"{not json", headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["error"]) == (400, "malformed_json")
    assert nl.request("GET", "/api/v1/reports/nope").json()["error"] == "unknown_report"
    assert count_rows(network.layout.members["hotline-nl"].database, "reports", "outbox") == {"reports": 0, "outbox": 0}


def test_operator_api_is_only_for_the_nodes_own_certificate(network: Network) -> None:
    from demo.network import OperatorClient

    nl_spec = network.layout.members["hotline-nl"]
    intruder = OperatorClient(network.layout.members["hotline-fr"], network.layout.ca_cert)
    intruder.spec = nl_spec  # hotline-fr's certificate, hotline-nl's address.
    intruder.session.cert = (
        str(network.layout.members["hotline-fr"].cert),
        str(network.layout.members["hotline-fr"].key),
    )
    response = intruder.request("GET", "/api/v1/reports")
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")


def test_network_status_counts_cases_and_member_health(network: Network) -> None:
    nl, de = network.client("hotline-nl"), network.client("hotline-de")
    report = nl.report(url="http://status.example/1", hosting_country="DE", legal_status="baseline")
    de.wait_for(f"/api/v1/cases/{report['id']}", lambda c: True)
    de.request("POST", f"/api/v1/cases/{report['id']}/status", json={"status": "removed"})
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "removed")
    status = nl.session.get(
        f"{network.layout.exchange.url}/v1/status", verify=str(network.layout.ca_cert), timeout=10
    ).json()
    assert status["cases"]["total"] == 1 and status["cases"]["removed"] == 1
    assert status["cases"]["removed_within_3_days"] == 1
    assert status["cases"]["by_hosting_country"] == {"DE": 1}
    assert status["members"]["hotline-nl"]["last_contact"] is not None
    assert status["members"]["hotline-de"]["backlog"] == 0


def test_a_member_without_an_inbound_port_collects_from_the_mailbox(network: Network) -> None:
    assert network.layout.members["hotline-fr"].inbound == "pull"
    nl, fr = network.client("hotline-nl"), network.client("hotline-fr")
    report = nl.report(url="http://pull.example/1", hosting_country="LU", legal_status="baseline")
    case = fr.wait_for(f"/api/v1/cases/{report['id']}", lambda c: True, timeout=10)
    assert case["origin"] == "hotline-nl"
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["destination"] == "hotline-fr")
    fr.request("POST", f"/api/v1/cases/{report['id']}/status", json={"status": "police_notified"})
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
    assert (too_long.status_code, too_long.json()["error"]) == (422, "invalid_report")


def test_the_secretariat_reads_network_status_with_the_exchange_certificate(network: Network) -> None:
    layout = network.layout
    session = requests.Session()
    session.trust_env = False
    response = session.get(
        f"{layout.exchange.url}/v1/status",
        cert=(str(layout.exchange.cert), str(layout.exchange.key)),
        verify=str(layout.ca_cert),
        timeout=10,
    )
    assert response.status_code == 200 and "members" in response.json()
