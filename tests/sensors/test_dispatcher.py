"""
The dispatcher over a fake submitter/ops, fake time, and both event logs (memory and SQLite files).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gittrigger.eventlog import SqliteEventLog
from sensors import Sensor, parse_sensor
from sensors.dispatcher import (
    LABEL_EVENT,
    LABEL_GROUP,
    LABEL_SENSOR,
    LABEL_TRIGGER,
    Dispatcher,
    Submitter,
    label_value,
)
from sensors.eventlog import AuditEntry, EventLog, StoredEvent
from sensors.eventlog_memory import MemoryEventLog
from sensors.loading import load_sensors
from tests.sensors.eventkit import FIXTURES, make_event, webhook
from workflows.engine import Engine
from workflows.errors import Unavailable
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.local import LocalExecutor
from workflows.resolution import DictTemplateGetter
from workflows.store.memory import MemoryStore

T0 = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
NASTY = 'fix "quotes" and \'single\'\nsecond line {{workflow.name}} $(rm -rf /) `id` ${HOME}'
_ids = itertools.count(1)


class Clock:
    """A settable clock; ``sleep`` records delays and (optionally) advances it."""

    def __init__(self, *, advance: bool = True) -> None:
        self.now = T0
        self.delays: list[float] = []
        self.advance = advance

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.advance:
            self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0.001)


class FakeEngine:
    """Submitter and WorkflowOps at once: runs are dicts in Argo's wire shape."""

    def __init__(self, *, failures: int = 0, error: Exception | None = None) -> None:
        self.runs: list[dict[str, Any]] = []
        self.calls: list[tuple[str, Any]] = []
        self.failures = failures
        self.error = error or RuntimeError("store unavailable")

    async def submit(self, manifest: Mapping[str, Any], *, parameters: Mapping[str, str] | None = None,
                     entrypoint: str | None = None, labels: Mapping[str, str] | None = None,
                     namespace: str | None = None) -> dict[str, Any]:
        self.calls.append(("submit", labels))
        if self.failures:
            self.failures -= 1
            raise self.error
        raw = copy.deepcopy(dict(manifest))
        meta = raw.setdefault("metadata", {})
        meta["name"] = meta.get("name") or f"{meta.get('generateName', 'wf-')}{next(_ids)}"
        meta["namespace"] = namespace or "default"
        meta["labels"] = {**meta.get("labels", {}), **(labels or {})}
        raw["status"] = {"phase": "Running"}
        self.runs.append(raw)
        return raw

    async def stop(self, namespace: str, name: str, *, strategy: str) -> None:
        self.calls.append((strategy.lower(), name))
        for run in self.runs:
            if run["metadata"]["name"] == name:
                run["status"]["phase"] = "Failed"

    async def list_runs(self, namespace: str | None, labels: Mapping[str, str]) -> list[Mapping[str, Any]]:
        return [r for r in self.runs if labels.items() <= r["metadata"]["labels"].items()
                and namespace in (None, r["metadata"]["namespace"])]


class ResubmittingEngine(FakeEngine):
    async def resubmit(self, namespace: str, name: str) -> dict[str, Any]:
        self.calls.append(("resubmit", name))
        return {"metadata": {"name": f"{name}-again"}}


def sensor(*, trigger: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
           name: str = "ci", filters: Mapping[str, Any] | None = None) -> Sensor:
    """A one-dependency sensor (hooks/a) with one argoWorkflow submit trigger ``build``."""
    template = trigger or {"name": "build", "argoWorkflow": {
        "operation": "submit",
        "source": {"resource": {
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"generateName": "build-"},
            "spec": {"entrypoint": "main", "arguments": {"parameters": [{"name": "message"}]},
                     "templates": [{"name": "main", "container": {"image": "alpine"}}]}}},
        "parameters": [{"src": {"dependencyName": "push", "dataKey": "body.message"},
                        "dest": "spec.arguments.parameters.0.value"}]}}
    dep: dict[str, Any] = {"name": "push", "eventSourceName": "hooks", "eventName": "a"}
    if filters:
        dep["filters"] = filters
    return parse_sensor({"kind": "Sensor", "metadata": {"name": name},
                         "spec": {"dependencies": [dep], "triggers": [{"template": template, **(extra or {})}]}})


@pytest.fixture(params=["memory", "sqlite"])
async def elog(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventLog]:
    if request.param == "memory":
        yield MemoryEventLog()
        return
    opened = await SqliteEventLog.open(tmp_path / "events.db")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Every task the dispatcher made is gone once the test is over."""
    yield
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not leaked, [t.get_name() for t in leaked]


async def put(elog: EventLog, body: Any, *, delivery: str | None = None, name: str = "a",
              event_id: str | None = None) -> StoredEvent:
    eid = event_id or f"evt-{next(_ids)}"
    stored, _ = await elog.append(make_event(webhook(body), name=name, event_id=eid), source_kind="webhook",
                                  delivery_id=delivery, received_at=T0)
    return stored


async def eventually(check: Callable[[], Awaitable[bool]], *, what: str) -> None:
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"never happened: {what}")


def kinds(stored: StoredEvent) -> list[str]:
    return [a.kind for a in stored.audit]


async def test_submits_with_event_values_intact(elog: EventLog) -> None:
    """A commit message with quotes, newlines, {{ and $(..) arrives as that exact parameter value."""
    engine = FakeEngine()
    clock = Clock()
    stored = await put(elog, {"message": NASTY}, event_id="evt-nasty")
    dispatcher = Dispatcher(log=elog, sensors=[sensor()], submitter=engine, ops=engine, clock=clock,
                            sleep=clock.sleep)
    with capture_logs() as logs:
        await dispatcher.drain()
    [run] = engine.runs
    assert run["spec"]["arguments"]["parameters"][0]["value"] == NASTY
    labels = run["metadata"]["labels"]
    assert (labels[LABEL_SENSOR], labels[LABEL_TRIGGER], labels[LABEL_EVENT]) == ("ci", "build", "evt-nasty")
    after = await elog.get("evt-nasty")
    assert after.dispatched and kinds(after) == ["filter", "submitted"]
    assert after.audit[0].detail["dependencies"]["push"]["passed"] is True
    assert after.audit[1].detail["workflow"] == run["metadata"]["name"]
    fired = [e for e in logs if e["event"] == "trigger fired"]
    assert {"sensor": "ci", "trigger": "build", "event_id": "evt-nasty",
            "workflow": run["metadata"]["name"]}.items() <= fired[0].items()
    assert not await elog.pending()
    assert stored.seq == after.seq


async def test_filtered_out_event_is_audited_and_dispatched(elog: EventLog) -> None:
    """A failing data filter: no run, the verdict with its reason in the audit, event done."""
    engine = FakeEngine()
    filters = {"data": [{"path": "body.ref", "type": "string", "value": ["^refs/heads/main$"]}]}
    await put(elog, {"ref": "refs/heads/dev", "message": "x"}, event_id="evt-dev")
    await Dispatcher(log=elog, sensors=[sensor(filters=filters)], submitter=engine, ops=engine).drain()
    after = await elog.get("evt-dev")
    assert engine.runs == [] and after.dispatched
    assert kinds(after) == ["filter"]
    verdict = after.audit[0].detail["dependencies"]["push"]
    assert verdict["passed"] is False and verdict["reasons"]


async def test_redelivery_runs_once(elog: EventLog) -> None:
    """The same delivery twice is one event and one run."""
    engine = FakeEngine()
    dispatcher = Dispatcher(log=elog, sensors=[sensor()], submitter=engine, ops=engine)
    await put(elog, {"message": "m"}, delivery="d-1")
    await dispatcher.drain()
    await put(elog, {"message": "m"}, delivery="d-1")
    await dispatcher.drain()
    assert len(engine.runs) == 1


async def test_run_drains_pending_at_start_then_follows_notify(elog: EventLog) -> None:
    """Crash recovery: what was pending before start is dispatched; later events on notify()."""
    engine = FakeEngine()
    await put(elog, {"message": "before-1"})
    await put(elog, {"message": "before-2"})
    dispatcher = Dispatcher(log=elog, sensors=[sensor()], submitter=engine, ops=engine)
    task = asyncio.create_task(dispatcher.run(), name="dispatcher under test")
    try:
        await eventually(lambda: _true(len(engine.runs) == 2), what="pending events submitted")
        await put(elog, {"message": "after"})
        dispatcher.notify()
        await eventually(lambda: _true(len(engine.runs) == 3), what="notified event submitted")
        await eventually(lambda: _none_pending(elog), what="all dispatched")
    finally:
        await dispatcher.close()
        await task
    messages = [r["spec"]["arguments"]["parameters"][0]["value"] for r in engine.runs]
    assert messages == ["before-1", "before-2", "after"]


async def test_recovery_does_not_submit_twice(elog: EventLog) -> None:
    """Pending after a crash, but the run exists (labelled) or was audited: no second run."""
    engine = FakeEngine()
    labelled = await put(elog, {"message": "labelled"}, event_id="evt-l")
    audited = await put(elog, {"message": "audited"}, event_id="evt-a")
    await engine.submit({"metadata": {"name": "from-before"}}, labels={
        "gittrigger.io/event-seq": str(labelled.seq), LABEL_SENSOR: "ci", LABEL_TRIGGER: "build"})
    await elog.audit(audited.seq, AuditEntry(at=T0, kind="filter", detail={"sensor": "ci"}))
    await elog.audit(audited.seq, AuditEntry(at=T0, kind="submitted", detail={"sensor": "ci", "trigger": "build"}))
    await Dispatcher(log=elog, sensors=[sensor()], submitter=engine, ops=engine).drain()
    assert kinds(await elog.get("evt-a")) == ["filter", "submitted"]  # verdicts not recorded twice
    assert [r["metadata"]["name"] for r in engine.runs] == ["from-before"]
    assert (await elog.get("evt-l")).audit[-1].detail["recovered"] is True
    assert not await elog.pending()


async def test_conditions_across_two_dependencies(elog: EventLog) -> None:
    """Fixture ``pair``: ``either`` fires on each event, ``both`` once both arrived, with both values."""
    engine = FakeEngine()
    [pair] = load_sensors([FIXTURES / "two-deps-sensor.yaml"])
    dispatcher = Dispatcher(log=elog, sensors=[pair], submitter=engine, ops=engine)
    await put(elog, {"name": "alpha"}, name="a")
    await dispatcher.drain()
    assert [r["metadata"]["generateName"] for r in engine.runs] == ["either-"]
    await put(elog, {"count": 1}, name="b")  # filtered out: count < 2
    await dispatcher.drain()
    assert len(engine.runs) == 1
    await put(elog, {"count": 3}, name="b")
    await dispatcher.drain()
    names = sorted(r["metadata"]["generateName"] for r in engine.runs)
    assert names == ["both-", "either-", "either-"]
    both = next(r for r in engine.runs if r["metadata"]["generateName"] == "both-")
    assert [p["value"] for p in both["spec"]["arguments"]["parameters"]] == ["alpha", 3]


GROUP = {"concurrency": {"group": "{{sensor}}-{{trigger}}", "cancelInProgress": True}}


async def test_cancel_in_progress_stops_the_running_group_member(elog: EventLog) -> None:
    """A newer event in the group stops the unfinished run, then submits its own."""
    engine = FakeEngine()
    dispatcher = Dispatcher(log=elog, sensors=[sensor(extra=GROUP)], submitter=engine, ops=engine)
    await put(elog, {"message": "one"})
    await dispatcher.drain()
    first = engine.runs[0]["metadata"]["name"]
    second_event = await put(elog, {"message": "two"})
    await dispatcher.drain()
    assert engine.calls[-2:] == [("stop", first), ("submit", engine.runs[1]["metadata"]["labels"])]
    assert engine.runs[1]["metadata"]["labels"][LABEL_GROUP] == "ci-build"
    assert kinds(await elog.get(second_event.event.context.id)) == ["filter", "cancelled", "submitted"]


async def test_group_without_cancel_queues_until_free(elog: EventLog) -> None:
    """Without cancelInProgress the second run waits until the first finished, and its event stays pending."""
    engine = FakeEngine()
    clock = Clock()
    queue = {"concurrency": {"group": "{{sensor}}"}}
    dispatcher = Dispatcher(log=elog, sensors=[sensor(extra=queue)], submitter=engine, ops=engine,
                            clock=clock, sleep=clock.sleep, group_poll_s=5)
    task = asyncio.create_task(dispatcher.run(), name="dispatcher under test")
    try:
        await put(elog, {"message": "one"})
        second = await put(elog, {"message": "two"})
        dispatcher.notify()
        await eventually(lambda: _true(len(clock.delays) >= 3), what="second firing polling")
        assert len(engine.runs) == 1
        assert [e.seq for e in await elog.pending()] == [second.seq]
        engine.runs[0]["status"]["phase"] = "Succeeded"
        await eventually(lambda: _true(len(engine.runs) == 2), what="queued run submitted")
        await eventually(lambda: _none_pending(elog), what="second event dispatched")
    finally:
        await dispatcher.close()
        await task
    assert set(clock.delays) == {5}
    assert engine.calls[0][0] == "submit" and ("stop", engine.runs[0]["metadata"]["name"]) not in engine.calls


async def test_close_cancels_queued_firings_and_keeps_their_events(elog: EventLog) -> None:
    """close() while a firing waits for its group: run() returns, no task is left, the event is pending."""
    engine = FakeEngine()
    clock = Clock()
    dispatcher = Dispatcher(log=elog, sensors=[sensor(extra={"concurrency": {"group": "g"}})], submitter=engine,
                            ops=engine, clock=clock, sleep=clock.sleep)
    await put(elog, {"message": "one"})
    waiting = await put(elog, {"message": "two"})
    task = asyncio.create_task(dispatcher.run(), name="dispatcher under test")
    await eventually(lambda: _true(len(clock.delays) >= 2), what="second firing queued")
    await dispatcher.close()
    await asyncio.wait_for(task, 2)
    assert [e.seq for e in await elog.pending()] == [waiting.seq]


@pytest.mark.parametrize(("failures", "steps", "runs", "delays", "outcome"), [
    (2, 3, 1, [2.0, 4.0], "submitted"),
    (5, 2, 0, [2.0], "trigger-failed"),
    (1, None, 0, [], "trigger-failed"),
], ids=["succeeds-on-third", "gives-up-after-steps", "no-strategy-one-attempt"])
async def test_retry_strategy_backs_off(elog: EventLog, failures: int, steps: int | None, runs: int,
                                        delays: list[float], outcome: str) -> None:
    """retryStrategy: steps attempts in all, waiting duration x factor^n between them."""
    engine = FakeEngine(failures=failures)
    clock = Clock()
    extra = {"retryStrategy": {"steps": steps, "duration": "2s", "factor": 2}} if steps else {}
    stored = await put(elog, {"message": "m"})
    with capture_logs() as logs:
        await Dispatcher(log=elog, sensors=[sensor(extra=extra)], submitter=engine, ops=engine, clock=clock,
                         sleep=clock.sleep).drain()
    assert (len(engine.runs), clock.delays) == (runs, delays)
    after = await elog.get(stored.event.context.id)
    assert after.audit[-1].kind == outcome and after.dispatched
    if outcome == "trigger-failed":
        assert after.audit[-1].detail["reason"] == "store unavailable"
        failed = [e for e in logs if e["event"] == "trigger failed"]
        assert {"sensor": "ci", "trigger": "build", "workflow": None}.items() <= failed[0].items()


async def test_rate_limit_delays_excess_firings(elog: EventLog) -> None:
    """Two per minute: the first two go at once, the third waits 30 s, the fourth 60 s; all run."""
    engine = FakeEngine()
    clock = Clock(advance=False)
    extra = {"rateLimit": {"unit": "Minute", "requestsPerUnit": 2}}
    for i in range(4):
        await put(elog, {"message": f"m{i}"})
    await Dispatcher(log=elog, sensors=[sensor(extra=extra)], submitter=engine, ops=engine, clock=clock,
                     sleep=clock.sleep).drain()
    assert len(engine.runs) == 4
    assert sorted(clock.delays) == [30.0, 60.0]


WORKFLOW_REF = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "nightly"}}


@pytest.mark.parametrize(("operation", "engine_class", "call", "reason"), [
    ("stop", FakeEngine, ("stop", "nightly"), None),
    ("terminate", FakeEngine, ("terminate", "nightly"), None),
    ("resubmit", ResubmittingEngine, ("resubmit", "nightly"), None),
    ("retry", FakeEngine, None, "operation retry is not supported by this server"),
], ids=["stop", "terminate", "resubmit-when-offered", "retry-not-offered"])
async def test_operations_on_existing_runs(elog: EventLog, operation: str, engine_class: type[FakeEngine],
                                           call: tuple[str, str] | None, reason: str | None) -> None:
    """stop/terminate through WorkflowOps.stop; optional ops when offered, else a clear trigger-failed."""
    engine = engine_class()
    trigger = {"name": "build", "argoWorkflow": {"operation": operation, "source": {"resource": WORKFLOW_REF}}}
    stored = await put(elog, {})
    await Dispatcher(log=elog, sensors=[sensor(trigger=trigger)], submitter=engine, ops=engine).drain()
    last = (await elog.get(stored.event.context.id)).audit[-1]
    if reason is None:
        assert engine.calls == [call] and last.kind == "submitted"
    else:
        assert engine.calls == [] and (last.kind, last.detail["reason"]) == ("trigger-failed", reason)


async def test_log_trigger_and_errors_do_not_stop_the_loop(elog: EventLog) -> None:
    """A log trigger logs; a submitter raising anything is a trigger-failed and the next event still runs."""
    engine = FakeEngine(failures=1, error=ValueError("boom"))
    log_sensor = sensor(name="logger", trigger={"name": "say", "log": {}})
    dispatcher = Dispatcher(log=elog, sensors=[sensor(), log_sensor], submitter=engine, ops=engine)
    first = await put(elog, {"message": "one"})
    await put(elog, {"message": "two"})
    with capture_logs() as logs:
        await dispatcher.drain()
    assert len(engine.runs) == 1
    assert "trigger-failed" in kinds(await elog.get(first.event.context.id))
    said = [e for e in logs if e["event"] == "trigger fired" and e["sensor"] == "logger"]
    assert len(said) == 2 and said[0]["trigger"] == "say"


async def test_replay_runs_a_stored_event_again(elog: EventLog) -> None:
    """replay(id) stores the event again as a replay and dispatches it through the current sensors."""
    engine = FakeEngine()
    dispatcher = Dispatcher(log=elog, sensors=[sensor()], submitter=engine, ops=engine)
    original = await put(elog, {"message": NASTY}, delivery="d-1", event_id="evt-r")
    await dispatcher.drain()
    dispatcher.replace_sensors([sensor(), sensor(name="late")])
    replayed = await dispatcher.replay("evt-r")
    await dispatcher.drain()
    assert replayed.seq != original.seq and replayed.source_kind == "replay"
    assert [r["metadata"]["labels"][LABEL_SENSOR] for r in engine.runs] == ["ci", "ci", "late"]
    assert all(r["spec"]["arguments"]["parameters"][0]["value"] == NASTY for r in engine.runs)
    assert (await elog.get("evt-r")).audit[0].detail == {"replay_of": original.seq}


@pytest.mark.parametrize(("text", "expected"), [
    ("ci", "ci"),
    ("octo/repo/main", "octo-repo-main-" + "x"),
    ("a" * 80, "a" * 50 + "-x"),
], ids=["valid-kept", "slashes-cleaned", "long-cut"])
def test_label_values_are_valid_and_stable(text: str, expected: str) -> None:
    """Group and event ids become valid label values; a changed value carries a hash, so they stay distinct."""
    value = label_value(text)
    assert value == label_value(text) and len(value) <= 63
    if expected.endswith("-x"):
        assert value.startswith(expected[:-1]) and value != label_value(text + "!")
    else:
        assert value == expected


def _engine_is_a_submitter(engine: Engine) -> Submitter:
    """Checked by mypy: the engine satisfies the Submitter seam structurally."""
    return engine


async def _true(value: bool) -> bool:
    return value


async def _none_pending(elog: EventLog) -> bool:
    return not await elog.pending()


@pytest.mark.parametrize("message", [
    NASTY.replace("{{workflow.name}}", "{{"),
    NASTY,
], ids=["quotes-newlines-shell", "braces-naming-a-variable"])
async def test_real_engine_runs_the_event_value_as_data(tmp_path: Path, message: str) -> None:
    """SQLite log -> dispatcher -> the real Engine (local executor): the step prints the message unaltered."""
    store = MemoryStore()
    data = tmp_path / "data"
    engine = Engine(store=store, executor=LocalExecutor(data_dir=data, artifacts=LocalArtifactStore(data / "a"),
                                                        logs=store, isolation="auto"),
                    templates=DictTemplateGetter())
    trigger = {"name": "build", "k8s": {"operation": "create", "source": {"resource": {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "echo-"},
        "spec": {"entrypoint": "main", "arguments": {"parameters": [{"name": "message", "value": ""}]},
                 "templates": [{"name": "main", "container": {
                     "image": "busybox", "command": ["printf", "%s"],
                     "args": ["{{workflow.parameters.message}}"]}}]}}},
        "parameters": [{"src": {"dependencyName": "push", "dataKey": "body.message"},
                        "dest": "spec.arguments.parameters.0.value"}]}}
    async with await SqliteEventLog.open(tmp_path / "events.db") as elog:
        try:
            await put(elog, {"message": message}, event_id="evt-real")
            await Dispatcher(log=elog, sensors=[sensor(trigger=trigger)], submitter=engine).drain()
            [submitted] = (await elog.get("evt-real")).audit[1:]
            assert submitted.kind == "submitted", submitted.detail
            done = await engine.wait("default", submitted.detail["workflow"])
        finally:
            await engine.close()
    assert done["spec"]["arguments"]["parameters"][0]["value"] == message
    assert done["metadata"]["labels"][LABEL_EVENT] == "evt-real"
    assert done["status"]["phase"] == "Succeeded"
    await store.flush()
    lines = [ln.content for _, ln in await store.read(namespace="default", workflow=submitted.detail["workflow"])]
    assert "\n".join(lines) == message


class FlakyLog(MemoryEventLog):
    """pending() fails the first ``failures`` times, as a log on a full disk would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def pending(self, *, limit: int = 100, after_seq: int = 0) -> Sequence[StoredEvent]:
        if self.failures:
            self.failures -= 1
            raise Unavailable("disk I/O error")
        return await super().pending(limit=limit, after_seq=after_seq)


async def test_unreadable_log_and_unannounced_events_are_retried() -> None:
    """A failing read is retried after retry_s; an append nobody notified is found by the poll."""
    engine = FakeEngine()
    clock = Clock()
    elog = FlakyLog(failures=2)
    await put(elog, {"message": "first"})
    dispatcher = Dispatcher(log=elog, sensors=[sensor()], submitter=engine, ops=engine, clock=clock,
                            sleep=clock.sleep, retry_s=3, poll_s=0.02)
    task = asyncio.create_task(dispatcher.run(), name="dispatcher under test")
    try:
        await eventually(lambda: _true(len(engine.runs) == 1), what="dispatched after the log recovered")
        assert clock.delays == [3, 3]
        await put(elog, {"message": "quiet"})  # no notify()
        await eventually(lambda: _true(len(engine.runs) == 2), what="found by the poll")
    finally:
        await dispatcher.close()
        await task


class ReadsLog(MemoryEventLog):
    """Records the ``after_seq`` of every read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[int] = []

    async def pending(self, *, limit: int = 100, after_seq: int = 0) -> Sequence[StoredEvent]:
        self.reads.append(after_seq)
        return await super().pending(limit=limit, after_seq=after_seq)


async def test_reads_start_after_what_was_matched_while_firings_wait() -> None:
    """Events whose firings still wait (here: queued behind a group's running workflow) are not read
    and matched again by the next drains: each read starts after the last event matched."""
    engine = FakeEngine()
    clock = Clock()
    elog = ReadsLog()
    dispatcher = Dispatcher(log=elog, sensors=[sensor(extra={"concurrency": {"group": "g"}})], submitter=engine,
                            ops=engine, clock=clock, sleep=clock.sleep, poll_s=0.01)
    first = await put(elog, {"message": "one"})
    task = asyncio.create_task(dispatcher.run(), name="dispatcher under test")
    try:
        await eventually(lambda: _true(len(engine.runs) == 1), what="first run submitted")
        second = await put(elog, {"message": "two"})
        dispatcher.notify()
        await eventually(lambda: _true(len(clock.delays) >= 2), what="second firing queued")
        third = await put(elog, {"message": "three"})
        dispatcher.notify()
        await eventually(lambda: _true(third.seq in elog.reads or len(elog.reads) > 20), what="third read")
        await eventually(lambda: _true(elog.reads[-1] == third.seq), what="a read after the third")
    finally:
        await dispatcher.close()
        await task
    assert elog.reads[0] == 0
    assert set(elog.reads) == {0, first.seq, second.seq, third.seq}
    assert elog.reads == sorted(elog.reads)
    assert len(engine.runs) == 1  # the queued firings never ran twice, nor at all while the first runs


async def test_dispatch_yields_to_deliveries_being_answered(elog: EventLog) -> None:
    """While busy() (deliveries in flight), each event waits yield_s before it is matched; when the
    edge is idle, nothing waits."""
    engine = FakeEngine()
    clock = Clock()
    busy = [True]
    dispatcher = Dispatcher(log=elog, sensors=[sensor()], submitter=engine, ops=engine, clock=clock,
                            sleep=clock.sleep, busy=lambda: busy[0], yield_s=0.5)
    for i in range(3):
        await put(elog, {"message": f"busy {i}"})
    await dispatcher.drain()
    assert clock.delays == [0.5, 0.5, 0.5]
    assert len(engine.runs) == 3
    busy[0] = False
    await put(elog, {"message": "idle"})
    await dispatcher.drain()
    assert clock.delays == [0.5, 0.5, 0.5]
    assert len(engine.runs) == 4
