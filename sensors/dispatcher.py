"""
The sensor dispatcher: events from the log, matched against every sensor, turned into workflow runs.

Owned by the server runtime (``tg.create_task(dispatcher.run(), name="sensor dispatcher")``);
the webhook edge and the event sources call :meth:`Dispatcher.notify` after ``append`` so an
event is dispatched at once; the replay endpoint calls :meth:`Dispatcher.replay`; a config
reload calls :meth:`Dispatcher.replace_sensors`. Matching is :func:`sensors.matching.match`
(pure); this module does what it decides, through two small seams: :class:`Submitter` (the
engine's ``submit``) and :class:`WorkflowOps` (stop, list runs by label, and optionally
``resubmit``/``retry``/``suspend``/``resume``).

Order and durability: events are matched one at a time in ``seq`` order (sensor state is
in-memory and order-sensitive); each event's firings then run in one owned task per event
(``dispatch of event <seq>``), and only when all are done (submitted, failed, or given up) is the
event marked dispatched. A crash before that leaves it pending: on start, :meth:`run` drains
what is pending, and skips a trigger whose run exists already (an audit ``submitted`` entry, or
a run carrying the event's ``gittrigger.io/event-seq``/``sensor``/``trigger`` labels), so an
acknowledged delivery produces one run, not two.

Priority: answering deliveries comes first. While ``busy()`` says deliveries are being answered
(the webhook edge counts them), the dispatcher waits ``yield_s`` before each event, so a flood of
pushes is acknowledged at full speed while dispatch goes on at a bounded pace (at most
1/``yield_s`` events a second) from the durable log, and catches up at full speed once the flood
ends. A lone delivery still counts as recent when the dispatcher reaches it, so its event waits
``yield_s`` once (2 ms by default).

Policies, per trigger: ``retryStrategy`` (``steps`` attempts in all, waits ``duration`` x
``factor``^n, defaults 1 s and 1; jitter ignored so tests stay exact; no strategy = one
attempt); ``rateLimit`` (a token bucket of ``requestsPerUnit`` tokens refilled over ``unit``,
like Argo Events' ``rate.Limiter``; excess firings wait, in order; 0 = no limit). Concurrency
groups (our extension), labelled ``gittrigger.io/concurrency-group``: firings of one group
take a FIFO lock; with ``cancelInProgress`` every unfinished run of the group is stopped (Argo
``stop``: exit handlers run) before the new one is submitted; otherwise the firing waits,
polling ``list_runs`` every ``group_poll_s``, until no run of the group is unfinished, so runs of
a group execute one after another in arrival order. Queued firings live in memory only, but
their event is not marked dispatched until they are submitted, so a restart re-queues them.
Without ``ops`` groups cannot be observed and are not enforced (the audit entry says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import structlog

from sensors.eventlog import AuditEntry, EventLog, StoredEvent
from sensors.matching import Notice, SensorState, Submission, match
from sensors.model import Sensor, Trigger
from sensors.policies import RateLimit
from workflows.errors import WorkflowError

log = structlog.get_logger(__name__)

LABEL_SENSOR: Final = "gittrigger.io/sensor"
LABEL_TRIGGER: Final = "gittrigger.io/trigger"
LABEL_EVENT: Final = "gittrigger.io/event-id"
LABEL_EVENT_SEQ: Final = "gittrigger.io/event-seq"
LABEL_GROUP: Final = "gittrigger.io/concurrency-group"
FINISHED_PHASES: Final = frozenset({"Succeeded", "Failed", "Error"})
_UNIT_SECONDS: Final = {"Second": 1.0, "Minute": 60.0, "Hour": 3600.0}
_LABEL_OK: Final = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$")
_OPTIONAL_OPS: Final = ("resubmit", "retry", "suspend", "resume")

Sleep = Callable[[float], Awaitable[None]]


class Submitter(Protocol):
    """Submits a Workflow manifest; :class:`workflows.engine.Engine` satisfies it structurally."""

    async def submit(self, manifest: Mapping[str, Any], *, parameters: Mapping[str, str] | None = None,
                     entrypoint: str | None = None, labels: Mapping[str, str] | None = None,
                     namespace: str | None = None) -> Mapping[str, Any]:
        """Validate, store and start the run; returns the stored object (``metadata.name`` set)."""
        ...


class WorkflowOps(Protocol):
    """What the dispatcher does to existing runs. Optional extra methods, used when present:
    ``resubmit``/``retry``/``suspend``/``resume(namespace, name)``."""

    async def stop(self, namespace: str, name: str, *, strategy: str) -> None:
        """Argo stop (``strategy="Stop"``) or terminate (``"Terminate"``)."""
        ...

    async def list_runs(self, namespace: str | None, labels: Mapping[str, str]) -> list[Mapping[str, Any]]:
        """Runs (Argo wire objects) carrying all of ``labels``, in ``namespace`` or everywhere."""
        ...


def label_value(text: str) -> str:
    """``text`` as a valid Kubernetes label value: kept when valid, else cleaned and hashed (stable)."""
    if _LABEL_OK.match(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:50].rstrip("-._")
    return f"{cleaned}-{digest}" if cleaned else digest


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Bucket:
    """A token bucket on the injected clock; reservations may go negative, so waiters keep order."""

    def __init__(self, limit: RateLimit, *, clock: Callable[[], datetime]) -> None:
        self._capacity = float(limit.requests_per_unit)
        self._rate = limit.requests_per_unit / _UNIT_SECONDS[limit.unit]
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock().timestamp()

    def reserve(self) -> float:
        """Take a token; the seconds to wait before using it."""
        now = self._clock().timestamp()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


class Dispatcher:
    """Dispatches the event log to the sensors; see the module docstring."""

    def __init__(self, *, log: EventLog, sensors: Sequence[Sensor], submitter: Submitter,
                 ops: WorkflowOps | None = None, clock: Callable[[], datetime] = _utcnow,
                 sleep: Sleep = asyncio.sleep, group_poll_s: float = 1.0, poll_s: float = 5.0,
                 retry_s: float = 1.0, batch: int = 100, busy: Callable[[], bool] = lambda: False,
                 yield_s: float = 0.002) -> None:
        self._log = log
        self._sensors = tuple(sensors)
        self._submitter = submitter
        self._ops = ops
        self._clock = clock
        self._sleep = sleep
        self._group_poll_s = group_poll_s
        self._poll_s = poll_s
        self._retry_s = retry_s
        self._batch = batch
        self._busy = busy
        self._yield_s = yield_s
        self._states: dict[tuple[str, str], SensorState] = {}
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._groups: dict[str, asyncio.Lock] = {}
        self._inflight: dict[int, asyncio.Task[None]] = {}
        # Every event up to here was matched by this process: reads start after it. seqs are handed
        # out in commit order by the one log, so a read that saw seq N saw every event before N.
        self._cursor = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._running: asyncio.Event | None = None

    # -- the API the runtime and the edges use ------------------------------------------------

    @property
    def sensors(self) -> tuple[Sensor, ...]:
        """The sensors events are matched against now."""
        return self._sensors

    def notify(self) -> None:
        """New events are in the log: read it now (cheap; call after every created ``append``)."""
        self._wake.set()

    def replace_sensors(self, sensors: Sequence[Sensor]) -> None:
        """Swap the sensor set (reload); a sensor whose definition is unchanged keeps its state."""
        new = tuple(sensors)
        old = {(s.namespace, s.name): s for s in self._sensors}
        self._states = {key: state for key, state in self._states.items()
                        if any((s.namespace, s.name) == key and old.get(key) == s for s in new)}
        self._sensors = new

    async def replay(self, event_id: str) -> StoredEvent:
        """Store a stored event again as a new ``replay`` delivery and dispatch it through the current
        sensors; raises NotFound for an unknown id. Returns the new record."""
        original = await self._log.get(event_id)
        stored, _ = await self._log.append(original.event, source_kind="replay", delivery_id=None,
                                           received_at=self._clock())
        await self._record(stored.seq, "received", {"replay_of": original.seq})
        self.notify()
        return stored

    async def run(self) -> None:
        """Dispatch until :meth:`close` (or cancellation); first drains what a previous run left pending."""
        self._running = asyncio.Event()
        recovering = True
        try:
            while not self._closing:
                self._wake.clear()
                ok = await self._drain(recovering=recovering)
                recovering = recovering and not ok
                if self._closing:
                    break
                if not ok:  # the log could not be read: try again soon, notified or not
                    await self._sleep(self._retry_s)
                    continue
                # A notify() wakes at once; the timeout catches appends nobody announced.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll_s)
        finally:
            await self._cancel_inflight()
            self._running.set()

    async def drain(self) -> None:
        """Dispatch what is pending now and wait for it (for one-shot use and tests, not beside run())."""
        await self._drain(recovering=True)
        while self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
            await self._drain(recovering=False)

    async def close(self) -> None:
        """Stop :meth:`run`: firings still waiting (backoff, rate limit, group queue) are cancelled and
        their events stay pending for the next start. Idempotent."""
        self._closing = True
        self._wake.set()
        if self._running is not None:
            await self._running.wait()
        else:
            await self._cancel_inflight()

    # -- matching ---------------------------------------------------------------------------

    async def _drain(self, *, recovering: bool) -> bool:
        """Match every pending event not matched yet; False when the log could not be read."""
        while not self._closing:
            try:
                batch = await self._log.pending(limit=self._batch, after_seq=self._cursor)
            except WorkflowError as exc:
                log.error("event log unreadable", error=str(exc))
                return False
            for stored in batch:
                if self._busy():  # deliveries are being answered: they go first, one event per yield_s
                    await self._sleep(self._yield_s)
                else:  # matching is synchronous: without this a batch would hold the loop for all its events
                    await asyncio.sleep(0)
                if self._closing:
                    return True
                self._cursor = max(self._cursor, stored.seq)
                self._dispatch(stored, recovering=recovering)
            if len(batch) < self._batch:
                return True
        return True

    def _dispatch(self, stored: StoredEvent, *, recovering: bool) -> None:
        """Match ``stored`` against every sensor now (in log order: sensor state depends on it); what
        the matches decided is recorded and fired by a task of its own, so the next event's matching
        never waits for this one's audit writes."""
        now = self._clock()
        audited = {a.detail.get("sensor") for a in stored.audit if a.kind == "filter"}
        records: list[tuple[str, dict[str, Any]]] = []
        jobs: list[tuple[Sensor, Submission | Notice]] = []
        for sensor in self._sensors:
            key = (sensor.namespace, sensor.name)
            try:
                outcome = match(self._states.get(key, SensorState()), stored.event, sensor, now=now)
            except Exception as exc:  # a bug in one sensor's matching must not stop the others
                log.exception("sensor failed", sensor=sensor.name, event_id=stored.event.context.id)
                records.append(("trigger-failed", {"sensor": sensor.name, "reason": repr(exc)}))
                continue
            self._states[key] = outcome.state
            if outcome.verdicts and sensor.name not in audited:
                records.append(("filter", {"sensor": sensor.name, "dependencies": {
                    dep: {"passed": v.passed, "reasons": list(v.reasons)} for dep, v in outcome.verdicts.items()}}))
            jobs.extend((sensor, s) for s in outcome.submissions)
            jobs.extend((sensor, n) for n in outcome.notices)
        task = asyncio.create_task(self._fire_all(stored, records, jobs, recovering=recovering),
                                   name=f"dispatch of event {stored.seq}")
        self._inflight[stored.seq] = task
        task.add_done_callback(lambda _: self._inflight.pop(stored.seq, None))

    async def _fire_all(self, stored: StoredEvent, records: list[tuple[str, dict[str, Any]]],
                        jobs: list[tuple[Sensor, Submission | Notice]], *, recovering: bool) -> None:
        # The verdicts are on record before anything they caused (one group commit for all of them).
        await asyncio.gather(*(self._record(stored.seq, kind, detail) for kind, detail in records))
        done = {(a.detail.get("sensor"), a.detail.get("trigger")) for a in stored.audit
                if a.kind in ("submitted", "trigger-failed", "logged")}
        async with asyncio.TaskGroup() as tg:
            for sensor, job in jobs:
                if (sensor.name, job.trigger) in done:
                    continue
                name = f"trigger {sensor.name}/{job.trigger} for event {stored.seq}"
                work = (self._notice(stored, sensor, job) if isinstance(job, Notice)
                        else self._fire(stored, sensor, job, recovering=recovering))
                tg.create_task(_guarded(work, name=name), name=name)
        await self._mark(stored.seq)

    async def _mark(self, seq: int) -> None:
        delay = 0.1
        while True:
            try:
                await self._log.mark_dispatched(seq)
                return
            except WorkflowError as exc:  # the log is down: keep trying, the event must not run twice
                log.error("event not marked dispatched", event_seq=seq, error=str(exc))
                await self._sleep(delay)
                delay = min(delay * 2, 30.0)

    # -- firing -----------------------------------------------------------------------------

    async def _notice(self, stored: StoredEvent, sensor: Sensor, notice: Notice) -> None:
        event = stored.event.context.id
        if notice.kind == "log":
            log.info("trigger fired", sensor=sensor.name, trigger=notice.trigger, event_id=event, workflow=None,
                     dependencies={dep: e.context.id for dep, e in notice.events.items()},
                     data=stored.event.data)
            await self._record(stored.seq, "logged", {"sensor": sensor.name, "trigger": notice.trigger})
            return
        await self._failed(stored, sensor=sensor.name, trigger=notice.trigger, reason=notice.message)

    async def _fire(self, stored: StoredEvent, sensor: Sensor, sub: Submission, *, recovering: bool) -> None:
        trigger = next((t for t in sensor.triggers if t.name == sub.trigger), None)
        try:
            if recovering and await self._already_submitted(stored, sensor, sub):
                return
            if trigger is not None and trigger.rate_limit is not None and trigger.rate_limit.requests_per_unit:
                key = (sensor.namespace, sensor.name, sub.trigger)
                if (bucket := self._buckets.get(key)) is None:
                    bucket = self._buckets[key] = _Bucket(trigger.rate_limit, clock=self._clock)
                if (wait := bucket.reserve()) > 0:
                    await self._sleep(wait)
            if sub.concurrency_group is not None and self._ops is not None:
                lock = self._groups.setdefault(sub.concurrency_group, asyncio.Lock())
                async with lock:
                    await self._make_room(stored, sensor, sub)
                    await self._attempts(stored, sensor, sub, trigger)
            else:
                await self._attempts(stored, sensor, sub, trigger)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let one firing take the dispatcher down
            await self._failed(stored, sensor=sensor.name, trigger=sub.trigger, reason=f"{exc}")

    async def _attempts(self, stored: StoredEvent, sensor: Sensor, sub: Submission, trigger: Trigger | None) -> None:
        backoff = trigger.retry_strategy if trigger is not None else None
        attempts = max(1, backoff.steps) if backoff is not None else 1
        delay = backoff.duration.total_seconds() if backoff is not None and backoff.duration else 1.0
        factor = backoff.factor if backoff is not None and backoff.factor else 1.0
        for attempt in range(1, attempts + 1):
            try:
                workflow = await self._perform(stored, sensor, sub)
            except Exception as exc:
                if attempt == attempts or isinstance(exc, _Refused):
                    await self._failed(stored, sensor=sensor.name, trigger=sub.trigger, reason=str(exc) or repr(exc),
                                       attempts=attempt)
                    return
                log.warning("trigger attempt failed", sensor=sensor.name, trigger=sub.trigger,
                            event_id=stored.event.context.id, attempt=attempt, error=str(exc))
                await self._sleep(delay)
                delay *= factor
                continue
            log.info("trigger fired", sensor=sensor.name, trigger=sub.trigger, event_id=stored.event.context.id,
                     workflow=workflow, operation=sub.operation, attempt=attempt)
            detail = {"sensor": sensor.name, "trigger": sub.trigger, "operation": sub.operation,
                      "workflow": workflow, "attempts": attempt}
            if sub.concurrency_group is not None:
                detail["concurrency_group"] = sub.concurrency_group
                if self._ops is None:
                    detail["note"] = "concurrency group not enforced: no WorkflowOps configured"
            await self._record(stored.seq, "submitted", detail)
            return

    async def _perform(self, stored: StoredEvent, sensor: Sensor, sub: Submission) -> str | None:
        namespace = _namespace(sub, sensor)
        if sub.operation == "submit":
            created = await self._submitter.submit(sub.workflow, labels=self._labels(stored, sensor, sub),
                                                   namespace=namespace)
            return str(created.get("metadata", {}).get("name") or "") or None
        name = (sub.workflow.get("metadata") or {}).get("name")
        if not name:
            raise _Refused(f"operation {sub.operation} needs the workflow's metadata.name")
        if self._ops is None:
            raise _Refused(f"operation {sub.operation} is not supported without WorkflowOps")
        if sub.operation in ("stop", "terminate"):
            await self._ops.stop(namespace or "default", name, strategy=sub.operation.capitalize())
            return str(name)
        method = getattr(self._ops, sub.operation, None) if sub.operation in _OPTIONAL_OPS else None
        if method is None:
            raise _Refused(f"operation {sub.operation} is not supported by this server")
        result = await method(namespace or "default", name)
        if isinstance(result, Mapping):
            return str(result.get("metadata", {}).get("name") or name)
        return str(name)

    async def _make_room(self, stored: StoredEvent, sensor: Sensor, sub: Submission) -> None:
        """Called holding the group's lock: stop or wait for the group's unfinished runs."""
        assert self._ops is not None and sub.concurrency_group is not None
        namespace = _namespace(sub, sensor)
        selector = {LABEL_GROUP: label_value(sub.concurrency_group)}
        while True:
            active = [r for r in await self._ops.list_runs(namespace, selector)
                      if (r.get("status") or {}).get("phase") not in FINISHED_PHASES]
            if not active:
                return
            if not sub.cancel_in_progress:
                await self._sleep(self._group_poll_s)
                continue
            for run in active:
                meta = run.get("metadata") or {}
                await self._ops.stop(meta.get("namespace") or namespace or "default", meta["name"], strategy="Stop")
                log.info("run cancelled", sensor=sensor.name, trigger=sub.trigger, event_id=stored.event.context.id,
                         workflow=meta["name"], group=sub.concurrency_group)
                await self._record(stored.seq, "cancelled", {"sensor": sensor.name, "trigger": sub.trigger,
                                                             "workflow": meta["name"],
                                                             "concurrency_group": sub.concurrency_group})
            return

    async def _already_submitted(self, stored: StoredEvent, sensor: Sensor, sub: Submission) -> bool:
        """After a crash: is there a run from this event and trigger already (submitted, not audited)?"""
        if self._ops is None or sub.operation != "submit":
            return False
        labels = {LABEL_EVENT_SEQ: str(stored.seq), LABEL_SENSOR: label_value(sensor.name),
                  LABEL_TRIGGER: label_value(sub.trigger)}
        runs = await self._ops.list_runs(_namespace(sub, sensor), labels)
        if not runs:
            return False
        name = (runs[0].get("metadata") or {}).get("name")
        await self._record(stored.seq, "submitted", {"sensor": sensor.name, "trigger": sub.trigger,
                                                     "operation": sub.operation, "workflow": name,
                                                     "recovered": True})
        return True

    def _labels(self, stored: StoredEvent, sensor: Sensor, sub: Submission) -> dict[str, str]:
        labels = {LABEL_SENSOR: label_value(sensor.name), LABEL_TRIGGER: label_value(sub.trigger),
                  LABEL_EVENT: label_value(stored.event.context.id), LABEL_EVENT_SEQ: str(stored.seq)}
        if sub.concurrency_group is not None:
            labels[LABEL_GROUP] = label_value(sub.concurrency_group)
        return labels

    async def _failed(self, stored: StoredEvent, *, sensor: str, trigger: str, reason: str,
                      attempts: int | None = None) -> None:
        log.warning("trigger failed", sensor=sensor, trigger=trigger, event_id=stored.event.context.id,
                    workflow=None, reason=reason)
        detail: dict[str, Any] = {"sensor": sensor, "trigger": trigger, "reason": reason}
        if attempts is not None:
            detail["attempts"] = attempts
        await self._record(stored.seq, "trigger-failed", detail)

    async def _record(self, seq: int, kind: str, detail: Mapping[str, Any]) -> None:
        try:
            await self._log.audit(seq, AuditEntry(at=self._clock(), kind=kind, detail=dict(detail)))
        except WorkflowError as exc:  # losing an audit line must not lose the run
            log.error("audit not recorded", event_seq=seq, kind=kind, error=str(exc))

    async def _cancel_inflight(self) -> None:
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _guarded(work: Awaitable[None], *, name: str) -> None:
    """A bug in one firing is logged; it must not cancel its siblings or leave the event unmarked."""
    try:
        await work
    except Exception:
        log.exception("firing crashed", task=name)


class _Refused(Exception):
    """An operation this server cannot perform (reported as ``trigger-failed``, never retried)."""


def _namespace(sub: Submission, sensor: Sensor) -> str | None:
    return (sub.workflow.get("metadata") or {}).get("namespace") or sensor.namespace or None
