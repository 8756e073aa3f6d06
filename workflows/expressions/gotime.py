"""
Go ``time`` layouts ("2006-01-02T15:04:05Z07:00") for sprig's ``date`` and friends.

Argo users write Go reference-time layouts such as ``sprig.date('2006', ...)``; Python's
strftime cannot read them, so this module formats a datetime against a Go layout. Called by
:mod:`workflows.expressions.sprig` and :mod:`workflows.expressions.goformat`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

_CHUNK: Final = re.compile(
    r"January|Jan|Monday|Mon|MST|2006|002|__2|_2|15|01|02|03|04|05|06|1|2|3|4|5|PM|pm"
    r"|Z07:00:00|Z070000|Z07:00|Z0700|Z07|-07:00:00|-070000|-07:00|-0700|-07"
    r"|[.,](?:0+|9+)(?!\d)"
)
_MONTHS: Final = ("January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December")
_DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _offset(dt: datetime, *, zulu: bool, colon: bool, seconds: bool, hours_only: bool) -> str:
    delta = dt.utcoffset()
    total = int(delta.total_seconds()) if delta is not None else 0
    if zulu and total == 0:
        return "Z"
    sign = "-" if total < 0 else "+"
    total = abs(total)
    hh, mm, ss = total // 3600, total % 3600 // 60, total % 60
    if hours_only:
        return f"{sign}{hh:02d}"
    sep = ":" if colon else ""
    return f"{sign}{hh:02d}{sep}{mm:02d}" + (f"{sep}{ss:02d}" if seconds else "")


def _fraction(chunk: str, dt: datetime) -> str:
    digits = f"{dt.microsecond:06d}000"[: len(chunk) - 1]
    if chunk[1] == "9":
        digits = digits.rstrip("0")
        return (chunk[0] + digits) if digits else ""
    return chunk[0] + digits


def _chunk(chunk: str, dt: datetime) -> str:
    hour12 = dt.hour % 12 or 12
    simple = {
        "January": _MONTHS[dt.month - 1], "Jan": _MONTHS[dt.month - 1][:3],
        "Monday": _DAYS[dt.weekday()], "Mon": _DAYS[dt.weekday()][:3],
        "MST": dt.tzname() or "UTC", "2006": f"{dt.year:04d}", "06": f"{dt.year % 100:02d}",
        "01": f"{dt.month:02d}", "1": str(dt.month), "02": f"{dt.day:02d}", "2": str(dt.day),
        "_2": f"{dt.day:2d}", "002": f"{dt.timetuple().tm_yday:03d}", "__2": f"{dt.timetuple().tm_yday:3d}",
        "15": f"{dt.hour:02d}", "03": f"{hour12:02d}", "3": str(hour12),
        "04": f"{dt.minute:02d}", "4": str(dt.minute), "05": f"{dt.second:02d}", "5": str(dt.second),
        "PM": "PM" if dt.hour >= 12 else "AM", "pm": "pm" if dt.hour >= 12 else "am",
    }
    if chunk in simple:
        return simple[chunk]
    if chunk[0] in "Z-":
        body = chunk[1:]
        return _offset(dt, zulu=chunk[0] == "Z", colon=":" in body, seconds=len(body.replace(":", "")) == 6,
                       hours_only=body == "07")
    return _fraction(chunk, dt)


def format_go(layout: str, dt: datetime) -> str:
    """Format ``dt`` with a Go layout string, as ``time.Time.Format`` does."""
    return _CHUNK.sub(lambda m: _chunk(m.group(), dt), layout)


def parse_rfc3339(text: str) -> datetime | None:
    """Parse an RFC 3339 timestamp (what Argo puts in ``workflow.creationTimestamp``), else None."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
