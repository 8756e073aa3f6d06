"""
Trigger policies: ``retryStrategy``, ``rateLimit``, ``conditionsReset`` and our ``concurrency``.

Values and parsers only, split out of :mod:`sensors.model` (which calls the ``parse_*``
functions here for each trigger). Acting on them is the dispatcher's job, except
``conditionsReset``, which :mod:`sensors.matching` applies purely.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from sensors import gitfilters
from sensors.filterspec import as_mapping, opt_str, req_str
from workflows.errors import InvalidSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class ConditionsReset:
    """``conditionsReset[].byTime``: forget stored events at each cron tick."""

    cron: str
    timezone: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Argo Events ``Backoff`` (trigger ``retryStrategy``)."""

    steps: int = 0
    duration: timedelta | None = None
    factor: float | None = None
    jitter: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """At most ``requests_per_unit`` firings per ``unit`` (Second, Minute, Hour)."""

    unit: str = "Second"
    requests_per_unit: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Concurrency:
    """gittrigger extension: runs sharing a rendered ``group`` are serialized or cancelled."""

    group: str
    cancel_in_progress: bool = False


def parse_reset(raw: Any, *, path: str) -> ConditionsReset:
    """``conditionsReset[i]``: a five-field cron and an optional IANA time zone."""
    by_time = as_mapping(as_mapping(raw, path=path).get("byTime"), path=f"{path}.byTime")
    cron = req_str(by_time, "cron", path=f"{path}.byTime")
    # Argo Events uses robfig/cron's standard five-field parser.
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise InvalidSpec(f"{path}.byTime.cron", f"not a five-field cron expression: {cron!r}")
    zone = opt_str(by_time, "timezone", path=f"{path}.byTime")
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidSpec(f"{path}.byTime.timezone", f"unknown time zone {zone!r}") from None
    return ConditionsReset(cron=cron, timezone=zone)


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_go_duration(value: Any, *, path: str) -> timedelta:
    """A Go duration string (``"1m30s"``) or an integer count of nanoseconds (Int64OrString)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return timedelta(microseconds=value / 1000)
    text = str(value).strip()
    if text.isdigit():
        return timedelta(microseconds=int(text) / 1000)
    if not text or _GO_DURATION.sub("", text) != "":
        raise InvalidSpec(path, f"not a duration: {value!r}")
    return timedelta(seconds=sum(float(n) * _GO_UNITS[u] for n, u in _GO_DURATION.findall(text)))


def parse_backoff(raw: Any, *, path: str) -> Backoff:
    """``retryStrategy`` (Argo Events ``Backoff``)."""
    raw = as_mapping(raw, path=path)
    steps = raw.get("steps", 0)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise InvalidSpec(f"{path}.steps", f"must be a non-negative integer, got {steps!r}")
    return Backoff(
        steps=steps,
        duration=parse_go_duration(raw["duration"], path=f"{path}.duration") if "duration" in raw else None,
        factor=_amount(raw, "factor", path=path),
        jitter=_amount(raw, "jitter", path=path),
    )


def parse_rate_limit(raw: Any, *, path: str) -> RateLimit:
    """``rateLimit``; ``unit`` defaults to Second."""
    raw = as_mapping(raw, path=path)
    unit = raw.get("unit") or "Second"
    if unit not in ("Second", "Minute", "Hour"):
        raise InvalidSpec(f"{path}.unit", f"must be Second, Minute or Hour, got {unit!r}")
    per = raw.get("requestsPerUnit", 0)
    if not isinstance(per, int) or isinstance(per, bool) or per < 0:
        raise InvalidSpec(f"{path}.requestsPerUnit", f"must be a non-negative integer, got {per!r}")
    return RateLimit(unit=unit, requests_per_unit=per)


def parse_concurrency(raw: Any, *, path: str) -> Concurrency:
    """``triggers[i].concurrency`` (gittrigger extension); the group's variables must be known."""
    raw = as_mapping(raw, path=path)
    group = req_str(raw, "group", path=path)
    if unknown := sorted(gitfilters.group_variables(group) - gitfilters.GROUP_VARIABLES):
        known = ", ".join(sorted(gitfilters.GROUP_VARIABLES))
        raise InvalidSpec(f"{path}.group", f"unknown variable {{{{{unknown[0]}}}}} (known: {known})")
    cancel = raw.get("cancelInProgress", False)
    if not isinstance(cancel, bool):
        raise InvalidSpec(f"{path}.cancelInProgress", f"must be true or false, got {cancel!r}")
    return Concurrency(group=group, cancel_in_progress=cancel)


def _amount(raw: Mapping[str, Any], key: str, *, path: str) -> float | None:
    if key not in raw:
        return None
    try:
        return float(raw[key])
    except (TypeError, ValueError):
        raise InvalidSpec(f"{path}.{key}", f"must be a number, got {raw[key]!r}") from None
