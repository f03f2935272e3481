"""The public reporting page, over real HTTPS, against a node's public surface process.

What a reporter can do (report in any of the network's languages, look up the status), what is refused
and how (every refusal a clear message, nothing stored, never a 500), and what is never kept: the
reporter's address, searched for in the database file and in every log after reporting from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from certs.devnet import DEV_MEMBERS
from demo.network import Network, PublicReporter
from tests.conftest import count_rows, make_network

NL = DEV_MEMBERS[0].member_id
REPORTER_ADDRESS = "127.0.0.77"
"""A loopback address the tests report from, so that it can be searched for afterwards."""


@pytest.fixture(scope="module")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """One node (hotline-nl) with its public surface running, on SQLite; the exchange is not needed."""
    network = make_network(
        tmp_path_factory.mktemp("intake"),
        "sqlite",
        None,
        members=(DEV_MEMBERS[0],),
        PUBLIC_RATE_LIMIT_REPORTS="200/minute",
        PUBLIC_RATE_LIMIT_STATUS="200/minute",
    )
    network.public(NL)
    network.client(NL)  # Its console too: the queue of new reports.
    yield network
    network.stop()


def submissions(network: Network) -> int:
    return count_rows(network.layout.spec(NL).database, "submissions")["submissions"]


def reporter(network: Network, source: str | None = None) -> PublicReporter:
    return PublicReporter(network.layout.spec(NL).public_url, network.layout.web.ca, source_address=source)


def post_form(network: Network, lang: str, data: Any, *, who: PublicReporter | None = None) -> requests.Response:
    """POST the report form with a valid CSRF token and whatever ``data`` says (as a list of pairs to
    allow doubled fields)."""
    who = who or reporter(network)
    token = who.form(lang)
    pairs = [("csrf_token", token), *(data.items() if isinstance(data, dict) else data)]
    return who.session.post(f"{who.public_url}/{lang}/report", data=pairs, timeout=30)


def test_the_site_address_picks_the_language_from_the_browser(intake: Network) -> None:
    base = intake.layout.spec(NL).public_url
    session = requests.Session()
    session.trust_env = False
    for header, expected in (("de-DE,de;q=0.9,en;q=0.5", "/de/"), ("nl", "/nl/"), ("fr, ja", "/en/"), ("", "/en/")):
        response = session.get(
            f"{base}/", headers={"Accept-Language": header}, verify=str(intake.layout.web.ca), allow_redirects=False
        )
        assert response.status_code == 302, header
        assert response.headers["Location"].endswith(expected), header
        assert "Accept-Language" in response.headers["Vary"]
    page = session.get(f"{base}/de/", verify=str(intake.layout.web.ca))
    assert 'lang="de"' in page.text and "Jetzt starten" in page.text
    # The other languages are one link away, and nothing is set in a cookie to remember the choice.
    assert 'href="/nl/"' in page.text and 'href="/en/"' in page.text
    assert "Set-Cookie" not in page.headers
    assert session.get(f"{base}/xx/", verify=str(intake.layout.web.ca)).status_code == 404


@pytest.mark.parametrize(
    ("lang", "sent_text", "status_text"),
    [
        ("en", "Report sent", "Received"),
        ("nl", "Melding verstuurd", "Ontvangen"),
        ("de", "Meldung gesendet", "Eingegangen"),
    ],
)
def test_a_report_in_each_language_reaches_the_queue_and_its_reference_shows_the_status(
    intake: Network, lang: str, sent_text: str, status_text: str
) -> None:
    who = reporter(intake)
    url = f"http://gallery.example/{lang}/album?id=7"
    reference = who.report(url, lang=lang, seen_on="social_media", description=f"seen in {lang}")
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", reference)
    # In the queue of new reports, for the analysts (the console's API with the operator's token).
    queued = intake.client(NL).items("/api/v1/intake?source=public")
    mine = [item for item in queued if item["url"] == url]
    assert len(mine) == 1
    assert mine[0]["language"] == lang and mine[0]["seen_on"] == "social_media"
    assert intake.client(NL).get(f"/api/v1/cases/{mine[0]['case_id']}")["state"] == "new"
    assert mine[0]["canonical_url"] == f"http://gallery.example/{lang}/album?id=7"
    # The confirmation page does not show the reference a second time.
    again = who.session.get(f"{who.public_url}/{lang}/report/sent", timeout=30)
    assert sent_text in again.text and reference not in again.text
    # The status, by reference, typed as a person might (lower case, spaces, O for 0).
    typed = reference.lower().replace("-", " ").replace("0", "o")
    page = who.status(typed, lang=lang)
    assert page.status_code == 200
    assert status_text in page.text
    assert url not in page.text and "gallery" not in page.text  # Never the report itself.


def test_the_status_changes_when_an_analyst_closes_the_report(intake: Network) -> None:
    who = reporter(intake)
    reference = who.report("http://closed.example/x", lang="en")
    client = intake.client(NL)
    item = next(i for i in client.items("/api/v1/intake") if i["url"] == "http://closed.example/x")
    closed = client.request("POST", f"/api/v1/cases/{item['case_id']}/close", json={"reason": "no_content"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] == "closed" and closed.json()["closed_reason"] == "no_content"
    page = who.status(reference)
    assert "Closed" in page.text and "no_content" not in page.text and "Nothing found" not in page.text


def test_a_wrong_or_malformed_reference_is_a_clear_message(intake: Network) -> None:
    who = reporter(intake)
    for typed, message in (
        ("", "Enter the reference you were given"),
        ("12345", "A reference has 16 letters and numbers"),
        ("ZZZZ-ZZZZ-ZZZZ-ZZZZ", "We cannot find a report with this reference"),
        ("x" * 5000, "A reference has 16 letters and numbers"),
    ):
        answer = who.status(typed)
        assert answer.status_code == 422, typed[:20]
        assert message in answer.text and "There is a problem" in answer.text


BAD_URLS = [
    ("", "Enter the web address"),
    ("javascript:alert(document.cookie)", "This kind of address cannot be reported"),
    ("data:text/html,<script>alert(1)</script>", "This kind of address cannot be reported"),
    ("file:///etc/passwd", "This kind of address cannot be reported"),
    ("https://user:secret@host.example/page", "contains a user name or password"),
    ("http://exa mple.com/", "This is not a web address we can check"),
    ("http:///nohost", "This is not a web address we can check"),
    ("http://" + "a" * 9000 + ".example/", "The web address is too long"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS, ids=[m for _, m in BAD_URLS])
def test_a_bad_address_is_refused_next_to_the_field_and_nothing_is_stored(
    intake: Network, url: str, message: str
) -> None:
    before = submissions(intake)
    answer = post_form(intake, "en", {"url": url, "seen_on": "website", "description": "<b>keep me</b>"})
    assert answer.status_code == 422
    assert message in answer.text
    assert 'href="#url"' in answer.text  # The error summary links to the field.
    assert "&lt;b&gt;keep me&lt;/b&gt;" in answer.text  # The reporter's input is kept, escaped.
    assert submissions(intake) == before


def test_unicode_host_names_are_reported_under_the_network_rules(intake: Network) -> None:
    who = reporter(intake)
    who.report("http://bücher.example/straße?q=ü", lang="de")
    who.report("https://例え.テスト/ページ", lang="en")
    urls = {item["url"]: item["canonical_url"] for item in intake.client(NL).items("/api/v1/intake")}
    assert urls["http://bücher.example/straße?q=ü"] == "http://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%BC"
    assert urls["https://例え.テスト/ページ"].startswith("https://xn--r8jz45g.xn--zckzah/")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "http://a.example/", "seen_on": "teletext"}, "Not a valid choice"),
        ({"url": "http://a.example/"}, "Choose where you saw it"),
        ({"url": "http://a.example/", "seen_on": "website", "description": "x" * 2001}, "under 2000 characters"),
        (
            {"url": "http://a.example/", "seen_on": "website", "contact_email": "not-an-address"},
            "Enter an email address",
        ),
        ({"url": "http://a.example/", "seen_on": "website", "contact_name": "n" * 121}, "under 120 characters"),
        ({"url": "http://a.example/\x00", "seen_on": "website"}, "Remove the control characters"),
        ([("url", "http://a.example/"), ("url", "http://b.example/"), ("seen_on", "website")], "Send this field once"),
    ],
    ids=["unknown-choice", "no-choice", "long-description", "bad-email", "long-name", "nul-byte", "doubled-field"],
)
def test_bad_fields_are_refused_with_a_message_and_nothing_is_stored(intake: Network, data: Any, message: str) -> None:
    before = submissions(intake)
    answer = post_form(intake, "en", data)
    assert answer.status_code == 422, answer.text[:500]
    assert message in answer.text
    assert submissions(intake) == before


def test_bytes_that_are_not_utf8_and_forms_without_a_token_never_cause_a_500(intake: Network) -> None:
    who = reporter(intake)
    token = who.form("en")
    before = submissions(intake)
    body = b"csrf_token=" + token.encode() + b"&url=http%3A%2F%2Fa.example%2F%FF%FE&seen_on=website&description=%C3%28"
    answer = who.session.post(
        f"{who.public_url}/en/report", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code in (200, 302, 422), answer.status_code
    assert "Traceback" not in answer.text
    stale = who.session.post(f"{who.public_url}/en/report", data={"url": "http://a.example/", "seen_on": "website"})
    assert stale.status_code == 422 and "the form had expired" in stale.text
    assert submissions(intake) <= before + 1


def test_script_in_every_field_is_shown_as_text_to_the_analyst(intake: Network) -> None:
    payload = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    reporter(intake).report(
        f"http://xss.example/?q={payload}",
        lang="en",
        description=payload,
        contact_name=payload[:100],
        contact_email="xss@mail.example",
    )
    item = next(i for i in intake.client(NL).items("/api/v1/intake") if i["url"].startswith("http://xss.example/"))
    assert item["description"] == payload  # Kept exactly as written; the browser tests look at the page.
    assert item["has_contact"] is True


def test_a_filled_honeypot_is_thanked_and_forgotten(intake: Network) -> None:
    before = submissions(intake)
    answer = post_form(intake, "en", {"url": "http://bot.example/", "seen_on": "website", "nickname_confirm": "spam"})
    assert answer.status_code == 200 and "Report sent" in answer.text
    assert submissions(intake) == before


def test_no_address_of_the_reporter_is_stored_or_logged(intake: Network) -> None:
    """Report, fail a validation and look up a status from 127.0.0.77; then search everything for it."""
    who = reporter(intake, source=REPORTER_ADDRESS)
    reference = who.report("http://address-test.example/a", lang="en", contact_email="me@mail.example")
    post_form(intake, "en", {"url": "javascript:1", "seen_on": "website"}, who=who)
    assert "Received" in who.status(reference).text
    # A TLS connection dropped in the handshake makes the web server log the client's address.
    import socket

    with socket.socket() as raw:
        raw.bind((REPORTER_ADDRESS, 0))
        raw.connect(("127.0.0.1", intake.layout.spec(NL).public_port))
        raw.sendall(b"\x16\x03\x01\x00\x05hello")
    import time

    time.sleep(0.5)
    needles = [REPORTER_ADDRESS.encode(), REPORTER_ADDRESS.encode("utf-16-le")]
    database = Path(intake.layout.spec(NL).database.removeprefix("sqlite:///"))
    searched = [database, *database.parent.glob(database.name + "-*"), *(intake.layout.root / "logs").glob("*.log")]
    assert any(path.suffix == ".log" for path in searched)
    for path in searched:
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, f"{REPORTER_ADDRESS} found in {path}"
    assert any(i["url"] == "http://address-test.example/a" for i in intake.client(NL).items("/api/v1/intake"))
    assert any(b"[address]" in path.read_bytes() for path in searched if path.name.endswith("-public.log"))


def test_reports_from_one_address_are_limited_but_not_from_another(tmp_path: Path) -> None:
    network = make_network(tmp_path, "sqlite", None, members=(DEV_MEMBERS[0],), PUBLIC_RATE_LIMIT_REPORTS="3/minute")
    try:
        network.public(NL)
        busy = reporter(network, source="127.0.0.81")
        for index in range(3):
            busy.report(f"http://limit.example/{index}")
        answer = post_form(network, "en", {"url": "http://limit.example/4", "seen_on": "website"}, who=busy)
        assert answer.status_code == 429
        assert int(answer.headers["Retry-After"]) >= 1
        assert "Too many requests have come from your network" in answer.text
        # Another address (another household) is counted on its own.
        reporter(network, source="127.0.0.82").report("http://limit.example/other")
        assert submissions(network) == 4
    finally:
        network.stop()


def test_the_public_site_sets_only_the_form_cookie_and_loads_nothing_from_elsewhere(intake: Network) -> None:
    who = reporter(intake)
    page = who.session.get(f"{who.public_url}/en/report")
    cookies = page.headers.get("Set-Cookie", "")
    assert cookies.startswith("__Host-report-form=")
    assert "Secure" in cookies and "HttpOnly" in cookies and "SameSite=Lax" in cookies
    assert "Expires" not in cookies and "Max-Age" not in cookies  # Gone when the browser closes.
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert not re.search(r'(src|href)="(https?:)?//', page.text)  # Every asset from this site.
    assert "<script>" not in page.text  # No inline script.
