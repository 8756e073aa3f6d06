"""Tests of the local executor with real processes (and real bubblewrap, which is installed here)."""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.base import (
    Container,
    File,
    InputArtifact,
    LogLine,
    OutputArtifact,
    OutputParameter,
    PodRequest,
    PodResult,
    Probe,
    Volume,
    VolumeMount,
)
from workflows.executors.local import LOST_MESSAGE, LocalExecutor, bwrap_works
from workflows.model.ids import NodeId
from workflows.model.spec import GitSource
from workflows.model.status import NodePhase

HAVE_BWRAP = shutil.which("bwrap") is not None
needs_bwrap = pytest.mark.skipif(not HAVE_BWRAP, reason="bubblewrap (bwrap) is not installed")
BOTH = pytest.mark.parametrize("isolation", [pytest.param("bwrap", marks=needs_bwrap), "none"], ids=["bwrap", "none"])


class Sink:
    """A LogSink keeping every line."""

    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def append(self, line: LogLine) -> None:
        self.lines.append(line)

    def of(self, container: str) -> list[str]:
        return [line.content for line in self.lines if line.container == container]


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def make(tmp_path: Path, sink: Sink, store: LocalArtifactStore) -> Callable[..., LocalExecutor]:
    def make(isolation: str = "bwrap", **kw: Any) -> LocalExecutor:
        return LocalExecutor(
            data_dir=tmp_path / "data",
            artifacts=store,
            logs=sink,
            isolation=isolation,  # type: ignore[arg-type]
            grace_period=kw.pop("grace_period", 1.0),
            **kw,
        )

    return make


def sh(script: str, name: str = "main", **kw: Any) -> Container:
    return Container(name=name, command=("sh", "-c"), args=(textwrap.dedent(script),), **kw)


def pod(*main: Container, name: str = "p", workflow: str = "wf", **kw: Any) -> PodRequest:
    return PodRequest(
        node_id=NodeId(f"{workflow}-{name}"),
        pod_name=name,
        namespace="ns",
        workflow_name=workflow,
        workflow_uid=f"uid-{workflow}",
        template_name="t",
        main=main or (sh("true"),),
        **kw,
    )


def no_ready(ip: str) -> None:
    raise AssertionError(f"on_ready({ip}) called for a non-daemon pod")


def alive(executor: LocalExecutor, p: PodRequest) -> list[int]:
    """Pids of live (non-zombie) processes in the pod's recorded process groups."""
    journal = executor.workspace(p).parents[2] / "journal.jsonl"  # <data>/pods/journal.jsonl
    key = f"{p.namespace}/{p.workflow_name}/{p.pod_name}"
    lines = [json.loads(raw) for raw in journal.read_text().splitlines()]
    groups = {int(g) for line in lines if line["k"] == key for g in line.get("g", {})}
    assert groups, "no process group was recorded"
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) in groups and fields[0] != "Z":
                out.append(int(entry.name))
    return out


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(400):
        if check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"timed out waiting for {what}")


@BOTH
async def test_hello_world_result(make: Callable[..., LocalExecutor], sink: Sink, isolation: str) -> None:
    """stdout is the result, with one trailing newline trimmed; timestamps and ip are set."""
    r = await make(isolation).run(pod(sh("echo hello world")), on_ready=no_ready)
    assert (r.phase, r.exit_code, r.result, r.message) == (NodePhase.SUCCEEDED, 0, "hello world", None)
    assert r.started_at is not None and r.finished_at is not None and r.started_at.tzinfo is not None
    assert r.pod_ip == "127.0.0.1"
    assert sink.of("main") == ["hello world"]


@BOTH
async def test_exit_code_fails_the_pod_like_argo(make: Callable[..., LocalExecutor], isolation: str) -> None:
    """A non-zero exit is phase Failed with Argo's message."""
    r = await make(isolation).run(pod(sh("echo partial; exit 3")), on_ready=no_ready)
    assert (r.phase, r.exit_code, r.message, r.result) == (
        NodePhase.FAILED,
        3,
        "Error (exit code 3)",
        "partial",
    )


@pytest.mark.parametrize(
    ("script", "expected"),
    [("echo out; echo err >&2", "out"), ("printf 'a\\n\\n'", "a\n"), ("printf 'a'", "a"), ("true", "")],
    ids=["stderr-excluded", "one-newline-trimmed", "no-newline", "empty"],
)
async def test_result_is_stdout_with_one_newline_trimmed(
    make: Callable[..., LocalExecutor], script: str, expected: str
) -> None:
    """Only stdout makes the result, and only one trailing newline is removed."""
    r = await make().run(pod(sh(script)), on_ready=no_ready)
    assert r.result == expected


async def test_result_keeps_the_last_256_kib_and_long_lines_are_split(
    make: Callable[..., LocalExecutor], sink: Sink
) -> None:
    """A huge output is capped to its tail; the log splits lines at 64 KiB."""
    r = await make().run(pod(sh("head -c 300000 /dev/zero | tr '\\0' x; printf 'END'")), on_ready=no_ready)
    assert r.result is not None and len(r.result) == 256 * 1024 and r.result.endswith("xEND")
    assert [len(line) for line in sink.of("main")] == [65536] * 4 + [300003 - 4 * 65536]


async def test_script_file_and_env_and_working_dir(
    make: Callable[..., LocalExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files are placed before main starts (even under a missing top-level dir); env is clean and ordered."""
    monkeypatch.setenv("SERVER_SECRET", "leak")
    script = 'pwd; echo "$A $B $HOME ${SERVER_SECRET:-clean}"'
    main = Container(
        name="main",
        command=("sh",),
        args=("/argo/staging/script",),
        working_dir="/src/app",
        env=(("A", "1"), ("B", "x"), ("A", "2")),
    )
    p = pod(main, files=(File(path="/argo/staging/script", content=script.encode()),))
    r = await make().run(p, on_ready=no_ready)
    assert r.result == "/src/app\n2 x /tmp clean", r


async def test_extra_path_tools_are_found(make: Callable[..., LocalExecutor], tmp_path: Path) -> None:
    """extra_path is searched first, even where the sandbox hides its host location (/tmp)."""
    (tools := tmp_path / "bin").mkdir()
    (tool := tools / "mytool").write_text('#!/bin/sh\necho stand-in "$@"\n')
    tool.chmod(0o755)
    r = await make(extra_path=[str(tools)]).run(pod(Container(name="main", command=("mytool", "x"))), on_ready=no_ready)
    assert r.result == "stand-in x"


@needs_bwrap
async def test_tmp_outputs_of_concurrent_pods_do_not_collide(make: Callable[..., LocalExecutor]) -> None:
    """Each container has a private /tmp, read back after exit for output parameters."""
    ex = make()

    def writer(name: str) -> PodRequest:
        script = f"echo {name} > /tmp/x; sleep 0.3; cat /tmp/x"
        return pod(sh(script), name=name, output_parameters=(OutputParameter(name="x", path="/tmp/x"),))

    a, b = await asyncio.gather(ex.run(writer("a"), on_ready=no_ready), ex.run(writer("b"), on_ready=no_ready))
    assert (a.result, a.output_parameters, b.result, b.output_parameters) == (
        "a",
        {"x": "a"},
        "b",
        {"x": "b"},
    )


@needs_bwrap
async def test_output_beside_host_files_keeps_them_visible(make: Callable[..., LocalExecutor]) -> None:
    """Writing an output into an existing host dir (/etc) neither hides its files nor touches the host."""
    params = (OutputParameter(name="o", path="/etc/gittrigger-test-out"),)
    main = sh("grep -q ^ID= /etc/os-release && echo written > /etc/gittrigger-test-out", working_dir="/usr/share")
    r = await make().run(pod(main, output_parameters=params), on_ready=no_ready)
    assert (r.phase, dict(r.output_parameters)) == (NodePhase.SUCCEEDED, {"o": "written"})
    assert not os.path.exists("/etc/gittrigger-test-out")


async def test_missing_output_parameter_is_absent(make: Callable[..., LocalExecutor]) -> None:
    """A missing file (or a directory) simply yields no parameter; the core applies defaults."""
    params = (OutputParameter(name="gone", path="/out/nope"), OutputParameter(name="dir", path="/tmp"))
    r = await make().run(pod(sh("true"), output_parameters=params), on_ready=no_ready)
    assert (r.phase, dict(r.output_parameters)) == (NodePhase.SUCCEEDED, {})


@BOTH
async def test_output_artifacts_round_trip_into_inputs(
    make: Callable[..., LocalExecutor], store: LocalArtifactStore, isolation: str, tmp_path: Path
) -> None:
    """A directory and a file saved by one pod are placed as inputs of the next."""
    root = "/out" if isolation == "bwrap" else str(tmp_path / "host")
    ex = make(isolation)
    first = pod(
        sh(f"mkdir -p {root}/dir/sub && cd {root} && echo a > dir/a && echo b > dir/sub/b && echo f > f.txt"),
        name="first",
        output_artifacts=(
            OutputArtifact(name="d", path=f"{root}/dir", key="wf/first/d.tgz"),
            OutputArtifact(name="f", path=f"{root}/f.txt", key="wf/first/f", archive_none=True),
        ),
    )
    r1 = await ex.run(first, on_ready=no_ready)
    assert (r1.phase, dict(r1.output_artifacts)) == (
        NodePhase.SUCCEEDED,
        {"d": "wf/first/d.tgz", "f": "wf/first/f"},
    )
    inputs = (
        InputArtifact(name="d", path=f"{root}/in/d", key="wf/first/d.tgz"),
        InputArtifact(name="f", path=f"{root}/in/f", key="wf/first/f", archive_none=True, mode=0o600),
        InputArtifact(name="s", path=f"{root}/in/s", key="wf/first/d.tgz", sub_path="sub/b"),
        InputArtifact(name="raw", path=f"{root}/raw.txt", raw_data="raw data"),
        InputArtifact(name="opt", path=f"{root}/opt", key="wf/absent", optional=True),
    )
    second = pod(
        sh(f"cd {root} && cat in/d/a in/d/sub/b in/f in/s raw.txt && stat -c %a in/f && ls in; ls opt"),
        name="second",
        input_artifacts=inputs,
    )
    r2 = await ex.run(second, on_ready=no_ready)
    assert (r2.phase, r2.result) == (NodePhase.FAILED, "a\nb\nf\nb\nraw data600\nd\nf\ns")  # no opt


async def test_missing_input_and_output_artifacts_are_errors(make: Callable[..., LocalExecutor]) -> None:
    """A required input or output missing ends the pod in Error; optional ones may be missing."""
    ex = make()
    r = await ex.run(
        pod(sh("true"), name="in", input_artifacts=(InputArtifact(name="a", path="/a", key="nope"),)),
        on_ready=no_ready,
    )
    assert r.phase is NodePhase.ERROR and r.message is not None and "failed to load artifacts" in r.message
    outs = (
        OutputArtifact(name="o", path="/o/x", key="k1"),
        OutputArtifact(name="p", path="/o/y", key="k2", optional=True),
    )
    r = await ex.run(pod(sh("true"), name="out", output_artifacts=outs), on_ready=no_ready)
    assert r.phase is NodePhase.ERROR and r.message is not None and r.message.startswith("failed to save outputs")


@needs_bwrap
async def test_empty_dir_shared_by_init_sidecar_and_main_and_sidecar_stopped(
    make: Callable[..., LocalExecutor], sink: Sink
) -> None:
    """Init runs first, the sidecar runs alongside main and is stopped after it (exit ignored)."""
    mount = (VolumeMount(name="shared", mount_path="/mnt/shared"),)
    init = sh("echo init > /mnt/shared/log", name="init", volume_mounts=mount)
    sidecar = sh(
        """
        trap 'echo stopping; exit 1' TERM
        echo sidecar >> /mnt/shared/log
        sleep 100 & wait
    """,
        name="side",
        volume_mounts=mount,
    )
    main = sh("until grep -q sidecar /mnt/shared/log; do sleep 0.05; done; cat /mnt/shared/log", volume_mounts=mount)
    p = pod(main, init_containers=(init,), sidecars=(sidecar,), volumes=(Volume(name="shared", scope="pod"),))
    r = await make().run(p, on_ready=no_ready)
    assert (r.phase, r.result) == (NodePhase.SUCCEEDED, "init\nsidecar")
    assert sink.of("side") == ["stopping"]


@BOTH
async def test_failing_init_container_fails_the_pod(
    make: Callable[..., LocalExecutor], sink: Sink, isolation: str
) -> None:
    """Main never starts after a failed init container."""
    p = pod(sh("echo main ran"), init_containers=(sh("exit 4", name="init"),))
    r = await make(isolation).run(p, on_ready=no_ready)
    assert (r.phase, r.message) == (NodePhase.FAILED, "init container init failed: Error (exit code 4)")
    assert sink.of("main") == []


@needs_bwrap
async def test_workflow_volume_is_shared_between_pods(make: Callable[..., LocalExecutor]) -> None:
    """A volumeClaimTemplates volume lives per workflow run, seen by every pod of it."""
    ex = make()
    vol, mount = (Volume(name="work", scope="workflow"),), (VolumeMount(name="work", mount_path="/work/vol"),)
    await ex.run(pod(sh("echo from-a > /work/vol/f", volume_mounts=mount), name="a", volumes=vol), on_ready=no_ready)
    r = await ex.run(pod(sh("cat /work/vol/f", volume_mounts=mount), name="b", volumes=vol), on_ready=no_ready)
    other = await ex.run(
        pod(sh("cat /work/vol/f", volume_mounts=mount), name="b", workflow="wf2", volumes=vol),
        on_ready=no_ready,
    )
    assert (r.result, other.phase) == ("from-a", NodePhase.FAILED)


@needs_bwrap
async def test_container_set_runs_in_dependency_order(make: Callable[..., LocalExecutor]) -> None:
    """a -> (b, c) -> d; the result comes from result_container."""
    mount = (VolumeMount(name="v", mount_path="/v"),)

    def step(name: str, *deps: str) -> Container:
        return sh(f"echo {name} >> /v/order; cat /v/order", name=name, dependencies=deps, volume_mounts=mount)

    p = pod(
        step("d", "b", "c"),
        step("c", "a"),
        step("b", "a"),
        step("a"),
        result_container="d",
        volumes=(Volume(name="v", scope="pod"),),
    )
    r = await make().run(p, on_ready=no_ready)
    assert r.phase is NodePhase.SUCCEEDED and r.result is not None
    order = r.result.splitlines()
    assert (order[0], sorted(order[1:3]), order[3]) == ("a", ["b", "c"], "d")


async def test_container_set_failure_stops_the_rest(make: Callable[..., LocalExecutor], sink: Sink) -> None:
    """A failing container fails the pod and its dependents never start."""
    p = pod(sh("exit 5", name="a"), sh("echo b", name="b", dependencies=("a",)), result_container="b")
    r = await make().run(p, on_ready=no_ready)
    assert (r.phase, r.exit_code, r.message, sink.of("b")) == (NodePhase.FAILED, 5, "Error (exit code 5)", [])


@pytest.mark.parametrize(
    ("main", "message"),
    [
        (
            Container(name="main", command=("no-such-tool",)),
            'exec: "no-such-tool": executable file not found in $PATH',
        ),
        (
            Container(name="main", command=("/no/such",)),
            'exec: "/no/such": stat /no/such: no such file or directory',
        ),
        (
            Container(name="main"),
            "no command specified for container 'main' (images have no entrypoint locally)",
        ),
    ],
    ids=["not-in-path", "absolute", "no-command"],
)
async def test_unstartable_command_is_an_error(
    make: Callable[..., LocalExecutor], main: Container, message: str
) -> None:
    """A command that cannot start is phase Error, not Failed."""
    r = await make().run(pod(main), on_ready=no_ready)
    assert (r.phase, r.exit_code, r.message) == (NodePhase.ERROR, None, message)


@BOTH
async def test_cancel_kills_the_whole_tree_and_logs_stream(
    make: Callable[..., LocalExecutor], sink: Sink, isolation: str
) -> None:
    """Logs arrive while running; cancelling stops every process of the pod, then re-raises."""
    ex = make(isolation, grace_period=0.5)
    p = pod(sh("echo started; sleep 100 & sleep 100 & wait"), sidecars=(sh("sleep 100", name="side"),))
    task = asyncio.create_task(ex.run(p, on_ready=no_ready))
    await until(lambda: "started" in sink.of("main"), "the first log line")
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert alive(ex, p) == []


@needs_bwrap
async def test_daemon_signals_ready_after_its_http_probe(make: Callable[..., LocalExecutor]) -> None:
    """on_ready fires once the httpGet probe answers; cancelling stops the daemon."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    probe = Probe(http_path="/", http_port=port, period_seconds=0.1)
    main = Container(
        name="main",
        command=("python3", "-m", "http.server", "--bind", "127.0.0.1", str(port)),
        readiness_probe=probe,
    )
    ex = make()
    p = pod(main, daemon=True)
    ready: list[str] = []
    task = asyncio.create_task(ex.run(p, on_ready=ready.append))
    await until(lambda: bool(ready), "readiness")
    assert ready == ["127.0.0.1"] and not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert alive(ex, p) == []


async def test_daemon_with_exec_probe(make: Callable[..., LocalExecutor]) -> None:
    """An exec probe runs in the container's own view (its /tmp)."""
    probe = Probe(exec_command=("test", "-f", "/tmp/ready"), period_seconds=0.05)
    main = sh("sleep 0.2; touch /tmp/ready; sleep 100", readiness_probe=probe)
    ex = make()
    ready: list[str] = []
    task = asyncio.create_task(ex.run(pod(main, daemon=True), on_ready=ready.append))
    await until(lambda: bool(ready), "readiness")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_memory_limit_oom_kills(make: Callable[..., LocalExecutor]) -> None:
    """Over its memory limit a container is OOM-killed: exit 137, Failed, Argo's message."""
    if not os.access("/sys/fs/cgroup/memory", os.W_OK) and not os.access("/sys/fs/cgroup/cgroup.procs", os.W_OK):
        pytest.skip("no writable memory cgroup on this machine")
    main = Container(
        name="main",
        command=("python3", "-c", "x = bytearray(200 * 2**20); print(len(x))"),
        memory_limit_bytes=50 * 2**20,
    )
    parent = Path("/sys/fs/cgroup/memory/gittrigger")
    before = {p.name for p in parent.iterdir() if p.is_dir()} if parent.is_dir() else set()
    r = await make().run(pod(main), on_ready=no_ready)
    assert (r.phase, r.exit_code, r.message) == (NodePhase.FAILED, 137, "OOMKilled (exit code 137)")
    if parent.is_dir():  # v1: the container's cgroup is removed once its processes are gone
        assert {p.name for p in parent.iterdir() if p.is_dir()} == before


async def test_forget_workflow_removes_workspaces_and_volumes(
    make: Callable[..., LocalExecutor], tmp_path: Path
) -> None:
    """Garbage collection of a run removes its pod workspaces and workflow volumes, not other runs'."""
    ex = make()
    vol, mount = (Volume(name="v", scope="workflow"),), (VolumeMount(name="v", mount_path="/v"),)
    for wf in ("wf", "keep"):
        await ex.run(pod(sh("echo x > /v/f", volume_mounts=mount), workflow=wf, volumes=vol), on_ready=no_ready)
    await ex.forget_workflow(namespace="ns", workflow="wf", workflow_uid="uid-wf")
    data = tmp_path / "data"
    assert sorted(p.name for p in (data / "pods" / "ns").iterdir()) == ["keep"]
    assert sorted(p.name for p in (data / "volumes" / "ns").iterdir()) == ["uid-keep"]


async def test_a_run_of_the_same_name_after_forget_workflow_gets_its_scratch_dir_again(
    make: Callable[..., LocalExecutor], tmp_path: Path
) -> None:
    """Bare unisolated pods share a scratch directory made once per run name; forgetting the run
    removes it, and a later run of that name (a deleted and re-created Workflow) must get it back."""
    ex = make(isolation="none")
    first = await ex.run(pod(sh("pwd"), workflow="again"), on_ready=no_ready)
    assert first.phase is NodePhase.SUCCEEDED, first.message
    await ex.forget_workflow(namespace="ns", workflow="again", workflow_uid="uid-1")
    assert not (tmp_path / "data" / "pods" / "ns" / "again").exists()
    second = await ex.run(pod(sh("pwd"), name="q", workflow="again"), on_ready=no_ready)
    assert second.phase is NodePhase.SUCCEEDED, second.message
    assert second.result == first.result  # the same shared directory, made again


async def test_finished_pod_is_not_run_twice_but_a_new_attempt_runs(
    make: Callable[..., LocalExecutor], sink: Sink
) -> None:
    """A second run() of a finished pod returns its stored result (re-attach); another attempt runs."""
    ex = make()
    first = await ex.run(pod(sh("echo once")), on_ready=no_ready)
    again = await make().run(pod(sh("echo once")), on_ready=no_ready)
    assert (again, sink.of("main")) == (first, ["once"])
    retried = await make().run(pod(sh("echo once"), attempt=1), on_ready=no_ready)
    assert (retried.phase, sink.of("main")) == (NodePhase.SUCCEEDED, ["once", "once"])


async def test_joined_call_waits_for_the_running_pod(make: Callable[..., LocalExecutor], sink: Sink) -> None:
    """Two concurrent run() calls of one pod in one process run it once and share the result."""
    ex = make()
    a, b = await asyncio.gather(*(ex.run(pod(sh("sleep 0.2; echo one")), on_ready=no_ready) for _ in range(2)))
    assert (a, sink.of("main")) == (b, ["one"])


_SERVER = """
import asyncio, sys
from pathlib import Path
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.local import LocalExecutor
from tests.workflows.test_local_executor import pod, sh

class Sink:
    def append(self, line):
        print(line.content, flush=True)

data = Path(sys.argv[1])
# Unisolated, so the pod's processes outlive this server (bwrap's --die-with-parent would end them).
ex = LocalExecutor(data_dir=data, artifacts=LocalArtifactStore(data / "a"), logs=Sink(), isolation="none")
asyncio.run(ex.run(pod(sh("echo started; sleep 100")), on_ready=print))
"""


async def test_pod_of_a_dead_server_is_reported_lost_and_its_processes_killed(
    make: Callable[..., LocalExecutor], tmp_path: Path
) -> None:
    """After a crash the pod is not run again: survivors are killed and the result is an Error."""
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert server.stdout is not None
        lines: list[bytes] = []
        while not lines or lines[-1] not in (b"started\n", b""):  # structlog's default also prints here
            lines.append(await asyncio.to_thread(server.stdout.readline))
        assert lines[-1] == b"started\n"
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
    ex = make("auto")
    assert alive(ex, pod()) != []
    r = await ex.run(pod(sh("echo must not run")), on_ready=no_ready)
    assert (r.phase, r.message) == (NodePhase.ERROR, LOST_MESSAGE)
    await until(lambda: alive(ex, pod()) == [], "survivors to die")


async def test_auto_isolation_uses_bwrap_when_it_works(make: Callable[..., LocalExecutor]) -> None:
    """auto picks bubblewrap here: the container cannot write the host filesystem."""
    works = await bwrap_works()
    r: PodResult = await make("auto").run(pod(sh("touch /usr/forbidden")), on_ready=no_ready)
    assert works == HAVE_BWRAP
    assert r.phase is (NodePhase.FAILED if works else NodePhase.SUCCEEDED)


class FakeFetcher:
    """An ArtifactFetcher writing a marker file, recording what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Path]] = []

    async def fetch_git(self, source: GitSource, *, dest: Path) -> None:
        self.calls.append((source.repo, dest))
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "README").write_text(f"cloned {source.repo}@{source.revision}\n")


async def test_git_and_http_inputs(make: Callable[..., LocalExecutor], tmp_path: Path) -> None:
    """git inputs go through the fetcher into the workspace; http inputs are downloaded (loopback)."""
    (served := tmp_path / "served").mkdir()
    (served / "file.txt").write_text("over http")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        fetcher = FakeFetcher()
        inputs = (
            InputArtifact(name="src", path="/src", git=GitSource(repo="https://example.test/r.git", revision="abc")),
            InputArtifact(name="web", path="/tmp/web.txt", http_url=f"http://127.0.0.1:{server.server_port}/file.txt"),
        )
        main = sh("cat README /tmp/web.txt", working_dir="/src")
        r = await make(fetcher=fetcher).run(pod(main, input_artifacts=inputs), on_ready=no_ready)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert (r.phase, r.result) == (NodePhase.SUCCEEDED, "cloned https://example.test/r.git@abc\nover http")
    assert [repo for repo, _ in fetcher.calls] == ["https://example.test/r.git"]
    r = await make().run(pod(main, name="nofetcher", input_artifacts=inputs[:1]), on_ready=no_ready)
    assert r.phase is NodePhase.ERROR and r.message is not None and "no git fetcher" in r.message


@needs_bwrap
@pytest.mark.parametrize(("network", "expected"), [("host", "connected"), ("none", "refused")], ids=["host", "none"])
async def test_network_none_cuts_the_host_loopback(
    make: Callable[..., LocalExecutor], network: str, expected: str
) -> None:
    """With network none the container has its own empty loopback."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        script = (
            f"import socket\ntry:\n socket.create_connection(('127.0.0.1', {port}), timeout=2); print('connected')\n"
            "except OSError:\n print('refused')\n"
        )
        main = Container(name="main", command=("python3", "-c", script))
        r = await make(network=network).run(pod(main), on_ready=no_ready)
    assert r.result == expected


@needs_bwrap
async def test_daemon_with_tcp_probe(make: Callable[..., LocalExecutor]) -> None:
    """A tcpSocket probe passes once the port accepts connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    main = Container(
        name="main",
        command=(
            "python3",
            "-c",
            f"import socket,time; s=socket.socket(); time.sleep(0.2); "
            f"s.bind(('127.0.0.1',{port})); s.listen(); time.sleep(100)",
        ),
        readiness_probe=Probe(tcp_port=port, period_seconds=0.05),
    )
    ex = make()
    p = pod(main, daemon=True)
    ready: list[str] = []
    task = asyncio.create_task(ex.run(p, on_ready=ready.append))
    await until(lambda: bool(ready), "readiness")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert alive(ex, p) == []


async def test_daemon_without_probe_is_ready_at_once_and_may_exit(make: Callable[..., LocalExecutor]) -> None:
    """No probe: ready right after start; a daemon that exits reports like any pod."""
    ready: list[str] = []
    r = await make().run(pod(sh("echo bye"), daemon=True), on_ready=ready.append)
    assert (ready, r.phase, r.result) == (["127.0.0.1"], NodePhase.SUCCEEDED, "bye")


async def test_relative_data_dir_works_under_isolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's default data dir is relative (./.gittrigger); bind sources must still resolve."""
    monkeypatch.chdir(tmp_path)
    sink = _RelSink()
    executor = LocalExecutor(data_dir=Path(".gittrigger"), artifacts=LocalArtifactStore(Path(".gittrigger/a")),
                             logs=sink)
    pod = PodRequest(node_id=NodeId("rel-1"), pod_name="rel-1", namespace="default", workflow_name="rel",
                     workflow_uid="u", template_name="t",
                     main=(Container(name="main", command=("sh", "-c", "echo ok > /tmp/x; cat /tmp/x")),))
    result = await executor.run(pod, on_ready=lambda ip: None)
    assert (result.phase, result.result) == (NodePhase.SUCCEEDED, "ok"), result.message


class _RelSink:
    def append(self, line: object) -> None:
        pass


async def test_unisolated_script_sources_stay_in_each_pods_workspace(make: Callable[..., LocalExecutor]) -> None:
    """Argo stages a script at /argo/staging/script; without a sandbox each pod keeps its own copy in
    its workspace (parallel pods never overwrite each other's source, nothing is written to /argo)."""
    executor = make("none")
    staged = "/argo/staging/script"

    def script_pod(name: str, n: int) -> PodRequest:
        main = Container(name="main", command=("sh",), args=(staged,))
        return pod(main, name=name, files=(File(path=staged, content=f"sleep 0.2; echo {n * n}\n".encode(),
                                                     mode=0o755),))

    before = os.path.exists(staged) and Path(staged).read_bytes()
    results = await asyncio.gather(*(executor.run(script_pod(f"s{n}", n), on_ready=no_ready) for n in (1, 2, 3)))
    assert [r.result for r in results] == ["1", "4", "9"]
    assert (os.path.exists(staged) and Path(staged).read_bytes()) == before
