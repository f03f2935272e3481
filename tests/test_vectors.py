"""The published test vectors (tests/vectors/messages.json) verify exactly as they say they must."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from federation.canonical import url_fingerprint
from federation.errors import ProtocolError
from federation.signing import verify_jws
from federation.trust import TrustStore, TrustStoreError
from node.received.services import FingerprintMismatchError

VECTORS = json.loads((Path(__file__).parent / "vectors" / "messages.json").read_text())
VERIFY_AT = dt.datetime.fromisoformat(VECTORS["verify_at"])


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> TrustStore:
    folder = tmp_path_factory.mktemp("vector-trust")
    (folder / "ca.pem").write_text(VECTORS["ca_cert"])
    (folder / "crl.pem").write_text(VECTORS["crl"])
    return TrustStore(folder / "ca.pem", folder / "crl.pem")


def _verify(vector: dict[str, Any], trust: TrustStore) -> dict[str, Any]:
    verified = verify_jws(
        vector["token"],
        expected_typ=vector["typ"],
        trust=trust,
        now=VERIFY_AT,
        clock_skew=dt.timedelta(seconds=VECTORS["clock_skew_seconds"]),
        fresh=vector["fresh"],
        first_hop=vector["first_hop"],
    )
    if vector["at_destination"]:
        # What a destination checks that nobody before it can: the header fingerprints the body's URL.
        claims = verified.claims
        if url_fingerprint(claims["body"]["url"]) != claims["header"]["url_fingerprint"]:
            raise FingerprintMismatchError("url_fingerprint does not match body.url")
    return verified.claims


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=[v["name"] for v in VECTORS["vectors"]])
def test_vector(vector: dict[str, Any], trust: TrustStore) -> None:
    if "error" in vector["expect"]:
        with pytest.raises(ProtocolError) as raised:
            _verify(vector, trust)
        assert raised.value.code == vector["expect"]["error"]
    else:
        assert _verify(vector, trust) == vector["expect"]["claims"]


def test_an_older_crl_is_refused_and_the_newer_one_stays_in_force(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text(VECTORS["ca_cert"])
    crl = tmp_path / "crl.pem"
    crl.write_text(VECTORS["crl"])
    store = TrustStore(tmp_path / "ca.pem", crl)
    newer = store.crl_number
    assert newer is not None
    crl.write_text(VECTORS["older_crl"])  # A replayed older list, perhaps to un-revoke a key.
    os.utime(crl, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # A visibly new file.
    revoked = next(v for v in VECTORS["vectors"] if v["name"] == "report-superseded-key-first-hop")
    with pytest.raises(ProtocolError) as raised:
        _verify(revoked, store)
    assert raised.value.code == "certificate_revoked"  # Still revoked: the newer list is in force.
    assert store.crl_number == newer and store._refused_mtime_ns == crl.stat().st_mtime_ns


def test_an_older_crl_fails_closed_after_a_restart(tmp_path: Path) -> None:
    class Remembered:
        def __init__(self, number: int) -> None:
            self.number = number

        def load(self) -> int:
            return self.number

        def store(self, number: int) -> None:
            self.number = number

    (tmp_path / "ca.pem").write_text(VECTORS["ca_cert"])
    (tmp_path / "crl.pem").write_text(VECTORS["crl"])
    high_water = Remembered(0)
    TrustStore(tmp_path / "ca.pem", tmp_path / "crl.pem", high_water=high_water)
    assert high_water.number > 0
    (tmp_path / "crl.pem").write_text(VECTORS["older_crl"])
    with pytest.raises(TrustStoreError):
        TrustStore(tmp_path / "ca.pem", tmp_path / "crl.pem", high_water=high_water)


def test_a_crl_past_next_update_is_used_for_the_grace_period_then_refused(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text(VECTORS["ca_cert"])
    (tmp_path / "crl.pem").write_text(VECTORS["crl"])
    now = [VERIFY_AT]
    store = TrustStore(tmp_path / "ca.pem", tmp_path / "crl.pem", crl_grace=dt.timedelta(days=2), clock=lambda: now[0])
    state = store._reload_crl()
    assert state.next_update is not None
    now[0] = state.next_update + dt.timedelta(days=1)
    assert store.is_revoked(1, at=VERIFY_AT) is False  # Within the grace period: still used, loudly.
    now[0] = state.next_update + dt.timedelta(days=3)
    with pytest.raises(TrustStoreError):
        store.is_revoked(1, at=VERIFY_AT)


def test_vectors_cover_every_security_check() -> None:
    errors = {v["expect"].get("error") for v in VECTORS["vectors"]} - {None}
    assert errors >= {
        "bad_signature",
        "issuer_mismatch",
        "unsupported_algorithm",
        "malformed_message",
        "certificate_untrusted",
        "certificate_revoked",
        "certificate_expired",
        "schema_invalid",
        "malformed_json",
        "wrong_message_type",
        "clock_skew",
        "fingerprint_mismatch",
    }


def test_vectors_hold_no_private_key() -> None:
    assert "PRIVATE KEY" not in (Path(__file__).parent / "vectors" / "messages.json").read_text()
