"""
The ``local`` executor (the embedded default): runs a pod as process groups in one workspace.

Called by :mod:`workflows.engine` through the :class:`~workflows.executors.base.Executor`
Protocol. Order, as a kubelet with Argo's executor would: files and input artifacts are
placed, init containers run one by one, sidecars start, main containers run (containerSet:
each once its dependencies succeeded), sidecars are stopped (SIGTERM, SIGKILL after the grace
period; their exit is ignored), outputs are collected. Images are recorded, never pulled:
commands run from the host, optionally inside bubblewrap (:mod:`.isolation`).

Without isolation (``isolation="none"``, or ``auto`` where bwrap does not work) commands see
the host filesystem as it is: absolute paths are the host's (two pods writing ``/tmp/x``
collide), volume mounts are not bound at their ``mountPath``, and only ``HOME``/``TMPDIR``
(and the working directory) point at the container's workspace directory — private, except
that single-container pods with no files, inputs or volumes share one per workflow. Use it for
trusted, simple workflows.

Restarts: the pod journal (:mod:`.journal`) records the executor instance and attempt that
started each pod, its process groups, and finally its result. After a restart, ``run()`` of the
same attempt returns the recorded result, or, if the earlier server started it and never
finished, kills its survivors and reports it lost, instead of running it twice. (With bwrap,
``--die-with-parent`` already ends sandboxes when the server dies; unisolated ones survive.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import structlog

from workflows.executors import processes
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.base import ArtifactFetcher, LogLine, LogSink, PodRequest, PodResult
from workflows.executors.isolation import OsHost
from workflows.executors.journal import PodJournal
from workflows.executors.pods import Outcome, PodRun
from workflows.executors.staging import StagingError, place_inputs, plan, read_parameters, save_artifacts
from workflows.model.status import NodePhase

LOST_MESSAGE: Final = "pod was running when the server stopped; its result was lost"
POD_IP: Final = "127.0.0.1"
HOST_NAME: Final = socket.gethostname()  # {{steps.x.hostNodeName}}: the node a pod ran on
_POD_DIRS_KEPT: Final = 4096  # runs whose pods' directory is remembered (cleared when full)
_SCRATCH: Final = ".scratch"
_TICKS: Final = os.sysconf("SC_CLK_TCK")
# The smallest sandbox a container needs; if this fails (no user namespaces...), isolate nothing.
_PROBE_ARGS: Final = (
    "--die-with-parent",
    "--unshare-pid",
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    "true",
)

logger = structlog.get_logger(__name__)
_bwrap_ok: bool | None = None  # probed once per process: starting bwrap costs a few ms


async def bwrap_works() -> bool:
    """Whether bubblewrap can build a sandbox here (cached after the first call)."""
    global _bwrap_ok
    if _bwrap_ok is None:
        path = shutil.which("bwrap")
        ok = False
        if path is not None:
            try:
                proc = await asyncio.create_subprocess_exec(
                    path,
                    *_PROBE_ARGS,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                ok = await proc.wait() == 0
            except OSError:
                ok = False
        _bwrap_ok = ok
        logger.info("bubblewrap probed", available=ok)
    return _bwrap_ok


class LocalExecutor:
    """Runs pods as local process groups; see the module docstring for the order of things."""

    def __init__(
        self,
        *,
        data_dir: Path,
        artifacts: LocalArtifactStore,
        logs: LogSink,
        fetcher: ArtifactFetcher | None = None,
        isolation: Literal["auto", "bwrap", "none"] = "auto",
        network: Literal["host", "none"] = "host",
        grace_period: float = 10.0,
        extra_path: Sequence[str] = (),
    ) -> None:
        self._data_dir = data_dir.absolute()  # bwrap resolves bind sources after it changes directory
        self._artifacts = artifacts
        self._logs = logs
        self._fetcher = fetcher
        self._isolation = isolation
        self._network = network
        self._grace_period = grace_period
        self._extra_path = tuple(str(p) for p in extra_path)
        self._instance = uuid.uuid4().hex  # who started a pod: survives pid reuse in containers
        self._boot_id = _read_boot_id()
        self._running: dict[Path, asyncio.Future[PodResult]] = {}
        self._scratches: set[Path] = set()
        self._pod_dirs: dict[tuple[str, str], Path] = {}  # (namespace, workflow) -> its pods' directory
        self._journal = PodJournal(self._data_dir / "pods", instance=self._instance, boot_id=self._boot_id)
        self._cgroups = processes.MemoryCgroups()
        self._host = OsHost()

    def close(self) -> None:
        """Close the pod journal (pods still running are the engine's to stop first)."""
        self._journal.close()

    def _pods_dir(self, namespace: str, workflow: str) -> Path:
        """``<data dir>/pods/<namespace>/<workflow>``, built once per run (pathlib joins cost, per pod)."""
        key = (namespace, workflow)
        found = self._pod_dirs.get(key)
        if found is None:
            if len(self._pod_dirs) >= _POD_DIRS_KEPT:
                self._pod_dirs.clear()
            found = self._pod_dirs[key] = self._data_dir / "pods" / namespace / workflow
        return found

    def _scratch(self, pod: PodRequest) -> Path:
        """The directory unisolated bare pods of one workflow share (see :func:`_bare`), made once."""
        path = self._pods_dir(pod.namespace, pod.workflow_name) / _SCRATCH
        if path not in self._scratches:
            path.mkdir(parents=True, exist_ok=True)
            self._scratches.add(path)
        return path

    def workspace(self, pod: PodRequest) -> Path:
        """The pod's workspace directory."""
        return self._pods_dir(pod.namespace, pod.workflow_name) / pod.pod_name

    async def forget_pods(self, namespace: str, workflow: str, pod_names: Sequence[str]) -> None:
        """Forget pods a retry runs again under the same names (Argo deletes them first): their
        journal entries, so an earlier server's result is not answered for the new run, and their
        workspaces."""
        self._journal.open()
        for name in pod_names:
            self._journal.consume(f"{namespace}/{workflow}/{name}")
            ws = self._data_dir / "pods" / namespace / workflow / name
            await asyncio.to_thread(shutil.rmtree, ws, ignore_errors=True)

    async def forget_workflow(self, *, namespace: str, workflow: str, workflow_uid: str) -> None:
        """Delete the workspaces and volumes of a finished (or deleted) workflow run.

        Artifacts are not touched: they belong to the artifact store's own retention.
        """
        pods = self._data_dir / "pods" / namespace / workflow
        volumes = self._data_dir / "volumes" / namespace / workflow_uid
        self._pod_dirs.pop((namespace, workflow), None)
        self._scratches.discard(pods / _SCRATCH)  # a later run of the same name makes it again
        for path in (pods, volumes):
            await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)

    async def run(self, pod: PodRequest, *, on_ready: Callable[[str], None]) -> PodResult:
        """Run ``pod`` (or re-attach to it); see :class:`workflows.executors.base.Executor`."""
        ws = self.workspace(pod)
        if (joined := self._running.get(ws)) is not None:
            return await asyncio.shield(joined)  # a second caller waits; only the first owns the pod
        log = logger.bind(namespace=pod.namespace, workflow=pod.workflow_name, node=pod.node_id)
        key = f"{pod.namespace}/{pod.workflow_name}/{pod.pod_name}"
        self._journal.open()
        if (earlier := self._previous_run(key, attempt=pod.attempt, log=log)) is not None:
            return earlier
        future: asyncio.Future[PodResult] = asyncio.get_running_loop().create_future()
        self._running[ws] = future
        try:
            result = await self._run_fresh(pod, key=key, ws=ws, log=log, on_ready=on_ready)
            future.set_result(result)
            return result
        finally:
            if not future.done():
                future.cancel()  # callers that joined see the pod stopped, as its owner did
            del self._running[ws]

    def _previous_run(self, key: str, *, attempt: int, log: Any) -> PodResult | None:
        """The recorded result of this attempt of the pod if it finished or was lost under an earlier
        server; None to run it now.

        An entry of another attempt (a pod name reused by a retried run) is not this run: its
        survivors, if any, are killed and the pod runs afresh.
        """
        entry = self._journal.consume(key)
        if entry is None:
            return None  # never started a process under an earlier server: (re)run it
        same_attempt = entry.get("a", 0) == attempt
        if same_attempt and isinstance(entry.get("r"), dict):
            return _load_result(entry["r"])
        killed = 0
        if entry.get("b") == self._boot_id:
            killed = _kill_groups({int(k): int(v) for k, v in (entry.get("g") or {}).items()})
        if not same_attempt:
            return None
        log.warning("pod lost by an earlier server", pod=key.rsplit("/", 1)[-1], survivors_killed=killed)
        result = PodResult(phase=NodePhase.ERROR, message=LOST_MESSAGE, finished_at=datetime.now(UTC))
        self._journal.finished(key, attempt=attempt, result=_dump_result(result))
        return result

    async def _isolated(self) -> bool:
        if self._isolation == "auto":
            return await bwrap_works()
        return self._isolation == "bwrap"

    async def _run_fresh(self, pod: PodRequest, *, key: str, ws: Path, log: Any,
                         on_ready: Callable[[str], None]) -> PodResult:
        started_at = datetime.now(UTC)
        # Nothing journaled until a process starts: a pod lost before that has nothing to kill
        # and is simply run again.
        groups: dict[int, int] = {}

        def record(pgid: int) -> None:
            groups[pgid] = _started_after()
            self._journal.started(key, attempt=pod.attempt, groups=groups)

        try:
            result = await self._execute(pod, ws=ws, record=record, on_ready=on_ready, log=log)
            result = replace(result, started_at=started_at, finished_at=datetime.now(UTC), pod_ip=POD_IP,
                             host_node_name=HOST_NAME)
            self._journal.finished(key, attempt=pod.attempt, result=_dump_result(result))
        except OSError as e:  # the workspace itself failed (disk full, permissions): still a result
            log.error("pod workspace failed", pod=pod.pod_name, error=str(e))
            result = PodResult(
                phase=NodePhase.ERROR,
                message=f"local executor: {e}",
                started_at=started_at,
                finished_at=datetime.now(UTC),
                pod_ip=POD_IP,
            )
        log.debug("pod finished", pod=pod.pod_name, phase=result.phase.value, exit_code=result.exit_code)
        return result

    async def _execute(
        self, pod: PodRequest, *, ws: Path, record: Callable[[int], None], on_ready: Callable[[str], None],
        log: Any,
    ) -> PodResult:
        isolated = await self._isolated()
        if not isolated and _bare(pod):
            ws = self._scratch(pod)
        else:
            try:
                ws.mkdir(parents=True)
            except FileExistsError:  # an attempt of ours that was cancelled, or another attempt: start over
                shutil.rmtree(ws)
                ws.mkdir()

        def emit_for(container: str) -> processes.Emit:
            def emit(content: str) -> None:
                line = LogLine(
                    namespace=pod.namespace,
                    workflow=pod.workflow_name,
                    pod_name=pod.pod_name,
                    container=container,
                    time=datetime.now(UTC),
                    content=content,
                )
                self._logs.append(line)

            return emit

        volumes_root = self._data_dir / "volumes" / pod.namespace / pod.workflow_uid
        layout = plan(pod, workspace=ws, volumes_root=volumes_root, isolated=isolated, extra_path=self._extra_path)
        run = PodRun(
            pod=pod,
            layout=layout,
            log=log,
            emit_for=emit_for,
            on_started=record,
            cgroups=self._cgroups,
            host=self._host,
            network=self._network,
            grace_period=self._grace_period,
            extra_path=self._extra_path,
        )
        try:
            await place_inputs(pod, layout, store=self._artifacts, fetcher=self._fetcher)
        except StagingError as e:
            return PodResult(phase=NodePhase.ERROR, message=str(e))
        outcome: Outcome = await run.run(on_ready=lambda: on_ready(POD_IP))
        if outcome.phase is not NodePhase.SUCCEEDED and outcome.exit_code is None:
            return PodResult(phase=outcome.phase, message=outcome.message)  # never ran: nothing to collect
        container = run.output_container
        params = read_parameters(pod, layout, container=container)
        try:
            saved, missing = await save_artifacts(pod, layout, container=container, store=self._artifacts)
        except StagingError as e:
            return PodResult(
                phase=NodePhase.ERROR,
                exit_code=outcome.exit_code,
                message=str(e),
                result=outcome.result,
                output_parameters=params,
            )
        phase, message = outcome.phase, outcome.message
        if missing and phase is NodePhase.SUCCEEDED:
            phase = NodePhase.ERROR
            message = f"failed to save outputs: no such file or directory for artifact(s) {', '.join(missing)}"
        return PodResult(
            phase=phase,
            exit_code=outcome.exit_code,
            message=message,
            result=outcome.result,
            output_parameters=params,
            output_artifacts=saved,
        )


def _bare(pod: PodRequest) -> bool:
    """A pod whose workspace would hold nothing but its one process's HOME, TMPDIR and working
    directory: without isolation it runs in a directory shared by such pods of its workflow
    (absolute paths are shared anyway), which spares a directory creation per pod."""
    return (len(pod.main) == 1 and not pod.init_containers and not pod.sidecars and not pod.files
            and not pod.input_artifacts and not pod.volumes and not pod.daemon)


def _read_boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _started_after() -> int:
    """A lower bound of a just-started process's start time, in the unit of field 22 of
    /proc/<pid>/stat (clock ticks since boot): the boot clock a second ago (the process started
    after its spawn began, moments before this call). Reading the process's own stat file
    would cost a file open per pod."""
    return int((time.clock_gettime(time.CLOCK_BOOTTIME) - 1.0) * _TICKS)


def _kill_groups(groups: dict[int, int]) -> int:
    """SIGKILL every process still in one of ``groups`` (pgid -> leader start time).

    A member must have started no earlier than the recorded leader, so a recycled pgid of
    an unrelated process group is left alone. Returns how many processes were signalled.
    """
    killed = 0
    for pid, _, pgrp, start in processes.live_processes():
        if pgrp in groups and start >= groups[pgrp]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


def _dump_result(r: PodResult) -> dict[str, Any]:
    return {
        "phase": r.phase.value,
        "exit_code": r.exit_code,
        "message": r.message,
        "result": r.result,
        "output_parameters": dict(r.output_parameters),
        "output_artifacts": dict(r.output_artifacts),
        "started_at": r.started_at.isoformat() if r.started_at else None,
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        "pod_ip": r.pod_ip,
        "host_node_name": r.host_node_name,
    }


def _load_result(d: dict[str, Any]) -> PodResult:
    def when(v: str | None) -> datetime | None:
        return datetime.fromisoformat(v) if v else None

    return PodResult(
        phase=NodePhase(d["phase"]),
        exit_code=d["exit_code"],
        message=d["message"],
        result=d["result"],
        output_parameters=d["output_parameters"],
        output_artifacts=d["output_artifacts"],
        started_at=when(d["started_at"]),
        finished_at=when(d["finished_at"]),
        pod_ip=d["pod_ip"],
        host_node_name=d.get("host_node_name"),
    )
