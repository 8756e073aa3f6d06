"""
The trigger half of ``serve``: event log, webhook endpoints, calendar and git sources, dispatcher.

Called by :func:`gittrigger.runtime.serve` with the EventSource and Sensor documents it loaded.
Every source appends to the one durable event log before anything else happens (webhooks answer
only after the append), and the dispatcher reads from the log, so a crash between the two loses
nothing: what was acknowledged but not dispatched is dispatched at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from gittrigger.eventlog import SqliteEventLog
from gittrigger.eventsources import EventSourceRegistry
from gittrigger.http import webhooks
from gittrigger.http.app import METRICS
from gittrigger.reporting import StatusReporter
from gittrigger.repos import GitRepos, SecretResolver
from gittrigger.secretsources import open_secrets
from gittrigger.settings import Settings
from gittrigger.sources.envelope import EventParts
from gittrigger.sources.model import CalendarSource, GitPollerSource, parse_event_source
from gittrigger.sources.poller import GitPoller, JsonFileRefState
from gittrigger.sources.ticker import CalendarTicker, JsonFileTickState
from gittrigger.statuses import CommitStatuses
from sensors.dispatcher import Dispatcher
from sensors.events import Event
from sensors.loading import sensors_from_documents
from workflows.engine import Engine
from workflows.store.base import ListOptions, WorkflowStore

log = structlog.get_logger("gittrigger.triggers")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StoreOps:
    """The dispatcher's view of existing runs (WorkflowOps), over the engine and the store."""

    def __init__(self, *, engine: Engine, store: WorkflowStore) -> None:
        self._engine = engine
        self._store = store

    async def stop(self, namespace: str, name: str, *, strategy: str) -> None:
        await self._engine.stop(namespace, name, strategy=strategy)

    async def list_runs(self, namespace: str | None, labels: Mapping[str, str]) -> list[Mapping[str, Any]]:
        page = await self._store.list(namespace, ListOptions(labels=dict(labels)))
        return list(page.items)

    # The argoWorkflow trigger's other operations (Argo Events passes them to the argo CLI; the
    # dispatcher calls them with the run's namespace and name only, so CLI args are not applied).

    async def resubmit(self, namespace: str, name: str) -> Mapping[str, Any]:
        """A new run of the same spec (Argo resubmit); returns it, so the audit names the new run."""
        return await self._engine.resubmit(namespace, name)

    async def retry(self, namespace: str, name: str) -> Mapping[str, Any]:
        """Re-run the failed nodes of a Failed/Error run (Argo retry)."""
        return await self._engine.retry(namespace, name)

    async def suspend(self, namespace: str, name: str) -> None:
        await self._engine.suspend(namespace, name)

    async def resume(self, namespace: str, name: str) -> None:
        await self._engine.resume(namespace, name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Triggers:
    """What ``serve`` holds while running: counts for the start-up log line."""

    endpoints: int
    sensors: int
    calendars: int
    pollers: int
    # for reload (gittrigger.reload.Reloader): what a new configuration is swapped into
    registry: EventSourceRegistry
    dispatcher: Dispatcher
    loops: SourceLoops
    secrets: SecretResolver
    statuses: CommitStatuses


class SourceLoops:
    """The running calendar tickers and git pollers, one task per (EventSource, event).

    :meth:`update` keeps a loop whose spec is unchanged, and stops/starts the others (a reload).
    """

    def __init__(self, make: Callable[[str, str, Any], tuple[str, Any] | None]) -> None:
        self._make = make
        self._running: dict[tuple[str, str], tuple[Any, Any, asyncio.Task[None]]] = {}
        self._stopping: set[asyncio.Task[None]] = set()  # cancelled by a reload, not finished yet

    def update(self, sources: Sequence[Mapping[str, Any]]) -> int:
        """Run the loops of ``sources`` from now on; returns how many loops were started or stopped."""
        wanted: dict[tuple[str, str], Any] = {}
        for raw in sources:
            parsed = parse_event_source(raw)
            for event_name, spec in parsed.events.items():
                if isinstance(spec, CalendarSource | GitPollerSource):
                    wanted[(parsed.name, event_name)] = spec
        changes = 0
        for key, (spec, _, task) in list(self._running.items()):
            if wanted.get(key) != spec:
                task.cancel()
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)
                del self._running[key]
                changes += 1
        for key, spec in wanted.items():
            if key in self._running:
                continue
            made = self._make(key[0], key[1], spec)
            if made is not None:
                name, loop = made
                self._running[key] = (spec, loop, asyncio.create_task(loop.run(), name=name))
                changes += 1
        return changes

    def count(self, kind: type) -> int:
        return sum(isinstance(loop, kind) for _, loop, _ in self._running.values())

    def stop_all(self) -> list[asyncio.Task[None]]:
        """Cancel every loop; returns the tasks to await."""
        tasks = [task for _, _, task in self._running.values()] + list(self._stopping)
        self._running.clear()
        for task in tasks:
            task.cancel()
        return tasks


@contextlib.asynccontextmanager
async def start_triggers(
    settings: Settings,
    *,
    app: web.Application,
    engine: Engine,
    store: WorkflowStore,
    documents: Sequence[tuple[str, Mapping[str, Any]]],
    secrets: SecretResolver | None = None,
) -> AsyncIterator[Triggers]:
    """Open the event log, mount the webhook endpoints on ``app`` (before it starts), start the
    calendar/git sources and the dispatcher; stop them all, in reverse, on exit.

    ``secrets`` is the process's resolver (``serve`` passes :attr:`Parts.secrets
    <gittrigger.assembly.Parts.secrets>`); without one, :func:`~gittrigger.secretsources.open_secrets` opens one.
    """
    async with contextlib.AsyncExitStack() as stack:
        if secrets is None:
            secrets = await stack.enter_async_context(open_secrets(settings))
        async with _start_triggers(settings, app=app, engine=engine, store=store, documents=documents,
                                   secrets=secrets) as triggers:
            yield triggers


@contextlib.asynccontextmanager
async def _start_triggers(
    settings: Settings,
    *,
    app: web.Application,
    engine: Engine,
    store: WorkflowStore,
    documents: Sequence[tuple[str, Mapping[str, Any]]],
    secrets: SecretResolver,
) -> AsyncIterator[Triggers]:
    data_dir = settings.store.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    sources = [raw for _, raw in documents if raw.get("kind") == "EventSource"]
    # Resolving secrets may block (a file, the Kubernetes API): off the loop.
    registry = await asyncio.to_thread(EventSourceRegistry.from_manifests, sources, secrets=secrets)
    sensors = sensors_from_documents([(s, raw) for s, raw in documents if raw.get("kind") == "Sensor"])
    metrics = app.get(METRICS)
    event_log = await SqliteEventLog.open(
        data_dir / "events.db", observe_sync=metrics.observe_event_log_fsync if metrics is not None else None)
    if metrics is not None:
        metrics.watch_event_log(event_log)
        engine.add_phase_listener(metrics.phase_listener)
    load = webhooks.DeliveryLoad()
    dispatcher = Dispatcher(log=event_log, sensors=sensors, submitter=engine,
                            ops=StoreOps(engine=engine, store=store), clock=_utcnow, busy=load.busy)
    webhooks.setup(app, registry=registry, log=event_log, notify=dispatcher.notify, load=load)
    reporter = StatusReporter()
    base = f"http://{settings.server.host}:{settings.server.port}"
    statuses = CommitStatuses(
        events=event_log, sources=sources, secrets=secrets, reporter=reporter,
        link=lambda namespace, name: f"{base}/workflows/{namespace}/{name}")
    engine.add_phase_listener(statuses)

    async def emit(parts: EventParts, *, kind: str, source: str, name: str) -> None:
        event = Event.from_argo(parts.context, parts.data, event_source_name=source, event_name=name)
        _, created = await event_log.append(event, source_kind=kind, delivery_id=parts.delivery_id,
                                            received_at=_utcnow())
        if created:
            dispatcher.notify()

    ticks = JsonFileTickState(data_dir / "ticks.json")
    refs = JsonFileRefState(data_dir / "git-refs.json")
    repos = GitRepos(cache_dir=data_dir / "git", secrets=secrets)

    def make_loop(source: str, event_name: str, spec: Any) -> tuple[str, Any] | None:
        bound = _bind(emit, kind=spec.type, source=source, name=event_name)
        if isinstance(spec, CalendarSource):
            return f"calendar {source}/{event_name}", CalendarTicker(
                spec=spec, source_name=source, event_name=event_name, emit=bound, clock=_utcnow, state=ticks)
        if isinstance(spec, GitPollerSource):
            return f"git poller {source}/{event_name}", GitPoller(
                spec=spec, source_name=source, event_name=event_name, repos=repos, emit=bound, clock=_utcnow,
                state=refs)
        return None

    loops = SourceLoops(make_loop)
    loops.update(sources)
    dispatch_task = asyncio.create_task(dispatcher.run(), name="sensor dispatcher")
    try:
        yield Triggers(endpoints=len(registry), sensors=len(sensors),
                       calendars=loops.count(CalendarTicker), pollers=loops.count(GitPoller),
                       registry=registry, dispatcher=dispatcher, loops=loops, secrets=secrets,
                       statuses=statuses)
    finally:
        stopping = loops.stop_all()
        await dispatcher.close()
        dispatch_task.cancel()
        for task in (*stopping, dispatch_task):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await reporter.close()
        await event_log.close()


def _bind(emit: Any, *, kind: str, source: str, name: str) -> Any:
    async def bound(parts: EventParts) -> None:
        await emit(parts, kind=kind, source=source, name=name)

    return bound


__all__ = ["SourceLoops", "StoreOps", "Triggers", "start_triggers"]
