"""``make bench``: how fast the exchange accepts and routes reports, end-to-end delivery, and the floor.

Starts real processes (the exchange and two member nodes, mutual TLS, SQLite) under a fresh folder in
``var/bench/`` and measures, in one run on this machine:

1. Reports accepted and routed per second by the exchange. The bench process acts as member
   ``hotline-nl``: it signs report documents exactly as ``node/reports/services.py:confirm_report`` does,
   wraps them in transactions signed by hotline-nl for the exchange and POSTs them (JWS flattened JSON)
   to ``/v1/transactions`` over kept-alive mutual-TLS sessions from a few threads; 1, 10 and 50 reports
   per transaction. Only documents whose outcome in the exchange's *signed* receipt is ``accepted``
   count. The hotline-de process is not running during this phase, so the exchange routes and queues
   (its delivery attempts to hotline-de fail and back off); a separate network is used for phase 2.
2. Reports per second delivered end to end: reports submitted through hotline-nl's operator API
   (``POST /api/v1/reports``, the honest path), counted when stored in hotline-de's ``inbound_cases``.
3. Time from "confirmed at origin" (hotline-nl ``reports.confirmed_at``) to "stored at destination"
   (hotline-de ``inbound_cases.received_at``): median and p99 at light load (one report at a time,
   waiting for each) and at full load (phase 2).
4. The floor, measured in the same run: one kept-alive mutual-TLS POST of the same body size to a trivial
   WSGI app on ``federation.transport.make_server``; one ``verify_jws`` of a report document; one
   ``schemas.validate("report", ...)``; one single-row SQLite transaction (WAL, synchronous=NORMAL).

Everything runs on one machine: the load generator shares the CPU cores with the servers. Sizes are flags
(``--help``); the defaults take about two minutes on 2 cores. All child processes are stopped on exit.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import itertools
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # Runnable as ``python bench/throughput.py`` from anywhere.
    sys.path.insert(0, str(REPO))

import nacl.bindings  # noqa: E402
import requests  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402

import schemas  # noqa: E402
from bench.measure import (  # noqa: E402
    cpu_seconds,
    load_average,
    machine,
    ms_summary,
    parse_utc,
    per_call_us,
    percentile,
    read_only,
    record_target,
    say,
    settings_from,
    show_table,
    sqlite_path,
)
from certs.devnet import EXCHANGE_ID, DevMember  # noqa: E402
from demo.network import Layout, Network, OperatorClient, free_port, lay_out, register_members  # noqa: E402
from federation.canonical import url_fingerprint  # noqa: E402
from federation.errors import ProtocolError  # noqa: E402
from federation.signing import Signer, flattened_to_compact, new_message_id, verify_jws  # noqa: E402
from federation.transport import CONTENT_TYPE  # noqa: E402
from federation.trust import TrustStore  # noqa: E402

ORIGIN = DevMember("hotline-nl", "Hotline Netherlands (bench)", ("NL",))
DESTINATION = DevMember("hotline-de", "Hotline Germany (bench)", ("DE",))
REPORT = "hotline.report.v1"
TRANSACTION = "hotline.transaction.v1"
TRANSACTION_RECEIPT = "hotline.transaction-receipt.v1"
CLOCK_SKEW = dt.timedelta(seconds=300)
HEADERS = {"Content-Type": CONTENT_TYPE}


# --- building documents exactly as a node does -------------------------------------------------------


class Documents:
    """Signs report documents and transactions as hotline-nl (node/reports/services.py:confirm_report)."""

    def __init__(self, signer: Signer, *, hashes: int, validate: bool = True) -> None:
        self.signer = signer
        self.hashes = hashes
        self.validate = validate
        self.tag = os.urandom(4).hex()
        self.counter = itertools.count()

    def report_claims(self, now: dt.datetime) -> dict[str, Any]:
        number = next(self.counter)
        url = f"http://bench-{self.tag}.example.de/gallery/{number}/index.html"  # Unique: no duplicates.
        content_hashes = [
            {"alg": "sha256", "value": hashlib.sha256(f"{url}#{index}".encode()).hexdigest()}
            for index in range(self.hashes)
        ]
        header = {
            "url_fingerprint": url_fingerprint(url),
            "content_hashes": content_hashes,
            "hosting_country": "DE",
            "legal_status": "baseline",
            "priority": "normal",
            "confirmed_at": now.isoformat().replace("+00:00", "Z"),
        }
        body = {"url": url, "media_type": "image", "site_type": "image_host", "age_group": "prepubescent"}
        claims = self.signer.claims(EXCHANGE_ID, now=now, header=header, body=body)
        if self.validate:
            schemas.validate("report", claims)
        return claims

    def report(self, now: dt.datetime) -> str:
        return self.signer.sign_compact(REPORT, self.report_claims(now))

    def transaction(self, documents: list[str], now: dt.datetime) -> tuple[str, bytes]:
        claims = self.signer.claims(EXCHANGE_ID, now=now, documents=documents)
        body = self.signer.sign_flattened(TRANSACTION, claims)
        return claims["jti"], json.dumps(body, separators=(",", ":")).encode()

    def report_input(self) -> dict[str, Any]:
        """What an analyst submits to the node's operator API."""
        number = next(self.counter)
        url = f"http://bench-{self.tag}.example.de/album/{number}/page.html"
        return {
            "url": url,
            "hosting_country": "DE",
            "legal_status": "baseline",
            "content_hashes": [
                {"alg": "sha256", "value": hashlib.sha256(f"{url}#{index}".encode()).hexdigest()}
                for index in range(self.hashes)
            ],
            "media_type": "image",
            "site_type": "image_host",
        }


# --- the load generator --------------------------------------------------------------------------------


@dataclass
class LoadResult:
    label: str
    per_message: int
    messages: int
    wall: float
    server_cpu: float
    client_cpu: float
    latencies: list[float]
    accepted: int = 0
    other_outcomes: dict[str, int] = field(default_factory=dict)
    http_errors: dict[str, int] = field(default_factory=dict)

    @property
    def reports(self) -> int:
        return self.messages * self.per_message

    @property
    def accepted_per_second(self) -> float:
        return self.accepted / self.wall

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.wall


def mtls_session(cert: tuple[str, str]) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace verify= (see the brief).
    session.cert = cert
    return session


def drive(
    url: str,
    bodies: list[bytes],
    *,
    threads: int,
    cert: tuple[str, str],
    ca: str,
    warm_up: Callable[[], bytes],
    server_pid: int,
) -> tuple[float, float, float, list[tuple[int | None, bytes, float]]]:
    """POST every body from ``threads`` kept-alive sessions; return wall, server CPU, client CPU, results."""
    sessions = []
    for _ in range(threads):
        session = mtls_session(cert)
        response = session.post(url, data=warm_up(), headers=HEADERS, verify=ca, timeout=60)  # Handshake now.
        response.raise_for_status()
        sessions.append(session)
    indices = itertools.count()  # next() on a count is atomic under the GIL.
    results: list[tuple[int | None, bytes, float]] = [(None, b"", 0.0)] * len(bodies)
    barrier = threading.Barrier(threads + 1)

    def worker(session: requests.Session) -> None:
        barrier.wait()
        while (index := next(indices)) < len(bodies):
            started = time.perf_counter()
            try:
                response = session.post(url, data=bodies[index], headers=HEADERS, verify=ca, timeout=120)
                results[index] = (response.status_code, response.content, time.perf_counter() - started)
            except requests.RequestException as exc:
                results[index] = (None, type(exc).__name__.encode(), time.perf_counter() - started)

    workers = [threading.Thread(target=worker, args=(session,), daemon=True) for session in sessions]
    for thread in workers:
        thread.start()
    server_before, client_before = cpu_seconds(server_pid), time.process_time()
    barrier.wait()
    started = time.perf_counter()
    for thread in workers:
        thread.join()
    wall = time.perf_counter() - started
    server_cpu, client_cpu = cpu_seconds(server_pid) - server_before, time.process_time() - client_before
    for session in sessions:
        session.close()
    return wall, server_cpu, client_cpu, results


def count_outcomes(
    result: LoadResult, responses: list[tuple[int | None, bytes, float]], jtis: list[str], trust: TrustStore
) -> None:
    """Verify each signed receipt (after the timed window) and count per-document outcomes."""
    for (status, content, _), jti in zip(responses, jtis, strict=True):
        if status != 200:
            key = str(status) if status is not None else content.decode(errors="replace")
            result.http_errors[key] = result.http_errors.get(key, 0) + 1
            continue
        try:
            receipt = verify_jws(
                flattened_to_compact(json.loads(content)),
                expected_typ=TRANSACTION_RECEIPT,
                trust=trust,
                now=dt.datetime.now(dt.UTC),
                clock_skew=CLOCK_SKEW,
            )
        except (ProtocolError, ValueError) as exc:
            key = f"receipt_unverifiable:{getattr(exc, 'code', type(exc).__name__)}"
            result.http_errors[key] = result.http_errors.get(key, 0) + 1
            continue
        claims = receipt.claims
        if receipt.author.member_id != EXCHANGE_ID or claims["aud"] != ORIGIN.member_id or claims["transaction"] != jti:
            result.http_errors["receipt_invalid"] = result.http_errors.get("receipt_invalid", 0) + 1
            continue
        for item in claims["results"]:
            if item["outcome"] == "accepted":
                result.accepted += 1
            else:
                key = f"{item['outcome']}:{item.get('error', '')}"
                result.other_outcomes[key] = result.other_outcomes.get(key, 0) + 1


def exchange_load(
    layout: Layout,
    network: Network,
    docs: Documents,
    trust: TrustStore,
    *,
    label: str,
    per_message: int,
    messages: int,
    threads: int,
) -> LoadResult:
    member = layout.members[ORIGIN.member_id]
    now = dt.datetime.now(dt.UTC)
    prepared = [docs.transaction([docs.report(now) for _ in range(per_message)], now) for _ in range(messages)]
    jtis, bodies = [jti for jti, _ in prepared], [body for _, body in prepared]
    wall, server_cpu, client_cpu, responses = drive(
        f"{layout.exchange.url}/v1/transactions",
        bodies,
        threads=threads,
        cert=(str(member.cert), str(member.key)),
        ca=str(layout.ca_cert),
        warm_up=lambda: docs.transaction([], dt.datetime.now(dt.UTC))[1],
        server_pid=network.processes[EXCHANGE_ID].surfaces["network"].process.pid,
    )
    result = LoadResult(
        label=label,
        per_message=per_message,
        messages=messages,
        wall=wall,
        server_cpu=server_cpu,
        client_cpu=client_cpu,
        latencies=[latency for _, _, latency in responses],
    )
    count_outcomes(result, responses, jtis, trust)
    return result


# --- the floor -------------------------------------------------------------------------------------------


def serve_floor(port: int, cert: str, key: str, ca: str) -> None:
    """Child-process mode: a trivial WSGI app behind the product's mutual-TLS server."""
    from federation.transport import make_server

    answer = b'{"ok":true}'

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(length)
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
        return [answer]

    server = make_server(app, host="127.0.0.1", port=port, certificate=Path(cert), key=Path(key), ca=Path(ca))
    server.prepare()
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    server.serve()


@dataclass
class Floor:
    post_latency_us: float
    post_server_cpu_us: float
    post_concurrent_per_second: float
    post_concurrent_server_cpu_us: float
    body_bytes: int
    verify_jws_us: float
    ed25519_verify_us: float
    """libsodium's verification, which verify_jws uses."""
    openssl_verify_us: float
    """The same verification by OpenSSL (cryptography), for comparison."""
    validate_us: float
    sqlite_insert_us: float

    @property
    def cpu_sum_us(self) -> float:
        """The issue's floor: POST (server CPU) + verify_jws + schema validation + one insert."""
        return self.post_server_cpu_us + self.verify_jws_us + self.validate_us + self.sqlite_insert_us

    @property
    def latency_sum_us(self) -> float:
        return self.post_latency_us + self.verify_jws_us + self.validate_us + self.sqlite_insert_us


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"floor server exited with {process.returncode}")
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("floor server did not start")


def measure_floor(layout: Layout, docs: Documents, trust: TrustStore, args: argparse.Namespace) -> Floor:
    member = layout.members[ORIGIN.member_id]
    cert, ca = (str(member.cert), str(member.key)), str(layout.ca_cert)
    now = dt.datetime.now(dt.UTC)
    body = docs.transaction([docs.report(now)], now)[1]  # Same size as a single-report transaction.
    port = free_port()
    exchange = layout.exchange
    log = open(layout.root / "logs" / "floor-server.log", "ab")  # noqa: SIM115 - the child owns it.
    process = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-floor",
            str(port),
            str(exchange.cert),
            str(exchange.key),
            ca,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    try:
        wait_listening(port, process)
        url = f"https://127.0.0.1:{port}/v1/transactions"
        # Sequential: latency and server CPU of one kept-alive mutual-TLS POST.
        session = mtls_session(cert)
        for _ in range(20):
            session.post(url, data=body, headers=HEADERS, verify=ca, timeout=30).raise_for_status()
        latencies = []
        cpu_before = cpu_seconds(process.pid)
        for _ in range(args.floor_posts):
            started = time.perf_counter()
            session.post(url, data=body, headers=HEADERS, verify=ca, timeout=30).raise_for_status()
            latencies.append(time.perf_counter() - started)
        post_cpu = (cpu_seconds(process.pid) - cpu_before) / args.floor_posts
        session.close()
        # Concurrent: what the TLS server alone sustains with the same client threads.
        count = args.floor_posts * 2
        wall, server_cpu, _, results = drive(
            url, [body] * count, threads=args.threads, cert=cert, ca=ca, warm_up=lambda: body, server_pid=process.pid
        )
        if any(status != 200 for status, _, _ in results):
            raise RuntimeError("the floor server refused a request")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    # In-process: one verification, one validation, one insert.
    token = docs.report(now)
    claims = docs.report_claims(now)
    verify_us = per_call_us(
        lambda: verify_jws(token, expected_typ=REPORT, trust=trust, now=now, clock_skew=CLOCK_SKEW), args.floor_calls
    )
    public_key = docs.signer.certificate.public_key()
    assert isinstance(public_key, ed25519.Ed25519PublicKey)
    signing_input, _, signature_b64 = token.rpartition(".")
    signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
    raw_key, signed = public_key.public_bytes_raw(), signature + signing_input.encode()
    ed25519_us = per_call_us(lambda: nacl.bindings.crypto_sign_open(signed, raw_key), args.floor_calls)
    openssl_us = per_call_us(lambda: public_key.verify(signature, signing_input.encode()), args.floor_calls)
    validate_us = per_call_us(lambda: schemas.validate("report", claims), args.floor_calls)
    insert_us = sqlite_insert_floor(layout.root / "db" / "floor.db", args.floor_calls)
    return Floor(
        post_latency_us=statistics.median(latencies) * 1e6,
        post_server_cpu_us=post_cpu * 1e6,
        post_concurrent_per_second=count / wall,
        post_concurrent_server_cpu_us=server_cpu / count * 1e6,
        body_bytes=len(body),
        verify_jws_us=verify_us,
        ed25519_verify_us=ed25519_us,
        openssl_verify_us=openssl_us,
        validate_us=validate_us,
        sqlite_insert_us=insert_us,
    )


def sqlite_insert_floor(path: Path, count: int) -> float:
    """One single-row transaction in WAL mode with synchronous=NORMAL (a row the size of a case)."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("CREATE TABLE IF NOT EXISTS rows (id TEXT PRIMARY KEY, origin TEXT, fingerprint TEXT, at TEXT)")
    numbers = itertools.count()

    def insert() -> None:
        number = next(numbers)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO rows VALUES (?, ?, ?, ?)",
            (f"{number:036d}", "hotline-nl", hashlib.sha256(str(number).encode()).hexdigest(), "2025-01-01 00:00:00"),
        )
        connection.execute("COMMIT")

    try:
        return per_call_us(insert, count)
    finally:
        connection.close()


# --- end to end ------------------------------------------------------------------------------------------


@dataclass
class Latencies:
    """Per report, in ms: confirmed at origin -> stored at destination, and its two hops."""

    total: list[float] = field(default_factory=list)
    to_exchange: list[float] = field(default_factory=list)
    to_destination: list[float] = field(default_factory=list)


@dataclass
class EndToEnd:
    light_ids: list[str]
    light_client_ms: list[float]
    load_ids: list[str]
    submit_wall: float
    delivered_wall: float
    receipts_wall: float | None
    stored: int
    origin_cpu: float
    exchange_cpu: float
    destination_cpu: float
    busy: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Per process: CPU seconds per second while the API was being loaded, then while the backlog drained."""
    light: Latencies = field(default_factory=Latencies)
    load: Latencies = field(default_factory=Latencies)


def count_rows(path: Path, query: str, parameters: Sequence[Any] = ()) -> int:
    with read_only(path) as connection:
        value: int = connection.execute(query, parameters).fetchone()[0]
        return value


def end_to_end(layout: Layout, network: Network, docs: Documents, args: argparse.Namespace) -> EndToEnd:
    origin_db = sqlite_path(layout.members[ORIGIN.member_id].database)
    destination_db = sqlite_path(layout.members[DESTINATION.member_id].database)
    client = network.client(ORIGIN.member_id)

    def stored(report_id: str) -> bool:
        return bool(count_rows(destination_db, "SELECT count(*) FROM inbound_cases WHERE id = ?", (report_id,)))

    def one_at_a_time(count: int) -> tuple[list[str], list[float]]:
        ids, client_ms = [], []
        for _ in range(count):
            started = time.perf_counter()
            report_id = client.report(**docs.report_input())["id"]
            deadline = time.monotonic() + 30
            while not stored(report_id):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"report {report_id} not stored at {DESTINATION.member_id} within 30 s")
                time.sleep(0.001)
            client_ms.append((time.perf_counter() - started) * 1000)
            ids.append(report_id)
        return ids, client_ms

    one_at_a_time(3)  # Warm up every hop's kept-alive connection.
    light_ids, light_client_ms = one_at_a_time(args.light_reports)
    time.sleep(1.5)  # Let the receipts of the light phase settle before loading.

    # Full load: several operators submit through hotline-nl's API at once.
    baseline = count_rows(destination_db, "SELECT count(*) FROM inbound_cases")
    pids = {
        f"{member_id} {surface}": process.process.pid
        for member_id, service in network.processes.items()
        for surface, process in service.surfaces.items()
        if process.running
    }
    cpu_before = {member_id: cpu_seconds(pid) for member_id, pid in pids.items()}
    inputs = [docs.report_input() for _ in range(args.e2e_reports)]
    load_ids: list[str] = []
    lock = threading.Lock()
    failures: list[str] = []
    indices = itertools.count()
    submitted = threading.Event()

    network.client(ORIGIN.member_id)  # Its console is running; each submitter gets its own session.

    batch = max(1, args.e2e_batch)

    def submitter() -> None:
        operator = OperatorClient(layout.members[ORIGIN.member_id], layout.web.ca)
        try:
            while (index := next(indices) * batch) < len(inputs):
                chunk = inputs[index : index + batch]
                try:
                    if batch == 1:
                        ids = [operator.report(**chunk[0])["id"]]
                    else:
                        answer = operator.request("POST", "/api/v1/reports/batch", json={"reports": chunk})
                        if answer.status_code != 200:
                            raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:200]}")
                        results = answer.json()["results"]
                        ids = [r["id"] for r in results if r["outcome"] == "accepted"]
                        failures.extend(r.get("error", "?") for r in results if r["outcome"] != "accepted")
                except (RuntimeError, requests.RequestException) as exc:
                    failures.extend([str(exc)[:200]] * len(chunk))
                    continue
                with lock:
                    load_ids.extend(ids)
        finally:
            operator.close()

    started = time.perf_counter()
    workers = [threading.Thread(target=submitter, daemon=True) for _ in range(args.e2e_threads)]
    for thread in workers:
        thread.start()

    def join_all() -> None:
        for thread in workers:
            thread.join()
        submitted.set()

    threading.Thread(target=join_all, daemon=True).start()
    submit_wall = delivered_wall = 0.0
    deadline = time.monotonic() + args.e2e_timeout
    count = baseline
    cpu_submitted = cpu_before
    while True:
        if submitted.is_set() and not submit_wall:
            submit_wall = time.perf_counter() - started
            cpu_submitted = {member_id: cpu_seconds(pid) for member_id, pid in pids.items()}
        count = count_rows(destination_db, "SELECT count(*) FROM inbound_cases")
        if count - baseline >= len(inputs) - len(failures) and submitted.is_set():
            delivered_wall = time.perf_counter() - started
            break
        if time.monotonic() > deadline:
            delivered_wall = time.perf_counter() - started
            break
        time.sleep(0.01)
    cpu_after = {member_id: cpu_seconds(pid) for member_id, pid in pids.items()}
    busy = {
        member_id: (
            (cpu_submitted[member_id] - cpu_before[member_id]) / max(submit_wall, 1e-9),
            (cpu_after[member_id] - cpu_submitted[member_id]) / max(delivered_wall - submit_wall, 1e-9),
        )
        for member_id in pids
    }

    def member_cpu(member_id: str) -> float:
        """CPU seconds spent by every surface process of one member during the load phase."""
        return sum(cpu_after[key] - cpu_before[key] for key in pids if key.split(" ")[0] == member_id)

    if failures:
        say(f"  ! {len(failures)} submissions refused, e.g. {failures[0]}")
    # Receipts back at the origin (signed by hotline-de, relayed by the exchange).
    receipts_wall = None
    while time.monotonic() < deadline:
        waiting = count_rows(
            origin_db,
            "SELECT count(*) FROM reports WHERE received_at IS NULL AND id IN (SELECT value FROM json_each(?))",
            (json.dumps(load_ids),),
        )
        if waiting == 0:
            receipts_wall = time.perf_counter() - started
            break
        time.sleep(0.02)
    result = EndToEnd(
        light_ids=light_ids,
        light_client_ms=light_client_ms,
        load_ids=load_ids,
        submit_wall=submit_wall,
        delivered_wall=delivered_wall,
        receipts_wall=receipts_wall,
        stored=count - baseline,
        origin_cpu=member_cpu(ORIGIN.member_id),
        # Every exchange process (a second one, "exchange-b", shares the identity and the database).
        exchange_cpu=sum(cpu_after[key] - cpu_before[key] for key in pids if key.startswith(EXCHANGE_ID)),
        destination_cpu=member_cpu(DESTINATION.member_id),
        busy=busy,
    )
    exchange_db = layout.exchange.database
    result.light = confirm_to_stored(origin_db, exchange_db, destination_db, light_ids)
    result.load = confirm_to_stored(origin_db, exchange_db, destination_db, load_ids)
    client.close()
    return result


def confirm_to_stored(origin_db: Path, exchange_db: str, destination_db: Path, ids: list[str]) -> Latencies:
    """hotline-nl ``reports.confirmed_at`` -> hotline-de ``inbound_cases.received_at`` (and the exchange's
    ``cases.created_at`` in between, which splits the two hops). All three are the same machine's UTC clock."""
    result = Latencies()
    if not ids:
        return result
    wanted = (json.dumps(ids),)

    def column(path: Path, query: str) -> dict[str, dt.datetime]:
        with read_only(path) as connection:
            return {key: parse_utc(value) for key, value in connection.execute(query, wanted)}

    confirmed = column(origin_db, "SELECT id, confirmed_at FROM reports WHERE id IN (SELECT value FROM json_each(?))")
    if exchange_db.startswith("sqlite:"):
        query = "SELECT id, created_at FROM cases WHERE id IN (SELECT value FROM json_each(?))"
        routed = column(sqlite_path(exchange_db), query)
    else:
        import psycopg

        with psycopg.connect(exchange_db.replace("postgresql+psycopg://", "postgresql://")) as connection:
            rows = connection.execute("SELECT id, created_at FROM cases WHERE id = ANY(%s)", (ids,)).fetchall()
            routed = {key: value for key, value in rows}
    received = column(
        destination_db, "SELECT id, received_at FROM inbound_cases WHERE id IN (SELECT value FROM json_each(?))"
    )
    for report_id in ids:
        if report_id in confirmed and report_id in received:
            result.total.append((received[report_id] - confirmed[report_id]).total_seconds() * 1000)
            if report_id in routed:
                result.to_exchange.append((routed[report_id] - confirmed[report_id]).total_seconds() * 1000)
                result.to_destination.append((received[report_id] - routed[report_id]).total_seconds() * 1000)
    return result


# --- optional: where the exchange's CPU goes (in process, no TLS) -------------------------------------


PROFILE_GROUPS = (
    ("sqlalchemy", "SQLAlchemy (ORM + Core)"),
    ("sqlite3", "sqlite3 (C)"),
    ("jsonschema", "jsonschema + referencing"),
    ("referencing", "jsonschema + referencing"),
    ("joserfc", "joserfc"),
    ("cryptography", "cryptography (C/Rust)"),
    ("nacl", "PyNaCl (libsodium)"),
    ("flask", "Flask + Werkzeug"),
    ("werkzeug", "Flask + Werkzeug"),
)


def profile_group(filename: str, name: str) -> str:
    for marker, label in PROFILE_GROUPS:
        if marker in filename or (filename == "~" and marker in name):
            return label
    if filename.startswith(str(REPO)) and "/.venv/" not in filename:
        return "product code"
    return "other (stdlib, json, base64, ...)"


def exchange_in_process(root: Path, settings: dict[str, Any], **config: Any) -> tuple[Layout, Any]:
    """The exchange's app in this process (no TLS, no HTTP; the Flask test client calls it), on a fresh
    layout whose hotline-de is not running; ``config`` overrides its settings."""
    import tomllib

    layout = lay_out(root, members=(ORIGIN, DESTINATION), settings=settings)
    register_members(layout)
    os.environ["EXCHANGE_CONFIG"] = str(layout.exchange.config)
    with open(layout.exchange.config, "rb") as handle:
        loaded = tomllib.load(handle)
    from exchange import create_app

    app = create_app({**loaded, "SCHEDULER_ENABLED": False, **config})
    logging.getLogger("federation.delivery").setLevel(logging.CRITICAL)  # hotline-de is down, on purpose.
    with app.app_context():
        app.extensions["hotline"].db.create_all()
    return layout, app


def _timed(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` of a cursor, adding the thread CPU each call takes to its connection's ``spent_ns``."""

    def call(self: sqlite3.Cursor, *args: Any) -> Any:
        started = time.thread_time_ns()
        try:
            return method(self, *args)
        finally:
            self.connection.spent_ns += time.thread_time_ns() - started  # type: ignore[attr-defined]

    return call


class _TimedCursor(sqlite3.Cursor):
    """A cursor whose calls into the driver (statements and the fetches that step through their rows) are
    counted by its connection."""

    execute = _timed(sqlite3.Cursor.execute)
    executemany = _timed(sqlite3.Cursor.executemany)
    fetchone = _timed(sqlite3.Cursor.fetchone)
    fetchmany = _timed(sqlite3.Cursor.fetchmany)
    fetchall = _timed(sqlite3.Cursor.fetchall)


class _TimedSQLite(sqlite3.Connection):
    """SQLite's own work, counted: every statement, fetch and commit on this connection (thread CPU)."""

    spent_ns = 0
    committing_ns = 0
    """Of ``spent_ns``, the commits': writing the pages the transaction changed to the write-ahead log."""

    def cursor(self, factory: Any = _TimedCursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    def commit(self) -> None:
        started = time.thread_time_ns()
        try:
            super().commit()
        finally:
            spent = time.thread_time_ns() - started
            self.spent_ns += spent
            self.committing_ns += spent


@dataclass
class Budget:
    """One single-report transaction at the exchange, in process, and the parts of it nothing can remove:
    the protocol's two signature checks and one signature, and SQLite's own work for the rows it stores."""

    transactions: int
    in_process_us: float
    """CPU of the whole transaction through the Flask test client (no TLS, no HTTP parsing)."""
    sqlite_us: float
    """Thread CPU inside the driver: every statement, fetch and the commit (SQLite and pysqlite's binding)."""
    commit_us: float
    """Of ``sqlite_us``, the commit's."""
    verify_transaction_us: float
    verify_document_us: float
    sign_receipt_us: float
    wal_bytes: float
    """What one transaction's commit appends to the write-ahead log (pages times 4 KB and their headers)."""

    def protocol_and_store_us(self, floor: Floor) -> float:
        """The POST (the floor's), both signature checks, the receipt's signature and SQLite's own work."""
        return (
            floor.post_server_cpu_us
            + self.verify_transaction_us
            + self.verify_document_us
            + self.sign_receipt_us
            + self.sqlite_us
        )


def single_report_budget(root: Path, settings: dict[str, Any], args: argparse.Namespace) -> Budget:
    """Measure :class:`Budget` on an exchange app in this process, its SQLite connections timed."""
    layout, app = exchange_in_process(
        root, settings, SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"factory": _TimedSQLite}}
    )
    runtime = app.extensions["hotline"]
    runtime.worker.poke = lambda _destination: None  # hotline-de is down: no delivery attempts in the figure.
    member = layout.members[ORIGIN.member_id]
    docs = Documents(Signer.from_files(member.key, member.cert), hashes=args.hashes)  # This layout's own PKI.
    client = app.test_client()
    environ = {"SSL_CLIENT_CERT": member.cert.read_text(), "SSL_CLIENT_VERIFY": "SUCCESS"}
    connections: list[_TimedSQLite] = []

    def send(count: int) -> float:
        now = dt.datetime.now(dt.UTC)
        bodies = [docs.transaction([docs.report(now)], now)[1] for _ in range(count)]
        started = time.thread_time()
        for body in bodies:
            response = client.post("/v1/transactions", data=body, headers=HEADERS, environ_base=environ)
            if response.status_code != 200:
                raise RuntimeError(f"exchange refused: {response.status_code} {response.text[:300]}")
        return (time.thread_time() - started) / count * 1e6

    from sqlalchemy import event

    with app.app_context():
        engine = runtime.db.engine
    event.listen(engine, "connect", lambda dbapi_connection, _record: connections.append(dbapi_connection))
    engine.dispose()
    send(50)  # Warm up: statements compiled, caches filled, the connection made.
    database = sqlite_path(layout.exchange.database)
    wal = Path(f"{database}-wal")
    with sqlite3.connect(database) as checkpoint:
        checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    spent_before = sum(connection.spent_ns for connection in connections)
    committing_before = sum(connection.committing_ns for connection in connections)
    in_process_us = send(args.budget_transactions)
    sqlite_us = (sum(connection.spent_ns for connection in connections) - spent_before) / args.budget_transactions / 1e3
    commit_us = (
        (sum(connection.committing_ns for connection in connections) - committing_before)
        / args.budget_transactions
        / 1e3
    )
    wal_bytes = wal.stat().st_size / args.budget_transactions if wal.exists() else 0.0
    runtime.worker.shutdown()
    engine.dispose()

    now = dt.datetime.now(dt.UTC)
    trust = TrustStore(layout.ca_cert, layout.crl)
    token = flattened_to_compact(json.loads(docs.transaction([docs.report(now)], now)[1]))
    verify_transaction_us = per_call_us(
        lambda: verify_jws(token, expected_typ=TRANSACTION, trust=trust, now=now, clock_skew=CLOCK_SKEW, fresh=True),
        args.floor_calls,
    )
    document = docs.report(now)
    verify_document_us = per_call_us(
        lambda: verify_jws(document, expected_typ=REPORT, trust=trust, now=now, clock_skew=CLOCK_SKEW),
        args.floor_calls,
    )
    receipt = docs.signer.claims(
        ORIGIN.member_id,
        now=now,
        transaction=new_message_id(),
        results=[{"id": new_message_id(), "outcome": "accepted"}],
    )
    sign_receipt_us = per_call_us(lambda: docs.signer.sign_flattened(TRANSACTION_RECEIPT, receipt), args.floor_calls)
    return Budget(
        transactions=args.budget_transactions,
        in_process_us=in_process_us,
        sqlite_us=sqlite_us,
        commit_us=commit_us,
        verify_transaction_us=verify_transaction_us,
        verify_document_us=verify_document_us,
        sign_receipt_us=sign_receipt_us,
        wal_bytes=wal_bytes,
    )


def profile_in_process(root: Path, settings: dict[str, Any], args: argparse.Namespace) -> None:
    """Run the exchange app in this process (Flask test client: no TLS, no HTTP) and show where CPU goes.

    Also an A/B: the same transactions with the delivery worker's pokes switched off (the worker otherwise
    tries to deliver to hotline-de, which is down, after every commit).
    """
    import cProfile
    import pstats

    from sqlalchemy import event

    layout, app = exchange_in_process(root, settings)
    runtime = app.extensions["hotline"]
    statements = itertools.count()
    with app.app_context():
        # Counted by SQLite itself (BEGIN and COMMIT included): hot-path statements skip SQLAlchemy's events.
        event.listen(
            runtime.db.engine,
            "connect",
            lambda dbapi_connection, _record: dbapi_connection.set_trace_callback(lambda _sql: next(statements)),
        )
        runtime.db.engine.dispose()
    member = layout.members[ORIGIN.member_id]
    docs = Documents(Signer.from_files(member.key, member.cert), hashes=args.hashes)
    client = app.test_client()
    environ = {"SSL_CLIENT_CERT": member.cert.read_text(), "SSL_CLIENT_VERIFY": "SUCCESS"}
    real_poke = runtime.worker.poke

    def send(bodies: list[bytes]) -> tuple[float, float]:
        cpu, wall = time.process_time(), time.perf_counter()
        for body in bodies:
            response = client.post("/v1/transactions", data=body, headers=HEADERS, environ_base=environ)
            if response.status_code != 200:
                raise RuntimeError(f"exchange refused: {response.status_code} {response.text[:300]}")
        return time.perf_counter() - wall, time.process_time() - cpu

    def bodies(per_message: int, count: int) -> list[bytes]:
        now = dt.datetime.now(dt.UTC)
        return [docs.transaction([docs.report(now) for _ in range(per_message)], now)[1] for _ in range(count)]

    say("\n== In-process profile of the exchange app (Flask test client, no TLS; bench = hotline-nl) ==")
    rows = []
    for per_message, count in ((1, args.profile_messages), (50, max(2, args.profile_messages // 50))):
        send(bodies(per_message, 10))  # Warm up.
        for pokes in (True, False):
            runtime.worker.poke = real_poke if pokes else (lambda _destination: None)
            batch = bodies(per_message, count)
            first = next(statements)
            wall, cpu = send(batch)
            sql = (next(statements) - first - 1) / (count * per_message)
            rows.append(
                (
                    f"{per_message}/tx, delivery pokes {'on' if pokes else 'off'}",
                    count * per_message,
                    f"{wall / (count * per_message) * 1e6:.0f}",
                    f"{cpu / (count * per_message) * 1e6:.0f}",
                    f"{count * per_message / wall:.0f}",
                    f"{sql:.1f}",
                )
            )
        runtime.worker.poke = real_poke
        profiler = cProfile.Profile()
        batch = bodies(per_message, count)
        profiler.enable()
        send(batch)
        profiler.disable()
        groups: dict[str, float] = {}
        for (filename, _, name), (_, _, own, _, _) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
            group = profile_group(filename, name)
            groups[group] = groups.get(group, 0.0) + own
        total = sum(groups.values())
        say(f"  cProfile, {per_message} report(s) per transaction, share of own time (cProfile inflates Python code):")
        for group, own in sorted(groups.items(), key=lambda item: -item[1]):
            say(f"    {100 * own / total:5.1f}%  {group}")
    runtime.worker.shutdown()
    columns = ("variant", "reports", "wall µs/report", "CPU µs/report", "reports/s", "SQL/report (with BEGIN, COMMIT)")
    show_table(columns, rows)


# --- the run ---------------------------------------------------------------------------------------------


def start_network(root: Path, settings: dict[str, Any], *member_ids: str) -> tuple[Layout, Network]:
    layout = lay_out(root, members=(ORIGIN, DESTINATION), settings=settings)
    register_members(layout)
    network = Network(layout)
    network.start(*member_ids)
    return layout, network


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The bench is one member sending as fast as it can: lift the per-member rate limits it would hit.
    settings = {"RATE_LIMIT_TRANSACTIONS": "100000/second", **settings_from(args.setting)}
    base = REPO / "var" / "bench"
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=base))
    report: dict[str, Any] = {"machine": machine(), "settings": settings, "args": vars(args).copy()}
    say("Machine")
    for key, value in report["machine"].items():
        say(f"  {key:<10} {value}")
    say(f"  folder     {root}")
    networks: list[Network] = []
    succeeded = False
    try:
        # Phase 1 and the floor: only the exchange runs; the bench is hotline-nl; hotline-de is down.
        say("\nStarting the exchange alone (hotline-de not running: accepted reports queue for it)…")
        layout, network = start_network(root / "exchange-only", settings, EXCHANGE_ID)
        networks.append(network)
        trust = TrustStore(layout.ca_cert, layout.crl)
        member = layout.members[ORIGIN.member_id]
        signer = Signer.from_files(member.key, member.cert)
        docs = Documents(signer, hashes=args.hashes)

        say("Measuring the floor…")
        floor = measure_floor(layout, docs, trust, args)
        report["floor"] = vars(floor) | {"cpu_sum_us": floor.cpu_sum_us, "latency_sum_us": floor.latency_sum_us}

        say("Phase 1: transactions POSTed to the exchange…")
        results = [
            exchange_load(
                layout,
                network,
                docs,
                trust,
                label="1 report/tx, 1 client (latency)",
                per_message=1,
                messages=args.sequential,
                threads=1,
            ),
        ]
        for per_message, messages in ((1, args.single), (10, args.batch10), (50, args.batch50)):
            if messages:
                results.append(
                    exchange_load(
                        layout,
                        network,
                        docs,
                        trust,
                        label=f"{per_message} report(s)/tx, {args.threads} clients",
                        per_message=per_message,
                        messages=messages,
                        threads=args.threads,
                    )
                )
        network.stop()
        say("Measuring what a single-report transaction cannot do without (in process)…")
        budget = single_report_budget(root / "budget", settings, args)
        report["budget"] = vars(budget) | {"protocol_and_store_us": budget.protocol_and_store_us(floor)}
        with read_only(sqlite_path(layout.exchange.database)) as connection:
            routed = dict(connection.execute("SELECT destination, count(*) FROM outbox GROUP BY destination"))
            cases = connection.execute("SELECT count(*) FROM cases").fetchone()[0]
        report["routed"] = {"cases": cases, "outbox": routed}
        report["exchange"] = [
            {
                "label": r.label,
                "per_message": r.per_message,
                "messages": r.messages,
                "reports": r.reports,
                "accepted": r.accepted,
                "other_outcomes": r.other_outcomes,
                "http_errors": r.http_errors,
                "wall_s": r.wall,
                "accepted_per_s": r.accepted_per_second,
                "messages_per_s": r.messages_per_second,
                "latency_ms_median": statistics.median(r.latencies) * 1000,
                "latency_ms_p99": percentile(r.latencies, 0.99) * 1000,
                "server_cpu_s": r.server_cpu,
                "server_cpu_us_per_message": r.server_cpu / r.messages * 1e6,
                "server_cpu_us_per_report": r.server_cpu / r.reports * 1e6,
                "client_cpu_s": r.client_cpu,
            }
            for r in results
        ]

        # Phases 2 and 3 on a fresh network with every process running.
        say("Phases 2-3: fresh network, exchange + hotline-nl + hotline-de, reports via hotline-nl's API…")
        layout2, network2 = start_network(root / "end-to-end", settings)
        networks.append(network2)
        e2e = end_to_end(layout2, network2, Documents(signer, hashes=args.hashes), args)
        network2.stop()
        report["end_to_end"] = {
            "light_reports": len(e2e.light_ids),
            "light_latency_ms": vars(e2e.light),
            "light_client_ms": e2e.light_client_ms,
            "load_reports": len(e2e.load_ids),
            "stored": e2e.stored,
            "submit_wall_s": e2e.submit_wall,
            "delivered_wall_s": e2e.delivered_wall,
            "receipts_wall_s": e2e.receipts_wall,
            "load_latency_ms": vars(e2e.load),
            "cpu_s": {"hotline-nl": e2e.origin_cpu, "exchange": e2e.exchange_cpu, "hotline-de": e2e.destination_cpu},
            "cpu_busy_submit_drain": e2e.busy,
        }
        report["machine"]["load_at_end"] = load_average()
        print_report(report, floor, budget, results, e2e)
        if args.profile:
            profile_in_process(root / "profile", settings, args)
        succeeded = True
        return report
    finally:
        for network in networks:
            network.stop()
        if succeeded and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            say(f"\nKept {root} (logs in */logs/).")


def print_report(
    report: dict[str, Any], floor: Floor, budget: Budget, results: list[LoadResult], e2e: EndToEnd
) -> None:
    say(f"\nMachine load: at start {report['machine']['load']}; at end {report['machine']['load_at_end']}")
    say("\n== Floor (same run, same machine) ==")
    show_table(
        ("component", "median µs", "note"),
        [
            (
                "mTLS keep-alive POST, client latency",
                f"{floor.post_latency_us:.0f}",
                f"{floor.body_bytes} B body, trivial WSGI app on make_server",
            ),
            ("mTLS keep-alive POST, server CPU", f"{floor.post_server_cpu_us:.0f}", "sequential, per request"),
            (
                "  same, under concurrent load",
                f"{floor.post_concurrent_server_cpu_us:.0f}",
                f"{floor.post_concurrent_per_second:.0f} requests/s with {report['args']['threads']} clients",
            ),
            (
                "verify_jws(report document)",
                f"{floor.verify_jws_us:.0f}",
                "includes jws-header + report schema validation",
            ),
            ("  of which Ed25519 verify alone", f"{floor.ed25519_verify_us:.0f}", "libsodium (PyNaCl)"),
            ("  the same by OpenSSL", f"{floor.openssl_verify_us:.0f}", "cryptography, for comparison"),
            ("schemas.validate('report')", f"{floor.validate_us:.0f}", "jsonschema, formats on"),
            ("SQLite single-row transaction", f"{floor.sqlite_insert_us:.0f}", "WAL, synchronous=NORMAL"),
            ("floor sum, server CPU", f"{floor.cpu_sum_us:.0f}", "POST CPU + verify + validate + insert"),
            ("floor sum, latency", f"{floor.latency_sum_us:.0f}", "POST latency + verify + validate + insert"),
        ],
    )
    say("\n== 1. Accepted and routed by the exchange (bench = hotline-nl; hotline-de down, so reports queue) ==")
    show_table(
        (
            "load",
            "tx",
            "reports",
            "accepted",
            "reports/s",
            "tx/s",
            "lat med ms",
            "lat p99 ms",
            "srv CPU µs/tx",
            "srv CPU µs/report",
            "srv CPU %",
        ),
        [
            (
                r.label,
                r.messages,
                r.reports,
                r.accepted,
                f"{r.accepted_per_second:.0f}",
                f"{r.messages_per_second:.0f}",
                f"{statistics.median(r.latencies) * 1000:.1f}",
                f"{percentile(r.latencies, 0.99) * 1000:.1f}",
                f"{r.server_cpu / r.messages * 1e6:.0f}",
                f"{r.server_cpu / r.reports * 1e6:.0f}",
                f"{100 * r.server_cpu / r.wall:.0f}",
            )
            for r in results
        ],
    )
    routed = report["routed"]
    print_budget(floor, budget, results[0])
    say(
        f"  Exchange database afterwards: {routed['cases']} cases, outbox rows by destination {routed['outbox']} "
        f"(accepted in total: {sum(r.accepted for r in results)})"
    )
    for r in results:
        if r.other_outcomes or r.http_errors:
            say(f"  ! {r.label}: not accepted {r.other_outcomes} http {r.http_errors}")
    say("\n== 2. Delivered end to end (hotline-nl API -> exchange -> stored at hotline-de) ==")
    load = len(e2e.load_ids)
    show_table(
        ("measure", "value"),
        [
            (
                "reports submitted (API, concurrent)",
                f"{load} from {report['args']['e2e_threads']} operator threads, "
                f"{report['args']['e2e_batch']} per request",
            ),
            ("accepted by hotline-nl API", f"{load / e2e.submit_wall:.0f} reports/s ({e2e.submit_wall:.1f} s)"),
            (
                "stored at hotline-de",
                f"{e2e.stored} in {e2e.delivered_wall:.1f} s = {e2e.stored / e2e.delivered_wall:.0f} reports/s",
            ),
            (
                "receipts back at hotline-nl",
                f"all after {e2e.receipts_wall:.1f} s" if e2e.receipts_wall else "not all within the timeout",
            ),
            (
                "CPU seconds during load",
                f"hotline-nl {e2e.origin_cpu:.1f}, exchange {e2e.exchange_cpu:.1f}, "
                f"hotline-de {e2e.destination_cpu:.1f}",
            ),
            (
                "CPU use, % of a core: submitting / draining",
                ", ".join(f"{member_id} {submit:.0%} / {drain:.0%}" for member_id, (submit, drain) in e2e.busy.items()),
            ),
        ],
    )
    say("\n== 3. Confirmed at origin -> stored at destination (DB timestamps, ms) ==")
    show_table(
        ("load", "reports", "median", "p99", "max"),
        [
            ("light: one at a time", len(e2e.light.total), *ms_summary(e2e.light.total)),
            ("  hop 1: confirmed -> at exchange", len(e2e.light.to_exchange), *ms_summary(e2e.light.to_exchange)),
            ("  hop 2: at exchange -> stored", len(e2e.light.to_destination), *ms_summary(e2e.light.to_destination)),
            ("  bench clock: POST sent -> row visible", len(e2e.light_client_ms), *ms_summary(e2e.light_client_ms)),
            ("full load (phase 2)", len(e2e.load.total), *ms_summary(e2e.load.total)),
            ("  hop 1: confirmed -> at exchange", len(e2e.load.to_exchange), *ms_summary(e2e.load.to_exchange)),
            ("  hop 2: at exchange -> stored", len(e2e.load.to_destination), *ms_summary(e2e.load.to_destination)),
        ],
    )
    say("\n== Targets ==")
    sequential, concurrent = results[0], results[1:] or results
    best = max(concurrent, key=lambda r: r.accepted_per_second)
    verdict = "met" if best.accepted_per_second >= 1000 else "NOT met"
    say(
        f"  >= 1,000 reports/s accepted and routed: {verdict} (best {best.accepted_per_second:.0f}/s with "
        f"{best.per_message} per transaction; "
        + ", ".join(f"{r.per_message}/tx: {r.accepted_per_second:.0f}/s" for r in concurrent)
        + ")"
    )
    cpu_ratio = sequential.server_cpu / sequential.messages * 1e6 / floor.cpu_sum_us
    latency_ratio = statistics.median(sequential.latencies) * 1e6 / floor.latency_sum_us
    needed_ratio = budget.protocol_and_store_us(floor) / floor.cpu_sum_us
    say(
        f"  single-report message within 2x of the floor: server CPU {cpu_ratio:.1f}x, latency {latency_ratio:.1f}x "
        f"-> {'met' if max(cpu_ratio, latency_ratio) <= 2 else 'NOT met'} (the POST, the signatures and SQLite's own "
        f"work alone: {needed_ratio:.1f}x)"
    )
    light = statistics.median(e2e.light.total) if e2e.light.total else float("inf")
    say(f"  median end-to-end under 100 ms at light load: {light:.1f} ms -> {'met' if light < 100 else 'NOT met'}")
    end_to_end_rate = e2e.stored / e2e.delivered_wall if e2e.delivered_wall else 0.0
    batch = report["args"]["e2e_batch"]
    source = "throughput.py"
    record_target(
        "exchange accepts and routes >= 1,000 reports/s (transactions of 50)",
        f"{best.accepted_per_second:.0f}/s ({best.per_message} per transaction)",
        best.accepted_per_second >= 1000,
        source=source,
    )
    record_target(
        "single-report transaction within 2x the floor (server CPU and latency)",
        f"CPU {cpu_ratio:.1f}x, latency {latency_ratio:.1f}x (POST, signatures and SQLite alone {needed_ratio:.1f}x)",
        max(cpu_ratio, latency_ratio) <= 2,
        source=source,
    )
    record_target("median end-to-end delivery < 100 ms at light load", f"{light:.1f} ms", light < 100, source=source)
    record_target(
        "end to end >= 1,000 reports/s (operator batches at a node -> stored at the destination)",
        f"{end_to_end_rate:.0f}/s ({e2e.stored} reports, {batch} per request)",
        end_to_end_rate >= 1000 and batch > 1,
        source=source,
    )
    report["targets"] = {
        "best_reports_per_s": best.accepted_per_second,
        "cpu_ratio": cpu_ratio,
        "latency_ratio": latency_ratio,
        "light_median_ms": light,
        "protocol_and_store_ratio": needed_ratio,
    }


def print_budget(floor: Floor, budget: Budget, sequential: LoadResult) -> None:
    """What one single-report transaction costs, piece by piece, against twice the floor."""
    over_tls = sequential.server_cpu / sequential.messages * 1e6
    needed = budget.protocol_and_store_us(floor)
    say(f"\n== A single-report transaction, against 2x the floor ({2 * floor.cpu_sum_us:.0f} µs of server CPU) ==")
    show_table(
        ("part", "µs", "x floor", "how measured"),
        [
            ("mTLS keep-alive POST", f"{floor.post_server_cpu_us:.0f}", "", "the floor's (trivial app)"),
            (
                "verify the transaction",
                f"{budget.verify_transaction_us:.0f}",
                "",
                "verify_jws: signature, certificate, schema",
            ),
            ("verify its report", f"{budget.verify_document_us:.0f}", "", "the same, for the document"),
            ("sign the receipt", f"{budget.sign_receipt_us:.0f}", "", "Signer.sign_flattened"),
            (
                "SQLite's own work",
                f"{budget.sqlite_us:.0f}",
                "",
                "inside the driver, in process: every statement, fetch and the commit",
            ),
            (
                "  of which the commit",
                f"{budget.commit_us:.0f}",
                "",
                f"{budget.wal_bytes / 1024:.0f} KB of write-ahead log per transaction",
            ),
            (
                "  sum: what the protocol and the store need",
                f"{needed:.0f}",
                f"{needed / floor.cpu_sum_us:.1f}",
                "",
            ),
            (
                "the transaction in process",
                f"{budget.in_process_us:.0f}",
                f"{budget.in_process_us / floor.cpu_sum_us:.1f}",
                f"Flask test client, no TLS, {budget.transactions} sent one at a time",
            ),
            (
                "the transaction over mutual TLS",
                f"{over_tls:.0f}",
                f"{over_tls / floor.cpu_sum_us:.1f}",
                "phase 1, one client (the exchange's process)",
            ),
        ],
    )


def _at_least(minimum: int, *, at_most: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum`` (and ``at_most``), or a clear usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        if at_most is not None and value > at_most:
            raise argparse.ArgumentTypeError(f"must be at most {at_most}, not {value}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--threads", type=_at_least(1), default=4, help="Concurrent client threads in phase 1 (default 4)."
    )
    parser.add_argument(
        "--sequential",
        type=_at_least(1),
        default=300,
        help="Single-report transactions sent one at a time, for latency and CPU per message (at least 1).",
    )
    parser.add_argument(
        "--single", type=_at_least(0), default=1500, help="Single-report transactions, concurrent (0: skip)."
    )
    parser.add_argument(
        "--batch10", type=_at_least(0), default=300, help="Transactions of 10 reports, concurrent (0: skip)."
    )
    parser.add_argument(
        "--batch50", type=_at_least(0), default=60, help="Transactions of 50 reports, concurrent (0: skip)."
    )
    parser.add_argument("--hashes", type=int, default=1, help="Content hashes per report (each is a fingerprint).")
    parser.add_argument("--light-reports", type=int, default=50, help="Reports sent one at a time (latency).")
    parser.add_argument("--e2e-reports", type=int, default=1000, help="Reports submitted at full load (phase 2).")
    parser.add_argument("--e2e-threads", type=int, default=4, help="Operator threads submitting in phase 2.")
    parser.add_argument(
        "--e2e-batch",
        type=int,
        default=1,
        help="Reports per operator request in phase 2 (1: POST /api/v1/reports; more: /api/v1/reports/batch).",
    )
    parser.add_argument("--e2e-timeout", type=float, default=90.0, help="Give up waiting for delivery after this.")
    parser.add_argument("--floor-posts", type=int, default=1000, help="Sequential POSTs to the trivial server.")
    parser.add_argument("--floor-calls", type=int, default=2000, help="Calls per in-process floor measurement.")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Service setting for every process (e.g. DELIVERY_BATCH_SIZE=100); repeatable.",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="Also profile the exchange app in process (cProfile; pokes on/off A/B); adds about 20 s.",
    )
    parser.add_argument(
        "--budget-transactions",
        type=_at_least(1, at_most=250),
        default=200,
        help="Single-report transactions sent in process to measure SQLite's own work (at most 250: more would "
        "fill the write-ahead log past the point where a commit copies it back itself).",
    )
    parser.add_argument("--profile-messages", type=int, default=400, help="Single-report transactions to profile.")
    parser.add_argument("--json", type=Path, help="Also write every figure to this JSON file.")
    parser.add_argument("--keep", action="store_true", help="Keep the run folder (PKI, databases, logs).")
    parser.add_argument("--serve-floor", nargs=4, metavar=("PORT", "CERT", "KEY", "CA"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_floor:
        port, cert, key, ca = args.serve_floor
        serve_floor(int(port), cert, key, ca)
        return 0

    def _terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # Unwinds through the finally blocks that stop every process.

    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    report = run(args)
    say(f"\nTotal bench time {time.perf_counter() - started:.0f} s.")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
