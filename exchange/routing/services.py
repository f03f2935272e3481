"""Choose the destination of a report from its hosting country.

The active member covering the country receives it; if none does, the fallback member (the
secretariat) does. With neither, the report is refused so that the origin knows at once, instead of the
report waiting in a queue nobody reads.
"""

from __future__ import annotations

from sqlalchemy import select

from exchange.members.models import Member
from federation.errors import ProtocolError
from service.database import DBSession


class NoRouteError(ProtocolError):
    status = 422
    code = "no_route"


class HostedAtOriginError(ProtocolError):
    status = 422
    code = "hosted_at_origin"


def route(session: DBSession, *, hosting_country: str, origin: str, cache: dict[str, object] | None = None) -> Member:
    """Return the member that must receive a report of content hosted in ``hosting_country``.

    ``cache`` (one unit of work's scratch space) keeps the active members between reports of a batch.

    Raises:
        HostedAtOriginError: the origin itself covers the country (it handles the report at home).
        NoRouteError: no active member covers the country and there is no active fallback.
    """
    if cache is not None and "active_members" in cache:
        members: list[Member] = cache["active_members"]  # type: ignore[assignment]
    else:
        members = list(session.scalars(select(Member).where(Member.status == "active")))
        if cache is not None:
            cache["active_members"] = members
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
