"""A node authorizes what the exchange relays, and the exchange checks documents at their first hop.

The exchange is trusted to route, not to vouch: a node accepts a receipt only from the destination it
expects, a status only from the destination of a case it follows and dated plausibly, and a report only
for a country it covers. These tests push crafted transactions to real nodes with the exchange's own
certificate and key (what a compromised or buggy exchange could send), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509

from certs import authority
from certs.devnet import issue_dev_identity
from demo.network import Network
from federation.signing import Signer
from tests.conftest import PostgresDatabases, make_network, query
from tests.forgery import ForgingPeer, now, peer_as, report_claims


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def rules_network(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    postgres = PostgresDatabases()
    network = make_network(tmp_path_factory.mktemp("node-rules"), request.param, postgres)
    network.start("exchange", "hotline-nl", "hotline-de", "secretariat")
    yield network
    network.stop()
    postgres.drop_all()


def as_exchange_to(network: Network, member: str) -> ForgingPeer:
    return peer_as(network.layout, "exchange", url=network.layout.members[member].url)


def push(peer: ForgingPeer, member: str, *tokens: str) -> list[dict[str, Any]]:
    """Push ``tokens`` to ``member`` as the exchange would, retrying while it refreshes its directory (503)."""
    for _ in range(50):
        response = peer.post(peer.transaction(list(tokens), aud=member))
        if response.status_code != 503:
            return peer.outcomes(response)
        assert response.json()["error"] == "directory_unavailable", response.text
        time.sleep(0.1)
    raise AssertionError("the node kept answering 503")


def sign(network: Network, member: str, typ: str, aud: str, **fields: Any) -> str:
    signer = peer_as(network.layout, member).signer
    return signer.sign_compact(typ, signer.claims(aud, now=now(), **fields))


def stamp(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def receipt(network: Network, member: str, report_id: str) -> str:
    """``member``'s signed receipt for hotline-nl's report ``report_id``, received now."""
    return sign(network, member, "hotline.receipt.v1", "hotline-nl", report_id=report_id, received_at=stamp(now()))


@pytest.fixture(scope="module")
def followed(rules_network: Network) -> dict[str, Any]:
    """A report hotline-nl sent to hotline-de, received: hotline-nl follows case <id> at hotline-de."""
    nl = rules_network.client("hotline-nl")
    report = nl.report(url=f"http://followed.example/{uuid.uuid4()}", hosting_country="DE", legal_status="baseline")
    return dict(nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["received_at"] is not None))


def test_a_status_from_someone_other_than_the_cases_destination_is_refused(
    rules_network: Network, followed: dict[str, Any]
) -> None:
    token = sign(
        rules_network,
        "secretariat",
        "hotline.status.v1",
        "exchange",
        case_id=followed["id"],
        status="removed",
        at=stamp(now()),
    )
    [result] = push(as_exchange_to(rules_network, "hotline-nl"), "hotline-nl", token)
    assert (result["outcome"], result["error"]) == ("rejected", "unexpected_member")
    assert rules_network.client("hotline-nl").get(f"/api/v1/reports/{followed['id']}")["state"] == "received"


@pytest.mark.parametrize("offset", [dt.timedelta(hours=1), dt.timedelta(days=-30)])
def test_a_status_dated_in_the_future_or_before_the_case_is_refused(
    rules_network: Network, followed: dict[str, Any], offset: dt.timedelta
) -> None:
    token = sign(
        rules_network,
        "hotline-de",
        "hotline.status.v1",
        "exchange",
        case_id=followed["id"],
        status="removed",
        at=stamp(now() + offset),
    )
    [result] = push(as_exchange_to(rules_network, "hotline-nl"), "hotline-nl", token)
    assert (result["outcome"], result["error"]) == ("rejected", "status_time_invalid")


def test_a_genuine_status_from_the_destination_is_accepted(rules_network: Network, followed: dict[str, Any]) -> None:
    token = sign(
        rules_network,
        "hotline-de",
        "hotline.status.v1",
        "exchange",
        case_id=followed["id"],
        status="assessed",
        at=stamp(now()),
    )
    [result] = push(as_exchange_to(rules_network, "hotline-nl"), "hotline-nl", token)
    assert result["outcome"] == "accepted"


def test_a_receipt_from_a_member_that_does_not_cover_the_country_is_refused(rules_network: Network) -> None:
    nl = rules_network.client("hotline-nl")
    # Hosted where nobody covers: the fallback (secretariat) is the destination, not hotline-de.
    report = nl.report(url=f"http://receipt.example/{uuid.uuid4()}", hosting_country="BR", legal_status="baseline")
    forged = receipt(rules_network, "hotline-de", report["id"])
    [result] = push(as_exchange_to(rules_network, "hotline-nl"), "hotline-nl", forged)
    assert (result["outcome"], result["error"]) == ("rejected", "unexpected_member")
    # The real destination, the fallback, is accepted.
    reached = nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["received_at"] is not None)
    assert reached["destination"] == "secretariat"


def test_a_receipt_and_a_status_in_one_transaction_follow_the_destination_it_names(rules_network: Network) -> None:
    """The receipt names the case's destination on the report (its row is written after the last document):
    the status right after it in the same transaction must find that destination, not the row as stored."""
    nl = rules_network.client("hotline-nl")
    worker = rules_network.processes["hotline-nl"].surfaces["worker"]
    worker.stop()  # The report stays queued here: no real receipt can come first.
    try:
        report = nl.report(url=f"http://together.example/{uuid.uuid4()}", hosting_country="DE", legal_status="baseline")
        assert nl.get(f"/api/v1/reports/{report['id']}")["destination"] is None
        status = sign(
            rules_network,
            "hotline-de",
            "hotline.status.v1",
            "exchange",
            case_id=report["id"],
            status="assessed",
            at=stamp(now()),
        )
        stored_there = receipt(rules_network, "hotline-de", report["id"])
        results = push(as_exchange_to(rules_network, "hotline-nl"), "hotline-nl", stored_there, status)
        assert [result["outcome"] for result in results] == ["accepted", "accepted"], results
        stored = nl.get(f"/api/v1/reports/{report['id']}")
        assert (stored["state"], stored["destination"]) == ("assessed", "hotline-de")
    finally:
        worker.start()
        worker.wait_ready()


def test_a_refusal_after_a_receipt_in_one_transaction_has_the_last_word(rules_network: Network) -> None:
    """Documents apply in the order sent: the receipt's row is written after the last document, and the
    refusal's change after it, so the report ends refused (as it would in two transactions)."""
    nl = rules_network.client("hotline-nl")
    report = nl.report(url=f"http://last-word.example/{uuid.uuid4()}", hosting_country="DE", legal_status="baseline")
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["received_at"] is not None)
    refusal = sign(
        rules_network,
        "exchange",
        "hotline.refusal.v1",
        "hotline-nl",
        report_id=report["id"],
        error="refused",
        message="the destination could not keep it",
        at=stamp(now()),
    )
    stored_there = receipt(rules_network, "hotline-de", report["id"])
    results = push(as_exchange_to(rules_network, "hotline-nl"), "hotline-nl", stored_there, refusal)
    assert [result["outcome"] for result in results] == ["accepted", "accepted"], results
    stored = rules_network.client("hotline-nl").get(f"/api/v1/reports/{report['id']}")
    assert (stored["state"], stored["destination"]) == ("refused", "hotline-de")


def test_a_report_for_a_country_the_node_does_not_cover_is_refused(rules_network: Network) -> None:
    nl_signer = peer_as(rules_network.layout, "hotline-nl").signer
    claims = report_claims(nl_signer, f"http://elsewhere.example/{uuid.uuid4()}", country="FR")
    [result] = push(
        as_exchange_to(rules_network, "hotline-de"), "hotline-de", nl_signer.sign_compact("hotline.report.v1", claims)
    )
    assert (result["outcome"], result["error"]) == ("rejected", "not_covered")
    assert query(
        rules_network.layout.members["hotline-de"].database,
        "SELECT count(*) FROM inbound_reports WHERE id = :id",
        id=claims["jti"],
    ) == [(0,)]
    # The fallback takes reports for any country.
    claims = report_claims(nl_signer, f"http://elsewhere.example/{uuid.uuid4()}", country="FR")
    [result] = push(
        as_exchange_to(rules_network, "secretariat"), "secretariat", nl_signer.sign_compact("hotline.report.v1", claims)
    )
    assert result["outcome"] == "accepted"


def test_one_transaction_opens_a_case_adds_to_it_and_links_it(rules_network: Network) -> None:
    """Documents of one batch see what the batch's earlier documents did, though the rows are written at
    its end: the second report of a location joins the case the first opened (and, urgent, makes it
    urgent), and a same-material notice links that case."""
    nl_signer = peer_as(rules_network.layout, "hotline-nl").signer
    url = f"http://batch.example/{uuid.uuid4()}"
    first = report_claims(nl_signer, url)
    second = report_claims(nl_signer, url, priority="urgent")
    link = {
        "case_id": str(uuid.uuid4()),
        "matched_on": ["sha256"],
        "legal_status": "baseline",
        "hosting_country": "FR",
        "first_reported_at": stamp(now()),
        "status": None,
    }
    notice = sign(rules_network, "exchange", "hotline.material.v1", "hotline-de", case_id=first["jti"], links=[link])
    results = push(
        as_exchange_to(rules_network, "hotline-de"),
        "hotline-de",
        nl_signer.sign_compact("hotline.report.v1", first),
        nl_signer.sign_compact("hotline.report.v1", second),
        notice,
    )
    assert [result["outcome"] for result in results] == ["accepted"] * 3
    database = rules_network.layout.members["hotline-de"].database
    [(case_id, priority, same_material)] = query(
        database, "SELECT id, priority, same_material FROM inbound_cases WHERE url = :url", url=url
    )
    assert (case_id, priority) == (first["jti"], "urgent")
    linked = json.loads(same_material) if isinstance(same_material, str) else same_material
    assert [entry["case_id"] for entry in linked] == [link["case_id"]]
    reports = query(database, "SELECT id FROM inbound_reports WHERE case_id = :id ORDER BY id", id=case_id)
    assert sorted(row[0] for row in reports) == sorted([first["jti"], second["jti"]])


# --- The first hop: a document handed in by its own author -------------------------------------------------


def test_a_back_dated_document_is_refused_where_its_author_hands_it_in(
    rules_network: Network, tmp_path_factory: pytest.TempPathFactory
) -> None:
    layout = rules_network.layout
    # A second, valid certificate of hotline-nl's, issued yesterday, so a two-hour-old issued-at is within it.
    older = issue_dev_identity(
        layout.ca_dir,
        tmp_path_factory.mktemp("older"),
        "hotline-nl",
        countries=("NL",),
        now=now() - dt.timedelta(days=1),
    )
    signer = Signer.from_files(older.key, older.cert)
    claims = report_claims(signer, f"http://backdated.example/{uuid.uuid4()}")
    claims["iat"] = int((now() - dt.timedelta(hours=2)).timestamp())
    nl = peer_as(layout, "hotline-nl")
    [result] = nl.outcomes(nl.post(nl.transaction([signer.sign_compact("hotline.report.v1", claims)])))
    assert (result["outcome"], result["error"]) == ("rejected", "clock_skew")


def test_a_key_revoked_as_superseded_cannot_go_on_signing(
    rules_network: Network, tmp_path_factory: pytest.TempPathFactory
) -> None:
    layout = rules_network.layout
    out = tmp_path_factory.mktemp("rotated")
    old = issue_dev_identity(layout.ca_dir, out, "hotline-nl", countries=("NL",))
    old_signer = Signer.from_files(old.key, old.cert)
    signed_before = old_signer.sign_compact(
        "hotline.report.v1", report_claims(old_signer, f"http://rotation.example/{uuid.uuid4()}")
    )
    time.sleep(1.1)  # Revocation dates have one-second resolution.
    serial = x509.load_pem_x509_certificate(old.cert.read_bytes()).serial_number
    authority.revoke(layout.ca_dir, serial, reason="superseded")
    time.sleep(0.2)  # The exchange re-reads the CRL when the file changes.
    nl = peer_as(layout, "hotline-nl")  # Handed in over hotline-nl's current connection.
    [result] = nl.outcomes(nl.post(nl.transaction([signed_before])))
    assert (result["outcome"], result["error"]) == ("rejected", "certificate_revoked")


# --- Undecodable JSON, however deep ------------------------------------------------------------------------


def test_deeply_nested_json_refuses_only_its_own_document(rules_network: Network) -> None:
    from tests.vectors.generate import _sign_raw

    nl = peer_as(rules_network.layout, "hotline-nl")
    nested = _sign_raw(nl.signer, "hotline.report.v1", b"[" * 10_000 + b"]" * 10_000)
    fine = nl.signer.sign_compact("hotline.report.v1", report_claims(nl.signer, f"http://fine.example/{uuid.uuid4()}"))
    results = nl.outcomes(nl.post(nl.transaction([nested, fine])))
    assert [(r["outcome"], r.get("error")) for r in results] == [("rejected", "malformed_json"), ("accepted", None)]
    response = nl.post(None, raw=b"[" * 200_000)
    assert (response.status_code, response.json()["error"]) == (400, "malformed_json")


def test_a_refused_documents_url_is_never_echoed_in_errors_or_logs(rules_network: Network) -> None:
    nl = peer_as(rules_network.layout, "hotline-nl")
    secret = f"http://never-echo.example/{uuid.uuid4()}"
    claims = report_claims(nl.signer, secret)
    claims["body"]["url"] = secret + "x" * 9000  # Too long: refused by the schema.
    [result] = nl.outcomes(nl.post(nl.transaction([nl.signer.sign_compact("hotline.report.v1", claims)])))
    assert result["error"] == "schema_invalid" and "never-echo" not in result["message"]
    for log in (rules_network.layout.root / "logs").glob("*.log"):
        assert "never-echo" not in log.read_text(), log.name
