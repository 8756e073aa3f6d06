"""
One container of a local pod as an OS process group: start, stream its output, stop, reap.

Used by :mod:`workflows.executors.local` for init containers, sidecars and main containers
(and by :mod:`workflows.executors.probes` for exec probes). Each container is its own process
group (``start_new_session``), so a signal reaches every process it forked (``sh -c 'sleep &'``
included); inside bubblewrap the group also holds the sandbox, whose pid namespace dies with
it. stdout and stderr are read by one owned task each and handed to ``emit`` line by line as
they arrive. A memory limit is enforced through a cgroup (v1 or v2) when this machine lets us
create one; otherwise it is skipped with a debug log (RLIMIT_AS breaks Go, Node and the JVM).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

MAX_LINE: Final = 64 * 1024  # longer lines are split, so one line never holds a whole binary dump
_CHUNK: Final = 64 * 1024
_V1_MEMORY: Final = Path("/sys/fs/cgroup/memory")
_V2_ROOT: Final = Path("/sys/fs/cgroup")
_CGROUP_PARENT: Final = "gittrigger"
# Enters the cgroup, then becomes the real command, so nothing runs outside the limit.
_ENTER_CGROUP: Final = 'echo $$ > "$0" && exec "$@"'

Emit = Callable[[str], None]
logger = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Launch:
    """How to start one container's process (already wrapped in bwrap when isolated)."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    memory_limit_bytes: int | None = None
    sandboxed: bool = False  # argv starts bwrap, which must survive SIGTERM to stop its tree gracefully


class Running:
    """A started container: its process group, its log readers and its cgroup."""

    def __init__(
        self,
        *,
        name: str,
        proc: asyncio.subprocess.Process,
        readers: list[asyncio.Task[None]],
        tail: bytearray | None,
        cgroup: MemoryCgroup | None,
        sandboxed: bool = False,
    ) -> None:
        self.name = name
        self.proc = proc
        self.pgid = proc.pid
        self.stopped_by_us = False
        self._readers = readers
        self._tail = tail
        self._cgroup = cgroup
        self._exit: int | None = None
        self._oom = False
        self._sandboxed = sandboxed

    @property
    def stdout_tail(self) -> bytes:
        """The last bytes of stdout kept when started with ``keep_stdout``."""
        return bytes(self._tail or b"")

    @property
    def exit_code(self) -> int | None:
        """Set once :meth:`wait` returned."""
        return self._exit

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer acted in this container's cgroup."""
        return self._oom

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the whole process group (no-op once it is gone)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)

    async def wait(self) -> int:
        """Wait for the leader to exit, kill what it left behind, drain the logs.

        Returns the exit code as a container runtime reports it (128+N for signal N). Like a
        container whose main process ended, leftovers of the group are killed, which also
        closes the pipes they hold so the readers see EOF.
        """
        code = await self.proc.wait()
        self.signal(signal.SIGKILL)
        try:
            await asyncio.gather(*self._readers)
        finally:
            if self._cgroup is not None:
                self._oom = self._oom or self._cgroup.oom_killed()
                await self._cgroup.remove()
        self._exit = 128 - code if code < 0 else code
        return self._exit

    def terminate(self) -> None:
        """SIGTERM every process of the container, but not bwrap itself.

        bwrap dies of SIGTERM, and its death SIGKILLs the sandbox (``--die-with-parent`` and
        the end of the pid namespace), which would deny the processes their grace period.
        """
        if not self._sandboxed:
            self.signal(signal.SIGTERM)
            return
        for pid in descendants(self.proc.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)

    async def stop(self, *, grace_period: float) -> int:
        """SIGTERM the container, SIGKILL its group after ``grace_period``, reap it.

        Returns only once no process of the group is left running.
        """
        self.stopped_by_us = True
        if self.proc.returncode is None:
            self.terminate()
            try:
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace_period)
            except TimeoutError:
                self.signal(signal.SIGKILL)
        code = await self.wait()
        await _until_gone(self.pgid)
        return code

    async def discard(self) -> None:
        """Last-resort cleanup: SIGKILL and reap, cancelling the readers if needed."""
        self.signal(signal.SIGKILL)
        try:
            await self.wait()
            await _until_gone(self.pgid)
        except BaseException:
            for task in self._readers:
                task.cancel()
            await asyncio.gather(*self._readers, return_exceptions=True)
            raise


def live_processes() -> list[tuple[int, int, int, int]]:
    """(pid, ppid, pgrp, start time in ticks) of every live (non-zombie) process.

    A /proc scan: used on stop and restart paths only, never per pod.
    """
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X"):
            out.append((int(entry.name), int(fields[1]), int(fields[2]), int(fields[19])))
    return out


def descendants(root: int) -> list[int]:
    """Pids of the live descendants of ``root``."""
    children: dict[int, list[int]] = {}
    for pid, ppid, _, _ in live_processes():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


async def _until_gone(pgid: int, *, timeout: float = 2.0) -> None:
    """Wait (bounded) until SIGKILLed members of ``pgid`` have actually exited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(pgrp == pgid for _, _, pgrp, _ in live_processes()):
        if loop.time() > deadline:
            logger.warning("processes outlived SIGKILL", pgid=pgid)
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        await asyncio.sleep(0.01)


async def start(
    launch: Launch, *, emit: Emit | None, keep_stdout: int = 0, cgroups: MemoryCgroups | None = None
) -> Running:
    """Start ``launch`` in its own process group; raises OSError if it cannot be executed.

    ``emit`` receives every stdout/stderr line (``None``: output discarded); ``keep_stdout``
    bytes of stdout's tail are kept for the result.
    """
    cgroup = None
    argv: Sequence[str] = launch.argv
    if launch.memory_limit_bytes is not None and cgroups is not None:
        cgroup = cgroups.create(limit_bytes=launch.memory_limit_bytes)
        if cgroup is not None:
            argv = ["/bin/sh", "-c", _ENTER_CGROUP, str(cgroup.procs), *argv]
    pipe = asyncio.subprocess.PIPE if emit is not None else asyncio.subprocess.DEVNULL
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=pipe,
            stderr=pipe,
            env=dict(launch.env),
            cwd=launch.cwd,
            start_new_session=True,
        )
    except BaseException:
        if cgroup is not None:
            await cgroup.remove()
        raise
    tail = bytearray() if keep_stdout else None
    readers: list[asyncio.Task[None]] = []
    if emit is not None:
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            asyncio.create_task(_pump(proc.stdout, emit, tail=tail, cap=keep_stdout), name=f"{launch.name} stdout"),
            asyncio.create_task(_pump(proc.stderr, emit, tail=None, cap=0), name=f"{launch.name} stderr"),
        ]
    return Running(name=launch.name, proc=proc, readers=readers, tail=tail, cgroup=cgroup, sandboxed=launch.sandboxed)


async def _pump(stream: asyncio.StreamReader, emit: Emit, *, tail: bytearray | None, cap: int) -> None:
    pending = bytearray()
    while chunk := await stream.read(_CHUNK):
        if tail is not None:
            tail += chunk
            if len(tail) > cap:
                del tail[: len(tail) - cap]
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            _emit_split(emit, pending[start:end])
            start = end + 1
        del pending[:start]
        while len(pending) >= MAX_LINE:
            emit(_decode(pending[:MAX_LINE]))
            del pending[:MAX_LINE]
    if pending:
        emit(_decode(pending))


def _emit_split(emit: Emit, line: bytes | bytearray) -> None:
    if len(line) <= MAX_LINE:
        emit(_decode(line))
        return
    for i in range(0, len(line), MAX_LINE):
        emit(_decode(line[i : i + MAX_LINE]))


def _decode(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", "replace")


class MemoryCgroup:
    """One container's memory cgroup; removed once its processes are gone."""

    def __init__(self, path: Path, *, events: str) -> None:
        self.path = path
        self.procs = path / "cgroup.procs"
        self._events = events

    def oom_killed(self) -> bool:
        try:
            text = (self.path / self._events).read_text()
        except OSError:
            return False
        return any(line.split()[:1] == ["oom_kill"] and line.split()[1] != "0" for line in text.splitlines())

    async def remove(self, *, timeout: float = 2.0) -> None:
        """Kill what is left in the cgroup, wait for it to empty (bounded), remove it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                pids = [int(p) for p in self.procs.read_text().split()]
            except OSError:
                return  # already gone
            if not pids:
                break
            if loop.time() > deadline:
                logger.warning("memory cgroup not empty, left behind", path=str(self.path))
                return
            for pid in pids:  # exiting sandbox members; the kernel tears them down shortly
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.01)
        with contextlib.suppress(OSError):
            self.path.rmdir()


class MemoryCgroups:
    """Creates per-container memory cgroups if the machine lets us (probed once)."""

    def __init__(self) -> None:
        self._kind: str | None = None
        self._probed = False

    def _probe(self) -> None:
        self._probed = True
        parent_v1 = _V1_MEMORY / _CGROUP_PARENT
        parent_v2 = _V2_ROOT / _CGROUP_PARENT
        if (_V1_MEMORY / "memory.limit_in_bytes").exists():
            with contextlib.suppress(OSError):
                parent_v1.mkdir(exist_ok=True)
                self._kind = "v1"
        elif "memory" in _read(_V2_ROOT / "cgroup.controllers").split():
            with contextlib.suppress(OSError):
                (_V2_ROOT / "cgroup.subtree_control").write_text("+memory")
                parent_v2.mkdir(exist_ok=True)
                (parent_v2 / "cgroup.subtree_control").write_text("+memory")
                self._kind = "v2"
        logger.debug("memory cgroups probed", kind=self._kind or "unavailable")

    def create(self, *, limit_bytes: int) -> MemoryCgroup | None:
        """A fresh cgroup limited to ``limit_bytes``, or ``None`` (limit not enforced)."""
        if not self._probed:
            self._probe()
        if self._kind is None:
            logger.debug("memory limit not enforced", reason="no writable memory cgroup")
            return None
        root = _V1_MEMORY if self._kind == "v1" else _V2_ROOT
        path = root / _CGROUP_PARENT / uuid.uuid4().hex
        try:
            path.mkdir()
            if self._kind == "v1":
                (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
                with contextlib.suppress(OSError):  # absent without swap accounting
                    (path / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
                return MemoryCgroup(path, events="memory.oom_control")
            (path / "memory.max").write_text(str(limit_bytes))
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
            return MemoryCgroup(path, events="memory.events")
        except OSError as e:
            with contextlib.suppress(OSError):
                path.rmdir()
            logger.debug("memory limit not enforced", reason=str(e))
            return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
