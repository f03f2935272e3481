"""The public reporting page in a real browser: a report in each language through to the analysts' queue,
validation errors, the status lookup, the page without JavaScript and on a phone; and the console pages
that go with it (the queue of new reports, a supervisor registering a partner)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from demo.network import Network
from tests.browser.conftest import as_role, looks_right

NL = "hotline-nl"


@pytest.fixture(scope="module")
def public_url(console_network: Network) -> str:
    return console_network.public(NL)


@pytest.fixture
def reporter(browser: Browser) -> Iterator[Any]:
    """A fresh browser per reporter, with a language preference (``Accept-Language``)."""
    contexts = []

    def open_page(locale: str = "en-GB", **options: Any) -> Page:
        context = browser.new_context(ignore_https_errors=True, locale=locale, **options)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


LANGUAGES = [
    ("en-GB", "en", "Start now", "Send report", "Report sent", "Received"),
    ("nl-NL", "nl", "Nu beginnen", "Melding versturen", "Melding verstuurd", "Ontvangen"),
    ("de-DE", "de", "Jetzt starten", "Meldung absenden", "Meldung gesendet", "Eingegangen"),
]


@pytest.mark.parametrize(
    ("locale", "lang", "start", "send", "sent", "received"), LANGUAGES, ids=[x[1] for x in LANGUAGES]
)
def test_a_public_report_in_each_language_reaches_the_analysts_queue(
    browser: Browser,
    console_network: Network,
    public_url: str,
    reporter: Any,
    locale: str,
    lang: str,
    start: str,
    send: str,
    sent: str,
    received: str,
) -> None:
    page = reporter(locale)
    page.goto(public_url + "/")
    expect(page).to_have_url(re.compile(f"/{lang}/$"))
    assert page.locator("html").get_attribute("lang") == lang
    looks_right(page, f"public-start-{lang}")
    page.get_by_role("button", name=start).click()
    looks_right(page, f"public-form-{lang}")
    url = f"http://browser-{lang}.example/album/4411?p=2"
    page.fill("#url", url)
    page.locator("input[name=seen_on][value=social_media]").check()
    page.fill("#description", f"Reported in {lang}")
    page.get_by_role("button", name=send).click()
    expect(page.locator("h1")).to_have_text(sent)
    reference = page.locator(".reference").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", reference)
    looks_right(page, f"public-sent-{lang}")
    # The status, by reference.
    page.goto(f"{public_url}/{lang}/status")
    page.fill("#reference", reference)
    page.locator("main form button[type=submit]").click()
    expect(page.locator(".panel__title")).to_have_text(received)
    assert url not in page.content()
    looks_right(page, f"public-status-{lang}")
    # The analyst sees it in the queue of new reports, defanged, and opens it.
    analyst = as_role(browser, console_network, NL, "analyst")
    console = console_network.layout.spec(NL).console_url
    analyst.goto(console + "/cases?source=public")
    row = analyst.locator("table tbody tr", has_text=f"browser-{lang}[.]example")
    expect(row).to_have_count(1)
    looks_right(analyst, "console-cases-queue")
    row.locator("a").first.click()
    expect(analyst.locator(".url").first).to_contain_text(f"hxxp://browser-{lang}[.]example/album/4411?p=2")
    expect(analyst.get_by_text(f"Reported in {lang}")).to_be_visible()
    looks_right(analyst, "console-case-reported")
    analyst.context.close()


def test_validation_errors_are_summarised_and_shown_next_to_each_field(public_url: str, reporter: Any) -> None:
    page = reporter("en-GB")
    page.goto(public_url + "/en/report")
    page.fill("#url", "javascript:alert(document.cookie)")
    page.fill("#contact_email", "not an address")
    page.get_by_role("button", name="Send report").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link", name=re.compile("This kind of address cannot be reported"))).to_be_visible()
    expect(summary.get_by_role("link", name="Choose where you saw it.")).to_be_visible()
    expect(page.locator("#url-error")).to_contain_text("This kind of address cannot be reported")
    expect(page.locator("#url")).to_have_value("javascript:alert(document.cookie)")  # Input kept.
    assert page.title().startswith("Error:")
    looks_right(page, "public-form-errors")
    summary.get_by_role("link", name=re.compile("This kind of address")).click()
    expect(page.locator("#url")).to_be_focused()


def test_a_report_can_be_sent_without_javascript(public_url: str, reporter: Any) -> None:
    page = reporter("de-DE", java_script_enabled=False)
    page.goto(public_url + "/")
    page.get_by_role("button", name="Jetzt starten").click()
    page.get_by_role("button", name="Meldung absenden").click()  # Empty: the server says what is missing.
    expect(page.locator(".error-summary")).to_contain_text("Geben Sie die Webadresse")
    page.fill("#url", "https://ohne-js.example/v/1")
    page.get_by_label("Eine Chat- oder Messenger-App").check()
    page.get_by_role("button", name="Meldung absenden").click()
    expect(page.locator("h1")).to_have_text("Meldung gesendet")
    page.get_by_role("link", name="Den Stand einer Meldung abfragen").click()
    expect(page.locator("h1")).to_have_text("Den Stand einer Meldung abfragen")


def test_the_pages_fit_a_phone(public_url: str, reporter: Any) -> None:
    page = reporter("nl-NL", viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page.goto(public_url + "/")
    looks_right(page, "public-start-phone")
    page.get_by_role("button", name="Nu beginnen").click()
    page.fill("#url", "https://mobiel.example/v/1")
    page.get_by_label("Een chat- of berichtenapp").check()
    looks_right(page, "public-form-phone")
    for where in ("form", "sent"):
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the {where} page scrolls sideways on a phone ({width}px)"
        if where == "form":
            page.get_by_role("button", name="Melding versturen").click()
            expect(page.locator("h1")).to_have_text("Melding verstuurd")
    looks_right(page, "public-sent-phone")


def test_the_form_can_be_filled_with_the_keyboard_alone(public_url: str, reporter: Any) -> None:
    page = reporter("en-GB")
    page.goto(public_url + "/en/report")
    page.keyboard.press("Tab")  # The skip link first.
    expect(page.locator("a.skip")).to_be_focused()
    page.locator("#url").focus()
    page.keyboard.type("http://keyboard.example/page")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # The first radio: "A website".
    expect(page.locator("input[name=seen_on][value=website]")).to_be_checked()
    page.locator("main form button[type=submit]").focus()
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Report sent")


def test_a_supervisor_registers_a_partner_and_sees_the_secret_once(browser: Browser, console_network: Network) -> None:
    page = as_role(browser, console_network, NL, "supervisor")
    console = console_network.layout.spec(NL).console_url
    page.goto(console + "/partners")
    looks_right(page, "console-partners")
    page.get_by_role("link", name="Register a partner").first.click()
    page.get_by_role("button", name="Register and show the secret").click()
    expect(page.locator(".error-summary")).to_contain_text("Enter the partner's name")
    page.fill("#name", "<script>alert(1)</script> Video Platform")
    page.fill("#contact", "abuse@video.example")
    page.get_by_role("button", name="Register and show the secret").click()
    expect(page.locator("h1")).to_have_text("Partner registered")
    secret = page.locator(".secret").nth(1).inner_text()
    assert secret.startswith("hps_")
    looks_right(page, "console-partner-secret")
    page.get_by_role("link", name="Done").click()
    expect(page.locator("h1")).to_contain_text("<script>alert(1)</script> Video Platform")
    assert secret not in page.content()
    looks_right(page, "console-partner")
    page.get_by_role("button", name="Suspend").click()
    expect(page.locator(".flashes")).to_contain_text("is suspended")
    expect(page.locator("h1 .tag")).to_have_text("suspended")
    page.context.close()
    analyst = as_role(browser, console_network, NL, "analyst")
    response = analyst.goto(console + "/partners")
    assert response is not None and response.status == 403
    analyst.context.close()


def test_script_in_what_reporters_and_partners_send_is_only_text_on_the_analysts_pages(
    browser: Browser, console_network: Network, public_url: str
) -> None:
    payload = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    from demo.network import PublicReporter

    who = PublicReporter(public_url, console_network.layout.web.ca)
    who.report(
        f"http://inject.example/p?q={payload}",
        description=payload,
        contact_name=payload[:100],
        contact_email="inject@mail.example",
    )
    who.close()
    partner = console_network.partner(NL)
    partner.submit(
        [{"url": f"http://inject-partner.example/{payload}", "external_id": payload, "description": payload}]
    )
    partner.close()
    analyst = as_role(browser, console_network, NL, "analyst")
    dialogs: list[str] = []
    analyst.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    console = console_network.layout.spec(NL).console_url
    analyst.goto(console + "/cases?queue=all&q=inject")
    expect(analyst.locator("table tbody tr")).to_have_count(2)
    for index in range(2):
        analyst.goto(console + "/cases?queue=all&q=inject")
        analyst.locator("table tbody tr a").nth(index).click()
        expect(analyst.get_by_text(payload).first).to_be_visible()
        assert analyst.locator("img[src=x]").count() == 0
    assert dialogs == []
    looks_right(analyst, "console-case-injection")
    analyst.context.close()
