"""
The calendar event source's async loop: :class:`CalendarTicker` emits one event per fire.

Run by the process wiring as a named root task per ``calendar`` event; ``emit`` is connected to
the event log (store before dispatch). The schedule math is :mod:`gittrigger.sources.cron`
(pure); this module owns the waiting, the catch-up after downtime and the persisted last tick.

The last delivered fire is persisted through :class:`TickState` after each emit, so a restart
knows where it stopped. With ``persistence.catchup.enabled`` the fires missed while we were down
(or while the process was suspended) are emitted, oldest first, starting no earlier than
``now - maxDuration``; without it missed fires are skipped, as Argo Events' cron does. A fire's
event id derives from its time, so a fire emitted twice (crash between emit and persist) is
stored once. The clock and sleep are injected, so tests never wait.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, Final, Protocol

import structlog

from gittrigger.sources import cron
from gittrigger.sources.envelope import EventParts
from gittrigger.sources.model import CalendarSource

logger = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
Emit = Callable[[EventParts], Awaitable[None]]

# A "* * * * *" schedule down for a year with no maxDuration would be half a million events.
DEFAULT_MAX_CATCHUP_EVENTS: Final = 1000
_EMIT_RETRY_FIRST: Final = 1.0
_EMIT_RETRY_MAX: Final = 60.0


class TickState(Protocol):
    """Where the last delivered fire of each calendar event is kept across restarts."""

    async def get(self, key: str) -> datetime | None:
        """The last fire delivered for ``key``; None when it never fired."""
        ...

    async def set(self, key: str, when: datetime) -> None:
        """Remember ``when`` as the last fire delivered for ``key``."""
        ...


class MemoryTickState:
    """A :class:`TickState` in a dict: for tests and for servers that need no catch-up."""

    def __init__(self, initial: dict[str, datetime] | None = None) -> None:
        self.ticks: dict[str, datetime] = dict(initial or {})

    async def get(self, key: str) -> datetime | None:
        """The remembered fire of ``key``."""
        return self.ticks.get(key)

    async def set(self, key: str, when: datetime) -> None:
        """Remember ``when`` for ``key``."""
        self.ticks[key] = when


class JsonFile:
    """One small JSON object in a file, rewritten atomically (temp file, fsync, rename) on each change.

    Shared by the persisted states of the ticker and the git poller; one instance per file, as
    two writers of the same file would overwrite each other's keys.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()
        self._data: dict[str, Any] | None = None

    async def get(self, key: str) -> Any:
        """The value stored under ``key`` (None when absent)."""
        async with self._lock:
            return (await self._load()).get(key)

    async def set(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-able) under ``key`` durably."""
        async with self._lock:
            data = await self._load()
            data[key] = value
            await asyncio.to_thread(self._write, dict(data))

    async def _load(self) -> dict[str, Any]:
        if self._data is None:
            self._data = await asyncio.to_thread(self._read)
        return self._data

    def _read(self) -> dict[str, Any]:
        try:
            value = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            # Losing the last tick costs at most a catch-up; refusing to start costs every event.
            logger.warning("state file unreadable, starting empty", path=str(self._path), reason=str(e))
            return {}
        return value if isinstance(value, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(self._path.name + ".tmp")
        with tmp.open("w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)


class JsonFileTickState:
    """A :class:`TickState` persisted in a JSON file (``{key: "2024-05-01T10:00:00+02:00"}``)."""

    def __init__(self, path: Path) -> None:
        self._file = JsonFile(path)

    async def get(self, key: str) -> datetime | None:
        """The remembered fire of ``key`` (None when absent or unreadable)."""
        value = await self._file.get(key)
        try:
            return datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None

    async def set(self, key: str, when: datetime) -> None:
        """Remember ``when`` for ``key``, with its UTC offset."""
        await self._file.set(key, when.isoformat())


class CalendarTicker:
    """Emits the calendar events of one ``spec.calendar.<event>`` until cancelled."""

    def __init__(
        self,
        *,
        spec: CalendarSource,
        source_name: str,
        event_name: str,
        emit: Emit,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        state: TickState,
        max_catchup_events: int = DEFAULT_MAX_CATCHUP_EVENTS,
    ) -> None:
        self._spec = spec
        self._source_name = source_name
        self._event_name = event_name
        self._emit = emit
        self._clock = clock
        self._sleep = sleep
        self._state = state
        self._max_catchup = max_catchup_events
        self._log = logger.bind(source=source_name, event=event_name)

    @property
    def key(self) -> str:
        """The state key of this calendar event: ``<source name>/<event name>``."""
        return f"{self._source_name}/{self._event_name}"

    async def run(self) -> None:
        """Catch up (when enabled), then wait for and emit each fire; returns only by cancellation."""
        now = self._clock()
        last = await self._state.get(self.key)
        after = now
        if self._spec.catchup and last is not None and last < now:
            after = await self._catch_up(last, now)
        while True:
            fire = self._next_fire(after)
            while (now := self._clock()) < fire:
                await self._sleep((fire - now).total_seconds())
            await self._deliver(fire)
            after = fire
            if now - fire > timedelta(seconds=1):
                # We woke late (suspended process, clock jump): fires in between were missed.
                after = await self._catch_up(fire, now) if self._spec.catchup else now

    async def _catch_up(self, last: datetime, now: datetime) -> datetime:
        """Emit the fires in ``(last, now]`` (bounded); returns where regular ticking resumes."""
        missed = cron.missed_fires(
            last, now, self._spec.catchup_max_duration, schedule=self._spec.schedule,
            timezone=self._spec.timezone, exclusion_dates=self._spec.exclusion_dates,
            interval=self._spec.interval,
        )
        fires = list(islice(missed, self._max_catchup + 1))
        if len(fires) > self._max_catchup:
            self._log.warning("calendar catch-up truncated", delivered=self._max_catchup,
                              reason=f"more than {self._max_catchup} fires were missed; the oldest are kept")
            fires = fires[: self._max_catchup]
        if fires:
            self._log.info("calendar catching up", missed=len(fires), since=last.isoformat())
        delivered = last.astimezone(UTC)
        for fire in fires:
            if fire.astimezone(UTC) > delivered:  # the same DST guard as _next_fire
                await self._deliver(fire)
                delivered = fire.astimezone(UTC)
        return now

    def _next_fire(self, after: datetime) -> datetime:
        fires = cron.next_fires(
            self._spec.schedule, after=after, timezone=self._spec.timezone,
            exclusion_dates=self._spec.exclusion_dates, interval=self._spec.interval,
        )
        # Strictly later in absolute time (compared in UTC: datetimes sharing a tzinfo compare by
        # wall clock), because an interval stepped in wall-clock time can land on the
        # same instant again across a DST change (02:30+01:00 then 03:30+02:00).
        return next(fire for fire in fires if fire.astimezone(UTC) > after.astimezone(UTC))

    async def _deliver(self, fire: datetime) -> None:
        """Emit one fire, retrying until the event log takes it, then persist it as the last tick."""
        parts = cron.to_event(fire, source_name=self._source_name, event_name=self._event_name,
                              metadata=self._spec.metadata)
        delay = _EMIT_RETRY_FIRST
        while True:
            try:
                await self._emit(parts)
                break
            except Exception as e:  # a lost tick is worse than a late one
                self._log.warning("calendar emit failed", fire=fire.isoformat(), reason=str(e), retry_in_s=delay)
                await self._sleep(delay)
                delay = min(delay * 2, _EMIT_RETRY_MAX)
        await self._state.set(self.key, fire)
        self._log.debug("calendar fired", fire=fire.isoformat())
