"""The ship-date rule as one table: what each written ship date sends, or why it is rejected.

Also: a wall time inside a DST gap, and a property over arbitrary date-times that whatever is
sent has a time and an offset, is whole seconds, is never before the purchase and never more
than a day ahead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gdf_pipeline.outbound.ship_dates import (
    ShipDateError,
    format_ship_date,
    parse_ship_date,
    resolve_ship_date,
)

NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 12, 3, 15, 0, 0, tzinfo=NEW_YORK)
BOUGHT_TODAY = datetime(2026, 12, 3, 9, 15, 27, tzinfo=NEW_YORK)
BOUGHT_YESTERDAY = datetime(2026, 12, 2, 22, 0, 0, tzinfo=NEW_YORK)
BOUGHT_LAST_SECOND = datetime(2026, 12, 2, 23, 59, 59, 500000, tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("value", "bought", "sent"),
    [
        pytest.param("", BOUGHT_TODAY, "2026-12-03T15:00:00-05:00", id="blank-is-now"),
        pytest.param("  ", BOUGHT_TODAY, "2026-12-03T15:00:00-05:00", id="spaces-are-blank"),
        pytest.param("2026-12-03", BOUGHT_TODAY, "2026-12-03T15:00:00-05:00", id="today-is-now"),
        pytest.param(
            "2026-12-02", BOUGHT_YESTERDAY, "2026-12-02T23:59:59-05:00", id="past-day-ends-it"
        ),
        pytest.param(
            "2026-12-02",
            BOUGHT_LAST_SECOND,
            "2026-12-03T00:00:00-05:00",
            id="never-before-a-purchase-in-the-last-second",
        ),
        pytest.param("2026-12-04", BOUGHT_TODAY, "2026-12-03T15:00:00-05:00", id="tomorrow-is-now"),
        pytest.param(
            "2026-12-03T10:00:00", BOUGHT_TODAY, "2026-12-03T10:00:00-05:00", id="naive-is-local"
        ),
        pytest.param(
            "2026-12-03 10:00", BOUGHT_TODAY, "2026-12-03T10:00:00-05:00", id="space-no-seconds"
        ),
        pytest.param(
            "2026-12-03t18:00:00z", BOUGHT_TODAY, "2026-12-03T18:00:00+00:00", id="utc-as-given"
        ),
        pytest.param(
            "2026-12-03T20:00:00+05:30",
            BOUGHT_TODAY,
            "2026-12-03T20:00:00+05:30",
            id="offset-as-given",
        ),
        pytest.param(
            "2026-12-03T10:00:00-0500", BOUGHT_TODAY, "2026-12-03T10:00:00-05:00", id="hhmm"
        ),
        pytest.param(
            "2026-12-03T10:00:00 -05", BOUGHT_TODAY, "2026-12-03T10:00:00-05:00", id="hours-only"
        ),
        pytest.param(
            "2026-12-03T09:15:27.900-05:00",
            BOUGHT_TODAY,
            "2026-12-03T09:15:27-05:00",
            id="whole-seconds-at-purchase",
        ),
        pytest.param(
            "2026-12-04T15:00:00-05:00",
            BOUGHT_TODAY,
            "2026-12-04T15:00:00-05:00",
            id="a-day-ahead-at-most",
        ),
    ],
)
def test_what_a_ship_date_sends(value, bought, sent):
    moment = resolve_ship_date(value, order_date=bought, now=NOW, tz=NEW_YORK)

    assert format_ship_date(moment) == sent


@pytest.mark.parametrize(
    ("value", "bought", "reason"),
    [
        pytest.param(
            "2026-12-02", BOUGHT_TODAY, "before the order's purchase date", id="day-before"
        ),
        pytest.param(
            "2026-12-03T09:15:26-05:00",
            BOUGHT_TODAY,
            "before the order's purchase time",
            id="second-before",
        ),
        pytest.param(
            "2026-12-03T00:00:00", BOUGHT_TODAY, "before the order's purchase time", id="midnight"
        ),
        pytest.param(
            "2026-12-03T13:00:00+05:30",
            BOUGHT_TODAY,
            "before the order's purchase time",
            id="offset-puts-it-before",
        ),
        pytest.param("2026-12-05", BOUGHT_TODAY, "more than a day in the future", id="day-ahead"),
        pytest.param(
            "2026-12-04T15:00:01-05:00",
            BOUGHT_TODAY,
            "more than a day in the future",
            id="second-too-far",
        ),
        pytest.param("03/12/2026", BOUGHT_TODAY, "is not a date or date-time", id="slashes"),
        pytest.param("2026-12-3", BOUGHT_TODAY, "is not a date or date-time", id="one-digit"),
        pytest.param("yesterday", BOUGHT_TODAY, "is not a date or date-time", id="words"),
        pytest.param("2026-02-30", BOUGHT_TODAY, "is not a real date", id="no-such-day"),
        pytest.param("2026-12-03T24:00", BOUGHT_TODAY, "is not a real date", id="no-such-hour"),
        pytest.param(
            "2026-12-03T10:00+25:00", BOUGHT_TODAY, "not a real UTC offset", id="no-such-offset"
        ),
        pytest.param("2026-12-03+05:00", BOUGHT_TODAY, "is not a date", id="offset-no-time"),
    ],
)
def test_which_ship_dates_are_rejected(value, bought, reason):
    with pytest.raises(ShipDateError, match=reason):
        resolve_ship_date(value, order_date=bought, now=NOW, tz=NEW_YORK)


def test_a_wall_time_in_the_spring_dst_gap_gets_a_real_local_time():
    bought = datetime(2026, 3, 8, 0, 30, tzinfo=NEW_YORK)
    now = datetime(2026, 3, 8, 12, 0, tzinfo=NEW_YORK)

    moment = resolve_ship_date("2026-03-08T02:30:00", order_date=bought, now=now, tz=NEW_YORK)

    assert format_ship_date(moment) == "2026-03-08T03:30:00-04:00"


def test_parsing_says_which_kind_of_value_was_written():
    assert parse_ship_date("").kind == "blank"
    assert parse_ship_date("2026-12-03").kind == "date"
    assert parse_ship_date("2026-12-03T10:00").kind == "naive"
    assert parse_ship_date("2026-12-03T10:00Z").kind == "aware"


moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@given(
    bought=moments,
    now_after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)),
    written=moments,
    kind=st.sampled_from(["blank", "date", "naive", "aware"]),
    zone=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"]),
)
def test_whatever_is_sent_has_a_time_and_is_never_before_the_purchase(
    bought, now_after, written, kind, zone
):
    tz = ZoneInfo(zone)
    now = bought + now_after
    value = {
        "blank": "",
        "date": written.astimezone(tz).date().isoformat(),
        "naive": written.astimezone(tz).replace(tzinfo=None).isoformat(),
        "aware": written.isoformat(),
    }[kind]

    try:
        moment = resolve_ship_date(value, order_date=bought, now=now, tz=tz)
    except ShipDateError:
        return

    sent = format_ship_date(moment)
    assert "T" in sent and moment.utcoffset() is not None
    assert moment.microsecond == 0
    assert moment >= bought
    assert moment <= now + timedelta(days=1)
