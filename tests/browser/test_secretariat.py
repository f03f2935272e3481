"""The secretariat's console in a real browser: an admin onboards a member from its certificate signing
request and the new member's node exchanges reports; suspends and reinstates a member with a reason; sets a
routing override; re-queues a dead letter once its cause is fixed. A viewer reads every page and changes
nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from certs import authority
from certs.devnet import DEV_MEMBERS, DevMember
from demo.network import Network, lay_out, register_members
from federation.signing import short_id
from tests.browser.conftest import as_role, looks_right, reload_until
from tests.conftest import FAST_DELIVERY, TEMPLATES, fork_server

BE = DevMember("hotline-be", "Hotline Belgium (dev)", ("BE",))
ADMIN, VIEWER = "secretariat-admin", "secretariat-viewer"


@pytest.fixture(scope="module")
def secretariat_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """The dev network plus hotline-be, which has a node but is not a member yet; deliveries give up after
    ten attempts (seconds), so a member that is down soon has dead letters; a replaced certificate works for
    22 s (room for a restart under load)."""
    root = tmp_path_factory.mktemp("secretariat")
    settings = {
        **FAST_DELIVERY,
        "DELIVERY_MAX_ATTEMPTS": 10,
        "ROTATION_OVERLAP_HOURS": 0.006,
        "CERTIFICATES_SECONDS": 1,
    }
    layout = lay_out(root, members=(*DEV_MEMBERS, BE), settings=settings)
    register_members(layout, templates=TEMPLATES["sqlite"], demo_accounts=True, unregistered=("hotline-be",))
    network = Network(layout, launcher=fork_server())
    network.start("exchange", "hotline-nl", "hotline-de", "secretariat")
    network.client("exchange")  # Starts the exchange's console.
    yield network
    network.stop()


def test_an_admin_onboards_a_member_from_its_request_and_its_node_exchanges_reports(
    browser: Browser, secretariat_network: Network
) -> None:
    net = secretariat_network
    console = net.layout.exchange.console_url
    pair = authority.new_key_and_csr("hotline-be")
    admin = as_role(browser, net, "exchange", ADMIN)
    admin.goto(console + "/members")
    looks_right(admin, "exchange-members")
    admin.get_by_role("link", name="Onboard a member").click()
    admin.fill("#member_id", "hotline-be")
    admin.fill("#name", "Hotline Belgium (dev)")
    admin.fill("#countries", "DE")
    admin.fill("#csr", "not a request")
    admin.get_by_role("button", name="Issue the certificate and add the member").click()
    expect(admin.locator(".error-summary")).to_be_focused()
    expect(admin.locator("#endpoint-error")).to_contain_text("A push member needs its https:// endpoint")
    expect(admin.locator("#csr-error")).to_contain_text("not a certificate signing request")
    expect(admin.locator("#member_id")).to_have_value("hotline-be")  # What was typed is kept.
    be = net.layout.spec("hotline-be")
    admin.fill("#endpoint", be.url)
    admin.fill("#csr", pair.csr_pem.decode())
    admin.get_by_role("button", name="Issue the certificate and add the member").click()
    expect(admin.locator("#countries-error")).to_contain_text("hotline-de already covers DE")
    looks_right(admin, "exchange-onboard-errors")
    admin.fill("#countries", "be")
    admin.fill("#contact_email", "it-desk@hotline-be.example")
    admin.fill("#days", "20")  # Short-lived: the dashboard warns of its expiry.
    admin.get_by_role("button", name="Issue the certificate and add the member").click()
    expect(admin.locator(".notice--success")).to_contain_text("hotline-be onboarded")
    expect(admin.locator(".status-bar__state")).to_have_text("Active")
    looks_right(admin, "exchange-member")
    with admin.expect_download() as download:
        admin.get_by_role("link", name="Download").click()
    be.cert.write_bytes(download.value.path().read_bytes())
    admin.goto(console + "/")
    expect(admin.locator(".notice--warning")).to_contain_text("1 member certificate expires within 30 days")
    expect(admin.locator(".notice--warning")).to_contain_text("hotline-be on")
    be.key.unlink()
    authority.write_private_key(be.key, pair.key_pem)
    admin.context.close()
    net.start("hotline-be")
    report = net.client("hotline-nl").report(
        url="http://onboarded.example/", hosting_country="BE", legal_status="baseline"
    )
    net.client("hotline-be").wait_for(f"/api/v1/received/{report['id']}", lambda c: True)


def test_an_admin_suspends_and_reinstates_a_member_and_routing_shows_where_its_reports_go(
    browser: Browser, secretariat_network: Network
) -> None:
    net = secretariat_network
    console = net.layout.exchange.console_url
    admin = as_role(browser, net, "exchange", ADMIN)
    admin.goto(console + "/members/hotline-de")
    admin.get_by_role("button", name="Suspend hotline-de").click()
    expect(admin.locator("#reason-error")).to_contain_text("Say why")
    admin.fill("#reason", "Moving to a new data centre this weekend")
    admin.get_by_role("button", name="Suspend hotline-de").click()
    expect(admin.locator(".notice--success")).to_contain_text("hotline-de suspended")
    expect(admin.locator(".status-bar")).to_contain_text("Moving to a new data centre")
    admin.get_by_role("link", name="Routing").click()
    expect(admin.locator(".notice--warning")).to_contain_text("hotline-de is suspended")
    row = admin.locator("tbody tr", has_text="DE").first
    expect(row).to_contain_text("secretariat")
    looks_right(admin, "exchange-routing-suspended")
    report = net.client("hotline-nl").report(
        url="http://suspended.example/", hosting_country="DE", legal_status="baseline"
    )
    net.client("secretariat").wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    admin.goto(console + "/members/hotline-de")
    admin.fill("#reason", "Back online")
    admin.get_by_role("button", name="Reinstate hotline-de").click()
    expect(admin.locator(".notice--success")).to_contain_text("hotline-de reinstated")
    expect(admin.locator("aside")).to_contain_text("Status changed (active) by ada: Back online")
    admin.context.close()


def test_an_admin_sets_and_removes_a_routing_override(browser: Browser, secretariat_network: Network) -> None:
    net = secretariat_network
    admin = as_role(browser, net, "exchange", ADMIN)
    admin.goto(net.layout.exchange.console_url + "/routing")
    admin.fill("#country", "PL")
    admin.get_by_role("button", name="Set the override").click()
    expect(admin.locator("#member-error")).to_contain_text("Choose the member")
    expect(admin.locator("#reason-error")).to_contain_text("Say why")
    admin.select_option("#member", "hotline-de")
    admin.fill("#reason", "No Polish member yet; hotline-de reads Polish")
    admin.get_by_role("button", name="Set the override").click()
    expect(admin.locator(".notice--success")).to_contain_text("Reports of content hosted in PL go to hotline-de")
    expect(admin.locator("tbody tr", has_text="PL").first).to_contain_text("override")
    looks_right(admin, "exchange-routing")
    report = net.client("hotline-nl").report(
        url="http://override.example/", hosting_country="PL", legal_status="baseline"
    )
    net.client("hotline-de").wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    admin.fill("#reason-PL", "A Polish member joined")
    admin.get_by_role("button", name="Remove").click()
    expect(admin.locator(".notice--success")).to_contain_text("The override of PL is removed")
    admin.context.close()


def test_a_dead_letter_is_requeued_from_the_console_once_the_member_is_back(
    browser: Browser, secretariat_network: Network
) -> None:
    net = secretariat_network
    nl = net.client("hotline-nl")
    net.processes["hotline-de"].stop()
    report = nl.report(url="http://dead-letter.example/", hosting_country="DE", legal_status="baseline")
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "refused", timeout=60)
    admin = as_role(browser, net, "exchange", ADMIN)
    admin.goto(net.layout.exchange.console_url + "/dead-letters")
    row = admin.locator("tbody tr", has_text=short_id(report["id"]))
    expect(row).to_contain_text("undeliverable")
    looks_right(admin, "exchange-dead-letters")
    net.processes["hotline-de"].start()
    net.processes["hotline-de"].wait_ready()
    row.locator("input[name=reason]").fill("hotline-de is back online")
    row.get_by_role("button", name="Re-queue").click()
    expect(admin.locator(".notice--success")).to_contain_text("re-queued for hotline-de")
    expect(admin.locator(".plain")).to_contain_text("hotline-de is back online")
    admin.context.close()
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "received", timeout=60)


def test_a_rotation_in_the_console_during_traffic_refuses_nothing(
    browser: Browser, secretariat_network: Network
) -> None:
    """hotline-de sends a new request; the admin issues the certificate while reports flow to hotline-de, which
    installs it and restarts; the old certificate is superseded after the overlap. Nothing is refused."""
    net = secretariat_network
    nl, de = net.client("hotline-nl"), net.client("hotline-de")
    sent: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            url = f"http://rotation.example/browser/{len(sent)}"
            sent.append(nl.report(url=url, hosting_country="DE", legal_status="baseline")["id"])
            time.sleep(0.05)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        pair = authority.new_key_and_csr("hotline-de")
        admin = as_role(browser, net, "exchange", ADMIN)
        admin.goto(net.layout.exchange.console_url + "/members/hotline-de")
        admin.fill("#csr", pair.csr_pem.decode())
        admin.get_by_role("button", name="Issue the new certificate").click()
        expect(admin.locator(".notice--success")).to_contain_text("The old one keeps working")
        expect(admin.locator("tbody tr", has_text="replaced")).to_have_count(1)
        with admin.expect_download() as download:
            admin.locator("tbody tr", has_text="current").get_by_role("link", name="Download").click()
        spec = net.layout.spec("hotline-de")
        net.processes["hotline-de"].stop()
        spec.key.unlink()
        authority.write_private_key(spec.key, pair.key_pem)
        spec.cert.write_bytes(download.value.path().read_bytes())
        net.processes["hotline-de"].start()
        net.processes["hotline-de"].wait_ready()
        reload_until(admin, admin.locator("tbody"), "superseded", timeout=90)
        expect(admin.locator("tbody")).to_contain_text("superseded")
        looks_right(admin, "exchange-member-rotated")
        admin.context.close()
    finally:
        stop.set()
        sender.join()
    for report_id in sent:
        nl.wait_for(f"/api/v1/reports/{report_id}", lambda r: r["state"] == "received", timeout=60)
    received = {case["id"] for case in de.items("/api/v1/received?per_page=200")}
    assert set(sent) <= received and len(sent) > 10


def test_a_viewer_reads_the_secretariat_pages_and_changes_nothing(
    browser: Browser, secretariat_network: Network
) -> None:
    net = secretariat_network
    console = net.layout.exchange.console_url
    viewer = as_role(browser, net, "exchange", VIEWER)
    for path, heading in (
        ("/members", "Members"),
        ("/members/hotline-nl", "hotline-nl"),
        ("/routing", "Routing"),
        ("/dead-letters", "Dead letters"),
    ):
        viewer.goto(console + path)
        expect(viewer.locator("h1")).to_contain_text(heading)
        expect(viewer.locator("main form[method=post]")).to_have_count(0)
    expect(viewer.get_by_role("link", name="Onboard a member")).to_have_count(0)
    for path in ("/members/new", "/members/hotline-nl/status", "/routing/overrides", "/dead-letters/1"):
        answer = viewer.request.post(console + path, form={"reason": "x"})
        assert answer.status in (400, 403), (path, answer.status)
    assert viewer.goto(console + "/members/new").status == 403
    viewer.context.close()
