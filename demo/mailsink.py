"""The demo's mail server: an SMTP server on 127.0.0.1 that writes every message it receives to a folder
as an ``.eml`` file (open it with any mail program), so notices can be read without sending mail anywhere."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class MailSink:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        with socket.socket() as probe:  # A free port; aiosmtpd checks its server by connecting to it.
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name.
        with self._lock:
            number = next(self._numbers)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        (self.folder / f"{stamp}-{number:04d}.eml").write_bytes(envelope.content)
        return "250 Message accepted"

    def messages(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))

    def close(self) -> None:
        self._controller.stop()
