"""The CRL a node trusts, kept current from the exchange (``GET /v1/crl``).

The worker fetches the network CA's revocation list every ``CRL_REFRESH_SECONDS`` and installs it in
place of the node's ``CRL`` file when it is signed by the network CA and newer (a higher CRL number) than
the one there; the trust store re-reads the file on change (``federation.trust``). The exchange records
which member fetched which number. While the exchange is out of reach the node keeps the CRL it has (and
the directory it stored): nothing stops; the list's ``nextUpdate`` grace period bounds how long.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from flask import Flask

from certs.authority import AuthorityError, crl_number
from federation.errors import ProtocolError
from service.worker import Task


class CrlRefusedError(ProtocolError):
    status = 502
    code = "crl_invalid"


def refresh_crl(app: Flask) -> str:
    """Fetch the network CA's revocation list from the exchange and install it if it is newer."""
    rt = app.extensions["hotline"]
    exchange_url = str(app.config["EXCHANGE_URL"]).rstrip("/")
    status, body = rt.transport.request(
        "GET", f"{exchange_url}/v1/crl", destination=app.config["EXCHANGE_ID"], channel="directory"
    )
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("crl"), str):
        raise CrlRefusedError(f"the exchange answered HTTP {status} without a CRL")
    pem = body["crl"].encode("ascii", "replace")
    try:
        number = crl_number(pem)
        crl = x509.load_pem_x509_crl(pem)
        ca = rt.trust.ca_certificate
        if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):
            raise InvalidSignature
    except (AuthorityError, InvalidSignature, ValueError) as exc:
        raise CrlRefusedError("the CRL the exchange sent is not signed by the network CA") from exc
    path = Path(app.config["CRL"])
    try:
        installed = crl_number(path.read_bytes())
    except (OSError, AuthorityError):
        installed = -1
    if number <= installed:
        return f"CRL #{installed} is current"
    tmp = path.with_name(path.name + ".fetched")
    tmp.write_bytes(pem)
    os.replace(tmp, path)
    return f"CRL #{number} installed (was #{installed})"


TASKS = [
    Task("refresh-crl", refresh_crl, seconds_key="CRL_REFRESH_SECONDS", help=refresh_crl.__doc__ or "", at_start=True)
]
