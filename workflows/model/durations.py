"""
Argo duration strings (``"30s"``, ``"1m30s"``, ``"2h"``, ``"1d"``, or bare seconds ``"10"``).

Used by retries (backoff), timeouts, suspend durations and memoize ``maxAge`` in the pure core,
and by validation. Go's ``time.ParseDuration`` plus Argo's ``d`` unit and bare numbers.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

from workflows.errors import InvalidSpec

_UNITS: Final = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
}
_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")


def parse_duration(text: str | int | float, *, path: str = "") -> timedelta:
    """Parse an Argo duration; raise InvalidSpec naming ``path`` when it is not one."""
    if isinstance(text, bool):
        raise InvalidSpec(path, f"invalid duration {text!r}")
    if isinstance(text, int | float):
        return timedelta(seconds=float(text))
    s = text.strip()
    try:
        return timedelta(seconds=float(s))
    except ValueError:
        pass
    sign = -1.0 if s.startswith("-") else 1.0
    body = s.lstrip("+-")
    total, pos = 0.0, 0
    for m in _PART.finditer(body):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise InvalidSpec(path, f"invalid duration {text!r} (want e.g. 30s, 1m30s, 2h, or seconds)")
    return timedelta(seconds=sign * total)
