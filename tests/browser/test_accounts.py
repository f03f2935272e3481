"""People at both ends, in a real browser: sign-in with and without a second factor, lock-out, account
management, roles, CSRF and sign-out, on the node's console and the exchange's, every page checked with
axe-core."""

from __future__ import annotations

import re
import uuid

import requests
from playwright.sync_api import Browser, Page, expect

from demo.network import Network
from tests.browser.conftest import account, as_role, fresh_code, looks_right, sign_in
from tests.conftest import query

SIGN_IN_FAILED = "Sign-in failed."


def console(network: Network, member_id: str = "hotline-nl") -> str:
    return network.layout.spec(member_id).console_url


def test_an_analyst_signs_in_without_a_second_factor_and_signs_out(page: Page, console_network: Network) -> None:
    page.goto(console(console_network) + "/")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/$"))  # Pages need a session.
    sign_in(page, console_network, "hotline-nl", "analyst", check=True)
    expect(page.locator("h1")).to_contain_text("Good to see you")
    looks_right(page, "node-home-analyst")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".notice")).to_contain_text("You are signed out")
    page.goto(console(console_network) + "/received")
    expect(page).to_have_url(re.compile(r"/sign-in"))


def test_a_supervisor_signs_in_with_a_totp_code(page: Page, console_network: Network) -> None:
    sign_in(page, console_network, "hotline-nl", "supervisor", check=True)
    expect(page.locator(".account-menu")).to_contain_text("supervisor")
    expect(page.get_by_role("link", name="Accounts")).to_be_visible()


def test_a_wrong_password_and_an_unknown_username_get_the_same_answer(page: Page, console_network: Network) -> None:
    answers = []
    for username, password in (("ana", "not her password at all"), ("nobody-here", "whatever it is, really")):
        page.goto(console(console_network) + "/sign-in")
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("main button[type=submit]")
        summary = page.locator(".error-summary")
        expect(summary).to_be_visible()
        answers.append(summary.inner_text())
    assert answers[0] == answers[1] and SIGN_IN_FAILED in answers[0]
    looks_right(page, "node-sign-in-failed")


def test_a_supervisor_creates_an_analyst_who_signs_in_and_chooses_a_password(
    browser: Browser, page: Page, console_network: Network
) -> None:
    username = f"new-{uuid.uuid4().hex[:6]}"
    page = as_role(browser, console_network, "hotline-nl", "supervisor")
    page.goto(console(console_network) + "/")
    page.get_by_role("link", name="Accounts").click()
    looks_right(page, "node-accounts")
    page.get_by_role("link", name="Create an account").click()
    looks_right(page, "node-account-new")
    page.fill("#username", username)
    page.fill("#display_name", "Nadia New")
    page.select_option("#role", "analyst")
    page.click("main button[type=submit]")
    first_password = page.locator(".secret").inner_text().strip()
    looks_right(page, "node-account-created")

    other = browser.new_context(ignore_https_errors=True).new_page()
    other.goto(console(console_network) + "/sign-in")
    other.fill("#username", username)
    other.fill("#password", first_password)
    other.click("main button[type=submit]")
    expect(other).to_have_url(re.compile(r"/account/password$"))  # A made-up password must be replaced first.
    expect(other.locator("h1")).to_have_text("Choose your own password")
    other.goto(console(console_network) + "/received")
    expect(other).to_have_url(re.compile(r"/account/password$"))
    other.fill("#current", first_password)
    other.fill("#new", "password123456")
    other.click("main button[type=submit]")
    expect(other.locator(".error-summary")).to_contain_text("too common")
    looks_right(other, "node-password-refused")
    other.fill("#current", first_password)
    other.fill("#new", "violet otters juggle quietly")
    other.click("main button[type=submit]")
    expect(other.locator(".notice")).to_contain_text("Your password is changed")
    other.goto(console(console_network) + "/received")
    expect(other.locator("h1")).to_have_text("Received from abroad")
    other.context.close()


def test_repeated_failures_lock_an_account_until_a_supervisor_unlocks_it(
    browser: Browser, page: Page, console_network: Network
) -> None:
    username = f"lock-{uuid.uuid4().hex[:6]}"
    page = as_role(browser, console_network, "hotline-nl", "supervisor")
    page.goto(console(console_network) + "/accounts/new")
    page.fill("#username", username)
    page.fill("#display_name", "Lou Locked")
    page.select_option("#role", "analyst")
    page.click("main button[type=submit]")
    password = page.locator(".secret").inner_text().strip()

    other = browser.new_context(ignore_https_errors=True).new_page()

    def attempt(secret: str) -> str:
        other.goto(console(console_network) + "/sign-in")
        other.fill("#username", username)
        other.fill("#password", secret)
        other.click("main button[type=submit]")
        return other.url

    for _ in range(5):
        attempt("wrong wrong wrong wrong")
    assert attempt(password).endswith("/sign-in")  # Locked: even the right password is refused, alike.
    expect(other.locator(".error-summary")).to_contain_text(SIGN_IN_FAILED)

    page.goto(console(console_network) + f"/accounts/{username}")
    expect(page.locator(".page-head")).to_contain_text("locked")
    looks_right(page, "node-account-locked")
    page.get_by_role("button", name="Unlock").click()
    expect(page.locator(".notice")).to_contain_text("is unlocked")
    assert attempt(password).endswith("/account/password")
    other.context.close()
    actions = {
        row[0]
        for row in query(
            console_network.layout.members["hotline-nl"].database,
            "SELECT action FROM audit_entries WHERE object_id = :u",
            u=username,
        )
    }
    assert {"account.create", "sign_in.failed", "account.locked", "account.unlock", "sign_in"} <= actions


def test_an_analyst_is_denied_supervisor_pages(page: Page, console_network: Network) -> None:
    sign_in(page, console_network, "hotline-nl", "analyst")
    expect(page.get_by_role("link", name="Accounts")).to_have_count(0)
    for path in ("/accounts", "/accounts/new", "/audit"):
        response = page.goto(console(console_network) + path)
        assert response is not None and response.status == 403, path
        expect(page.locator("h1")).to_have_text("Not allowed")
    looks_right(page, "node-forbidden")


def test_a_form_without_its_csrf_token_is_refused(browser: Browser, console_network: Network) -> None:
    page = as_role(browser, console_network, "hotline-nl", "supervisor")
    page.goto(console(console_network) + "/")
    before = query(console_network.layout.members["hotline-nl"].database, "SELECT count(*) FROM accounts")
    response = page.request.post(
        console(console_network) + "/accounts/new",
        form={"username": "csrf-victim", "display_name": "CSRF", "role": "supervisor"},
        headers={"Referer": console(console_network) + "/accounts/new"},
    )
    assert response.status == 400 and "The form has expired" in response.text()
    assert query(console_network.layout.members["hotline-nl"].database, "SELECT count(*) FROM accounts") == before


def test_sign_out_everywhere_ends_other_sessions(browser: Browser, page: Page, console_network: Network) -> None:
    sign_in(page, console_network, "hotline-de", "analyst")
    other = browser.new_context(ignore_https_errors=True).new_page()
    sign_in(other, console_network, "hotline-de", "analyst")
    page.goto(console(console_network, "hotline-de") + "/account")
    looks_right(page, "node-settings")
    page.get_by_role("button", name="Sign out on every device").click()
    other.goto(console(console_network, "hotline-de") + "/received")
    expect(other).to_have_url(re.compile(r"/sign-in"))
    other.context.close()


def test_a_person_enrols_a_second_factor_and_creates_an_api_token(page: Page, console_network: Network) -> None:
    import pyotp

    sign_in(page, console_network, "hotline-de", "analyst")
    page.goto(console(console_network, "hotline-de") + "/account/two-factor")
    looks_right(page, "node-two-factor")
    secret = page.locator(".secret").inner_text().strip()
    page.fill("#code", "000000")
    page.click("main button[type=submit]")
    expect(page.locator(".error-summary")).to_contain_text("That code is not right")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("main button[type=submit]")
    expect(page.locator(".codes li")).to_have_count(10)
    looks_right(page, "node-recovery-codes")
    page.get_by_role("link", name="I have saved them").click()
    page.fill("#name", "nightly export")
    page.get_by_role("button", name="Create a token").click()
    token = page.locator(".secret").inner_text().strip()
    assert token.startswith("hnt_")
    looks_right(page, "node-token-created")
    answer = requests.get(
        console(console_network, "hotline-de") + "/api/v1/received",
        headers={"Authorization": f"Bearer {token}"},
        verify=str(console_network.layout.web.ca),
        timeout=10,
    )
    assert answer.status_code == 200 and "items" in answer.json()


def test_the_keyboard_alone_is_enough_to_sign_in(page: Page, console_network: Network) -> None:
    who = account(console_network, "hotline-nl", "supervisor")
    page.goto(console(console_network) + "/sign-in")
    expect(page.locator("#username")).to_be_focused()  # The username field has focus when the page opens.
    page.keyboard.type(who["username"])
    page.keyboard.press("Tab")
    page.keyboard.type(who["password"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/sign-in/code")
    expect(page.locator("#code")).to_be_focused()
    page.keyboard.type(fresh_code(who["totp_secret"]))
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("Good to see you")
    page.keyboard.press("Tab")  # The first Tab reaches the skip link.
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def test_the_core_pages_work_without_javascript(browser: Browser, console_network: Network) -> None:
    context = browser.new_context(ignore_https_errors=True, java_script_enabled=False)
    page = context.new_page()
    sign_in(page, console_network, "hotline-nl", "analyst")
    expect(page.locator("h1")).to_contain_text("Good to see you")
    page.get_by_role("link", name="Received", exact=True).click()
    expect(page.locator("h1")).to_have_text("Received from abroad")
    context.close()


def test_the_exchange_console_for_the_secretariat(page: Page, console_network: Network) -> None:
    sign_in(page, console_network, "exchange", "secretariat-admin", check=True)  # The admin's only full sign-in.
    expect(page.locator("h1")).to_have_text("Network status")
    expect(page.locator("table").first).to_contain_text("hotline-nl")
    looks_right(page, "exchange-network")
    page.get_by_role("link", name="Accounts").click()
    looks_right(page, "exchange-accounts")
    page.get_by_role("link", name="Audit trail").click()
    looks_right(page, "exchange-audit")


def test_a_secretariat_viewer_reads_but_manages_nothing(page: Page, console_network: Network) -> None:
    sign_in(page, console_network, "exchange", "secretariat-viewer")
    expect(page.locator("h1")).to_have_text("Network status")
    response = page.goto(console(console_network, "exchange") + "/accounts")
    assert response is not None and response.status == 403


def test_pages_fit_a_phone_and_errors_look_like_the_rest(browser: Browser, console_network: Network) -> None:
    page = as_role(browser, console_network, "hotline-nl", "supervisor")
    page.set_viewport_size({"width": 390, "height": 844})
    for path, name in (("/", "phone-home"), ("/received", "phone-received"), ("/account", "phone-settings")):
        page.goto(console(console_network) + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (path, overflow)
        looks_right(page, name)
    missing = page.goto(console(console_network) + "/received/no-such-case")
    assert missing is not None and missing.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    looks_right(page, "node-not-found")
    page.context.close()
