"""
Calendar event source math, pure: when a schedule fires, what was missed, what an event holds.

Called by the calendar ticker (async, elsewhere), which owns the clock and persistence, and by
:mod:`gittrigger.sources.model` to validate ``schedule``/``interval``/``maxDuration`` fields.
Semantics follow Argo Events' ``calendar`` source: a five-field cron ``schedule`` wins over an
``interval`` (a Go duration; the next fire is the previous one truncated to the second plus the
interval, like robfig/cron's ``ConstantDelaySchedule``); a fire whose calendar day (in the
schedule's timezone) equals an ``EXDATE`` is skipped; with catch-up enabled every fire between
the last persisted one and now is delivered, starting no earlier than ``now - maxDuration``.
Cron parsing is croniter's (ranges, steps, names, DST), not a hand-written parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from gittrigger.sources.envelope import EventParts, event_id_for, rfc3339

SOURCE_TYPE: Final = "calendar"

_GO_UNITS: Final = {
    "ns": timedelta(microseconds=0.001),
    "us": timedelta(microseconds=1),
    "µs": timedelta(microseconds=1),
    "μs": timedelta(microseconds=1),
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
}
_GO_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_EXDATE_PREFIX: Final = "EXDATE:"


def parse_duration(text: str) -> timedelta:
    """Parse a Go duration (``90s``, ``1h30m``, ``1.5h``, ``-2m``) as ``time.ParseDuration`` does.

    Raises ``ValueError`` naming the text; days (``1d``) are not Go units and are refused.
    """
    s = text.strip()
    sign = -1 if s.startswith("-") else 1
    body = s.lstrip("+-")
    if body == "0":
        return timedelta(0)
    total, pos = timedelta(0), 0
    while pos < len(body):
        match = _GO_PART.match(body, pos)
        if match is None:
            break
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise ValueError(f"invalid duration {text!r}: expected a Go duration such as 30s, 5m or 1h30m")
    return sign * total


def parse_exclusion_date(text: str) -> list[date]:
    """The days of one RFC 5545 ``EXDATE:20190102T150405Z[,...]`` entry (UTC calendar days)."""
    if not text.startswith(_EXDATE_PREFIX):
        raise ValueError(f"invalid exclusion date {text!r}: expected EXDATE:YYYYMMDDTHHMMSSZ")
    days = []
    for item in text.removeprefix(_EXDATE_PREFIX).split(","):
        try:
            days.append(datetime.strptime(item, "%Y%m%dT%H%M%SZ").date())
        except ValueError:
            raise ValueError(f"invalid exclusion date {item!r}: expected YYYYMMDDTHHMMSSZ") from None
    return days


def zone(name: str) -> tzinfo:
    """The IANA timezone ``name`` (``""`` is UTC); ``ValueError`` when unknown."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None


def validate_schedule(schedule: str) -> None:
    """Accept exactly what Argo Events' cron parser accepts: five fields, no ``@`` descriptors."""
    fields = schedule.split()
    if schedule.strip().startswith("@") or len(fields) != 5:
        raise ValueError(
            f"invalid schedule {schedule!r}: expected five cron fields"
            " (minute hour day-of-month month day-of-week)"
        )
    try:
        croniter(schedule, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as e:
        raise ValueError(f"invalid schedule {schedule!r}: {e}") from None


def next_fires(
    schedule: str,
    *,
    after: datetime,
    timezone: str = "",
    exclusion_dates: Iterable[date] = (),
    interval: timedelta | None = None,
) -> Iterator[datetime]:
    """Every fire time strictly after ``after``, in order, as aware datetimes in ``timezone``.

    ``schedule`` (cron) takes precedence over ``interval``; with neither, ``ValueError``. The
    iterator is endless; take what you need (``itertools.islice``).
    """
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    tz = zone(timezone)
    excluded = frozenset(d.date() if isinstance(d, datetime) else d for d in exclusion_dates)
    start = after.astimezone(tz)
    if schedule:
        validate_schedule(schedule)
        fires: Iterator[datetime] = _cron(schedule, start)
    elif interval is not None:
        if interval <= timedelta(0):
            raise ValueError(f"interval must be positive, got {interval}")
        fires = _every(interval, start)
    else:
        raise ValueError("calendar event must contain either a schedule or interval")
    return (fire for fire in fires if fire.date() not in excluded)


def _cron(schedule: str, start: datetime) -> Iterator[datetime]:
    it = croniter(schedule, start)
    while True:
        yield it.get_next(datetime)


def _every(interval: timedelta, start: datetime) -> Iterator[datetime]:
    # Step in UTC: aware datetimes sharing a zone add in wall-clock time, so across a DST change
    # the same instant would come out twice (02:30+01:00 then 03:30+02:00 in Europe/Berlin).
    zone = start.tzinfo
    fire = start.astimezone(UTC).replace(microsecond=0)
    while True:
        fire = fire + interval
        yield fire.astimezone(zone) if zone is not None else fire


def catchup_start(last_fire: datetime, *, now: datetime, max_duration: timedelta | None) -> datetime:
    """Where catch-up begins: the last persisted fire, but no earlier than ``now - max_duration``."""
    if max_duration is not None and now - last_fire > max_duration:
        return now - max_duration
    return last_fire


def missed_fires(
    last_fire: datetime,
    now: datetime,
    max_duration: timedelta | None,
    *,
    schedule: str,
    timezone: str = "",
    exclusion_dates: Iterable[date] = (),
    interval: timedelta | None = None,
) -> Iterator[datetime]:
    """The fires due in ``(start, now]`` that were not delivered, oldest first.

    ``start`` is :func:`catchup_start`. Lazy, because ``* * * * *`` over a long outage with no
    ``maxDuration`` is a lot of fires: the caller decides how many to deliver.
    """
    start = catchup_start(last_fire, now=now, max_duration=max_duration)
    for fire in next_fires(
        schedule, after=start, timezone=timezone, exclusion_dates=exclusion_dates, interval=interval
    ):
        if fire > now:
            return
        yield fire


def go_time_string(moment: datetime) -> str:
    """``moment`` as Go's ``time.Time.String()`` (``2024-05-01 10:30:00 +0200 CEST``).

    Argo Events puts this in ``eventTime`` and parses it back for catch-up, so we keep it.
    """
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    base = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        base += f".{moment.microsecond:06d}".rstrip("0")
    offset = moment.strftime("%z") or "+0000"
    return f"{base} {offset} {moment.tzname() or 'UTC'}"


def to_event(
    fire: datetime, *, source_name: str, event_name: str, metadata: Mapping[str, str] | None = None
) -> EventParts:
    """The Argo Events ``calendar`` event for one fire: ``{"eventTime": ..., "metadata": ...}``.

    Its dedup key is the fire time, so a fire replayed after a restart is stored once.
    """
    data: dict[str, Any] = {"eventTime": go_time_string(fire)}
    if metadata:
        data["metadata"] = dict(metadata)
    key = rfc3339(fire)
    context = {
        "id": event_id_for(
            source_type=SOURCE_TYPE, source_name=source_name, event_name=event_name, delivery_id=key
        ),
        "source": source_name,
        "specversion": "1.0",
        "type": SOURCE_TYPE,
        "subject": event_name,
        "time": key,
        "datacontenttype": "application/json",
    }
    return EventParts(context=context, data=data, delivery_id=key)
