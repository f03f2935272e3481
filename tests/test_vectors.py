"""The published test vectors (tests/vectors/messages.json) verify exactly as they say they must."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from federation.errors import ProtocolError
from federation.signing import verify_jws
from federation.trust import TrustStore

VECTORS = json.loads((Path(__file__).parent / "vectors" / "messages.json").read_text())


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> TrustStore:
    folder = tmp_path_factory.mktemp("vector-trust")
    (folder / "ca.pem").write_text(VECTORS["ca_cert"])
    (folder / "crl.pem").write_text(VECTORS["crl"])
    return TrustStore(folder / "ca.pem", folder / "crl.pem")


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=[v["name"] for v in VECTORS["vectors"]])
def test_vector(vector: dict[str, Any], trust: TrustStore) -> None:
    verify = lambda: verify_jws(  # noqa: E731
        vector["token"],
        expected_typ=vector["typ"],
        trust=trust,
        now=dt.datetime.fromisoformat(VECTORS["verify_at"]),
        clock_skew=dt.timedelta(seconds=VECTORS["clock_skew_seconds"]),
        fresh=vector["fresh"],
    )
    if "error" in vector["expect"]:
        with pytest.raises(ProtocolError) as raised:
            verify()
        assert raised.value.code == vector["expect"]["error"]
    else:
        assert verify().claims == vector["expect"]["claims"]


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
    }


def test_vectors_hold_no_private_key() -> None:
    assert "PRIVATE KEY" not in (Path(__file__).parent / "vectors" / "messages.json").read_text()
