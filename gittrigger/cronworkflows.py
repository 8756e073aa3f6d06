"""
CronWorkflows that run on their schedule: Argo's cron controller (``workflow/cron/operator.go``).

The policies are pure functions at the top (table-tested): which tick is due and whether it still
may run (``startingDeadlineSeconds``), ``concurrencyPolicy``, the Workflow a tick submits (named
``<cron>-<unix time>``), ``status.active`` and the succeeded/failed counters reconciled with the
children found in the store, ``when`` and ``stopStrategy``, history limits. :class:`CronScheduler`
is the async shell: one loop that re-reads the stored CronWorkflows on every pass, so objects
created, changed or deleted over the API take effect without a restart (:meth:`CronScheduler.notify`
wakes it at once; otherwise within ``resync_seconds``). It submits through ``engine.submit`` and
writes the status back into the stored CronWorkflow. Entered by the process wiring through
:func:`run_cron_workflows`; :mod:`gittrigger.http.templates` validates with :func:`check_cron_spec`.
Clock and sleep are injected, so tests drive time without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol

import structlog
from croniter import CroniterError, croniter

from gittrigger.artifactcollector import ArtifactCollector
from gittrigger.sources.cron import zone
from workflows.engine import Engine
from workflows.errors import AlreadyExists, ExpressionError, InvalidSpec, NotFound, WorkflowError
from workflows.expressions import check_syntax, evaluate, evaluate_when, go_string
from workflows.model.spec import CronSpec
from workflows.model.wire import parse_cron
from workflows.store.base import ListOptions, ObjectStore, RawObject, WorkflowStore
from workflows.store.objects import copy_json, parse_rfc3339, rfc3339

log = structlog.get_logger("gittrigger.cronworkflows")

KIND: Final = "CronWorkflow"
API_VERSION: Final = "argoproj.io/v1alpha1"
LABEL_CRON_WORKFLOW: Final = "workflows.argoproj.io/cron-workflow"
LABEL_COMPLETED: Final = "workflows.argoproj.io/cron-workflow-completed"
ANNOTATION_SCHEDULED_TIME: Final = "workflows.argoproj.io/scheduled-time"
POLICIES: Final = ("Allow", "Forbid", "Replace")
FINISHED: Final = frozenset({"Succeeded", "Failed", "Error"})
SUCCESSFUL_HISTORY: Final = 3  # Argo's defaults when the limits are unset
FAILED_HISTORY: Final = 1
SPEC_ERROR: Final = "SpecError"
SUBMISSION_ERROR: Final = "SubmissionError"
_DESCRIPTORS: Final = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_TAG: Final = re.compile(r"{{\s*(=)?\s*(.+?)\s*}}")

Action = Literal["run", "skip", "replace"]


# -- validation --------------------------------------------------------------------------------


def check_schedule(schedule: str) -> None:
    """Five cron fields or a ``@daily``-style descriptor, as robfig's ParseStandard; ValueError otherwise."""
    text = schedule.strip()
    if text.startswith("@"):
        if text not in _DESCRIPTORS:
            raise ValueError(f"unsupported descriptor {text!r} (use {', '.join(sorted(_DESCRIPTORS))} "
                             "or five cron fields)")
        return
    if len(text.split()) != 5:
        raise ValueError(f"expected five cron fields (minute hour day-of-month month day-of-week), got {text!r}")
    try:
        croniter(text, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as e:
        raise ValueError(f"invalid schedule {text!r}: {e}") from None


def check_cron_spec(spec: Mapping[str, Any], *, path: str = "spec") -> list[InvalidSpec]:
    """Every problem of a CronWorkflow's own fields (the workflowSpec is validated elsewhere)."""
    try:
        cron = parse_cron(dict(spec), path=path)
    except InvalidSpec as e:
        return [e]
    problems: list[InvalidSpec] = []
    key = "schedule" if spec.get("schedule") else "schedules"
    offset = 1 if spec.get("schedule") and spec.get("schedules") else 0
    for i, schedule in enumerate(cron.schedules):
        where = f"{path}.schedule" if key == "schedule" and i == 0 else f"{path}.schedules[{i - offset}]"
        try:
            check_schedule(schedule)
        except ValueError as e:
            problems.append(InvalidSpec(where, str(e)))
    if cron.timezone:
        try:
            zone(cron.timezone)
        except ValueError as e:
            problems.append(InvalidSpec(f"{path}.timezone", str(e)))
    if cron.concurrency_policy not in POLICIES:
        problems.append(InvalidSpec(f"{path}.concurrencyPolicy",
                                    f"must be one of {', '.join(POLICIES)}, got {cron.concurrency_policy!r}"))
    for name, value in (("startingDeadlineSeconds", cron.starting_deadline_seconds),
                        ("successfulJobsHistoryLimit", cron.successful_jobs_history_limit),
                        ("failedJobsHistoryLimit", cron.failed_jobs_history_limit)):
        if value is not None and value < 0:
            problems.append(InvalidSpec(f"{path}.{name}", f"must not be negative, got {value}"))
    try:
        expression = stop_expression(spec, path=path)
        if expression:
            check_syntax(expression)
    except InvalidSpec as e:
        problems.append(e)
    except ExpressionError as e:
        problems.append(InvalidSpec(f"{path}.stopStrategy.expression", str(e)))
    return problems


def stop_expression(spec: Mapping[str, Any], *, path: str = "spec") -> str | None:
    """``spec.stopStrategy.expression`` (Argo 3.6), or None."""
    strategy = spec.get("stopStrategy")
    if strategy is None:
        return None
    if not isinstance(strategy, Mapping) or not isinstance(strategy.get("expression", ""), str):
        raise InvalidSpec(f"{path}.stopStrategy", "must be an object with a string expression")
    return strategy.get("expression") or None


# -- schedule math -----------------------------------------------------------------------------


def latest_tick(schedules: Sequence[str], *, timezone: str | None, after: datetime, until: datetime) -> datetime | None:
    """The latest tick of any schedule in ``(after, until]``, in UTC; None when there is none.

    Walks backwards from ``until``, so a long outage of a ``* * * * *`` schedule costs one step.
    """
    tz = zone(timezone or "")
    best: datetime | None = None
    for schedule in schedules:
        it = croniter(schedule.strip(), (until + timedelta(seconds=1)).astimezone(tz))
        tick = it.get_prev(datetime).astimezone(UTC)
        while tick > until:
            tick = it.get_prev(datetime).astimezone(UTC)
        if tick > after and (best is None or tick > best):
            best = tick
    return best


def next_tick(schedules: Sequence[str], *, timezone: str | None, after: datetime) -> datetime:
    """The earliest tick of any schedule strictly after ``after``, in UTC."""
    tz = zone(timezone or "")
    ticks: list[datetime] = [croniter(s.strip(), after.astimezone(tz)).get_next(datetime) for s in schedules]
    return min(t.astimezone(UTC) for t in ticks)


def may_run(*, tick: datetime, now: datetime, watching_since: datetime, deadline: int | None) -> bool:
    """Whether a due tick still runs at ``now``.

    A tick that came while the scheduler was watching runs unless it is late by more than a
    positive ``startingDeadlineSeconds`` (the process was suspended, a pass took long). A tick
    missed while no scheduler watched (server down) runs only within the deadline, as Argo's
    ``shouldOutstandingWorkflowsBeRun``: without a deadline, missed ticks are skipped.
    """
    late = (now - tick).total_seconds()
    if tick >= watching_since:
        return not deadline or late <= deadline
    return deadline is not None and late < deadline


def concurrency_action(policy: str, *, active: int) -> Action:
    """Argo's ``enforceRuntimePolicy``: Forbid skips and Replace stops while a child is active."""
    if active == 0 or policy == "Allow":
        return "run"
    return "skip" if policy == "Forbid" else "replace"


def child_name(cron_name: str, tick: datetime) -> str:
    """Argo's ``getChildWorkflowName``: ``<cron>-<unix seconds of the scheduled time>``."""
    return f"{cron_name}-{int(tick.timestamp())}"


def workflow_of(cron: Mapping[str, Any]) -> dict[str, Any]:
    """The Workflow a CronWorkflow runs (Argo's ``ConvertCronWorkflowToWorkflow``): its workflowSpec
    with ``workflowMetadata`` and the cron-workflow label, named ``<cron>-`` plus a suffix."""
    spec = cron.get("spec") or {}
    wf_meta = spec.get("workflowMetadata") or {}
    name = str((cron.get("metadata") or {}).get("name") or "")
    metadata: dict[str, Any] = {"generateName": f"{name}-",
                                "labels": {**(wf_meta.get("labels") or {}), LABEL_CRON_WORKFLOW: name}}
    if wf_meta.get("annotations"):
        metadata["annotations"] = dict(wf_meta["annotations"])
    return {"apiVersion": API_VERSION, "kind": "Workflow", "metadata": metadata,
            "spec": copy_json(spec.get("workflowSpec") or {})}


def workflow_for_tick(cron: Mapping[str, Any], tick: datetime) -> dict[str, Any]:
    """The Workflow a tick submits (Argo's ``ConvertCronWorkflowToWorkflowWithProperties``): named by
    the tick, annotated with it, owned by the CronWorkflow."""
    meta = cron.get("metadata") or {}
    name = str(meta.get("name") or "")
    workflow = workflow_of(cron)
    metadata = workflow["metadata"]
    del metadata["generateName"]
    metadata["name"] = child_name(name, tick)
    metadata["annotations"] = {**(metadata.get("annotations") or {}), ANNOTATION_SCHEDULED_TIME: rfc3339(tick)}
    if meta.get("uid"):
        metadata["ownerReferences"] = [{"apiVersion": API_VERSION, "kind": KIND, "name": name,
                                        "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]
    return workflow


# -- status ------------------------------------------------------------------------------------


def _phase(obj: Mapping[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def reference(workflow: Mapping[str, Any]) -> dict[str, str]:
    """An ``active`` entry: the child's ObjectReference."""
    meta = workflow.get("metadata") or {}
    ref = {"kind": "Workflow", "apiVersion": API_VERSION}
    for key in ("name", "namespace", "uid", "resourceVersion"):
        if meta.get(key):
            ref[key] = str(meta[key])
    return ref


def reconcile(status: Mapping[str, Any], children: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Argo's ``reconcileActiveWfs``: ``active`` lists the unfinished children; an active child that
    finished bumps ``succeeded`` or ``failed`` (Error counts as failed); a vanished one is dropped.
    Returns the new status and the phases that finished now."""
    out = copy_json(dict(status))
    by_id = {str((c.get("metadata") or {}).get("uid") or (c.get("metadata") or {}).get("name")): c for c in children}
    active: list[dict[str, Any]] = []
    finished: list[str] = []
    for ref in out.get("active") or []:
        child = by_id.get(str(ref.get("uid") or ref.get("name")))
        if child is None:
            continue
        phase = _phase(child)
        if phase in FINISHED:
            finished.append(phase)
            key = "succeeded" if phase == "Succeeded" else "failed"
            out[key] = int(out.get(key) or 0) + 1
        else:
            active.append(ref)
    known = {str(r.get("uid") or r.get("name")) for r in active} | {str(r.get("uid") or r.get("name"))
                                                                   for r in out.get("active") or []}
    for key, child in by_id.items():
        if key not in known and _phase(child) not in FINISHED:
            active.append(reference(child))
    if active:
        out["active"] = active
    else:
        out.pop("active", None)
    return out, finished


def set_condition(status: dict[str, Any], kind: str, message: str | None) -> None:
    """Upsert (``message``) or remove (None) the condition of type ``kind``, as Argo's Conditions."""
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if message is not None:
        conditions.append({"type": kind, "status": "True", "message": message})
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)


def expression_env(cron: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
    """The ``cronworkflow`` variables of ``when`` and ``stopStrategy`` (Argo's ``expressionEnv``)."""
    meta = cron.get("metadata") or {}
    return {"name": meta.get("name") or "", "namespace": meta.get("namespace") or "",
            "labels": dict(meta.get("labels") or {}), "annotations": dict(meta.get("annotations") or {}),
            "failed": int(status.get("failed") or 0), "succeeded": int(status.get("succeeded") or 0),
            "lastScheduledTime": status.get("lastScheduledTime")}


def stop_reached(expression: str, cron: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """``stopStrategy.expression`` (expr-lang over ``cronworkflow.*``); ExpressionError when it fails."""
    result = evaluate(expression, {"cronworkflow": expression_env(cron, status)})
    if not isinstance(result, bool):
        raise ExpressionError(expression, f"must evaluate to a boolean, got {go_string(result)}")
    return result


def when_allows(when: str, cron: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """``spec.when`` (Argo 3.6): ``{{cronworkflow.x}}`` and ``{{= expr}}`` are substituted, then the text
    is evaluated as a step ``when``. ExpressionError when it fails."""
    env = expression_env(cron, status)

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return go_string(evaluate(match.group(2), {"cronworkflow": env}))
        name = match.group(2)
        prefix, _, rest = name.partition(".")
        if prefix != "cronworkflow" or rest not in env:
            raise ExpressionError(when, f"unknown variable {{{{{name}}}}}")
        return go_string(env[rest])

    return evaluate_when(_TAG.sub(substitute, when))


def last_scheduled(status: Mapping[str, Any], children: Sequence[Mapping[str, Any]]) -> str | None:
    """``status.lastScheduledTime``, else the latest scheduled-time annotation of the children: a status
    lost to a manifest re-applied from a file must not turn a restart's catch-up off."""
    if status.get("lastScheduledTime"):
        return str(status["lastScheduledTime"])
    times = [str(a[ANNOTATION_SCHEDULED_TIME]) for c in children
             if ANNOTATION_SCHEDULED_TIME in (a := (c.get("metadata") or {}).get("annotations") or {})]
    return max(times, key=parse_rfc3339) if times else None


def history_to_delete(children: Sequence[Mapping[str, Any]], *, successful_limit: int | None,
                      failed_limit: int | None) -> list[str]:
    """Names of finished children beyond the history limits, oldest ``finishedAt`` first to go."""
    names: list[str] = []
    for wanted, limit, default in ((True, successful_limit, SUCCESSFUL_HISTORY),
                                   (False, failed_limit, FAILED_HISTORY)):
        done = [c for c in children if _phase(c) in FINISHED and (_phase(c) == "Succeeded") is wanted]
        done.sort(key=lambda c: str((c.get("status") or {}).get("finishedAt") or ""), reverse=True)
        keep = default if limit is None or limit < 0 else limit
        names.extend(str(c["metadata"]["name"]) for c in done[keep:])
    return names


# -- the scheduler -----------------------------------------------------------------------------


class CronStore(WorkflowStore, ObjectStore, Protocol):
    """What the scheduler reads and writes: the children (runs) and the CronWorkflow objects."""


Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True, kw_only=True)
class _Memory:
    """What the scheduler remembers of one CronWorkflow between passes (lost on restart, by design)."""

    signature: tuple[Any, ...]  # uid, schedules, timezone: a change means "new schedule"
    floor: datetime | None  # ticks at or before it never run (None: catch up from lastScheduledTime)
    watching_since: datetime  # ticks before it were missed while nobody watched
    handled: datetime | None = None  # the last tick decided (run or skipped)


class CronScheduler:
    """Fires every stored CronWorkflow on its schedule; see the module docstring."""

    def __init__(self, *, store: CronStore, engine: Engine, clock: Clock = utcnow,
                 sleep: Sleep = asyncio.sleep, resync_seconds: float = 10.0,
                 collector: ArtifactCollector | None = None) -> None:
        self._store = store
        self._collector = collector  # history trimmed with its artifacts (artifactGC); None: runs only
        self._engine = engine
        self._clock = clock
        self._sleep = sleep
        self._resync = resync_seconds
        self._memory: dict[tuple[str, str], _Memory] = {}
        self._wakeup = asyncio.Event()
        self._started: datetime | None = None

    def notify(self) -> None:
        """Re-read the CronWorkflows now (called after an API change)."""
        self._wakeup.set()

    async def run(self) -> None:
        """Pass after pass until cancelled; a failing pass is logged and retried at the next one."""
        while True:
            self._wakeup.clear()
            wake: datetime | None = None
            try:
                wake = await self.sync_all()
            except Exception:
                log.exception("cron workflows pass failed")
            delay = self._resync
            if wake is not None:
                delay = min(delay, max((wake - self._clock()).total_seconds(), 0.0))
            await self._nap(delay)

    async def _nap(self, seconds: float) -> None:
        nap = asyncio.ensure_future(self._sleep(seconds))
        woken = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({nap, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (nap, woken):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def sync_all(self) -> datetime | None:
        """One pass over every stored CronWorkflow; returns when the next tick is due (None: none)."""
        now = self._clock()
        if self._started is None:
            self._started = now
        seen: set[tuple[str, str]] = set()
        wake: datetime | None = None
        for raw in await self._store.list_objects(KIND, None):
            meta = raw.get("metadata") or {}
            key = (str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
            seen.add(key)
            try:
                due = await self._sync(key, raw, now=now)
            except WorkflowError as e:
                log.error("cron workflow pass failed", namespace=key[0], cron_workflow=key[1], error=str(e))
                continue
            if due is not None and (wake is None or due < wake):
                wake = due
        for gone in set(self._memory) - seen:
            del self._memory[gone]
        return wake

    def _remember(self, key: tuple[str, str], raw: RawObject, cron: CronSpec, *, last: str | None,
                  now: datetime) -> _Memory:
        signature = ((raw.get("metadata") or {}).get("uid"), cron.schedules, cron.timezone)
        memory = self._memory.get(key)
        if memory is not None and memory.signature == signature:
            return memory
        # Argo runs missed ticks only for a CronWorkflow that ran before, and never right after its
        # schedule changed; a new one starts with the first tick after we first see it.
        fresh = memory is not None or not last
        started = self._started or now
        memory = _Memory(signature=signature, floor=now if fresh else None, watching_since=now if fresh else started)
        self._memory[key] = memory
        return memory

    async def _sync(self, key: tuple[str, str], raw: RawObject, *, now: datetime) -> datetime | None:
        namespace, name = key
        spec = raw.get("spec") or {}
        status = copy_json(raw.get("status") or {})
        before = copy_json(status)
        labels: dict[str, str] = {}
        problems = check_cron_spec(spec)
        if problems:
            set_condition(status, SPEC_ERROR, "; ".join(str(p) for p in problems))
            await self._save(key, raw, status, before, labels)
            return None
        set_condition(status, SPEC_ERROR, None)
        cron = parse_cron(spec, path="spec")
        children = list((await self._store.list(namespace, ListOptions(labels={LABEL_CRON_WORKFLOW: name}))).items)
        status, finished = reconcile(status, children)
        expression = stop_expression(spec)
        if finished and expression and self._stopped(expression, raw, status):
            labels[LABEL_COMPLETED] = "true"
        for old in history_to_delete(children, successful_limit=cron.successful_jobs_history_limit,
                                     failed_limit=cron.failed_jobs_history_limit):
            with contextlib.suppress(NotFound):
                if self._collector is not None:
                    await self._collector.delete_workflow(namespace, old)
                else:
                    await self._store.delete(namespace, old)
            log.info("cron workflow history trimmed", namespace=namespace, cron_workflow=name, workflow=old)
        last = last_scheduled(status, children)
        memory = self._remember(key, raw, cron, last=last, now=now)
        marks = [t for t in (parse_rfc3339(last) if last else None, memory.handled, memory.floor) if t is not None]
        after = max(marks) if marks else now
        tick = latest_tick(cron.schedules, timezone=cron.timezone, after=after, until=now)
        if tick is not None:
            memory.handled = tick
            if may_run(tick=tick, now=now, watching_since=memory.watching_since,
                       deadline=cron.starting_deadline_seconds):
                await self._fire(key, raw, cron, status, tick, labels)
            else:
                log.info("cron workflow tick missed", namespace=namespace, cron_workflow=name, tick=rfc3339(tick),
                         starting_deadline_seconds=cron.starting_deadline_seconds)
        await self._save(key, raw, status, before, labels)
        return next_tick(cron.schedules, timezone=cron.timezone, after=max(after, now))

    def _stopped(self, expression: str, raw: RawObject, status: dict[str, Any]) -> bool:
        try:
            reached = stop_reached(expression, raw, status)
        except ExpressionError as e:
            set_condition(status, SPEC_ERROR, f"failed to check stopping condition: {e}")
            return False
        if reached:
            status["phase"] = "Stopped"
        return reached

    async def _fire(self, key: tuple[str, str], raw: RawObject, cron: CronSpec, status: dict[str, Any],
                    tick: datetime, labels: dict[str, str]) -> None:
        """Run one tick (Argo's ``run``): suspend, Stopped, ``when``, concurrency, then submit."""
        namespace, name = key
        if cron.suspend or status.get("phase") == "Stopped":
            return
        try:
            if cron.when and not when_allows(cron.when, raw, status):
                log.info("cron workflow tick skipped by when", namespace=namespace, cron_workflow=name)
                return
        except ExpressionError as e:
            set_condition(status, SUBMISSION_ERROR, f"run policy error: {e}")
            return
        active = list(status.get("active") or [])
        action = concurrency_action(cron.concurrency_policy, active=len(active))
        if action == "skip":
            log.info("cron workflow tick skipped: a run is active", namespace=namespace, cron_workflow=name,
                     policy=cron.concurrency_policy)
            return
        if action == "replace":
            for ref in active:
                with contextlib.suppress(WorkflowError):  # finished or gone meanwhile: nothing to stop
                    await self._engine.stop(namespace, str(ref.get("name")), strategy="Terminate")
                    log.info("cron workflow run replaced", namespace=namespace, cron_workflow=name,
                             workflow=ref.get("name"))
        try:
            created = await self._engine.submit(workflow_for_tick(raw, tick), namespace=namespace)
        except AlreadyExists:
            return  # submitted for this tick before (a restart between submit and status write)
        except WorkflowError as e:
            set_condition(status, SUBMISSION_ERROR, f"Failed to submit Workflow: {e}")
            log.error("cron workflow submit failed", namespace=namespace, cron_workflow=name, error=str(e))
            return
        status["active"] = [*(status.get("active") or []), reference(created)]
        status["lastScheduledTime"] = rfc3339(tick)
        status["phase"] = "Active"
        set_condition(status, SUBMISSION_ERROR, None)
        log.info("cron workflow submitted", namespace=namespace, cron_workflow=name,
                 workflow=created["metadata"]["name"], tick=rfc3339(tick))

    async def _save(self, key: tuple[str, str], raw: RawObject, status: dict[str, Any],
                    before: dict[str, Any], labels: Mapping[str, str]) -> None:
        """Write ``status`` (and new labels) into the object as stored now: a spec changed over the API
        meanwhile is kept. An object deleted or re-created meanwhile is left alone."""
        if status == before and not labels:
            return
        try:
            fresh = await self._store.get_object(KIND, key[0], key[1])
        except NotFound:
            return
        meta = fresh.setdefault("metadata", {})
        if meta.get("uid") != (raw.get("metadata") or {}).get("uid"):
            return
        if labels:
            meta["labels"] = {**(meta.get("labels") or {}), **labels}
        fresh["status"] = status
        await self._store.put_object(KIND, fresh)


@contextlib.asynccontextmanager
async def run_cron_workflows(*, store: CronStore, engine: Engine, clock: Clock = utcnow,
                             sleep: Sleep = asyncio.sleep, resync_seconds: float = 10.0,
                             collector: ArtifactCollector | None = None) -> AsyncIterator[CronScheduler]:
    """Run a :class:`CronScheduler` as a named task for the duration of the block; yields it (for notify)."""
    scheduler = CronScheduler(store=store, engine=engine, clock=clock, sleep=sleep, resync_seconds=resync_seconds,
                              collector=collector)
    task = asyncio.create_task(scheduler.run(), name="cron workflows")
    try:
        yield scheduler
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
