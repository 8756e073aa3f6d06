"""The emissary (``images/emissary/emissary.c``) compiled with gcc and run for real.

It wraps a main container's command in a Kubernetes pod: exit codes, signals forwarded, stdout
teed to ``<container>.stdout``, outputs copied into ``outputs/<index>``, ``<container>.exitcode``
written last. ``GITTRIGGER_RUN_DIR`` points it at a temporary directory instead of
``/var/run/gittrigger``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workflows.executors.base import OutputParameter
from workflows.executors.podplan import PodPlan, outputs_env

SOURCE = Path(__file__).resolve().parent.parent / "images" / "emissary" / "emissary.c"
FLAGS = ["-O2", "-Wall", "-Wextra", "-Werror"]

@pytest.fixture(scope="module")
def emissary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The emissary, static as in the image (dynamic if this machine has no static libc)."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    out = tmp_path_factory.mktemp("emissary") / "emissary"
    static = subprocess.run(["gcc", *FLAGS, "-static", "-o", str(out), str(SOURCE)], capture_output=True, text=True)
    if static.returncode != 0:
        dynamic = subprocess.run(["gcc", *FLAGS, "-o", str(out), str(SOURCE)], capture_output=True, text=True)
        assert dynamic.returncode == 0, dynamic.stderr  # a warning fails the build too (-Werror)
    return out


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path


def env_for(run_dir: Path, *, container: str = "main", outputs: str = "") -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "GITTRIGGER_RUN_DIR": str(run_dir), "GITTRIGGER_CONTAINER": container,
            "GITTRIGGER_OUTPUTS": outputs}


def run(emissary: Path, run_dir: Path, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(emissary), "--", *command], env=env_for(run_dir, **env), capture_output=True,
                          text=True, timeout=20, stdin=subprocess.PIPE, cwd=run_dir)


@pytest.mark.parametrize(("command", "code", "stderr"), [
    (["true"], 0, ""),
    (["sh", "-c", "exit 3"], 3, ""),
    (["sh", "-c", "kill -KILL $$"], 128 + 9, ""),
    (["no-such-command-anywhere"], 127, 'exec: "no-such-command-anywhere": executable file not found in $PATH'),
    (["/no/such/file"], 127, 'exec: "/no/such/file": No such file or directory'),
    (["./data.txt"], 126, 'exec: "./data.txt": Permission denied'),
    (["./script.sh"], 126, 'exec: "./script.sh": Exec format error'),
    ([], 127, "usage: emissary -- COMMAND [ARG...]"),
], ids=["success", "exit-3", "killed", "not-in-path", "missing-file", "not-executable",
        "no-interpreter", "no-command"])
def test_exit_code_is_the_commands_and_recorded_last(
        emissary: Path, run_dir: Path, command: list[str], code: int, stderr: str) -> None:
    """The emissary exits as the command did and records that code in ``<container>.exitcode``."""
    (run_dir / "data.txt").write_text("echo not run\n")
    (run_dir / "script.sh").write_text("echo no shebang, so not run\n")
    (run_dir / "script.sh").chmod(0o755)
    done = run(emissary, run_dir, *command)
    assert done.returncode == code
    assert stderr in done.stderr
    assert (run_dir / "main.exitcode").read_text() == f"{code}\n"
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_stdout_is_passed_through_and_teed_stderr_only_passed(emissary: Path, run_dir: Path) -> None:
    """The pod log gets both streams; the result file gets stdout only, byte for byte."""
    script = "printf 'one\\n'; printf 'err\\n' >&2; head -c 200000 /dev/zero | tr '\\0' x; printf '\\nlast'"
    done = run(emissary, run_dir, "sh", "-c", script, container="c1")
    assert done.returncode == 0
    assert done.stdout == "one\n" + "x" * 200000 + "\nlast"
    assert done.stderr == "err\n"
    assert (run_dir / "c1.stdout").read_text() == done.stdout
    assert (run_dir / "c1.exitcode").read_text() == "0\n"


def test_stdin_is_closed(emissary: Path, run_dir: Path) -> None:
    """The command reads end-of-file at once, even though the emissary's own stdin is a pipe."""
    done = run(emissary, run_dir, "sh", "-c", "cat; echo read-$?")
    assert done.stdout == "read-0\n"


def test_background_process_holding_stdout_does_not_keep_it_running(emissary: Path, run_dir: Path) -> None:
    """Once the command exits, the emissary finishes even if a child it left still holds stdout."""
    proc = subprocess.Popen([str(emissary), "--", "sh", "-c", "sleep 60 & echo started"], env=env_for(run_dir),
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.wait(timeout=20) == 0
        assert (run_dir / "main.stdout").read_text() == "started\n"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


@pytest.fixture
def waiting(emissary: Path, run_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """An emissary whose command traps SIGTERM and SIGINT; yields once the trap is set."""
    script = 'trap "echo term; exit 7" TERM; trap "echo int; exit 8" INT; echo ready; while :; do sleep 0.05; done'
    proc = subprocess.Popen([str(emissary), "--", "sh", "-c", script], env=env_for(run_dir), stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


@pytest.mark.parametrize(("sig", "code", "said"), [(signal.SIGTERM, 7, "term"), (signal.SIGINT, 8, "int")],
                         ids=["sigterm", "sigint"])
def test_signals_are_forwarded_to_the_command(
        waiting: subprocess.Popen[str], run_dir: Path, sig: signal.Signals, code: int, said: str) -> None:
    """A signal to the emissary (only) reaches the command, which ends as it chooses."""
    waiting.send_signal(sig)
    assert waiting.wait(timeout=20) == code
    assert waiting.stdout is not None and waiting.stdout.read() == f"{said}\n"
    assert (run_dir / "main.exitcode").read_text() == f"{code}\n"


def test_a_command_killed_by_the_forwarded_signal_exits_128_plus_it(emissary: Path, run_dir: Path) -> None:
    """``sleep`` does not trap SIGTERM: it dies of it, and the emissary reports 143."""
    proc = subprocess.Popen([str(emissary), "--", "sh", "-c", "echo ready; exec sleep 60"], env=env_for(run_dir),
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 143
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert (run_dir / "main.exitcode").read_text() == "143\n"


def test_outputs_are_copied_recursively_and_missing_ones_skipped(emissary: Path, run_dir: Path, tmp_path: Path) -> None:
    """Files (mode kept, made readable), directories, symlinks as links, ':' in a path; missing skipped."""
    work = tmp_path / "work"
    paths = [str(work / "param:1.txt"), str(work / "tree"), str(work / "missing"), str(work / "link"),
             str(work / "100%")]
    plan = PodPlan(server_url="http://x", parameters=tuple(OutputParameter(name=f"o{i}", path=p)
                                                           for i, p in enumerate(paths)))
    script = (f"mkdir -p {work}/tree/sub/empty && printf v > '{paths[0]}' && chmod 600 '{paths[0]}' && "
              f"printf deep > {work}/tree/sub/f && ln -s sub/f {work}/tree/rel && ln -s /etc/hostname {paths[3]} && "
              f"printf pct > '{paths[4]}'")
    done = run(emissary, run_dir, "sh", "-c", script, outputs=outputs_env(plan))
    assert done.returncode == 0, done.stderr
    out = run_dir / "outputs"
    assert sorted(p.name for p in out.iterdir()) == ["0", "1", "3", "4"]
    assert (out / "0").read_text() == "v" and (out / "0").stat().st_mode & 0o777 == 0o644
    assert (out / "1" / "sub" / "f").read_text() == "deep"
    assert (out / "1" / "sub" / "empty").is_dir()
    assert os.readlink(out / "1" / "rel") == "sub/f"
    assert os.readlink(out / "3") == "/etc/hostname"
    assert (out / "4").read_text() == "pct"


def test_a_second_container_replaces_an_output(emissary: Path, run_dir: Path, tmp_path: Path) -> None:
    """In a containerSet every container saves the outputs it has; the later one wins, whole."""
    src = tmp_path / "o"
    outputs = f"0={src}"
    assert run(emissary, run_dir, "sh", "-c", f"mkdir -p {src}/a && echo 1 > {src}/a/x", outputs=outputs,
               container="c0").returncode == 0
    assert run(emissary, run_dir, "sh", "-c", f"rm -r {src} && echo 2 > {src}", outputs=outputs,
               container="c1").returncode == 0
    assert (run_dir / "outputs" / "0").read_text() == "2\n"
    assert {"c0.exitcode", "c1.exitcode"} <= {p.name for p in run_dir.iterdir()}


# -- the image ---------------------------------------------------------------------------------
# No container engine here: the Dockerfile is checked by reading it, not by building it.

ROOT = SOURCE.parents[2]


def dockerfile_stages() -> list[dict[str, Any]]:
    """The Dockerfile's stages: base image, name, and instructions (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in re.sub(r"\\\n", " ", text).splitlines() if line.strip() and not line.startswith("#")]
    stages: list[dict[str, Any]] = []
    for line in lines:
        op, _, rest = line.strip().partition(" ")
        if op.upper() == "FROM":
            base, _, name = rest.partition(" AS ")
            stages.append({"base": base.strip(), "name": name.strip() or None, "steps": []})
        else:
            stages[-1]["steps"].append((op.upper(), rest.strip()))
    return stages


def ignored(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context (its last matching rule wins)."""
    result = False
    for rule in (ROOT / ".dockerignore").read_text().splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/") or (
                pattern.startswith("**/") and fnmatch.fnmatch(path.rsplit("/", 1)[-1], pattern[3:])):
            result = not negate
    return result


def test_dockerfile_builds_the_emissary_statically_then_installs_gittrigger() -> None:
    """Stages, the static emissary at its contract path, a non-root user, gittrigger as entrypoint."""
    stages = dockerfile_stages()
    assert [s["name"] for s in stages] == ["emissary", "wheel", None]
    build = " ".join(arg for op, arg in stages[0]["steps"] if op == "RUN")
    assert "gcc -static" in build and "-Wall -Wextra -Werror" in build and "/src/emissary.c" in build
    final = stages[-1]
    assert final["base"] == "python:3.11-slim" and stages[1]["base"] == "python:3.11-slim"
    steps = final["steps"]
    assert ("COPY", "--from=emissary /gittrigger-emissary /usr/local/bin/gittrigger-emissary") in steps
    assert any(op == "RUN" and "pip install" in arg for op, arg in steps)
    assert any(op == "RUN" and "pip wheel" in arg and arg.rstrip().endswith(".") for op, arg in stages[1]["steps"])
    user = [arg for op, arg in steps if op == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert json.loads(next(arg for op, arg in steps if op == "ENTRYPOINT")) == ["gittrigger"]
    assert json.loads(next(arg for op, arg in steps if op == "CMD")) == ["serve"]


def test_every_copied_source_exists_and_reaches_the_build_context() -> None:
    """COPY sources (not from another stage) exist in the repo and .dockerignore lets them through."""
    sources = [arg.split()[:-1] for stage in dockerfile_stages() for op, arg in stage["steps"]
               if op == "COPY" and not arg.startswith("--from=")]
    paths = [p for group in sources for p in group]
    assert "images/emissary/emissary.c" in paths and "pyproject.toml" in paths
    for path in paths:
        assert (ROOT / path).exists(), path
        assert not ignored(path), f"{path} is excluded by .dockerignore"
    # Package code must reach the image; the checkout's state must not.
    assert not ignored("gittrigger/podhelper.py") and not ignored("workflows/executors/podplan.py")
    for private in (".venv/bin/python", ".git/config", ".gittrigger/gittrigger.db", "tests/test_emissary.py",
                    "gittrigger/__pycache__/cli.cpython-311.pyc"):
        assert ignored(private), private
