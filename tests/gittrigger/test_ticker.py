"""
Tests of :mod:`gittrigger.sources.ticker` with a fake clock and sleep: nothing here really waits.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gittrigger.sources.envelope import EventParts
from gittrigger.sources.model import CalendarSource
from gittrigger.sources.ticker import CalendarTicker, JsonFileTickState, MemoryTickState

KEY = "cal/tick"
T0 = datetime(2024, 5, 1, 10, 0, 0, 500_000, tzinfo=UTC)


class FakeTime:
    """A clock that only moves when the ticker sleeps (plus ``overshoot`` per sleep, to model late wakeups)."""

    def __init__(self, start: datetime, *, overshoot: timedelta = timedelta(0)) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.overshoot = overshoot

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds) + self.overshoot
        await asyncio.sleep(0)


class Collector:
    """An ``emit`` that records ``want`` events, then blocks; fails the first ``fail`` calls."""

    def __init__(self, want: int, *, fail: int = 0) -> None:
        self.events: list[EventParts] = []
        self.want = want
        self.fail = fail
        self.done = asyncio.Event()

    async def __call__(self, parts: EventParts) -> None:
        if len(self.events) >= self.want:
            # The previous event is persisted by now: hold the ticker here until the test cancels it.
            self.done.set()
            await asyncio.Event().wait()
        if self.fail:
            self.fail -= 1
            raise OSError("event log unavailable")
        self.events.append(parts)

    @property
    def times(self) -> list[str]:
        return [e.context["time"] for e in self.events]


async def run_ticker(spec: CalendarSource, *, time: FakeTime, state: MemoryTickState | JsonFileTickState,
                     want: int, fail: int = 0, max_catchup: int = 1000) -> Collector:
    """Run a ticker until ``want`` events were emitted, then cancel it."""
    emit = Collector(want, fail=fail)
    ticker = CalendarTicker(spec=spec, source_name="cal", event_name="tick", emit=emit, clock=time.clock,
                            sleep=time.sleep, state=state, max_catchup_events=max_catchup)
    task = asyncio.create_task(ticker.run(), name="ticker under test")
    try:
        await asyncio.wait_for(emit.done.wait(), timeout=5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return emit


async def test_interval_fires_on_the_second_after_each_interval() -> None:
    """An interval counts from the start truncated to the second; the ticker sleeps exactly until each fire."""
    time, state = FakeTime(T0), MemoryTickState()
    emit = await run_ticker(CalendarSource(interval=timedelta(seconds=30)), time=time, state=state, want=3)
    assert emit.times == ["2024-05-01T10:00:30Z", "2024-05-01T10:01:00Z", "2024-05-01T10:01:30Z"]
    assert time.sleeps[:3] == [29.5, 30.0, 30.0]
    assert state.ticks[KEY] == datetime(2024, 5, 1, 10, 1, 30, tzinfo=UTC)
    first = emit.events[0]
    assert first.context["type"] == "calendar" and first.context["source"] == "cal"
    assert first.context["subject"] == "tick" and first.delivery_id == "2024-05-01T10:00:30Z"
    assert first.data == {"eventTime": "2024-05-01 10:00:30 +0000 UTC"}


async def test_schedule_in_a_timezone_with_metadata() -> None:
    """Cron fires in the schedule's timezone; metadata rides along in the event data."""
    time = FakeTime(T0)
    spec = CalendarSource(schedule="0 13 * * *", timezone="Europe/Berlin", metadata={"team": "ci"})
    emit = await run_ticker(spec, time=time, state=MemoryTickState(), want=2)
    assert emit.times == ["2024-05-01T11:00:00Z", "2024-05-02T11:00:00Z"]
    assert emit.events[0].data == {"eventTime": "2024-05-01 13:00:00 +0200 CEST", "metadata": {"team": "ci"}}


async def test_exclusion_dates_are_skipped() -> None:
    """A fire on an EXDATE day is not emitted."""
    spec = CalendarSource(schedule="0 12 * * *", exclusion_dates=(date(2024, 5, 2),))
    emit = await run_ticker(spec, time=FakeTime(T0), state=MemoryTickState(), want=2)
    assert emit.times == ["2024-05-01T12:00:00Z", "2024-05-03T12:00:00Z"]


@pytest.mark.parametrize(
    ("catchup", "max_duration", "expected"),
    [
        (True, None, ["2024-05-01T08:00:00Z", "2024-05-01T09:00:00Z", "2024-05-01T10:00:00Z",
                      "2024-05-01T11:00:00Z"]),
        (True, timedelta(minutes=90), ["2024-05-01T09:00:00Z", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"]),
        (False, None, ["2024-05-01T11:00:00Z"]),
    ],
    ids=["catchup-all-missed", "catchup-bounded-by-maxDuration", "no-catchup-skips-missed"],
)
async def test_restart_after_downtime(catchup: bool, max_duration: timedelta | None, expected: list[str]) -> None:
    """Last tick 07:00, restarted at 10:00:00.5: catch-up replays 08-10h (within maxDuration), then ticks on."""
    state = MemoryTickState({KEY: datetime(2024, 5, 1, 7, tzinfo=UTC)})
    spec = CalendarSource(schedule="0 * * * *", catchup=catchup, catchup_max_duration=max_duration)
    emit = await run_ticker(spec, time=FakeTime(T0), state=state, want=len(expected))
    assert emit.times == expected
    assert state.ticks[KEY] == datetime(2024, 5, 1, 11, tzinfo=UTC)


async def test_catchup_is_capped() -> None:
    """A minutely schedule down for a day with no maxDuration replays at most the cap, oldest first."""
    state = MemoryTickState({KEY: T0 - timedelta(days=1)})
    spec = CalendarSource(schedule="* * * * *", catchup=True)
    with capture_logs() as logs:
        emit = await run_ticker(spec, time=FakeTime(T0), state=state, want=4, max_catchup=3)
    assert emit.times == ["2024-04-30T10:01:00Z", "2024-04-30T10:02:00Z", "2024-04-30T10:03:00Z",
                          "2024-05-01T10:01:00Z"]
    assert any(e["event"] == "calendar catch-up truncated" for e in logs)


async def test_a_failing_emit_is_retried_and_the_tick_persisted_only_after() -> None:
    """The event log being down delays a fire (with backoff) instead of losing it."""
    time, state = FakeTime(T0), MemoryTickState()
    emit = await run_ticker(CalendarSource(interval=timedelta(seconds=60)), time=time, state=state, want=1, fail=2)
    assert emit.times == ["2024-05-01T10:01:00Z"]
    assert time.sleeps[:3] == [59.5, 1.0, 2.0]
    assert state.ticks[KEY] == datetime(2024, 5, 1, 10, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("catchup", "expected"),
    [
        (False, ["2024-05-01T10:01:00Z", "2024-05-01T10:06:00Z"]),
        (True, ["2024-05-01T10:01:00Z", "2024-05-01T10:02:00Z", "2024-05-01T10:03:00Z"]),
    ],
    ids=["late-wakeup-skips", "late-wakeup-catches-up"],
)
async def test_a_late_wakeup(catchup: bool, expected: list[str]) -> None:
    """Woken 4 minutes late (a suspended process): missed fires are skipped, or replayed with catch-up."""
    time = FakeTime(T0, overshoot=timedelta(minutes=4))
    spec = CalendarSource(schedule="* * * * *", catchup=catchup)
    emit = await run_ticker(spec, time=time, state=MemoryTickState(), want=len(expected))
    assert emit.times == expected


async def test_json_file_state_survives_a_restart(tmp_path: Path) -> None:
    """The last tick is read back by a new instance, with its offset; the file is valid JSON."""
    path = tmp_path / "state" / "ticks.json"
    when = datetime.fromisoformat("2024-05-01T13:00:00+02:00")
    first = JsonFileTickState(path)
    await first.set(KEY, when)
    await first.set("other/event", T0)
    again = JsonFileTickState(path)
    assert await again.get(KEY) == when and (await again.get(KEY) or T0).utcoffset() == timedelta(hours=2)
    assert await again.get("nope") is None
    assert not path.with_name("ticks.json.tmp").exists()


async def test_json_file_state_restart_drives_catchup(tmp_path: Path) -> None:
    """A ticker restarted on the same file replays what it missed."""
    path = tmp_path / "ticks.json"
    spec = CalendarSource(schedule="0 * * * *", catchup=True)
    await run_ticker(spec, time=FakeTime(T0), state=JsonFileTickState(path), want=1)
    later = FakeTime(T0 + timedelta(hours=2))
    emit = await run_ticker(spec, time=later, state=JsonFileTickState(path), want=2)
    assert emit.times == ["2024-05-01T12:00:00Z", "2024-05-01T13:00:00Z"]


async def test_corrupt_state_file_starts_empty(tmp_path: Path) -> None:
    """An unreadable file costs a catch-up, not the server."""
    path = tmp_path / "ticks.json"
    path.write_text("{not json")
    with capture_logs() as logs:
        assert await JsonFileTickState(path).get(KEY) is None
    assert logs[0]["event"] == "state file unreadable, starting empty"


async def test_interval_across_a_dst_change_never_fires_the_same_instant_twice() -> None:
    """Europe/Berlin springs forward at 01:00 UTC on 2024-03-31; each hourly fire is a new instant."""
    time = FakeTime(datetime(2024, 3, 31, 0, 30, tzinfo=UTC))
    spec = CalendarSource(interval=timedelta(hours=1), timezone="Europe/Berlin")
    emit = await run_ticker(spec, time=time, state=MemoryTickState(), want=3)
    assert len(set(emit.times)) == 3 and emit.times == sorted(emit.times)
