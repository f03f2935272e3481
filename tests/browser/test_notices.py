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
