"""Removal checks against a web server of the test's own on 127.0.0.1: headers only, "removed" when the
address answers 404, "reappeared" when it answers again, never for an address marked "do not fetch"."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from certs.devnet import DEV_MEMBERS
from demo.network import Network
from node.removal.services import Checker
from tests.conftest import make_network

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
