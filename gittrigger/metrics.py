"""
Prometheus metrics of ``serve``: counters kept in memory, gauges read at scrape time.

One :class:`Metrics` per application (no global registry), created by
:func:`gittrigger.http.app.make_app`, which serves :meth:`Metrics.render` at ``GET /metrics``
(text exposition format 0.0.4, written by hand: no dependency) and feeds webhook responses to
:meth:`Metrics.count_delivery` from an ``on_response_prepare`` hook, so the webhook edge itself
needs no change. :func:`gittrigger.triggers.start_triggers` attaches the event log
(:meth:`Metrics.watch_event_log`) and registers :meth:`Metrics.phase_listener` with the engine.

Series:

- ``gittrigger_webhook_deliveries_total{source,outcome}``: outcome is ``accepted`` (202, stored),
  ``duplicate`` (a redelivery), ``ignored`` (an event type the source does not want, or a ping)
  or ``rejected`` (any 4xx/5xx). ``source`` is ``<eventsource>/<event>``; deliveries to paths no
  EventSource serves are not counted (their label would be attacker-chosen).
- ``gittrigger_workflows{phase}``: runs in the store by phase, counted at scrape (one
  ``GROUP BY`` on the SQLite store; a list on the in-memory one).
- ``gittrigger_step_duration_seconds``: histogram of finished Pod nodes. The engine announces a
  finished run to :meth:`phase_listener`, which only remembers its key; the next scrape reads
  each remembered run once from the store and observes its Pod nodes. Runs finished between two
  scrapes cost one store read each, and nothing is paid when nobody scrapes but a bounded set.
- ``gittrigger_event_log_fsync_duration_seconds``: histogram of the event log's WAL fsyncs, each
  making one group commit durable (every 2xx to a Git host waits for one), fed by
  :meth:`Metrics.observe_event_log_fsync`; buckets 1 ms to 8.192 s, doubling, as etcd's
  ``etcd_disk_wal_fsync_duration_seconds``: when answer latency rises, this says whether the disk
  is why.
- ``gittrigger_dispatch_queue_depth``: events in the log not yet dispatched (saturates at
  :data:`QUEUE_DEPTH_CAP`, read with ``EventLog.pending``).
- ``gittrigger_engine_runs_active``: runs with a live worker in this process.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import structlog

from sensors.eventlog import EventLog
from workflows.engine import Engine
from workflows.errors import NotFound, WorkflowError
from workflows.store.base import WorkflowStore

log = structlog.get_logger("gittrigger.metrics")

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
OUTCOMES: Final = ("accepted", "duplicate", "ignored", "rejected")
STEP_BUCKETS: Final = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
FINISHED_PHASES: Final = frozenset({"Succeeded", "Failed", "Error"})
QUEUE_DEPTH_CAP: Final = 1000
FSYNC_BUCKETS: Final = tuple(0.001 * 2**i for i in range(14))  # 1 ms .. 8.192 s, as etcd's
MAX_REMEMBERED: Final = 10_000  # finished runs waiting for a scrape; older ones are dropped


def delivery_outcome(status: int, body: bytes | None) -> str:
    """The outcome label of one webhook answer (see the module docstring)."""
    if status >= 400:
        return "rejected"
    if status == 202:
        return "accepted"
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        payload = {}
    if isinstance(payload, Mapping):
        if payload.get("duplicate") is True:
            return "duplicate"
        if payload.get("ignored") is True or payload.get("pong") is True:
            return "ignored"
    return "accepted"


class Histogram:
    """A cumulative histogram with fixed upper bounds (``+Inf`` implied)."""

    def __init__(self, bounds: Sequence[float] = STEP_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.buckets = [0] * len(self.bounds)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.buckets[i] += 1
        self.count += 1
        self.sum += value


class Metrics:
    """The metric state of one application; see the module docstring."""

    def __init__(self, *, store: WorkflowStore, engine: Engine) -> None:
        self._store = store
        self._engine = engine
        self._event_log: EventLog | None = None
        self._deliveries: Counter[tuple[str, str]] = Counter()
        self._steps = Histogram()
        self._fsyncs = Histogram(FSYNC_BUCKETS)
        self._finished: dict[tuple[str, str], None] = {}  # insertion-ordered set

    def watch_event_log(self, event_log: EventLog) -> None:
        """Read the dispatch queue depth from ``event_log`` from now on."""
        self._event_log = event_log

    def count_delivery(self, source: str, outcome: str) -> None:
        self._deliveries[(source, outcome)] += 1

    def observe_event_log_fsync(self, seconds: float) -> None:
        self._fsyncs.observe(seconds)

    async def phase_listener(self, namespace: str, name: str, phase: str, workflow: Any) -> None:
        """An engine PhaseListener: remember finished runs for the next scrape."""
        if phase not in FINISHED_PHASES:
            return
        self._finished[(namespace, name)] = None
        while len(self._finished) > MAX_REMEMBERED:
            del self._finished[next(iter(self._finished))]

    async def render(self) -> str:
        """The exposition text; gauges are read now."""
        await self._observe_finished()
        out: list[str] = []
        _family(out, "gittrigger_webhook_deliveries_total", "counter",
                "Webhook deliveries by event source and outcome.",
                ((({"source": s, "outcome": o}), float(n)) for (s, o), n in sorted(self._deliveries.items())))
        phases = await self._phase_counts()
        _family(out, "gittrigger_workflows", "gauge", "Workflow runs in the store by phase.",
                (({"phase": p}, float(n)) for p, n in sorted(phases.items())))
        _histogram(out, "gittrigger_step_duration_seconds",
                   "Durations of finished Pod steps (finishedAt - startedAt).", self._steps)
        _histogram(out, "gittrigger_event_log_fsync_duration_seconds",
                   "Event log WAL fsyncs, each making a group commit of deliveries durable.", self._fsyncs)
        depth = await self._queue_depth()
        _family(out, "gittrigger_dispatch_queue_depth", "gauge",
                f"Events stored but not yet dispatched (capped at {QUEUE_DEPTH_CAP}).",
                [] if depth is None else [({}, float(depth))])
        _family(out, "gittrigger_engine_runs_active", "gauge", "Runs with a live worker in this process.",
                [({}, float(len(self._engine.running())))])
        return "".join(out)

    # -- scrape-time reads -------------------------------------------------------------------

    async def _observe_finished(self) -> None:
        for key in list(self._finished):
            try:
                raw = await self._store.get(*key)
            except NotFound:
                self._finished.pop(key, None)
                continue
            except WorkflowError as e:
                log.warning("metrics: store read failed", error=str(e))
                return
            status = raw.get("status") or {}
            if status.get("phase") not in FINISHED_PHASES:
                continue  # announced before the final write landed: next scrape
            self._finished.pop(key, None)
            for seconds in pod_durations(status.get("nodes") or {}):
                self._steps.observe(seconds)

    async def _phase_counts(self) -> Mapping[str, int]:
        store = self._store
        try:
            counts = dict(await store.phase_counts())
        except WorkflowError as e:
            log.warning("metrics: store count failed", error=str(e))
            return {}
        return _merge_blank(counts)

    async def _queue_depth(self) -> int | None:
        if self._event_log is None:
            return None
        try:
            return len(await self._event_log.pending(limit=QUEUE_DEPTH_CAP))
        except WorkflowError as e:
            log.warning("metrics: event log read failed", error=str(e))
            return None


def pod_durations(nodes: Mapping[str, Any]) -> list[float]:
    """Seconds from ``startedAt`` to ``finishedAt`` of every finished Pod node."""
    seconds: list[float] = []
    for node in nodes.values():
        if not isinstance(node, Mapping) or node.get("type") != "Pod":
            continue
        started, finished = _time(node.get("startedAt")), _time(node.get("finishedAt"))
        if started is not None and finished is not None:
            seconds.append(max(0.0, (finished - started).total_seconds()))
    return seconds


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _merge_blank(counts: Mapping[str, int]) -> Counter[str]:
    """A run not yet operated has phase "": report it as Pending, as Argo's UI does."""
    merged: Counter[str] = Counter()
    for phase, n in counts.items():
        merged[phase or "Pending"] += n
    return merged


def _family(out: list[str], name: str, kind: str, help_text: str,
            samples: Iterable[tuple[Mapping[str, str], float]]) -> None:
    out.append(f"# HELP {name} {help_text}\n")
    out.append(f"# TYPE {name} {kind}\n")
    for labels, value in samples:
        rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        out.append(f"{name}{{{rendered}}} {_num(value)}\n" if rendered else f"{name} {_num(value)}\n")


def _histogram(out: list[str], name: str, help_text: str, h: Histogram) -> None:
    out.append(f"# HELP {name} {help_text}\n")
    out.append(f"# TYPE {name} histogram\n")
    for bound, n in zip(h.bounds, h.buckets, strict=True):
        out.append(f'{name}_bucket{{le="{_num(bound)}"}} {n}\n')
    out.append(f'{name}_bucket{{le="+Inf"}} {h.count}\n')
    out.append(f"{name}_sum {_num(h.sum)}\n")
    out.append(f"{name}_count {h.count}\n")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


__all__ = ["CONTENT_TYPE", "Histogram", "Metrics", "delivery_outcome", "pod_durations"]
