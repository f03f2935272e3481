"""Checking whether a reported address still answers.

The check asks for the URL and reads the status line and headers only: the body is never read (the
connection is closed as soon as the headers are in), never stored and never parsed. Redirects are
followed by hand, at most ``MAX_REDIRECTS``, so the final URL can be recorded. Requests go through the
configured egress proxy (``REMOVAL_CHECK_PROXY``) with a bounded timeout, and by default never to a
private, loopback or link-local address (``REMOVAL_CHECK_ALLOW_PRIVATE`` lifts that for tests and the demo:
a check must not become a way into the hotline's own network).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

MAX_REDIRECTS = 3
GONE = (404, 410)
USER_AGENT = "hotline-removal-check/1 (abuse takedown verification; no content is kept)"


@dataclass(frozen=True)
class Result:
    outcome: str  # up, gone, error
    http_status: int | None
    final_url: str | None
    elapsed_ms: int
    error: str | None = None


@dataclass(frozen=True)
class Checker:
    timeout: float
    proxy: str
    allow_private: bool

    @classmethod
    def from_config(cls, config: Any) -> Checker:
        return cls(
            timeout=float(config["REMOVAL_CHECK_TIMEOUT_SECONDS"]),
            proxy=str(config.get("REMOVAL_CHECK_PROXY") or ""),
            allow_private=bool(config["REMOVAL_CHECK_ALLOW_PRIVATE"]),
        )

    def _refused_address(self, url: str) -> str | None:
        """Why this URL may not be fetched directly (a non-public address), or None."""
        if self.allow_private or self.proxy:
            return None  # The proxy decides where requests may go.
        host = urlsplit(url).hostname or ""
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            return f"the name does not resolve ({exc.strerror or exc})"
        for info in infos:
            if not ipaddress.ip_address(info[4][0]).is_global:
                return f"{host} resolves to a non-public address; checks never go there"
        return None

    def check(self, url: str) -> Result:
        started = time.perf_counter()
        proxies = {"http": self.proxy, "https": self.proxy} if self.proxy else None
        session = requests.Session()
        session.trust_env = False
        current = url
        try:
            for _ in range(MAX_REDIRECTS + 1):
                refused = self._refused_address(current)
                if refused:
                    return Result("error", None, current, _ms(started), refused)
                with session.get(
                    current,
                    stream=True,  # Headers only: the body is never read.
                    allow_redirects=False,
                    timeout=self.timeout,
                    proxies=proxies,
                    headers={"User-Agent": USER_AGENT, "Accept": "*/*"},
                ) as response:
                    status = response.status_code
                    location = response.headers.get("Location")
                if status in (301, 302, 303, 307, 308) and location:
                    current = urljoin(current, location)
                    continue
                outcome = "gone" if status in GONE else ("up" if status < 400 else "error")
                return Result(outcome, status, current, _ms(started), None if outcome != "error" else f"HTTP {status}")
            return Result("error", None, current, _ms(started), f"more than {MAX_REDIRECTS} redirects")
        except requests.RequestException as exc:
            return Result("error", None, current, _ms(started), f"{type(exc).__name__}"[:300])
        finally:
            session.close()


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def next_check(now: dt.datetime, seconds: float) -> dt.datetime:
    return now + dt.timedelta(seconds=seconds)
