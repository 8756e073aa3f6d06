"""
The fake cluster's kubelet: runs the Pods of :mod:`tests.kube.fakeapi` as local process groups.

Created by :class:`tests.kube.fakeapi.FakeKube` when ``kubelet=True``; the fake hands it each
scheduled Pod (:meth:`Kubelet.admit`) and asks it to stop one (:meth:`Kubelet.terminate`,
:meth:`Kubelet.evict`). It reports back through :class:`PodStore` the way a real kubelet does:
whole ``status`` objects (phase, conditions, ``initContainerStatuses`` / ``containerStatuses``
going waiting -> running -> terminated), then, after a graceful deletion, the final removal.

Order, as the kubelet does it (restartPolicy Never only): init containers one by one, native
sidecars (``initContainers`` with ``restartPolicy: Always``) started in place and left running,
then every container in parallel; once all regular containers ended, sidecars get SIGTERM
(SIGKILL after the grace period). Each container is one process group from
:mod:`workflows.executors.processes`, sandboxed with bubblewrap through
:func:`workflows.executors.isolation.bwrap_argv` (host read-only, private ``/tmp``, volumes and
``subPath`` binds at their mount paths). Without bwrap, containers run unsandboxed and mounts
are not visible at their paths. Images are not pulled: every image runs the host's binaries,
except that a ``gittrigger`` helper image runs ``gittrigger`` with this interpreter and sees the
compiled emissary at ``/usr/local/bin/gittrigger-emissary``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import posixpath
import re
import shlex
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from workflows.executors import processes
from workflows.executors.base import Probe
from workflows.executors.isolation import Bind, OsHost, Sandbox, bwrap_argv, bwrap_path, host_path, is_under
from workflows.executors.local import bwrap_works
from workflows.executors.pods import image_entrypoint
from workflows.executors.probes import wait_until_ready

Pod = dict[str, Any]
Kind = Literal["init", "sidecar", "main"]

POD_IP: Final = "127.0.0.1"
HELPER_EMISSARY: Final = "/usr/local/bin/gittrigger-emissary"
_CHECKOUT: Final = Path(__file__).resolve().parents[2]  # the project (gittrigger is installed editable)
HELPER_COMMAND: Final = "/usr/local/bin/gittrigger"
DEFAULT_GRACE: Final = 30.0
DEADLINE_MESSAGE: Final = "Pod was active on the node longer than the specified deadline"
EVICTION_MESSAGE: Final = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. "
_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Images with a CMD but no ENTRYPOINT: `args` alone replace the CMD. (ENTRYPOINT images are
# known to workflows.executors.pods.)
_CMD_ONLY: Final = {
    "busybox": ("sh",),
    "alpine": ("/bin/sh",),
    "python": ("python3",),
    "debian": ("bash",),
    "ubuntu": ("bash",),
}
_VAR_REF: Final = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


class PodStore(Protocol):
    """What the kubelet needs of the API server."""

    def set_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Replace the Pod's status (a MODIFIED event); ignored once the Pod is gone."""
        ...

    def remove_pod(self, namespace: str, name: str) -> None:
        """The kubelet's final delete after a graceful termination (a DELETED event)."""
        ...


def now_rfc3339() -> str:
    """The time as Kubernetes writes object timestamps (seconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ContainerLog:
    """The lines a container wrote (stdout and stderr interleaved), each with its time."""

    def __init__(self) -> None:
        self.lines: list[tuple[datetime, str]] = []
        self.closed = False
        self._changed = asyncio.Event()

    def append(self, text: str) -> None:
        self.lines.append((datetime.now(UTC), text))
        self._notify()

    def close(self) -> None:
        self.closed = True
        self._notify()

    def changed(self) -> asyncio.Event:
        """An event set at the next append or close (take it before reading :attr:`lines`)."""
        return self._changed

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


class StartError(Exception):
    """The runtime could not start a container (exit code 128, reason StartError)."""


@dataclass(slots=True, kw_only=True)
class _Container:
    spec: Mapping[str, Any]
    kind: Kind
    state: dict[str, Any]
    log: ContainerLog = field(default_factory=ContainerLog)
    ready: bool = False
    started: bool = False
    container_id: str = ""
    running: processes.Running | None = None
    done: asyncio.Future[int] | None = None

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))


class _PodWorker:
    """One Pod's containers and the status built from them."""

    def __init__(self, kubelet: Kubelet, pod: Pod) -> None:
        self.kubelet = kubelet
        self.pod = pod
        meta, spec = pod["metadata"], pod["spec"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.dir = kubelet.data_dir / "pods" / self.namespace / f"{self.name}-{meta['uid']}"
        inits = spec.get("initContainers") or []
        reason = "PodInitializing" if inits else "ContainerCreating"
        self.inits = [
            _Container(
                spec=c,
                kind="sidecar" if c.get("restartPolicy") == "Always" else "init",
                state={"waiting": {"reason": reason}},
            )
            for c in inits
        ]
        self.mains = [
            _Container(spec=c, kind="main", state={"waiting": {"reason": reason}}) for c in spec.get("containers") or []
        ]
        self.phase = "Pending"
        self.initialized = False
        self.deleting = False
        self.grace = float(spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE))
        self.halted: tuple[str, str] | None = None  # (reason, message): evicted or past its deadline
        self.start_time = now_rfc3339()
        self.conditions: dict[str, tuple[str, str]] = {}  # type -> (status, lastTransitionTime)
        self.probes: set[asyncio.Task[None]] = set()
        self.published: dict[str, Any] | None = None
        self.task: asyncio.Task[None] | None = None

    def containers(self) -> list[_Container]:
        return [*self.inits, *self.mains]

    def container(self, name: str) -> _Container | None:
        return next((c for c in self.containers() if c.name == name), None)

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        deadline = self.pod["spec"].get("activeDeadlineSeconds")
        timer = asyncio.ensure_future(self._deadline(float(deadline))) if deadline else None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.publish()
            await self.kubelet.ensure_isolation()
            await self._run()
        finally:
            if timer is not None:
                timer.cancel()
                await asyncio.gather(timer, return_exceptions=True)
            for t in self.probes:
                t.cancel()
            await asyncio.gather(*self.probes, return_exceptions=True)
            await self.kill_all(grace=0)
            for c in self.containers():
                c.log.close()
            self.publish()

    async def _run(self) -> None:
        for c in self.inits:
            if self.deleting or self.halted:
                return
            if c.kind == "sidecar":
                if await self._start(c):
                    self._watch_readiness(c)
                    continue
                self.phase = "Failed"
                return
            if await self._start(c):
                self.publish()
                assert c.done is not None
                await c.done
            if c.state["terminated"]["exitCode"] != 0:
                self.phase = "Failed"
                return
            c.ready = True
        if self.deleting or self.halted:
            return
        self.initialized = True
        for c in self.mains:
            if self.deleting or self.halted:
                break
            if await self._start(c, publish=False):
                self._watch_readiness(c)
        self.phase = "Running" if any("running" in c.state for c in self.mains) else self.phase
        self.publish()
        await asyncio.gather(*(c.done for c in self.mains if c.done is not None))
        await asyncio.gather(*(self.stop(c, grace=self.grace) for c in self.inits if c.kind == "sidecar"))
        ok = all(c.state.get("terminated", {}).get("exitCode") == 0 for c in self.mains)
        self.phase = "Succeeded" if ok and not self.halted else "Failed"

    async def _deadline(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.halt("DeadlineExceeded", DEADLINE_MESSAGE, grace=self.grace)

    async def halt(self, reason: str, message: str, *, grace: float) -> None:
        """The kubelet ends the Pod itself (eviction, activeDeadlineSeconds): Failed with a reason."""
        if self.halted is None and not self.deleting:
            self.halted = (reason, message)
            self.phase = "Failed"
            self.publish()
            await self.kill_all(grace=grace)

    async def _start(self, c: _Container, *, publish: bool = True) -> bool:
        """Start ``c``; False (and a terminated StartError state) when it cannot be."""
        now = now_rfc3339()
        try:
            launch = self.kubelet.launch(self, c)
            c.running = await processes.start(launch, emit=c.log.append)
        except (StartError, OSError) as e:
            c.state = {
                "terminated": {
                    "exitCode": 128,
                    "reason": "StartError",
                    "message": str(e),
                    "startedAt": "1970-01-01T00:00:00Z",
                    "finishedAt": now,
                }
            }
            c.log.close()
            if publish:
                self.publish()
            return False
        c.container_id = "containerd://" + uuid.uuid4().hex + uuid.uuid4().hex
        c.started = True
        c.ready = c.kind != "init" and not c.spec.get("readinessProbe")
        c.state = {"running": {"startedAt": now}}
        c.done = asyncio.ensure_future(self._reap(c, c.running, started_at=now))
        if publish:
            self.publish()
        return True

    async def _reap(self, c: _Container, r: processes.Running, *, started_at: str) -> int:
        code = await r.wait()
        reason = "Completed" if code == 0 else "OOMKilled" if r.oom_killed() else "Error"
        c.state = {
            "terminated": {
                "exitCode": code,
                "reason": reason,
                "startedAt": started_at,
                "finishedAt": now_rfc3339(),
                "containerID": c.container_id,
            }
        }
        c.ready = False
        c.log.close()
        self.publish()
        return code

    def _watch_readiness(self, c: _Container) -> None:
        raw = c.spec.get("readinessProbe")
        if not raw:
            return

        async def probe() -> None:
            async def run_exec(command: tuple[str, ...]) -> bool:
                try:
                    r = await processes.start(self.kubelet.launch(self, c, argv=command), emit=None)
                except (StartError, OSError):
                    return False
                return await r.wait() == 0

            await wait_until_ready(parse_probe(raw, ports=c.spec.get("ports") or []), host=POD_IP, run_exec=run_exec)
            if "running" in c.state:
                c.ready = True
                self.publish()

        task = asyncio.ensure_future(probe())
        self.probes.add(task)
        task.add_done_callback(self.probes.discard)

    async def stop(self, c: _Container, *, grace: float) -> None:
        """SIGTERM ``c``'s processes, SIGKILL after ``grace`` seconds, wait for its reaping."""
        if c.running is None or c.done is None or c.done.done():
            return
        if grace > 0:
            c.running.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(c.done), grace)
        if not c.done.done():
            c.running.signal(signal.SIGKILL)
        await c.done

    async def kill_all(self, *, grace: float) -> None:
        await asyncio.gather(*(self.stop(c, grace=grace) for c in self.containers()))

    # -- status ------------------------------------------------------------------------------

    def publish(self) -> None:
        status = self.status()
        if status != self.published:  # the status manager only writes changes
            self.published = status
            self.kubelet.store.set_pod_status(self.namespace, self.name, status)

    def current_phase(self) -> str:
        """The phase as the kubelet derives it from the containers (terminal once every regular
        container and every sidecar has ended)."""
        if self.phase in ("Succeeded", "Failed") or not self.initialized:
            return self.phase
        if any("terminated" not in c.state for c in self.containers() if c.kind != "init"):
            return self.phase
        ok = all(c.state["terminated"].get("exitCode") == 0 for c in self.mains)
        return "Succeeded" if ok and not self.halted else "Failed"

    def status(self) -> dict[str, Any]:
        """The Pod's status as the kubelet would write it now."""
        phase = self.current_phase()
        terminal = phase in ("Succeeded", "Failed")
        pending_init = [c.name for c in self.inits if not (c.ready if c.kind == "init" else c.started)]
        unready = [c.name for c in self.containers() if c.kind != "init" and not c.ready]
        ready = not unready and not terminal
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": [
                self._condition("PodReadyToStartContainers", True),
                self._condition(
                    "Initialized",
                    self.initialized or not pending_init,
                    reason="ContainersNotInitialized",
                    message=f"containers with incomplete status: [{' '.join(pending_init)}]",
                ),
                self._condition(
                    "Ready",
                    ready,
                    reason="PodCompleted" if terminal else "ContainersNotReady",
                    message=None if terminal else f"containers with unready status: [{' '.join(unready)}]",
                ),
                self._condition(
                    "ContainersReady",
                    ready,
                    reason="PodCompleted" if terminal else "ContainersNotReady",
                    message=None if terminal else f"containers with unready status: [{' '.join(unready)}]",
                ),
                self._condition("PodScheduled", True),
            ],
            "hostIP": POD_IP,
            "hostIPs": [{"ip": POD_IP}],
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": self.start_time,
            "qosClass": _qos_class(self.pod["spec"]),
            "containerStatuses": [self._container_status(c) for c in self.mains],
        }
        if self.inits:
            status["initContainerStatuses"] = [self._container_status(c) for c in self.inits]
        if self.halted is not None:
            status["reason"], status["message"] = self.halted
        if self.halted is not None and self.halted[0] == "Evicted":
            disruption = {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "TerminationByKubelet",
                "message": self.halted[1],
                "lastProbeTime": None,
                "lastTransitionTime": self.start_time,
            }
            status["conditions"].insert(0, disruption)
        return status

    def _condition(
        self, kind: str, ok: bool, *, reason: str | None = None, message: str | None = None
    ) -> dict[str, Any]:
        value = "True" if ok else "False"
        previous = self.conditions.get(kind)
        if previous is None or previous[0] != value:
            previous = self.conditions[kind] = (value, now_rfc3339())
        out: dict[str, Any] = {"type": kind, "status": value, "lastProbeTime": None, "lastTransitionTime": previous[1]}
        if not ok and reason:
            out["reason"] = reason
            if message:
                out["message"] = message
        return out

    def _container_status(self, c: _Container) -> dict[str, Any]:
        image = str(c.spec.get("image", ""))
        out: dict[str, Any] = {
            "name": c.name,
            "image": image,
            "imageID": "",
            "ready": c.ready,
            "restartCount": 0,
            "started": c.started and "running" in c.state,
            "state": c.state,
            "lastState": {},
        }
        if c.container_id:
            out["containerID"] = c.container_id
            out["imageID"] = f"{image}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"
        return out


class Kubelet:
    """Runs admitted Pods (all nodes of the fake share this one kubelet)."""

    def __init__(
        self, *, store: PodStore, data_dir: Path, emissary: Path | None = None, isolate: bool | None = None
    ) -> None:
        self.store = store
        self.data_dir = data_dir
        self.emissary = emissary
        self._isolate = isolate
        self._host = OsHost()
        self._workers: dict[tuple[str, str], _PodWorker] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def admit(self, pod: Pod) -> None:
        """Start running ``pod`` (already scheduled) in a task of its own."""
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        worker = self._workers[key] = _PodWorker(self, pod)
        worker.task = self._spawn(worker.run())

    async def ensure_isolation(self) -> None:
        """Decide once whether containers get bubblewrap (probing it when not told)."""
        if self._isolate is None:
            self._isolate = await bwrap_works()

    def logs(self, namespace: str, name: str, container: str) -> tuple[ContainerLog, dict[str, Any]] | None:
        """The log of one container and its current state, if the Pod runs here."""
        worker = self._workers.get((namespace, name))
        c = worker.container(container) if worker else None
        return (c.log, c.state) if c is not None else None

    def terminate(self, namespace: str, name: str, *, grace: float) -> None:
        """Graceful deletion: stop the Pod's containers, publish the final status, remove it."""
        worker = self._workers.get((namespace, name))
        if worker is None or worker.deleting:
            return
        worker.deleting = True

        async def finish() -> None:
            await worker.kill_all(grace=grace)
            if worker.task is not None:
                await worker.task
            self._forget(worker)
            self.store.remove_pod(namespace, name)

        self._spawn(finish())

    def evict(self, namespace: str, name: str) -> None:
        """Node-pressure eviction: kill the Pod's containers; it stays, Failed/Evicted."""
        worker = self._workers.get((namespace, name))
        if worker is not None:
            self._spawn(worker.halt("Evicted", EVICTION_MESSAGE, grace=0))

    def forget(self, namespace: str, name: str) -> None:
        """A force deletion (grace 0): the Pod is already gone from the API; kill what runs."""
        worker = self._workers.get((namespace, name))
        if worker is not None:
            worker.deleting = True
            self._spawn(worker.kill_all(grace=0))
            self._forget(worker)

    async def close(self) -> None:
        """Kill every container (no grace) and wait until all are reaped."""
        for worker in list(self._workers.values()):
            worker.deleting = True
        await asyncio.gather(*(w.kill_all(grace=0) for w in self._workers.values()))
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for w in self._workers.values():
            await asyncio.to_thread(shutil.rmtree, w.dir, True)
        self._workers.clear()

    def _forget(self, worker: _PodWorker) -> None:
        self._workers.pop((worker.namespace, worker.name), None)
        shutil.rmtree(worker.dir, ignore_errors=True)

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- one container's process -------------------------------------------------------------

    def launch(self, worker: _PodWorker, c: _Container, *, argv: tuple[str, ...] | None = None) -> processes.Launch:
        """How to start ``c`` (or run ``argv`` in its sandbox, for exec probes)."""
        env = container_env(worker.pod, c.spec)
        image = str(c.spec.get("image", ""))
        command = list(argv) if argv is not None else resolve_command(c.spec, env=env)
        if not command:
            raise StartError(f"failed to create containerd task: no command specified for container {c.name!r}")
        helper = "gittrigger" in image
        if helper and command[0] == "gittrigger":
            command = [sys.executable, "-m", "gittrigger", *command[1:]]
        tmp = worker.dir / f"tmp-{c.name}"
        tmp.mkdir(exist_ok=True)
        working_dir = str(c.spec.get("workingDir") or "/")
        if not self._isolate:
            cwd = working_dir if os.path.isdir(working_dir) else str(tmp)
            return processes.Launch(name=c.name, argv=tuple(command), env={"HOME": str(tmp), **env}, cwd=cwd)
        binds = [Bind(source=str(tmp), target="/tmp"), *self._volume_binds(worker, c)]
        if helper:  # the image's tools: `gittrigger` on PATH (this interpreter), the emissary
            binds.append(Bind(source=str(self._gittrigger_wrapper()), target=HELPER_COMMAND, writable=False))
            # This interpreter and checkout stay visible where the sandbox's private /tmp hides them
            # (a clone under /tmp, as CI may make one).
            for own in sorted({sys.prefix, str(_CHECKOUT)}):
                if is_under(own, "/tmp"):
                    binds.append(Bind(source=own, target=own, writable=False))
            if self.emissary is not None:
                binds.append(Bind(source=str(self.emissary), target=HELPER_EMISSARY, writable=False))
        if working_dir != "/" and host_path(working_dir, binds) is None and not os.path.isdir(working_dir):
            made = worker.dir / f"workdir-{c.name}"
            made.mkdir(exist_ok=True)
            binds.append(Bind(source=str(made), target=working_dir))
        _check_executable(command[0], path=env["PATH"], cwd=working_dir, binds=binds)
        sandbox = Sandbox(binds=tuple(binds), chdir=working_dir, hostname=worker.name)
        return processes.Launch(
            name=c.name,
            argv=tuple(bwrap_argv(sandbox, command, host=self._host, bwrap=bwrap_path())),
            env=env,
            cwd="/",
            sandboxed=True,
        )

    def _gittrigger_wrapper(self) -> Path:
        """A ``gittrigger`` executable running this interpreter's ``-m gittrigger`` (written once)."""
        path = self.data_dir / "bin" / "gittrigger"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m gittrigger "$@"\n')
            path.chmod(0o755)
        return path

    def _volume_binds(self, worker: _PodWorker, c: _Container) -> list[Bind]:
        volumes = {v.get("name"): v for v in worker.pod["spec"].get("volumes") or []}
        out = []
        for m in c.spec.get("volumeMounts") or []:
            v = volumes.get(m.get("name")) or {}
            root: Path
            if isinstance(v.get("persistentVolumeClaim"), Mapping):
                root = self.claim_dir(worker.namespace, str(v["persistentVolumeClaim"].get("claimName")))
            elif isinstance(v.get("hostPath"), Mapping):
                root = Path(str(v["hostPath"].get("path", "/")))
            else:  # emptyDir, and configMap/secret volumes this fake cannot fill: one dir per pod
                root = worker.dir / "volumes" / str(m.get("name"))
            root.mkdir(parents=True, exist_ok=True)
            source = root / str(m["subPath"]) if m.get("subPath") else root
            if not source.exists():
                source.mkdir(parents=True)  # the kubelet creates a missing subPath as a directory
            out.append(
                Bind(
                    source=str(source),
                    target=posixpath.normpath(str(m.get("mountPath"))),
                    writable=not m.get("readOnly", False),
                )
            )
        return out

    def claim_dir(self, namespace: str, claim: str) -> Path:
        """The one directory every Pod mounting ``claim`` shares."""
        return self.data_dir / "claims" / namespace / claim


def container_env(pod: Pod, spec: Mapping[str, Any]) -> dict[str, str]:
    """The container's environment: defaults, then ``env`` (values with ``$(VAR)`` expanded, fieldRefs)."""
    env = {"PATH": _PATH, "HOSTNAME": pod["metadata"]["name"], "HOME": "/root"}
    for item in spec.get("env") or []:
        name = str(item.get("name"))
        if "value" in item:
            env[name] = expand(str(item["value"]), env)
        elif isinstance((item.get("valueFrom") or {}).get("fieldRef"), Mapping):
            env[name] = _field_ref(pod, str(item["valueFrom"]["fieldRef"].get("fieldPath", "")))
        else:
            env[name] = ""  # secretKeyRef / configMapKeyRef: nothing to read them from here
    return env


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: unknown references stay as written, ``$$`` is ``$``."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(one, text)


def resolve_command(spec: Mapping[str, Any], *, env: Mapping[str, str]) -> list[str]:
    """What the runtime executes: ``command`` + ``args``, else the image's entrypoint/CMD."""
    command = [expand(str(a), env) for a in spec.get("command") or []]
    args = [expand(str(a), env) for a in spec.get("args") or []]
    if command:
        return command + args
    image = str(spec.get("image", ""))
    if entrypoint := image_entrypoint(image):
        return [*entrypoint, *args]
    repo = image.rsplit("@", 1)[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return args or list(_CMD_ONLY.get(repo.removeprefix("docker.io/").removeprefix("library/"), ()))


def parse_probe(raw: Mapping[str, Any], *, ports: list[Mapping[str, Any]]) -> Probe:
    """A probe's wire spec as :class:`~workflows.executors.base.Probe` (named ports resolved)."""

    def port(value: Any) -> int:
        if isinstance(value, str) and not value.isdigit():
            return int(next(p["containerPort"] for p in ports if p.get("name") == value))
        return int(value)

    if isinstance(raw.get("exec"), Mapping):
        probe = Probe(exec_command=tuple(str(a) for a in raw["exec"].get("command") or ()))
    elif isinstance(raw.get("httpGet"), Mapping):
        get = raw["httpGet"]
        probe = Probe(
            http_path=str(get.get("path", "/")),
            http_port=port(get.get("port")),
            http_scheme=str(get.get("scheme", "HTTP")),
        )
    elif isinstance(raw.get("tcpSocket"), Mapping):
        probe = Probe(tcp_port=port(raw["tcpSocket"].get("port")))
    else:
        probe = Probe()
    return dataclasses.replace(
        probe,
        initial_delay_seconds=float(raw.get("initialDelaySeconds", 0)),
        period_seconds=float(raw.get("periodSeconds", 10)),
        timeout_seconds=float(raw.get("timeoutSeconds", 1)),
    )


def compile_emissary(source: Path, *, cache_dir: Path) -> Path | None:
    """Compile the emissary with gcc into ``cache_dir`` (once per source content); None if absent."""
    if not source.is_file():
        return None
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    out = cache_dir / f"gittrigger-emissary-{digest}"
    if not out.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".part")
        subprocess.run(["gcc", "-O2", "-static", "-o", str(partial), str(source)], check=True, capture_output=True)
        partial.rename(out)
    return out


def _field_ref(pod: Pod, path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": status.get("podIP", POD_IP),
        "status.hostIP": POD_IP,
    }
    if path in simple:
        return str(simple[path] or "")
    if m := re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path):
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    return ""


def _qos_class(spec: Mapping[str, Any]) -> str:
    resources = [c.get("resources") or {} for c in spec.get("containers") or []]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    return "Burstable"


def _check_executable(name: str, *, path: str, cwd: str, binds: list[Bind]) -> None:
    """Fail like the runtime's exec lookup would inside the sandbox, before starting it."""
    candidates = [posixpath.join(cwd, name)] if "/" in name else [posixpath.join(d, name) for d in path.split(":")]
    for candidate in candidates:
        host = host_path(candidate, binds) or candidate
        if os.path.isfile(host) and os.access(host, os.X_OK):
            return
    where = f"stat {name}: no such file or directory" if "/" in name else "executable file not found in $PATH"
    raise StartError(f'failed to create containerd task: exec: "{name}": {where}')
