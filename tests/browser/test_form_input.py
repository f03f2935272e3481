"""Bad input on every console form: a clear answer, nothing half-stored, never a 500, never unescaped.

Driven over HTTP (as a browser would post the forms, CSRF token included) against a real console, so
every field can be sent empty, huge, doubled, with a script, with unicode and with a NUL byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from demo.network import Network
from tests.browser.conftest import account, fresh_code
from tests.conftest import query

SCRIPT = "<script>alert('x')</script>"
BAD_VALUES: list[Any] = [
    "",
    " ",
    "x" * 100_000,
    SCRIPT,
    "Ünïcödé 名前 🙂",
    "bad\x00nul",
    ["two", "values"],
]


class Browserless:
    """A session that posts forms with their CSRF token, like a browser without JavaScript."""

    def __init__(self, network: Network, member_id: str) -> None:
        self.base = network.layout.spec(member_id).console_url
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = str(network.layout.web.ca)

    def token(self, path: str) -> str:
        page = self.session.get(self.base + path, timeout=10)
        found = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page.text)
        assert found, f"no form on {path}: {page.status_code}"
        return found.group(1)

    def post(self, path: str, data: dict[str, Any], *, form_path: str | None = None) -> requests.Response:
        fields = {"csrf_token": self.token(form_path or path), **data}
        return self.session.post(
            self.base + path, data=fields, headers={"Referer": self.base + (form_path or path)}, timeout=30
        )

    def sign_in(self, who: dict[str, str]) -> None:
        answer = self.post("/sign-in", {"username": who["username"], "password": who["password"]})
        if answer.url.endswith("/sign-in/code"):
            answer = self.post("/sign-in/code", {"code": fresh_code(who["totp_secret"])})
        assert answer.status_code == 200 and "/sign-in" not in answer.url, answer.url


def refused_cleanly(answer: requests.Response) -> None:
    assert answer.status_code < 500, answer.status_code
    assert "Traceback" not in answer.text
    assert SCRIPT not in answer.text  # Shown back escaped, if at all.


@pytest.fixture(scope="module")
def supervisor(console_network: Network) -> Iterator[Browserless]:
    client = Browserless(console_network, "hotline-nl")
    client.sign_in(account(console_network, "hotline-nl", "supervisor"))
    yield client


@pytest.mark.parametrize("value", BAD_VALUES, ids=["empty", "blank", "huge", "script", "unicode", "nul", "doubled"])
def test_the_sign_in_form(console_network: Network, value: Any) -> None:
    client = Browserless(console_network, "hotline-nl")
    for field in ("username", "password"):
        data = {"username": "ana", "password": "wrong password here", field: value}
        answer = client.post("/sign-in", data)
        refused_cleanly(answer)
        assert answer.status_code in (400, 401)


@pytest.mark.parametrize("value", BAD_VALUES, ids=["empty", "blank", "huge", "script", "unicode", "nul", "doubled"])
def test_the_new_account_form_stores_nothing_bad(console_network: Network, supervisor: Browserless, value: Any) -> None:
    database = console_network.layout.members["hotline-nl"].database
    before = query(database, "SELECT count(*) FROM accounts")
    for field in ("username", "role"):
        data = {"username": "fresh-user", "display_name": "Fresh User", "role": "analyst", field: value}
        answer = supervisor.post("/accounts/new", data)
        refused_cleanly(answer)
        assert answer.status_code in (400, 422), (field, answer.status_code)
    assert query(database, "SELECT count(*) FROM accounts") == before


def test_a_script_in_a_name_is_shown_as_text(console_network: Network, supervisor: Browserless) -> None:
    answer = supervisor.post("/accounts/new", {"username": "script-name", "display_name": SCRIPT, "role": "analyst"})
    assert answer.status_code == 200
    listing = supervisor.session.get(supervisor.base + "/accounts", timeout=10)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in listing.text and SCRIPT not in listing.text
    too_long = supervisor.post("/accounts/new", {"username": "long-name", "display_name": "n" * 121, "role": "analyst"})
    assert too_long.status_code in (400, 422) and "120" in too_long.text


@pytest.mark.parametrize("value", BAD_VALUES, ids=["empty", "blank", "huge", "script", "unicode", "nul", "doubled"])
def test_the_token_and_password_forms(console_network: Network, supervisor: Browserless, value: Any) -> None:
    database = console_network.layout.members["hotline-nl"].database
    tokens = query(database, "SELECT count(*) FROM api_tokens")
    answer = supervisor.post("/account/tokens", {"name": value}, form_path="/account")
    refused_cleanly(answer)
    if value in ("Ünïcödé 名前 🙂", SCRIPT):
        assert answer.status_code == 200  # Acceptable names (shown escaped): stored once.
        tokens = [(tokens[0][0] + 1,)]
    else:
        assert answer.status_code in (400, 422)
    assert query(database, "SELECT count(*) FROM api_tokens") == tokens
    for field in ("current", "new"):
        data = {"current": "not the current one", "new": "a new acceptable passphrase", field: value}
        answer = supervisor.post("/account/password", data)
        refused_cleanly(answer)
        assert answer.status_code in (400, 422)


def test_a_role_that_does_not_exist_is_refused(console_network: Network, supervisor: Browserless) -> None:
    answer = supervisor.post("/accounts/ana/role", {"role": "god"}, form_path="/accounts/ana")
    refused_cleanly(answer)
    database = console_network.layout.members["hotline-nl"].database
    assert query(database, "SELECT role FROM accounts WHERE username = 'ana'") == [("analyst",)]


def test_a_body_over_the_limit_is_refused_with_a_page(console_network: Network, supervisor: Browserless) -> None:
    answer = supervisor.session.post(
        supervisor.base + "/account/tokens", data={"name": "x" * (2 * 1024 * 1024)}, timeout=30
    )
    assert answer.status_code == 413 and "larger than this service accepts" in answer.text


@pytest.mark.parametrize("value", BAD_VALUES, ids=["empty", "blank", "huge", "script", "unicode", "nul", "doubled"])
def test_the_case_status_form(console_network: Network, supervisor: Browserless, value: Any) -> None:
    if not hasattr(test_the_case_status_form, "case_id"):
        de, nl = console_network.client("hotline-de"), console_network.client("hotline-nl")
        report = de.report(url="http://form-input.example/x", hosting_country="NL", legal_status="baseline")
        nl.wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
        test_the_case_status_form.case_id = report["id"]  # type: ignore[attr-defined]
    case_id = test_the_case_status_form.case_id  # type: ignore[attr-defined]
    database = console_network.layout.members["hotline-nl"].database
    before = query(database, "SELECT count(*) FROM case_events")
    path = f"/received/{case_id}/status"
    answer = supervisor.post(path, {"status": value, "note": ""}, form_path=f"/received/{case_id}")
    refused_cleanly(answer)
    assert answer.status_code == 422
    answer = supervisor.post(path, {"status": "assessed", "note": value}, form_path=f"/received/{case_id}")
    refused_cleanly(answer)
    stored = query(database, "SELECT count(*) FROM case_events")[0][0] - before[0][0]
    if value in ("", " ", SCRIPT, "Ünïcödé 名前 🙂"):
        assert answer.status_code == 200 and stored == 1  # A note is optional, and any text is shown escaped.
        page = supervisor.session.get(supervisor.base + f"/received/{case_id}", timeout=10).text
        assert SCRIPT not in page
    else:
        assert answer.status_code == 422 and stored == 0
