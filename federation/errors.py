"""The one client-visible error type of the network, and its specialisations.

Every refusal a peer can see is a :class:`ProtocolError`: an HTTP status, a stable machine-readable
``code`` (listed in docs/protocol.md) and a human message. Modules that call third-party libraries wrap
their exceptions in one of these, so callers never see a raw ``ValueError`` from a library.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """A refusal that is safe to show to the peer that caused it."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}
