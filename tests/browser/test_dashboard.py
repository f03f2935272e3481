"""The secretariat's network status in a real browser: a viewer reads the dashboard, its charts and tables,
filters it (the filter lives in the URL and changes the figures), downloads a table as CSV, finds nothing
that changes anything, and reads the printable annual summary. The exchange holds a year of the demo's
synthetic history (demo/history.py) plus whatever the other browser tests of the module sent.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from demo.history import seed_history
from demo.network import Network
from exchange.status.views import CHART_LIBRARY
from tests.browser.conftest import as_role, looks_right


@pytest.fixture(scope="module")
def history(console_network: Network) -> int:
    return seed_history(console_network.layout)


@pytest.fixture
def viewer(browser: Browser, console_network: Network, history: int) -> Iterator[Page]:
    page = as_role(browser, console_network, "exchange", "secretariat-viewer")
    yield page
    page.context.close()


def _total(page: Page) -> int:
    return int(page.locator(".stat").first.locator(".stat__value").inner_text().replace(",", ""))


def test_a_viewer_reads_and_filters_the_dashboard(viewer: Page, console_network: Network) -> None:
    base = console_network.layout.exchange.console_url
    errors: list[str] = []
    viewer.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    viewer.goto(base + "/")
    expect(viewer.locator("h1")).to_have_text("Network status")
    everything = _total(viewer)
    assert everything > 1000
    for card in ("chart-months", "chart-removal", "chart-countries", "chart-origins", "chart-members"):
        expect(viewer.locator(f"#{card} table tbody tr").first).to_be_visible()
        if CHART_LIBRARY.exists():  # Chart.js is installed by `make install`; the tables stand alone without it.
            expect(viewer.locator(f"#{card} canvas")).to_have_count(1)
    expect(viewer.locator("#chart-removal .chart-card__title")).to_contain_text("removed within 3 days")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    looks_right(viewer, "exchange-dashboard")

    # Filters: the URL holds them, and the figures change.
    viewer.select_option("#filter-member", "hotline-de")
    viewer.fill("#filter-country", "DE")
    viewer.get_by_role("button", name="Apply").click()
    expect(viewer).to_have_url(re.compile(r"member=hotline-de"))
    assert "country=DE" in viewer.url
    germany = _total(viewer)
    assert 0 < germany < everything
    expect(viewer.locator(".page-head .muted")).to_contain_text("Hosted in DE")
    rows = viewer.locator("#chart-countries table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("th")).to_have_text("DE")
    # The JSON API gives the same figures for the same filters.
    api = viewer.request.get(base + "/api/v1/status?member=hotline-de&country=DE")
    assert api.status == 200 and api.json()["cases"]["total"] == germany

    # Every table downloads as CSV with the same filters.
    with viewer.expect_download() as download:
        viewer.locator("#chart-countries").get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == "network-countries_country-DE_member-hotline-de.csv"
    table = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert [row["hosting_country"] for row in table] == ["DE"]
    assert int(table[0]["cases"]) == germany

    # A period: the last full month only.
    first_of_month = dt.datetime.now(dt.UTC).replace(day=1)
    last_month = (first_of_month - dt.timedelta(days=1)).strftime("%Y-%m")
    viewer.goto(f"{base}/?from={last_month}&to={last_month}")
    expect(viewer.locator("#chart-months table tbody tr")).to_have_count(1)
    expect(viewer.locator("#chart-months table tbody tr th")).to_have_text(last_month)

    # A bad filter is named next to its field, never a 500; the API says the same in JSON.
    response = viewer.goto(base + "/?from=2025-13&country=Germany")
    assert response is not None and response.status == 400
    expect(viewer.locator(".error-summary")).to_contain_text("Enter the first month")
    expect(viewer.locator("#filter-country-error")).to_contain_text("two-letter country code")
    expect(viewer.locator("#filter-country")).to_have_value("Germany")
    looks_right(viewer, "exchange-dashboard-bad-filter")
    api = viewer.request.get(base + "/api/v1/status?legal=maybe")
    assert api.status == 400 and api.json()["code"] == "bad_filter" and "legal" in api.json()["errors"]


def test_a_viewer_changes_nothing(viewer: Page, console_network: Network) -> None:
    base = console_network.layout.exchange.console_url
    viewer.goto(base + "/")
    # No control on the dashboard changes anything: its only form filters (GET); its buttons are links.
    forms = viewer.locator("main form")
    for index in range(forms.count()):
        assert (forms.nth(index).get_attribute("method") or "get").lower() == "get"
    expect(viewer.get_by_role("link", name="Accounts")).to_have_count(0)
    # And the admin pages refuse a viewer, POSTs included.
    for path in ("/accounts", "/accounts/new"):
        response = viewer.goto(base + path)
        assert response is not None and response.status == 403, path
    viewer.goto(base + "/")
    token = viewer.locator("input[name=csrf_token]").first.get_attribute("value")  # The sign-out form's.
    refused = viewer.request.post(
        base + "/accounts/new",
        form={"csrf_token": token or "", "username": "intruder", "display_name": "X", "role": "secretariat-admin"},
        headers={"Referer": base + "/accounts/new"},
    )
    assert refused.status == 403


def test_the_annual_summary_prints(viewer: Page, console_network: Network) -> None:
    base = console_network.layout.exchange.console_url
    viewer.goto(base + "/")
    viewer.get_by_role("link", name="Annual summary").click()
    expect(viewer).to_have_url(re.compile(r"/summary/\d{4}$"))
    year = int(viewer.url.rsplit("/", 1)[1])
    expect(viewer.locator("h1")).to_have_text(f"The network in {year}")
    expect(viewer.locator("dl.facts")).to_contain_text("Removed within 3 days of the first report")
    viewer.emulate_media(media="print")
    expect(viewer.locator(".masthead")).to_be_hidden()
    expect(viewer.locator(".print-hide").first).to_be_hidden()
    viewer.emulate_media(media="screen")
    looks_right(viewer, "exchange-summary")
    api = viewer.request.get(f"{base}/api/v1/status?from={year}&to={year}")
    assert api.json()["cases"]["total"] == int(viewer.locator("dl.facts dd").first.inner_text().replace(",", ""))
