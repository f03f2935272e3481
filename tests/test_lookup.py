"""Private lookup (docs/protocol.md section 16): the member sends prefixes among decoys and matches the full
values itself. Checked against tests/vectors/lookup.json, which other implementations use too."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

import schemas
from federation.canonical import canonicalize_url, url_fingerprint
from node.cases.triage import DECOYS, MAX_PREFIXES, PREFIX_LENGTH, build_request, match

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "vectors" / "lookup.json").read_text(encoding="utf-8"))


def test_the_vectors_prefixes_follow_the_canonical_fingerprints() -> None:
    assert VECTORS["prefix_length"] == PREFIX_LENGTH
    for entry in VECTORS["url_prefixes"]:
        canonical = canonicalize_url(entry["url"])
        assert canonical == entry["canonical"]
        assert url_fingerprint(canonical) == entry["url_fingerprint"]
        assert entry["url_fingerprint"][:PREFIX_LENGTH] == entry["prefix"]
    for entry in VECTORS["hash_prefixes"]:
        assert entry["value"][:PREFIX_LENGTH] == entry["prefix"]


def test_the_vectors_request_and_answer_are_valid_and_every_invalid_request_is_refused() -> None:
    schemas.validate("lookup-request", VECTORS["request"])
    schemas.validate("lookup-answer", VECTORS["answer"])
    for body in VECTORS["invalid_requests"]:
        with pytest.raises(schemas.SchemaValidationError):
            schemas.validate("lookup-request", body)


@pytest.mark.parametrize("case", VECTORS["matches"], ids=lambda c: c["url_fingerprint"][:8])
def test_the_member_matches_full_values_locally(case: dict[str, Any]) -> None:
    hashes = [(h["alg"], h["value"]) for h in case["hashes"]]
    assert match(VECTORS["answer"], case["url_fingerprint"], hashes) == case["expected"]


def test_a_request_carries_only_prefixes_each_among_decoys() -> None:
    fingerprints = [f"{n:02x}" * 32 for n in (0x11, 0x22)]
    hashes = [("sha256", "ab" * 32), ("md5", "cd" * 16)]
    request = build_request(fingerprints, hashes, rng=random.Random(7))
    body = request.body
    schemas.validate("lookup-request", body)
    text = json.dumps(body)
    for value in [*fingerprints, *(value for _, value in hashes)]:
        assert value not in text and value[:PREFIX_LENGTH] in text
    assert len(body["url_prefixes"]) == 2 * (DECOYS + 1)
    assert len(body["hash_prefixes"]) == 2 * (DECOYS + 1)
    # Decoys look like real prefixes and take the real ones' algorithms, so nothing marks the real ones.
    assert all(len(p) == PREFIX_LENGTH and int(p, 16) >= 0 for p in body["url_prefixes"])
    assert {item["alg"] for item in body["hash_prefixes"]} <= {"sha256", "md5"}
    # Different runs choose different decoys, in a different order.
    again = build_request(fingerprints, hashes, rng=random.Random(8)).body
    assert set(again["url_prefixes"]) != set(body["url_prefixes"])


def test_a_request_never_exceeds_the_schemas_limit() -> None:
    many = [hashlib.sha256(bytes([n])).hexdigest() for n in range(40)]
    body = build_request(many[:16], [], rng=random.Random(1)).body
    assert len(body["url_prefixes"]) == MAX_PREFIXES
    schemas.validate("lookup-request", body)
    empty = build_request([], [], rng=random.Random(1)).body
    assert empty == {"url_prefixes": [], "hash_prefixes": []}


class RecordingExchange:
    """A TLS server with the exchange's own certificate that asks for the member's (as the exchange does)
    and keeps every request body it receives: what crosses the wire, byte for byte."""

    def __init__(self, cert: Path, key: Path, ca: Path) -> None:
        import http.server
        import ssl
        import threading

        bodies = self.bodies = []  # type: list[dict[str, Any]]

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                answer = json.dumps({"prefix_length": 5, "locations": [], "hashes": [], "truncated": False}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        context.load_verify_locations(str(ca))
        context.verify_mode = ssl.CERT_REQUIRED
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_node_sends_the_exchange_prefixes_only(tmp_path: Path) -> None:
    """Triage of three cases with content hashes, through the node's own mutual-TLS transport: every real
    prefix is on the wire among decoys, and no full fingerprint or hash ever is."""
    import datetime as dt

    from certs.devnet import DEV_MEMBERS
    from demo.network import lay_out, register_members, service_app
    from federation.runtime import runtime
    from node.cases.models import Case
    from node.cases.services import Location, case_for_report
    from node.cases.triage import triage
    from node.db import db
    from tests.conftest import TEMPLATES

    layout = lay_out(tmp_path / "net", members=(DEV_MEMBERS[0],))
    register_members(layout, templates=TEMPLATES["sqlite"])
    exchange = RecordingExchange(layout.exchange.cert, layout.exchange.key, layout.ca_cert)
    now = dt.datetime.now(dt.UTC)
    urls = [f"http://wire.example/{n}" for n in range(3)]
    hashes = [("sha256", hashlib.sha256(url.encode()).hexdigest()) for url in urls]
    try:
        app = service_app(layout.spec(DEV_MEMBERS[0].member_id), "worker", EXCHANGE_URL=exchange.url)
        with app.app_context():
            cases = []
            for url, (alg, value) in zip(urls, hashes, strict=True):
                canonical = canonicalize_url(url)
                case_id = case_for_report(db.session, Location(url, canonical, url_fingerprint(canonical)), now=now)
                case = db.session.get(Case, case_id)
                assert case is not None
                case.assessment = {"legal_status": "baseline", "content_hashes": [{"alg": alg, "value": value}]}
                cases.append(case)
            db.session.commit()
            triage(runtime(), db.session, cases, exchange_id="exchange", exchange_url=exchange.url, now=now)
            db.session.commit()
            assert all(c.triage and c.triage["error"] is None and c.known is False for c in cases)
            fingerprints = [c.url_fingerprint for c in cases]
            db.session.remove()
            db.engine.dispose()
    finally:
        exchange.close()
    [body] = exchange.bodies
    wire = json.dumps(body)
    for value in [*fingerprints, *(value for _, value in hashes)]:
        assert value not in wire
    assert {fp[:PREFIX_LENGTH] for fp in fingerprints} <= set(body["url_prefixes"])
    assert {("sha256", v[:PREFIX_LENGTH]) for _, v in hashes} <= {
        (h["alg"], h["prefix"]) for h in body["hash_prefixes"]
    }
    assert len(body["url_prefixes"]) == 3 * (DECOYS + 1) and len(body["hash_prefixes"]) == 3 * (DECOYS + 1)
