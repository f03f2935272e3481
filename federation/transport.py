"""Mutual-TLS HTTP on both sides of a hop: the client that delivers, and the server that receives.

Client: one keep-alive ``requests.Session`` per peer and channel (a full mutual-TLS handshake costs about
three keep-alive requests), presenting our certificate and trusting only the network CA. ``trust_env``
is off so that ``REQUESTS_CA_BUNDLE`` and proxy variables in the environment cannot silently replace the
network CA or route a hop through a proxy. The client checks the server as the server checks it, before
any body leaves: the server's certificate must be unrevoked on our CRL and must name exactly the peer
this hop needs (the configured exchange, with the exchange role, for a node; the destination member,
with the member role, for the exchange). The check runs when a connection is made and again before each
request on it, so a revocation also ends a kept-alive connection's use. Answers are read up to a size
limit and no further.

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

import datetime as dt
import json
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from cryptography import x509
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool

from federation.errors import InternalError, ProtocolError
from federation.trust import TrustStore
from service.serving import reading_refused_bodies

CONTENT_TYPE = "application/jose+json"
MAX_ANSWER_BYTES = 2 * 1024 * 1024
"""The most a client reads of an answer: a transaction (1 MiB at most) and its signature fit easily."""


class TransportError(ProtocolError):
    """The hop could not be made (connection refused, TLS failure, timeout, unreadable answer)."""

    status = 502
    code = "transport_failed"


class PeerIdentityError(TransportError):
    """The server's certificate does not name the peer this hop must reach, or it is revoked."""

    code = "peer_identity_mismatch"


PeerCheck = Callable[[bytes], None]
"""Raises unless the DER certificate a server presented is one this hop may talk to."""


class _PeerRefusedError(OSError):
    """Carries a :class:`PeerIdentityError` through urllib3, which handles connection errors as OSError."""

    def __init__(self, error: ProtocolError) -> None:
        super().__init__(error.message)
        self.error = error


class _CheckedConnection(HTTPSConnection):
    """An HTTPS connection that checks the server's certificate before anything is sent on it."""

    peer_check: PeerCheck

    def connect(self) -> None:
        super().connect()
        self._check_peer()

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._check_peer()  # Again on every request: a revocation ends a kept-alive connection's use.
        super().request(*args, **kwargs)

    def _check_peer(self) -> None:
        sock = self.sock
        der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        try:
            if der is None:
                raise PeerIdentityError("the server presented no certificate")
            self.peer_check(der)
        except ProtocolError as exc:
            self.close()
            raise _PeerRefusedError(exc) from exc


class _CheckedAdapter(HTTPAdapter):
    """A requests adapter whose HTTPS pools make :class:`_CheckedConnection` s for one expected peer."""

    def __init__(self, peer_check: PeerCheck) -> None:
        connection = type("CheckedConnection", (_CheckedConnection,), {"peer_check": staticmethod(peer_check)})
        self._pool_class = type("CheckedPool", (HTTPSConnectionPool,), {"ConnectionCls": connection})
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            **self.poolmanager.pool_classes_by_scheme,
            "https": self._pool_class,
        }


def expect_peer(trust: TrustStore, *, member_id: str, role: str) -> PeerCheck:
    """A check that the server is ``member_id`` with ``role``, and not revoked, by the network CA's word."""

    def check(der: bytes) -> None:
        try:
            certificate = x509.load_der_x509_certificate(der)
        except (ValueError, x509.InvalidVersion) as exc:
            raise PeerIdentityError("the server's certificate cannot be read") from exc
        identity = trust.verify_certificate(certificate, at=dt.datetime.now(dt.UTC))
        if identity.member_id != member_id or identity.role != role:
            raise PeerIdentityError(
                f"the server is {identity.member_id} ({identity.role}), not {member_id} ({role}) as this hop requires"
            )

    return check


class HTTPTransport:
    """Client side: sends JSON to peers over mutual TLS, one kept-alive session per peer and channel.

    ``peer_role`` is the role every server this service talks to must hold ("exchange" for a node,
    "member" for the exchange); the member id it must name is the ``destination`` of each call.
    """

    def __init__(
        self,
        *,
        certificate: Path,
        key: Path,
        ca: Path,
        trust: TrustStore,
        peer_role: str,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.cert = (str(certificate), str(key))
        self.ca = str(ca)
        self.trust = trust
        self.peer_role = peer_role
        self.timeout = (connect_timeout, read_timeout)
        self.max_answer_bytes = max_answer_bytes
        self._sessions: dict[tuple[str, str], requests.Session] = {}
        self._lock = threading.Lock()

    def _session(self, destination: str, channel: str) -> requests.Session:
        with self._lock:
            session = self._sessions.get((destination, channel))
            if session is None:
                session = requests.Session()
                session.trust_env = False
                session.verify = self.ca
                session.cert = self.cert
                session.mount(
                    "https://", _CheckedAdapter(expect_peer(self.trust, member_id=destination, role=self.peer_role))
                )
                self._sessions[(destination, channel)] = session
            return session

    def post_json(self, url: str, body: Any, *, destination: str, channel: str = "") -> tuple[int, Any]:
        """POST ``body`` as JSON; return the status and the parsed JSON answer.

        Raises:
            TransportError: no HTTP answer, an answer that is not JSON, or a server that is not ``destination``.
        """
        return self.request("POST", url, destination=destination, channel=channel, body=body)

    def request(
        self, method: str, url: str, *, destination: str, channel: str = "", body: Any = None
    ) -> tuple[int, Any]:
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        try:
            response = self._session(destination, channel).request(
                method,
                url,
                data=data,
                headers={"Content-Type": CONTENT_TYPE},
                timeout=self.timeout,
                verify=self.ca,
                cert=self.cert,
                stream=True,
            )
            content = self._read_bounded(response)
        except requests.RequestException as exc:
            # A broken connection cannot be reused; start the next attempt with a fresh session.
            self._forget(destination, channel)
            refused = _peer_refusal(exc)
            if refused is not None:
                raise PeerIdentityError(f"{method} {url}: {refused.message}", code=refused.code) from exc
            raise TransportError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        except InternalError:
            self._forget(destination, channel)
            raise
        if response.status_code == 204:
            return 204, None
        try:
            return response.status_code, json.loads(content)
        except (ValueError, RecursionError) as exc:
            raise TransportError(f"{method} {url}: HTTP {response.status_code} with a body that is not JSON") from exc

    def _read_bounded(self, response: requests.Response) -> bytes:
        """Read the answer, refusing (and dropping the connection) past ``max_answer_bytes``."""
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_answer_bytes:
            response.close()
            raise TransportError(f"the answer is {declared} bytes; the limit is {self.max_answer_bytes}")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > self.max_answer_bytes:
                response.close()
                raise TransportError(f"the answer is longer than {self.max_answer_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _forget(self, destination: str, channel: str) -> None:
        with self._lock:
            session = self._sessions.pop((destination, channel), None)
        if session is not None:
            session.close()

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()


def _peer_refusal(exc: BaseException) -> ProtocolError | None:
    """The peer check's refusal somewhere in the chain of an exception requests raised, if any."""
    seen: set[int] = set()
    pending: list[Any] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _PeerRefusedError):
            return current.error
        pending.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
        pending.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
    return None


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
    server = wsgi.Server((host, port), reading_refused_bodies(app), numthreads=threads, server_name="hotline-net")
    adapter = BuiltinSSLAdapter(str(certificate), str(key), str(ca))
    adapter.context = server_tls_context(certificate=certificate, key=key, ca=ca)
    server.ssl_adapter = adapter
    return server
