"""Sending mail through the SMTP server a service is configured with (``SMTP_*`` settings)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    starttls: bool
    username: str
    password: str
    timeout: float

    @classmethod
    def from_config(cls, config: Any) -> SmtpServer | None:
        """The configured server; None when ``SMTP_HOST`` is empty (nothing is mailed)."""
        if not config.get("SMTP_HOST"):
            return None
        return cls(
            host=str(config["SMTP_HOST"]),
            port=int(config["SMTP_PORT"]),
            starttls=bool(config["SMTP_STARTTLS"]),
            username=str(config.get("SMTP_USERNAME") or ""),
            password=str(config.get("SMTP_PASSWORD") or ""),
            timeout=float(config["SMTP_TIMEOUT_SECONDS"]),
        )

    def send(self, message: EmailMessage) -> None:
        """Hand the message to the server. Raises smtplib.SMTPException or OSError."""
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(message)
