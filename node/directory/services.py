"""The signed member directory, cached in the node's database and in memory.

A node uses the directory to authorize what the exchange relays without taking the exchange's word for
it alone: a receipt for one of our reports must come from the member that covers the report's hosting
country (or the fallback when nobody does), and a report may be routed to us only for a country we
cover, or because we are the fallback.

The node's worker fetches the directory from the exchange (``GET /v1/directory``), verifies it as
signed by the configured exchange, and stores it (``service_state``), so a node restarted while the
exchange is unreachable keeps working from its copy. Every process reads the stored copy through its
own unit of work (at most once a minute, or when asked to look again). The worker refreshes it
periodically and whenever a check meets a member it does not expect; a check that cannot be decided
because the copy is missing or old refuses the whole transaction with a
:class:`~federation.errors.TransientError`, so the exchange tries again after the refresh instead of a
document being rejected for good.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from federation.errors import ProtocolError, TransientError
from federation.messages import DIRECTORY
from federation.signing import flattened_to_compact, verify_jws
from federation.state import write_state
from service.database import DBSession

if TYPE_CHECKING:
    from federation.runtime import Runtime

log = logging.getLogger(__name__)

STATE_NAME = "directory"
FRESH_ENOUGH = dt.timedelta(seconds=5)
"""A directory fetched this recently is taken as current: a member it does not expect is refused. An older
copy is fetched again first (the secretariat may have onboarded a member, suspended one or set a routing
override since), and the sender retries: a refusal never rests on a copy older than this."""
RELOAD_AFTER = dt.timedelta(seconds=60)
"""How long a process uses its in-memory copy before it reads the stored one again."""
WAKE_REFRESH = "@directory"
"""The wake-up message that asks the worker to fetch the directory now (service.worker)."""


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
    overrides: dict[str, str] = field(default_factory=dict)
    """Country → member: the secretariat's routing overrides in force when the directory was signed."""
    version: str | None = None
    """The exchange's digest of this content; every transaction from the exchange names the current one."""

    def covering(self, country: str) -> str | None:
        """Where the exchange routes ``country``: an override, else the active member covering it, else the
        fallback (the exchange's routing rule)."""
        if country in self.overrides:
            return self.overrides[country]
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
        self._loaded_at: dt.datetime | None = None
        self.wanted = threading.Event()
        """Set when a check wants a fresher directory; the worker's refresher fetches at once."""
        self.ask_refresh: Callable[[], None] = self.wanted.set
        """How to ask for a refresh: the event in the worker; a wake-up sent to it from other processes."""

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
            self._directory, self._loaded_at = directory, now
        self.wanted.clear()
        return directory

    def load_stored(self, session: DBSession) -> Directory | None:
        """Read the directory the worker stored, through ``session`` (the caller's unit of work)."""
        row = session.get(self.rt.models["state"], STATE_NAME)
        now = self.rt.clock()
        with self._lock:
            self._loaded_at = now
        if row is None:
            return None
        fetched, _, token = row.value.partition(" ")
        with self._lock:
            if self._directory is not None and self._directory.fetched_at.isoformat() == fetched:
                return self._directory
        directory = self._verify(token, fetched_at=dt.datetime.fromisoformat(fetched))
        with self._lock:
            if self._directory is None or self._directory.fetched_at <= directory.fetched_at:
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
        return Directory(
            members=members,
            fallback=message.claims["fallback"],
            fetched_at=fetched_at,
            overrides=dict(message.claims.get("overrides", {})),
            version=message.claims.get("version"),
        )

    def current(self, session: DBSession) -> Directory:
        """The directory: this process's copy, read again from the database once a minute.

        Raises:
            DirectoryUnavailableError: the node has none yet (the worker is asked to fetch one).
        """
        with self._lock:
            directory, loaded_at = self._directory, self._loaded_at
        if directory is None or loaded_at is None or self.rt.clock() - loaded_at > RELOAD_AFTER:
            directory = self.load_stored(session) or directory
        if directory is None:
            self.ask_refresh()
            raise DirectoryUnavailableError("this node has not fetched the member directory yet; retry shortly")
        return directory

    def require_fresh(self, session: DBSession, what: str, *, version: str | None = None) -> None:
        """Before refusing something our copy of the directory forbids: make sure the copy is current. With
        the ``version`` the exchange named in the transaction, current means that version; without one
        (an older exchange), fetched within FRESH_ENOUGH.

        Raises:
            DirectoryUnavailableError: it may be stale; the worker refreshes it and the sender retries.
        """
        directory = self.current(session)
        if version is not None:
            stale = directory.version != version
        else:
            stale = self.rt.clock() - directory.fetched_at > FRESH_ENOUGH
        if stale:
            with self._lock:
                self._loaded_at = None  # Read the stored copy again next time: the worker is refreshing it.
            self.ask_refresh()
            raise DirectoryUnavailableError(f"{what} is not what our directory expects; refreshing it")

    def require(
        self, session: DBSession, member_id: str, *, expected: str | None, what: str, version: str | None = None
    ) -> None:
        """Refuse ``member_id`` unless it is ``expected``; ask for a fresher directory if ours may be old.

        Raises:
            UnexpectedMemberError: the directory is fresh and still says otherwise.
            DirectoryUnavailableError: the directory may be stale; retried after a refresh.
        """
        if member_id == expected:
            return
        self.require_fresh(session, f"{what} from {member_id}", version=version)
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
        while not self._stop.is_set():
            try:
                self.cache.fetch()
                failures = 0
                wait = self.interval
            except Exception as exc:  # Logged and retried: the stored copy keeps serving meanwhile.
                failures += 1
                wait = min(30.0, 0.25 * 2 ** min(failures, 7))
                log.warning("directory fetch failed (%d in a row), retrying in %.1f s: %s", failures, wait, exc)
            self.cache.wanted.wait(wait)
            self.cache.wanted.clear()
