"""Police referrals: one signed export for a batch of cases, verifiable with the network CA alone, its
CSV twin, "police notified" back at the reporting hotline, and refusals of what is not a referral."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from certs.devnet import DEV_MEMBERS
from demo.network import Network, OperatorClient, staff_token
from federation.errors import ProtocolError
from federation.messages import POLICE_REFERRAL
from federation.signing import verify_jws
from federation.trust import TrustStore
from tests.conftest import make_network

NL, DE = DEV_MEMBERS[0].member_id, DEV_MEMBERS[1].member_id


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    network = make_network(tmp_path_factory.mktemp("referrals"), "sqlite", None, members=DEV_MEMBERS[:2])
    network.start()
    yield network
    network.stop()


def test_a_batch_is_referred_in_one_signed_file_and_the_reporting_hotline_learns_of_it(
    net: Network, tmp_path: Path
) -> None:
    nl, de = net.client(NL), net.client(DE)  # Starts their consoles.
    spec = net.layout.spec(DE)
    boss = OperatorClient(
        dataclasses.replace(spec, api_token=staff_token(spec, "sam-script", "supervisor")), net.layout.web.ca
    )
    police = boss.request(
        "POST",
        "/api/v1/contacts",
        json={"name": "BKA (test)", "role": "police", "email": "cyber@bka.example", "country": "DE"},
    ).json()
    elsewhere = boss.request(
        "POST",
        "/api/v1/contacts",
        json={"name": "Police FR", "role": "police", "email": "cyber@police.example", "country": "FR"},
    ).json()
    reports = [
        nl.report(
            url=f"http://refer.example/{n}.jpg",
            hosting_country="DE",
            legal_status="baseline",
            media_type="image",
            content_hashes=[{"alg": "md5", "value": f"{n:032x}"}],
        )
        for n in range(3)
    ]
    for report in reports:
        de.wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    ids = [r["id"] for r in reports]
    for body, words in (
        ({"case_ids": ids, "police_contact_id": elsewhere["id"]}, "not a police contact"),
        ({"case_ids": [], "police_contact_id": police["id"]}, "1 to 1000 cases"),
        ({"case_ids": [*ids, "no-such-case"], "police_contact_id": police["id"]}, "no case no-such-case"),
        ({"case_ids": "all", "police_contact_id": police["id"]}, "case_ids"),
    ):
        refused = de.request("POST", "/api/v1/referrals", json=body)
        assert refused.status_code == 422 and words in refused.json()["detail"], refused.text
    made = de.request("POST", "/api/v1/referrals", json={"case_ids": ids, "police_contact_id": police["id"]})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    # The police check it with the network CA and CRL alone.
    trust = TrustStore(net.layout.ca_cert, net.layout.crl)
    signed = verify_jws(
        token,
        expected_typ=POLICE_REFERRAL,
        trust=trust,
        now=dt.datetime.now(dt.UTC),
        clock_skew=dt.timedelta(seconds=300),
    )
    assert (
        signed.author.member_id == DE and signed.claims["police"] == "BKA (test)" and signed.claims["country"] == "DE"
    )
    assert [c["case_id"] for c in signed.claims["cases"]] == ids
    assert signed.claims["cases"][1]["url"] == "http://refer.example/1.jpg"
    assert signed.claims["cases"][1]["reported_by"] == NL and signed.claims["cases"][1]["media_type"] == "image"
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(ProtocolError):
        verify_jws(
            tampered,
            expected_typ=POLICE_REFERRAL,
            trust=trust,
            now=dt.datetime.now(dt.UTC),
            clock_skew=dt.timedelta(seconds=300),
        )
    # The CSV has the same rows.
    rows = list(csv.DictReader(io.StringIO(de.get(f"/api/v1/referrals/{made.json()['id']}")["csv"])))
    assert [row["case_id"] for row in rows] == ids and rows[2]["content_hashes"] == f"md5:{2:032x}"
    # "Police notified" goes back to the hotline that reported them.
    for report_id in ids:
        assert de.get(f"/api/v1/received/{report_id}")["status"] == "police_notified"
        nl.wait_for(f"/api/v1/reports/{report_id}", lambda r: r["state"] == "police_notified")
    # The command line says the same to whoever holds the file.
    saved = tmp_path / "referral.jws"
    saved.write_text(token, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", "referrals", "verify", str(saved)],
        env={**os.environ, "NODE_CONFIG": str(spec.config)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert f"signed by {DE}" in run.stdout and "for BKA (test) (DE)" in run.stdout
    saved.write_text(tampered, encoding="utf-8")
    bad = subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", "referrals", "verify", str(saved)],
        env={**os.environ, "NODE_CONFIG": str(spec.config)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1 and "not a valid referral" in bad.stderr and "Traceback" not in bad.stderr
