"""
The event log's fsync helper: a small child process that fsyncs one file on request, so making a
batch durable costs the event loop two pipe writes and no thread.

Why a process: the loop is busy with deliveries under a flood, and a worker thread doing the
``os.fsync`` had to win the GIL back from it twice per batch (to start, and to return). Measured
in the served process, that hand-off added 1.7 ms at the median and 8-10 ms at the 99th
percentile to every batch's answer, for an fsync of ~0.7 ms. A child process has its own
interpreter: the loop writes one byte to its stdin and reads one line back when the pipe is
readable. On Linux ``fsync`` flushes the file (the inode), whichever descriptor wrote it, so the
child syncs the descriptor it inherited (``pass_fds``). It calls ``fdatasync``, as SQLite's own
WAL sync does on Linux (and etcd's): the data and the size that reaches it, not the timestamps,
so a WAL rewritten in place after a checkpoint costs no journal commit (``fsync`` where there is
no ``fdatasync``, as on macOS).

Protocol, one request at a time: the loop writes ``s``; the child answers ``ok <seconds>`` or
``err <errno> <message>``. The child is ``python -I -S -c`` (isolated, no site: only ``os``,
``sys``, ``time``), starts in ~15 ms, and exits when its stdin closes, also when the server is
SIGKILLed. A child found gone is started again and the fsync retried once, since fsync is
idempotent: a crash of the helper costs a retry, not a 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from typing import Final

import structlog

log = structlog.get_logger(__name__)

_CHILD: Final = """
import os, sys, time
fd = int(sys.argv[1])
sync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync
requests, answers = sys.stdin.buffer.raw, sys.stdout.buffer.raw
while requests.read(1):
    started = time.perf_counter()
    try:
        sync(fd)
    except OSError as exc:
        answers.write(b"err %d %s\\n" % (exc.errno or 0, (exc.strerror or "").encode()))
    else:
        answers.write(b"ok %.9f\\n" % (time.perf_counter() - started))
"""


class HelperGone(Exception):
    """The helper process could not be reached (it exited, or never started)."""


class Fsyncer:
    """fsync of one file descriptor, done by a child process. Start with :meth:`start`."""

    def __init__(self, fd: int, *, name: str) -> None:
        self.fd = fd
        self.name = name  # for log lines: the file it syncs
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def start(cls, fd: int, *, name: str) -> Fsyncer:
        self = cls(fd, name=name)
        await self._spawn()
        return self

    async def fsync(self) -> float:
        """fsync the file; returns the seconds the fsync itself took. OSError when it failed
        (errno and message from the child); HelperGone when no helper could do it."""
        async with self._lock:
            if self._closed:
                raise HelperGone("closed")
            try:
                return await self._request()
            except HelperGone as gone:
                log.warning("fsync helper gone; starting another", file=self.name, reason=str(gone))
            await self._reap()
            await self._spawn()
            return await self._request()

    async def close(self) -> None:
        """End the helper (closing its stdin ends it); idempotent."""
        async with self._lock:
            self._closed = True
            await self._reap()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def _spawn(self) -> None:
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-S", "-c", _CHILD, str(self.fd), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, pass_fds=(self.fd,))
        except OSError as exc:
            raise HelperGone(f"could not start: {exc.strerror}") from exc

    async def _request(self) -> float:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise HelperGone("not running")
        try:
            proc.stdin.write(b"s")
            await proc.stdin.drain()
            line = await proc.stdout.readline()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise HelperGone(str(exc)) from exc
        if not line.endswith(b"\n"):
            raise HelperGone(f"exited (status {proc.returncode})" if proc.returncode is not None else "stdout closed")
        kind, _, rest = line.decode().rstrip("\n").partition(" ")
        if kind == "ok":
            return float(rest)
        errno, _, message = rest.partition(" ")
        raise OSError(int(errno), message)

    async def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
