"""The member directory's rules, on the exchange app in-process with a real SQLite database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from certs.devnet import write_dev_network
from demo.network import read_toml, write_toml
from exchange import create_app
from exchange.members.services import MemberInputError, save_member, set_member_status
from federation.runtime import runtime


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    ids = write_dev_network(tmp_path / "pki")
    path = tmp_path / "exchange.toml"
    write_toml(
        path,
        {
            "TLS_CERT": str(ids["exchange"].cert),
            "TLS_KEY": str(ids["exchange"].key),
            "CA_CERT": str(tmp_path / "pki" / "ca" / "ca.pem"),
            "CRL": str(tmp_path / "pki" / "ca" / "crl.pem"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'exchange.db'}",
            "SCHEDULER_ENABLED": False,
        },
    )
    return path


@pytest.fixture
def app(config_file: Path) -> Iterator[Flask]:
    application = create_app(read_toml(config_file), surface="worker")
    with application.app_context():
        runtime().db.create_all()
        yield application
        runtime().db.engine.dispose()


def test_reinstating_refuses_a_country_another_member_covers_now(app: Flask) -> None:
    session = runtime().db.session
    now = dt.datetime.now(dt.UTC)
    save_member(
        session, member_id="hotline-de", name="DE", countries=["DE", "AT"], endpoint=None, fallback=False, now=now
    )
    set_member_status(session, "hotline-de", "suspended")
    # While it is suspended, another member takes over Austria.
    save_member(session, member_id="hotline-at", name="AT", countries=["AT"], endpoint=None, fallback=False, now=now)
    with pytest.raises(MemberInputError, match="hotline-at covers AT"):
        set_member_status(session, "hotline-de", "active")
    set_member_status(session, "hotline-at", "suspended")
    assert set_member_status(session, "hotline-de", "active").status == "active"


def test_the_reinstate_command_says_why_it_refuses(app: Flask, config_file: Path) -> None:
    from click.testing import CliRunner

    from exchange.cli import main

    session = runtime().db.session
    now = dt.datetime.now(dt.UTC)
    save_member(session, member_id="hotline-de", name="DE", countries=["DE"], endpoint=None, fallback=False, now=now)
    session.commit()
    runner = CliRunner()
    env = {"EXCHANGE_CONFIG": str(config_file)}

    def run(*args: str) -> Any:
        return runner.invoke(main, list(args), env=env)

    assert run("members", "suspend", "hotline-de").exit_code == 0
    save_member(session, member_id="hotline-de2", name="DE", countries=["DE"], endpoint=None, fallback=False, now=now)
    session.commit()
    refused = run("members", "reinstate", "hotline-de")
    assert refused.exit_code == 1 and "hotline-de2 covers DE" in refused.output
    assert run("members", "suspend", "hotline-de2").exit_code == 0
    reinstated = run("members", "reinstate", "hotline-de")
    assert reinstated.exit_code == 0 and "reinstated" in reinstated.output
