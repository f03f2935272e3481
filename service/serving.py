"""Serving a surface until SIGTERM: cheroot, for the mutual-TLS network surface and the people's surfaces.

The network surface serves mutual TLS itself (it needs the client certificate; federation.transport). The
console and the public surface are plain WSGI apps: in production they run behind a TLS-terminating
reverse proxy (docs/operations.md: nginx and gunicorn), and they serve HTTPS themselves when given a
certificate (the demo does, with a throwaway certificate for 127.0.0.1).
"""

from __future__ import annotations

import logging
import signal
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from flask import Flask

from service.memory import Trimmer

log = logging.getLogger(__name__)


REFUSED_BODY_READ_BYTES = 8 * 1024 * 1024
"""How much of a body refused as too large is still read (and discarded) so its sender gets the answer."""


def reading_refused_bodies(app: Any) -> Any:
    """``app``, reading the rest of a request body it refused as too large before the connection closes.

    cheroot closes the connection after a ``413`` without reading the body (so as not to parse it as the
    next request). A client still sending then meets a reset instead of the answer, and reports a broken
    connection rather than ``body_too_large`` (seen in the tests under load: an SSL EOF while sending).
    So the body is read and dropped first, as Apache's lingering close does, up to
    :data:`REFUSED_BODY_READ_BYTES`; a client that announces more gets the plain close.
    """

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        statuses: list[str] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        result = app(environ, start)
        if statuses and statuses[-1].startswith("413"):
            _discard_body(environ)
        return result

    return serve


def _discard_body(environ: dict[str, Any]) -> None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if not 0 < length <= REFUSED_BODY_READ_BYTES:
        return
    body = environ["wsgi.input"]
    left = length
    try:
        while left > 0:
            chunk = body.read(min(left, 64 * 1024))
            if not chunk:
                return
            left -= len(chunk)
    except OSError:  # The client went away: nothing to answer.
        return


def web_server(app: Flask, *, host: str, port: int, threads: int, cert: str = "", key: str = "") -> wsgi.Server:
    """A cheroot server for a people's surface: HTTPS with ``cert``/``key``, else plain HTTP (behind a proxy)."""
    server = wsgi.Server((host, port), reading_refused_bodies(app), numthreads=threads, server_name="hotline-web")
    server.error_log = _log_through_logging  # type: ignore[method-assign]
    if cert:
        adapter = BuiltinSSLAdapter(cert, key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(Path(cert)), str(Path(key)))
        adapter.context = context
        server.ssl_adapter = adapter
    return server


def _log_through_logging(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    """cheroot's messages (a dropped handshake names the client's address) go through logging, where the
    public surface's filter removes addresses, instead of straight to stderr."""
    logging.getLogger("cheroot").log(level, "%s", msg, exc_info=traceback)


def serve(
    server: wsgi.Server,
    *,
    name: str,
    on_started: Callable[[], None] | None = None,
    on_stopping: Callable[[], None] | None = None,
) -> None:
    """Run ``server`` until SIGINT or SIGTERM; returns after a clean stop.

    ``on_stopping`` runs first when a stop is asked, to release requests that wait (long-polls).
    """
    server.shutdown_timeout = 1  # Idle keep-alive connections must not delay a stop.
    server.prepare()
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    serving = threading.Thread(target=server.serve, name="server", daemon=True)
    serving.start()
    scheme = "https" if server.ssl_adapter is not None else "http"
    log.info("%s listening on %s://%s:%s", name, scheme, server.bind_addr[0], server.bind_addr[1])
    if on_started is not None:
        on_started()
    trimmer = Trimmer()
    try:
        while not stop.wait(0.5) and serving.is_alive():
            trimmer.tick()
    finally:
        if on_stopping is not None:
            on_stopping()
        server.stop()
        log.info("%s stopped", name)
