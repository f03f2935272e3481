"""Member directory operations used by the CLI, routing and the inbox."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from typing import Any

from sqlalchemy import Engine, bindparam, select

from audit.services import AuditLog
from certs.identity import COUNTRY_PATTERN, MEMBER_ID_PATTERN
from exchange.audit.models import AUDIT
from exchange.members.models import ACTIVE, REVOKED, Member
from federation.errors import ProtocolError
from federation.signing import Signer, canonical_json
from service.database import DBSession, Query


class UnknownMemberError(ProtocolError):
    status = 403
    code = "unknown_member"


class MemberSuspendedError(ProtocolError):
    status = 403
    code = "member_suspended"


class MemberInputError(ProtocolError):
    code = "invalid_member"


def save_member(
    session: DBSession,
    *,
    member_id: str,
    name: str,
    countries: list[str],
    endpoint: str | None,
    fallback: bool,
    now: dt.datetime,
    actor: str = "system",
) -> Member:
    """Add a member or update it; a new fallback replaces the old one. The change is audited."""
    if not MEMBER_ID_PATTERN.match(member_id):
        raise MemberInputError(f"member id {member_id!r} is not of the form [a-z0-9][a-z0-9-]{{1,62}}")
    bad = [country for country in countries if not COUNTRY_PATTERN.match(country)]
    if bad:
        raise MemberInputError(f"not ISO 3166-1 alpha-2 country codes: {', '.join(bad)}")
    if endpoint is not None and not endpoint.startswith("https://"):
        raise MemberInputError("endpoint must be an https:// URL")
    for other in session.scalars(select(Member).where(Member.id != member_id)):
        clash = sorted(set(other.countries) & set(countries))
        if clash and other.status == "active":
            raise MemberInputError(f"{other.id} already covers {', '.join(clash)}")
        if fallback:
            other.is_fallback = False
    member = session.get(Member, member_id)
    if member is None:
        member = Member(id=member_id, created_at=now, status="active")
        session.add(member)
    before = None if member.name is None else {"countries": member.countries, "endpoint": member.endpoint}
    member.name, member.countries, member.endpoint, member.is_fallback = name, sorted(countries), endpoint, fallback
    session.flush()
    AuditLog(session, AUDIT).record(
        actor,
        "member.save",
        "member",
        member_id,
        now=now,
        before=before,
        after={"countries": member.countries, "endpoint": endpoint, "fallback": fallback},
    )
    return member


def set_member_status(
    session: DBSession,
    member_id: str,
    status: str,
    *,
    actor: str = "system",
    now: dt.datetime | None = None,
    reason: str | None = None,
) -> Member:
    """Suspend (``suspended``) or reinstate (``active``) a member.

    Reinstating refuses a member whose countries another active member covers now (reports for them went
    to that member while this one was suspended; two members never cover one country).

    Raises:
        UnknownMemberError, MemberInputError.
    """
    member = session.get(Member, member_id)
    if member is None:
        raise UnknownMemberError(f"no member {member_id!r}")
    if member.status == REVOKED:
        raise MemberInputError(f"{member_id} left the network (its certificates are revoked): onboard it again")
    if status == "active" and member.status != "active":
        for other in session.scalars(select(Member).where(Member.id != member_id, Member.status == "active")):
            clash = sorted(set(other.countries) & set(member.countries))
            if clash:
                raise MemberInputError(
                    f"cannot reinstate {member_id}: {other.id} covers {', '.join(clash)} now; change that first"
                )
    before, member.status, member.status_reason = member.status, status, reason
    session.flush()
    AuditLog(session, AUDIT).record(
        actor,
        "member.status",
        "member",
        member_id,
        now=now or dt.datetime.now(dt.UTC),
        before=before,
        after=status,
        reason=reason,
    )
    return member


_STATUS = Query(select(Member.status).where(Member.id == bindparam("member_id")))


def require_active(session: DBSession, member_id: str) -> None:
    """Pass if the member may use the network now (one prebuilt statement: every request asks).

    Raises:
        UnknownMemberError, MemberSuspendedError.
    """
    _check_status(_STATUS.scalar(session.connection(), {"member_id": member_id}), member_id)


def require_active_now(engine: Engine, member_id: str) -> None:
    """:func:`require_active` outside any transaction of the caller's (every network request's first
    check, on a pooled connection: 21–27 µs, against 190–230 µs for a read transaction of the session's)."""
    rows = _STATUS.read_alone(engine, {"member_id": member_id})
    _check_status(rows[0][0] if rows else None, member_id)


def _check_status(status: str | None, member_id: str) -> None:
    if status is None:
        raise UnknownMemberError(f"{member_id!r} is not a member of the network")
    if status != ACTIVE:
        raise MemberSuspendedError(f"{member_id!r} is suspended")


def endpoint_of(session: DBSession, member_id: str) -> str | None:
    """Where to push documents for ``member_id``; None for a member that pulls, or is suspended (they wait)."""
    member = session.get(Member, member_id)
    return member.endpoint if member is not None and member.status == "active" else None


def directory_content(session: DBSession, *, now: dt.datetime) -> dict[str, Any]:
    """What the directory says (members still in the network, the fallback, the overrides in force), with
    its ``version``: a digest of that content, named in every transaction the exchange signs."""
    from exchange.routing.services import active_overrides

    members = list(session.scalars(select(Member).where(Member.status != REVOKED).order_by(Member.id)))
    fallback = next((member.id for member in members if member.is_fallback and member.status == ACTIVE), None)
    content: dict[str, Any] = {
        "members": [
            {"id": member.id, "name": member.name, "countries": member.countries, "status": member.status}
            for member in members
        ],
        "fallback": fallback,
        "overrides": active_overrides(session, now=now),
    }
    content["version"] = hashlib.sha256(canonical_json(content)).hexdigest()[:16]
    return content


class DirectoryVersion:
    """The exchange's current directory version, read at most once a second per process (every transaction
    names it; a change reaches the nodes' checks within a second)."""

    def __init__(self, db: Any, app: Any, *, clock: Any) -> None:
        self.db, self.app, self.clock = db, app, clock
        self._lock = threading.Lock()
        self._value: tuple[float, str] | None = None

    def claims(self) -> dict[str, str]:
        now = time.monotonic()
        with self._lock:
            cached = self._value
        if cached is None or now - cached[0] > 1.0:
            with self.app.app_context():
                session = self.db.session
                try:
                    version = directory_content(session, now=self.clock())["version"]
                finally:
                    session.remove()
            cached = (now, version)
            with self._lock:
                self._value = cached
        return {"directory": cached[1]}


def signed_directory(session: DBSession, signer: Signer, *, audience: str, now: dt.datetime) -> dict[str, str]:
    """The member directory as a document signed by the exchange (flattened JWS): every member still in the
    network, the fallback, and the routing overrides in force (country → member)."""
    claims = signer.claims(audience, now=now, **directory_content(session, now=now))
    return signer.sign_flattened("hotline.directory.v1", claims)
