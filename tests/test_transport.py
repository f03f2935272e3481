"""The client side of a hop checks the server as the server checks it, before any body leaves.

Real mutual TLS on loopback: a cheroot server (the product's own ``make_server``) presents a chosen
network certificate, and records every request that reaches it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from certs import authority
from certs.devnet import issue_dev_identity, write_dev_network
from demo.network import free_port
from federation.transport import HTTPTransport, PeerIdentityError, TransportError, make_server
from federation.trust import TrustStore

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], list[bytes]]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("transport-pki")
    ids = write_dev_network(root)
    return {
        "root": root,
        "ca_dir": root / "ca",
        "ca": root / "ca" / "ca.pem",
        "crl": root / "ca" / "crl.pem",
        "ids": ids,
    }


class Recorder:
    """A WSGI app that answers JSON and remembers every request body it was sent."""

    def __init__(self, answer: bytes = b"{}") -> None:
        self.bodies: list[bytes] = []
        self.answer = answer

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.bodies.append(environ["wsgi.input"].read(length))
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(self.answer)))])
        return [self.answer]


@pytest.fixture
def serve(pki: dict[str, Any]) -> Iterator[Callable[[Any, WSGIApp], str]]:
    servers: list[Any] = []

    def start(identity: Any, app: WSGIApp) -> str:
        port = free_port()
        server = make_server(
            app, host="127.0.0.1", port=port, certificate=identity.cert, key=identity.key, ca=pki["ca"], threads=4
        )
        server.prepare()
        threading.Thread(target=server.serve, daemon=True).start()
        servers.append(server)
        return f"https://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop()


def node_transport(pki: dict[str, Any], **kwargs: Any) -> HTTPTransport:
    """hotline-nl's client, which may talk only to the exchange."""
    nl = pki["ids"]["hotline-nl"]
    return HTTPTransport(
        certificate=nl.cert,
        key=nl.key,
        ca=pki["ca"],
        trust=TrustStore(pki["ca"], pki["crl"]),
        peer_role="exchange",
        **kwargs,
    )


def test_a_node_talks_to_its_exchange(pki: dict[str, Any], serve: Any) -> None:
    recorder = Recorder()
    url = serve(pki["ids"]["exchange"], recorder)
    status, answer = node_transport(pki).post_json(f"{url}/v1/transactions", {"hello": 1}, destination="exchange")
    assert (status, answer) == (200, {}) and recorder.bodies == [b'{"hello":1}']


def test_a_server_presenting_another_members_certificate_gets_no_body(pki: dict[str, Any], serve: Any) -> None:
    recorder = Recorder()
    url = serve(pki["ids"]["hotline-de"], recorder)  # Another member, where the exchange should be.
    with pytest.raises(PeerIdentityError) as raised:
        node_transport(pki).post_json(f"{url}/v1/transactions", {"report": "secret"}, destination="exchange")
    assert raised.value.code == "peer_identity_mismatch"
    assert recorder.bodies == []


def test_a_server_presenting_a_revoked_exchange_certificate_gets_no_body(
    pki: dict[str, Any], serve: Any, tmp_path: Path
) -> None:
    stolen = issue_dev_identity(pki["ca_dir"], tmp_path, "exchange", role="exchange")
    authority.revoke(
        pki["ca_dir"], x509.load_pem_x509_certificate(stolen.cert.read_bytes()).serial_number, reason="keyCompromise"
    )
    recorder = Recorder()
    url = serve(stolen, recorder)
    with pytest.raises(PeerIdentityError) as raised:
        node_transport(pki).post_json(f"{url}/v1/transactions", {"report": "secret"}, destination="exchange")
    assert raised.value.code == "certificate_revoked"
    assert recorder.bodies == []


def test_a_revocation_ends_a_kept_alive_connections_use(pki: dict[str, Any], serve: Any, tmp_path: Path) -> None:
    soon_revoked = issue_dev_identity(pki["ca_dir"], tmp_path, "exchange", role="exchange")
    recorder = Recorder()
    url = serve(soon_revoked, recorder)
    transport = node_transport(pki)
    assert transport.post_json(f"{url}/v1/transactions", {"n": 1}, destination="exchange")[0] == 200
    authority.revoke(
        pki["ca_dir"],
        x509.load_pem_x509_certificate(soon_revoked.cert.read_bytes()).serial_number,
        reason="keyCompromise",
    )
    with pytest.raises(PeerIdentityError):
        transport.post_json(f"{url}/v1/transactions", {"n": 2}, destination="exchange")
    assert recorder.bodies == [b'{"n":1}']


def test_an_answer_larger_than_the_limit_is_not_read(pki: dict[str, Any], serve: Any) -> None:
    url = serve(pki["ids"]["exchange"], Recorder(answer=b'"' + b"x" * 300_000 + b'"'))
    with pytest.raises(TransportError, match="limit"):
        node_transport(pki, max_answer_bytes=100_000).post_json(f"{url}/v1/transactions", {}, destination="exchange")


def test_the_exchange_pushes_only_to_the_destination_members_certificate(pki: dict[str, Any], serve: Any) -> None:
    exchange = pki["ids"]["exchange"]
    transport = HTTPTransport(
        certificate=exchange.cert,
        key=exchange.key,
        ca=pki["ca"],
        trust=TrustStore(pki["ca"], pki["crl"]),
        peer_role="member",
    )
    recorder = Recorder()
    url = serve(pki["ids"]["hotline-fr"], recorder)  # hotline-de's endpoint answered by hotline-fr's key.
    with pytest.raises(PeerIdentityError):
        transport.post_json(f"{url}/v1/transactions", {"for": "hotline-de"}, destination="hotline-de")
    assert recorder.bodies == []
