"""
One container of a local pod as an OS process group: start, stream its output, stop, reap.

Used by :mod:`workflows.executors.local` for init containers, sidecars and main containers
(and by :mod:`workflows.executors.probes` for exec probes). Each container is its own process
group (``start_new_session``), so a signal reaches every process it forked (``sh -c 'sleep &'``
included); inside bubblewrap the group also holds the sandbox, whose pid namespace dies with
it. The child's exit is watched through a pidfd and stdout/stderr through their pipes, all on
the event loop (no threads, no tasks per process), and output is handed to ``emit`` line by line
as it arrives. A memory limit is enforced through a cgroup (v1 or v2) when this machine lets us
create one; otherwise it is skipped with a debug log (RLIMIT_AS breaks Go, Node and the JVM).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

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
        proc: _Child,
        cgroup: MemoryCgroup | None,
        sandboxed: bool = False,
    ) -> None:
        self.name = name
        self.proc = proc
        self.pgid = proc.pid
        self.stopped_by_us = False
        self._cgroup = cgroup
        self._exit: int | None = None
        self._oom = False
        self._sandboxed = sandboxed

    @property
    def stdout_tail(self) -> bytes:
        """The last bytes of stdout kept when started with ``keep_stdout``."""
        return bytes(self.proc.tail or b"")

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
            await self.proc.drained()
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
            self.proc.abandon()
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
    try:
        proc = _Child.spawn(argv, env=launch.env, cwd=launch.cwd, emit=emit, keep_stdout=keep_stdout)
    except BaseException:
        if cgroup is not None:
            await cgroup.remove()
        raise
    return Running(name=launch.name, proc=proc, cgroup=cgroup, sandboxed=launch.sandboxed)


class _Child:
    """A child process watched through the event loop alone: a pidfd for its exit, the pipes'
    read ends for its output. No transports, reader tasks or watcher threads: at thousands of
    pods the per-process cost of asyncio's subprocess machinery is most of the executor's.
    """

    def __init__(self, pid: int, *, loop: asyncio.AbstractEventLoop,
                 popen: subprocess.Popen[bytes] | None = None) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._popen = popen  # held (when Popen started it) so its finalizer never reaps our child
        self._loop = loop
        self._exited: asyncio.Future[int] = loop.create_future()
        self._drained: list[asyncio.Future[None]] = []
        self._fds: set[int] = set()

    @classmethod
    def spawn(cls, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, emit: Emit | None,
              keep_stdout: int) -> _Child:
        loop = asyncio.get_running_loop()
        pipes = (os.pipe(), os.pipe()) if emit is not None else None
        try:
            if _FAST_SPAWN:
                child = cls(_fork_exec(argv, env=env, cwd=cwd, stdout=pipes[0][1] if pipes else None,
                                       stderr=pipes[1][1] if pipes else None), loop=loop)
            else:
                popen = subprocess.Popen(
                    list(argv), stdin=subprocess.DEVNULL,
                    stdout=pipes[0][1] if pipes else subprocess.DEVNULL,
                    stderr=pipes[1][1] if pipes else subprocess.DEVNULL,
                    env=dict(env), cwd=cwd, start_new_session=True, close_fds=True,
                )
                child = cls(popen.pid, loop=loop, popen=popen)
        except BaseException:
            for r, w in pipes or ():
                os.close(r)
                os.close(w)
            raise
        if pipes is not None:
            assert emit is not None
            os.close(pipes[0][1])
            os.close(pipes[1][1])
            child.tail = bytearray() if keep_stdout else None
            child._read(pipes[0][0], emit, tail=child.tail, cap=keep_stdout)
            child._read(pipes[1][0], emit, tail=None, cap=0)
        else:
            child.tail = None
        child._watch()
        return child

    tail: bytearray | None

    def _watch(self) -> None:
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfd (old kernel): a thread waits instead
            self._loop.run_in_executor(None, self._wait_blocking)
            return

        def exited() -> None:
            self._loop.remove_reader(pidfd)
            os.close(pidfd)
            self._reap(os.waitpid(self.pid, 0)[1])

        self._loop.add_reader(pidfd, exited)

    def _wait_blocking(self) -> None:
        status = os.waitpid(self.pid, 0)[1]
        self._loop.call_soon_threadsafe(self._reap, status)

    def _reap(self, status: int) -> None:
        self.returncode = os.waitstatus_to_exitcode(status)
        if self._popen is not None:
            self._popen.returncode = self.returncode
        if not self._exited.done():
            self._exited.set_result(self.returncode)

    def _read(self, fd: int, emit: Emit, *, tail: bytearray | None, cap: int) -> None:
        done: asyncio.Future[None] = self._loop.create_future()
        self._drained.append(done)
        self._fds.add(fd)
        pending = bytearray()

        def readable() -> None:
            try:
                chunk = os.read(fd, _CHUNK)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._close(fd)
                if pending:
                    emit(_decode(pending))
                if not done.done():
                    done.set_result(None)
                return
            if tail is not None:
                tail.extend(chunk)
                if len(tail) > cap:
                    del tail[: len(tail) - cap]
            pending.extend(chunk)
            begin = 0
            while (end := pending.find(b"\n", begin)) >= 0:
                _emit_split(emit, pending[begin:end])
                begin = end + 1
            del pending[:begin]
            while len(pending) >= MAX_LINE:
                emit(_decode(pending[:MAX_LINE]))
                del pending[:MAX_LINE]

        os.set_blocking(fd, False)
        self._loop.add_reader(fd, readable)

    async def wait(self) -> int:
        """The exit status as ``subprocess`` reports it (negative: killed by that signal)."""
        return await asyncio.shield(self._exited)

    async def drained(self) -> None:
        """Until both pipes reached EOF (every writer, leftovers included, has closed them)."""
        await asyncio.gather(*self._drained)

    def abandon(self) -> None:
        """Stop reading the pipes (the caller gave up waiting for EOF)."""
        for fd in list(self._fds):
            self._close(fd)
        for fut in self._drained:
            if not fut.done():
                fut.cancel()

    def _close(self, fd: int) -> None:
        if fd in self._fds:
            self._fds.discard(fd)
            self._loop.remove_reader(fd)
            os.close(fd)


# ``subprocess.Popen`` costs a third again as much as the fork+exec it wraps (argument
# normalisation, a fresh /dev/null per stream, handle bookkeeping), and that is paid on the event
# loop for every container. On CPython 3.11, whose private ``_posixsubprocess.fork_exec``
# signature is known, we call it directly with what Popen would pass for our one shape of call
# (own session, all fds closed, stdin from /dev/null, vfork allowed); elsewhere, Popen.
_FAST_SPAWN: Final = sys.version_info[:2] == (3, 11) and sys.implementation.name == "cpython"
_devnull: int | None = None
_NO_PREEXEC: Any = None  # the stub wants a callable; None (no preexec_fn) is what Popen passes


def _fork_exec(argv: Sequence[str], *, env: Mapping[str, str], cwd: str, stdout: int | None,
               stderr: int | None) -> int:
    """Start ``argv`` as Popen(..., stdin/out/err DEVNULL or the fds given, start_new_session,
    close_fds) would; returns its pid, raises the OSError Popen would (missing file, bad cwd)."""
    global _devnull
    import _posixsubprocess

    if _devnull is None:
        _devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    sys.audit("subprocess.Popen", argv[0], list(argv), cwd, env)
    args = [os.fsencode(a) for a in argv]
    env_list = []
    for key, value in env.items():
        k = os.fsencode(key)
        if b"=" in k:
            raise ValueError("illegal environment variable name")
        env_list.append(k + b"=" + os.fsencode(value))
    executable = args[0]
    executables = ((executable,) if os.path.dirname(executable)
                   else tuple(os.path.join(os.fsencode(d), executable) for d in os.get_exec_path(env)))
    errpipe_read, errpipe_write = os.pipe()
    low: list[int] = []
    while errpipe_write < 3:  # the child's stdio are 0-2: its error pipe must be above them
        low.append(errpipe_write)
        errpipe_write = os.dup(errpipe_write)
    for fd in low:
        os.close(fd)
    try:
        try:
            pid: int = _posixsubprocess.fork_exec(
                args, executables, True, (errpipe_write,), cwd, env_list,
                _devnull, -1, -1, _devnull if stdout is None else stdout, -1, _devnull if stderr is None else stderr,
                errpipe_read, errpipe_write, True, True, -1, None, None, None, -1, _NO_PREEXEC, True)
        finally:
            os.close(errpipe_write)
        report = bytearray()
        while part := os.read(errpipe_read, 50_000):  # EOF once exec succeeded (the pipe is CLOEXEC)
            report += part
            if len(report) > 50_000:
                break
    finally:
        os.close(errpipe_read)
    if not report:
        return pid
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    raise _exec_error(bytes(report), executable=argv[0], cwd=cwd)


def _exec_error(report: bytes, *, executable: str, cwd: str) -> Exception:
    """The exception Popen raises for the child's ``Name:hex-errno:message`` report."""
    try:
        name, hex_errno, message = report.split(b":", 2)
        text = message.decode()
    except ValueError:
        return subprocess.SubprocessError(f"bad exception data from child: {report!r}")
    kind = getattr(builtins, name.decode("ascii", "replace"), subprocess.SubprocessError)
    if not (isinstance(kind, type) and issubclass(kind, Exception)):
        kind = subprocess.SubprocessError
    if issubclass(kind, OSError) and hex_errno:
        errno_num = int(hex_errno, 16)
        filename = cwd if text == "noexec" else executable  # "noexec": chdir failed, exec never ran
        return kind(errno_num, os.strerror(errno_num) if errno_num else "", filename)
    return kind(text)


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
