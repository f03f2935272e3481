"""The signed member directory, cached in the node's database and in memory.

A node uses the directory to authorize what the exchange relays without taking the exchange's word for
it alone: a receipt for one of our reports must come from the member that covers the report's hosting
country (or the fallback when nobody does), and a report may be routed to us only for a country we
cover, or because we are the fallback.

The directory is fetched from the exchange (``GET /v1/directory``), verified as signed by the configured
exchange, and stored (``service_state``), so a node restarted while the exchange is unreachable keeps
working from its cache. It is refreshed periodically and whenever a check meets a member it does not
expect; a check that cannot be decided because the cache is missing or old refuses the whole
transaction with a :class:`~federation.errors.TransientError`, so the exchange tries again after the
refresh instead of a document being rejected for good.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any

from federation.errors import ProtocolError, TransientError
from federation.messages import DIRECTORY
from federation.runtime import Runtime
from federation.signing import flattened_to_compact, verify_jws
from federation.state import read_state, write_state

log = logging.getLogger(__name__)

STATE_NAME = "directory"
FRESH_ENOUGH = dt.timedelta(seconds=30)
"""A directory fetched this recently is taken as current: a member it does not expect is refused."""


class DirectoryUnavailableError(TransientError):
    code = "directory_unavailable"


class UnexpectedMemberError(ProtocolError):
    status = 403
    code = "unexpected_member"


@dataclass(frozen=True)
class Directory:
    """Who covers what, as the exchange signed it, and when this node fetched it."""

    members: dict[str, dict[str, Any]]
    fallback: str | None
    fetched_at: dt.datetime

    def covering(self, country: str) -> str | None:
        """The active member covering ``country``, else the fallback (the exchange's routing rule)."""
        for member_id, entry in sorted(self.members.items()):
            if entry["status"] == "active" and country in entry["countries"]:
                return member_id
        return self.fallback


class DirectoryCache:
    """The node's directory: verified, stored, parsed once per version, refreshed on demand."""

    def __init__(self, rt: Runtime, *, exchange_id: str, exchange_url: str) -> None:
        self.rt = rt
        self.exchange_id = exchange_id
        self.exchange_url = exchange_url.rstrip("/")
        self._lock = threading.Lock()
        self._directory: Directory | None = None
        self.wanted = threading.Event()
        """Set when a check wants a fresher directory; the refresher fetches at once."""

    def fetch(self) -> Directory:
        """Fetch, verify and store the directory now (network I/O: never inside a unit of work).

        Raises:
            TransportError, ProtocolError: the exchange could not be reached, or its answer does not verify.
        """
        status, body = self.rt.transport.request(
            "GET", f"{self.exchange_url}/v1/directory", destination=self.exchange_id, channel="directory"
        )
        if status != 200:
            raise ProtocolError(f"the exchange answered HTTP {status} for the directory", code="directory_refused")
        now = self.rt.clock()
        token = flattened_to_compact(body)
        directory = self._verify(token, fetched_at=now)
        with self.rt.app.app_context():
            write_state(self.rt.db, self.rt.models["state"], STATE_NAME, f"{now.isoformat()} {token}")
        with self._lock:
            self._directory = directory
        self.wanted.clear()
        return directory

    def load_stored(self) -> Directory | None:
        """Load the directory stored by an earlier fetch (at start, before the exchange answers)."""
        with self.rt.app.app_context():
            stored = read_state(self.rt.db, self.rt.models["state"], STATE_NAME)
        if not stored:
            return None
        fetched, _, token = stored.partition(" ")
        directory = self._verify(token, fetched_at=dt.datetime.fromisoformat(fetched))
        with self._lock:
            if self._directory is None or self._directory.fetched_at < directory.fetched_at:
                self._directory = directory
        return directory

    def _verify(self, token: str, *, fetched_at: dt.datetime) -> Directory:
        # Verified as of when it was fetched: a stored directory stays readable after a restart.
        message = verify_jws(
            token, expected_typ=DIRECTORY, trust=self.rt.trust, now=fetched_at, clock_skew=self.rt.clock_skew
        )
        if message.author.member_id != self.exchange_id or message.author.role != "exchange":
            raise ProtocolError("the directory is not signed by this node's exchange", code="directory_invalid")
        members = {entry["id"]: entry for entry in message.claims["members"]}
        return Directory(members=members, fallback=message.claims["fallback"], fetched_at=fetched_at)

    def current(self) -> Directory:
        """The cached directory (memory only: this runs inside units of work, which must not wait on I/O).

        Raises:
            DirectoryUnavailableError: this process has none yet (the refresher is asked for one).
        """
        with self._lock:
            directory = self._directory
        if directory is None:
            self.wanted.set()
            raise DirectoryUnavailableError("this node has not fetched the member directory yet; retry shortly")
        return directory

    def require(self, member_id: str, *, expected: str | None, what: str) -> None:
        """Refuse ``member_id`` unless it is ``expected``; ask for a fresher directory if ours may be old.

        Raises:
            UnexpectedMemberError: the directory is fresh and still says otherwise.
            DirectoryUnavailableError: the directory may be stale; retried after a refresh.
        """
        if member_id == expected:
            return
        directory = self.current()
        if self.rt.clock() - directory.fetched_at > FRESH_ENOUGH:
            self.wanted.set()
            raise DirectoryUnavailableError(f"{what} from {member_id} is not what our directory expects; refreshing it")
        raise UnexpectedMemberError(
            f"{what} must come from {expected or 'the member covering the country'}, not {member_id}"
        )


class DirectoryRefresher:
    """Keeps the cache current: at start, every ``interval`` seconds, and at once when a check asks."""

    def __init__(self, cache: DirectoryCache, *, interval: float) -> None:
        self.cache = cache
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="directory", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.cache.wanted.set()

    def _run(self) -> None:
        failures = 0
        try:
            self.cache.load_stored()
        except Exception as exc:  # A stored directory that no longer verifies is fetched again.
            log.warning("the stored directory could not be used: %s", exc)
        while not self._stop.is_set():
            try:
                self.cache.fetch()
                failures = 0
                wait = self.interval
            except Exception as exc:  # Logged and retried: the cache keeps serving meanwhile.
                failures += 1
                wait = min(30.0, 0.25 * 2 ** min(failures, 7))
                log.warning("directory fetch failed (%d in a row), retrying in %.1f s: %s", failures, wait, exc)
            self.cache.wanted.wait(wait)
