"""The partner API over real HTTPS, on SQLite and PostgreSQL: OAuth2 client credentials, batches,
idempotent retries, and the walls between partners."""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.client
import json
import ssl
import time
from typing import Any

import pytest
import requests

from certs.devnet import DEV_MEMBERS
from demo.network import Network, PartnerClient, service_app
from tests.conftest import count_rows, query

NL = DEV_MEMBERS[0].member_id


@pytest.fixture
def node(network_factory: Any) -> Network:
    network: Network = network_factory(members=(DEV_MEMBERS[0],), PARTNER_TOKEN_SECONDS=60)
    network.public(NL)
    return network


def register(network: Network, name: str, scopes: list[str]) -> dict[str, str]:
    """A partner registered as a supervisor does it (the service the console page calls)."""
    from node.db import db
    from node.partners.services import PartnerBook

    app = service_app(network.layout.spec(NL), "public")
    with app.app_context():
        partner, secret = PartnerBook(db.session).register(
            name=name, contact="ops@platform.example", scopes=scopes, by="account:sam", now=dt.datetime.now(dt.UTC)
        )
        client_id = partner.client_id
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return {"client_id": client_id, "client_secret": secret, "name": name}


def client_for(network: Network, partner: dict[str, str]) -> PartnerClient:
    spec = dataclasses.replace(network.layout.spec(NL), partner=partner)
    return PartnerClient(spec, network.layout.web.ca)


def on_partner(network: Network, client_id: str, change: str) -> None:
    """Suspend or reinstate a partner, or give it a new secret, as a supervisor does in the console."""
    from node.db import db
    from node.partners.models import Partner
    from node.partners.services import PartnerBook

    app = service_app(network.layout.spec(NL), "public")
    with app.app_context():
        partner = db.session.query(Partner).filter_by(client_id=client_id).one()
        book = PartnerBook(db.session)
        now = dt.datetime.now(dt.UTC)
        {"suspend": book.suspend, "reinstate": book.reinstate, "new_secret": book.new_secret}[change](
            partner, by="account:sam", now=now
        )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def raw_session(network: Network) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(network.layout.web.ca)
    return session


def test_a_token_comes_from_client_credentials_by_basic_auth_or_form(node: Network) -> None:
    spec = node.layout.spec(NL)
    session = raw_session(node)
    url = f"{spec.public_url}/oauth/token"
    basic = session.post(
        url, data={"grant_type": "client_credentials"}, auth=(spec.partner["client_id"], spec.partner["client_secret"])
    )
    assert basic.status_code == 200, basic.text
    token = basic.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 60
    assert token["scope"].split() == ["reports:read", "reports:write"]
    assert token["access_token"].startswith("hpt_")
    assert basic.headers["Cache-Control"] == "no-store"
    form = session.post(
        url,
        data={"grant_type": "client_credentials", "scope": "reports:read", **spec.partner},
    )
    assert form.status_code == 200 and form.json()["scope"] == "reports:read"
    # Only hashes are stored, of the token and of the secret.
    rows = query(
        spec.database.replace("postgresql+psycopg", "postgresql+psycopg"), "SELECT token_hash FROM partner_tokens"
    )
    assert rows and all(token["access_token"] not in row[0] for row in rows)
    secrets = query(spec.database, "SELECT secret_hash FROM partners")
    assert all(spec.partner["client_secret"] not in row[0] for row in secrets)


@pytest.mark.parametrize(
    ("data", "auth", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, ("hpc_nobody", "hps_wrong"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, "wrong-secret", 401, "invalid_client"),
        ({"grant_type": "password", "username": "x", "password": "y"}, "right", 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "scope": "admin"}, "right", 400, "invalid_scope"),
        ({}, "right", 400, "unsupported_grant_type"),
    ],
    ids=["unknown-client", "wrong-secret", "other-grant", "unknown-scope", "no-grant"],
)
def test_token_requests_that_fail_say_why_in_oauth_terms(
    node: Network, data: dict[str, str], auth: Any, status: int, error: str
) -> None:
    spec = node.layout.spec(NL)
    if auth == "right":
        auth = (spec.partner["client_id"], spec.partner["client_secret"])
    elif auth == "wrong-secret":
        auth = (spec.partner["client_id"], "hps_not-the-secret")
    answer = raw_session(node).post(f"{spec.public_url}/oauth/token", data=data, auth=auth)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error
    assert count_rows(spec.database, "partner_tokens")["partner_tokens"] == 0


def test_a_batch_of_mixed_items_gives_each_its_own_outcome(node: Network) -> None:
    partner = node.partner(NL)
    items = [
        {"url": "http://mixed.example/1", "external_id": "a-1", "seen_on": "website"},
        {"url": "javascript:alert(1)", "external_id": "a-2"},
        {"url": "HTTP://MIXED.example:80/1#frag", "external_id": "a-3"},  # The same location as a-1.
        {"url": "http://mixed.example/2", "content_hashes": [{"alg": "md5", "value": "ab" * 16}]},
        {"url": "http://mixed.example/3", "content_hashes": [{"alg": "md5", "value": "ab" * 32}]},
        {"url": "http://mixed.example/4", "detected_at": "2999-01-01T00:00:00Z"},
        {"url": "http://user:pw@mixed.example/5"},
        {"url": "http://mixed.example/6", "colour": "red"},
        {"url": 42},
        {
            "url": "http://mixed.example/7",
            "detected_at": "2026-11-01T10:00:00+01:00",
            "description": "found by a classifier",
        },
    ]
    result = partner.submit(items)
    outcomes = [(r["index"], r["outcome"], r.get("code")) for r in result["results"]]
    assert outcomes == [
        (0, "accepted", None),
        (1, "refused", "unsupported_scheme"),
        (2, "duplicate", None),
        (3, "accepted", None),
        (4, "refused", "invalid_report"),
        (5, "refused", "detected_in_future"),
        (6, "refused", "credentials_in_url"),
        (7, "refused", "invalid_report"),
        (8, "refused", "invalid_report"),
        (9, "accepted", None),
    ]
    assert result["results"][2]["id"] == result["results"][0]["id"]
    assert result["results"][1]["external_id"] == "a-2"
    assert (result["accepted"], result["duplicates"], result["refused"]) == (3, 1, 6)
    assert "colour" in result["results"][7]["detail"]
    assert count_rows(node.layout.spec(NL).database, "submissions")["submissions"] == 3
    # A later batch with the same location is a duplicate of the open report, not a second one.
    again = partner.submit([{"url": "http://mixed.example/1"}])
    assert again["results"][0] == {"index": 0, "outcome": "duplicate", "id": result["results"][0]["id"]}


def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer(node: Network) -> None:
    partner = node.partner(NL)
    items = [{"url": f"http://retry.example/{i}"} for i in range(5)]
    first = partner.request(
        "POST", "/api/v1/reports/batch", json={"reports": items}, headers={"Idempotency-Key": "k-1"}
    )
    second = partner.request(
        "POST", "/api/v1/reports/batch", json={"reports": items}, headers={"Idempotency-Key": "k-1"}
    )
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert count_rows(node.layout.spec(NL).database, "submissions")["submissions"] == 5
    other = partner.request(
        "POST", "/api/v1/reports/batch", json={"reports": items[:1]}, headers={"Idempotency-Key": "k-1"}
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert other.headers["Content-Type"] == "application/problem+json"
    one = partner.request(
        "POST", "/api/v1/reports", json={"url": "http://retry.example/one"}, headers={"Idempotency-Key": "k-2"}
    )
    same = partner.request(
        "POST", "/api/v1/reports", json={"url": "http://retry.example/one"}, headers={"Idempotency-Key": "k-2"}
    )
    assert one.status_code == same.status_code == 201 and one.json() == same.json()
    assert count_rows(node.layout.spec(NL).database, "submissions")["submissions"] == 6


def test_a_partner_reads_its_own_reports_and_never_another_partners(node: Network) -> None:
    ours = node.partner(NL)
    accepted = ours.submit([{"url": f"http://own.example/{i}", "external_id": f"o-{i}"} for i in range(7)])
    ids = [r["id"] for r in accepted["results"]]
    theirs = client_for(node, register(node, "Other platform", ["reports:write", "reports:read"]))
    their_id = theirs.submit([{"url": "http://theirs.example/1"}])["results"][0]["id"]
    # The same location reported by two partners is two reports (each partner's duplicate check is its own).
    both = theirs.submit([{"url": "http://own.example/0"}])["results"][0]
    assert both["outcome"] == "accepted" and both["id"] != ids[0]
    listed = ours.request("GET", "/api/v1/reports", params={"per_page": 3})
    assert listed.status_code == 200
    page = listed.json()
    assert page["total"] == 7 and page["pages"] == 3 and len(page["items"]) == 3
    assert page["items"][0]["status"] == "received" and page["items"][0]["external_id"] == "o-0"
    assert ours.request("GET", f"/api/v1/reports/{ids[3]}").json()["url"] == "http://own.example/3"
    hidden = ours.request("GET", f"/api/v1/reports/{their_id}")
    missing = ours.request("GET", "/api/v1/reports/00000000-0000-0000-0000-000000000000")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()  # Another's report is answered exactly like no report.
    # Filtered by time.
    future = ours.request("GET", "/api/v1/reports", params={"since": "2999-01-01T00:00:00Z"}).json()
    assert future["total"] == 0
    bad = ours.request("GET", "/api/v1/reports", params={"since": "last tuesday"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_parameter"


def test_a_token_without_the_scope_is_refused(node: Network) -> None:
    reader = client_for(node, register(node, "Read only", ["reports:read"]))
    answer = reader.request("POST", "/api/v1/reports", json={"url": "http://scope.example/"})
    assert answer.status_code == 403
    assert answer.json()["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in answer.headers["WWW-Authenticate"]
    narrow = node.partner(NL)
    narrow.fetch_token("reports:write")
    assert narrow.request("GET", "/api/v1/reports").json()["code"] == "insufficient_scope"
    assert count_rows(node.layout.spec(NL).database, "submissions")["submissions"] == 0


def test_missing_unknown_and_expired_tokens_are_refused(network_factory: Any) -> None:
    network: Network = network_factory(members=(DEV_MEMBERS[0],), PARTNER_TOKEN_SECONDS=1)
    network.public(NL)
    spec = network.layout.spec(NL)
    session = raw_session(network)
    missing = session.get(f"{spec.public_url}/api/v1/reports")
    assert missing.status_code == 401 and missing.json()["code"] == "missing_token"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    for header in ("Bearer hpt_made-up", "Bearer " + "x" * 5000, "Basic abc", "Bearer"):
        answer = session.get(f"{spec.public_url}/api/v1/reports", headers={"Authorization": header})
        assert answer.status_code == 401, header[:20]
    partner = network.partner(NL)
    assert partner.request("GET", "/api/v1/reports").status_code == 200
    time.sleep(1.2)  # The token lives one second in this network.
    expired = partner.request("GET", "/api/v1/reports")
    assert expired.status_code == 401 and expired.json()["code"] == "invalid_token"
    partner.fetch_token()
    assert partner.request("GET", "/api/v1/reports").status_code == 200


def test_a_suspended_partner_is_refused_at_once_and_its_new_secret_replaces_the_old(node: Network) -> None:
    spec = node.layout.spec(NL)
    partner = node.partner(NL)
    assert partner.request("GET", "/api/v1/reports").status_code == 200
    on_partner(node, spec.partner["client_id"], "suspend")
    refused = partner.request("GET", "/api/v1/reports")
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"  # Its tokens were revoked.
    again = raw_session(node).post(
        f"{spec.public_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(spec.partner["client_id"], spec.partner["client_secret"]),
    )
    assert again.status_code == 400 and again.json()["error"] == "unauthorized_client"
    assert "suspended" in again.json()["error_description"]
    on_partner(node, spec.partner["client_id"], "reinstate")
    partner.fetch_token()
    assert partner.request("GET", "/api/v1/reports").status_code == 200
    on_partner(node, spec.partner["client_id"], "new_secret")
    assert partner.request("GET", "/api/v1/reports").status_code == 401
    with pytest.raises(requests.HTTPError):
        partner.fetch_token()


def test_every_call_is_in_the_audit_trail(node: Network) -> None:
    spec = node.layout.spec(NL)
    partner = node.partner(NL)
    partner.submit([{"url": "http://audit.example/1"}, {"url": "nope:"}])
    partner.request("GET", "/api/v1/reports")
    partner.request("POST", "/api/v1/reports/batch", data=b"{", headers={"Content-Type": "application/json"})
    actions = query(
        spec.database,
        "SELECT action, detail FROM audit_entries WHERE actor = :actor ORDER BY seq",
        actor=f"partner:{spec.partner['client_id']}",
    )
    names = [row[0] for row in actions]
    assert names == ["partner.token", "partner.reports.batch", "partner.reports.list", "partner.refused"]
    assert '"accepted": 1' in str(actions[1][1]).replace("'", '"') or actions[1][1]["accepted"] == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{", "application/json", 400, "malformed_json"),
        (b"\xff\xfe{}", "application/json", 400, "malformed_json"),
        (b'{"reports": []}', "application/json", 422, "schema_invalid"),
        (b'{"reports": ["http://a.example/"]}', "application/json", 422, "schema_invalid"),
        (b'{"reports": [{"url": "http://a.example/"}], "more": 1}', "application/json", 422, "schema_invalid"),
        (b'[{"url": "http://a.example/"}]', "application/json", 422, "schema_invalid"),
        (b"url=http://a.example/", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
    ids=["truncated", "not-utf8", "empty", "strings", "extra-member", "bare-array", "form-encoded"],
)
def test_a_body_that_is_not_a_batch_is_refused_whole_and_nothing_is_stored(
    node: Network, body: bytes, content_type: str, status: int, code: str
) -> None:
    answer = node.partner(NL).request(
        "POST", "/api/v1/reports/batch", data=body, headers={"Content-Type": content_type}
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    assert count_rows(node.layout.spec(NL).database, "submissions")["submissions"] == 0


def test_the_batch_limit_and_the_body_limit_are_clear_refusals(node: Network) -> None:
    partner = node.partner(NL)
    too_many = partner.request(
        "POST", "/api/v1/reports/batch", json={"reports": [{"url": f"http://n.example/{i}"} for i in range(1001)]}
    )
    assert too_many.status_code == 422 and "more than 1000 items" in too_many.json()["detail"]
    # A body over the limit is refused from its Content-Length, before it is read.
    spec = node.layout.spec(NL)
    partner.fetch_token()
    context = ssl.create_default_context(cafile=str(node.layout.web.ca))
    connection = http.client.HTTPSConnection("127.0.0.1", spec.public_port, context=context, timeout=30)
    connection.putrequest("POST", "/api/v1/reports/batch")
    connection.putheader("Authorization", f"Bearer {partner.token}")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(17 * 1024 * 1024))
    connection.endheaders()
    huge = connection.getresponse()
    assert huge.status == 413
    assert json.loads(huge.read())["code"] == "http_413"
    connection.close()
    full = partner.submit([{"url": f"http://n.example/{i}", "description": "d" * 100} for i in range(1000)])
    assert full["accepted"] == 1000
    assert count_rows(node.layout.spec(NL).database, "submissions")["submissions"] == 1000
