"""Lay out, start, stop and kill a network of real processes on localhost (used by the demo and tests).

:func:`lay_out` writes a throwaway PKI (the network's, and a web certificate for the consoles), one TOML
config per service and ``network.json`` (the machine-readable description scripts use).
:func:`register_members` creates every database with the services' own migrations, puts the members into
the exchange's directory and creates the accounts people and scripts use. :class:`Network` then runs each
service's surfaces as their own processes (``hotline-exchange network``, ``hotline-node worker``, ...) on
ephemeral ports, with SQLite or the database URLs the caller gives (the tests run the same network on
PostgreSQL).
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import shutil
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
import requests.adapters

from certs.devnet import DEV_MEMBERS, EXCHANGE_ID, DevMember, WebTLS, write_dev_network, write_web_tls
from demo.zygote import Zygote
from federation.signing import short_id

OPERATOR = "operator"
"""The analyst account every node has in a laid-out network; its API token drives the operator client."""


_HANDED_OUT: set[int] = set()
PORT_RANGE = (20000, 32767)
"""Below Linux's ephemeral range (32768-60999): a port the kernel hands to a client socket or to a server
bound to port 0 (the demo's mail sink, a test's web server) can never be one a service was given but has
not bound yet."""


def free_port() -> int:
    """A loopback port nothing listens on now, not handed out before by this process."""
    rng = random.SystemRandom()
    while True:
        port = rng.randint(*PORT_RANGE)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port


def _toml_value(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def write_toml(path: Path, values: Mapping[str, Any]) -> None:
    path.write_text("".join(f"{key} = {_toml_value(value)}\n" for key, value in values.items()))


def read_toml(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        return tomllib.load(handle)


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
    console_port: int = 0
    public_port: int = 0
    api_token: str = ""
    accounts: list[dict[str, str]] = field(default_factory=list)
    partner: dict[str, str] = field(default_factory=dict)
    """A node's demo partner (OAuth2 client id and secret, both scopes): made at run time, demo only."""

    def use_database(self, url: str) -> None:
        """Point the service at another database: here and in its TOML file, which its processes read."""
        self.database = url
        write_toml(self.config, {**read_toml(self.config), "SQLALCHEMY_DATABASE_URI": url})

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def console_url(self) -> str:
        return f"https://127.0.0.1:{self.console_port}"

    @property
    def public_url(self) -> str:
        return f"https://127.0.0.1:{self.public_port}"

    @property
    def core_surfaces(self) -> tuple[str, ...]:
        """What must run for the service to take part in the network (no people's surfaces)."""
        if self.kind == "exchange":
            return ("network", "worker")
        return ("network", "worker") if self.inbound == "push" else ("worker",)

    @property
    def all_surfaces(self) -> tuple[str, ...]:
        if self.kind == "exchange":
            return ("network", "console", "worker")
        return (*self.core_surfaces[:-1], "console", "public", "worker")


@dataclass
class Layout:
    root: Path
    ca_cert: Path
    ca_dir: Path
    crl: Path
    web: WebTLS
    exchange: ServiceSpec
    members: dict[str, ServiceSpec] = field(default_factory=dict)

    def services(self) -> list[ServiceSpec]:
        return [self.exchange, *self.members.values()]

    def spec(self, member_id: str) -> ServiceSpec:
        return self.exchange if member_id == self.exchange.member_id else self.members[member_id]

    def describe(self) -> dict[str, Any]:
        def entry(spec: ServiceSpec) -> dict[str, Any]:
            described: dict[str, Any] = {
                "id": spec.member_id,
                "name": spec.name,
                "countries": list(spec.countries),
                "fallback": spec.fallback,
                "inbound": spec.inbound,
                "url": spec.url,
                "console_url": spec.console_url,
                "cert": str(spec.cert),
                "key": str(spec.key),
                "config": str(spec.config),
                "database": spec.database,
                "accounts": spec.accounts,
            }
            if spec.kind == "node":
                described["public_url"] = spec.public_url
                described["openapi"] = [f"{spec.public_url}/openapi.json"]
                described["partner"] = spec.partner
            return described

        return {
            "ca_cert": str(self.ca_cert),
            "crl": str(self.crl),
            "web_ca_cert": str(self.web.ca),
            "exchange": {**entry(self.exchange), "exchange_url": self.exchange.url},
            "exchange_url": self.exchange.url,
            "members": [entry(spec) for spec in self.members.values()],
        }

    def write_description(self) -> None:
        (self.root / "network.json").write_text(json.dumps(self.describe(), indent=2) + "\n")


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
    web = write_web_tls(root / "pki" / "web")
    ca_dir = root / "pki" / "ca"
    (root / "db").mkdir(exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    databases = databases or {}

    def spec(member_id: str, kind: str, **extra: Any) -> ServiceSpec:
        database = databases.get(member_id) or f"sqlite:///{root / 'db' / (member_id + '.db')}"
        if database.startswith("sqlite:///"):
            for suffix in ("", "-wal", "-shm", ".worker.lock"):
                Path(database.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        return ServiceSpec(
            member_id=member_id,
            kind=kind,
            port=free_port(),
            console_port=free_port(),
            public_port=free_port() if kind == "node" else 0,
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
        web=web,
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
    hosting = write_hosting_tables(root / "hosting")
    for service in layout.services():
        values: dict[str, Any] = {
            "HOST": "127.0.0.1",
            "PORT": service.port,
            "TLS_CERT": str(service.cert),
            "TLS_KEY": str(service.key),
            "CA_CERT": str(layout.ca_cert),
            "CRL": str(layout.crl),
            "SQLALCHEMY_DATABASE_URI": service.database,
            "SECRET_KEY": secrets.token_urlsafe(48),
            "CONSOLE_HOST": "127.0.0.1",
            "CONSOLE_PORT": service.console_port,
            "CONSOLE_TLS_CERT": str(web.cert),
            "CONSOLE_TLS_KEY": str(web.key),
        }
        if service.kind == "exchange":
            values["CA_DIR"] = str(ca_dir)  # The dev exchange runs the throwaway CA: onboarding in the console.
        if service.kind == "node":
            values.update(
                EXCHANGE_URL=layout.exchange.url,
                EXCHANGE_ID=EXCHANGE_ID,
                INBOUND_MODE=service.inbound,
                HOTLINE_NAME=service.name.split(" (")[0],
                PUBLIC_HOST="127.0.0.1",
                PUBLIC_PORT=service.public_port,
                PUBLIC_TLS_CERT=str(web.cert),
                PUBLIC_TLS_KEY=str(web.key),
                **hosting,
                # Reported addresses in demo and test networks are made up: nothing fetches them (a test
                # that checks removals turns this on, with its own web server on 127.0.0.1).
                REMOVAL_CHECK_ENABLED=False,
            )
        values.update(settings or {})
        write_toml(service.config, values)
    layout.write_description()
    return layout


# The hosting trace of demo and test networks: names resolved from a table (never real DNS), placed in
# documentation ranges (RFC 5737, RFC 3849) by a table of networks, one of them a stand-in CDN.
DEMO_HOSTS = {
    "images.example": ["192.0.2.10"],
    "social.example": ["198.51.100.20", "2001:db8:20::20"],
    "forum.example": ["203.0.113.5"],
    "media-host.example": ["2001:db8:10::7"],
    "gallery.example": ["192.0.2.44"],
    "example.com": ["192.0.2.80"],
}
DEMO_NETWORKS = [
    {"prefix": "192.0.2.0/24", "country": "DE", "asn": 64501, "as_name": "Example Hosting GmbH"},
    {"prefix": "198.51.100.0/24", "country": "FR", "asn": 64502, "as_name": "Hébergeur Exemple SAS"},
    {"prefix": "2001:db8:20::/48", "country": "FR", "asn": 64502, "as_name": "Hébergeur Exemple SAS"},
    {"prefix": "2001:db8:10::/48", "country": "NL", "asn": 64503, "as_name": "Voorbeeld Hosting B.V."},
    {"prefix": "203.0.113.0/24", "country": "US", "asn": 64510, "as_name": "Example CDN Inc."},
]
DEMO_CDN = {
    "name": "Example CDN",
    "source": "demo",
    "guidance": "Ask Example CDN's abuse desk for the origin host behind this site.",
    "ranges": ["203.0.113.0/24"],
}


def write_hosting_tables(folder: Path) -> dict[str, str]:
    """Write the demo's resolver, network and CDN tables; the config keys that point at them."""
    from node.hosting.cdn import PACKAGED

    folder.mkdir(parents=True, exist_ok=True)
    resolver, networks, cdn = folder / "resolver.json", folder / "networks.json", folder / "cdn-ranges.json"
    resolver.write_text(json.dumps(DEMO_HOSTS, indent=1), encoding="utf-8")
    networks.write_text(json.dumps({"updated": "2026-11-01", "networks": DEMO_NETWORKS}, indent=1), encoding="utf-8")
    ranges = json.loads(PACKAGED.read_text(encoding="utf-8"))
    ranges["providers"].append(DEMO_CDN)
    cdn.write_text(json.dumps(ranges), encoding="utf-8")
    return {"RESOLVER_TABLE": str(resolver), "NETWORK_TABLE": str(networks), "CDN_RANGES_FILE": str(cdn)}


def service_app(spec: ServiceSpec, surface: str = "worker", **overrides: Any) -> Any:
    """The service's app, in this process, from its laid-out config (no server: for setting things up)."""
    config = {**read_toml(spec.config), "SCHEDULER_ENABLED": False, **overrides}
    if spec.kind == "exchange":
        from exchange import create_app

        return create_app(config, surface=surface)
    from node import create_app as create_node_app

    return create_node_app(config, surface=surface)


def prepare_database(spec: ServiceSpec, template: str | None = None) -> None:
    """Create the service's database with its migrations (or copy an already migrated SQLite template)."""
    from service import migrations

    if template and spec.database.startswith("sqlite:///"):
        shutil.copyfile(template, spec.database.removeprefix("sqlite:///"))
        return
    app = service_app(spec)
    with app.app_context():
        migrations.upgrade(app)
        app.extensions["service_db"].engine.dispose()


def register_members(
    layout: Layout,
    *,
    templates: Mapping[str, str] | None = None,
    demo_accounts: bool = False,
    migrated: bool = False,
    unregistered: tuple[str, ...] = (),
) -> None:
    """Create the databases, fill the exchange's directory, and create the accounts of every service.

    Every node gets an ``operator`` analyst with a personal API token (the operator client's); with
    ``demo_accounts`` every service also gets one account per role with a password (and, for the roles
    that need it, a second factor), printed by the demo and written to ``network.json``. Members named in
    ``unregistered`` get a node but no directory entry: they are onboarded later (tests of onboarding).
    """
    from exchange.members.certificates import CertificateDesk
    from exchange.members.services import save_member
    from federation.runtime import runtime

    for spec in layout.services():
        if not migrated:
            prepare_database(spec, (templates or {}).get(spec.kind))
    app = service_app(layout.exchange)
    with app.app_context():
        layout.exchange.api_token = _operator_token(app, role="secretariat-viewer")
        rt = runtime()
        desk = CertificateDesk(rt.db.session, layout.ca_dir, actor="setup", now=rt.clock())
        for spec in layout.members.values():
            if spec.member_id in unregistered:
                continue
            member = save_member(
                rt.db.session,
                member_id=spec.member_id,
                name=spec.name,
                countries=list(spec.countries),
                endpoint=spec.url if spec.inbound == "push" else None,
                fallback=spec.fallback,
                now=rt.clock(),
            )
            member.contact_email = f"it-desk@{spec.member_id}.example"
            desk.record(spec.member_id, spec.cert.read_bytes())
        rt.db.session.commit()
        if demo_accounts:
            layout.exchange.accounts = _demo_accounts(app)
        rt.db.engine.dispose()
    for spec in layout.members.values():
        app = service_app(spec)
        with app.app_context():
            spec.api_token = _operator_token(app)
            spec.partner = _demo_partner(app)
            if demo_accounts:
                spec.accounts = _demo_accounts(app)
            app.extensions["service_db"].engine.dispose()
    layout.write_description()


def _book(app: Any) -> Any:
    import datetime as dt

    from audit.services import AuditLog
    from people import staff_models
    from people.services import AccountBook
    from people.totp import SecretBox

    models = staff_models()
    session = app.extensions["service_db"].session
    return AccountBook(
        session=session,
        account_model=models.account,
        token_model=models.token,
        roles=models.roles,
        audit=AuditLog(session, models.audit),
        box=SecretBox(app.config["SECRET_KEY"]),
        now=dt.datetime.now(dt.UTC),
    )


def staff_token(spec: ServiceSpec, username: str, role: str) -> str:
    """A personal API token for a (new) account ``username`` with ``role`` on the service: a script of
    that person's, as a supervisor's or analyst's own token would be."""
    app = service_app(spec)
    with app.app_context():
        token = _operator_token(app, role=role, username=username)
        app.extensions["service_db"].engine.dispose()
    return token


def _operator_token(app: Any, role: str = "analyst", username: str = OPERATOR) -> str:
    book = _book(app)
    account = book.by_username(username)
    if account is None:
        account, _ = book.create(username=username, display_name=f"{username} (script)", role=role, by="setup")
        account.must_change_password = False
    _, plaintext = book.create_token(account, "operator client")
    book.session.commit()
    return str(plaintext)


def _demo_partner(app: Any) -> dict[str, str]:
    """A partner platform with both scopes, registered as a supervisor would in the console."""
    import datetime as dt

    from node.db import db
    from node.partners.services import PartnerBook

    partner, secret = PartnerBook(db.session).register(
        name="Example Platform (demo)",
        contact="trust-and-safety@platform.example",
        scopes=["reports:write", "reports:read"],
        by="demo",
        now=dt.datetime.now(dt.UTC),
    )
    described = {"name": partner.name, "client_id": partner.client_id, "client_secret": secret}
    db.session.commit()
    return described


def _demo_accounts(app: Any) -> list[dict[str, str]]:
    """One account per role, with a generated password; roles that need a second factor get one enrolled."""
    import pyotp

    from people.totp import recovery_digest

    book = _book(app)
    created = []
    names = {
        "analyst": ("ana", "Ana Analyst"),
        "supervisor": ("sam", "Sam Supervisor"),
        "secretariat-viewer": ("val", "Val Viewer"),
        "secretariat-admin": ("ada", "Ada Admin"),
    }
    for role in book.roles.roles:
        username, display = names.get(role, (role, role))
        password = "-".join(secrets.token_hex(3) for _ in range(4))
        while username in password:  # Hex can spell "ada": the password policy refuses a password with the name.
            password = "-".join(secrets.token_hex(3) for _ in range(4))
        account, _ = book.create(username=username, display_name=display, role=role, by="demo", password=password)
        entry = {"username": username, "password": password, "role": role}
        if role in book.roles.second_factor_required:
            secret = book.begin_second_factor(account)
            account.totp_confirmed_at = book.now
            account.recovery_codes = [recovery_digest(code) for code in ("demo1-demo1",)]
            entry["totp_secret"] = secret
            entry["totp_now"] = pyotp.TOTP(secret).now()
        created.append(entry)
    book.session.commit()
    return created


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the process that started it dies, so no service outlives its
    demo or test run (even one killed with SIGKILL)."""
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class ServiceProcess:
    """One surface of one service running as a child process, its output in ``logs/<id>-<surface>.log``."""

    def __init__(
        self,
        spec: ServiceSpec,
        surface: str,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        *,
        label: str = "",
        launcher: Zygote | None = None,
    ) -> None:
        self.spec = spec
        self.surface = surface
        self.log_path = log_dir / f"{label or spec.member_id}-{surface}.log"
        self.env = env or {}
        self.launcher = launcher
        self.process: Any = None
        self._terminating = False
        self._log_start = 0

    def start(self) -> None:
        """Start the surface: forked from the fork server when there is one, else a fresh interpreter."""
        self._terminating = False
        variable = "EXCHANGE_CONFIG" if self.spec.kind == "exchange" else "NODE_CONFIG"
        env = {variable: str(self.spec.config), "PYTHONUNBUFFERED": "1", **self.env}
        module = "exchange.cli" if self.spec.kind == "exchange" else "node.cli"
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        if self.launcher is not None:
            self.process = self.launcher.spawn(module, [self.surface], env, self.log_path)
            return
        command = [sys.executable, "-c", f"from {module} import main; main()", self.surface]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it.
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **env},
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
                written = self.log_path.read_text(errors="replace") if self.log_path.exists() else "(no log written)"
                tail = written[self._log_start :][-2000:]
                raise RuntimeError(
                    f"{self.spec.member_id} {self.surface} exited with {self.process.returncode}:\n{tail}"
                )
            if self._ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.spec.member_id} {self.surface} not ready within {timeout} s; see {self.log_path}")

    def _ready(self) -> bool:
        if self.surface == "worker":
            text = self.log_path.read_text(errors="replace")[self._log_start :] if self.log_path.exists() else ""
            return "worker started" in text
        port = {"network": self.spec.port, "console": self.spec.console_port, "public": self.spec.public_port}[
            self.surface
        ]
        try:
            if self.surface == "network":
                # A full mutual-TLS handshake with the service's own certificate, closed politely.
                context = ssl.create_default_context(cafile=str(self.spec.config.parent / "pki" / "ca" / "ca.pem"))
                context.load_cert_chain(str(self.spec.cert), str(self.spec.key))
            else:
                context = ssl.create_default_context(cafile=str(self.spec.config.parent / "pki" / "web" / "ca.pem"))
            with (
                socket.create_connection(("127.0.0.1", port), timeout=1) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                tls.recv(1)
            return True
        except OSError:
            return False

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM); :meth:`stop` waits for it."""
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


class Service:
    """The processes of one service (its surfaces): started, stopped, killed and restarted together."""

    def __init__(self, spec: ServiceSpec, log_dir: Path, *, label: str = "", launcher: Zygote | None = None) -> None:
        self.spec = spec
        self.log_dir = log_dir
        self.label = label or spec.member_id
        self.launcher = launcher
        self.surfaces: dict[str, ServiceProcess] = {}
        self._wanted: list[str] = []

    def start(self, surfaces: tuple[str, ...] | None = None) -> None:
        """Start ``surfaces`` (default: the ones it ran before, or its core surfaces)."""
        chosen = list(surfaces or self._wanted or self.spec.core_surfaces)
        for surface in chosen:
            if surface not in self._wanted:
                self._wanted.append(surface)
            process = self.surfaces.setdefault(
                surface, ServiceProcess(self.spec, surface, self.log_dir, label=self.label, launcher=self.launcher)
            )
            if not process.running:
                process.start()

    def wait_ready(self, timeout: float = 30.0) -> None:
        for process in self.surfaces.values():
            if process.running or process.process is not None:
                process.wait_ready(timeout)

    def terminate(self) -> None:
        for process in self.surfaces.values():
            process.terminate()

    def stop(self) -> None:
        for process in self.surfaces.values():
            process.stop()

    def kill(self) -> None:
        for process in self.surfaces.values():
            process.kill()

    @property
    def running(self) -> bool:
        return any(process.running for process in self.surfaces.values())

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.label}-worker.log"


class Network:
    """The processes of a laid-out network (forked from one fork server unless ``fork_server`` is False)."""

    def __init__(self, layout: Layout, *, fork_server: bool = True, launcher: Zygote | None = None) -> None:
        self.layout = layout
        self._own_launcher = launcher is None and fork_server
        self.launcher = launcher or (Zygote() if fork_server else None)
        self.processes: dict[str, Service] = {
            spec.member_id: Service(spec, layout.root / "logs", launcher=self.launcher) for spec in layout.services()
        }
        self._clients: dict[str, OperatorClient] = {}

    def start(self, *member_ids: str, surfaces: tuple[str, ...] | None = None) -> None:
        chosen = member_ids or tuple(
            member_id for member_id, service in self.processes.items() if service.spec.member_id == member_id
        )
        for member_id in chosen:
            self.processes[member_id].start(surfaces)
        for member_id in chosen:
            self.processes[member_id].wait_ready()

    def start_all_surfaces(self) -> None:
        """Every surface of every service (the demo)."""
        for service in self.processes.values():
            service.start(service.spec.all_surfaces)
        for service in self.processes.values():
            service.wait_ready(60)

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.stop()
        if self.launcher is not None and self._own_launcher:
            self.launcher.close()

    def client(self, member_id: str) -> OperatorClient:
        """The node's operator (a script with the ``operator`` account's API token), via its console's API.

        Starts the console the first time (call it before handing the client to several threads).
        """
        service = self.processes[member_id]
        console = service.surfaces.get("console")
        if console is None or not console.running:
            service.start(("console",))
            service.surfaces["console"].wait_ready()
        if member_id not in self._clients:
            self._clients[member_id] = OperatorClient(self.layout.spec(member_id), self.layout.web.ca)
        return self._clients[member_id]

    def public(self, member_id: str) -> str:
        """The node's public site (started the first time): its base URL."""
        service = self.processes[member_id]
        public = service.surfaces.get("public")
        if public is None or not public.running:
            service.start(("public",))
            service.surfaces["public"].wait_ready()
        return service.spec.public_url

    def partner(self, member_id: str) -> PartnerClient:
        """The node's demo partner, calling its public API with OAuth2 client credentials."""
        self.public(member_id)
        return PartnerClient(self.layout.spec(member_id), self.layout.web.ca)


class PublicReporter:
    """Someone using a node's public reporting page, as a browser would (the form, its CSRF cookie)."""

    _TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
    _REFERENCE = re.compile(r'class="reference">([^<]+)<')

    def __init__(self, public_url: str, web_ca: Path, *, source_address: str | None = None) -> None:
        self.public_url = public_url
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = str(web_ca)
        if source_address:
            adapter = _SourceAddressAdapter(source_address)
            self.session.mount("https://", adapter)

    def form(self, lang: str = "en") -> str:
        response = self.session.get(f"{self.public_url}/{lang}/report", timeout=30)
        response.raise_for_status()
        found = self._TOKEN.search(response.text)
        if found is None:
            raise RuntimeError("the report form has no CSRF token")
        return found.group(1)

    def report(
        self, url: str, *, lang: str = "en", seen_on: str = "website", token: str | None = None, **fields: str
    ) -> str:
        """Send one report; return its reference (raises with the page's text when it is refused)."""
        data = {"csrf_token": token or self.form(lang), "url": url, "seen_on": seen_on, **fields}
        response = self.session.post(f"{self.public_url}/{lang}/report", data=data, timeout=30)
        found = self._REFERENCE.search(response.text)
        if response.status_code != 200 or found is None:
            raise RuntimeError(f"report refused: {response.status_code} {response.text[:300]}")
        return found.group(1)

    def status(self, reference: str, *, lang: str = "en") -> requests.Response:
        """Look up a report's status with its reference (the page, as answered)."""
        page = self.session.get(f"{self.public_url}/{lang}/status", timeout=30)
        found = self._TOKEN.search(page.text)
        if found is None:
            raise RuntimeError("the status form has no CSRF token")
        data = {"csrf_token": found.group(1), "reference": reference}
        return self.session.post(f"{self.public_url}/{lang}/status", data=data, timeout=30)

    def close(self) -> None:
        self.session.close()


class _SourceAddressAdapter(requests.adapters.HTTPAdapter):
    """Connect from a given loopback address (127.0.0.0/8 is all this machine), as if from another reporter."""

    def __init__(self, source_address: str) -> None:
        self.source_address = source_address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source_address, 0)
        super().init_poolmanager(*args, **kwargs)


class PartnerClient:
    """A partner platform's integration: a token from ``/oauth/token``, then the partner API."""

    def __init__(self, spec: ServiceSpec, web_ca: Path, *, scope: str | None = None) -> None:
        self.spec = spec
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = str(web_ca)
        self.scope = scope
        self.token: str | None = None

    def fetch_token(self, scope: str | None = None) -> dict[str, Any]:
        data = {"grant_type": "client_credentials"}
        if scope or self.scope:
            data["scope"] = scope or self.scope or ""
        response = self.session.post(
            f"{self.spec.public_url}/oauth/token",
            data=data,
            auth=(self.spec.partner["client_id"], self.spec.partner["client_secret"]),
            verify=self.session.verify,
            timeout=30,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        self.token = body["access_token"]
        return body

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        if self.token is None:
            self.fetch_token()
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 60)
        return self.session.request(
            method, f"{self.spec.public_url}{path}", headers=headers, verify=self.session.verify, **kwargs
        )

    def submit(self, reports: list[dict[str, Any]], *, idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self.request("POST", "/api/v1/reports/batch", json={"reports": reports}, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"batch refused: {response.status_code} {response.text[:300]}")
        body: dict[str, Any] = response.json()
        return body

    def close(self) -> None:
        self.session.close()


class OperatorClient:
    """A node's operator script, calling its node's console API with a personal API token (as curl would)."""

    def __init__(self, spec: ServiceSpec, web_ca: Path) -> None:
        self.spec = spec
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = str(web_ca)
        self.session.headers["Authorization"] = f"Bearer {spec.api_token}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, f"{self.spec.console_url}{path}", verify=self.session.verify, **kwargs)

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

    def items(self, path: str) -> list[Any]:
        """Every item of a paged API list."""
        found: list[Any] = []
        page = 1
        while True:
            body = self.get(f"{path}{'&' if '?' in path else '?'}page={page}&per_page=200")
            found.extend(body["items"])
            if page >= body["pages"]:
                return found
            page += 1

    def case_for(self, url: str) -> dict[str, Any]:
        """The case of a reported URL (as reported, or canonical), from the queue's API."""
        item = next(i for i in self.items("/api/v1/intake") if url in (i["url"], i["canonical_url"]))
        found: dict[str, Any] = self.get(f"/api/v1/cases/{item['case_id']}")
        return found

    def act(self, case_id: str, step: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One step on a case (``assess``, ``trace``, ``decide``, ...); its new state, or raises."""
        response = self.request("POST", f"/api/v1/cases/{case_id}/{step}", json=body or {})
        if response.status_code != 200:
            raise RuntimeError(f"case {short_id(case_id)} {step}: {response.status_code} {response.text[:300]}")
        result: dict[str, Any] = response.json()
        return result

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
