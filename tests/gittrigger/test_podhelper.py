"""``gittrigger pod-init`` and ``pod-wait`` run as real subprocesses against a temporary run dir,
the real emissary, and a loopback server serving the artifact endpoint."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gittrigger.artifacttokens import ArtifactTokens
from gittrigger.assembly import Parts, assemble
from gittrigger.http.app import make_app
from gittrigger.settings import load_settings
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.base import OutputArtifact, OutputParameter
from workflows.executors.podplan import (
    PlanFile,
    PlanGit,
    PlanInput,
    PodPlan,
    outputs_env,
)

ROOT = Path(__file__).resolve().parents[2]
RESULT = "GITTRIGGER_RESULT "

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc for the emissary")


@pytest.fixture(scope="module")
def emissary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("emissary") / "gittrigger-emissary"
    source = str(ROOT / "images" / "emissary" / "emissary.c")
    if subprocess.run(["gcc", "-O2", "-static", "-o", str(out), source], capture_output=True).returncode != 0:
        subprocess.run(["gcc", "-O2", "-o", str(out), source], check=True, capture_output=True)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Server:
    url: str
    store: LocalArtifactStore
    tokens: ArtifactTokens
    uid: str  # of workflow ns/wf
    other_uid: str  # of workflow ns/other


@pytest.fixture
async def server(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[Server]:
    """gittrigger's app on a loopback port (data dir tmp/data) with workflows ns/wf and ns/other."""
    data = tmp_path / "data"
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(data)})
    parts: Parts
    async with assemble(settings, memory=True) as parts:
        uids = []
        for name in ("wf", "other"):
            created = await parts.store.create({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                                                "metadata": {"name": name, "namespace": "ns"},
                                                "spec": {"entrypoint": "main", "templates": [{"name": "main"}]}})
            uids.append(str(created["metadata"]["uid"]))
        test_server: TestServer = await aiohttp_server(make_app(settings, engine=parts.engine, store=parts.store))
        yield Server(url=str(test_server.make_url("")).rstrip("/"), store=LocalArtifactStore(data / "artifacts"),
                     tokens=ArtifactTokens.in_data_dir(data), uid=uids[0], other_uid=uids[1])


@dataclass(frozen=True, slots=True, kw_only=True)
class Done:
    code: int
    stdout: str
    stderr: str

    def report(self) -> dict[str, Any]:
        last = self.stdout.splitlines()[-1]
        assert last.startswith(RESULT), self.stdout
        return json.loads(last[len(RESULT):])  # type: ignore[no-any-return]


def helper_env(plan: PodPlan, run_dir: Path, *, token: str = "", emissary: Path | None = None) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"], "GITTRIGGER_POD": plan.to_env(), "GITTRIGGER_RUN_DIR": str(run_dir),
           "GITTRIGGER_ARTIFACT_TOKEN": token}
    if emissary is not None:
        env["GITTRIGGER_EMISSARY"] = str(emissary)
    return env


async def helper(command: str, env: Mapping[str, str]) -> Done:
    """Run ``gittrigger <command>`` as the helper image does, while this loop keeps serving."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gittrigger", command, env=dict(env),
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Done(code=proc.returncode, stdout=out.decode(), stderr=err.decode())


async def main_container(run_dir: Path, plan: PodPlan, script: str, *, name: str = "main", cwd: Path) -> int:
    """A main container as podspec writes it: the staged emissary running ``sh -c script``."""
    env = {"PATH": os.environ["PATH"], "GITTRIGGER_RUN_DIR": str(run_dir), "GITTRIGGER_CONTAINER": name,
           "GITTRIGGER_OUTPUTS": outputs_env(plan)}
    proc = await asyncio.create_subprocess_exec(str(run_dir / "emissary"), "--", "sh", "-c", script, env=env,
                                                cwd=cwd, stdout=subprocess.DEVNULL)
    return await asyncio.wait_for(proc.wait(), 60)


def tgz_of(name: str, files: Mapping[str, bytes]) -> bytes:
    """An Argo-layout archive: one top entry ``name`` (a directory holding ``files``)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        top = tarfile.TarInfo(name)
        top.type = tarfile.DIRTYPE
        top.mode = 0o755
        tar.addfile(top)
        for path, content in files.items():
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


async def test_round_trip_through_a_pod(server: Server, emissary: Path, tmp_path: Path) -> None:
    """pod-init stages, main (under the emissary) writes outputs, pod-wait uploads them and reports;
    a second pod's pod-init downloads those artifacts back to the same shape."""
    token = server.tokens.token_for(server.uid)
    work = tmp_path / "work"
    work.mkdir()
    plan = PodPlan(
        server_url=server.url,
        files=(PlanFile(path="/argo/staging/script", content=b"#!/bin/sh\necho hi\n", mode=0o755),),
        parameters=(OutputParameter(name="p", path=str(work / "p.txt")),
                    OutputParameter(name="absent", path=str(work / "none"))),
        artifacts=(
            OutputArtifact(name="tree", path=str(work / "tree"), key="ns/wf/pod-1/tree.tgz"),
            OutputArtifact(name="file", path=str(work / "f:1.txt"), key="ns/wf/pod-1/f.tgz", compression_level=1),
            OutputArtifact(name="plain", path=str(work / "plain"), key="ns/wf/pod-1/plain", archive_none=True),
            OutputArtifact(name="one", path=str(work / "one.bin"), key="shared/one.bin", archive_none=True),
            OutputArtifact(name="maybe", path=str(work / "maybe"), key="ns/wf/pod-1/maybe.tgz", optional=True),
        ),
    )
    run_dir = tmp_path / "run"
    init = await helper("pod-init", helper_env(plan, run_dir, token=token, emissary=emissary))
    assert init.code == 0, init.stderr
    assert (run_dir / "emissary").read_bytes() == emissary.read_bytes() and os.access(run_dir / "emissary", os.X_OK)
    assert (run_dir / "inputs" / "0").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (run_dir / "inputs" / "0").stat().st_mode & 0o777 == 0o755

    script = (f"mkdir -p {work}/tree/sub {work}/plain && echo deep > {work}/tree/sub/f && "
              f"printf 'value\\n\\n' > {work}/p.txt && printf colon > '{work}/f:1.txt' && "
              f"echo raw > {work}/plain/r && head -c 100000 /dev/urandom > {work}/one.bin && "
              "echo first && printf 'the result\\n'; exit 3")
    assert await main_container(run_dir, plan, script, cwd=work) == 3
    wait = await helper("pod-wait", helper_env(plan, run_dir, token=token))
    assert wait.code == 0, wait.stderr
    assert wait.report() == {
        "result": "first\nthe result",
        "exitCode": 3,
        "outputParameters": {"p": "value\n"},
        "outputArtifacts": {"tree": "ns/wf/pod-1/tree.tgz", "file": "ns/wf/pod-1/f.tgz", "plain": "ns/wf/pod-1/plain",
                            "one": "shared/one.bin"},
    }
    with tarfile.open(server.store.root / "ns/wf/pod-1/tree.tgz") as tar:
        assert sorted(tar.getnames()) == ["tree", "tree/sub", "tree/sub/f"]  # Argo's layout: the path's basename
    assert server.store.read_bytes("shared/one.bin") == (work / "one.bin").read_bytes()

    again = PodPlan(server_url=server.url, inputs=(
        PlanInput(name="tree", path="/in/tree", key="ns/wf/pod-1/tree.tgz"),
        PlanInput(name="file", path="/in/f", key="ns/wf/pod-1/f.tgz", mode=0o600),
        PlanInput(name="plain", path="/in/plain", key="ns/wf/pod-1/plain"),
        PlanInput(name="sub", path="/in/sub", key="ns/wf/pod-1/tree.tgz", sub_path="sub/f"),
        PlanInput(name="one", path="/in/one", key="shared/one.bin", archive_none=True),
        PlanInput(name="gone", path="/in/gone", key="ns/wf/pod-1/maybe.tgz", optional=True),
    ))
    run2 = tmp_path / "run2"
    init2 = await helper("pod-init", helper_env(again, run2, token=token, emissary=emissary))
    assert init2.code == 0, init2.stderr
    placed = run2 / "artifacts"
    assert (placed / "0" / "sub" / "f").read_text() == "deep\n"
    assert (placed / "1").read_text() == "colon" and (placed / "1").stat().st_mode & 0o777 == 0o600
    assert (placed / "2" / "r").read_text() == "raw\n"
    assert (placed / "3").read_text() == "deep\n"
    assert (placed / "4").read_bytes() == (work / "one.bin").read_bytes()
    assert not (placed / "5").exists()
    assert sorted(p.name for p in run2.iterdir()) == ["artifacts", "emissary", "outputs"]  # no staging left


async def test_init_places_raw_http_and_git_inputs(server: Server, emissary: Path, tmp_path: Path,
                                                   aiohttp_server: Any) -> None:
    """Raw data, an HTTP download and a git checkout (pygit2 over file://) land at artifacts/<i>."""
    async def data(request: web.Request) -> web.Response:
        return web.Response(body=b"over http")

    files = web.Application()
    files.router.add_get("/data.txt", data)
    http = await aiohttp_server(files)
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "t@example.com"], ["config", "user.name", "t"]):
        subprocess.run(["git", *args], cwd=upstream, check=True)
    (upstream / "README").write_text("from git\n")
    subprocess.run(["git", "add", "README"], cwd=upstream, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "one"], cwd=upstream, check=True)
    plan = PodPlan(server_url=server.url, inputs=(
        PlanInput(name="raw", path="/raw", raw_data="raw text", mode=0o640),
        PlanInput(name="http", path="/h", http_url=str(http.make_url("/data.txt"))),
        PlanInput(name="src", path="/src", git=PlanGit(repo=f"file://{upstream}", revision="main")),
        PlanInput(name="none", path="/n", optional=True),
    ))
    run_dir = tmp_path / "run"
    done = await helper("pod-init", helper_env(plan, run_dir, emissary=emissary))
    assert done.code == 0, done.stderr
    assert (run_dir / "artifacts" / "0").read_text() == "raw text"
    assert (run_dir / "artifacts" / "0").stat().st_mode & 0o777 == 0o640
    assert (run_dir / "artifacts" / "1").read_text() == "over http"
    assert (run_dir / "artifacts" / "2" / "README").read_text() == "from git\n"
    assert not (run_dir / "artifacts" / "3").exists()


@pytest.mark.parametrize(("case", "message"), [
    ("missing-key", "pod-init: failed to load artifacts: artifact in: artifact key 'ns/wf/nope.tgz' not found"),
    ("wrong-token", "pod-init: failed to load artifacts: artifact in: GET /api/v1/gittrigger/artifacts/ns/wf/x.tgz: "
                    "401 not an artifact token"),
    ("other-workflow", "pod-init: failed to load artifacts: artifact in: GET /api/v1/gittrigger/artifacts/ns/wf/x.tgz: "
                       "403 this token is not for workflow ns/wf"),
    ("no-server", "pod-init: failed to load artifacts: artifact in: cannot reach the server at http://127.0.0.1:1"),
    ("no-emissary", "pod-init: cannot stage the emissary from"),
], ids=["missing-key", "wrong-token", "other-workflow", "no-server", "no-emissary"])
async def test_init_failures_are_one_line(server: Server, emissary: Path, tmp_path: Path,
                                          case: str, message: str) -> None:
    """Each failure of pod-init exits 1 with one line on stderr naming what went wrong."""
    server.store.put_path("ns/wf/x.tgz", emissary)
    key = "ns/wf/nope.tgz" if case == "missing-key" else "ns/wf/x.tgz"
    url = "http://127.0.0.1:1" if case == "no-server" else server.url
    plan = PodPlan(server_url=url, inputs=(PlanInput(name="in", path="/in", key=key),))
    token = {"wrong-token": "not-ours", "other-workflow": server.tokens.token_for(server.other_uid)}.get(
        case, server.tokens.token_for(server.uid))
    binary = tmp_path / "absent" if case == "no-emissary" else emissary
    done = await helper("pod-init", helper_env(plan, tmp_path / "run", token=token, emissary=binary))
    assert done.code == 1
    assert done.stderr.startswith(message), done.stderr
    assert done.stderr.count("\n") == 1


async def test_wait_reports_a_missing_required_artifact_as_the_nodes_error(
        server: Server, emissary: Path, tmp_path: Path) -> None:
    """A successful main without its required artifact: exit 0, and the result line carries the error."""
    artifact = OutputArtifact(name="a", path=str(tmp_path / "a"), key="ns/wf/p/a")
    plan = PodPlan(server_url=server.url, artifacts=(artifact,))
    run_dir = tmp_path / "run"
    assert (await helper("pod-init", helper_env(plan, run_dir, emissary=emissary))).code == 0
    assert await main_container(run_dir, plan, "true", cwd=tmp_path) == 0
    done = await helper("pod-wait", helper_env(plan, run_dir, token=server.tokens.token_for(server.uid)))
    assert done.code == 0, done.stderr
    assert done.report()["error"] == "failed to save outputs: no such file or directory for artifact(s) a"
    assert done.report()["outputArtifacts"] == {}


@pytest.mark.parametrize(("token", "status"), [("not-ours", "401"), ("other", "403")], ids=["wrong", "other-workflow"])
async def test_wait_fails_when_the_upload_is_refused(server: Server, emissary: Path, tmp_path: Path,
                                                     token: str, status: str) -> None:
    """An upload refused by the server is the helper's failure: non-zero, the reason on stderr."""
    artifact = OutputArtifact(name="a", path=str(tmp_path / "a"), key="ns/wf/p/a")
    plan = PodPlan(server_url=server.url, artifacts=(artifact,))
    run_dir = tmp_path / "run"
    assert (await helper("pod-init", helper_env(plan, run_dir, emissary=emissary))).code == 0
    assert await main_container(run_dir, plan, f"echo x > {tmp_path}/a", cwd=tmp_path) == 0
    presented = server.tokens.token_for(server.other_uid) if token == "other" else token
    done = await helper("pod-wait", helper_env(plan, run_dir, token=presented))
    assert done.code == 1
    assert done.stderr.startswith(f"pod-wait: failed to save outputs: artifact a: PUT /api/v1/gittrigger/artifacts/"
                                  f"ns/wf/p/a: {status}"), done.stderr
    assert RESULT not in done.stdout
    assert not server.store.exists("ns/wf/p/a")


async def test_wait_waits_for_every_container_and_takes_the_result_containers(
        server: Server, emissary: Path, tmp_path: Path) -> None:
    """containerSet: the report comes once both exit codes exist; result and exit code are c1's."""
    plan = PodPlan(server_url=server.url, main_containers=("c0", "c1"), result_container="c1")
    run_dir = tmp_path / "run"
    assert (await helper("pod-init", helper_env(plan, run_dir, emissary=emissary))).code == 0
    wait = asyncio.ensure_future(helper("pod-wait", helper_env(plan, run_dir)))
    assert await main_container(run_dir, plan, "echo zero", name="c0", cwd=tmp_path) == 0
    await asyncio.sleep(0.5)
    assert not wait.done()  # c1 has not finished
    assert await main_container(run_dir, plan, "echo one; exit 2", name="c1", cwd=tmp_path) == 2
    done = await wait
    assert done.code == 0, done.stderr
    assert done.report() == {"result": "one", "exitCode": 2, "outputParameters": {}, "outputArtifacts": {}}


async def test_wait_gives_up_cleanly_on_sigterm(server: Server, tmp_path: Path) -> None:
    """SIGTERM while main still runs: pod-wait exits 143 with one line, and prints no result."""
    plan = PodPlan(server_url=server.url)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gittrigger", "pod-wait",
                                                env=helper_env(plan, run_dir), stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)
    for _ in range(600):  # until its SIGTERM handler is installed (the interpreter starts first)
        if _catches_sigterm(proc.pid):
            break
        await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 143
    assert err.decode() == "pod-wait: stopped by signal 15 before the main containers finished\n"
    assert RESULT not in out.decode()


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (the SigCgt mask in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


@pytest.mark.parametrize(("env", "message"), [
    ({}, "pod-wait: GITTRIGGER_POD is not set: this command runs inside a gittrigger pod\n"),
    ({"GITTRIGGER_POD": "{}"}, "pod-wait: GITTRIGGER_POD.version: must be 1 (helper and server versions differ?), "
                               "got None\n"),
], ids=["unset", "malformed"])
def test_bad_plan_is_one_line(env: dict[str, str], message: str) -> None:
    """Without a usable plan neither helper starts; the reason names the variable or field."""
    done = subprocess.run([sys.executable, "-m", "gittrigger", "pod-wait"], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], **env}, timeout=60)
    assert done.returncode == 1 and done.stderr == message
