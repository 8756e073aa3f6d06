"""The CronWorkflow scheduler: its policies as tables (schedule math, deadlines, concurrency, status
reconciliation, history limits, ``when``, ``stopStrategy``), then real runs on a real engine with a
fake clock: a ``* * * * *`` tick, Forbid, Replace, catch-up after a restart, suspend, history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gittrigger.assembly import Parts, assemble
from gittrigger.cronworkflows import (
    ANNOTATION_SCHEDULED_TIME,
    KIND,
    LABEL_COMPLETED,
    LABEL_CRON_WORKFLOW,
    CronScheduler,
    check_cron_spec,
    check_schedule,
    concurrency_action,
    history_to_delete,
    last_scheduled,
    latest_tick,
    may_run,
    next_tick,
    reconcile,
    run_cron_workflows,
    set_condition,
    stop_reached,
    when_allows,
    workflow_for_tick,
)
from gittrigger.settings import load_settings
from workflows.errors import ExpressionError
from workflows.store.base import ListOptions


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- pure policies -----------------------------------------------------------------------------


@pytest.mark.parametrize(("schedule", "ok"), [
    ("* * * * *", True), ("*/5 1-3 * * MON", True), ("@hourly", True), ("@daily", True),
    ("* * * *", False), ("0 0 * * * *", False), ("61 * * * *", False), ("@every 1h", False), ("@reboot", False),
], ids=["every-minute", "ranges-names", "hourly", "daily", "four-fields", "six-fields", "out-of-range",
        "every-unsupported", "reboot"])
def test_check_schedule(schedule: str, ok: bool) -> None:
    """Five fields or a descriptor croniter knows; anything else is a ValueError naming the schedule."""
    if ok:
        check_schedule(schedule)
    else:
        with pytest.raises(ValueError):
            check_schedule(schedule)


@pytest.mark.parametrize(("spec", "paths"), [
    ({"schedules": ["* * * * *"], "workflowSpec": {}}, []),
    ({"workflowSpec": {}}, ["spec.schedule"]),
    ({"schedules": ["* * * * *", "bad"], "workflowSpec": {}}, ["spec.schedules[1]"]),
    ({"schedule": "x", "workflowSpec": {}}, ["spec.schedule"]),
    ({"schedules": ["* * * * *"], "timezone": "Mars/Olympus"}, ["spec.timezone"]),
    ({"schedules": ["* * * * *"], "concurrencyPolicy": "Sometimes"}, ["spec.concurrencyPolicy"]),
    ({"schedules": ["* * * * *"], "startingDeadlineSeconds": -1}, ["spec.startingDeadlineSeconds"]),
    ({"schedules": ["* * * * *"], "stopStrategy": {"expression": "cronworkflow.failed >="}},
     ["spec.stopStrategy.expression"]),
], ids=["valid", "no-schedule", "second-schedule-bad", "single-schedule-bad", "timezone", "policy",
        "negative-deadline", "stop-syntax"])
def test_check_cron_spec_names_the_field(spec: dict[str, Any], paths: list[str]) -> None:
    """Each problem of the CronWorkflow's own fields names its path."""
    assert [p.path for p in check_cron_spec(spec)] == paths


@pytest.mark.parametrize(("schedules", "tz", "after", "until", "expected"), [
    (["* * * * *"], None, "2024-01-01T00:00:30", "2024-01-01T00:00:59", None),
    (["* * * * *"], None, "2024-01-01T00:00:30", "2024-01-01T00:01:00", "2024-01-01T00:01:00"),
    (["* * * * *"], None, "2024-01-01T00:01:00", "2024-01-01T00:01:30", None),
    (["* * * * *"], None, "2023-01-01T00:00:00", "2024-01-01T00:05:10", "2024-01-01T00:05:00"),
    (["0 * * * *", "30 * * * *"], None, "2024-01-01T00:00:00", "2024-01-01T00:45:00", "2024-01-01T00:30:00"),
    (["0 9 * * *"], "Europe/Berlin", "2024-01-01T00:00:00", "2024-01-01T08:00:00", "2024-01-01T08:00:00"),
], ids=["none-yet", "on-the-tick", "already-handled", "long-outage-latest-only", "two-schedules", "timezone"])
def test_latest_tick(schedules: list[str], tz: str | None, after: str, until: str, expected: str | None) -> None:
    """The latest tick in (after, until] over every schedule, in UTC (09:00 Berlin is 08:00 UTC in winter)."""
    got = latest_tick(schedules, timezone=tz, after=t(after), until=t(until))
    assert got == (t(expected) if expected else None)


def test_next_tick_is_the_earliest_of_all_schedules() -> None:
    """With several schedules the next wake-up is the soonest one, strictly after."""
    assert next_tick(["0 * * * *", "15 * * * *"], timezone=None, after=t("2024-01-01T00:00:00")) == \
        t("2024-01-01T00:15:00")


@pytest.mark.parametrize(("tick", "now", "deadline", "expected"), [
    ("00:05:00", "00:05:01", None, True),
    ("00:05:00", "00:05:01", 0, True),
    ("00:05:00", "00:05:30", 10, False),
    ("00:05:00", "00:05:05", 10, True),
    ("00:01:00", "00:03:30", None, False),
    ("00:01:00", "00:03:30", 300, True),
    ("00:01:00", "00:03:30", 60, False),
    ("00:01:00", "00:03:30", 0, False),
], ids=["on-time", "on-time-deadline-zero", "late-beyond-deadline", "late-within-deadline",
        "missed-no-deadline", "missed-within-deadline", "missed-beyond-deadline", "missed-deadline-zero"])
def test_may_run(tick: str, now: str, deadline: int | None, expected: bool) -> None:
    """Ticks seen while watching (from 00:03:00) run unless late past a deadline; missed ones only within it."""
    day = "2024-01-01T"
    assert may_run(tick=t(day + tick), now=t(day + now), watching_since=t(day + "00:03:00"),
                   deadline=deadline) is expected


@pytest.mark.parametrize(("policy", "active", "expected"), [
    ("Allow", 0, "run"), ("Allow", 2, "run"), ("Forbid", 0, "run"), ("Forbid", 1, "skip"),
    ("Replace", 0, "run"), ("Replace", 1, "replace"),
], ids=["allow-idle", "allow-busy", "forbid-idle", "forbid-busy", "replace-idle", "replace-busy"])
def test_concurrency_action(policy: str, active: int, expected: str) -> None:
    """Argo's enforceRuntimePolicy as a table."""
    assert concurrency_action(policy, active=active) == expected


def test_workflow_for_tick_is_named_and_labelled_as_argo_does() -> None:
    """``<cron>-<unix>``, the cron label, the scheduled-time annotation and workflowMetadata."""
    cron = {"metadata": {"name": "nightly", "namespace": "ci", "uid": "u1"},
            "spec": {"schedules": ["* * * * *"], "workflowMetadata": {"labels": {"team": "a"},
                                                                      "annotations": {"note": "x"}},
                     "workflowSpec": {"entrypoint": "main"}}}
    wf = workflow_for_tick(cron, t("2024-01-01T00:01:00"))
    assert wf["metadata"]["name"] == "nightly-1704067260"
    assert wf["metadata"]["labels"] == {"team": "a", LABEL_CRON_WORKFLOW: "nightly"}
    assert wf["metadata"]["annotations"] == {"note": "x", ANNOTATION_SCHEDULED_TIME: "2024-01-01T00:01:00Z"}
    assert wf["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert wf["spec"] == {"entrypoint": "main"}


def child(name: str, phase: str, finished: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if finished:
        status["finishedAt"] = finished
    return {"metadata": {"name": name, "uid": f"uid-{name}", "namespace": "ci"}, "status": status}


def ref(name: str) -> dict[str, str]:
    return {"kind": "Workflow", "apiVersion": "argoproj.io/v1alpha1", "name": name, "namespace": "ci",
            "uid": f"uid-{name}"}


@pytest.mark.parametrize(("status", "children", "active", "succeeded", "failed", "finished"), [
    ({"active": [ref("a")]}, [child("a", "Running")], ["a"], None, None, []),
    ({"active": [ref("a")]}, [child("a", "Succeeded")], [], 1, None, ["Succeeded"]),
    ({"active": [ref("a")], "failed": 2}, [child("a", "Error")], [], None, 3, ["Error"]),
    ({"active": [ref("a")]}, [], [], None, None, []),
    ({}, [child("b", "Running"), child("c", "Failed")], ["b"], None, None, []),
], ids=["still-running", "succeeded", "error-counts-failed", "vanished", "adopts-unfinished"])
def test_reconcile(status: dict[str, Any], children: list[dict[str, Any]], active: list[str],
                   succeeded: int | None, failed: int | None, finished: list[str]) -> None:
    """Active children stay, finished ones are counted once, vanished ones dropped, unknown running adopted."""
    out, done = reconcile(status, children)
    assert [r["name"] for r in out.get("active", [])] == active
    assert (out.get("succeeded"), out.get("failed"), done) == (succeeded, failed, finished)


@pytest.mark.parametrize(("ok_limit", "failed_limit", "expected"), [
    (None, None, ["s1", "f2", "f1"]),
    (1, 0, ["s3", "s2", "s1", "f3", "f2", "f1"]),
    (5, 5, []),
], ids=["defaults-3-and-1", "tight", "generous"])
def test_history_to_delete(ok_limit: int | None, failed_limit: int | None, expected: list[str]) -> None:
    """The oldest finished runs beyond the limits go; running ones never do."""
    children = [child(f"s{i}", "Succeeded", f"2024-01-01T00:0{i}:00Z") for i in range(1, 5)]
    children += [child("f1", "Failed", "2024-01-01T00:01:00Z"), child("f2", "Error", "2024-01-01T00:02:00Z"),
                 child("f3", "Failed", "2024-01-01T00:03:00Z"), child("r", "Running")]
    assert history_to_delete(children, successful_limit=ok_limit, failed_limit=failed_limit) == expected


def annotated(name: str, scheduled: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "annotations": {ANNOTATION_SCHEDULED_TIME: scheduled}}}


@pytest.mark.parametrize(("status", "children", "expected"), [
    ({"lastScheduledTime": "2024-01-01T00:05:00Z"}, [annotated("a", "2024-01-01T00:09:00Z")], "2024-01-01T00:05:00Z"),
    ({}, [annotated("a", "2024-01-01T00:09:00Z"), annotated("b", "2024-01-01T00:10:00Z")], "2024-01-01T00:10:00Z"),
    ({}, [{"metadata": {"name": "manual"}}], None),
], ids=["status-wins", "latest-child-annotation", "none"])
def test_last_scheduled(status: dict[str, Any], children: list[dict[str, Any]], expected: str | None) -> None:
    """A status wiped by a re-applied manifest is recovered from the children's scheduled-time."""
    assert last_scheduled(status, children) == expected


CRON_META: dict[str, Any] = {"metadata": {"name": "nightly", "namespace": "ci", "labels": {"env": "prod"}}}


@pytest.mark.parametrize(("when", "status", "expected"), [
    ("", {}, True),
    ("{{cronworkflow.name}} == nightly", {}, True),
    ("{{cronworkflow.succeeded}} < 2", {"succeeded": 2}, False),
    ("{{= cronworkflow.failed + 1 }} > 1", {"failed": 1}, True),
    ("{{= cronworkflow.labels.env == 'prod' }}", {}, True),
], ids=["empty", "name", "counter", "expression", "labels"])
def test_when_allows(when: str, status: dict[str, Any], expected: bool) -> None:
    """``when`` sees the cronworkflow variables, substituted then evaluated as a step ``when``."""
    assert when_allows(when, CRON_META, status) is expected


def test_when_with_unknown_variable_fails() -> None:
    with pytest.raises(ExpressionError):
        when_allows("{{cronworkflow.nope}} == 1", CRON_META, {})


@pytest.mark.parametrize(("expression", "status", "expected"), [
    ("cronworkflow.failed >= 2", {"failed": 1}, False),
    ("cronworkflow.failed >= 2", {"failed": 2}, True),
    ("cronworkflow.succeeded == 1 && cronworkflow.name == 'nightly'", {"succeeded": 1}, True),
], ids=["below", "reached", "succeeded-and-name"])
def test_stop_reached(expression: str, status: dict[str, Any], expected: bool) -> None:
    assert stop_reached(expression, CRON_META, status) is expected


def test_set_condition_upserts_and_removes() -> None:
    status: dict[str, Any] = {}
    set_condition(status, "SubmissionError", "boom")
    set_condition(status, "SubmissionError", "again")
    assert status["conditions"] == [{"type": "SubmissionError", "status": "True", "message": "again"}]
    set_condition(status, "SubmissionError", None)
    assert "conditions" not in status


# -- real runs with a fake clock ---------------------------------------------------------------


class FakeTime:
    """A clock the test sets; ``sleep`` returns once the clock reaches its deadline."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self._waiters: list[asyncio.Future[None]] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        target = self.now + timedelta(seconds=seconds)
        while self.now < target:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            await fut

    def set(self, when: datetime) -> None:
        self.now = when
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)


START = t("2024-01-01T00:00:30")


def cron(name: str = "tick", *, command: list[str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": KIND, "metadata": {"name": name, "namespace": "ci"},
            "spec": {"schedules": ["* * * * *"], **spec, "workflowSpec": {
                "entrypoint": "main",
                "templates": [{"name": "main", "container": {"image": "busybox",
                                                             "command": command or ["echo", "hi"]}}]}}}


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_ISOLATION": "none"})
    async with assemble(settings, memory=True) as built:
        yield built


async def eventually(probe: Callable[[], Any], *, timeout: float = 20.0) -> Any:
    """Poll an async probe until it returns something truthy (real time: the engine runs real processes)."""
    async def loop() -> Any:
        while not (value := await probe()):
            await asyncio.sleep(0.02)
        return value
    return await asyncio.wait_for(loop(), timeout)


async def runs(parts: Parts, name: str = "tick") -> list[dict[str, Any]]:
    page = await parts.store.list("ci", ListOptions(labels={LABEL_CRON_WORKFLOW: name}))
    return sorted(page.items, key=lambda w: w["metadata"]["name"])


async def stored(parts: Parts, name: str = "tick") -> dict[str, Any]:
    return await parts.store.get_object(KIND, "ci", name)


async def test_every_minute_tick_runs_and_status_follows(parts: Parts) -> None:
    """At 00:01 the run ``tick-<unix>`` starts with Argo's labels; when it ends the counters move."""
    await parts.store.put_object(KIND, cron())
    time = FakeTime(START)
    async with run_cron_workflows(store=parts.store, engine=parts.engine, clock=time.clock,
                                  sleep=time.sleep) as scheduler:
        await eventually(lambda: _handled(time))
        assert await runs(parts) == []  # nothing before the first tick
        time.set(t("2024-01-01T00:01:00"))
        [run] = await eventually(lambda: runs(parts))
        assert run["metadata"]["name"] == "tick-1704067260"
        assert run["metadata"]["annotations"][ANNOTATION_SCHEDULED_TIME] == "2024-01-01T00:01:00Z"
        status = (await eventually(lambda: _with_status(parts)))["status"]
        assert status["lastScheduledTime"] == "2024-01-01T00:01:00Z"
        assert status["phase"] == "Active"
        assert [r["name"] for r in status["active"]] == ["tick-1704067260"]
        await parts.engine.wait("ci", "tick-1704067260")
        scheduler.notify()
        done = await eventually(lambda: _counted(parts, "succeeded"))
        assert "active" not in done["status"]
        time.set(t("2024-01-01T00:02:00"))
        assert len(await eventually(lambda: _at_least(parts, 2))) == 2


async def _with_status(parts: Parts) -> dict[str, Any] | None:
    obj = await stored(parts)
    return obj if (obj.get("status") or {}).get("active") else None


async def _counted(parts: Parts, key: str, value: int = 1) -> dict[str, Any] | None:
    obj = await stored(parts)
    return obj if (obj.get("status") or {}).get(key) == value else None


async def _at_least(parts: Parts, count: int) -> list[dict[str, Any]] | None:
    found = await runs(parts)
    return found if len(found) >= count else None


async def test_forbid_skips_while_a_run_is_active(parts: Parts) -> None:
    """With Forbid, the 00:02 tick passes without a run while the 00:01 run still sleeps."""
    await parts.store.put_object(KIND, cron(command=["sleep", "30"], concurrencyPolicy="Forbid"))
    time = FakeTime(START)
    async with run_cron_workflows(store=parts.store, engine=parts.engine, clock=time.clock, sleep=time.sleep):
        await eventually(lambda: _handled(time))  # the first pass saw the CronWorkflow at 00:00:30
        time.set(t("2024-01-01T00:01:00"))
        await eventually(lambda: _with_status(parts))
        time.set(t("2024-01-01T00:02:00"))
        await eventually(lambda: _handled(time))
        await asyncio.sleep(0.1)
        assert [r["metadata"]["name"] for r in await runs(parts)] == ["tick-1704067260"]
        await parts.engine.stop("ci", "tick-1704067260", strategy="Terminate")
        await parts.engine.wait("ci", "tick-1704067260")


async def _handled(time: FakeTime) -> bool:
    """The scheduler went back to sleep after the current time was set (it has seen it)."""
    await asyncio.sleep(0.05)
    return bool(time._waiters)


async def test_replace_terminates_the_active_run(parts: Parts) -> None:
    """With Replace, the 00:02 tick terminates the sleeping 00:01 run and starts its own."""
    await parts.store.put_object(KIND, cron(command=["sleep", "30"], concurrencyPolicy="Replace"))
    time = FakeTime(START)
    async with run_cron_workflows(store=parts.store, engine=parts.engine, clock=time.clock, sleep=time.sleep):
        await eventually(lambda: _handled(time))  # the first pass saw the CronWorkflow at 00:00:30
        time.set(t("2024-01-01T00:01:00"))
        await eventually(lambda: _with_status(parts))
        time.set(t("2024-01-01T00:02:00"))
        await eventually(lambda: _at_least(parts, 2))
        first = await asyncio.wait_for(parts.engine.wait("ci", "tick-1704067260"), 20)
        assert first["status"]["phase"] in ("Failed", "Error")
        await parts.engine.stop("ci", "tick-1704067320", strategy="Terminate")
        await parts.engine.wait("ci", "tick-1704067320")


@pytest.mark.parametrize(("deadline", "expected"), [
    (300, ["tick-1704067380"]), (20, []), (None, []),
], ids=["within-deadline-runs-last-missed-once", "beyond-deadline", "no-deadline"])
async def test_catch_up_after_restart(parts: Parts, deadline: int | None, expected: list[str]) -> None:
    """Last ran at 00:00, back at 00:03:30: only the 00:03 tick may run, and only within the deadline."""
    extra: dict[str, Any] = {"startingDeadlineSeconds": deadline} if deadline is not None else {}
    manifest = cron(**extra)
    manifest["status"] = {"lastScheduledTime": "2024-01-01T00:00:00Z"}
    await parts.store.put_object(KIND, manifest)
    time = FakeTime(t("2024-01-01T00:03:30"))
    scheduler = CronScheduler(store=parts.store, engine=parts.engine, clock=time.clock, sleep=time.sleep)
    await scheduler.sync_all()
    await scheduler.sync_all()  # a second pass does not run the same tick again
    assert [r["metadata"]["name"] for r in await runs(parts)] == expected
    for name in expected:
        await parts.engine.wait("ci", name)


async def test_catch_up_when_the_status_was_lost(parts: Parts) -> None:
    """A manifest re-applied without status: the 00:00 child's scheduled-time still anchors the catch-up."""
    await parts.store.put_object(KIND, cron(startingDeadlineSeconds=300))
    old = workflow_for_tick(cron(), t("2024-01-01T00:00:00"))
    old["metadata"]["namespace"] = "ci"
    old["status"] = {"phase": "Succeeded", "finishedAt": "2024-01-01T00:00:05Z"}
    await parts.store.create(old)
    scheduler = CronScheduler(store=parts.store, engine=parts.engine, clock=FakeTime(t("2024-01-01T00:03:30")).clock)
    await scheduler.sync_all()
    assert [r["metadata"]["name"] for r in await runs(parts)] == ["tick-1704067200", "tick-1704067380"]
    await parts.engine.wait("ci", "tick-1704067380")


async def test_suspended_cron_does_not_run_until_resumed(parts: Parts) -> None:
    """A suspended CronWorkflow's ticks pass; after resume the next tick runs."""
    await parts.store.put_object(KIND, cron(suspend=True))
    time = FakeTime(START)
    scheduler = CronScheduler(store=parts.store, engine=parts.engine, clock=time.clock, sleep=time.sleep)
    await scheduler.sync_all()
    time.set(t("2024-01-01T00:01:00"))
    await scheduler.sync_all()
    assert await runs(parts) == []
    obj = await stored(parts)
    obj["spec"]["suspend"] = False
    await parts.store.put_object(KIND, obj)
    time.set(t("2024-01-01T00:02:00"))
    await scheduler.sync_all()
    assert [r["metadata"]["name"] for r in await runs(parts)] == ["tick-1704067320"]
    await parts.engine.wait("ci", "tick-1704067320")


async def test_history_limit_and_stop_strategy(parts: Parts) -> None:
    """successfulJobsHistoryLimit 1 keeps the newest success; stopStrategy stops after two successes."""
    await parts.store.put_object(KIND, cron(successfulJobsHistoryLimit=1,
                                            stopStrategy={"expression": "cronworkflow.succeeded >= 2"}))
    time = FakeTime(START)
    scheduler = CronScheduler(store=parts.store, engine=parts.engine, clock=time.clock, sleep=time.sleep)
    await scheduler.sync_all()
    for minute in (1, 2):
        time.set(START + timedelta(seconds=30 + 60 * (minute - 1)))
        await scheduler.sync_all()
        [*_, last] = await runs(parts)
        await parts.engine.wait("ci", last["metadata"]["name"])
    await scheduler.sync_all()
    obj = await stored(parts)
    assert (obj["status"]["succeeded"], obj["status"]["phase"]) == (2, "Stopped")
    assert obj["metadata"]["labels"][LABEL_COMPLETED] == "true"
    assert [r["metadata"]["name"] for r in await runs(parts)] == ["tick-1704067320"]
    time.set(t("2024-01-01T00:03:00"))
    await scheduler.sync_all()
    assert len(await runs(parts)) == 1  # Stopped: no more runs


async def test_invalid_stored_cron_gets_a_spec_error_condition(parts: Parts) -> None:
    """A bad schedule in the store (loaded by hand) is reported as Argo's SpecError condition, not run."""
    await parts.store.put_object(KIND, cron(schedules=["nope"]))
    scheduler = CronScheduler(store=parts.store, engine=parts.engine, clock=FakeTime(START).clock)
    assert await scheduler.sync_all() is None
    [condition] = (await stored(parts))["status"]["conditions"]
    assert condition["type"] == "SpecError" and "spec.schedules[0]" in condition["message"]


async def test_submission_error_is_a_condition(parts: Parts) -> None:
    """A workflowSpec the engine refuses leaves a SubmissionError condition and no run."""
    bad = cron()
    bad["spec"]["workflowSpec"]["entrypoint"] = "missing"
    await parts.store.put_object(KIND, bad)
    time = FakeTime(START)
    scheduler = CronScheduler(store=parts.store, engine=parts.engine, clock=time.clock)
    await scheduler.sync_all()
    time.set(t("2024-01-01T00:01:00"))
    await scheduler.sync_all()
    [condition] = (await stored(parts))["status"]["conditions"]
    assert condition["type"] == "SubmissionError"
    assert await runs(parts) == []
