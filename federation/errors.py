"""The error types of both services: what a client may see, what may pass, and what only the logs see.

- :class:`ProtocolError` is the one client-visible error type: an HTTP status, a stable machine-readable
  ``code`` (listed in docs/protocol.md) and a human message that is safe to show to the client that
  caused it. Modules that call third-party libraries wrap their exceptions in one of these, so callers
  never see a raw ``ValueError`` from a library.
- :class:`TransientError` is a ProtocolError for a condition that may pass (a revocation list or
  directory not yet available): the whole transaction is refused with it and retried later, instead of
  one document being rejected for good.
- :class:`InternalError` is everything that is our own fault or our own configuration (a missing CRL
  file, a key that does not load). It is logged with its details and answered with a generic message:
  a file path or a key problem is never rendered to a peer or a browser.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """A refusal that is safe to show to the peer that caused it."""

    status: int = 400
    code: str = "bad_request"
    retry_after: int | None = None
    """Seconds after which the client may try again (sent as ``Retry-After``), where that is known."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class TransientError(ProtocolError):
    """A refusal of the whole transaction for a reason that may pass: the sender retries with backoff."""

    status = 503
    code = "temporarily_unavailable"


class InternalError(Exception):
    """A failure of this service (configuration, files, keys): logged in full, shown to nobody.

    ``public_code`` and ``public_message`` are what a client is told instead.
    """

    public_status = 503
    public_code = "temporarily_unavailable"
    public_message = "the service cannot handle this now; it has logged why (retry later)"
