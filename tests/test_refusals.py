"""Fail closed: every bad message is refused with a clear, machine-readable error and leaves nothing behind.

One network per storage backend serves the whole module; each test compares the exchange's tables
before and after, so "nothing stored" is checked, not assumed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from certs import authority
from certs.devnet import issue_dev_identity
from demo.network import Network
from federation.signing import Signer
from tests.conftest import PostgresDatabases, count_rows, make_network, query
from tests.forgery import ForgingPeer, now, report_claims, tamper_payload

TABLES = ("cases", "case_reports", "locations", "case_hashes", "inbound_documents", "seen_transactions", "outbox")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def refusal_network(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    postgres = PostgresDatabases()
    network = make_network(tmp_path_factory.mktemp("refusals"), request.param, postgres)
    network.start("exchange")
    yield network
    network.stop()
    postgres.drop_all()


@pytest.fixture(scope="module")
def identities(refusal_network: Network, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Certificates that must be refused: another CA's, an expired one, a revoked one, a non-member's."""
    layout = refusal_network.layout
    out = tmp_path_factory.mktemp("bad-pki")
    other_ca = out / "other-ca"
    authority.create_ca(other_ca, "Some Other CA")
    return {
        "other_ca": issue_dev_identity(other_ca, out / "other", "hotline-nl", countries=("NL",)),
        "expired": issue_dev_identity(
            layout.ca_dir,
            out / "expired",
            "hotline-nl",
            countries=("NL",),
            days=1,
            now=dt.datetime.now(dt.UTC) - dt.timedelta(days=10),
        ),
        "revoked": issue_dev_identity(layout.ca_dir, out / "revoked", "hotline-fr", countries=("FR",)),
        "stranger": issue_dev_identity(layout.ca_dir, out / "stranger", "hotline-xx", countries=("XX",)),
    }


def peer(network: Network, signer_id: str = "hotline-nl", tls_id: str | None = "hotline-nl") -> ForgingPeer:
    layout = network.layout
    signing = layout.members[signer_id]
    tls = layout.members[tls_id] if tls_id else None
    return ForgingPeer(
        signer=Signer.from_files(signing.key, signing.cert),
        tls_cert=tls.cert if tls else None,
        tls_key=tls.key if tls else None,
        ca=layout.ca_cert,
        url=layout.exchange.url,
    )


@pytest.fixture
def unchanged(refusal_network: Network) -> Iterator[None]:
    """Assert the test leaves the exchange's tables exactly as it found them."""
    database = refusal_network.layout.exchange.database
    before = count_rows(database, *TABLES)
    yield
    assert count_rows(database, *TABLES) == before


def expect_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and body["message"], body


# --- Transport: refused in the TLS handshake or at the edge --------------------------------------------


def test_no_client_certificate_is_refused(refusal_network: Network, unchanged: None) -> None:
    expect_error(peer(refusal_network, tls_id=None).post({}), 401, "client_certificate_required")


def test_certificate_from_another_ca_is_refused(
    refusal_network: Network, identities: dict[str, Any], unchanged: None
) -> None:
    with pytest.raises(ssl.SSLError, match="alert unknown ca"):
        _handshake_then_read(refusal_network, identities["other_ca"])


def test_expired_certificate_is_refused(refusal_network: Network, identities: dict[str, Any], unchanged: None) -> None:
    with pytest.raises(ssl.SSLError, match="alert certificate expired"):
        _handshake_then_read(refusal_network, identities["expired"])


def _handshake_then_read(network: Network, identity: Any) -> None:
    """Connect with ``identity`` and read before writing anything.

    In TLS 1.3 the server judges the client certificate after the client has finished its side of the
    handshake, so the refusal arrives as an alert on the client's first read. A client that writes
    first may see the connection reset instead of the alert; reading first shows the alert reliably.
    """
    context = ssl.create_default_context(cafile=str(network.layout.ca_cert))
    context.load_cert_chain(str(identity.cert), str(identity.key))
    with (
        socket.create_connection(("127.0.0.1", network.layout.exchange.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.recv(1)


def test_revoked_certificate_is_refused(refusal_network: Network, identities: dict[str, Any]) -> None:
    revoked = identities["revoked"]
    forger = peer(refusal_network)
    forger.cert = (str(revoked.cert), str(revoked.key))
    forger.signer = Signer.from_files(revoked.key, revoked.cert)
    assert forger.post(forger.transaction([])).status_code == 200  # Valid until revoked...
    from cryptography import x509

    serial = x509.load_pem_x509_certificate(revoked.cert.read_bytes()).serial_number
    authority.revoke(refusal_network.layout.ca_dir, serial, reason="keyCompromise")
    before = count_rows(refusal_network.layout.exchange.database, *TABLES)
    expect_error(forger.post(forger.transaction([])), 403, "certificate_revoked")
    assert count_rows(refusal_network.layout.exchange.database, *TABLES) == before


def test_valid_certificate_of_a_non_member_is_refused(
    refusal_network: Network, identities: dict[str, Any], unchanged: None
) -> None:
    stranger = identities["stranger"]
    forger = peer(refusal_network)
    forger.cert = (str(stranger.cert), str(stranger.key))
    forger.signer = Signer.from_files(stranger.key, stranger.cert)
    expect_error(forger.post(forger.transaction([report_claims_token(forger)])), 403, "unknown_member")


def test_openssl_and_curl_talk_to_the_exchange_with_network_certificates(refusal_network: Network) -> None:
    layout = refusal_network.layout
    nl = layout.members["hotline-nl"]
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(layout.ca_cert), str(nl.cert)], capture_output=True, text=True, check=False
    )
    assert verified.stdout.strip().endswith("OK"), verified
    result = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--cacert",
            str(layout.ca_cert),
            "--cert",
            str(nl.cert),
            "--key",
            str(nl.key),
            f"{layout.exchange.url}/v1/directory",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"protected", "payload", "signature"}
    refused = subprocess.run(
        ["curl", "--silent", "--cacert", str(layout.ca_cert), f"{layout.exchange.url}/v1/directory"],
        capture_output=True,
        text=True,
        check=False,
        timeout=20,
    )
    assert json.loads(refused.stdout)["error"] == "client_certificate_required"


# --- The envelope (transaction) -----------------------------------------------------------------------


def report_claims_token(forger: ForgingPeer, **kwargs: Any) -> str:
    return forger.signer.sign_compact("hotline.report.v1", report_claims(forger.signer, **kwargs))


def test_malformed_json_is_refused(refusal_network: Network, unchanged: None) -> None:
    expect_error(peer(refusal_network).post(None, raw=b'{"protected": "abc", '), 400, "malformed_json")


def test_not_a_jws_is_refused(refusal_network: Network, unchanged: None) -> None:
    expect_error(peer(refusal_network).post({"hello": "world"}), 400, "malformed_message")


def test_oversized_body_is_refused(refusal_network: Network, unchanged: None) -> None:
    # Just over the limit, and several times over it: the sender gets the answer, not a broken connection
    # (the server reads what the client still sends before it closes: service.serving.reading_refused_bodies).
    for size in (1024 * 1024 + 1, 6 * 1024 * 1024):
        expect_error(peer(refusal_network).post(None, raw=b"x" * size), 413, "body_too_large")


def test_tampered_transaction_payload_is_refused(refusal_network: Network, unchanged: None) -> None:
    forger = peer(refusal_network)
    body = forger.transaction([report_claims_token(forger)])
    compact = tamper_payload(
        ".".join((body["protected"], body["payload"], body["signature"])), lambda claims: {**claims, "documents": []}
    )
    body["payload"] = compact.split(".")[1]
    expect_error(forger.post(body), 403, "bad_signature")


def test_transaction_signed_by_another_member_over_my_connection_is_refused(
    refusal_network: Network, unchanged: None
) -> None:
    forger = peer(refusal_network, signer_id="hotline-fr", tls_id="hotline-nl")
    expect_error(forger.post(forger.transaction([])), 403, "author_mismatch")


def test_claiming_to_be_another_member_is_refused(refusal_network: Network, unchanged: None) -> None:
    forger = peer(refusal_network, signer_id="hotline-fr", tls_id="hotline-nl")
    body = forger.signer.sign_flattened(
        "hotline.transaction.v1", forger.signer.claims("exchange", now=now(), documents=[]) | {"iss": "hotline-nl"}
    )
    expect_error(forger.post(body), 403, "issuer_mismatch")


def test_transaction_addressed_to_someone_else_is_refused(refusal_network: Network, unchanged: None) -> None:
    forger = peer(refusal_network)
    expect_error(
        forger.post(forger.transaction([report_claims_token(forger)], aud="hotline-de")), 403, "wrong_recipient"
    )


@pytest.mark.parametrize("offset", [-3600, 3600])
def test_issued_at_outside_clock_skew_is_refused(refusal_network: Network, unchanged: None, offset: int) -> None:
    forger = peer(refusal_network)
    iat = int((now() + dt.timedelta(seconds=offset)).timestamp())
    expect_error(forger.post(forger.transaction([report_claims_token(forger)], iat=iat)), 401, "clock_skew")


def test_transaction_failing_its_schema_is_refused(refusal_network: Network, unchanged: None) -> None:
    forger = peer(refusal_network)
    response = forger.post(forger.transaction([], extra="field"))
    expect_error(response, 422, "schema_invalid")
    assert "extra" in response.json()["message"]


def test_replayed_transaction_is_refused(refusal_network: Network) -> None:
    forger = peer(refusal_network)
    body = forger.transaction([report_claims_token(forger)])
    assert forger.outcomes(forger.post(body))[0]["outcome"] == "accepted"
    database = refusal_network.layout.exchange.database
    before = count_rows(database, *TABLES)
    expect_error(forger.post(body), 409, "replayed_message")
    assert count_rows(database, *TABLES) == before


def test_wrong_algorithms_are_refused(refusal_network: Network, unchanged: None) -> None:
    forger = peer(refusal_network)
    body = forger.transaction([])
    header = json.loads(base64.urlsafe_b64decode(body["protected"] + "=="))
    for alg in ("none", "EdDSA", "HS256"):
        forged = dict(body, protected=_b64json({**header, "alg": alg}))
        expect_error(forger.post(forged), 400, "unsupported_algorithm")


def _b64json(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# --- Documents inside a valid transaction: rejected one by one, nothing of them kept ---------------------


def _single_outcome(forger: ForgingPeer, document: str) -> dict[str, Any]:
    return forger.outcomes(forger.post(forger.transaction([document])))[0]


def test_tampered_document_is_rejected(refusal_network: Network) -> None:
    forger = peer(refusal_network)
    token = tamper_payload(
        report_claims_token(forger), lambda c: {**c, "header": {**c["header"], "hosting_country": "FR"}}
    )
    database = refusal_network.layout.exchange.database
    before = count_rows(database, "cases", "locations", "inbound_documents", "outbox")
    outcome = _single_outcome(forger, token)
    assert (outcome["outcome"], outcome["error"]) == ("rejected", "bad_signature")
    assert count_rows(database, "cases", "locations", "inbound_documents", "outbox") == before


def test_document_signed_by_a_key_other_than_its_authors_is_rejected(refusal_network: Network) -> None:
    nl = peer(refusal_network)
    fr = peer(refusal_network, signer_id="hotline-fr")
    # Claims hotline-nl as author but carries and is signed with hotline-fr's certificate and key.
    claims = report_claims(nl.signer)
    forged = fr.signer.sign_compact("hotline.report.v1", claims)
    database = refusal_network.layout.exchange.database
    before = count_rows(database, "cases", "inbound_documents", "outbox")
    assert _single_outcome(nl, forged)["error"] == "issuer_mismatch"
    # hotline-nl's certificate in the header, hotline-fr's signature.
    header, payload, _ = nl.signer.sign_compact("hotline.report.v1", claims).split(".")
    signature = fr.signer.sign_compact("hotline.report.v1", claims).split(".")[2]
    assert _single_outcome(nl, ".".join((header, payload, signature)))["error"] == "bad_signature"
    assert count_rows(database, "cases", "inbound_documents", "outbox") == before


def test_document_relayed_by_another_member_is_rejected(refusal_network: Network) -> None:
    fr = peer(refusal_network, signer_id="hotline-fr", tls_id="hotline-fr")
    nl = peer(refusal_network)
    outcome = _single_outcome(fr, report_claims_token(nl))
    assert (outcome["outcome"], outcome["error"]) == ("rejected", "relay_not_allowed")


def test_document_failing_its_schema_is_rejected_and_others_still_apply(refusal_network: Network) -> None:
    forger = peer(refusal_network)
    bad = forger.signer.sign_compact("hotline.report.v1", report_claims(forger.signer, hosting_country="Germany"))
    good = report_claims_token(forger)
    results = forger.outcomes(forger.post(forger.transaction([bad, good])))
    assert [r["outcome"] for r in results] == ["rejected", "accepted"]
    assert results[0]["error"] == "schema_invalid"


def test_document_addressed_elsewhere_is_rejected(refusal_network: Network) -> None:
    forger = peer(refusal_network)
    claims = report_claims(forger.signer) | {"aud": "hotline-de"}
    outcome = _single_outcome(forger, forger.signer.sign_compact("hotline.report.v1", claims))
    assert outcome["error"] == "wrong_recipient"


def test_duplicate_document_gets_the_stored_outcome_and_a_reused_id_is_refused(refusal_network: Network) -> None:
    forger = peer(refusal_network)
    claims = report_claims(forger.signer)
    token = forger.signer.sign_compact("hotline.report.v1", claims)
    assert _single_outcome(forger, token)["outcome"] == "accepted"
    database = refusal_network.layout.exchange.database
    before = count_rows(database, *TABLES)
    assert _single_outcome(forger, token) == {"id": claims["jti"], "outcome": "duplicate"}
    reused = forger.signer.sign_compact("hotline.report.v1", report_claims(forger.signer) | {"jti": claims["jti"]})
    assert _single_outcome(forger, reused)["error"] == "message_id_reused"
    after = count_rows(database, *TABLES)
    assert {t: after[t] - before[t] for t in TABLES} == {t: (2 if t == "seen_transactions" else 0) for t in TABLES}


def test_status_from_a_member_that_is_not_the_destination_is_rejected(refusal_network: Network) -> None:
    nl = peer(refusal_network)
    report = report_claims(nl.signer)
    assert _single_outcome(nl, nl.signer.sign_compact("hotline.report.v1", report))["outcome"] == "accepted"
    fr = peer(refusal_network, signer_id="hotline-fr", tls_id="hotline-fr")
    status = fr.signer.claims(
        "exchange", now=now(), case_id=report["jti"], status="removed", at=now().isoformat().replace("+00:00", "Z")
    )
    assert _single_outcome(fr, fr.signer.sign_compact("hotline.status.v1", status))["error"] == "not_case_destination"


def test_no_view_is_reachable_without_a_certificate(refusal_network: Network) -> None:
    """Every route, known or not, answers 401 to a client without a certificate, before routing."""
    session = requests.Session()
    session.trust_env = False
    for method, path in (
        ("GET", "/v1/directory"),
        ("GET", "/v1/status"),
        ("POST", "/v1/transactions"),
        ("GET", "/nowhere"),
    ):
        response = session.request(
            method,
            f"{refusal_network.layout.exchange.url}{path}",
            verify=str(refusal_network.layout.ca_cert),
            timeout=10,
        )
        expect_error(response, 401, "client_certificate_required")


# --- Found in review: each of these once failed a whole transaction or was accepted wrongly ------------


def test_a_batch_mixing_a_duplicate_and_new_reports_applies_them_all(refusal_network: Network) -> None:
    forger = peer(refusal_network)
    known = report_claims(forger.signer)
    assert _single_outcome(forger, forger.signer.sign_compact("hotline.report.v1", known))["outcome"] == "accepted"
    again = forger.signer.sign_compact("hotline.report.v1", report_claims(forger.signer, known["body"]["url"]))
    results = forger.outcomes(forger.post(forger.transaction([again, report_claims_token(forger)])))
    assert [r["outcome"] for r in results] == ["accepted", "accepted"]


def test_a_timestamp_no_database_can_store_rejects_only_its_document(refusal_network: Network) -> None:
    forger = peer(refusal_network)
    odd = report_claims(forger.signer, confirmed_at="9999-12-31T23:59:59-23:59")
    results = forger.outcomes(
        forger.post(
            forger.transaction([forger.signer.sign_compact("hotline.report.v1", odd), report_claims_token(forger)])
        )
    )
    assert [(r["outcome"], r.get("error")) for r in results] == [("rejected", "schema_invalid"), ("accepted", None)]


def test_an_issued_at_beyond_year_9999_is_a_schema_error(refusal_network: Network, unchanged: None) -> None:
    forger = peer(refusal_network)
    expect_error(forger.post(forger.transaction([], iat=10**20)), 422, "schema_invalid")


def test_a_report_reusing_another_members_case_id_is_rejected(refusal_network: Network) -> None:
    nl, fr = peer(refusal_network), peer(refusal_network, signer_id="hotline-fr", tls_id="hotline-fr")
    first = report_claims(nl.signer)
    assert _single_outcome(nl, nl.signer.sign_compact("hotline.report.v1", first))["outcome"] == "accepted"
    clash = report_claims(fr.signer) | {"jti": first["jti"]}
    assert _single_outcome(fr, fr.signer.sign_compact("hotline.report.v1", clash))["error"] == "message_id_reused"


def test_the_fallback_cannot_route_a_report_to_itself(refusal_network: Network) -> None:
    secretariat = peer(refusal_network, signer_id="secretariat", tls_id="secretariat")
    outcome = _single_outcome(secretariat, report_claims_token(secretariat, country="BR"))
    assert outcome["error"] == "hosted_at_origin"


# Last: it starts hotline-de, and the reports queued for it start flowing (tables change from here on).
def test_node_accepts_transactions_only_from_the_exchange(refusal_network: Network) -> None:
    network = refusal_network
    network.start("hotline-de")
    forger = peer(network)
    forger.url = network.layout.members["hotline-de"].url
    try:
        expect_error(forger.post(forger.transaction([], aud="hotline-de")), 403, "forbidden")
    finally:
        network.processes["hotline-de"].stop()


def _from_the_destination(network: Network) -> tuple[ForgingPeer, dict[str, Any], str]:
    """A case opened by hotline-nl for content hosted in DE (provisional), and hotline-de as a peer."""
    nl = peer(network)
    opening = report_claims(nl.signer)
    assert _single_outcome(nl, nl.signer.sign_compact("hotline.report.v1", opening))["outcome"] == "accepted"
    return peer(network, signer_id="hotline-de", tls_id="hotline-de"), opening, now().isoformat().replace("+00:00", "Z")


def _receipt(destination: ForgingPeer, report_id: str, stamp: str) -> str:
    """The destination's signed receipt for hotline-nl's report ``report_id``."""
    claims = destination.signer.claims("hotline-nl", now=now(), report_id=report_id, received_at=stamp)
    return destination.signer.sign_compact("hotline.receipt.v1", claims)


def test_a_case_loaded_before_its_receipt_in_one_batch_is_seen_confirmed_after_it(refusal_network: Network) -> None:
    """A note, the receipt and a status for one case in one transaction: the note reads the case before
    the receipt confirms it (with a statement), and the status after the receipt must find it confirmed."""
    de, opening, stamp = _from_the_destination(refusal_network)
    case_id = opening["jti"]
    status = de.signer.claims("exchange", now=now(), case_id=case_id, status="removed", at=stamp)
    documents = [
        de.signer.sign_compact(
            "hotline.note.v1",
            de.signer.claims("hotline-nl", now=now(), case_id=case_id, status_id=status["jti"], note="first look"),
        ),
        _receipt(de, case_id, stamp),
        de.signer.sign_compact("hotline.status.v1", status),
    ]
    results = de.outcomes(de.post(de.transaction(documents)))
    assert [result["outcome"] for result in results] == ["accepted"] * 3, results
    database = refusal_network.layout.exchange.database
    assert query(database, "SELECT state, status FROM cases WHERE id = :id", id=case_id) == [("confirmed", "removed")]
    settled = query(database, "SELECT settled_at FROM case_reports WHERE report_id = :id", id=case_id)
    assert settled[0][0] is not None


def test_a_report_held_earlier_in_the_batch_that_confirms_its_case_is_not_left_held(refusal_network: Network) -> None:
    """A report at the location of a provisional case is held until the case's receipt; when the receipt
    comes later in the same transaction, the held report (not stored yet) goes on with the others."""
    de, opening, stamp = _from_the_destination(refusal_network)
    joining = report_claims(de.signer, opening["body"]["url"], country="FR")
    documents = [
        de.signer.sign_compact("hotline.report.v1", joining),
        _receipt(de, opening["jti"], stamp),
    ]
    results = de.outcomes(de.post(de.transaction(documents)))
    assert [result["outcome"] for result in results] == ["accepted"] * 2, results
    database = refusal_network.layout.exchange.database
    held = query(database, "SELECT state, token FROM case_reports WHERE report_id = :id", id=joining["jti"])
    assert held == [("pending", None)]
    assert query(database, "SELECT count(*) FROM outbox WHERE doc_id = :id", id=joining["jti"]) == [(1,)]


def test_a_receipt_after_a_move_in_the_same_batch_meets_the_moved_case(refusal_network: Network) -> None:
    """A ``moved`` status re-points the case to FR and settles its opening report (written at the batch's
    end); a receipt for that report later in the same transaction must meet the case as moved, not the rows
    as stored: hotline-de is no longer its destination."""
    de, opening, stamp = _from_the_destination(refusal_network)

    assert _single_outcome(de, _receipt(de, opening["jti"], stamp))["outcome"] == "accepted"
    moved = de.signer.claims("exchange", now=now(), case_id=opening["jti"], status="moved", at=stamp, moved_to="FR")
    again = _receipt(de, opening["jti"], stamp)
    results = de.outcomes(de.post(de.transaction([de.signer.sign_compact("hotline.status.v1", moved), again])))
    assert [(result["outcome"], result.get("error")) for result in results] == [
        ("accepted", None),
        ("rejected", "not_case_destination"),
    ]
