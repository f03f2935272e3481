"""Notices in the browser: a supervisor keeps the directory of abuse contacts, an analyst sends a notice
for a case received from abroad to the contact the trace suggests."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from demo.network import Network
from tests.browser.conftest import as_role, looks_right

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
    looks_right(analyst, "console-notice")
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
    import time

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
    sent = analyst.get_by_text("To abuse@takedown.example: sent")
    for _ in range(100):  # The worker sends it within a second; the page shows it on the next load.
        if sent.count():
            break
        analyst.wait_for_timeout(100)
        analyst.reload()
    expect(analyst.get_by_text("To abuse@takedown.example: sent")).to_be_visible()
    sink = console_network.sink  # type: ignore[attr-defined]
    mail = [path.read_bytes() for path in sink.messages() if b"abuse@takedown.example" in path.read_bytes()]
    assert len(mail) == 1 and b"hxxp://images[.]example/browser/takedown.jpg" in mail[0] and b"xarf.json" in mail[0]
    looks_right(analyst, "console-received-notice-sent")
    # The host takes it down; "Check now", and the check records it.
    console_network.host.take_down(url)  # type: ignore[attr-defined]
    analyst.get_by_role("button", name="Check now").click()
    deadline = time.monotonic() + 20
    while "Removed" not in analyst.locator(".timeline").inner_text() and time.monotonic() < deadline:
        analyst.wait_for_timeout(200)
        analyst.reload()
    expect(analyst.locator(".timeline")).to_contain_text("Removed")
    expect(analyst.locator("#checks + div")).to_contain_text("HTTP 404")
    looks_right(analyst, "console-received-removed")
    analyst.context.close()
    # The reporting hotline sees it on its report's timeline, with the time.
    origin = as_role(browser, console_network, NL, "analyst")
    origin.goto(f"{console_network.layout.spec(NL).console_url}/reports/{report['id']}")
    for _ in range(100):
        if "Removed" in origin.locator(".timeline").inner_text():
            break
        origin.wait_for_timeout(100)
        origin.reload()
    expect(origin.locator(".timeline")).to_contain_text("Removed")
    looks_right(origin, "console-report-removed")
    origin.context.close()
