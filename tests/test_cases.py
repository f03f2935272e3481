"""The analyst's day over real HTTPS and mutual TLS: reports of one location collapse into one case,
triage asks the network by prefixes only, the assessment (with four-eyes review where it is on), the
hosting trace, and the routing decision that sends the case to the hotline that covers its country."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from certs.devnet import DEV_MEMBERS
from demo.network import Network, OperatorClient, PublicReporter, read_toml, staff_token, write_toml
from federation.signing import short_id
from tests.conftest import make_network, query

NL, DE, FR = (member.member_id for member in DEV_MEMBERS[:3])
SHA = "5e" * 32


def reporter(network: Network, member_id: str) -> PublicReporter:
    return PublicReporter(network.public(member_id), network.layout.web.ca)


def supervisor(network: Network, member_id: str) -> OperatorClient:
    spec = network.layout.spec(member_id)
    token = staff_token(spec, "sam-script", "supervisor")
    return OperatorClient(dataclasses.replace(spec, api_token=token), network.layout.web.ca)


def case_of(client: OperatorClient, url: str) -> dict[str, Any]:
    item = next(i for i in client.items("/api/v1/intake") if url in (i["url"], i["canonical_url"]))
    found: dict[str, Any] = client.get(f"/api/v1/cases/{item['case_id']}")
    return found


def triaged(client: OperatorClient, case_id: str) -> dict[str, Any]:
    """The case once the worker's triage has run (it runs every second in tests)."""
    found: dict[str, Any] = client.wait_for(f"/api/v1/cases/{case_id}", lambda c: c["triage"] is not None)
    return found


def post(client: OperatorClient, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    return client.request("POST", path, json=body or {})


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """The exchange and three members on SQLite; hotline-de asks for a supervisor's review (four eyes)."""
    network = make_network(
        tmp_path_factory.mktemp("cases"),
        "sqlite",
        None,
        TRIAGE_SECONDS=1,
        PUBLIC_RATE_LIMIT_REPORTS="500/minute",
        PUBLIC_RATE_LIMIT_STATUS="500/minute",
    )
    spec = network.layout.spec(DE)
    write_toml(spec.config, {**read_toml(spec.config), "FOUR_EYES_REVIEW": True})
    network.start()
    yield network
    network.stop()


def test_reports_of_one_location_collapse_into_one_case_that_keeps_every_reporter(net: Network) -> None:
    client = net.client(NL)
    public = reporter(net, NL)
    public.report("http://Collapse.example/a/../gallery?id=1#top", lang="en", seen_on="website")
    public.report("http://collapse.example/gallery?id=1", lang="nl", seen_on="chat", description="again")
    partner = net.partner(NL)
    partner.submit([{"url": "http://collapse.example:80/gallery?id=1", "external_id": "c-1"}])
    public.report("http://collapse.example/gallery?id=2", lang="en", seen_on="website")
    submissions = [i for i in client.items("/api/v1/intake") if "collapse.example" in i["url"].lower()]
    assert len(submissions) == 4
    by_case: dict[str, list[str]] = {}
    for item in submissions:
        by_case.setdefault(item["case_id"], []).append(item["source"])
    assert sorted(sorted(sources) for sources in by_case.values()) == [["partner", "public", "public"], ["public"]]
    first = case_of(client, "http://collapse.example/gallery?id=1")
    assert first["reporters"] == 3 and first["state"] == "new"
    assert first["canonical_url"] == "http://collapse.example/gallery?id=1"
    # The queue filters by source: the partner's case is there, the other is not.
    partner_cases = {c["id"] for c in client.items("/api/v1/cases?queue=new&source=partner")}
    assert first["id"] in partner_cases and set(by_case) - partner_cases


def test_cases_reported_together_show_different_short_ids_and_each_is_found_by_its_own(net: Network) -> None:
    """Ids are time-ordered (version 7): cases made in the same minute share their first eight characters,
    which the pages used to show as every case's name. The pages show the last eight (random) instead,
    and the search box finds a case by them."""
    client = net.client(NL)
    public = reporter(net, NL)
    urls = [f"http://short-ids.example/{n}" for n in range(3)]
    for url in urls:
        public.report(url, lang="en", seen_on="website")
    cases = [case_of(client, url) for url in urls]
    assert len({short_id(case["id"]) for case in cases}) == 3
    for case in cases:
        found = client.items(f"/api/v1/cases?queue=all&q={short_id(case['id']).upper()}")
        assert [item["id"] for item in found] == [case["id"]]


def test_a_case_closed_and_reported_again_opens_again(net: Network) -> None:
    client = net.client(NL)
    public = reporter(net, NL)
    public.report("http://reopen.example/x", lang="en", seen_on="website")
    found = case_of(client, "http://reopen.example/x")
    closed = post(client, f"/api/v1/cases/{found['id']}/close", {"reason": "no_content"})
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    public.report("http://reopen.example/x", lang="en", seen_on="website")
    again = client.get(f"/api/v1/cases/{found['id']}")
    assert again["state"] == "new" and again["reporters"] == 2 and again["closed_reason"] is None


def test_bad_input_on_a_case_is_a_clear_error_and_changes_nothing(net: Network) -> None:
    client = net.client(NL)
    reporter(net, NL).report("http://bad-input.example/1", lang="en", seen_on="website")
    case_id = case_of(client, "http://bad-input.example/1")["id"]
    for path, body, status, words in (
        ("assess", {"legal_status": "maybe"}, 422, "legal_status"),
        ("assess", {"legal_status": "baseline", "content_hashes": ["md5:xyz"]}, 422, "content_hashes"),
        ("assess", {"legal_status": "baseline", "urgent": True}, 422, "Say why it is urgent"),
        ("assess", {"legal_status": "baseline", "payment_method": "card"}, 422, "commercial"),
        ("decide", {"decision": "forward"}, 409, "assess the case"),
        ("country", {"country": "DE"}, 422, "reason"),
        ("country", {"country": "D1", "reason": "x"}, 422, "two letters"),
        ("close", {"reason": "bored"}, 422, "reason"),
    ):
        answer = post(client, f"/api/v1/cases/{case_id}/{path}", body)
        assert answer.status_code == status, (path, body, answer.text)
        problem = answer.json()
        assert problem["status"] == status and words.lower() in problem["detail"].lower(), problem
    unknown = client.request("GET", "/api/v1/cases/no-such-case")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_case"
    not_json = client.request(
        "POST", f"/api/v1/cases/{case_id}/assess", data="{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code in (400, 422) and not_json.json()["detail"]
    after = client.get(f"/api/v1/cases/{case_id}")
    assert after["state"] == "new" and after["assessment"] is None and after["hosting_country"] is None


def test_the_trace_suggests_a_country_and_says_when_it_cannot(net: Network) -> None:
    client = net.client(NL)
    public = reporter(net, NL)
    for url in (
        "http://images.example/t/1",
        "http://forum.example/t/1",
        "http://nowhere.example/1",
    ):
        public.report(url, lang="en", seen_on="website")
    traces = {}
    for url in (
        "http://images.example/t/1",
        "http://forum.example/t/1",
        "http://nowhere.example/1",
    ):
        case_id = case_of(client, url)["id"]
        answer = post(client, f"/api/v1/cases/{case_id}/trace")
        assert answer.status_code == 200, answer.text
        traces[url] = answer.json()
    images = traces["http://images.example/t/1"]
    assert images["hosting_country"] == "DE" and images["country_source"] == "trace"
    assert images["trace"]["addresses"][0]["asn"] == 64501 and images["trace"]["data_date"] == "2026-11-01"
    cdn = traces["http://forum.example/t/1"]
    assert cdn["hosting_country"] is None and cdn["trace"]["behind_cdn"] is True
    assert (
        cdn["trace"]["addresses"][0]["cdn"] == "Example CDN"
        and "origin" in cdn["trace"]["addresses"][0]["cdn_guidance"]
    )
    nowhere = traces["http://nowhere.example/1"]
    assert nowhere["hosting_country"] is None and "not in the resolver's table" in nowhere["trace"]["error"]
    # The analyst knows better (the CDN named its origin): the country set by hand, with the reason kept.
    set_by_hand = post(
        client, f"/api/v1/cases/{cdn['id']}/country", {"country": "fr", "reason": "The CDN named an origin in Roubaix."}
    )
    assert set_by_hand.status_code == 200
    assert set_by_hand.json()["hosting_country"] == "FR" and set_by_hand.json()["country_source"] == "override"
    # A trace that runs again does not overwrite what the analyst decided.
    again = post(client, f"/api/v1/cases/{cdn['id']}/trace").json()
    assert again["hosting_country"] == "FR" and again["country_source"] == "override"


def test_four_eyes_review_by_a_supervisor_who_did_not_assess(net: Network) -> None:
    analyst, boss = net.client(DE), supervisor(net, DE)
    reporter(net, DE).report("http://social.example/p/review", lang="de", seen_on="social_media")
    case_id = case_of(analyst, "http://social.example/p/review")["id"]
    assessed = post(analyst, f"/api/v1/cases/{case_id}/assess", {"legal_status": "baseline", "media_type": "video"})
    assert assessed.status_code == 200 and assessed.json()["state"] == "review"
    early = post(analyst, f"/api/v1/cases/{case_id}/decide", {"decision": "forward"})
    assert early.status_code == 409
    refused = post(analyst, f"/api/v1/cases/{case_id}/review", {"decision": "approve"})
    assert refused.status_code == 403
    returned = post(boss, f"/api/v1/cases/{case_id}/review", {"decision": "return", "note": "Check the age group."})
    assert returned.status_code == 200 and returned.json()["state"] == "new"
    post(analyst, f"/api/v1/cases/{case_id}/assess", {"legal_status": "baseline", "age_group": "prepubescent"})
    approved = post(boss, f"/api/v1/cases/{case_id}/review", {"decision": "approve"})
    assert approved.status_code == 200 and approved.json()["state"] == "assessed"
    # A supervisor's own assessment needs another supervisor.
    reporter(net, DE).report("http://social.example/p/own", lang="de", seen_on="social_media")
    own = case_of(analyst, "http://social.example/p/own")["id"]
    post(boss, f"/api/v1/cases/{own}/assess", {"legal_status": "baseline"})
    self_review = post(boss, f"/api/v1/cases/{own}/review", {"decision": "approve"})
    assert self_review.status_code == 409 and "another supervisor" in self_review.json()["detail"]


def test_triage_asks_the_exchange_by_prefixes_and_finds_known_locations_and_material(net: Network) -> None:
    nl, fr = net.client(NL), net.client(FR)
    # hotline-nl forwards a location hosted in Germany, with a content hash.
    url = "http://images.example/gallery/?id=4411"
    reporter(net, NL).report(url, lang="nl", seen_on="website")
    case_id = case_of(nl, url)["id"]
    first = triaged(nl, case_id)
    assert first["known"] is False and first["triage"]["network"] == {"location": None, "material": []}
    assert (
        post(
            nl,
            f"/api/v1/cases/{case_id}/assess",
            {
                "legal_status": "baseline",
                "media_type": "image",
                "age_group": "prepubescent",
                "site_type": "image_host",
                "content_hashes": [f"sha256:{SHA}"],
                "notes": "Gallery of 40 images.",
            },
        ).status_code
        == 200
    )
    assert post(nl, f"/api/v1/cases/{case_id}/trace").json()["hosting_country"] == "DE"
    forwarded = post(nl, f"/api/v1/cases/{case_id}/decide", {"decision": "forward"})
    assert forwarded.status_code == 200, forwarded.text
    assert forwarded.json()["state"] == "forwarded" and forwarded.json()["destination"] == DE
    report_id = forwarded.json()["report_id"]
    nl.wait_for(f"/api/v1/reports/{report_id}", lambda r: r["received_at"] is not None)
    # The same material reported again here, at another address: this hotline's own case is named.
    net.partner(NL).submit(
        [{"url": "http://copy.example/same.jpg", "content_hashes": [{"alg": "sha256", "value": SHA}]}]
    )
    copy = triaged(nl, case_of(nl, "http://copy.example/same.jpg")["id"])
    assert copy["known"] is True
    assert [m["case_id"] for m in copy["triage"]["here"]["material"]] == [case_id]
    # At the destination, with the assessment as recorded.
    received = net.client(DE).wait_for(f"/api/v1/received/{report_id}", lambda c: True)
    assert received["legal_status"] == "baseline"
    assert received["details"]["media_type"] == "image" and received["details"]["site_type"] == "image_host"
    assert received["details"]["notes"] == "Gallery of 40 images."
    # hotline-fr is told of the same location and of the same material at another address, before anyone opens them.
    reporter(net, FR).report("http://IMAGES.example/gallery/?id=4411", lang="en", seen_on="website")
    net.partner(FR).submit(
        [{"url": "http://mirror.example/copy.jpg", "content_hashes": [{"alg": "sha256", "value": SHA}]}]
    )
    same_place = triaged(fr, case_of(fr, "http://images.example/gallery/?id=4411")["id"])
    assert same_place["known"] is True
    location = same_place["triage"]["network"]["location"]
    assert (
        location["destination"] == DE and location["legal_status"] == "baseline" and location["hosting_country"] == "DE"
    )
    same_material = triaged(fr, case_of(fr, "http://mirror.example/copy.jpg")["id"])
    assert same_material["known"] is True and same_material["triage"]["network"]["location"] is None
    [material] = same_material["triage"]["network"]["material"]
    assert material["value"] == SHA and material["locations"][0]["hosting_country"] == "DE"


def test_the_lookup_refuses_what_is_not_a_lookup_and_anyone_without_a_member_certificate(net: Network) -> None:
    spec = net.layout.spec(NL)
    url = f"{net.layout.exchange.url}/v1/lookup"
    session = requests.Session()
    session.trust_env = False
    session.verify = str(net.layout.ca_cert)
    session.cert = (str(spec.cert), str(spec.key))
    fine = session.post(url, json={"url_prefixes": ["00000", "fffff"], "hash_prefixes": []}, timeout=30)
    assert fine.status_code == 200 and fine.json()["prefix_length"] == 5
    for body in (
        {"url_prefixes": ["0000000"], "hash_prefixes": []},
        {"url_prefixes": ["ABCDE"], "hash_prefixes": []},
        {"url_prefixes": [f"{n:05x}" for n in range(65)], "hash_prefixes": []},
        {"url_prefixes": [], "hash_prefixes": [{"alg": "crc32", "prefix": "00000"}]},
        {"urls": ["http://example.com/"]},
    ):
        refused = session.post(url, json=body, timeout=30)
        assert refused.status_code == 422 and "error" in refused.json(), body
    anonymous = requests.Session()
    anonymous.trust_env = False
    nobody = anonymous.post(
        url, json={"url_prefixes": [], "hash_prefixes": []}, verify=str(net.layout.ca_cert), timeout=30
    )
    assert nobody.status_code == 401 and "locations" not in nobody.text


def test_routing_decision_follows_the_country_keep_here_or_forward(net: Network) -> None:
    nl = net.client(NL)
    public = reporter(net, NL)
    public.report("http://media-host.example/v/here", lang="nl", seen_on="website")
    here = case_of(nl, "http://media-host.example/v/here")["id"]
    post(nl, f"/api/v1/cases/{here}/assess", {"legal_status": "nationally_illegal"})
    assert post(nl, f"/api/v1/cases/{here}/trace").json()["hosting_country"] == "NL"
    wrong = post(nl, f"/api/v1/cases/{here}/decide", {"decision": "forward"})
    assert wrong.status_code == 409 and "keep it here" in wrong.json()["detail"]
    kept = post(nl, f"/api/v1/cases/{here}/decide", {"decision": "here"})
    assert kept.status_code == 200 and kept.json()["state"] == "hosted_here" and kept.json()["report_id"] is None
    # It is worked like a case received from abroad, with this hotline as its origin; its statuses stay here.
    worked = nl.get(f"/api/v1/received/{here}")
    assert worked["origin"] == NL and worked["status"] == "assessed" and worked["legal_status"] == "nationally_illegal"
    recorded = nl.request("POST", f"/api/v1/received/{here}/status", json={"status": "ntd_sent", "note": "Host told."})
    assert recorded.status_code == 201, recorded.text
    assert nl.get(f"/api/v1/received/{here}")["status"] == "ntd_sent"
    statuses = query(
        net.layout.spec(NL).database,
        "SELECT count(*) FROM outbox WHERE typ IN ('hotline.status.v1', 'hotline.note.v1')",
    )
    assert statuses[0][0] == 0
    # Not illegal: closed, never routed.
    public.report("http://media-host.example/v/fine", lang="nl", seen_on="website")
    fine = case_of(nl, "http://media-host.example/v/fine")["id"]
    post(nl, f"/api/v1/cases/{fine}/assess", {"legal_status": "not_illegal"})
    post(nl, f"/api/v1/cases/{fine}/trace")
    refused = post(nl, f"/api/v1/cases/{fine}/decide", {"decision": "here"})
    assert refused.status_code == 409 and "closed" in refused.json()["detail"]
    assert post(nl, f"/api/v1/cases/{fine}/close", {"reason": "not_illegal"}).json()["state"] == "closed"
    nl_db = net.layout.spec(NL).database
    assert query(nl_db, "SELECT count(*) FROM reports WHERE url LIKE '%media-host%'")[0][0] == 0
    # A country nobody covers goes to the network's fallback, and the case says so.
    public.report("http://far-away.example/x", lang="nl", seen_on="website")
    far = case_of(nl, "http://far-away.example/x")["id"]
    post(nl, f"/api/v1/cases/{far}/assess", {"legal_status": "baseline"})
    post(nl, f"/api/v1/cases/{far}/country", {"country": "JP", "reason": "The host's own statement."})
    sent = post(nl, f"/api/v1/cases/{far}/decide", {"decision": "forward"})
    assert sent.status_code == 200, sent.text
    assert sent.json()["destination"] == "secretariat" and sent.json()["fallback"] is True
    net.client("secretariat").wait_for(f"/api/v1/received/{sent.json()['report_id']}", lambda c: True)


def test_every_step_is_in_the_audit_trail_with_who_did_it(net: Network) -> None:
    nl = net.client(NL)
    reporter(net, NL).report("http://audit.example/1", lang="en", seen_on="website")
    case_id = case_of(nl, "http://audit.example/1")["id"]
    post(nl, f"/api/v1/cases/{case_id}/assess", {"legal_status": "baseline"})
    post(nl, f"/api/v1/cases/{case_id}/country", {"country": "DE", "reason": "Host's own statement."})
    post(nl, f"/api/v1/cases/{case_id}/close", {"reason": "already_handled", "note": "Same as another case."})
    deadline = time.monotonic() + 10
    rows: list[Any] = []
    while time.monotonic() < deadline:
        rows = query(
            net.layout.spec(NL).database,
            "SELECT actor, action FROM audit_entries WHERE object_type = 'case' AND object_id = :id ORDER BY seq",
            id=case_id,
        )
        if any(action == "case.close" for _, action in rows):
            break
        time.sleep(0.1)
    actions = [action for _, action in rows]
    for wanted in ("case.assess", "case.country_override", "case.close"):
        assert wanted in actions
    assert {actor for actor, action in rows if action != "case.triage"} == {"account:operator"}
