"""Browser tests: Debian's Chromium driven by Playwright, one browser for the whole session.

Pages are served by real console processes of a laid-out network (SQLite), over HTTPS with the network's
throwaway web certificate. Every page a test looks at is checked with axe-core (no serious or critical
violations) and photographed into ``var/screenshots/`` (``make screenshots`` copies the main ones into
``docs/screenshots/``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

from demo.hostsim import HostingProvider
from demo.mailsink import MailSink
from demo.network import Network, lay_out, read_toml, register_members, write_toml
from tests.conftest import FAST_DELIVERY, TEMPLATES, fork_server

CHROMIUM = os.environ.get("HOTLINE_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
AXE = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")
BLOCKING = ("serious", "critical")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def console_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """A network whose services all run their consoles, with one demo account per role."""
    root = tmp_path_factory.mktemp("browser")
    layout = lay_out(root, settings=FAST_DELIVERY)
    # hotline-de mails its notices to a sink on 127.0.0.1 and checks removals through the demo's stand-in
    # hosting provider (its egress proxy, also on 127.0.0.1), as in `make demo`.
    sink, host = MailSink(root / "mail"), HostingProvider()
    de = layout.spec("hotline-de")
    write_toml(
        de.config,
        {
            **read_toml(de.config),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": sink.port,
            "NOTICE_FROM": "abuse-desk@hotline-de.example",
            "NOTICE_SECONDS": 0.5,
            "NOTICE_GROUP_SECONDS": 0,
            "REMOVAL_CHECK_ENABLED": True,
            "REMOVAL_CHECK_PROXY": host.url,
            "REMOVAL_CHECK_SECONDS": 0.5,
            "REMOVAL_CHECK_EVERY_SECONDS": 3600,
        },
    )
    register_members(layout, templates=TEMPLATES["sqlite"], demo_accounts=True)
    network = Network(layout, launcher=fork_server())
    network.sink, network.host = sink, host  # type: ignore[attr-defined]
    network.start()
    for member_id in ("exchange", "hotline-nl", "hotline-de"):
        network.client(member_id)  # Starts its console.
    yield network
    network.stop()
    sink.close()
    host.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    opened.on("dialog", lambda dialog: dialog.accept())  # "Are you sure?" on destructive buttons: yes.
    yield opened
    context.close()


def account(network: Network, member_id: str, role: str) -> dict[str, str]:
    spec = network.layout.spec(member_id)
    found: dict[str, str] = next(entry for entry in spec.accounts if entry["role"] == role)
    return found


def sign_in(page: Page, network: Network, member_id: str, role: str, *, check: bool = False) -> dict[str, str]:
    """Sign in through the form (and the second step where the role has one)."""
    who = account(network, member_id, role)
    page.goto(f"{network.layout.spec(member_id).console_url}/sign-in")
    if check:
        looks_right(page, f"{member_id}-sign-in")
    page.fill("#username", who["username"])
    page.fill("#password", who["password"])
    page.click("main button[type=submit]")
    if who.get("totp_secret"):
        page.wait_for_url("**/sign-in/code")
        if check:
            looks_right(page, f"{member_id}-sign-in-code")
        page.fill("#code", fresh_code(who["totp_secret"]))
        page.click("main button[type=submit]")
    page.wait_for_load_state()
    return who


_LAST_STEP: dict[str, int] = {}


def fresh_code(secret: str) -> str:
    """A TOTP code for a time step not used before: codes are single-use, and the server accepts the
    next step too (clock drift), so a second sign-in within 30 seconds uses that; a third waits."""
    import time

    totp = pyotp.TOTP(secret)
    while True:
        current = int(time.time()) // totp.interval
        step = max(current, _LAST_STEP.get(secret, -1) + 1)
        if step <= current + 1:
            _LAST_STEP[secret] = step
            return totp.at(step * totp.interval)
        time.sleep(0.5)


_STATES: dict[tuple[int, str, str], Any] = {}


def as_role(browser: Browser, network: Network, member_id: str, role: str) -> Page:
    """A new browser context already signed in as ``role`` on ``member_id``'s console (signed in once per
    network, then the same session is reused: a second factor's codes are single-use)."""
    key = (id(network), member_id, role)
    if key not in _STATES:
        context = browser.new_context(ignore_https_errors=True)
        sign_in(context.new_page(), network, member_id, role)
        _STATES[key] = context.storage_state()
        context.close()
    context = browser.new_context(
        ignore_https_errors=True, storage_state=_STATES[key], viewport={"width": 1280, "height": 860}
    )
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    return page


def reload_until(page: Page, locator: Locator, text: str | None = None, *, timeout: float = 20.0) -> None:
    """Reload ``page`` until ``locator`` exists (and contains ``text``): what a worker or another hotline
    does shows on the next load. The caller's ``expect`` then says what was missing, if anything."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if locator.count() and (text is None or text in locator.first.inner_text()):
            return
        page.wait_for_timeout(150)
        page.reload()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core in the page (bypassing nothing: evaluate runs outside the page's CSP) and return the
    serious and critical violations."""
    page.evaluate(AXE)
    result: dict[str, Any] = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in BLOCKING]


def looks_right(page: Page, name: str) -> None:
    """Check a page with axe-core and keep a screenshot of it."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"), full_page=True)
    violations = axe_violations(page)
    assert not violations, [
        (v["id"], v["impact"], v["help"], [node["target"] for node in v["nodes"]][:3]) for v in violations
    ]
    body = page.content()
    assert "Traceback" not in body and "Internal Server Error" not in body
