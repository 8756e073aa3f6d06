"""Calendar source math: cron and interval fires, exclusion dates, timezones, catch-up, Go formats."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from gittrigger.sources import cron

T0 = datetime(2024, 5, 1, 10, 7, 30, 250000, tzinfo=UTC)
NY = ZoneInfo("America/New_York")


def take(n: int, **kwargs: object) -> list[datetime]:
    return list(islice(cron.next_fires(**kwargs), n))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"schedule": "*/15 * * * *", "after": T0},
            ["2024-05-01T10:15:00+00:00", "2024-05-01T10:30:00+00:00", "2024-05-01T10:45:00+00:00"],
        ),
        (
            {"schedule": "30 * * * *", "after": datetime(2024, 5, 1, 10, 30, tzinfo=UTC)},
            ["2024-05-01T11:30:00+00:00", "2024-05-01T12:30:00+00:00", "2024-05-01T13:30:00+00:00"],
        ),
        (
            {"schedule": "0 9 * * mon-fri", "after": datetime(2024, 5, 3, 12, tzinfo=UTC)},
            ["2024-05-06T09:00:00+00:00", "2024-05-07T09:00:00+00:00", "2024-05-08T09:00:00+00:00"],
        ),
        (
            {"schedule": "", "interval": timedelta(seconds=10), "after": T0},
            ["2024-05-01T10:07:40+00:00", "2024-05-01T10:07:50+00:00", "2024-05-01T10:08:00+00:00"],
        ),
        (
            {"schedule": "0 0 * * *", "interval": timedelta(seconds=10), "after": T0},
            ["2024-05-02T00:00:00+00:00", "2024-05-03T00:00:00+00:00", "2024-05-04T00:00:00+00:00"],
        ),
        (
            {"schedule": "0 0 * * *", "after": T0, "exclusion_dates": [date(2024, 5, 2), date(2024, 5, 4)]},
            ["2024-05-03T00:00:00+00:00", "2024-05-05T00:00:00+00:00", "2024-05-06T00:00:00+00:00"],
        ),
        (
            {"schedule": "0 9 * * *", "after": T0, "timezone": "America/New_York"},
            ["2024-05-01T09:00:00-04:00", "2024-05-02T09:00:00-04:00", "2024-05-03T09:00:00-04:00"],
        ),
        (
            {
                "schedule": "0 9 * * *",
                "after": datetime(2024, 3, 9, 12, tzinfo=UTC),
                "timezone": "America/New_York",
            },
            ["2024-03-09T09:00:00-05:00", "2024-03-10T09:00:00-04:00", "2024-03-11T09:00:00-04:00"],
        ),
    ],
    ids=[
        "step",
        "strictly-after",
        "weekday-names",
        "interval-truncates-to-second",
        "schedule-wins",
        "exclusion-dates",
        "timezone",
        "dst-spring-forward",
    ],
)
def test_next_fires(kwargs: dict[str, object], expected: list[str]) -> None:
    """Fires follow Argo's calendar rules: cron over interval, strictly after, days excluded, local time."""
    assert expected == [f.isoformat() for f in take(3, **kwargs)]


def test_exclusion_matches_the_local_day() -> None:
    """An EXDATE day is compared with the fire's day in the schedule's timezone, as Argo does."""
    # 23:00 in New York on May 1 is May 2 in UTC; excluding May 1 removes it.
    fires = take(
        1, schedule="0 23 * * *", after=T0, timezone="America/New_York", exclusion_dates=[date(2024, 5, 1)]
    )
    assert [f.isoformat() for f in fires] == ["2024-05-02T23:00:00-04:00"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schedule": "", "after": T0}, "either a schedule or interval"),
        ({"schedule": "@daily", "after": T0}, "expected five cron fields"),
        ({"schedule": "* * * * * *", "after": T0}, "expected five cron fields"),
        ({"schedule": "61 * * * *", "after": T0}, r"invalid schedule '61 \* \* \* \*': .*out of range"),
        ({"schedule": "", "interval": timedelta(0), "after": T0}, "interval must be positive"),
        ({"schedule": "* * * * *", "after": datetime(2024, 1, 1)}, "timezone-aware"),
        (
            {"schedule": "* * * * *", "after": T0, "timezone": "Mars/Olympus"},
            "unknown timezone 'Mars/Olympus'",
        ),
    ],
    ids=["nothing", "descriptor", "seconds-field", "out-of-range", "zero-interval", "naive", "bad-zone"],
)
def test_bad_calendars(kwargs: dict[str, object], message: str) -> None:
    """What Argo's calendar source refuses, we refuse, with the field's value in the message."""
    with pytest.raises(ValueError, match=message):
        take(1, **kwargs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10s", timedelta(seconds=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(minutes=90)),
        ("300ms", timedelta(milliseconds=300)),
        ("-2m", timedelta(minutes=-2)),
        ("0", timedelta(0)),
        ("2h45m10s", timedelta(hours=2, minutes=45, seconds=10)),
    ],
    ids=["seconds", "compound", "fraction", "millis", "negative", "zero", "three-units"],
)
def test_parse_go_duration(text: str, expected: timedelta) -> None:
    """Durations are Go's, as written in interval and maxDuration."""
    assert expected == cron.parse_duration(text)


@pytest.mark.parametrize("text", ["", "10", "1d", "5 m", "m", "1h-5m", "abc"], ids=str)
def test_parse_go_duration_rejects(text: str) -> None:
    """Anything Go's ParseDuration refuses is refused, including days and bare numbers."""
    with pytest.raises(ValueError, match="invalid duration"):
        cron.parse_duration(text)


def test_parse_exclusion_dates() -> None:
    """EXDATE entries (RFC 5545) list UTC instants; their calendar days are excluded."""
    assert [date(2019, 1, 2), date(2019, 6, 2)] == cron.parse_exclusion_date(
        "EXDATE:20190102T150405Z,20190602T160210Z"
    )
    with pytest.raises(ValueError, match="expected EXDATE:"):
        cron.parse_exclusion_date("20190102T150405Z")
    with pytest.raises(ValueError, match="'2019-01-02'"):
        cron.parse_exclusion_date("EXDATE:2019-01-02")


NOW = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last", "max_duration", "expected"),
    [
        (datetime(2024, 5, 1, 11, 57, tzinfo=UTC), None, ["11:58", "11:59", "12:00"]),
        (datetime(2024, 5, 1, 8, 0, tzinfo=UTC), timedelta(minutes=2), ["11:59", "12:00"]),
        (datetime(2024, 5, 1, 11, 59, 10, tzinfo=UTC), timedelta(minutes=5), ["12:00"]),
        (datetime(2024, 5, 1, 12, 0, tzinfo=UTC), None, []),
    ],
    ids=["all-missed", "capped-by-max-duration", "max-duration-not-reached", "nothing-missed"],
)
def test_missed_fires(last: datetime, max_duration: timedelta | None, expected: list[str]) -> None:
    """Catch-up delivers every fire in (last, now], starting no earlier than now - maxDuration."""
    fires = cron.missed_fires(last, NOW, max_duration, schedule="* * * * *")
    assert expected == [f.strftime("%H:%M") for f in fires]


def test_catchup_start() -> None:
    """The catch-up window is clamped to maxDuration."""
    last = datetime(2024, 4, 1, tzinfo=UTC)
    assert NOW - timedelta(hours=1) == cron.catchup_start(last, now=NOW, max_duration=timedelta(hours=1))
    assert last == cron.catchup_start(last, now=NOW, max_duration=None)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2024, 5, 1, 10, 30, tzinfo=UTC), "2024-05-01 10:30:00 +0000 UTC"),
        (datetime(2024, 5, 1, 10, 30, 0, 120000, tzinfo=UTC), "2024-05-01 10:30:00.12 +0000 UTC"),
        (datetime(2024, 1, 1, 9, 0, tzinfo=NY), "2024-01-01 09:00:00 -0500 EST"),
    ],
    ids=["utc", "fraction-trimmed", "zone-abbreviation"],
)
def test_go_time_string(moment: datetime, expected: str) -> None:
    """eventTime is Go's time.String(), which Argo also parses back for catch-up."""
    assert expected == cron.go_time_string(moment)


def test_calendar_event() -> None:
    """A fire becomes Argo's calendar event, keyed by the fire time so a replay dedups."""
    fire = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    parts = cron.to_event(fire, source_name="nightly", event_name="build", metadata={"hello": "world"})
    again = cron.to_event(fire, source_name="nightly", event_name="build")
    assert parts.data == {"eventTime": "2024-05-01 10:30:00 +0000 UTC", "metadata": {"hello": "world"}}
    assert (
        parts.context["type"],
        parts.context["source"],
        parts.context["subject"],
    ) == ("calendar", "nightly", "build")
    assert parts.delivery_id == "2024-05-01T10:30:00Z"
    assert parts.context["id"] == again.context["id"]
    assert {"eventTime"} == set(again.data)


def test_interval_fires_are_distinct_instants_across_dst() -> None:
    """An interval steps in real time: the spring-forward hour yields no instant twice."""
    from datetime import datetime as _dt
    from zoneinfo import ZoneInfo

    from gittrigger.sources import cron as _cron

    zone = ZoneInfo("Europe/Berlin")
    fires = _cron._every(timedelta(hours=1), _dt(2024, 3, 31, 0, 30, tzinfo=zone))
    instants = [next(fires).timestamp() for _ in range(4)]
    assert instants == sorted(set(instants)) and instants[1] - instants[0] == 3600
