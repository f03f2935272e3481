"""The demo's hosting provider: an HTTP proxy on 127.0.0.1 that answers for every made-up address in the
demo, so removal checks can run without a packet leaving the machine, and a page where a user of
``make demo`` takes content down (or puts it back) and watches the hotlines notice.

The nodes of the demo send their removal checks through it (``REMOVAL_CHECK_PROXY``). For a plain-HTTP
address it answers 200 with a placeholder (never any real content), or 404 once taken down; HTTPS
(``CONNECT``) is refused, which a check records as "no answer".
"""

from __future__ import annotations

import html
import http.server
import threading
from typing import Any
from urllib.parse import parse_qs


class HostingProvider:
    def __init__(self) -> None:
        self.taken_down: set[str] = set()
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("http://"):
                    provider._answer_check(self)
                else:
                    provider._page(self)

            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), 10_000)
                form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
                url = (form.get("url") or [""])[0]
                with provider.lock:
                    if self.path == "/take-down":
                        provider.taken_down.add(url)
                    elif self.path == "/restore":
                        provider.taken_down.discard(url)
                self.send_response(303)
                self.send_header("Location", "/")
                self.end_headers()

            def do_CONNECT(self) -> None:
                self.send_error(502, "the demo host answers plain HTTP only")

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take_down(self, url: str) -> None:
        """The host removed ``url`` (checks of it answer 404 from now on)."""
        with self.lock:
            self.taken_down.add(url)

    def restore(self, url: str) -> None:
        """The content is back at ``url`` (the next removal check finds it up: "reappeared")."""
        with self.lock:
            self.taken_down.discard(url)

    def _answer_check(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        url = handler.path
        with self.lock:
            self.seen[url] = self.seen.get(url, 0) + 1
            gone = url in self.taken_down
        body = b"Not found\n" if gone else b"Demo host: a placeholder for the reported page (no content).\n"
        handler.send_response(404 if gone else 200)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _page(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        with self.lock:
            rows = sorted(self.seen.items())
            gone = set(self.taken_down)
        items = "".join(
            f"<tr><td><code>{html.escape(url)}</code></td><td>{count}</td>"
            f"<td>{'taken down' if url in gone else 'online'}</td>"
            f"<td><form method='post' action='{'/restore' if url in gone else '/take-down'}'>"
            f"<input type='hidden' name='url' value='{html.escape(url, quote=True)}'>"
            f"<button>{'Put back' if url in gone else 'Take down'}</button></form></td></tr>"
            for url, count in rows
        )
        page = (
            "<!doctype html><html lang='en'><meta charset='utf-8'><title>Demo hosting provider</title>"
            "<h1>Demo hosting provider</h1><p>Every address the demo hotlines check comes here. Take one down and "
            "the hotline's next removal check records it as removed (and the reporting hotline sees it).</p>"
            f"<table><tr><th>Address</th><th>Checks</th><th>State</th><th></th></tr>{items}</table>"
        ).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(page)))
        handler.end_headers()
        handler.wfile.write(page)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
