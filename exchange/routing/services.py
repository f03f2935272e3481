"""Choose the destination of a report from its hosting country, and show the secretariat how it is done.

In order: an **override** the secretariat set for the country (unexpired, to an active member) decides;
else the active member covering the country receives it (two active members never cover one country:
``exchange.members.services`` refuses it); else the fallback member (the secretariat) does. With none of
these, the report is refused so that the origin knows at once, instead of the report waiting in a queue
nobody reads. Overrides are published in the signed directory, so nodes accept what is routed to them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import select

from audit.services import AuditLog
from certs.identity import COUNTRY_PATTERN
from exchange.audit.models import AUDIT
from exchange.members.models import ACTIVE, Member
from exchange.routing.models import RouteOverride
from federation.errors import ProtocolError
from service.database import DBSession, Query


class NoRouteError(ProtocolError):
    status = 422
    code = "no_route"


class HostedAtOriginError(ProtocolError):
    status = 422
    code = "hosted_at_origin"


class Candidate(NamedTuple):
    """An active member as routing sees it."""

    id: str
    countries: list[str]
    is_fallback: bool


# Built once and run on the driver's cursor: each is read in every transaction that routes (issue 11).
_ACTIVE_MEMBERS = Query(select(Member.id, Member.countries, Member.is_fallback).where(Member.status == ACTIVE))
_OVERRIDES = Query(select(RouteOverride.country, RouteOverride.member_id, RouteOverride.expires_at))


def active_members(session: DBSession) -> list[Candidate]:
    """Every active member, as plain rows (no ORM objects: routing only reads them)."""
    return [Candidate(*row) for row in _ACTIVE_MEMBERS.rows(session.connection())]


def routing_snapshot(
    session: DBSession, *, cache: dict[str, object] | None = None, now: dt.datetime | None = None
) -> tuple[list[Candidate], dict[str, str]]:
    """The active members and the live overrides (country → member), read once per ``cache``."""
    if cache is not None and "active_members" in cache:
        return cache["active_members"], cache["overrides"]  # type: ignore[return-value]
    members = active_members(session)
    overrides = active_overrides(session, now=now or dt.datetime.now(dt.UTC), active={m.id for m in members})
    if cache is not None:
        cache["active_members"], cache["overrides"] = members, overrides
    return members, overrides


def route(
    session: DBSession,
    *,
    hosting_country: str,
    origin: str,
    cache: dict[str, object] | None = None,
    now: dt.datetime | None = None,
) -> Candidate:
    """Return the member that must receive a report of content hosted in ``hosting_country``.

    ``cache`` (one unit of work's scratch space) keeps the active members between reports of a batch.

    Raises:
        HostedAtOriginError: the origin itself covers the country, or an override sends it there.
        NoRouteError: no active member covers the country and there is no active fallback.
    """
    members, overrides = routing_snapshot(session, cache=cache, now=now)
    chosen = overrides.get(hosting_country)
    if chosen is not None:
        if chosen == origin:
            raise HostedAtOriginError(f"{origin} handles {hosting_country} (a routing override): act on it at home")
        return next(member for member in members if member.id == chosen)
    for member in members:
        if hosting_country in member.countries:
            if member.id == origin:
                raise HostedAtOriginError(
                    f"{origin} covers {hosting_country}: send the notice and police referral at home"
                )
            return member
    fallback = next((member for member in members if member.is_fallback), None)
    if fallback is None:
        raise NoRouteError(f"no member covers {hosting_country} and no fallback is configured")
    if fallback.id == origin:
        raise HostedAtOriginError(f"{origin} is the fallback for {hosting_country}: handle it directly")
    return fallback


class OverrideInputError(ProtocolError):
    status = 422
    code = "invalid_override"


def active_overrides(session: DBSession, *, now: dt.datetime, active: set[str] | None = None) -> dict[str, str]:
    """Country → member, for overrides that have not expired and point at an active member."""
    if active is None:
        active = {member.id for member in active_members(session)}
    return {
        country: member_id
        for country, member_id, expires_at in _OVERRIDES.rows(session.connection())
        if member_id in active and (expires_at is None or expires_at > now)
    }


def set_override(
    session: DBSession,
    *,
    country: str,
    member_id: str,
    reason: str,
    expires_at: dt.datetime | None,
    actor: str,
    now: dt.datetime,
) -> RouteOverride:
    """Send ``country``'s reports to ``member_id`` (replacing any override of it), audited.

    Raises (before any write): OverrideInputError.
    """
    country = country.strip().upper()
    if not COUNTRY_PATTERN.match(country):
        raise OverrideInputError("country must be a two-letter ISO 3166-1 code, such as DE")
    member = session.get(Member, member_id)
    if member is None or member.status != ACTIVE:
        raise OverrideInputError(f"{member_id} is not an active member: reports cannot go there")
    if not reason.strip():
        raise OverrideInputError("say why: the reason is shown on the routing page and kept in the audit trail")
    if expires_at is not None and expires_at <= now:
        raise OverrideInputError("the expiry must lie in the future (or leave it empty: until removed)")
    row = session.get(RouteOverride, country)
    before = None if row is None else {"member": row.member_id, "expires_at": _iso(row.expires_at)}
    if row is None:
        row = RouteOverride(country=country)
        session.add(row)
    row.member_id, row.reason, row.expires_at = member_id, reason.strip(), expires_at
    row.created_at, row.created_by = now, actor
    session.flush()
    AuditLog(session, AUDIT).record(
        actor,
        "routing.override",
        "country",
        country,
        now=now,
        before=before,
        member=member_id,
        reason=row.reason,
        expires_at=_iso(expires_at),
    )
    return row


def clear_override(session: DBSession, *, country: str, reason: str, actor: str, now: dt.datetime) -> None:
    """Route ``country`` by the directory again, audited.

    Raises: OverrideInputError.
    """
    row = session.get(RouteOverride, country.strip().upper())
    if row is None:
        raise OverrideInputError(f"there is no override for {country}")
    if not reason.strip():
        raise OverrideInputError("say why the override ends: the reason is kept in the audit trail")
    AuditLog(session, AUDIT).record(
        actor, "routing.override_removed", "country", row.country, now=now, member=row.member_id, reason=reason
    )
    session.delete(row)
    session.flush()


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class Route:
    country: str
    member: str | None
    how: str
    """``override``, ``member`` (the member covering it), ``fallback`` or ``none``."""
    covering: str | None
    """The member whose certificate and directory entry name the country (active or not)."""
    covering_status: str | None
    override: RouteOverride | None


def routing_table(session: DBSession, *, now: dt.datetime) -> tuple[list[Route], Member | None, list[RouteOverride]]:
    """Where each country's reports go now (every country a member names or an override sets), the fallback,
    and expired overrides still on record."""
    members = list(session.scalars(select(Member).order_by(Member.id)))
    active = {m.id for m in members if m.status == ACTIVE}
    fallback = next((m for m in members if m.is_fallback and m.status == ACTIVE), None)
    overrides = {row.country: row for row in session.scalars(select(RouteOverride))}
    live = active_overrides(session, now=now, active=active)
    covering: dict[str, Member] = {}
    for member in members:
        for country in member.countries:
            if country not in covering or member.status == ACTIVE:
                covering[country] = member
    routes = []
    for country in sorted({*covering, *overrides}):
        owner = covering.get(country)
        target: str | None
        if country in live:
            target, how = live[country], "override"
        elif owner is not None and owner.status == ACTIVE:
            target, how = owner.id, "member"
        elif fallback is not None:
            target, how = fallback.id, "fallback"
        else:
            target, how = None, "none"
        routes.append(
            Route(
                country=country,
                member=target,
                how=how,
                covering=owner.id if owner else None,
                covering_status=owner.status if owner else None,
                override=overrides.get(country) if country in live else None,
            )
        )
    expired = [row for country, row in sorted(overrides.items()) if country not in live]
    return routes, fallback, expired
