"""The exchange worker's ``certificates`` job: end rotation overlaps and warn of expiring certificates."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from exchange.members.certificates import CertificateDesk, warn_expiring
from service.mail import SmtpServer
from service.worker import Task


def look_after_certificates(app: Flask) -> int:
    """Revoke, as superseded, the certificates whose rotation overlap has ended (and republish the CRL);
    sign the CRL again when half its validity has passed; mail members' contacts about certificates
    expiring within EXPIRY_WARNING_DAYS. Returns how many things it did."""
    rt = app.extensions["hotline"]
    session = rt.db.session
    done = 0
    if app.config["CA_DIR"]:
        desk = CertificateDesk(
            session, Path(app.config["CA_DIR"]), actor="system", now=rt.clock(), crl_days=int(app.config["CRL_DAYS"])
        )
        done += len(desk.supersede_due())
        done += desk.republish_if_due() is not None
        session.commit()
    done += warn_expiring(
        session,
        SmtpServer.from_config(app.config),
        sender=str(app.config["MAIL_FROM"]),
        days=[int(day) for day in app.config["EXPIRY_WARNING_DAYS"]],
        now=rt.clock(),
    )
    session.commit()
    return done


TASKS = [
    Task(
        "certificates",
        look_after_certificates,
        seconds_key="CERTIFICATES_SECONDS",
        help=look_after_certificates.__doc__ or "",
        at_start=True,
    )
]
