"""
The container lifecycle of one local pod: init containers, sidecars, main containers, stop.

Created per pod by :mod:`workflows.executors.local`, which has already planned the workspace
and placed the inputs; :meth:`PodRun.run` reports an :class:`Outcome` (phase, exit code,
message, result) and leaves no process behind, whether it returns or is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from workflows.executors import processes
from workflows.executors.base import Container, PodRequest
from workflows.executors.isolation import HostView, Sandbox, bwrap_argv, bwrap_path
from workflows.executors.probes import wait_until_ready
from workflows.executors.staging import Layout
from workflows.model.status import NodePhase

RESULT_CAP: Final = 256 * 1024  # Argo keeps outputs.result small too; a node status is not a log store
_DEFAULT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PROBE_HOST: Final = "127.0.0.1"


# Images run locally have no entrypoint to fall back on; these well-known ones are known.
# Each value is the image's ENTRYPOINT followed by its CMD as a container without `command` runs
# it (args given without command still get this prefix: exact for ENTRYPOINT-only images).
IMAGE_ENTRYPOINTS: Final = {
    "argoproj/argosay": ("argosay",),  # ENTRYPOINT ["/argosay"] (v2)
    "nginx": ("nginx", "-g", "daemon off;"),  # no ENTRYPOINT (1.13); CMD ["nginx", "-g", "daemon off;"]
    "influxdb": ("influxd",),  # ENTRYPOINT ["/entrypoint.sh"] CMD ["influxd"]; the script execs influxd
}


def image_entrypoint(image: str) -> tuple[str, ...]:
    """The entrypoint of a known image (``repo[:tag]``), or nothing."""
    repo = image.rsplit("@", 1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    return IMAGE_ENTRYPOINTS.get(repo, ())


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How the containers ended; ``exit_code`` is None when main never ran."""

    phase: NodePhase
    exit_code: int | None = None
    message: str | None = None
    result: str | None = None


class StartFailed(Exception):
    """A container could not be started (no command, executable missing)."""


class PodRun:
    """Runs the containers of one pod once."""

    def __init__(
        self,
        *,
        pod: PodRequest,
        layout: Layout,
        log: Any,
        emit_for: Callable[[str], processes.Emit],
        on_started: Callable[[int], None],
        cgroups: processes.MemoryCgroups,
        host: HostView,
        network: str,
        grace_period: float,
        extra_path: Sequence[str],
    ) -> None:
        self._pod = pod
        self._layout = layout
        self._log = log
        self._emit_for = emit_for
        self._on_started = on_started
        self._cgroups = cgroups
        self._host = host
        self._network = network
        self._grace = grace_period
        self._path = ":".join([*extra_path, os.environ.get("PATH") or _DEFAULT_PATH])
        self._bwrap = bwrap_path()
        self._started: list[processes.Running] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        names = [c.name for c in pod.main]
        self.output_container = pod.result_container if pod.result_container in names else names[-1]

    async def run(self, *, on_ready: Callable[[], None]) -> Outcome:
        """Run init containers, sidecars and mains; stop sidecars; report."""
        try:
            outcome = await self._run_containers(on_ready)
            await self._stop_all()
            return outcome
        except BaseException:
            stopping = asyncio.ensure_future(self._stop_all())
            try:
                await asyncio.shield(stopping)
            except asyncio.CancelledError:  # cancelled again while stopping: no more grace
                for r in self._started:
                    r.signal(signal.SIGKILL)
                await stopping
            raise
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for r in self._started:
                if r.exit_code is None:
                    await r.discard()

    async def _run_containers(self, on_ready: Callable[[], None]) -> Outcome:
        for c in self._pod.init_containers:
            try:
                r = await self._start(c)
            except StartFailed as e:
                return Outcome(phase=NodePhase.ERROR, message=f"init container {c.name}: {e}")
            if (code := await r.wait()) != 0:
                return Outcome(phase=NodePhase.FAILED, message=f"init container {c.name} failed: {_failure(r, code)}")
        for c in self._pod.sidecars:
            try:
                await self._start(c)
            except StartFailed as e:
                return Outcome(phase=NodePhase.ERROR, message=f"sidecar {c.name}: {e}")
        return await self._run_mains(on_ready)

    async def _run_mains(self, on_ready: Callable[[], None]) -> Outcome:
        """Start each main once its dependencies succeeded; independent ones run in parallel."""
        pending = list(self._pod.main)
        names = {c.name for c in pending}
        codes: dict[str, int] = {}
        running: dict[asyncio.Task[int], processes.Running] = {}
        failure: Outcome | None = None
        output: processes.Running | None = None
        while True:
            for c in list(pending) if failure is None else []:
                if not all(codes.get(d) == 0 for d in c.dependencies if d in names):
                    continue
                pending.remove(c)
                is_output = c.name == self.output_container
                try:
                    r = await self._start(c, keep_stdout=RESULT_CAP + 1 if is_output else 0)
                except StartFailed as e:
                    failure = Outcome(phase=NodePhase.ERROR, message=str(e))
                    break
                if is_output:
                    output = r
                    if self._pod.daemon:
                        self._own(self._signal_ready(c, on_ready), name=f"readiness of {c.name}")
                running[self._own(r.wait(), name=f"container {c.name}")] = r
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                r = running.pop(task)
                codes[r.name] = code = task.result()
                self._log.debug("container exited", container=r.name, exit_code=code)
                if code != 0 and failure is None:
                    failure = Outcome(phase=NodePhase.FAILED, exit_code=code, message=_failure(r, code))
        result = None
        if output is not None:
            text = output.stdout_tail.decode("utf-8", "replace")
            result = (text[:-1] if text.endswith("\n") else text)[-RESULT_CAP:]  # trim, then keep the tail
        if failure is not None:
            return Outcome(phase=failure.phase, exit_code=failure.exit_code, message=failure.message, result=result)
        if pending:
            return Outcome(
                phase=NodePhase.ERROR,
                message="containerSet dependencies cannot be satisfied: " + ", ".join(c.name for c in pending),
            )
        assert output is not None
        return Outcome(phase=NodePhase.SUCCEEDED, exit_code=output.exit_code, result=result)

    async def _signal_ready(self, c: Container, on_ready: Callable[[], None]) -> None:
        if c.readiness_probe is not None:

            async def run_exec(command: tuple[str, ...]) -> bool:
                return await self._exec_probe(c, command)

            await wait_until_ready(c.readiness_probe, host=_PROBE_HOST, run_exec=run_exec)
        self._log.info("daemon ready", container=c.name)
        try:
            on_ready()
        except Exception:  # the engine's callback failing must not go unnoticed in a task
            self._log.exception("on_ready callback failed", container=c.name)

    async def _exec_probe(self, c: Container, command: tuple[str, ...]) -> bool:
        try:
            launch = self._launch(c, argv=command)
        except StartFailed:
            return False
        r = await processes.start(launch, emit=None)
        try:
            return await r.wait() == 0
        finally:
            if r.exit_code is None:
                await r.discard()

    def _own(self, coro: Any, *, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        return task

    async def _start(self, c: Container, *, keep_stdout: int = 0) -> processes.Running:
        launch = self._launch(c)
        try:
            r = await processes.start(
                launch, emit=self._emit_for(c.name), keep_stdout=keep_stdout, cgroups=self._cgroups
            )
        except OSError as e:
            raise StartFailed(f"failed to start container {c.name}: {e}") from e
        self._started.append(r)
        self._on_started(r.pgid)
        self._log.debug("container started", container=c.name, pid=r.pgid)
        return r

    def _launch(self, c: Container, *, argv: Sequence[str] | None = None) -> processes.Launch:
        command = list(argv if argv is not None else (*c.command, *c.args))
        if argv is None and not c.command:
            command = [*image_entrypoint(c.image), *c.args]
        if not command:
            raise StartFailed(f"no command specified for container {c.name!r} (images have no entrypoint locally)")
        tmp = self._layout.tmp_dirs[c.name]
        env = {"PATH": self._path, "HOME": "/tmp" if self._layout.isolated else str(tmp)}
        if not self._layout.isolated:
            env["TMPDIR"] = str(tmp)
        env.update(c.env)
        if self._layout.isolated:
            # The image's WORKDIR is unknown; most are "/", which is read-only here unless the pod
            # writes outputs directly under it (then the root is a tmpfs with those files bound).
            cwd = c.working_dir or ("/" if self._layout.root_files else "/tmp")
        else:
            cwd = c.working_dir if c.working_dir and os.path.isdir(c.working_dir) else str(tmp)
        if self._layout.relocated:
            command = [str(self._layout.relocated[a]) if a in self._layout.relocated else a for a in command]
        self._check_executable(c, command[0], path=env["PATH"], cwd=cwd)
        if self._layout.isolated:
            sandbox = Sandbox(
                binds=self._layout.present_binds(c.name),
                chdir=cwd,
                network="none" if self._network == "none" else "host",
                hostname=self._pod.pod_name,
            )
            command = bwrap_argv(sandbox, command, host=self._host, bwrap=self._bwrap)
            cwd = "/"
        return processes.Launch(
            sandboxed=self._layout.isolated,
            name=c.name,
            argv=tuple(command),
            env=env,
            cwd=cwd,
            memory_limit_bytes=c.memory_limit_bytes,
        )

    def _check_executable(self, c: Container, name: str, *, path: str, cwd: str) -> None:
        """Fail like Go's exec.LookPath would inside the container, before anything starts."""
        if "/" in name:
            candidates = [os.path.join(cwd, name)]
        else:
            candidates = [os.path.join(d or ".", name) for d in path.split(":")]
        layout = self._layout
        for candidate in candidates:
            # Strings, not Paths: with a ten-entry PATH this lookup ran for every pod at ~3x the cost.
            if not os.path.isabs(candidate):
                host: str | Path = candidate
            elif layout.isolated:
                host = layout.locate(c.name, candidate)
            else:
                host = layout.relocated.get(candidate) or candidate
            with contextlib.suppress(OSError):
                if os.path.isfile(host) and os.access(host, os.X_OK):
                    return
        if "/" in name:
            raise StartFailed(f'exec: "{name}": stat {name}: no such file or directory')
        raise StartFailed(f'exec: "{name}": executable file not found in $PATH')

    async def _stop_all(self) -> None:
        """Stop whatever still runs (sidecars after main; everything on cancel), gracefully."""
        alive = [r for r in self._started if r.exit_code is None]
        await asyncio.gather(*(r.stop(grace_period=self._grace) for r in alive))


def _failure(r: processes.Running, code: int) -> str:
    if code == 137 and r.oom_killed():
        return "OOMKilled (exit code 137)"
    return f"Error (exit code {code})"
