"""
The async runtime around the pure core: submit runs, one worker per run, pods, timers, restart.

Used by :mod:`gittrigger.runtime` (the server), :mod:`gittrigger.cli` (``gittrigger run``) and
the tests. Each run has one queue and one worker task (kopf's per-object watcher): observations
are drained in batches, :func:`~workflows.scheduling.operator.operate` decides, the commands are
applied (pods started or stopped, a timer armed) and the new status is persisted by a per-run
writer that coalesces snapshots (at most one write per ``persist_interval`` while the run is
busy; the first change and the final state are written at once), so a busy run is never slowed
to the store's pace. On start,
unfinished runs are resumed: their running pods are handed to the executor again, which
re-attaches or reports them lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import structlog

from workflows.errors import Conflict, InvalidSpec, Problems, WorkflowError
from workflows.executors.base import Executor, PodRequest, PodResult
from workflows.model import wire
from workflows.model.ids import NodeId
from workflows.model.spec import ObjectKind, Workflow
from workflows.model.status import NodePhase, NodeType, WorkflowPhase, WorkflowStatus
from workflows.rerun import formulate_resubmit, formulate_retry, select_nodes
from workflows.resolution import TemplateGetter, resolve_workflow_template_ref
from workflows.scheduling.commands import (
    AcquireLocks,
    LockAcquired,
    LookupMemo,
    MemoLookedUp,
    Observation,
    PodFinished,
    PodReady,
    PodStarted,
    ReleaseLocks,
    Resume,
    Run,
    SaveMemo,
    StartPod,
    StopPod,
    Tick,
    WakeAt,
)
from workflows.scheduling.operator import operate
from workflows.store import objects
from workflows.store.base import ListOptions, MemoCache, RawObject, WorkflowStore
from workflows.validation import validate

log = structlog.get_logger("workflows.engine")
DEFER_SECONDS: Final = 0.02  # the longest a pod's start waits to be seen (a node shows Running)

Key = tuple[str, str]
# (namespace, name, phase, the run's object without its nodes) -> awaited in an owned task
PhaseListener = Callable[[str, str, str, RawObject], Awaitable[None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Edit:
    """Change a run's spec from the API (stop, terminate, suspend, resume): applied by its worker."""

    apply: Callable[[dict[str, Any]], None]
    done: asyncio.Future[None]


@dataclass(slots=True, kw_only=True)
class _RunState:
    key: Key
    raw: dict[str, Any]
    workflow: Workflow
    status: WorkflowStatus
    raw_nodes: dict[str, Any]
    memo: dict[Any, Any] = field(default_factory=dict)
    pods: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    timer_at: datetime | None = None
    dirty: set[str] = field(default_factory=set)
    all_dirty: bool = True
    needs_write: bool = True
    writer: asyncio.Task[None] | None = None
    waiters: list[asyncio.Future[RawObject]] = field(default_factory=list)
    flush_now: asyncio.Event = field(default_factory=asyncio.Event)  # cuts a writer's gathering pause short
    written_at: float = float("-inf")  # loop time of the last write
    deferred: list[Observation] = field(default_factory=list)  # for the next pass (see Engine._defer)
    deferred_timer: asyncio.TimerHandle | None = None
    persisted: asyncio.Event = field(default_factory=asyncio.Event)  # set by the first write (see started)
    first_written: RawObject | None = None  # what that first write stored


class Engine:
    """Runs workflows: submit, watch, stop; owns every run's worker and pod tasks."""

    def __init__(
        self,
        *,
        store: WorkflowStore,
        executor: Executor,
        templates: TemplateGetter,
        memo_cache: MemoCache | None = None,
        semaphores: SemaphoreLimits | None = None,
        clock: Callable[[], datetime] = utcnow,
        persist_interval: float = 0.05,
    ) -> None:
        self._store = store
        self._persist_interval = persist_interval
        self._executor = executor
        self._templates = templates
        self._memo_cache = memo_cache
        self._clock = clock
        self._queues: dict[Key, asyncio.Queue[Observation | _Edit]] = {}
        self._workers: dict[Key, asyncio.Task[None]] = {}
        self._states: dict[Key, _RunState] = {}
        self._locks = _Locks(semaphores)
        self._closing = False
        self._listeners: list[PhaseListener] = []
        self._notices: set[asyncio.Task[None]] = set()

    def add_phase_listener(self, listener: PhaseListener) -> None:
        """Call ``listener(namespace, name, phase, workflow)`` when a run starts Running and when it
        finishes (commit statuses, notifications). Errors are logged, never propagated."""
        self._listeners.append(listener)

    # -- lifecycle -----------------------------------------------------------------------------

    async def resume_all(self) -> int:
        """Start workers for every unfinished run in the store (after a restart); returns how many."""
        page = await self._store.list(None, ListOptions(phases=("", "Pending", "Running")))
        for raw in page.items:
            meta = raw.get("metadata", {})
            key = (meta.get("namespace", "default"), meta.get("name", ""))
            if key not in self._workers:
                self._spawn(key, raw, reattach=True)
        if page.items:
            log.info("runs resumed", count=len(page.items))
        return len(page.items)

    async def close(self) -> None:
        """Stop every worker and pod (processes are killed); runs stay Running in the store."""
        self._closing = True
        notices = list(self._notices)
        for notice in notices:
            notice.cancel()
        for notice in notices:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await notice
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers.clear()
        self._queues.clear()

    # -- public API ----------------------------------------------------------------------------

    async def submit(
        self,
        manifest: Mapping[str, Any],
        *,
        parameters: Mapping[str, str] | None = None,
        entrypoint: str | None = None,
        labels: Mapping[str, str] | None = None,
        namespace: str | None = None,
        dry_run: bool = False,
    ) -> RawObject:
        """Validate and store a Workflow, then start it; returns the stored object (phase Pending)."""
        raw = _json_copy(dict(manifest))
        raw.setdefault("apiVersion", "argoproj.io/v1alpha1")
        raw.setdefault("kind", "Workflow")
        meta = raw.setdefault("metadata", {})
        if namespace is not None:
            meta["namespace"] = namespace
        meta.setdefault("namespace", "default")
        if labels:
            meta["labels"] = {**(meta.get("labels") or {}), **labels}
        spec = raw.setdefault("spec", {})
        if entrypoint:
            spec["entrypoint"] = entrypoint
        if parameters:
            _override_parameters(spec, parameters)
        raw.pop("status", None)
        workflow = wire.parse_object(raw)
        if workflow.kind is not ObjectKind.WORKFLOW:
            raise InvalidSpec("kind", f"must be Workflow, got {workflow.kind.value}")
        resolved = resolve_workflow_template_ref(workflow, self._templates)
        problems = validate(resolved, getter=self._templates)
        if problems:
            raise Problems(problems)
        if workflow.spec.workflow_template_ref is not None:
            raw["status"] = {"storedWorkflowTemplateSpec": dict(resolved.spec.raw)}
        raw.setdefault("status", {})["phase"] = WorkflowPhase.PENDING.value
        if dry_run:
            return dict(raw)
        stored = await self._store.create(raw)
        meta = stored["metadata"]
        key = (meta["namespace"], meta["name"])
        self._spawn(key, stored, reattach=False, parsed=workflow)
        log.info("workflow submitted", namespace=key[0], workflow=key[1])
        return stored

    async def wait(self, namespace: str, name: str) -> RawObject:
        """Wait until the run is finished (and persisted); return it."""
        state = self._states.get((namespace, name))
        if state is None:
            raw = await self._store.get(namespace, name)
            phase = (raw.get("status") or {}).get("phase", "")
            if phase in ("Succeeded", "Failed", "Error"):
                return raw
            state = self._states.get((namespace, name))
            if state is None:
                raise Conflict(f"workflow {namespace}/{name} is not running in this server")
        fut: asyncio.Future[RawObject] = asyncio.get_running_loop().create_future()
        state.waiters.append(fut)
        return await fut

    async def stop(self, namespace: str, name: str, *, strategy: str = "Stop") -> None:
        """Argo's stop (exit handlers run) or terminate (they do not): sets ``spec.shutdown``."""
        await self._edit((namespace, name), lambda raw: raw["spec"].__setitem__("shutdown", strategy))

    async def suspend(self, namespace: str, name: str) -> None:
        await self._edit((namespace, name), lambda raw: raw["spec"].__setitem__("suspend", True))

    async def resume(self, namespace: str, name: str, *, node_names: Sequence[str] = (),
                     outputs: Mapping[str, str] | None = None, fail: bool = False,
                     message: str | None = None) -> None:
        """Resume a suspended workflow and its suspend nodes (all, or those named)."""
        key = (namespace, name)
        await self._edit(key, lambda raw: raw["spec"].pop("suspend", None))
        self._queue(key).put_nowait(Resume(node_names=tuple(node_names), output_parameters=dict(outputs or {}),
                                           fail=fail, message=message))

    def running(self) -> list[Key]:
        return list(self._workers)

    async def started(self, namespace: str, name: str) -> RawObject:
        """The stored run once its worker's first pass is persisted (or the worker is gone).

        A run just submitted is then Running (or Pending on a workflow-level lock, as in Argo),
        never the phase-less object of before the first pass: clients that poll until the phase
        is no longer Running (Hera's ``wait()``) cannot see a run end before it began.
        """
        key = (namespace, name)
        state, worker = self._states.get(key), self._workers.get(key)
        if state is not None and worker is not None and not state.persisted.is_set():
            persisted = asyncio.ensure_future(state.persisted.wait())
            try:
                await asyncio.wait({persisted, worker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                persisted.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await persisted
        if state is not None and state.first_written is not None:
            # That first state itself: a quick run may be over by the time the store is read again,
            # and the answer to a create or retry is the run as it started (Argo's, too).
            first: RawObject = objects.copy_json(state.first_written)
            return first
        return await self._store.get(namespace, name)

    async def current(self, namespace: str, name: str) -> RawObject:
        """The run as its worker holds it now (edits not yet persisted included), else as stored."""
        state = self._states.get((namespace, name))
        if state is None:
            return await self._store.get(namespace, name)
        return {**objects.copy_json(state.raw), "status": wire.dump_status(state.status)}

    async def retry(self, namespace: str, name: str, *, restart_successful: bool = False,
                    node_field_selector: str = "", parameters: Sequence[str] | None = None) -> RawObject:
        """Argo's retry (:func:`workflows.rerun.formulate_retry`): failed nodes run again in the same
        run, succeeded ones keep their outputs; a worker is started for it (the run need not have
        been running in this process). Returns the run once its first pass is persisted."""
        key = (namespace, name)
        await self._settle(key)
        raw = await self._store.get(namespace, name)
        if key in self._workers:
            raise InvalidSpec("status.phase", f"cannot retry a workflow in phase "
                                              f"{(raw.get('status') or {}).get('phase') or 'Pending'}")
        plan = formulate_retry(raw, restart_successful=restart_successful, node_field_selector=node_field_selector,
                               parameters=parameters, now=self._clock())
        stored = await self._store.update(plan.workflow, expected_version=raw["metadata"].get("resourceVersion", ""))
        await self._forget_pods(namespace, name, plan.pods)
        self._spawn(key, stored, reattach=False)
        log.info("workflow retried", namespace=namespace, workflow=name, rerun=len(plan.deleted))
        return await self.started(namespace, name)

    async def resubmit(self, namespace: str, name: str, *, memoized: bool = False,
                       parameters: Sequence[str] | None = None) -> RawObject:
        """Argo's resubmit (:func:`workflows.rerun.formulate_resubmit`): a new run of the same spec;
        with ``memoized`` the succeeded nodes of a Failed/Error run are carried over, not re-run."""
        raw = await self._store.get(namespace, name)
        manifest = formulate_resubmit(raw, memoized=memoized, parameters=parameters,
                                      name_suffix=objects.random_suffix(), now=self._clock())
        carried = manifest.pop("status", None)
        if carried is None:
            created = await self.submit(manifest, namespace=namespace)
        else:
            checked = await self.submit(manifest, namespace=namespace, dry_run=True)
            checked["status"] = {**checked.get("status", {}), **carried}
            created = await self._store.create(checked)
            self._spawn((namespace, created["metadata"]["name"]), created, reattach=False)
        new_name = created["metadata"]["name"]
        log.info("workflow resubmitted", namespace=namespace, workflow=new_name, resubmitted_from=name)
        return await self.started(namespace, new_name)

    async def set_nodes(self, namespace: str, name: str, *, node_field_selector: str, phase: str | None = None,
                        message: str | None = None, output_parameters: Mapping[str, str] | None = None) -> list[str]:
        """Argo's ``set`` (and stop/resume with a node field selector): complete the running suspend
        nodes the selector picks, Succeeded (with supplied outputs) or Failed/Error. Returns their ids
        once the run's next pass has applied it."""
        key = (namespace, name)
        if not node_field_selector:
            raise InvalidSpec("nodeFieldSelector", "set only targets suspend nodes: use a node field selector")
        if phase not in ("Succeeded", "Failed", "Error"):
            raise InvalidSpec("phase", f"must be Succeeded, Failed or Error (a suspend node is completed by set), "
                                       f"got {phase!r}")
        state = self._states.get(key)
        if state is None:
            await self._store.get(namespace, name)  # NotFound first
            raise Conflict(f"workflow {namespace}/{name} has already finished")
        suspended = {str(nid): wire.dump_node(n) for nid, n in state.status.nodes.items()
                     if n.type is NodeType.SUSPEND and not n.phase.completed}
        ids = select_nodes(suspended, node_field_selector)
        if not ids:
            raise InvalidSpec("nodeFieldSelector", f"no running suspend node matches {node_field_selector!r}")
        self._queue(key).put_nowait(Resume(node_names=tuple(ids), output_parameters=dict(output_parameters or {}),
                                           fail=phase != "Succeeded", message=message or None))
        await self._edit(key, lambda raw: None)  # returns once the pass holding the Resume has run
        return ids

    async def _forget_pods(self, namespace: str, name: str, pods: Sequence[str]) -> None:
        """Let the executor drop what it keeps of pods a retry runs again under the same names (Argo
        deletes them: podsToDelete). Optional: an executor offers ``forget_pods(namespace, workflow,
        pod_names)`` when it remembers finished pods (a journal, a finished Kubernetes pod); without it
        such an executor may answer the re-run with the earlier result."""
        forget = getattr(self._executor, "forget_pods", None)
        if forget is not None and pods:
            await forget(namespace, name, tuple(pods))

    async def _settle(self, key: Key) -> None:
        """Let a run whose worker has decided it is finished write its last state and exit."""
        state, worker = self._states.get(key), self._workers.get(key)
        if state is not None and worker is not None and state.status.phase.completed:
            await asyncio.wait({worker})

    # -- workers -------------------------------------------------------------------------------

    def _queue(self, key: Key) -> asyncio.Queue[Observation | _Edit]:
        queue = self._queues.get(key)
        if queue is None:
            raise Conflict(f"workflow {key[0]}/{key[1]} is not running")
        return queue

    async def _edit(self, key: Key, apply: Callable[[dict[str, Any]], None]) -> None:
        if key not in self._queues:
            await self._store.get(*key)  # NotFound if it does not exist
            raise Conflict(f"workflow {key[0]}/{key[1]} has already finished")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues[key].put_nowait(_Edit(apply=apply, done=fut))
        await fut

    def _spawn(self, key: Key, raw: RawObject, *, reattach: bool, parsed: Workflow | None = None) -> None:
        queue: asyncio.Queue[Observation | _Edit] = asyncio.Queue()
        self._queues[key] = queue
        queue.put_nowait(Tick())
        state = self._load(key, raw, parsed=parsed)
        state.memo["full"] = True
        state.memo["reattach"] = reattach
        self._states[key] = state
        self._workers[key] = asyncio.create_task(self._worker(state, queue),
                                                 name=f"worker for {key[0]}/{key[1]}")

    def _load(self, key: Key, raw: RawObject, *, parsed: Workflow | None = None) -> _RunState:
        """The run's state from its stored object. ``parsed``: the manifest submit just parsed and
        stored as ``raw`` (only the store's metadata is new), so a large spec is not parsed twice."""
        stored_spec = (raw.get("status") or {}).get("storedWorkflowTemplateSpec")
        if parsed is not None and stored_spec is None:
            workflow = replace(parsed, metadata=wire.parse_metadata(raw["metadata"], path="metadata"))
        else:
            workflow = wire.parse_object(raw)
        if stored_spec is not None:
            workflow = replace(workflow, spec=wire.parse_workflow_spec(
                {**stored_spec, **{k: v for k, v in raw["spec"].items() if k in ("shutdown", "suspend")}},
                path="status.storedWorkflowTemplateSpec"))
        status = wire.parse_status(raw.get("status") or {})
        raw_nodes = dict((raw.get("status") or {}).get("nodes") or {})
        return _RunState(key=key, raw=raw, workflow=workflow, status=status, raw_nodes=raw_nodes)

    async def _worker(self, state: _RunState, queue: asyncio.Queue[Observation | _Edit]) -> None:
        key = state.key
        bound = log.bind(namespace=key[0], workflow=key[1])
        try:
            while True:
                batch: list[Observation] = []
                item = await queue.get()
                while True:
                    if isinstance(item, _Edit):
                        self._apply_edit(state, item)
                        batch.append(Tick())
                    else:
                        batch.append(item)
                    if queue.empty():
                        break
                    item = queue.get_nowait()
                if state.deferred:
                    batch[:0] = state.deferred
                    state.deferred.clear()
                if self._step(state, batch, bound):
                    break
            await self._flush(state)
            await self._finish_pods(state)
            for fut in state.waiters:
                if not fut.done():
                    fut.set_result(state.raw)
            bound.info("workflow finished", phase=state.status.phase.value, message=state.status.message)
        except asyncio.CancelledError:
            await asyncio.shield(self._shutdown_run(state))
            raise
        except Exception as e:  # a bug in the engine: the run is marked Error, never left hanging
            bound.exception("workflow worker crashed")
            await self._fail_run(state, f"internal error: {e}")
        finally:
            self._workers.pop(key, None)
            self._queues.pop(key, None)
            self._states.pop(key, None)
            if state.timer is not None:
                state.timer.cancel()
            if state.deferred_timer is not None:
                state.deferred_timer.cancel()

    def _apply_edit(self, state: _RunState, edit: _Edit) -> None:
        try:
            edit.apply(state.raw)
            spec = wire.parse_workflow_spec(state.raw["spec"], path="spec")
            state.workflow = replace(state.workflow, spec=replace(
                state.workflow.spec, shutdown=spec.shutdown, suspend=spec.suspend))
            if not edit.done.done():
                edit.done.set_result(None)
        except Exception as e:
            if not edit.done.done():
                edit.done.set_exception(e)

    def _step(self, state: _RunState, batch: list[Observation], bound: Any) -> bool:
        """One pass: operate, apply commands, schedule persistence. True when the run finished."""
        run = Run(workflow=state.workflow, status=state.status)
        decision = operate(run, batch, now=self._clock(), templates=self._templates, memo=state.memo)
        state.memo["reattach"] = False
        state.status = decision.status
        state.dirty |= decision.changed_nodes  # dumped when written: a node changing twice is dumped once
        if decision.labels:
            labels = state.raw["metadata"].setdefault("labels", {})
            labels.update(decision.labels)
        for command in decision.commands:
            if isinstance(command, StartPod):
                self._start_pod(state, command.pod)
            elif isinstance(command, StopPod):
                task = state.pods.get(command.node_id)
                if task is not None:
                    task.cancel()
            elif isinstance(command, WakeAt):
                self._arm(state, command.at)
            elif isinstance(command, LookupMemo):
                self._lookup_memo(state, command)
            elif isinstance(command, SaveMemo):
                self._save_memo(command)
            elif isinstance(command, AcquireLocks):
                self._locks.acquire(command.locks, f"{state.key[0]}/{state.key[1]}/{command.node_id}",
                                    self._granter(state.key, command.node_id))
            elif isinstance(command, ReleaseLocks):
                self._locks.release(f"{state.key[0]}/{state.key[1]}/{command.node_id}")
        finished = decision.status.phase.completed
        if self._listeners and decision.status.phase is not run.status.phase and (
                finished or decision.status.phase is WorkflowPhase.RUNNING):
            self._announce(state, decision.status.phase)
        state.needs_write = True
        self._persist_soon(state)
        return finished

    def _announce(self, state: _RunState, phase: WorkflowPhase) -> None:
        snapshot = {**state.raw, "status": wire.dump_status(replace(state.status, nodes={}))}
        for listener in self._listeners:
            task = asyncio.create_task(self._notify_listener(listener, state.key, phase, snapshot),
                                       name=f"phase listener for {state.key[0]}/{state.key[1]}")
            self._notices.add(task)
            task.add_done_callback(self._notices.discard)

    async def _notify_listener(self, listener: PhaseListener, key: Key, phase: WorkflowPhase,
                               snapshot: RawObject) -> None:
        try:
            await listener(key[0], key[1], phase.value, snapshot)
        except Exception:
            log.exception("phase listener failed", namespace=key[0], workflow=key[1])

    def _granter(self, key: Key, node_id: NodeId) -> Callable[[], None]:
        return lambda: self._post(key, LockAcquired(node_id=node_id))

    def _defer(self, key: Key, obs: Observation) -> None:
        """Hand ``obs`` to the run's next pass, which runs within :data:`DEFER_SECONDS` anyway.

        A pod's start rides along with whatever wakes the run next (often that pod's own end, for
        short pods), instead of costing a pass of its own: at thousands of short pods that halves
        the passes. Nothing waits longer than the bound for it.
        """
        state = self._states.get(key)
        if state is None:
            return
        state.deferred.append(obs)
        if state.deferred_timer is None:
            state.deferred_timer = asyncio.get_running_loop().call_later(
                DEFER_SECONDS, self._release_deferred, key)

    def _release_deferred(self, key: Key) -> None:
        state = self._states.get(key)
        if state is None:
            return
        state.deferred_timer = None
        if state.deferred:
            self._post(key, Tick())

    def _post(self, key: Key, obs: Observation) -> None:
        queue = self._queues.get(key)
        if queue is not None:
            queue.put_nowait(obs)

    def _arm(self, state: _RunState, at: datetime) -> None:
        if state.timer is not None and state.timer_at is not None and state.timer_at <= at:
            return
        if state.timer is not None:
            state.timer.cancel()
        delay = max((at - self._clock()).total_seconds(), 0.0) + 0.001
        loop = asyncio.get_running_loop()
        key = state.key

        def fire() -> None:
            state.timer, state.timer_at = None, None
            self._post(key, Tick())

        state.timer = loop.call_later(delay, fire)
        state.timer_at = at

    # -- pods ----------------------------------------------------------------------------------

    def _start_pod(self, state: _RunState, pod: PodRequest) -> None:
        existing = state.pods.get(pod.node_id)
        if existing is not None and not existing.done():
            return
        key = state.key
        state.pods[pod.node_id] = asyncio.create_task(self._run_pod(key, pod), name=f"pod {pod.pod_name}")

    async def _run_pod(self, key: Key, pod: PodRequest) -> None:
        self._defer(key, PodStarted(node_id=pod.node_id, at=self._clock()))

        def ready(ip: str) -> None:
            self._post(key, PodReady(node_id=pod.node_id, ip=ip, at=self._clock()))

        try:
            result = await self._executor.run(pod, on_ready=ready)
        except asyncio.CancelledError:
            raise
        except WorkflowError as e:
            result = PodResult(phase=NodePhase.ERROR, message=str(e), finished_at=self._clock())
        except Exception as e:
            log.exception("executor failed", namespace=key[0], workflow=key[1], node=pod.node_id)
            result = PodResult(phase=NodePhase.ERROR, message=f"executor failed: {e}", finished_at=self._clock())
        self._post(key, PodFinished(node_id=pod.node_id, result=result))

    async def _finish_pods(self, state: _RunState) -> None:
        pending = [t for t in state.pods.values() if not t.done()]
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _shutdown_run(self, state: _RunState) -> None:
        await self._finish_pods(state)
        with contextlib.suppress(Exception):
            await self._flush(state)

    def _lookup_memo(self, state: _RunState, command: LookupMemo) -> None:
        key = state.key

        async def lookup() -> None:
            outputs: Mapping[str, Any] | None = None
            if self._memo_cache is not None:
                entry = await self._memo_cache.memo_get(command.cache, command.key,
                                                        max_age_seconds=command.max_age_seconds, now=self._clock())
                outputs = None if entry is None else entry.get("outputs")
            self._post(key, MemoLookedUp(node_id=command.node_id, outputs=outputs))

        state.pods[f"memo:{command.node_id}"] = asyncio.create_task(lookup(), name=f"memo lookup {command.key}")

    def _save_memo(self, command: SaveMemo) -> None:
        if self._memo_cache is not None:
            task = asyncio.create_task(self._memo_cache.memo_put(command.cache, command.key, command.entry),
                                       name=f"memo save {command.key}")
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    # -- persistence ---------------------------------------------------------------------------

    def _snapshot(self, state: _RunState) -> tuple[dict[str, Any], set[str] | None]:
        nodes = state.status.nodes
        if state.all_dirty:
            state.raw_nodes = {nid: wire.dump_node(n) for nid, n in nodes.items()}
        else:
            for nid in state.dirty:
                state.raw_nodes[nid] = wire.dump_node(nodes[NodeId(nid)])
        status = wire.dump_status(replace(state.status, nodes={}))
        status["nodes"] = dict(state.raw_nodes)
        raw = {**state.raw, "status": status}
        changed: set[str] | None = None if state.all_dirty else set(state.dirty)
        state.dirty.clear()
        state.all_dirty = False
        return raw, changed

    def _persist_soon(self, state: _RunState) -> None:
        if state.writer is None or state.writer.done():
            state.writer = asyncio.create_task(self._write(state), name=f"writer for {state.key[0]}/{state.key[1]}")

    async def _write(self, state: _RunState) -> None:
        loop = asyncio.get_running_loop()
        while state.needs_write:
            pause = state.written_at + self._persist_interval - loop.time()
            if pause > 0 and not state.status.phase.completed and not state.flush_now.is_set():
                # Let a busy run's changes gather: one write per interval, not one per pass.
                # What a crash loses meanwhile is recovered from the executor (pods re-attach).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.flush_now.wait(), pause)
            state.written_at = loop.time()
            state.needs_write = False
            snapshot, changed = self._snapshot(state)
            version = state.raw["metadata"].get("resourceVersion", "")
            try:
                stored = await self._store.update(snapshot, expected_version=version, changed_nodes=changed)
            except WorkflowError as e:
                log.warning("status not persisted", namespace=state.key[0], workflow=state.key[1], error=str(e))
                state.all_dirty = state.needs_write = True
                await asyncio.sleep(0.5)
                continue
            state.raw["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"]
            if not state.persisted.is_set():
                state.first_written = objects.copy_json(stored)
                state.persisted.set()

    async def _flush(self, state: _RunState) -> None:
        state.flush_now.set()
        if state.writer is not None and not state.writer.done():
            await asyncio.shield(state.writer)
        if state.needs_write:
            await self._write(state)
        state.raw["status"] = wire.dump_status(replace(state.status, nodes={}))
        state.raw["status"]["nodes"] = dict(state.raw_nodes)

    async def _fail_run(self, state: _RunState, message: str) -> None:
        state.status = replace(state.status, phase=WorkflowPhase.ERROR, message=message,
                               finished_at=self._clock())
        state.all_dirty = state.needs_write = True
        with contextlib.suppress(Exception):
            await self._finish_pods(state)
            await self._flush(state)
        for fut in state.waiters:
            if not fut.done():
                fut.set_result(state.raw)


class SemaphoreLimits(Protocol):
    """Where semaphore sizes come from (ConfigMaps: :class:`workflows.configmaps.ConfigMaps`)."""

    def limit(self, namespace: str, name: str, key: str) -> int | None:
        """The size of semaphore ``name/key`` in ``namespace``; None when unknown."""
        ...


class _Locks:
    """Mutexes and semaphores held by nodes within this server (Argo ``synchronization``).

    Lock names are ``mutex/<namespace>/<name>`` (one holder) and
    ``semaphore/<namespace>/<configmap>/<key>`` (as many holders as the ConfigMap key says, read
    at each grant so a changed ConfigMap takes effect; one when it is unknown, and said so).
    """

    def __init__(self, semaphores: SemaphoreLimits | None = None) -> None:
        self._held: dict[str, list[str]] = {}
        self._waiting: list[tuple[tuple[str, ...], str, Callable[[], None]]] = []
        self._semaphores = semaphores
        self._unsized: set[str] = set()

    def _capacity(self, lock: str) -> int:
        kind, _, rest = lock.partition("/")
        if kind != "semaphore":
            return 1
        namespace, _, ref = rest.partition("/")
        name, _, key = ref.partition("/")
        size = self._semaphores.limit(namespace, name, key) if self._semaphores is not None else None
        if size is None:
            if lock not in self._unsized:
                self._unsized.add(lock)
                log.warning("semaphore size unknown, admitting one holder", semaphore=rest,
                            reason=f"no ConfigMap {name!r} with an integer key {key!r} in namespace {namespace!r}")
            return 1
        return size

    def _free(self, lock: str) -> bool:
        return len(self._held.get(lock, ())) < self._capacity(lock)

    def acquire(self, locks: tuple[str, ...], holder: str, granted: Callable[[], None]) -> None:
        self._waiting.append((locks, holder, granted))
        self._grant()

    def release(self, holder: str) -> None:
        for holders in self._held.values():
            if holder in holders:
                holders.remove(holder)
        self._grant()

    def _grant(self) -> None:
        still: list[tuple[tuple[str, ...], str, Callable[[], None]]] = []
        for locks, holder, granted in self._waiting:
            if all(self._free(lock) for lock in locks):
                for lock in locks:
                    self._held.setdefault(lock, []).append(holder)
                granted()
            else:
                still.append((locks, holder, granted))
        self._waiting = still


def _json_copy(value: Any) -> Any:
    """A submitted manifest as plain dicts and lists (any Mapping, YAML's non-string keys made
    strings); what is stored is copied with :func:`workflows.store.objects.copy_json`."""
    if isinstance(value, Mapping):
        return {str(k): _json_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_copy(v) for v in value]
    return value


def _override_parameters(spec: dict[str, Any], parameters: Mapping[str, str]) -> None:
    args = spec.setdefault("arguments", {})
    params = args.setdefault("parameters", [])
    for name, value in parameters.items():
        for p in params:
            if p.get("name") == name:
                p["value"] = value
                p.pop("valueFrom", None)
                break
        else:
            params.append({"name": name, "value": value})


