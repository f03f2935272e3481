"""The command line is for people: every command listed without a configuration, one clear line on errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from certs.devnet import write_dev_network
from demo.network import write_toml

COMMANDS = {
    "hotline-node": {
        "network",
        "console",
        "public",
        "worker",
        "db",
        "accounts",
        "audit",
        "report",
        "case-status",
        "outbox",
        "hosting",
        "referrals",
        "tasks",
    },
    "hotline-exchange": {
        "network",
        "console",
        "worker",
        "db",
        "accounts",
        "audit",
        "members",
        "routing",
        "dead-letters",
        "status",
        "outbox",
        "tasks",
    },
}
MODULES = {"hotline-node": "node.cli", "hotline-exchange": "exchange.cli"}


def run(command: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("NODE_", "EXCHANGE_"))}
    return subprocess.run(
        [sys.executable, "-c", f"from {MODULES[command]} import main; main()", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_lists_every_command_without_a_configuration(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == COMMANDS[command]
    assert "--app" not in result.stdout and "--env-file" not in result.stdout and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_missing_configuration_is_one_clear_line(command: str) -> None:
    result = run(command, "worker")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    variable = "NODE_CONFIG" if command == "hotline-node" else "EXCHANGE_CONFIG"
    assert result.stderr.strip().splitlines() == [
        f"Error: {variable} is not set: point it at this service's TOML file (see docs/operations.md)"
    ]


def test_a_bad_configuration_names_the_file_and_the_key(tmp_path: Path) -> None:
    ids = write_dev_network(tmp_path / "pki")
    config = tmp_path / "node.toml"
    base = {
        "TLS_CERT": str(ids["hotline-nl"].cert),
        "TLS_KEY": str(tmp_path / "nowhere.pem"),
        "CA_CERT": str(tmp_path / "pki" / "ca" / "ca.pem"),
        "CRL": str(tmp_path / "pki" / "ca" / "crl.pem"),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'node.db'}",
        "EXCHANGE_URL": "https://127.0.0.1:1",
    }
    write_toml(config, base)
    result = run("hotline-node", "worker", env={"NODE_CONFIG": str(config)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"Error: {config}: TLS_KEY={tmp_path / 'nowhere.pem'} is not a readable file"

    write_toml(config, {**base, "TLS_KEY": str(ids["hotline-nl"].key)})
    result = run("hotline-node", "worker", env={"NODE_CONFIG": str(config), "NODE_DELIVERY_BATCH_SIZE": "-3"})
    assert (
        result.stderr.strip()
        == "Error: environment variable NODE_DELIVERY_BATCH_SIZE: DELIVERY_BATCH_SIZE must be a positive number, not -3"
    )
    result = run("hotline-node", "worker", env={"NODE_CONFIG": str(config), "NODE_DELIVERY_BATCH_SIZE": "200"})
    assert result.stderr.strip() == (
        "Error: environment variable NODE_DELIVERY_BATCH_SIZE: DELIVERY_BATCH_SIZE must be at most 100 "
        "(the protocol's limit of documents per transaction), not 200"
    )

    result = run("hotline-node", "console", env={"NODE_CONFIG": str(config)})
    assert (
        result.stderr.strip().startswith("Error: the built-in default")
        and "SECRET_KEY is required by the console surface" in result.stderr
    )

    config.write_text("TLS_CERT = [unclosed\n")
    result = run("hotline-node", "worker", env={"NODE_CONFIG": str(config)})
    assert result.returncode == 1 and result.stderr.startswith(f"Error: {config}: not valid TOML")


def test_a_server_refuses_a_database_that_is_behind_and_names_the_command(tmp_path: Path) -> None:
    ids = write_dev_network(tmp_path / "pki")
    config = tmp_path / "exchange.toml"
    write_toml(
        config,
        {
            "TLS_CERT": str(ids["exchange"].cert),
            "TLS_KEY": str(ids["exchange"].key),
            "CA_CERT": str(tmp_path / "pki" / "ca" / "ca.pem"),
            "CRL": str(tmp_path / "pki" / "ca" / "crl.pem"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'exchange.db'}",
        },
    )
    env = {"EXCHANGE_CONFIG": str(config)}
    refused = run("hotline-exchange", "network", env=env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "run `hotline-exchange db upgrade`" in refused.stderr and "empty (never upgraded)" in refused.stderr
    upgraded = run("hotline-exchange", "db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    checked = run("hotline-exchange", "db", "check", env=env)
    assert checked.returncode == 0 and "matches the models" in checked.stdout, checked.stderr
