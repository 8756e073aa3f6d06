"""The argo-like client commands (:mod:`gittrigger.clicommands`, :mod:`gittrigger.client`).

Against a REAL server: the app of ``gittrigger serve`` on a loopback port, with a real engine whose
local executor runs short shell commands, and bearer-token auth on. The CLI runs as ``main([...])``
in a worker thread (it owns its own event loop, as it does from the console) while the server runs
in the test's loop; a couple of checks run ``python -m gittrigger`` as a subprocess. Pure helpers are
checked table-driven.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from structlog.testing import capture_logs

from gittrigger import display
from gittrigger.assembly import Parts, assemble
from gittrigger.cli import main
from gittrigger.clicommands import node_pod, parse_duration, with_arguments
from gittrigger.client import error_message
from gittrigger.http.app import make_app
from gittrigger.settings import load_settings
from workflows.model.ids import pod_name

TOKEN = "admin-secret-0123456789abcdef"
NS = "ci"


def script(name: str, source: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "container": {"image": "busybox", "command": ["sh", "-c", source]}, **extra}


def hello(name: str = "hello", *, source: str = "echo hello {{inputs.parameters.who}}") -> dict[str, Any]:
    """Steps ``say`` (echoes the ``who`` parameter) then ``done``."""
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"generateName": f"{name}-"},
        "spec": {"entrypoint": "main", "arguments": {"parameters": [{"name": "who", "value": "world"}]},
                 "templates": [
                     {"name": "main", "steps": [
                         [{"name": "say", "template": "echo",
                           "arguments": {"parameters": [{"name": "who", "value": "{{workflow.parameters.who}}"}]}}],
                         [{"name": "done", "template": "finish"}]]},
                     script("echo", source, inputs={"parameters": [{"name": "who"}]}),
                     script("finish", "echo line1; echo line2; echo line3"),
                 ]},
    }


def failing() -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "broken-"},
            "spec": {"entrypoint": "main", "templates": [script("main", "echo oops; exit 3")]}}


def gated(gate: Path) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "gated-"},
            "spec": {"entrypoint": "main", "templates": [
                script("main", f"echo waiting; while [ ! -e {gate} ]; do sleep 0.05; done; echo through")]}}


def write(path: Path, *docs: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(docs))
    return path


@dataclass(frozen=True, slots=True, kw_only=True)
class Server:
    url: str
    parts: Parts


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GITTRIGGER_TOKEN", TOKEN)
    monkeypatch.delenv("GITTRIGGER_SERVER", raising=False)
    monkeypatch.delenv("GITTRIGGER_NAMESPACE", raising=False)
    yield


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """``gittrigger serve``'s app on a loopback port, an admin token required."""
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path / "data"), "GITTRIGGER_ISOLATION": "none",
                                  "GITTRIGGER_ADMIN_TOKEN": TOKEN})
    # The server's log lines would land in the captured stdout the CLI's output is read from.
    with capture_logs():
        async with assemble(settings) as parts:
            app = make_app(settings, engine=parts.engine, store=parts.store, templates=parts.templates)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            try:
                yield Server(url=f"http://127.0.0.1:{runner.addresses[0][1]}", parts=parts)
            finally:
                await runner.cleanup()


@pytest.fixture
def cli(server: Server, capsys: pytest.CaptureFixture[str]) -> Any:
    """``await cli("get", "x")``: ``main([...])`` against the server, in a thread; exit code and output."""
    async def go(*argv: str, namespace: str | None = NS) -> Result:
        capsys.readouterr()
        args = [*argv, "--server", server.url, *(["-n", namespace] if namespace else [])]
        code = await asyncio.wait_for(asyncio.to_thread(main, args), 60)
        out, err = capsys.readouterr()
        return Result(code=code, out=out, err=err)
    return go


async def submitted(cli: Any, file: Path, *args: str) -> str:
    result = await cli("submit", str(file), "-o", "name", *args)
    assert result.code == 0, result.err
    return str(result.out.strip())


async def finished(server: Server, name: str) -> dict[str, Any]:
    return await asyncio.wait_for(server.parts.engine.wait(NS, name), 60)


# -- submit, get, list -----------------------------------------------------------------------------


async def test_submit_with_parameters_labels_and_entrypoint(cli: Any, server: Server, tmp_path: Path) -> None:
    """-p overrides a parameter, -l adds labels, -o name prints the generated name; get -o json shows them."""
    name = await submitted(cli, write(tmp_path / "wf.yaml", hello()), "-p", "who=cli", "-l", "team=a,tier=b")
    assert name.startswith("hello-")
    final = await finished(server, name)
    assert final["status"]["phase"] == "Succeeded"
    got = (await cli("get", name, "-o", "json")).json()
    assert got["spec"]["arguments"]["parameters"] == [{"name": "who", "value": "cli"}]
    assert {"team": "a", "tier": "b"}.items() <= got["metadata"]["labels"].items()
    logs = await cli("logs", name, "--node", "say")
    assert logs.out == "hello cli\n"


async def test_submit_watch_exits_like_run(cli: Any, tmp_path: Path) -> None:
    """--watch follows to the end: exit 0 with the tree for a success, 1 and the failed node for a failure."""
    ok = await cli("submit", str(write(tmp_path / "ok.yaml", hello())), "--watch")
    assert ok.code == 0, ok.err
    assert "Status:              Succeeded" in ok.out
    assert "✔ say" in ok.out and "STEP" in ok.out
    bad = await cli("submit", str(write(tmp_path / "bad.yaml", failing())), "--watch")
    assert bad.code == 1
    assert "Status:              Failed" in bad.out
    assert "exit code 3" in bad.out


async def test_get_prints_argo_summary_and_tree(cli: Any, server: Server, tmp_path: Path) -> None:
    """get: Name, Namespace, Status, Created/Started/Finished, Duration, Progress, Parameters, then the tree
    with phase glyphs, templates and pod names."""
    name = await submitted(cli, write(tmp_path / "wf.yaml", hello()))
    final = await finished(server, name)
    out = (await cli("get", name)).out
    for label in ("Name:", "Namespace:", "Status:", "Created:", "Started:", "Finished:", "Duration:",
                  "Progress:", "Parameters:"):
        assert f"\n{label}" in f"\n{out}", label
    assert f"Name:                {name}\n" in out and f"Namespace:           {NS}\n" in out
    assert "  who:               world" in out
    [say] = [n for n in final["status"]["nodes"].values() if n["displayName"] == "say"]
    [row] = [line for line in out.splitlines() if "✔ say" in line]
    assert "echo" in row and pod_name(name, say["name"], "echo") in row
    assert out.splitlines()[out.splitlines().index("") + 1].split() == ["STEP", "TEMPLATE", "PODNAME", "DURATION",
                                                                         "MESSAGE"]


async def test_get_yaml_and_name(cli: Any, server: Server, tmp_path: Path) -> None:
    name = await submitted(cli, write(tmp_path / "wf.yaml", hello()))
    await finished(server, name)
    assert yaml.safe_load((await cli("get", name, "-o", "yaml")).out)["metadata"]["name"] == name
    assert (await cli("get", name, "-o", "name")).out == f"{name}\n"


async def test_list_table_filters_and_outputs(cli: Any, server: Server, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """list: a NAME STATUS AGE DURATION PRIORITY MESSAGE table; --status, -l, -o name/json/wide."""
    good = await submitted(cli, write(tmp_path / "ok.yaml", hello()), "-l", "kind=good")
    bad = await submitted(cli, write(tmp_path / "bad.yaml", failing()))
    await finished(server, good)
    await finished(server, bad)
    table = (await cli("list")).out.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "AGE", "DURATION", "PRIORITY", "MESSAGE"]
    assert {line.split()[0]: line.split()[1] for line in table[1:]} == {good: "Succeeded", bad: "Failed"}
    assert (await cli("list", "--status", "Failed", "-o", "name")).out == f"{bad}\n"
    assert (await cli("list", "-l", "kind=good", "-o", "name")).out == f"{good}\n"
    assert {wf["metadata"]["name"] for wf in (await cli("list", "-o", "json")).json()} == {good, bad}
    wide = (await cli("list", "-o", "wide")).out.splitlines()
    assert wide[0].split()[-2:] == ["P/R/C", "PARAMETERS"]
    assert any(line.startswith(good) and "0/0/2" in line and "who=world" in line for line in wide)
    assert (await cli("list", namespace="elsewhere")).out == "No workflows found\n"
    assert (await cli("list", namespace=None)).out == "No workflows found\n"  # "default"
    monkeypatch.setenv("GITTRIGGER_NAMESPACE", NS)
    assert sorted((await cli("list", "-o", "name", namespace=None)).out.split()) == sorted([good, bad])


# -- logs and watch ---------------------------------------------------------------------------------


async def test_logs_prefix_tail_grep_and_pod(cli: Any, server: Server, tmp_path: Path) -> None:
    name = await submitted(cli, write(tmp_path / "wf.yaml", hello()))
    final = await finished(server, name)
    [done] = [n for n in final["status"]["nodes"].values() if n["displayName"] == "done"]
    pod = pod_name(name, done["name"], "finish")
    every = (await cli("logs", name)).out.splitlines()
    assert f"{pod}: line3" in every and any(line.endswith(": hello world") for line in every)
    assert (await cli("logs", name, pod)).out == "line1\nline2\nline3\n"
    assert (await cli("logs", name, "--node", "done", "--tail", "1")).out == "line3\n"
    assert (await cli("logs", name, "--grep", "line[12]", "--no-prefix")).out == "line1\nline2\n"
    assert (await cli("logs", name, "--since", "1h", "--grep", "hello", "--no-prefix")).out == "hello world\n"
    stamped = (await cli("logs", name, pod, "--timestamps", "--tail", "1")).out
    assert stamped.endswith(" line3\n") and stamped.startswith(str(datetime.now(UTC).year))
    assert (await cli("logs", name, "--since", "soon")).code == 2


async def test_logs_follow_and_watch_until_finished(cli: Any, server: Server, tmp_path: Path) -> None:
    """logs -f and watch keep going until the run ends; watch exits 0 with the final tree."""
    gate = tmp_path / "gate"
    name = await submitted(cli, write(tmp_path / "wf.yaml", gated(gate)))
    watching = asyncio.ensure_future(cli("watch", name))
    following = asyncio.ensure_future(gittrigger("logs", name, "-f", server=server))
    await asyncio.sleep(0.5)  # both are connected (if not, they still see the end: logs replay, watch re-gets)
    assert not watching.done() and not following.done()
    gate.touch()
    followed = await following
    assert followed.code == 0, followed.err
    assert followed.out == f"{name}: waiting\n{name}: through\n"
    watched = await watching
    assert watched.code == 0, watched.err
    assert "Status:              Succeeded" in watched.out
    assert f"✔ {name}" in watched.out


# -- actions ----------------------------------------------------------------------------------------


async def test_stop_and_terminate(cli: Any, server: Server, tmp_path: Path) -> None:
    """Waits on PUT /api/v1/workflows/{ns}/{name}/stop and /terminate."""
    names = [await submitted(cli, write(tmp_path / f"wf{i}.yaml", gated(tmp_path / "never"))) for i in range(2)]
    assert (await cli("stop", names[0], "--message", "enough")).out == f"workflow {names[0]} stopped\n"
    assert (await cli("terminate", names[1])).out == f"workflow {names[1]} terminated\n"
    for name in names:
        assert (await finished(server, name))["status"]["phase"] in ("Failed", "Error")


async def test_suspend_and_resume(cli: Any, server: Server, tmp_path: Path) -> None:
    """Waits on PUT .../suspend and .../resume."""
    gate = tmp_path / "gate"
    name = await submitted(cli, write(tmp_path / "wf.yaml", gated(gate)))
    assert (await cli("suspend", name)).out == f"workflow {name} suspended\n"
    for _ in range(100):  # the engine applies the edit on the run's own worker
        if (await server.parts.store.get(NS, name))["spec"].get("suspend") is True:
            break
        await asyncio.sleep(0.05)
    assert (await cli("get", name, "-o", "json")).json()["spec"].get("suspend") is True
    assert (await cli("resume", name)).out == f"workflow {name} resumed\n"
    gate.touch()
    assert (await finished(server, name))["status"]["phase"] == "Succeeded"


async def test_retry_and_resubmit(cli: Any, server: Server, tmp_path: Path) -> None:
    """Waits on PUT .../retry and .../resubmit: retry re-runs the failed run in place, resubmit makes a new one."""
    flag = tmp_path / "flag"
    manifest = failing()
    manifest["spec"]["templates"] = [script("main", f"[ -e {flag} ]")]
    name = await submitted(cli, write(tmp_path / "wf.yaml", manifest))
    assert (await finished(server, name))["status"]["phase"] == "Failed"
    flag.touch()
    retried = await cli("retry", name, "--watch")
    assert retried.code == 0, retried.err
    assert "Status:              Succeeded" in retried.out
    again = await cli("resubmit", name, "-o", "name")
    assert again.code == 0, again.err
    assert again.out.strip() != name
    assert (await finished(server, again.out.strip()))["status"]["phase"] == "Succeeded"


async def test_delete_names_and_all(cli: Any, server: Server, tmp_path: Path) -> None:
    names = [await submitted(cli, write(tmp_path / f"wf{i}.yaml", hello())) for i in range(3)]
    for name in names:
        await finished(server, name)
    assert (await cli("delete", names[0])).out == f"Workflow '{names[0]}' deleted\n"
    assert (await cli("delete", "--all")).code == 0
    assert (await cli("list", "-o", "name")).out == ""


# -- templates and cron -----------------------------------------------------------------------------


async def test_templates_create_list_get_delete_and_submit_from(cli: Any, server: Server, tmp_path: Path) -> None:
    """Waits on /api/v1/workflow-templates/{ns}[/{name}]."""
    template = {**hello(), "kind": "WorkflowTemplate", "metadata": {"name": "greeter"}}
    created = await cli("template", "create", str(write(tmp_path / "t.yaml", template)))
    assert created.code == 0, created.err
    assert "Name:                greeter" in created.out
    assert (await cli("template", "list", "-o", "name")).out == "greeter\n"
    assert (await cli("template", "get", "greeter", "-o", "json")).json()["spec"]["entrypoint"] == "main"
    run = await cli("submit", "--from", "workflowtemplate/greeter", "-p", "who=ref", "--watch")
    assert run.code == 0, run.err
    assert (await cli("template", "delete", "greeter")).out == "WorkflowTemplate 'greeter' deleted\n"
    assert (await cli("template", "get", "greeter")).code == 1


async def test_cron_create_list_suspend_resume_delete(cli: Any, tmp_path: Path) -> None:
    """Waits on /api/v1/cron-workflows/{ns}[/{name}[/suspend|resume]]."""
    cron = {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 3 * * *", "workflowSpec": hello()["spec"]}}
    assert (await cli("cron", "create", str(write(tmp_path / "c.yaml", cron)))).code == 0
    table = (await cli("cron", "list")).out.splitlines()
    assert table[0].split()[:2] == ["NAME", "AGE"] and table[1].startswith("nightly")
    assert (await cli("cron", "suspend", "nightly")).out == "CronWorkflow 'nightly' suspended\n"
    assert (await cli("cron", "get", "nightly", "-o", "json")).json()["spec"]["suspend"] is True
    assert (await cli("cron", "resume", "nightly")).code == 0
    assert "Schedule:            0 3 * * *" in (await cli("cron", "get", "nightly")).out
    assert (await cli("cron", "delete", "nightly")).code == 0
    assert (await cli("cron", "list", "-o", "name")).out == ""


# -- errors -----------------------------------------------------------------------------------------


async def test_server_errors_are_one_line(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's message on stderr, exit 1, no traceback: not found, rejected spec, wrong token."""
    missing = await cli("get", "nope")
    assert missing.code == 1 and missing.out == ""
    assert missing.err.count("\n") == 1 and missing.err.startswith("gittrigger get: ") and "nope" in missing.err
    invalid = hello()
    invalid["spec"]["entrypoint"] = "absent"
    rejected = await cli("submit", str(write(tmp_path / "bad.yaml", invalid)))
    assert rejected.code == 1 and "absent" in rejected.err and rejected.err.count("\n") == 1
    grep = await cli("logs", "nope", "--grep", "[")
    assert grep.code == 1 and grep.err.count("\n") == 1
    monkeypatch.setenv("GITTRIGGER_TOKEN", f"Bearer {TOKEN}")  # ARGO_TOKEN's form is sent as is
    assert (await cli("list")).code == 0
    monkeypatch.setenv("GITTRIGGER_TOKEN", "wrong-token-0123456789")
    denied = await cli("list")
    assert denied.code == 1 and denied.err.count("\n") == 1 and "Traceback" not in denied.err


async def test_usage_errors_exit_2(cli: Any, tmp_path: Path) -> None:
    template = {**hello(), "kind": "WorkflowTemplate", "metadata": {"name": "t"}}
    assert (await cli("submit", str(write(tmp_path / "t.yaml", template)))).code == 2
    assert (await cli("submit", str(tmp_path / "absent.yaml"))).code == 2
    assert (await cli("submit", str(write(tmp_path / "wf.yaml", hello())), "-p", "novalue")).code == 2
    assert (await cli("delete")).code == 2
    with pytest.raises(SystemExit) as exited:
        main(["get"])
    assert exited.value.code == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["list", "--server", url]) == 1
    assert capsys.readouterr().err == f"gittrigger list: cannot reach server at {url}: connection refused\n"


# -- end to end, as subprocesses --------------------------------------------------------------------


async def gittrigger(*args: str, server: Server) -> Result:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gittrigger", *args, "-n", NS, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "GITTRIGGER_SERVER": server.url})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Result(code=proc.returncode, out=out.decode(), err=err.decode())


async def test_subprocess_submit_watch_then_get(server: Server, tmp_path: Path) -> None:
    """The console path: GITTRIGGER_SERVER and GITTRIGGER_TOKEN from the environment, the tree on stdout."""
    result = await gittrigger("submit", str(write(tmp_path / "wf.yaml", hello())), "--watch", server=server)
    assert result.code == 0, result.err
    assert "✔ done" in result.out and "\x1b[" not in result.out
    name = result.out.split("Name:")[-1].split()[0]
    got = await gittrigger("get", name, "-o", "json", server=server)
    assert json.loads(got.out)["status"]["phase"] == "Succeeded"
    bad = await gittrigger("get", "absent", server=server)
    assert bad.code == 1 and "Traceback" not in bad.err and bad.err.count("\n") == 1


# -- pure helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "entrypoint", "labels", "expected_params", "expected_entry"), [
    ({}, None, {}, [{"name": "who", "value": "world"}], "main"),
    ({"who": "x"}, None, {}, [{"name": "who", "value": "x"}], "main"),
    ({"new": "y"}, "other", {"a": "b"}, [{"name": "who", "value": "world"}, {"name": "new", "value": "y"}], "other"),
], ids=["unchanged", "override", "add-entry-labels"])
def test_with_arguments(params: dict[str, str], entrypoint: str | None, labels: dict[str, str],
                        expected_params: list[dict[str, str]], expected_entry: str) -> None:
    """Parameters are overridden in place or appended; the manifest passed in is not modified."""
    original = hello()
    out = with_arguments(original, parameters=params, entrypoint=entrypoint, labels=labels, generate_name=None)
    assert out["spec"]["arguments"]["parameters"] == expected_params
    assert out["spec"]["entrypoint"] == expected_entry
    assert out["metadata"].get("labels", {}) == labels
    assert original == hello()


@pytest.mark.parametrize(("status", "body", "expected"), [
    (404, b'{"code": 5, "message": "workflow x not found"}', ("workflow x not found", 5)),
    (500, b'{"error": {"code": 13, "message": "boom"}}', ("boom", 13)),
    (502, b"<html>bad gateway</html>", ("502 Bad Gateway: <html>bad gateway</html>", None)),
    (503, b"", ("503 Bad Gateway", None)),
], ids=["argo", "stream-error", "html", "empty"])
def test_error_message(status: int, body: bytes, expected: tuple[str, int | None]) -> None:
    assert error_message(status=status, reason="Bad Gateway", body=body) == expected


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("0s", 0)],
                         ids=["seconds", "minutes", "combined", "zero"])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m5", "1d", "5m junk"], ids=["empty", "bare", "reversed", "days", "junk"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(Exception, match="expected a duration"):
        parse_duration(text)


def test_node_pod_names_pod_nodes_only() -> None:
    wf = {"metadata": {"name": "w"}, "status": {"nodes": {
        "w": {"name": "w", "displayName": "w", "type": "Steps"},
        "a": {"name": "w[0].say", "displayName": "say", "type": "Pod", "templateName": "echo"}}}}
    assert node_pod(wf, "say") == pod_name("w", "w[0].say", "echo") == node_pod(wf, "w[0].say")
    with pytest.raises(Exception, match="no pod node"):
        node_pod(wf, "w")


def test_workflow_table_columns() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    wf = {"metadata": {"name": "w", "creationTimestamp": "2026-01-01T11:58:00Z"}, "spec": {"suspend": True},
          "status": {"phase": "Running", "startedAt": "2026-01-01T11:58:00Z", "message": "waiting"}}
    assert display.workflow_table([wf], now=now) == [
        "NAME   STATUS                AGE   DURATION   PRIORITY   MESSAGE",
        "w      Running (Suspended)   2m    2m 0s      0          waiting",
    ]


def test_node_table_and_cron_table() -> None:
    """get's tree carries templates and pod names (Pod nodes only); cron list shows schedule and suspension."""
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    wf = {"metadata": {"name": "w"}, "status": {"nodes": {
        "w": {"id": "w", "name": "w", "displayName": "w", "type": "Steps", "phase": "Running", "templateName": "main",
              "children": ["g"]},
        "g": {"id": "g", "name": "w[0]", "displayName": "[0]", "type": "StepGroup", "phase": "Running",
              "boundaryID": "w", "children": ["a"]},
        "a": {"id": "a", "name": "w[0].say", "displayName": "say", "type": "Pod", "phase": "Failed",
              "templateName": "echo", "boundaryID": "w", "message": "exit code 1"}}}}
    assert display.node_table(wf, now=now) == [
        "STEP        TEMPLATE   PODNAME             DURATION   MESSAGE",
        " ● w        main",
        f" └─ ✖ say   echo       {pod_name('w', 'w[0].say', 'echo')}              exit code 1",
    ]
    cron = {"metadata": {"name": "nightly", "creationTimestamp": "2025-12-31T12:00:00Z"},
            "spec": {"schedule": "0 3 * * *", "suspend": True}}
    assert display.cron_table([cron], now=now) == [
        "NAME      AGE   LAST RUN   SCHEDULE    TIMEZONE   SUSPENDED",
        "nightly   1d    N/A        0 3 * * *              true",
    ]
