"""The fsync helper process: real child processes, real descriptors, a SIGKILLed parent."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gittrigger.fsyncer import Fsyncer, HelperGone

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


async def test_fsync_of_a_file_answers_its_seconds(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    fsyncer = await Fsyncer.start(fd, name="f")
    try:
        os.write(fd, b"x" * 4096)
        seconds = [await fsyncer.fsync() for _ in range(3)]
        assert all(0 <= s < 30 for s in seconds)
    finally:
        await fsyncer.close()
        os.close(fd)


async def test_the_child_fsyncs_the_descriptor_it_was_given() -> None:
    """fsync of a pipe is EINVAL: the error, errno and message, comes back from the child."""
    read_end, write_end = os.pipe()
    fsyncer = await Fsyncer.start(write_end, name="pipe")
    try:
        with pytest.raises(OSError) as caught:
            await fsyncer.fsync()
        assert caught.value.errno == errno.EINVAL and caught.value.strerror == os.strerror(errno.EINVAL)
        with pytest.raises(OSError):  # the helper is still there for the next request
            await fsyncer.fsync()
    finally:
        await fsyncer.close()
        os.close(read_end)
        os.close(write_end)


async def test_a_killed_helper_is_replaced_and_the_fsync_retried(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    fsyncer = await Fsyncer.start(fd, name="f")
    try:
        await fsyncer.fsync()
        first = fsyncer.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await asyncio.sleep(0.05)
        assert await fsyncer.fsync() >= 0
        assert fsyncer.pid not in (None, first)
    finally:
        await fsyncer.close()
        os.close(fd)


async def test_close_ends_the_helper_and_later_fsyncs_are_refused(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    fsyncer = await Fsyncer.start(fd, name="f")
    pid = fsyncer.pid
    assert pid is not None
    await fsyncer.close()
    await fsyncer.close()  # idempotent
    try:
        assert not alive(pid)
        with pytest.raises(HelperGone, match="closed"):
            await fsyncer.fsync()
    finally:
        os.close(fd)


PARENT = textwrap.dedent("""
    import asyncio, os, sys, time
    from gittrigger.fsyncer import Fsyncer

    async def main() -> None:
        fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
        fsyncer = await Fsyncer.start(fd, name="f")
        await fsyncer.fsync()
        print(fsyncer.pid, flush=True)
        time.sleep(60)  # SIGKILLed here

    asyncio.run(main())
""")


def test_the_helper_exits_when_its_server_is_sigkilled(tmp_path: Path) -> None:
    """No orphan: the helper's stdin reaches EOF when the parent dies, and it exits."""
    proc = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "f")], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    try:
        helper = int(proc.stdout.readline())
        assert alive(helper)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    deadline = time.monotonic() + 10
    while alive(helper) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(helper)


def test_without_fdatasync_the_child_uses_fsync(tmp_path: Path) -> None:
    """macOS has no os.fdatasync: the child script falls back to os.fsync instead of failing."""
    from gittrigger.fsyncer import _CHILD

    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        script = f"import os, sys\ndel os.fdatasync\nsys.argv = ['child', '{fd}']\n" + _CHILD
        proc = subprocess.run([sys.executable, "-I", "-S", "-c", script], input=b"ss", capture_output=True,
                              pass_fds=(fd,), timeout=30, check=False)
    finally:
        os.close(fd)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines()] == [b"ok", b"ok"]
