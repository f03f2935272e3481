"""Notices in the browser: a supervisor keeps the directory of abuse contacts, an analyst sends a notice
for a case received from abroad to the contact the trace suggests."""

from __future__ import annotations

import datetime as dt
import time

from playwright.sync_api import Browser, expect

from demo.network import Network
from tests.browser.conftest import as_role, looks_right, reload_until
from tests.conftest import execute, query

NL, DE = "hotline-nl", "hotline-de"


def test_a_supervisor_adds_a_contact_and_an_analyst_sends_a_notice_to_it(
    browser: Browser, console_network: Network
) -> None:
    console = console_network.layout.spec(DE).console_url
    boss = as_role(browser, console_network, DE, "supervisor")
    boss.goto(console + "/contacts/new")
    boss.fill("#name", "Example Hosting GmbH")
    boss.fill("#email", "not an address")
    boss.get_by_role("button", name="Save").click()
    expect(boss.locator(".error-summary")).to_be_focused()
    expect(boss.locator("#email-error")).to_contain_text("abuse desk's email address")
    expect(boss.locator("#domains-error")).to_contain_text("at least one domain, network or AS number")
    looks_right(boss, "console-contact-errors")
    boss.fill("#email", "abuse@hosting.example")
    boss.fill("#networks", "192.0.2.0/24")
    boss.fill("#asns", "AS64501")
    boss.select_option("#language", "de")
    boss.get_by_role("button", name="Save").click()
    expect(boss.locator(".notice--success")).to_have_text("Example Hosting GmbH added to the directory.")
    expect(boss.locator("table tbody tr", has_text="Example Hosting GmbH")).to_contain_text("192.0.2.0/24, AS64501")
    looks_right(boss, "console-contacts")
    boss.goto(console + "/notices/templates/de")
    expect(boss.locator(".preview")).to_contain_text("hxxp://images[.]example/gallery/4411")
    looks_right(boss, "console-notice-wording")
    boss.context.close()
    report = console_network.client(NL).report(
        url="http://images.example/browser/notice", hosting_country="DE", legal_status="baseline"
    )
    console_network.client(DE).wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    analyst = as_role(browser, console_network, DE, "analyst")
    analyst.goto(f"{console}/received/{report['id']}")
    analyst.get_by_role("link", name="Send a notice to the host").click()
    expect(analyst.locator("aside")).to_contain_text("Example Hosting GmbH: an address of the host is in 192.0.2.0/24")
    expect(analyst.locator("#contact option:checked")).to_contain_text("Example Hosting GmbH")
    expect(analyst.locator("aside")).to_contain_text("Kept for a day")
    looks_right(analyst, "console-notice")
    # The trace is kept on the case; the analyst may make a new one (the host may have moved).
    analyst.get_by_role("button", name="Trace again").click()
    expect(analyst.locator(".notice--success")).to_contain_text(
        "Traced again: 1 address; suggested: Example Hosting GmbH"
    )
    expect(analyst.locator("#contact option:checked")).to_contain_text("Example Hosting GmbH")
    analyst.get_by_role("button", name="Send the notice").click()
    expect(analyst.locator(".notice--success")).to_contain_text("Notice queued")
    expect(analyst.get_by_text("To abuse@hosting.example")).to_be_visible()
    looks_right(analyst, "console-received-notice")
    analyst.context.close()


def test_from_notice_to_removal_and_back_as_the_reporting_hotline_sees_it(
    browser: Browser, console_network: Network
) -> None:
    """A case from abroad: the notice goes out (the mail sink receives it with its X-ARF report), the host
    takes the content down, the removal check records it, the reporting hotline sees "removed"; the content
    comes back, and the case opens again as "reappeared"."""
    import dataclasses

    from demo.network import OperatorClient, staff_token

    url = "http://images.example/browser/takedown.jpg"
    spec = console_network.layout.spec(DE)
    boss = OperatorClient(
        dataclasses.replace(spec, api_token=staff_token(spec, "sam-flow", "supervisor")), console_network.layout.web.ca
    )
    boss.request(
        "POST",
        "/api/v1/contacts",
        json={"name": "Takedown Hosting", "email": "abuse@takedown.example", "domains": "images.example"},
    )
    boss.close()
    report = console_network.client(NL).report(
        url=url, hosting_country="DE", legal_status="baseline", media_type="image"
    )
    console_network.client(DE).wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    console = spec.console_url
    analyst = as_role(browser, console_network, DE, "analyst")
    analyst.goto(f"{console}/received/{report['id']}")
    analyst.get_by_role("link", name="Send a notice to the host").click()
    expect(analyst.locator("#contact option:checked")).to_contain_text("Takedown Hosting")
    analyst.get_by_role("button", name="Send the notice").click()
    reload_until(analyst, analyst.get_by_text("To abuse@takedown.example: sent"))  # The worker sends it.
    expect(analyst.get_by_text("To abuse@takedown.example: sent")).to_be_visible()
    sink = console_network.sink  # type: ignore[attr-defined]

    def mail_to_host() -> list[bytes]:
        return [path.read_bytes() for path in sink.messages() if b"abuse@takedown.example" in path.read_bytes()]

    mail = mail_to_host()
    assert len(mail) == 1 and b"hxxp://images[.]example/browser/takedown.jpg" in mail[0] and b"xarf.json" in mail[0]
    looks_right(analyst, "console-received-notice-sent")
    # 24 hours pass with the content still up: the clock of the notice is moved back a day (the processes
    # keep real time, so the network's signed messages stay fresh), and the worker sends the reminder.
    database = spec.database
    (sent_at,) = query(database, "SELECT sent_at FROM notices WHERE case_id = :id", id=report["id"])[0]
    day_before = dt.datetime.fromisoformat(str(sent_at)) - dt.timedelta(hours=24, minutes=1)
    assert (
        execute(database, "UPDATE notices SET sent_at = :at WHERE case_id = :id", at=str(day_before), id=report["id"])
        == 1
    )
    deadline = time.monotonic() + 20
    while len(mail_to_host()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    reminder = mail_to_host()
    assert len(reminder) == 2, "the re-notice was not sent"
    assert b"hxxp://images[.]example/browser/takedown.jpg" in reminder[1] and b"xarf.json" in reminder[1]
    analyst.reload()
    expect(analyst.get_by_text("To abuse@takedown.example: sent")).to_have_count(2)
    # The host takes it down; "Check now", and the check records it.
    console_network.host.take_down(url)  # type: ignore[attr-defined]
    analyst.get_by_role("button", name="Check now").click()
    reload_until(analyst, analyst.locator(".timeline"), "Removed")
    expect(analyst.locator(".timeline")).to_contain_text("Removed")
    expect(analyst.locator("#checks + div")).to_contain_text("HTTP 404")
    looks_right(analyst, "console-received-removed")
    analyst.context.close()
    # The reporting hotline sees it on its report's timeline, with the time.
    origin = as_role(browser, console_network, NL, "analyst")
    origin.goto(f"{console_network.layout.spec(NL).console_url}/reports/{report['id']}")
    reload_until(origin, origin.locator(".timeline"), "Removed")
    expect(origin.locator(".timeline")).to_contain_text("Removed")
    looks_right(origin, "console-report-removed")
    # The content comes back: the next check finds it up, the case opens again as "reappeared" at the
    # host's hotline and the reporting hotline sees it too.
    console_network.host.restore(url)  # type: ignore[attr-defined]
    analyst = as_role(browser, console_network, DE, "analyst")
    analyst.goto(f"{console}/received/{report['id']}")
    analyst.get_by_role("button", name="Check now").click()
    reload_until(analyst, analyst.locator(".status-bar__state"), "Reappeared")
    expect(analyst.locator(".status-bar__state")).to_have_text("Reappeared")
    expect(analyst.get_by_role("link", name="Send a notice to the host")).to_be_visible()
    analyst.context.close()
    origin.reload()
    reload_until(origin, origin.locator(".timeline"), "Reappeared")
    expect(origin.locator(".timeline")).to_contain_text("Reappeared")
    origin.context.close()


def test_content_that_moved_reaches_the_new_countrys_hotline_with_its_first_report_time(
    browser: Browser, console_network: Network
) -> None:
    """The host hotline finds the content now hosted in France and says so: the case goes to hotline-fr
    with its first-report time, and the reporting hotline's timeline shows where it went."""
    # social.example's addresses are in a French network (the test's address tables): the removal check
    # finds the content up there and the trace places the host in FR.
    report = console_network.client(NL).report(
        url="http://social.example/browser/moving.jpg", hosting_country="DE", legal_status="baseline"
    )
    console_network.client(DE).wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    analyst = as_role(browser, console_network, DE, "analyst")
    analyst.goto(f"{console_network.layout.spec(DE).console_url}/received/{report['id']}")
    analyst.get_by_role("button", name="Check now").click()
    hint = analyst.get_by_text("The content may have moved to FR.")
    reload_until(analyst, hint)
    expect(hint).to_be_visible()
    expect(analyst.locator("#moved_to")).to_have_value("FR")
    analyst.fill("#moved_to", "")
    analyst.select_option("#status", "moved")
    analyst.get_by_role("button", name="Record and tell the reporting hotlines").click()
    expect(analyst.locator("#moved_to-error")).to_contain_text("two-letter code")
    analyst.select_option("#status", "moved")
    analyst.fill("#moved_to", "fr")
    analyst.fill("#note", "The host moved the site to a French provider.")
    analyst.get_by_role("button", name="Record and tell the reporting hotlines").click()
    expect(analyst.locator(".notice--success")).to_contain_text("Recorded: Moved")
    expect(analyst.locator(".status-bar")).to_contain_text("sent the case to the hotline there")
    expect(analyst.locator(".timeline")).to_contain_text("Moved to FR")
    expect(analyst.get_by_role("button", name="Record and tell the reporting hotlines")).to_have_count(0)
    expect(analyst.get_by_role("button", name="Check now")).to_have_count(0)  # Its address is not fetched here.
    looks_right(analyst, "console-received-moved")
    analyst.context.close()
    at_fr = console_network.client("hotline-fr").wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    assert at_fr["hosting_country"] == "FR" and at_fr["origin"] == NL
    assert at_fr["confirmed_at"] == report["confirmed_at"]  # The 3-day clock runs from the first report.
    origin = as_role(browser, console_network, NL, "analyst")
    origin.goto(f"{console_network.layout.spec(NL).console_url}/reports/{report['id']}")
    reload_until(origin, origin.locator(".timeline"), "Re-routed to hotline-fr")
    expect(origin.locator(".timeline")).to_contain_text("Moved: the content is now hosted in FR")
    expect(origin.locator(".timeline")).to_contain_text("Re-routed to hotline-fr (FR)")
    expect(origin.locator(".timeline")).to_contain_text("The host moved the site to a French provider.")
    expect(origin.locator("aside")).to_contain_text("hotline-fr")
    looks_right(origin, "console-report-moved")
    origin.context.close()


def test_a_case_found_not_illegal_here_offers_no_check_until_its_status_changes(
    browser: Browser, console_network: Network
) -> None:
    report = console_network.client(NL).report(
        url="http://images.example/browser/lawful-here.jpg", hosting_country="DE", legal_status="baseline"
    )
    console_network.client(DE).wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    analyst = as_role(browser, console_network, DE, "analyst")
    page = f"{console_network.layout.spec(DE).console_url}/received/{report['id']}"
    analyst.goto(page)
    expect(analyst.get_by_role("button", name="Check now")).to_be_visible()
    stale = analyst.context.new_page()  # A second tab, opened before the status changes.
    stale.goto(page)
    analyst.select_option("#status", "not_illegal_here")
    analyst.get_by_role("button", name="Record and tell the reporting hotlines").click()
    expect(analyst.locator(".notice--success")).to_contain_text("Recorded: Not illegal here")
    expect(analyst.get_by_role("button", name="Check now")).to_have_count(0)
    expect(analyst.get_by_text("The address is not checked while the case is “Not illegal here”")).to_be_visible()
    expect(analyst.locator(".status-bar__next")).to_contain_text("Its address is not checked.")
    looks_right(analyst, "console-received-not-illegal")
    stale.get_by_role("button", name="Check now").click()
    expect(stale.locator(".notice--error")).to_have_text(
        "The case was found not illegal here, so its address is not checked any more."
    )
    expect(stale.get_by_role("button", name="Check now")).to_have_count(0)
    stale.close()
    analyst.select_option("#status", "assessed")  # The analyst thinks again.
    analyst.get_by_role("button", name="Record and tell the reporting hotlines").click()
    expect(analyst.locator(".notice--success")).to_contain_text("Recorded: Assessed")
    expect(analyst.get_by_role("button", name="Check now")).to_be_visible()
    analyst.context.close()
