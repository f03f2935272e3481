"""Taking reports in: checking what a reporter sent, storing it once, and telling them where it stands.

Two doors lead here. The public reporting page takes one report at a time from someone who may be
frightened and is certainly anonymous; the partner API takes up to 1,000 at a time from a platform or a
trusted flagger that authenticated with OAuth2. Both end in the same table (``submissions``), in the
queue of new reports that analysts work from, and both check a URL the same way: the network's
canonicalisation rules (docs/protocol.md section 12), plus the refusals a reporter deserves to hear in
words (a ``javascript:`` address, a password in the URL).

What is kept, and what is not:

- The URL as given, its canonical form and its fingerprint; where it was seen; the description.
- Contact details only if the reporter gave them, erased at ``contact_erase_at`` by the worker.
- The public reference only as a SHA-256: the reporter holds the only copy. References are 80 random
  bits, so they cannot be guessed, and lookups are rate limited besides.
- Never an address or any other identifier of the reporter (see ``service.throttle``).

A partner's batch is one unit of work: every item gets its own outcome (accepted, a duplicate of the
partner's earlier report of the same location that is still open, or refused with a code and a reason),
the accepted ones are written with one multi-row insert, and the answer is stored with the partner's
``Idempotency-Key`` in the same transaction, so a retry gets exactly the first answer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

import schemas
from federation.canonical import MAX_URL_LENGTH, InvalidURLError, canonical_fingerprint, canonicalize_url
from federation.errors import ProtocolError
from federation.signing import new_message_id
from federation.timestamps import parse_timestamp
from node.cases.models import CLOSED, PUBLIC_STATUS, Case
from node.cases.services import Location, case_for_report, cases_for_reports
from node.intake.models import PARTNER, PUBLIC, IdempotentRequest, Submission
from service.database import DBSession

# Crockford's base32: no I, L, O or U, so a reference read aloud or written by hand survives.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_LENGTH = 16  # 80 bits.
_REFERENCE_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})

SUPPORTED_SCHEMES = ("http", "https", "ftp")
_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.\-]*):")
_PORT = re.compile(r"[0-9]+(?:[/?#]|$)")
_AUTHORITY = re.compile(r"^\s*(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//([^/?#]*)")
BATCH_LIMIT = 1000
DETECTED_AT_SKEW = dt.timedelta(minutes=5)
_FINGERPRINT_CHUNK = 500  # Parameters per IN list: SQLite allows 999 in old builds.


class IntakeError(ProtocolError):
    """A report that cannot be taken, with a code a program can act on and a reason a person can read."""

    status = 422
    code = "invalid_report"

    def __init__(self, message: str, *, code: str, field: str = "url") -> None:
        super().__init__(message, code=code)
        self.field = field


class IdempotencyConflictError(ProtocolError):
    status = 422
    code = "idempotency_key_reused"


class BatchError(ProtocolError):
    status = 422
    code = "invalid_batch"


@dataclass(frozen=True)
class CheckedURL:
    url: str
    """As the reporter wrote it: trimmed, Unicode NFC."""
    canonical: str
    fingerprint: str


def check_url(unverified_url: str) -> CheckedURL:
    """Check a reported URL and reduce it to the network's canonical form.

    Raises:
        IntakeError: ``url_missing``, ``url_too_long``, ``unsupported_scheme`` (``javascript:``,
            ``data:``, ``file:`` and every scheme but http, https and ftp), ``credentials_in_url``, or
            ``invalid_url`` (no host, a host no browser accepts, ...).
    """
    url = unicodedata.normalize("NFC", unverified_url.strip())
    if not url:
        raise IntakeError("Enter the address (URL) of the page or file.", code="url_missing")
    if len(url) > MAX_URL_LENGTH:
        raise IntakeError(f"The address is longer than {MAX_URL_LENGTH} characters.", code="url_too_long")
    scheme = _SCHEME.match(url)
    # "example.com/x" and "localhost:8080/x" have no scheme: a name with dots, or one followed by a port,
    # is a host (as the canonicalisation reads it too).
    if scheme and ("." in scheme.group(1) or _PORT.match(url, scheme.end())):
        scheme = None
    if scheme and scheme.group(1).lower() not in SUPPORTED_SCHEMES:
        raise IntakeError(
            f"Addresses starting with {scheme.group(1).lower()}: cannot be reported; "
            "copy the web address (http:// or https://) from the browser's address bar.",
            code="unsupported_scheme",
        )
    authority = _AUTHORITY.match(url if scheme or url.startswith("//") else "//" + url)
    if authority and "@" in authority.group(1):
        raise IntakeError(
            "The address contains a user name or password. Remove it (everything before the @) and send the "
            "rest; never send your own login details.",
            code="credentials_in_url",
        )
    try:
        canonical = canonicalize_url(url)
    except InvalidURLError as exc:
        raise IntakeError(f"This is not a web address that can be checked: {exc.message}", code="invalid_url") from None
    return CheckedURL(url=url, canonical=canonical, fingerprint=canonical_fingerprint(canonical))


def new_reference() -> str:
    """A reference for a public reporter: 16 base32 characters in groups of four (``7KQ9-XWM2-PHDM-4TC1``)."""
    raw = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, REFERENCE_LENGTH, 4))


def normalize_reference(text: str) -> str | None:
    """The reference as issued, from what a person typed (any case, spaces or dashes, O for 0); or None."""
    compact = re.sub(r"[\s\-]", "", text.upper()).translate(_REFERENCE_READ_AS)
    if len(compact) != REFERENCE_LENGTH or any(char not in REFERENCE_ALPHABET for char in compact):
        return None
    return "-".join(compact[i : i + 4] for i in range(0, REFERENCE_LENGTH, 4))


def reference_hash(reference: str) -> str:
    return hashlib.sha256(reference.encode()).hexdigest()


@dataclass(frozen=True)
class PublicReport:
    """What the public form collected, already checked field by field."""

    url: CheckedURL
    seen_on: str
    description: str | None
    contact_name: str | None
    contact_email: str | None
    language: str


def receive_public(
    session: DBSession, report: PublicReport, *, now: dt.datetime, contact_days: int
) -> tuple[Submission, str]:
    """Store a public report with its location's case; return it and the reporter's reference."""
    reference = new_reference()
    has_contact = bool(report.contact_email)
    case_id = case_for_report(session, Location(report.url.url, report.url.canonical, report.url.fingerprint), now=now)
    case_state = session.scalar(select(Case.state).where(Case.id == case_id)) or "new"
    submission = Submission(
        id=new_message_id(),
        case_id=case_id,
        source=PUBLIC,
        reference_hash=reference_hash(reference),
        url=report.url.url,
        canonical_url=report.url.canonical,
        url_fingerprint=report.url.fingerprint,
        seen_on=report.seen_on,
        description=report.description or None,
        content_hashes=[],
        contact_name=(report.contact_name or None) if has_contact else None,
        contact_email=report.contact_email if has_contact else None,
        contact_erase_at=now + dt.timedelta(days=contact_days) if has_contact else None,
        language=report.language,
        received_at=now,
        public_status=PUBLIC_STATUS[case_state],
        status_changed_at=now,
    )
    session.add(submission)
    session.flush()
    return submission, reference


def find_by_reference(session: DBSession, typed: str) -> Submission | None:
    """The public report a reference names (what a person typed), or None."""
    reference = normalize_reference(typed)
    if reference is None:
        return None
    found: Submission | None = session.scalar(
        select(Submission).where(Submission.reference_hash == reference_hash(reference))
    )
    return found


# --- partners ------------------------------------------------------------------------------------------


@dataclass
class ItemOutcome:
    index: int
    outcome: str  # accepted, duplicate, refused
    id: str | None = None
    external_id: str | None = None
    code: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"index": self.index, "outcome": self.outcome}
        for key in ("id", "external_id", "code", "detail"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        return body


def _check_item(index: int, unverified: Any, *, now: dt.datetime) -> tuple[dict[str, Any] | None, ItemOutcome | None]:
    """One partner report checked: its row (without ids) or a refusal."""
    external_id = unverified.get("external_id") if isinstance(unverified, dict) else None
    external_id = external_id if isinstance(external_id, str) and len(external_id) <= 200 else None
    try:
        schemas.validate("partner-report", unverified)
    except schemas.SchemaValidationError as exc:
        detail = exc.message.removeprefix("partner-report: ")
        return None, ItemOutcome(index, "refused", external_id=external_id, code="invalid_report", detail=detail)
    try:
        checked = check_url(unverified["url"])
    except IntakeError as exc:
        return None, ItemOutcome(index, "refused", external_id=external_id, code=exc.code, detail=exc.message)
    detected_at = None
    if "detected_at" in unverified:
        try:
            detected_at = parse_timestamp(unverified["detected_at"])
        except schemas.SchemaValidationError:
            return None, ItemOutcome(
                index,
                "refused",
                external_id=external_id,
                code="invalid_report",
                detail="detected_at is not a valid time",
            )
        if detected_at > now + DETECTED_AT_SKEW:
            return None, ItemOutcome(
                index,
                "refused",
                external_id=external_id,
                code="detected_in_future",
                detail="detected_at is in the future",
            )
    row = {
        "source": PARTNER,
        "external_id": external_id,
        "url": checked.url,
        "canonical_url": checked.canonical,
        "url_fingerprint": checked.fingerprint,
        "seen_on": unverified.get("seen_on"),
        "description": unverified.get("description") or None,
        "content_hashes": unverified.get("content_hashes", []),
        "detected_at": detected_at,
        "received_at": now,
        "status_changed_at": now,
        "language": "en",
    }
    return row, None


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


def replay(session: DBSession, partner_id: str, key: str, fingerprint: str) -> tuple[int, dict[str, Any]] | None:
    """The stored answer to an earlier request with this ``Idempotency-Key``, or None.

    Raises:
        IdempotencyConflictError: the key was used for a different request.
    """
    earlier = session.scalar(
        select(IdempotentRequest).where(IdempotentRequest.partner_id == partner_id, IdempotentRequest.key == key)
    )
    if earlier is None:
        return None
    if earlier.request_hash != fingerprint:
        raise IdempotencyConflictError(
            "this Idempotency-Key was used for a different request; use a new key for a new request"
        )
    return earlier.status, earlier.response


def remember(
    session: DBSession,
    partner_id: str,
    key: str,
    fingerprint: str,
    status: int,
    response: dict[str, Any],
    now: dt.datetime,
) -> None:
    session.add(
        IdempotentRequest(
            partner_id=partner_id, key=key, request_hash=fingerprint, status=status, response=response, created_at=now
        )
    )


def receive_partner_reports(
    session: DBSession, partner_id: str, items: list[Any], *, now: dt.datetime
) -> list[ItemOutcome]:
    """Take a partner's reports: each one accepted, a duplicate, or refused, in the order given."""
    outcomes: list[ItemOutcome | None] = [None] * len(items)
    rows: list[tuple[int, dict[str, Any]]] = []
    for index, item in enumerate(items):
        row, refusal = _check_item(index, item, now=now)
        if refusal is not None:
            outcomes[index] = refusal
        elif row is not None:
            rows.append((index, row))
    open_reports = _open_reports_by_fingerprint(session, partner_id, {row["url_fingerprint"] for _, row in rows})
    new_rows = []
    for index, row in rows:
        earlier = open_reports.get(row["url_fingerprint"])
        if earlier is not None:
            outcomes[index] = ItemOutcome(index, "duplicate", id=earlier, external_id=row["external_id"])
            continue
        row.update(id=new_message_id(), partner_id=partner_id, position=index)
        open_reports[row["url_fingerprint"]] = row["id"]
        new_rows.append(row)
        outcomes[index] = ItemOutcome(index, "accepted", id=row["id"], external_id=row["external_id"])
    if new_rows:
        locations = [Location(r["url"], r["canonical_url"], r["url_fingerprint"]) for r in new_rows]
        case_ids = cases_for_reports(session, locations, now=now)
        states = _states(session, set(case_ids.values()))
        for row in new_rows:
            row["case_id"] = case_ids[row["url_fingerprint"]]
            row["public_status"] = PUBLIC_STATUS[states[row["case_id"]]]
        session.execute(insert(Submission), new_rows)
    return [outcome for outcome in outcomes if outcome is not None]


def _states(session: DBSession, case_ids: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    ordered = sorted(case_ids)
    for start in range(0, len(ordered), _FINGERPRINT_CHUNK):
        chunk = ordered[start : start + _FINGERPRINT_CHUNK]
        found.update(session.execute(select(Case.id, Case.state).where(Case.id.in_(chunk))).all())
    return found


def _open_reports_by_fingerprint(session: DBSession, partner_id: str, fingerprints: set[str]) -> dict[str, str]:
    """The partner's earliest report of each location among ``fingerprints`` whose case is not closed."""
    found: dict[str, str] = {}
    ordered = sorted(fingerprints)
    for start in range(0, len(ordered), _FINGERPRINT_CHUNK):
        chunk = ordered[start : start + _FINGERPRINT_CHUNK]
        query = (
            select(Submission.url_fingerprint, Submission.id)
            .join(Case, Case.id == Submission.case_id)
            .where(
                Submission.partner_id == partner_id,
                Submission.url_fingerprint.in_(chunk),
                Case.state != CLOSED,
            )
            .order_by(Submission.received_at.desc())
        )
        for fingerprint, submission_id in session.execute(query):
            found[fingerprint] = submission_id  # The last one written is the earliest.
    return found


def parse_batch(unverified: Any) -> list[Any]:
    """The items of a batch body.

    Raises:
        SchemaValidationError: not ``{"reports": [objects, 1 to 1,000]}``.
    """
    schemas.validate("partner-batch", unverified)
    items: list[Any] = unverified["reports"]
    return items


def body_json(raw: bytes) -> Any:
    """A request body parsed as JSON.

    Raises:
        ProtocolError: ``malformed_json`` (not UTF-8, or not JSON).
    """
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProtocolError("the body is not valid JSON in UTF-8", code="malformed_json", status=400) from None


def forget_contacts(session: DBSession, *, now: dt.datetime) -> int:
    """Erase the contact details whose time is up (as the reporting page promised); return how many."""
    due = list(
        session.scalars(
            select(Submission).where(Submission.contact_erase_at.is_not(None), Submission.contact_erase_at <= now)
        )
    )
    for submission in due:
        submission.contact_name = None
        submission.contact_email = None
        submission.contact_erase_at = None
    return len(due)


def prune_idempotency(session: DBSession, *, now: dt.datetime, keep: dt.timedelta) -> int:
    """Forget stored answers older than ``keep`` (a retry after that is a new request)."""
    old = list(session.scalars(select(IdempotentRequest).where(IdempotentRequest.created_at < now - keep)))
    for row in old:
        session.delete(row)
    return len(old)
