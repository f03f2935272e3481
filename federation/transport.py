"""Mutual-TLS HTTP on both sides of a hop: the client that delivers, and the server that receives.

Client: one keep-alive ``requests.Session`` per destination (a full mutual-TLS handshake costs about
three keep-alive requests), presenting our certificate and trusting only the network CA. ``trust_env``
is off so that ``REQUESTS_CA_BUNDLE`` and proxy variables in the environment cannot silently replace the
network CA or route a hop through a proxy.

Server: cheroot, with the TLS context asking every client for a certificate and verifying any it is
given against the network CA (``CERT_OPTIONAL``). A certificate from another CA, or an expired one,
fails the TLS handshake with the standard TLS alert. A client that presents no certificate completes
the handshake but reaches no view: :mod:`federation.web` authenticates every request before routing
and answers ``401 client_certificate_required`` (a clear, machine-readable error instead of a bare
handshake failure, which is the most common mistake of a new member). cheroot hands the verified peer
certificate (PEM) to the application in ``SSL_CLIENT_CERT``, where the edge checks revocation and reads
the member id.
"""

from __future__ import annotations

import json
import ssl
import threading
from pathlib import Path
from typing import Any

import requests
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from federation.errors import ProtocolError

CONTENT_TYPE = "application/jose+json"


class TransportError(ProtocolError):
    """The hop could not be made (connection refused, TLS failure, timeout, unreadable answer)."""

    status = 502
    code = "transport_failed"


class HTTPTransport:
    """Client side: POSTs JSON bodies to peers over mutual TLS, one kept-alive session per peer."""

    def __init__(
        self, *, certificate: Path, key: Path, ca: Path, connect_timeout: float = 3.0, read_timeout: float = 30.0
    ) -> None:
        self.cert = (str(certificate), str(key))
        self.ca = str(ca)
        self.timeout = (connect_timeout, read_timeout)
        self._sessions: dict[str, requests.Session] = {}
        self._lock = threading.Lock()

    def _session(self, destination: str) -> requests.Session:
        with self._lock:
            session = self._sessions.get(destination)
            if session is None:
                session = requests.Session()
                session.trust_env = False
                session.verify = self.ca
                session.cert = self.cert
                self._sessions[destination] = session
            return session

    def post_json(self, url: str, body: Any, *, destination: str) -> tuple[int, Any]:
        """POST ``body`` as JSON; return the status and the parsed JSON answer.

        Raises:
            TransportError: no HTTP answer, or an answer that is not JSON.
        """
        return self.request("POST", url, destination=destination, body=body)

    def request(self, method: str, url: str, *, destination: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        try:
            response = self._session(destination).request(
                method,
                url,
                data=data,
                headers={"Content-Type": CONTENT_TYPE},
                timeout=self.timeout,
                verify=self.ca,
                cert=self.cert,
            )
        except requests.RequestException as exc:
            # A broken connection cannot be reused; start the next attempt with a fresh session.
            with self._lock:
                self._sessions.pop(destination, None)
            raise TransportError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 204:
            return 204, None
        try:
            return response.status_code, response.json()
        except ValueError as exc:
            raise TransportError(f"{method} {url}: HTTP {response.status_code} with a body that is not JSON") from exc

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()


def server_tls_context(*, certificate: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """A server context that verifies client certificates against the network CA (TLS 1.2 or newer).

    ``CERT_OPTIONAL`` still rejects any certificate that does not verify; only the absence of one is
    left to the application edge, which refuses it on every endpoint not explicitly public.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(certificate), str(key))
    context.load_verify_locations(cafile=str(ca))
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def make_server(
    app: Any, *, host: str, port: int, certificate: Path, key: Path, ca: Path, threads: int = 16
) -> wsgi.Server:
    """Return a cheroot server serving ``app`` over mutual TLS (call ``prepare()`` then ``serve()``)."""
    server = wsgi.Server((host, port), app, numthreads=threads, server_name="hotline-net")
    adapter = BuiltinSSLAdapter(str(certificate), str(key), str(ca))
    adapter.context = server_tls_context(certificate=certificate, key=key, ca=ca)
    server.ssl_adapter = adapter
    return server
