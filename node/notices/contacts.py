"""The abuse-contact directory: checked input, the suggestion for a traced location, CSV in and out.

A contact is matched by a **domain** (the reported host or one of its parent domains: an image host's own
abuse desk), a **network** the host's address lies in (most specific first), or the **autonomous system**
that announces it. The analyst confirms the suggestion or picks another contact.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
import re
import uuid
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from audit.services import AuditLog
from federation.errors import ProtocolError
from node.audit.models import AUDIT
from node.notices.models import ROLES, AbuseContact
from service.database import DBSession

LANGUAGES = ("en", "nl", "de")
CSV_COLUMNS = ("name", "role", "email", "language", "asns", "networks", "domains", "country", "renotice_hours", "note")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")


class ContactError(ProtocolError):
    """Input a contact cannot have, said per field."""

    status = 422
    code = "invalid_contact"

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def _words(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    return [part for part in re.split(r"[\s,;]+", str(value or "")) if part]


def checked(data: dict[str, Any]) -> dict[str, Any]:
    """The contact's fields from form, API or CSV input, or ContactError naming each bad field."""
    errors: dict[str, str] = {}
    name = str(data.get("name") or "").strip()
    if not name or len(name) > 200:
        errors["name"] = "Enter the provider's name (at most 200 characters)."
    role = str(data.get("role") or "hosting").strip()
    if role not in ROLES:
        errors["role"] = f"Choose one of {', '.join(ROLES)}."
    email = str(data.get("email") or "").strip()
    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        errors["email"] = "Enter the abuse desk's email address, like abuse@provider.example."
    language = str(data.get("language") or "en").strip().lower()
    if language not in LANGUAGES:
        errors["language"] = f"Notices are written in {', '.join(LANGUAGES)}."
    asns: list[int] = []
    for word in _words(data.get("asns")):
        number = word.upper().removeprefix("AS")
        if not number.isdigit() or not 0 < int(number) < 2**32:
            errors["asns"] = f"{word} is not an AS number (like AS64501 or 64501)."
            break
        asns.append(int(number))
    networks: list[str] = []
    for word in _words(data.get("networks")):
        try:
            networks.append(str(ipaddress.ip_network(word, strict=False)))
        except ValueError:
            errors["networks"] = f"{word} is not a network (like 192.0.2.0/24 or 2001:db8::/32)."
            break
    domains: list[str] = []
    for word in _words(data.get("domains")):
        domain = word.lower().rstrip(".")
        if not _DOMAIN.match(domain):
            errors["domains"] = f"{word} is not a domain name (like provider.example)."
            break
        domains.append(domain)
    country = str(data.get("country") or "").strip().upper() or None
    if country is not None and not re.fullmatch(r"[A-Z]{2}", country):
        errors["country"] = "Two letters, like DE."
    if role == "police" and country is None:
        errors["country"] = "A police contact covers a country: enter it."
    if role != "police" and not (asns or networks or domains) and not {"asns", "networks", "domains"} & set(errors):
        errors["domains"] = "Give at least one domain, network or AS number, so the contact can be suggested."
    raw_hours = str(data.get("renotice_hours") or "24").strip()
    hours = int(raw_hours) if raw_hours.isdigit() else 0
    if not 1 <= hours <= 24 * 14:
        errors["renotice_hours"] = "Hours between notices: 1 to 336."
    note = str(data.get("note") or "").strip() or None
    if note and len(note) > 2000:
        errors["note"] = "At most 2,000 characters."
    if errors:
        raise ContactError(errors)
    return {
        "name": name,
        "role": role,
        "email": email,
        "language": language,
        "asns": sorted(set(asns)),
        "networks": sorted(set(networks)),
        "domains": sorted(set(domains)),
        "country": country,
        "renotice_hours": hours,
        "note": note,
    }


@dataclass
class Suggestion:
    contact: AbuseContact
    why: str
    rank: tuple[int, ...]


class ContactBook:
    """Changes to the directory, each audited in the caller's transaction."""

    def __init__(self, session: DBSession, *, actor: str, now: dt.datetime) -> None:
        self.session, self.actor, self.now = session, actor, now

    def active(self) -> list[AbuseContact]:
        return list(
            self.session.scalars(
                select(AbuseContact).where(AbuseContact.disabled_at.is_(None)).order_by(AbuseContact.name)
            )
        )

    def create(self, data: dict[str, Any]) -> AbuseContact:
        fields = checked(data)
        contact = AbuseContact(id=str(uuid.uuid4()), created_at=self.now, updated_at=self.now, **fields)
        self.session.add(contact)
        self._audit("contact.create", contact, name=contact.name, email=contact.email)
        return contact

    def update(self, contact: AbuseContact, data: dict[str, Any]) -> None:
        fields = checked(data)
        before = {key: getattr(contact, key) for key in fields}
        for key, value in fields.items():
            setattr(contact, key, value)
        contact.updated_at = self.now
        changed = {key: [before[key], value] for key, value in fields.items() if before[key] != value}
        self._audit("contact.update", contact, changed=changed)

    def disable(self, contact: AbuseContact) -> None:
        contact.disabled_at = self.now
        self._audit("contact.disable", contact, name=contact.name)

    def import_csv(self, text: str) -> tuple[int, int]:
        """Create or update contacts (matched by name and role) from CSV with ``CSV_COLUMNS`` as header.
        All rows or none: raises ContactError naming every bad row."""
        reader = csv.DictReader(io.StringIO(text))
        missing = [column for column in ("name", "email") if column not in (reader.fieldnames or [])]
        if missing:
            raise ContactError(
                {"file": f"the header needs the columns {', '.join(CSV_COLUMNS)} (missing: {', '.join(missing)})"}
            )
        rows: list[dict[str, Any]] = []
        errors: dict[str, str] = {}
        for number, row in enumerate(reader, start=2):
            if number > 10_001:
                raise ContactError({"file": "at most 10,000 contacts per file"})
            try:
                rows.append(checked(row))
            except ContactError as exc:
                errors[f"row {number}"] = exc.message
        if errors:
            raise ContactError(errors)
        existing = {(c.name.lower(), c.role): c for c in self.session.scalars(select(AbuseContact))}
        created = updated = 0
        for fields in rows:
            found = existing.get((fields["name"].lower(), fields["role"]))
            if found is None:
                contact = AbuseContact(id=str(uuid.uuid4()), created_at=self.now, updated_at=self.now, **fields)
                self.session.add(contact)
                existing[(fields["name"].lower(), fields["role"])] = contact
                created += 1
            else:
                for key, value in fields.items():
                    setattr(found, key, value)
                found.updated_at, found.disabled_at = self.now, None
                updated += 1
        AuditLog(self.session, AUDIT).record(
            self.actor, "contact.import", "contacts", "csv", now=self.now, created=created, updated=updated
        )
        return created, updated

    def suggest(self, host: str, addresses: list[dict[str, Any]]) -> list[Suggestion]:
        """Contacts for a host and its traced addresses (``address``, ``asn``), the likeliest first:
        the host's own domain, then the most specific network, then the autonomous system."""
        host = host.lower().rstrip(".")
        parsed = []
        for item in addresses:
            try:
                parsed.append((ipaddress.ip_address(item["address"]), item.get("asn")))
            except (KeyError, ValueError):
                continue
        found: dict[str, Suggestion] = {}
        role_order = {role: n for n, role in enumerate(ROLES)}
        for contact in self.active():
            best: Suggestion | None = None
            for domain in contact.domains:
                if host == domain or host.endswith("." + domain):
                    best = Suggestion(contact, f"the host is in {domain}", (0, -len(domain)))
                    break
            if best is None:
                for text in contact.networks:
                    network = ipaddress.ip_network(text)
                    if any(address.version == network.version and address in network for address, _ in parsed):
                        rank = (1, -network.prefixlen)
                        if best is None or rank < best.rank:
                            best = Suggestion(contact, f"an address of the host is in {text}", rank)
            if best is None:
                for address, asn in parsed:
                    if asn is not None and asn in contact.asns:
                        best = Suggestion(contact, f"AS{asn} announces {address}", (2, 0))
                        break
            if best is not None:
                best.rank = (*best.rank, role_order.get(contact.role, 9))
                found[contact.id] = best
        return sorted(found.values(), key=lambda s: (s.rank, s.contact.name))

    def suggest_for(self, traced: Any) -> list[Suggestion]:
        """Contacts for what a hosting trace (``node.hosting.services.Trace``) found, likeliest first."""
        from dataclasses import asdict

        return self.suggest(traced.host, [asdict(a) for a in traced.addresses])

    def _audit(self, action: str, contact: AbuseContact, **detail: Any) -> None:
        AuditLog(self.session, AUDIT).record(self.actor, action, "contact", contact.id, now=self.now, **detail)


def export_csv(contacts: list[AbuseContact]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for c in contacts:
        writer.writerow(
            [
                c.name,
                c.role,
                c.email,
                c.language,
                " ".join(f"AS{n}" for n in c.asns),
                " ".join(c.networks),
                " ".join(c.domains),
                c.country or "",
                c.renotice_hours,
                c.note or "",
            ]
        )
    return out.getvalue()
