"""The certificates job at the exchange, in this process with a moved clock: expiry warnings mailed once per
threshold through a real SMTP server, rotation overlaps ended, the CRL signed again before it runs out."""

from __future__ import annotations

import datetime as dt
import email
from pathlib import Path
from typing import Any

from cryptography import x509

from certs import authority
from demo.mailsink import MailSink
from demo.network import service_app
from exchange.members.certificates import CertificateDesk, expiring, warn_expiring
from exchange.members.models import Member, MemberCertificate
from service.mail import SmtpServer


def test_expiry_warnings_rotation_and_the_crl_follow_the_clock(network_factory: Any, tmp_path: Path) -> None:
    network = network_factory()
    sink = MailSink(tmp_path / "mail")
    app = service_app(network.layout.exchange)
    smtp = SmtpServer("127.0.0.1", sink.port, starttls=False, username="", password="", timeout=10)
    start = dt.datetime.now(dt.UTC)
    try:
        with app.app_context():
            session = app.extensions["hotline"].db.session
            desk = CertificateDesk(session, network.layout.ca_dir, actor="test", now=start)
            pair = authority.new_key_and_csr("hotline-be")
            first = desk.onboard(
                member_id="hotline-be",
                name="Hotline Belgium",
                countries=["BE"],
                contact_email="it-desk@hotline-be.example",
                endpoint=None,
                fallback=False,
                csr_pem=pair.csr_pem,
                days=20,
            )
            session.commit()
            assert first.not_after - start > dt.timedelta(days=19)

            # 20 days left: inside the 30-day threshold, once.
            assert warn_expiring(session, smtp, sender="secretariat@exchange.example", days=[30, 7], now=start) == 1
            assert warn_expiring(session, smtp, sender="secretariat@exchange.example", days=[30, 7], now=start) == 0
            # 14 days on: 6 days left, inside the 7-day threshold: a second mail, then none.
            later = start + dt.timedelta(days=14)
            assert warn_expiring(session, smtp, sender="secretariat@exchange.example", days=[30, 7], now=later) == 1
            assert warn_expiring(session, smtp, sender="secretariat@exchange.example", days=[30, 7], now=later) == 0
            mails = [email.message_from_bytes(path.read_bytes()) for path in sink.messages()]
            assert [m["To"] for m in mails] == ["it-desk@hotline-be.example"] * 2
            assert "expires in 19 days" in mails[0]["Subject"] and "expires in 5 days" in mails[1]["Subject"]
            assert "hotline-pki new-key" in mails[0].get_payload()
            assert session.get(MemberCertificate, first.serial).warned == [7, 30]

            # A new certificate: the old one works for the overlap, then is revoked as superseded.
            number = authority.crl_number(network.layout.crl.read_bytes())
            renewed = CertificateDesk(session, network.layout.ca_dir, actor="test", now=later).rotate(
                "hotline-be", authority.new_key_and_csr("hotline-be").csr_pem, days=365, overlap=dt.timedelta(hours=72)
            )
            session.commit()
            assert expiring(session, now=later, within=dt.timedelta(days=30)) == []  # Replaced: no more warnings.
            assert CertificateDesk(session, network.layout.ca_dir, actor="system", now=later).supersede_due() == []
            done = CertificateDesk(
                session, network.layout.ca_dir, actor="system", now=later + dt.timedelta(hours=73)
            ).supersede_due()
            session.commit()
            assert [r.serial for r in done] == [first.serial]
            crl = x509.load_pem_x509_crl(network.layout.crl.read_bytes())
            revoked = crl.get_revoked_certificate_by_serial_number(int(first.serial))
            assert revoked is not None and authority.crl_number(network.layout.crl.read_bytes()) == number + 1
            assert session.get(MemberCertificate, renewed.serial).state == "current"

            # The CRL is signed again once half its 7 days have passed, not before.
            published = crl.last_update_utc + dt.timedelta(minutes=5)
            assert (
                CertificateDesk(
                    session, network.layout.ca_dir, actor="system", now=published + dt.timedelta(days=3)
                ).republish_if_due()
                is None
            )
            again = CertificateDesk(
                session, network.layout.ca_dir, actor="system", now=published + dt.timedelta(days=4)
            ).republish_if_due()
            assert again == number + 2
            assert session.get(Member, "hotline-be").status == "active"
            session.commit()
            session.remove()
            app.extensions["service_db"].engine.dispose()
    finally:
        sink.close()
