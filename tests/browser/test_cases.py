"""The analyst's day in the browser: the queue, the case page with what the network knows, the
assessment form and its errors, the trace, the routing decision, a deliberate opening of the address,
and the supervisor's bulk assignment and exposure page."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from demo.network import Network, PublicReporter
from tests.browser.conftest import as_role, looks_right, reload_until

NL, DE = "hotline-nl", "hotline-de"


def report(network: Network, member_id: str, url: str) -> None:
    public = PublicReporter(network.public(member_id), network.layout.web.ca)
    public.report(url, lang="en", seen_on="website", description="Seen in a forum thread.")
    public.close()


def open_case(page: object, console: str, host_text: str) -> None:
    page.goto(console + "/cases?queue=all")  # type: ignore[attr-defined]
    page.locator("table tbody tr", has_text=host_text).locator("a").first.click()  # type: ignore[attr-defined]


def test_an_analyst_assesses_traces_and_forwards_a_case(browser: Browser, console_network: Network) -> None:
    report(console_network, NL, "http://images.example/browser/flow-1")
    console = console_network.layout.spec(NL).console_url
    analyst = as_role(browser, console_network, NL, "analyst")
    analyst.goto(console + "/cases")
    row = analyst.locator("table tbody tr", has_text="images[.]example/browser/flow-1")
    expect(row).to_have_count(1)
    row.locator("a").first.click()
    # Before anyone looks: defanged, not a link, and what the network knows.
    expect(analyst.locator(".status-bar__state")).to_have_text("New")
    expect(analyst.locator(".url").first).to_have_text("hxxp://images[.]example/browser/flow-1")
    assert analyst.locator("a[href*='images.example']").count() == 0
    expect(analyst.locator("#triage-title + p")).to_contain_text("Neither the network nor this hotline knows")
    # The assessment refuses an urgent case without a reason, says so next to the field, keeps the input.
    analyst.locator("input[name=legal_status][value=baseline]").check()
    analyst.select_option("#media_type", "image")
    analyst.select_option("#site_type", "image_host")
    analyst.check("#urgent")
    analyst.fill("#content_hashes", "sha256:" + "c4" * 32)
    analyst.get_by_role("button", name="Record the assessment").click()
    summary = analyst.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(analyst.locator("#urgent_reason-error")).to_contain_text("Say why it is urgent")
    expect(analyst.locator("#content_hashes")).to_have_value("sha256:" + "c4" * 32)
    looks_right(analyst, "console-case-assess-errors")
    analyst.fill("#urgent_reason", "The child may be identifiable from the uniform.")
    analyst.get_by_role("button", name="Record the assessment").click()
    expect(analyst.locator(".notice--success")).to_contain_text("Assessment recorded")
    expect(analyst.locator(".status-bar__state")).to_have_text("Assessed: decide where it goes")
    # The trace suggests Germany; the decision names the hotline it goes to.
    analyst.get_by_role("button", name="Trace the hosting").click()
    expect(analyst.locator(".trace-table")).to_contain_text("AS64501 Example Hosting GmbH")
    expect(analyst.locator("#hosting")).to_contain_text("The addresses suggest DE")
    looks_right(analyst, "console-case-traced")
    analyst.get_by_role("button", name=f"Forward to {DE}").click()
    expect(analyst.locator(".notice--success")).to_contain_text(f"Forwarded through the exchange to {DE}")
    expect(analyst.locator(".status-bar__state")).to_have_text("Forwarded abroad")
    expect(analyst.locator(".timeline")).to_contain_text("Assessed: Baseline")
    expect(analyst.locator(".timeline")).to_contain_text("Traced images.example: suggests DE")
    looks_right(analyst, "console-case-forwarded")
    # The destination's signed receipt comes back to the case's timeline.
    reload_until(analyst, analyst.locator(".timeline"), f"Received by {DE}")
    expect(analyst.locator(".timeline")).to_contain_text(f"Received by {DE}")
    analyst.context.close()


def test_an_analyst_sets_the_hosting_country_by_hand_with_a_reason(browser: Browser, console_network: Network) -> None:
    report(console_network, NL, "http://forum.example/browser/behind-cdn")
    console = console_network.layout.spec(NL).console_url
    analyst = as_role(browser, console_network, NL, "analyst")
    open_case(analyst, console, "forum[.]example/browser/behind-cdn")
    analyst.get_by_role("button", name="Trace the hosting").click()
    expect(analyst.locator("#hosting")).to_contain_text("Every address is a CDN's or a reverse proxy's")
    expect(analyst.locator(".trace-table")).to_contain_text("Example CDN")
    analyst.locator("#hosting summary").click()
    analyst.fill("#where-country", "at")
    analyst.get_by_role("button", name="Set the country").click()
    expect(analyst.locator("#where-reason-error")).to_contain_text("Say why")
    expect(analyst.locator("#where-country")).to_have_value("at")
    analyst.fill("#where-reason", "Example CDN's abuse desk named an origin in Vienna.")
    analyst.get_by_role("button", name="Set the country").click()
    expect(analyst.locator(".notice--success")).to_have_text("Hosting country set to AT.")
    expect(analyst.locator("#hosting")).to_contain_text(
        "AT (set by hand: Example CDN's abuse desk named an origin in Vienna.)"
    )
    expect(analyst.locator(".timeline")).to_contain_text("Hosting country set to AT (was unknown)")
    looks_right(analyst, "console-case-country")
    analyst.context.close()


def test_known_material_is_flagged_and_opening_the_address_is_deliberate_and_counted(
    browser: Browser, console_network: Network
) -> None:
    nl = console_network.client(NL)
    report(console_network, NL, "http://images.example/browser/known")
    case_id = nl.case_for("http://images.example/browser/known")["id"]
    nl.act(case_id, "assess", {"legal_status": "baseline", "content_hashes": ["md5:" + "7a" * 16]})
    nl.act(case_id, "trace")
    sent = nl.act(case_id, "decide", {"decision": "forward"})
    nl.wait_for(f"/api/v1/reports/{sent['report_id']}", lambda r: r["received_at"] is not None)
    # hotline-de's own public is told of the same address later: its analyst is warned before opening it.
    report(console_network, DE, "http://images.example/browser/known")
    console = console_network.layout.spec(DE).console_url
    analyst = as_role(browser, console_network, DE, "analyst")
    open_case(analyst, console, "images[.]example/browser/known")
    warning = analyst.locator("#known")
    expect(warning).to_contain_text("Already known: you may not need to view it")
    expect(warning).to_contain_text("baseline")
    looks_right(analyst, "console-case-known")
    analyst.get_by_role("button", name="Open the address anyway").click()  # The confirm dialog is accepted.
    expect(analyst.locator("h1")).to_have_text("Open the reported address")
    link = analyst.get_by_role("link", name="Open in a new tab")
    assert link.get_attribute("href") == "http://images.example/browser/known"
    assert "noreferrer" in (link.get_attribute("rel") or "")
    looks_right(analyst, "console-case-open")
    # The case hotline-nl forwarded here: its address is opened the same deliberate, recorded way.
    analyst.goto(f"{console}/received/{sent['report_id']}")
    analyst.get_by_role("button", name="Open the address").click()
    expect(analyst.locator("h1")).to_have_text("Open the reported address")
    expect(analyst.get_by_role("link", name="Back to the case")).to_have_attribute(
        "href", f"/received/{sent['report_id']}"
    )
    analyst.context.close()
    # The supervisor sees the opening counted, and that it was of known material.
    boss = as_role(browser, console_network, DE, "supervisor")
    boss.goto(console + "/exposure")
    row = boss.locator("table tbody tr", has_text="ana")
    expect(row).to_be_visible()
    cells = row.locator("td")
    assert int(cells.nth(1).inner_text()) >= 2 and int(cells.nth(2).inner_text()) >= 2
    looks_right(boss, "console-exposure")
    boss.context.close()


def test_a_supervisor_gives_several_cases_to_an_analyst_at_once(browser: Browser, console_network: Network) -> None:
    for n in range(3):
        report(console_network, NL, f"http://gallery.example/bulk/{n}")
    console = console_network.layout.spec(NL).console_url
    boss = as_role(browser, console_network, NL, "supervisor")
    boss.goto(console + "/cases?queue=new&q=gallery.example/bulk")
    rows = boss.locator("table tbody tr")
    expect(rows).to_have_count(3)
    # Made in the same second, yet each shows its own short id (the last eight characters of its id).
    names = [rows.nth(n).get_by_role("link").first.inner_text() for n in range(3)]
    assert len(set(names)) == 3 and all(re.fullmatch("[0-9a-f]{8}", name) for name in names)
    for n in range(2):
        rows.nth(n).locator("input[type=checkbox]").check()
    boss.select_option("#to", "ana")
    boss.get_by_role("button", name="Assign").click()
    expect(boss.locator(".notice--success")).to_have_text(re.compile("2 cases now with ana"))
    looks_right(boss, "console-cases-assigned")
    boss.goto(console + f"/cases?queue=all&q={names[2]}")  # The search box finds a case by its short id.
    expect(boss.locator("table tbody tr")).to_have_count(1)
    expect(boss.locator("table tbody tr").get_by_role("link").first).to_have_text(names[2])
    boss.context.close()
    analyst = as_role(browser, console_network, NL, "analyst")
    analyst.goto(console + "/cases?queue=mine")
    expect(analyst.locator("table tbody tr", has_text="gallery[.]example/bulk")).to_have_count(2)
    analyst.goto(console + "/")
    expect(analyst.locator(".stat", has_text="assigned to me").locator(".stat__value")).not_to_have_text("0")
    analyst.context.close()
