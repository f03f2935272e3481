"""Removal checks against a web server of the test's own on 127.0.0.1: headers only, "removed" when the
address answers 404, "reappeared" when it answers again, never for an address marked "do not fetch"."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from certs.devnet import DEV_MEMBERS
from demo.network import Network
from node.removal.services import Checker
from tests.conftest import make_network, query_plan, received_case_row

NL, DE = DEV_MEMBERS[0].member_id, DEV_MEMBERS[1].member_id


class Host:
    """The hosting provider: answers each path with the status the test sets, counts requests, and notes
    whether anyone read the body (a large one, streamed slowly: a checker that read it would be seen)."""

    def __init__(self) -> None:
        self.status: dict[str, int] = {}
        self.requests: list[str] = []
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.requests.append(self.path)
                status = host.status.get(self.path, 200)
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("Location", host.status_location.get(self.path, "/"))
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(10_000_000))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(b"\0" * 65536)  # The rest never comes: a reader would wait.

            def log_message(self, *_: Any) -> None:
                pass

        self.status_location: dict[str, str] = {}
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    found = Host()
    yield found
    found.close()


def test_the_checker_reads_headers_only_follows_a_few_redirects_and_refuses_private_addresses(host: Host) -> None:
    checker = Checker(timeout=5, proxy="", allow_private=True)
    host.status.update({"/gone": 404, "/moved": 301, "/teapot": 418})
    host.status_location["/moved"] = "/gone"
    up = checker.check(host.url + "/there.jpg")
    assert (up.outcome, up.http_status, up.final_url) == ("up", 200, host.url + "/there.jpg")
    assert up.elapsed_ms < 4000  # It did not wait for the 10 MB body that never comes.
    gone = checker.check(host.url + "/moved")
    assert (gone.outcome, gone.http_status, gone.final_url) == ("gone", 404, host.url + "/gone")
    assert checker.check(host.url + "/teapot").outcome == "error"
    host.status.update({f"/loop{n}": 302 for n in range(6)})
    host.status_location.update({f"/loop{n}": f"/loop{n + 1}" for n in range(5)})
    looped = checker.check(host.url + "/loop0")
    assert looped.outcome == "error" and "redirects" in (looped.error or "")
    guarded = Checker(timeout=5, proxy="", allow_private=False).check(host.url + "/there.jpg")
    assert guarded.outcome == "error" and "non-public address" in (guarded.error or "")
    assert host.requests.count("/there.jpg") == 1  # The guarded checker never sent its request.


def test_the_job_reads_only_the_due_watches_longest_due_first(store: Any) -> None:
    """5,000 received cases, all checked and waiting but a few: the job finds the due ones in the order they
    fell due, skips "do not fetch" and the cases never checked, and reads them through the watches' index
    (not by walking every received case, which made each minute's query grow with the store)."""
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from node.received.models import InboundCase
    from node.removal.models import Watch
    from node.removal.tasks import due_cases

    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    # case id: (status, do not fetch, minutes until due; None: off the schedule)
    special = {
        "due-3": ("ntd_sent", False, -3),
        "due-1": ("received", False, -1),
        "due-2": ("removed", False, -2),  # A removed address is checked for reappearance.
        "due-but-do-not-fetch": ("ntd_sent", True, -10),
        "not-illegal": ("not_illegal_here", False, None),
        "not-illegal-old-row": ("not_illegal_here", False, -20),  # Guarded by its status.
        "moved": ("moved", False, None),
        "due-soon": ("ntd_sent", False, 1),
    }
    cases = {f"waiting-{n}": ("ntd_sent", n % 50 == 0, 60 + n % 360) for n in range(5000)} | special
    with Session(store("node")) as session:
        session.execute(
            insert(InboundCase),
            [
                received_case_row(case_id, n, status=status, at=now - dt.timedelta(days=1))
                for n, (case_id, (status, _, _)) in enumerate(cases.items())
            ],
        )
        session.execute(
            insert(Watch),
            [
                {
                    "case_kind": "received",
                    "case_id": case_id,
                    "do_not_fetch": off,
                    "next_check_at": None if minutes is None else now + dt.timedelta(minutes=minutes),
                }
                for case_id, (_, off, minutes) in cases.items()
            ],
        )
        session.commit()
        assert [case.id for case in due_cases(session, now)] == ["due-3", "due-2", "due-1"]
        assert [case.id for case in due_cases(session, now, limit=2)] == ["due-3", "due-2"]
        assert [case.id for case in due_cases(session, now + dt.timedelta(minutes=2))][-1] == "due-soon"
        plan = query_plan(session, lambda: due_cases(session, now))
        assert "ix_removal_watches_due" in plan, plan
        assert "SCAN inbound_cases" not in plan and "Seq Scan on inbound_cases" not in plan, plan


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    network = make_network(
        tmp_path_factory.mktemp("removal"),
        "sqlite",
        None,
        members=DEV_MEMBERS[:2],
        REMOVAL_CHECK_SECONDS=0.5,
        REMOVAL_CHECK_EVERY_SECONDS=1,
        REMOVAL_RECHECK_EVERY_SECONDS=1,
        REMOVAL_CHECK_ENABLED=True,
        REMOVAL_CHECK_ALLOW_PRIVATE=True,
    )
    network.start()
    yield network
    network.stop()


def test_removed_when_the_address_is_gone_and_reappeared_when_it_answers_again(net: Network, host: Host) -> None:
    nl, de = net.client(NL), net.client(DE)
    report = nl.report(url=host.url + "/album/1.jpg", hosting_country="DE", legal_status="baseline")
    de.wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    first = de.wait_for(f"/api/v1/received/{report['id']}/checks", lambda body: len(body["items"]) >= 1)
    assert first["items"][0]["outcome"] == "up" and first["items"][0]["http_status"] == 200
    host.status["/album/1.jpg"] = 404
    de.wait_for(f"/api/v1/received/{report['id']}", lambda c: c["status"] == "removed")
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "removed")
    host.status["/album/1.jpg"] = 200
    de.wait_for(f"/api/v1/received/{report['id']}", lambda c: c["status"] == "reappeared")
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "reappeared")


def test_an_address_marked_do_not_fetch_is_never_fetched(net: Network, host: Host) -> None:
    nl, de = net.client(NL), net.client(DE)
    report = nl.report(url=host.url + "/private/2.jpg", hosting_country="DE", legal_status="baseline")
    de.wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    marked = de.request("POST", f"/api/v1/received/{report['id']}/checks", json={"do_not_fetch": True})
    assert marked.status_code == 200 and marked.json()["do_not_fetch"] is True
    refused = de.request("POST", f"/api/v1/received/{report['id']}/checks", json={"do_not_fetch": "yes"})
    assert refused.status_code == 422
    before = host.requests.count("/private/2.jpg")
    # Other cases are checked meanwhile (the job runs twice a second); this one is not fetched again.
    other = nl.report(url=host.url + "/other/3.jpg", hosting_country="DE", legal_status="baseline")
    de.wait_for(f"/api/v1/received/{other['id']}/checks", lambda body: len(body["items"]) >= 2)
    assert host.requests.count("/private/2.jpg") == before <= 1
    assert de.get(f"/api/v1/received/{report['id']}/checks")["do_not_fetch"] is True


def test_a_case_found_not_illegal_here_is_not_checked_until_its_status_changes(net: Network, host: Host) -> None:
    """Every received case is on the schedule from its receipt; "not illegal here" takes it off (the address
    is not fetched, and "check now" says why), and another status puts it back, due at once."""
    nl, de = net.client(NL), net.client(DE)
    report = nl.report(url=host.url + "/lawful/4.jpg", hosting_country="DE", legal_status="baseline")
    case = f"/api/v1/received/{report['id']}"
    de.wait_for(f"{case}/checks", lambda body: len(body["items"]) >= 1)
    recorded = de.request("POST", f"{case}/status", json={"status": "not_illegal_here"})
    assert recorded.status_code in (200, 201), recorded.text
    assert de.get(f"{case}/checks")["next_check_at"] is None
    refused = de.request("POST", f"{case}/checks", json={"check_now": True})
    assert refused.status_code == 409 and refused.json()["code"] == "not_checked", refused.text
    assert "not illegal here" in refused.json()["detail"]
    fetched = host.requests.count("/lawful/4.jpg")
    other = nl.report(url=host.url + "/other/5.jpg", hosting_country="DE", legal_status="baseline")
    de.wait_for(f"/api/v1/received/{other['id']}/checks", lambda body: len(body["items"]) >= 2)
    assert host.requests.count("/lawful/4.jpg") == fetched
    assert de.request("POST", f"{case}/status", json={"status": "ntd_sent"}).status_code in (200, 201)
    assert de.get(f"{case}/checks")["next_check_at"] is not None
    de.wait_for(f"{case}/checks", lambda body: len(body["items"]) >= 2)
    assert host.requests.count("/lawful/4.jpg") > fetched
