"""Lay out, start, stop and kill a network of real processes on localhost (used by the demo and tests).

:func:`lay_out` writes a throwaway PKI, one TOML config per service and ``network.json`` (the machine-
readable description scripts and curl use). :class:`Network` then runs each service as its own process
(``hotline-exchange serve`` / ``hotline-node serve``) on an ephemeral port with SQLite, or with the
database URLs the caller gives (the tests run the same network on PostgreSQL).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from certs.devnet import DEV_MEMBERS, EXCHANGE_ID, DevMember, write_dev_network


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _toml_value(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def write_toml(path: Path, values: Mapping[str, Any]) -> None:
    path.write_text("".join(f"{key} = {_toml_value(value)}\n" for key, value in values.items()))


@dataclass
class ServiceSpec:
    member_id: str
    kind: str  # "exchange" or "node"
    port: int
    config: Path
    cert: Path
    key: Path
    database: str
    name: str = ""
    countries: tuple[str, ...] = ()
    fallback: bool = False
    inbound: str = "push"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@dataclass
class Layout:
    root: Path
    ca_cert: Path
    ca_dir: Path
    crl: Path
    exchange: ServiceSpec
    members: dict[str, ServiceSpec] = field(default_factory=dict)

    def services(self) -> list[ServiceSpec]:
        return [self.exchange, *self.members.values()]

    def describe(self) -> dict[str, Any]:
        def entry(spec: ServiceSpec) -> dict[str, Any]:
            return {
                "id": spec.member_id,
                "name": spec.name,
                "countries": list(spec.countries),
                "fallback": spec.fallback,
                "inbound": spec.inbound,
                "url": spec.url,
                "cert": str(spec.cert),
                "key": str(spec.key),
                "config": str(spec.config),
                "database": spec.database,
            }

        return {
            "ca_cert": str(self.ca_cert),
            "crl": str(self.crl),
            "exchange": {**entry(self.exchange), "exchange_url": self.exchange.url},
            "exchange_url": self.exchange.url,
            "members": [entry(spec) for spec in self.members.values()],
        }


def lay_out(
    root: Path,
    *,
    members: tuple[DevMember, ...] = DEV_MEMBERS,
    databases: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Layout:
    """Write the PKI, configs and ``network.json`` for a network under ``root`` (replacing what was there)."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    identities = write_dev_network(root / "pki", members)
    ca_dir = root / "pki" / "ca"
    (root / "db").mkdir(exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    databases = databases or {}

    def spec(member_id: str, kind: str, **extra: Any) -> ServiceSpec:
        database = databases.get(member_id) or f"sqlite:///{root / 'db' / (member_id + '.db')}"
        if database.startswith("sqlite:///"):
            Path(database.removeprefix("sqlite:///")).unlink(missing_ok=True)
        return ServiceSpec(
            member_id=member_id,
            kind=kind,
            port=free_port(),
            config=root / f"{member_id}.toml",
            cert=identities[member_id].cert,
            key=identities[member_id].key,
            database=database,
            **extra,
        )

    layout = Layout(
        root=root,
        ca_cert=ca_dir / "ca.pem",
        ca_dir=ca_dir,
        crl=ca_dir / "crl.pem",
        exchange=spec(EXCHANGE_ID, "exchange", name="Network exchange (dev)"),
    )
    for member in members:
        layout.members[member.member_id] = spec(
            member.member_id,
            "node",
            name=member.name,
            countries=member.countries,
            fallback=member.fallback,
            inbound=member.inbound,
        )
    for service in layout.services():
        values: dict[str, Any] = {
            "HOST": "127.0.0.1",
            "PORT": service.port,
            "TLS_CERT": str(service.cert),
            "TLS_KEY": str(service.key),
            "CA_CERT": str(layout.ca_cert),
            "CRL": str(layout.crl),
            "SQLALCHEMY_DATABASE_URI": service.database,
        }
        if service.kind == "node":
            values.update(EXCHANGE_URL=layout.exchange.url, EXCHANGE_ID=EXCHANGE_ID, INBOUND_MODE=service.inbound)
        values.update(settings or {})
        write_toml(service.config, values)
    (root / "network.json").write_text(json.dumps(layout.describe(), indent=2) + "\n")
    return layout


def register_members(layout: Layout) -> None:
    """Put every member of the layout into the exchange's directory (in this process, no server needed)."""
    from exchange import create_app
    from exchange.members.services import save_member
    from federation.runtime import runtime

    with open(layout.exchange.config, "rb") as handle:
        config = tomllib.load(handle)
    app = create_app({**config, "SCHEDULER_ENABLED": False})
    with app.app_context():
        rt = runtime()
        rt.db.create_all()
        for spec in layout.members.values():
            save_member(
                rt.db.session,
                member_id=spec.member_id,
                name=spec.name,
                countries=list(spec.countries),
                endpoint=spec.url if spec.inbound == "push" else None,
                fallback=spec.fallback,
                now=rt.clock(),
            )
        rt.db.session.commit()
        rt.db.engine.dispose()


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the process that started it dies, so no service outlives its
    demo or test run (even one killed with SIGKILL)."""
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class ServiceProcess:
    """One service running as a child process, with its output in ``logs/<id>.log``."""

    def __init__(self, spec: ServiceSpec, log_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.spec = spec
        self.log_path = log_dir / f"{spec.member_id}.log"
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self._terminating = False

    def start(self) -> None:
        self._terminating = False
        variable = "EXCHANGE_CONFIG" if self.spec.kind == "exchange" else "NODE_CONFIG"
        env = {**os.environ, variable: str(self.spec.config), "PYTHONUNBUFFERED": "1", **self.env}
        module = "exchange.cli" if self.spec.kind == "exchange" else "node.cli"
        command = [sys.executable, "-c", f"from {module} import main; main()", "serve"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it.
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        log.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.spec.member_id} exited with {self.process.returncode}; see {self.log_path}")
            try:
                # A full mutual-TLS handshake with the service's own certificate, closed politely.
                context = ssl.create_default_context(cafile=str(self.spec.config.parent / "pki" / "ca" / "ca.pem"))
                context.load_cert_chain(str(self.spec.cert), str(self.spec.key))
                with (
                    socket.create_connection(("127.0.0.1", self.spec.port), timeout=1) as raw,
                    context.wrap_socket(raw, server_hostname="localhost") as tls,
                ):
                    tls.sendall(b"GET /v1/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    tls.recv(1)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.spec.member_id} did not start listening within {timeout} s; see {self.log_path}")

    def terminate(self) -> None:
        """Ask the service to stop (SIGTERM); :meth:`stop` waits for it."""
        if self.process is not None and self.process.poll() is None and not self._terminating:
            self._terminating = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flushing; what was committed is all that survives."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Network:
    """The processes of a laid-out network."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.processes = {spec.member_id: ServiceProcess(spec, layout.root / "logs") for spec in layout.services()}

    def start(self, *member_ids: str) -> None:
        chosen = member_ids or tuple(self.processes)
        for member_id in chosen:
            self.processes[member_id].start()
        for member_id in chosen:
            self.processes[member_id].wait_ready()

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.stop()

    def client(self, member_id: str) -> OperatorClient:
        return OperatorClient(self.layout.members[member_id], self.layout.ca_cert)


class OperatorClient:
    """A node's local operator, calling its node's API with the node's own certificate (as curl would)."""

    def __init__(self, spec: ServiceSpec, ca_cert: Path) -> None:
        self.spec = spec
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.cert = (str(spec.cert), str(spec.key))
        self.session.verify = str(ca_cert)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, f"{self.spec.url}{path}", verify=self.session.verify, **kwargs)

    def report(self, idempotency_key: str | None = None, **fields: Any) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self.request("POST", "/api/v1/reports", json=fields, headers=headers)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"report refused: {response.status_code} {response.text}")
        result: dict[str, Any] = response.json()
        return result

    def get(self, path: str) -> Any:
        response = self.request("GET", path)
        response.raise_for_status()
        return response.json()

    def wait_for(self, path: str, predicate: Callable[[Any], bool], timeout: float = 20.0) -> Any:
        """Poll ``path`` until ``predicate`` holds for its JSON; return that JSON."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.request("GET", path)
            value = response.json() if response.status_code == 200 else None
            if value is not None and predicate(value):
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.spec.member_id} {path}: condition not met in {timeout} s; last: {value}")
            time.sleep(0.05)

    def close(self) -> None:
        self.session.close()
