"""The ship-date rule: which date and time a shipment sends to GoDataFeed as its shipDate.

GoDataFeed stores a date without a time as midnight, which puts an order bought and shipped on
the same day as shipped before it was bought. So every shipment sends a full date-time with an
offset, and never one before the order's purchase time:

- a date-time with an offset (or Z) is sent as given (to the second, as every ship date);
- a date-time without one is read in GDF_TIMEZONE;
- a blank ship date means now;
- a date D without a time means the latest moment of D that is not in the future
  (23:59:59 of D in GDF_TIMEZONE, or now when D is today), raised to the purchase time when
  that is later.

Rejected, with the reason: a text that is not an ISO 8601 date or date-time, a date before the
order's purchase date, a date-time before its purchase time, and anything more than a day in the
future (a date D counts as in the future from the day after tomorrow).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache

FUTURE_TOLERANCE = timedelta(days=1)
_LAST_SECOND = time(23, 59, 59)

_PATTERN = re.compile(
    r"""
    (?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})
    (?:
        [Tt\ ]
        (?P<hour>\d{2}):(?P<minute>\d{2})
        (?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?
        \ ?(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)?
    )?
    """,
    re.VERBOSE,
)
_FORMAT_HINT = "use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], optionally with an offset such as -05:00"


class ShipDateError(ValueError):
    """A ship date that cannot be sent; the message says why and what to write instead."""


@dataclass(frozen=True)
class ParsedShipDate:
    """A ship date as written: blank, a date alone, or a date-time with or without offset."""

    kind: str  # blank, date, naive or aware
    day: date | None = None
    moment: datetime | None = None


@lru_cache(maxsize=65536)
def parse_ship_date(value: str) -> ParsedShipDate:
    """Reads an ISO 8601 date or date-time; raises ShipDateError for anything else."""
    text = value.strip()
    if not text:
        return ParsedShipDate("blank")

    match = _PATTERN.fullmatch(text)
    if match is None:
        raise ShipDateError(
            f"ship date {_shorten(text)!r} is not a date or date-time; {_FORMAT_HINT}"
        )

    parts = match.groupdict()
    try:
        day = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
        if parts["hour"] is None:
            return ParsedShipDate("date", day=day)
        fraction = (parts["fraction"] or "").ljust(6, "0")[:6]
        clock = time(
            int(parts["hour"]), int(parts["minute"]), int(parts["second"] or 0), int(fraction)
        )
    except ValueError:
        raise ShipDateError(f"ship date {text!r} is not a real date or time") from None

    if parts["offset"] is None:
        return ParsedShipDate("naive", day=day, moment=datetime.combine(day, clock))
    return ParsedShipDate(
        "aware", day=day, moment=datetime.combine(day, clock, tzinfo=_offset(parts["offset"]))
    )


def resolve_ship_date(value: str, *, order_date: datetime, now: datetime, tz: tzinfo) -> datetime:
    """The tz-aware date-time to send for a ship date as written, by the module's rule.

    order_date is the order's purchase time, now the time of the run (both tz-aware), tz the
    zone of GDF_TIMEZONE. Raises ShipDateError when the value cannot be sent.
    """
    parsed = parse_ship_date(value)
    now = now.astimezone(tz).replace(microsecond=0)
    bought = order_date.astimezone(tz)

    if parsed.kind == "blank":
        return max(now, _whole_second_at_or_after(bought))

    if parsed.kind == "date":
        if parsed.day < bought.date():
            raise ShipDateError(
                f"ship date {parsed.day.isoformat()} is before the order's purchase date "
                f"{bought.date().isoformat()}"
            )
        if parsed.day > now.date() + FUTURE_TOLERANCE:
            raise ShipDateError(
                f"ship date {parsed.day.isoformat()} is more than a day in the future"
            )
        latest = datetime.combine(parsed.day, _LAST_SECOND, tzinfo=tz)
        return max(min(latest, now), _whole_second_at_or_after(bought))

    # The client sends whole seconds, so the rule judges the value it will send.
    moment = parsed.moment.replace(microsecond=0)
    if parsed.kind == "naive":
        # Round trip through UTC so a wall time inside a DST gap gets a real local time.
        moment = moment.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)
    if moment < order_date:
        raise ShipDateError(
            f"ship date {moment.isoformat()} is before the order's purchase time "
            f"{bought.isoformat()}"
        )
    if moment > now + FUTURE_TOLERANCE:
        raise ShipDateError(f"ship date {moment.isoformat()} is more than a day in the future")
    return moment


def format_ship_date(moment: datetime) -> str:
    """The shipDate text sent for a resolved ship date: ISO 8601 to the second, with offset."""
    return moment.isoformat(timespec="seconds")


def _offset(text: str) -> tzinfo:
    if text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 18 or minutes > 59:
        raise ShipDateError(f"ship date offset {text!r} is not a real UTC offset")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _whole_second_at_or_after(moment: datetime) -> datetime:
    # Derived ship dates are sent to the second; rounding up keeps them at or after purchase.
    if moment.microsecond:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
