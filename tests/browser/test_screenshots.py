"""The screenshots in docs/: the main pages with realistic data (``make screenshots`` regenerates them).

In the normal test run they go to ``var/screenshots/docs/`` and are checked with axe-core like every page;
``make screenshots`` sets ``HOTLINE_SCREENSHOTS=docs/screenshots`` to replace the ones in the docs.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from playwright.sync_api import Browser

from demo.history import seed_history
from demo.network import Network, OperatorClient, PublicReporter, staff_token
from tests.browser.conftest import SHOTS, as_role, looks_right

OUT = Path(os.environ.get("HOTLINE_SCREENSHOTS") or SHOTS / "docs")


def seed(network: Network) -> str:
    """A few reports each way, an urgent one, a removal, a duplicate: enough for every page to show something."""
    nl, de = network.client("hotline-nl"), network.client("hotline-de")
    urgent = nl.report(
        url="http://img-host.example/gallery/81127/view.php?id=4410",
        hosting_country="DE",
        legal_status="baseline",
        priority="urgent",
        content_hashes=[{"alg": "sha256", "value": "3f" * 32}],
        media_type="image",
        site_type="image_host",
    )
    others = [
        nl.report(url=f"http://files.example/d/{n}x7k", hosting_country="DE", legal_status="baseline") for n in range(3)
    ]
    incoming = [
        de.report(url=f"http://forum.example.nl/t/{n}/page-2", hosting_country="NL", legal_status="baseline")
        for n in range(4)
    ]
    for report in (urgent, *others):
        de.wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    network.host.take_down(others[1]["url"])  # type: ignore[attr-defined]  # What the notice achieved.
    for report, status in (
        (others[0], {"status": "ntd_sent"}),
        (others[1], {"status": "removed", "note": "Host confirmed."}),
    ):
        assert de.request("POST", f"/api/v1/received/{report['id']}/status", json=status).status_code == 201
    nl.wait_for(f"/api/v1/received/{incoming[-1]['id']}", lambda c: True)
    nl.wait_for(f"/api/v1/reports/{others[1]['id']}", lambda r: r["state"] == "removed")
    public = PublicReporter(network.public("hotline-nl"), network.layout.web.ca)
    for url, seen_on, description in (
        ("http://img-board.example/b/res/55120.html", "website", "Pictures of a young girl, posted in a thread."),
        ("https://social.example/p/8812", "social_media", "A video of a very young child, with a link to more."),
        ("http://chat-share.example/f/ab12cd", "chat", "Sent to me in a group chat."),
    ):
        public.report(url, lang="nl", seen_on=seen_on, description=description)
    public.close()
    partner = network.partner("hotline-nl")
    partner.submit(
        [
            {
                "url": f"https://media.video-host.example/v/{n:04x}.mp4",
                "external_id": f"VP-{4410 + n}",
                "seen_on": "website",
            }
            for n in range(4)
        ]
    )
    partner.close()
    # One case taken all the way: assessed, traced (to FR) and forwarded; another assessed, ready to route.
    case_id = nl.case_for("https://social.example/p/8812")["id"]
    nl.act(
        case_id,
        "assess",
        {
            "legal_status": "baseline",
            "media_type": "video",
            "age_group": "infant_toddler",
            "site_type": "social_networking_site",
            "urgent": True,
            "urgent_reason": "Recent, self-produced; the child may be identifiable.",
            "content_hashes": ["sha256:" + "9e" * 32],
        },
    )
    nl.act(case_id, "trace")
    sent = nl.act(case_id, "decide", {"decision": "forward"})
    nl.wait_for(f"/api/v1/reports/{sent['report_id']}", lambda r: r["received_at"] is not None)
    ready = nl.case_for("http://chat-share.example/f/ab12cd")["id"]
    nl.act(ready, "assess", {"legal_status": "nationally_illegal", "media_type": "image"})
    return str(urgent["id"])


def shoot(page: object, name: str) -> None:
    looks_right(page, f"docs-{name}")  # type: ignore[arg-type]
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_screenshots_of_the_main_pages(browser: Browser, console_network: Network) -> None:
    urgent = seed(console_network)
    nl = console_network.layout.members["hotline-nl"].console_url
    de = console_network.layout.members["hotline-de"].console_url
    page = as_role(browser, console_network, "hotline-nl", "supervisor")
    page.goto(nl + "/")
    shoot(page, "node-home")
    page.goto(nl + "/reports")
    shoot(page, "node-sent")
    page.goto(f"{nl}/reports/{urgent}")
    shoot(page, "node-report")
    page.goto(nl + "/received")
    shoot(page, "node-received")
    page.goto(nl + "/cases")
    shoot(page, "node-cases")
    page.goto(nl + "/cases?queue=all")
    page.locator("table tbody tr", has_text="social[.]example/p/8812").locator("a").first.click()
    shoot(page, "node-case-forwarded")
    page.goto(nl + "/cases?queue=new")
    page.locator("table tbody tr", has_text="img-board[.]example").locator("a").first.click()
    shoot(page, "node-case-new")
    page.goto(nl + "/exposure")
    shoot(page, "node-exposure")
    page.goto(nl + "/partners")
    shoot(page, "node-partners")
    page.goto(nl + "/accounts")
    shoot(page, "node-accounts")
    page.goto(nl + "/audit")
    shoot(page, "node-audit")
    page.context.close()
    de_spec = console_network.layout.spec("hotline-de")
    sam = OperatorClient(
        dataclasses.replace(de_spec, api_token=staff_token(de_spec, "sam-shots", "supervisor")),
        console_network.layout.web.ca,
    )
    for contact in (
        {
            "name": "Img-Host Hosting GmbH",
            "email": "abuse@img-host.example",
            "domains": "img-host.example",
            "language": "de",
        },
        {
            "name": "Example Hosting GmbH",
            "email": "abuse@hosting.example",
            "networks": "192.0.2.0/24 2001:db8:10::/48",
            "asns": "AS64501",
            "language": "de",
        },
        {
            "name": "Example CDN Inc.",
            "email": "abuse@cdn.example",
            "networks": "203.0.113.0/24",
            "renotice_hours": "12",
        },
        {"name": "Landeskriminalamt (demo)", "role": "police", "email": "cybercrime@police.example", "country": "DE"},
    ):
        assert sam.request("POST", "/api/v1/contacts", json=contact).status_code == 201
    sam.close()
    page = as_role(browser, console_network, "hotline-de", "supervisor")
    page.goto(f"{de}/received/{urgent}")
    shoot(page, "node-received-case")
    page.goto(f"{de}/contacts")
    shoot(page, "node-contacts")
    page.goto(f"{de}/received/{urgent}/notice")
    shoot(page, "node-notice")
    page.context.close()
    page = as_role(browser, console_network, "exchange", "secretariat-admin")
    page.goto(console_network.layout.exchange.console_url + "/")
    shoot(page, "exchange-network")
    seed_history(console_network.layout)  # A year of the demo's synthetic history: every chart has something.
    page.goto(console_network.layout.exchange.console_url + "/")
    shoot(page, "exchange-dashboard")
    page.goto(console_network.layout.exchange.console_url + "/summary")
    shoot(page, "exchange-summary")
    page.goto(console_network.layout.exchange.console_url + "/members")
    shoot(page, "exchange-members")
    page.goto(console_network.layout.exchange.console_url + "/members/hotline-de")
    shoot(page, "exchange-member")
    page.goto(console_network.layout.exchange.console_url + "/routing")
    shoot(page, "exchange-routing")
    page.context.close()
    signed_out = browser.new_context(ignore_https_errors=True).new_page()
    signed_out.goto(nl + "/sign-in")
    shoot(signed_out, "sign-in")
    signed_out.context.close()
    public_site = console_network.layout.members["hotline-nl"].public_url
    reporter = browser.new_context(ignore_https_errors=True, locale="nl-NL").new_page()
    reporter.goto(public_site + "/")
    shoot(reporter, "public-start")
    reporter.goto(public_site + "/en/report")
    shoot(reporter, "public-report")
    reporter.fill("#url", "http://img-board.example/b/res/55120.html")
    reporter.locator("input[name=seen_on][value=website]").check()
    reporter.locator("main form button[type=submit]").click()
    shoot(reporter, "public-sent")
    reporter.context.close()
