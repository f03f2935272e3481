"""The mailbox: delivery for members that cannot open an inbound port (pull), still near-instant.

A member in pull mode keeps one long-poll open to the exchange: ``GET /v1/mailbox?wait=N``. The exchange
answers at once with a signed transaction of the member's pending documents, exactly the transaction it
would have pushed, or holds the request until something is committed for the member (it is woken by
:class:`MailboxSignal`) or ``N`` seconds pass (``204``). The member verifies and applies the transaction
with the same inbox code as a push, commits, and only then posts its signed transaction receipt to
``POST /v1/mailbox/receipts``; the exchange settles the outbox rows from it. A crash anywhere in
between means the batch is collected again and the member answers the repeats ``duplicate``.

:class:`MailboxPoller` is the member's side: one thread per node, started by ``serve`` in pull mode.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from typing import TYPE_CHECKING

from federation.errors import ProtocolError
from federation.transport import TransportError

if TYPE_CHECKING:
    from federation.runtime import Runtime

log = logging.getLogger(__name__)


class MailboxSignal:
    """Wakes long-polls waiting for a destination when something is committed for it (in this process).

    It also keeps one member from hurting the others: each member has at most one poll waiting (a new
    poll from the same member ends the one before, which answers at once), and at most ``max_waiting``
    polls wait in all, so request threads are always left for everybody's transactions.

    Other exchange processes sharing the database are not woken; their waiting polls look again every
    second, so a document committed elsewhere waits at most about a second.
    """

    def __init__(self, max_waiting: int = 1000) -> None:
        self._condition = threading.Condition()
        self._generation: dict[str, int] = {}
        self._polls: dict[str, int] = {}
        self._waiting = 0
        self._next_poll = 0
        self.max_waiting = max_waiting
        self.closed = False

    def close(self) -> None:
        """Release every waiting poll (the process is stopping); they answer at once."""
        with self._condition:
            self.closed = True
            self._condition.notify_all()

    def generation(self, destination: str) -> int:
        with self._condition:
            return self._generation.get(destination, 0)

    def notify(self, destination: str) -> None:
        with self._condition:
            self._generation[destination] = self._generation.get(destination, 0) + 1
            self._condition.notify_all()

    def open_poll(self, member_id: str) -> int | None:
        """Register a new poll for ``member_id`` (ending any older one); None when no poll may wait now."""
        with self._condition:
            if self._waiting >= self.max_waiting and member_id not in self._polls:
                return None
            self._next_poll += 1
            if member_id not in self._polls:
                self._waiting += 1
            self._polls[member_id] = self._next_poll
            self._condition.notify_all()  # An older poll of the same member sees it is superseded.
            return self._next_poll

    def close_poll(self, member_id: str, poll: int) -> None:
        with self._condition:
            if self._polls.get(member_id) == poll:
                del self._polls[member_id]
                self._waiting -= 1

    def current(self, member_id: str, poll: int) -> bool:
        """Whether ``poll`` is still the member's newest poll."""
        with self._condition:
            return self._polls.get(member_id) == poll

    def wait(self, destination: str, seen: int, timeout: float, *, poll: int | None = None) -> None:
        """Wait until ``destination`` moves past generation ``seen``, ``poll`` is superseded, or ``timeout``."""
        with self._condition:
            self._condition.wait_for(
                lambda: (
                    self.closed
                    or self._generation.get(destination, 0) != seen
                    or (poll is not None and self._polls.get(destination) != poll)
                ),
                timeout=timeout,
            )


class MailboxPoller:
    """The member side of pull delivery: long-poll, apply, commit, acknowledge; back off on failure."""

    def __init__(self, rt: Runtime, *, exchange_id: str, exchange_url: str, wait_seconds: int = 20) -> None:
        self.rt = rt
        self.exchange_id = exchange_id
        self.exchange_url = exchange_url.rstrip("/")
        self.wait_seconds = wait_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mailbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def poll_once(self, wait: int | None = None) -> int:
        """Collect, apply and acknowledge one batch; return how many documents it held.

        ``wait`` is how long the exchange may hold the poll (default: ``wait_seconds``). After a failure
        the poller asks with no wait, so that it hears at once that the exchange is back.
        """
        wait = self.wait_seconds if wait is None else wait
        # Long-polls get their own keep-alive session (channel), apart from the delivery worker's.
        status, body = self.rt.transport.request(
            "GET",
            f"{self.exchange_url}/v1/mailbox?wait={wait}",
            destination=self.exchange_id,
            channel="mailbox",
        )
        if status in (200, 204):
            self._heard_from_exchange()
        if status == 204:
            return 0
        if status != 200:
            code = body.get("error") if isinstance(body, dict) else None
            raise ProtocolError(f"mailbox answered HTTP {status} {code or ''}".strip(), code="mailbox_refused")
        with self.rt.app.app_context():
            try:
                receipt = self.rt.inbox().receive(
                    json.dumps(body).encode(), sender=self.exchange_id, now=self.rt.clock()
                )
                self.rt.db.session.commit()
            except BaseException:
                self.rt.db.session.rollback()
                raise
        status, answer = self.rt.transport.post_json(
            f"{self.exchange_url}/v1/mailbox/receipts", receipt, destination=self.exchange_id, channel="mailbox"
        )
        if status != 200:
            code = answer.get("error") if isinstance(answer, dict) else None
            raise ProtocolError(f"mailbox receipt refused: HTTP {status} {code or ''}".strip(), code="mailbox_refused")
        return len(json.loads(_payload(receipt))["results"])

    def _heard_from_exchange(self) -> None:
        """The exchange answered: it is up, so our own deliveries to it stop backing off (as on a push)."""
        with self.rt.app.app_context():
            deliverer = self.rt.deliverer()
            try:
                deliverer.peer_contacted(self.exchange_id, self.rt.clock(), certificate_not_after=None)
                self.rt.db.session.commit()
            except BaseException:
                self.rt.db.session.rollback()
                raise

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.poll_once(0 if failures else None)
                failures = 0
            except (TransportError, ProtocolError) as exc:
                failures += 1
                # A poll is one light request: retry soon (capped at 5 s), so a node hears at once when the
                # exchange is back, and then stops backing off its own deliveries to it.
                delay = min(5.0, 0.25 * 2 ** min(failures, 8)) * self.rt.rng.uniform(0.5, 1.0)
                log.warning("mailbox poll failed (%d in a row), retrying in %.1f s: %s", failures, delay, exc)
                self._stop.wait(delay)
            except Exception:
                failures += 1
                log.exception("mailbox poll crashed (%d in a row); retrying in 5 s", failures)
                self._stop.wait(5)


def _payload(body: dict[str, str]) -> bytes:
    payload = body["payload"]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
