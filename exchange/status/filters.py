"""The dashboard's filters: what the query string may say, checked once, with a clear message per field.

Filters live in the URL (``?from=2025-01&to=2025-12&origin=hotline-nl&country=DE&member=hotline-de&legal=baseline``)
so a view can be shared, exported and fetched from the API with the same words. The period is a range of
months of the **first report** (``confirmed_at``), both ends included; a year (``2025``) means all of it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from federation.errors import ProtocolError

LEGAL_STATUSES = ("baseline", "nationally_illegal")
_MONTH = re.compile(r"^(\d{4})(?:-(\d{2}))?$")
_MEMBER = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
FIELDS = ("from", "to", "origin", "country", "member", "legal")


class FilterError(ProtocolError):
    """One or more filter values that cannot be used; ``errors`` names each field with its message."""

    status = 400
    code = "bad_filter"

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Filters:
    """A validated filter. ``start`` is inclusive, ``end`` exclusive (the first instant after the period)."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    origin: str | None = None
    country: str | None = None
    member: str | None = None
    legal: str | None = None

    def args(self) -> dict[str, str]:
        """The query string that gives this filter back (for links, exports and the API)."""
        out: dict[str, str] = {}
        if self.start is not None:
            out["from"] = self.start.strftime("%Y-%m")
        if self.end is not None:
            last = self.end - dt.timedelta(days=1)
            out["to"] = last.strftime("%Y-%m")
        for name in ("origin", "country", "member", "legal"):
            value = getattr(self, name)
            if value:
                out[name] = value
        return out

    def describe(self) -> str:
        """The filter in words, for titles and exported files (``all cases`` when there is none)."""
        parts = []
        if self.start or self.end:
            parts.append(
                f"first reported {self.args().get('from', 'from the start')} to {self.args().get('to', 'now')}"
            )
        if self.origin:
            parts.append(f"reported by {self.origin}")
        if self.country:
            parts.append(f"hosted in {self.country}")
        if self.member:
            parts.append(f"routed to {self.member}")
        if self.legal:
            parts.append(self.legal.replace("_", " "))
        return ", ".join(parts) or "all cases"

    @property
    def active(self) -> bool:
        return bool(self.args())


def _month_start(text: str) -> tuple[dt.datetime, bool] | None:
    """The first instant of a ``YYYY`` or ``YYYY-MM``, and whether it named a whole year."""
    match = _MONTH.match(text)
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2) or 1)
    if not 2000 <= year <= 2100 or not 1 <= month <= 12:
        return None
    return dt.datetime(year, month, 1, tzinfo=dt.UTC), match.group(2) is None


def _next_month(value: dt.datetime, months: int = 1) -> dt.datetime:
    index = value.year * 12 + value.month - 1 + months
    return value.replace(year=index // 12, month=index % 12 + 1)


def parse_filters(args: Mapping[str, str]) -> Filters:
    """Check the query string; raise :class:`FilterError` naming every bad field (never a 500)."""
    errors: dict[str, str] = {}
    start = end = None
    raw = {name: (args.get(name) or "").strip() for name in FIELDS}
    if raw["from"]:
        found = _month_start(raw["from"])
        if found is None:
            errors["from"] = "Enter the first month as YYYY-MM (for example 2025-01) or a year as YYYY"
        else:
            start = found[0]
    if raw["to"]:
        found = _month_start(raw["to"])
        if found is None:
            errors["to"] = "Enter the last month as YYYY-MM (for example 2025-12) or a year as YYYY"
        else:
            end = _next_month(found[0], 12 if found[1] else 1)
    if start and end and end <= start:
        errors["to"] = "The last month must not be before the first month"
    for name in ("origin", "member"):
        if raw[name] and not _MEMBER.match(raw[name]):
            errors[name] = "Choose a member from the list (a member id such as hotline-nl)"
    country = raw["country"].upper()
    if country and not _COUNTRY.match(country):
        errors["country"] = "Enter a two-letter country code such as DE"
    if raw["legal"] and raw["legal"] not in LEGAL_STATUSES:
        errors["legal"] = "Choose baseline or nationally illegal"
    if errors:
        raise FilterError(errors)
    return Filters(
        start=start,
        end=end,
        origin=raw["origin"] or None,
        country=country or None,
        member=raw["member"] or None,
        legal=raw["legal"] or None,
    )


def year_filters(year: int) -> Filters:
    """The whole of one calendar year (the annual summary)."""
    start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    return Filters(start=start, end=_next_month(start, 12))
