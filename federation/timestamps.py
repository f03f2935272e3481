"""Reading timestamps out of verified messages: RFC 3339 text and NumericDate, always to aware UTC.

The schemas already check the form; this also refuses values a database cannot store (a date that
leaves the years 1..9999 once converted to UTC), with the same ``schema_invalid`` code, so that one
odd timestamp in one document can never fail a whole transaction.
"""

from __future__ import annotations

import datetime as dt

from schemas import SchemaValidationError


def parse_timestamp(value: str) -> dt.datetime:
    """Parse an RFC 3339 timestamp from a message into aware UTC.

    Raises:
        SchemaValidationError: it is not a storable point in time.
    """
    try:
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("no time zone")
        return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError, TypeError) as exc:
        raise SchemaValidationError(f"timestamp {value[:40]!r} is not a storable UTC time") from exc


def from_numeric_date(value: int) -> dt.datetime:
    """Turn a NumericDate (seconds since the epoch) into aware UTC.

    Raises:
        SchemaValidationError: it is out of range.
    """
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (ValueError, OverflowError, OSError, TypeError) as exc:
        raise SchemaValidationError(f"NumericDate {value!r} is out of range") from exc
