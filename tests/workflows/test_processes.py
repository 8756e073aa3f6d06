"""
processes.start: one container as a process group, started through ``_posixsubprocess.fork_exec``
directly on CPython 3.11 and through ``subprocess.Popen`` elsewhere. Every test runs both ways:
the two must be indistinguishable to the child and to the caller (output, environment, session,
stdin, inherited fds, and the exceptions for a missing program, a bad cwd, a non-executable file).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from workflows.executors import processes
from workflows.executors.processes import Launch


@pytest.fixture(params=["fork_exec", "popen"])
def spawn_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "fork_exec" and not processes._FAST_SPAWN:
        pytest.skip("the direct fork_exec path exists on CPython 3.11 only")
    monkeypatch.setattr(processes, "_FAST_SPAWN", request.param == "fork_exec")
    yield request.param


async def run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, list[str], bytes]:
    lines: list[str] = []
    running = await processes.start(
        Launch(name="main", argv=tuple(argv), env=env if env is not None else {"PATH": os.environ["PATH"]},
               cwd=str(cwd)),
        emit=lines.append, keep_stdout=1024)
    code = await running.wait()
    return code, lines, running.stdout_tail


@pytest.mark.usefixtures("spawn_path")
async def test_output_exit_code_env_session_stdin_and_fds(tmp_path: Path) -> None:
    """The child sees exactly the env given, its own session, /dev/null as stdin and only fds 0-2."""
    script = (
        "import os, sys\n"
        "print('env', sorted(k for k in os.environ if k != 'LC_CTYPE'))\n"
        "print('session', os.getsid(0) == os.getpid(), os.getpgrp() == os.getpid())\n"
        "print('stdin', repr(sys.stdin.read()))\n"
        "print('fds', sorted(int(f) for f in os.listdir('/proc/self/fd')))\n"
        "print('cwd', os.getcwd())\n"
        "print('oops', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    leak = os.open(os.devnull, os.O_RDONLY)  # inheritable or not, it must not reach the child
    os.set_inheritable(leak, True)
    try:
        code, lines, tail = await run([sys.executable, "-S", "-c", script], cwd=tmp_path,
                                      env={"ONLY": "this", "PATH": "/usr/bin:/bin"})
    finally:
        os.close(leak)
    assert code == 3
    assert "env ['ONLY', 'PATH']" in lines
    assert "session True True" in lines
    assert "stdin ''" in lines
    fds = next(line for line in lines if line.startswith("fds "))
    assert fds in ("fds [0, 1, 2]", "fds [0, 1, 2, 3]")  # 3: listdir's own handle on /proc/self/fd
    assert f"cwd {tmp_path}" in lines
    assert "oops" in lines  # stderr captured as log lines
    assert b"oops" not in tail and tail.endswith(f"cwd {tmp_path}\n".encode())  # the result is stdout only


@pytest.mark.usefixtures("spawn_path")
async def test_program_found_on_the_given_path(tmp_path: Path) -> None:
    tool = tmp_path / "bin" / "hello-tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho hello from \"$0\"\n")
    tool.chmod(0o755)
    code, lines, _ = await run(["hello-tool"], cwd=tmp_path, env={"PATH": f"/nowhere:{tool.parent}"})
    assert (code, lines) == (0, [f"hello from {tool}"])


@pytest.mark.usefixtures("spawn_path")
@pytest.mark.parametrize(("case", "error", "filename"), [
    ("missing-program", FileNotFoundError, "no-such-program-xyz"),
    ("missing-cwd", FileNotFoundError, "{tmp}/gone"),
    ("not-executable", PermissionError, "{tmp}/plain.txt"),
], ids=["missing-program", "missing-cwd", "not-executable"])
async def test_start_failures_raise_what_popen_raises(tmp_path: Path, case: str, error: type[OSError],
                                                      filename: str) -> None:
    (tmp_path / "plain.txt").write_text("not a program\n")
    argv, cwd = {
        "missing-program": (["no-such-program-xyz"], tmp_path),
        "missing-cwd": (["true"], tmp_path / "gone"),
        "not-executable": ([str(tmp_path / "plain.txt")], tmp_path),
    }[case]
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(error) as raised:
        await run(argv, cwd=cwd)
    assert raised.value.filename == filename.format(tmp=tmp_path)
    assert set(os.listdir("/proc/self/fd")) <= before  # pipes closed, nothing leaked


@pytest.mark.usefixtures("spawn_path")
async def test_an_equals_sign_in_an_env_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="environment variable"):
        await run(["true"], cwd=tmp_path, env={"A=B": "x"})


@pytest.mark.usefixtures("spawn_path")
async def test_works_with_stdio_closed_in_the_parent(tmp_path: Path) -> None:
    """A daemonised server may run without fds 0-2: the child's error pipe must still stay above
    them, or the child would dup its output over its own error report."""
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    try:
        for fd in (0, 1, 2):
            os.close(fd)
        code, lines, _ = await run(["sh", "-c", "echo fine"], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    finally:
        for fd, copy in zip((0, 1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
    assert (code, lines) == (0, ["fine"])
