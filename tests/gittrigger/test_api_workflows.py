"""Argo's WorkflowService over real HTTP (aiohttp's test server) on a real engine with real processes:
create/list/get with selectors and ``fields``, lint, submit from templates, and the actions retry,
resubmit, stop, terminate, suspend, resume and set. Responses are also parsed with Hera's models."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hera.workflows.models import Workflow as HeraWorkflow
from hera.workflows.models import WorkflowList as HeraWorkflowList

from gittrigger.assembly import Parts, assemble
from gittrigger.http.app import make_app
from gittrigger.http.argo import clean_fields, parse_label_selector
from gittrigger.runtime import load_manifests
from gittrigger.settings import load_settings
from gittrigger.triggers import StoreOps
from sensors import parse_sensor
from sensors.dispatcher import Dispatcher
from sensors.eventlog_memory import MemoryEventLog
from tests.sensors.eventkit import make_event, webhook
from workflows.rerun import LABEL_RESUBMITTED_FROM

Client = TestClient[Any, web.Application]
BASE = "/api/v1/workflows/default"

MANIFESTS = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: greet}
spec:
  entrypoint: main
  arguments: {parameters: [{name: who, value: world}]}
  templates:
  - name: main
    container: {image: alpine, command: [echo, "hello {{workflow.parameters.who}}"]}
  - name: other
    container: {image: alpine, command: [echo, other]}
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterWorkflowTemplate
metadata: {name: cluster-greet}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine, command: [echo, cluster]}
---
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly}
spec:
  schedule: "0 0 * * *"
  workflowMetadata: {labels: {team: night}}
  workflowSpec:
    entrypoint: main
    templates:
    - name: main
      container: {image: alpine, command: [echo, nightly]}
"""


def echo(name: str, labels: dict[str, str] | None = None, command: str = "true") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"entrypoint": "main",
                     "templates": [{"name": "main", "container": {"image": "alpine",
                                                                   "command": ["sh", "-c", command]}}]}}


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_ISOLATION": "none"})
    async with assemble(settings, memory=True) as built:
        manifests = tmp_path / "manifests"
        manifests.mkdir()
        (manifests / "all.yaml").write_text(MANIFESTS)
        await load_manifests(built, [manifests], namespace="default")
        yield built


@pytest.fixture
async def client(aiohttp_client: Any, parts: Parts, tmp_path: Path) -> Client:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_ISOLATION": "none"})
    app = make_app(settings, engine=parts.engine, store=parts.store, templates=parts.templates)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


async def call(client: Client, method: str, path: str, *, status: int = 200, **kwargs: Any) -> Any:
    resp = await client.request(method, path, **kwargs)
    body = await resp.json()
    assert resp.status == status, body
    return body


async def finished(parts: Parts, name: str) -> dict[str, Any]:
    return dict(await asyncio.wait_for(parts.engine.wait("default", name), 30))


def node(wf: dict[str, Any], display_name: str) -> dict[str, Any]:
    found = [n for n in wf["status"]["nodes"].values() if n["displayName"] == display_name]
    assert len(found) == 1, sorted(n["displayName"] for n in wf["status"]["nodes"].values())
    return dict(found[0])


async def until_node(client: Client, name: str, display_name: str, phase: str) -> dict[str, Any]:
    for _ in range(600):
        wf = await call(client, "GET", f"{BASE}/{name}")
        if any(n["displayName"] == display_name and n["phase"] == phase
               for n in (wf["status"].get("nodes") or {}).values()):
            return wf  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{display_name} never {phase}")


# -- create, get, list -------------------------------------------------------------------------


async def test_create_answers_running_and_fits_hera(client: Client, parts: Parts) -> None:
    created = await call(client, "POST", BASE, json={"workflow": echo("c1", command="sleep 0.3")})
    assert created["status"]["phase"] == "Running"
    got = await call(client, "GET", f"{BASE}/c1", params={"getOptions.resourceVersion": "1"})
    assert got["status"]["phase"] in ("Running", "Succeeded")
    HeraWorkflow.model_validate(created)
    done = await finished(parts, "c1")
    HeraWorkflow.model_validate(done)
    listed = await call(client, "GET", BASE)
    assert [w.metadata.name for w in HeraWorkflowList.model_validate(listed).items or ()] == ["c1"]
    dry = await call(client, "POST", BASE, json={"workflow": echo("c2"), "serverDryRun": True})
    assert dry["metadata"]["name"] == "c2"
    await call(client, "GET", f"{BASE}/c2", status=404)


@pytest.fixture
async def listed_runs(client: Client, parts: Parts) -> None:
    """Four finished runs: a (app=ci, tier=1), b (app=cd), c (app=ci, tier=2), d (no labels, fails)."""
    for name, labels, command in (("a", {"app": "ci", "tier": "1"}, "true"), ("b", {"app": "cd"}, "true"),
                                  ("c", {"app": "ci", "tier": "2"}, "true"), ("d", {}, "exit 1")):
        await call(client, "POST", BASE, json={"workflow": echo(name, labels, command)})
        await finished(parts, name)


@pytest.mark.parametrize(("query", "expected"), [
    ({}, ["d", "c", "b", "a"]),
    ({"listOptions.labelSelector": "app=ci"}, ["c", "a"]),
    ({"listOptions.labelSelector": "app==ci,tier=2"}, ["c"]),
    ({"listOptions.labelSelector": "app!=ci"}, ["d", "b"]),
    ({"listOptions.labelSelector": "tier"}, ["c", "a"]),
    ({"listOptions.labelSelector": "!tier"}, ["d", "b"]),
    ({"listOptions.labelSelector": "app in (cd, ci),tier notin (1)"}, ["c", "b"]),
    ({"listOptions.labelSelector": "app notin (ci)"}, ["d", "b"]),
    ({"listOptions.fieldSelector": "metadata.name=b"}, ["b"]),
    ({"listOptions.fieldSelector": "metadata.name!=b"}, ["d", "c", "a"]),
    ({"listOptions.fieldSelector": "metadata.namespace=default,status.phase=Failed"}, ["d"]),
    ({"listOptions.fieldSelector": "status.phase!=Failed"}, ["c", "b", "a"]),
    ({"listOptions.fieldSelector": "metadata.namespace=other"}, []),
], ids=["all", "equals", "double-equals-and", "not-equals", "exists", "not-exists", "in-notin", "notin",
        "name", "not-name", "namespace-phase", "not-phase", "other-namespace"])
async def test_list_selectors(client: Client, listed_runs: None, query: dict[str, str], expected: list[str]) -> None:
    listed = await call(client, "GET", BASE, params=query)
    assert [w["metadata"]["name"] for w in listed["items"]] == expected


async def test_list_pages_with_predicates(client: Client, listed_runs: None) -> None:
    """A filter applied here still pages exactly: each page holds ``limit`` matches until the last."""
    seen: list[str] = []
    params = {"listOptions.labelSelector": "!tier", "listOptions.limit": "1"}
    for _ in range(5):
        page = await call(client, "GET", BASE, params=params)
        seen += [w["metadata"]["name"] for w in page["items"]]
        if "continue" not in page["metadata"]:
            break
        params["listOptions.continue"] = page["metadata"]["continue"]
    assert seen == ["d", "b"]


async def test_list_fields(client: Client, listed_runs: None) -> None:
    only = await call(client, "GET", BASE, params={"fields": "metadata,items.metadata.name,items.status.phase",
                                                   "listOptions.limit": "2"})
    assert only["items"] == [{"metadata": {"name": "d"}, "status": {"phase": "Failed"}},
                             {"metadata": {"name": "c"}, "status": {"phase": "Succeeded"}}]
    assert "continue" in only["metadata"]
    without = await call(client, "GET", BASE, params={"fields": "-items.status.nodes,-items.spec"})
    assert all("nodes" not in w["status"] and "spec" not in w for w in without["items"])
    assert all(w["status"]["phase"] for w in without["items"])
    one = await call(client, "GET", f"{BASE}/a", params={"fields": "metadata.name,status.phase"})
    assert one == {"metadata": {"name": "a"}, "status": {"phase": "Succeeded"}}


@pytest.mark.parametrize(("query", "path"), [
    ({"listOptions.labelSelector": "a=(b"}, "listOptions.labelSelector"),
    ({"listOptions.fieldSelector": "spec.entrypoint=x"}, "listOptions.fieldSelector"),
    ({"listOptions.limit": "-1"}, "listOptions.limit"),
], ids=["label", "field", "limit"])
async def test_list_rejects(client: Client, query: dict[str, str], path: str) -> None:
    body = await call(client, "GET", BASE, params=query, status=400)
    assert body["code"] == 3 and body["message"].startswith(path)


@pytest.mark.parametrize(("value", "fields", "expected"), [
    ({"a": {"b": 1, "c": 2}, "d": 3}, "", {"a": {"b": 1, "c": 2}, "d": 3}),
    ({"a": {"b": 1, "c": 2}, "d": 3}, "a.b", {"a": {"b": 1}}),
    ({"a": {"b": 1, "c": 2}, "d": 3}, "-a.b,-d", {"a": {"c": 2}}),
    ({"items": [{"x": 1, "y": 2}, {"x": 3}]}, "items.x", {"items": [{"x": 1}, {"x": 3}]}),
    ({"a": {"b": {"c": 1}}}, "a", {"a": {"b": {"c": 1}}}),
], ids=["none", "include", "exclude", "through-lists", "whole-subtree"])
def test_clean_fields(value: Any, fields: str, expected: Any) -> None:
    assert clean_fields(value, fields) == expected


def test_label_selector_store_part() -> None:
    q = parse_label_selector("a=1,b!=2,c,!d,e in (x)")
    assert dict(q.options.labels or {}) == {"a": "1"} and dict(q.options.label_not_equal or {}) == {"b": "2"}
    assert tuple(q.options.label_exists) == ("c",) and len(q.predicates) == 2


# -- lint and submit ---------------------------------------------------------------------------


async def test_lint(client: Client) -> None:
    ok = await call(client, "POST", f"{BASE}/lint", json={"workflow": echo("l1")})
    assert ok["metadata"]["name"] == "l1" and "status" not in ok
    bad = echo("l2")
    bad["spec"]["entrypoint"] = "nope"
    bad["spec"]["templates"].append({"name": "dup", "steps": [[{"name": "s", "template": "missing"}]]})
    body = await call(client, "POST", f"{BASE}/lint", json={"workflow": bad}, status=400)
    assert "nope" in body["message"] and "missing" in body["message"]
    await call(client, "POST", f"{BASE}/lint", json={}, status=400)


async def test_submit_from_workflow_template(client: Client, parts: Parts) -> None:
    created = await call(client, "POST", f"{BASE}/submit", json={
        "resourceKind": "WorkflowTemplate", "resourceName": "greet",
        "submitOptions": {"parameters": ["who=argo"], "labels": "x=1,y=2", "generateName": "hi-"}})
    name = created["metadata"]["name"]
    assert name.startswith("hi-") and created["status"]["phase"] == "Running"
    assert created["metadata"]["labels"] == {"workflows.argoproj.io/workflow-template": "greet", "x": "1", "y": "2"}
    assert created["spec"]["workflowTemplateRef"] == {"name": "greet"}
    HeraWorkflow.model_validate(created)
    done = await finished(parts, name)
    assert done["status"]["phase"] == "Succeeded"
    lines = [line.content for _, line in await parts.store.read(namespace="default", workflow=name)]
    assert lines == ["hello argo"]


@pytest.mark.parametrize(("kind", "resource", "options", "label", "line"), [
    ("ClusterWorkflowTemplate", "cluster-greet", {}, ("workflows.argoproj.io/cluster-workflow-template",
                                                      "cluster-greet"), "cluster"),
    ("cronwf", "nightly", {}, ("workflows.argoproj.io/cron-workflow", "nightly"), "nightly"),
    ("wftmpl", "greet", {"entryPoint": "other", "name": "named"}, ("workflows.argoproj.io/workflow-template",
                                                                  "greet"), "other"),
], ids=["cluster-template", "cron-workflow", "entrypoint-and-name"])
async def test_submit_from(client: Client, parts: Parts, kind: str, resource: str, options: dict[str, Any],
                           label: tuple[str, str], line: str) -> None:
    created = await call(client, "POST", f"{BASE}/submit", json={
        "resourceKind": kind, "resourceName": resource, "submitOptions": options})
    assert created["metadata"]["labels"][label[0]] == label[1]
    name = created["metadata"]["name"]
    assert name == options.get("name", name)
    await finished(parts, name)
    assert [ln.content for _, ln in await parts.store.read(namespace="default", workflow=name)] == [line]


@pytest.mark.parametrize(("body", "status"), [
    ({"resourceKind": "WorkflowTemplate", "resourceName": "nope"}, 404),
    ({"resourceKind": "Pod", "resourceName": "greet"}, 400),
    ({"resourceKind": "WorkflowTemplate"}, 400),
    ({"resourceKind": "WorkflowTemplate", "resourceName": "greet", "submitOptions": {"parameters": ["x"]}}, 400),
    ({"resourceKind": "WorkflowTemplate", "resourceName": "greet", "submitOptions": {"labels": "novalue"}}, 400),
], ids=["unknown-template", "unknown-kind", "no-name", "bad-parameter", "bad-labels"])
async def test_submit_rejects(client: Client, body: dict[str, Any], status: int) -> None:
    await call(client, "POST", f"{BASE}/submit", json=body, status=status)


async def test_submit_server_dry_run(client: Client) -> None:
    dry = await call(client, "POST", f"{BASE}/submit", json={
        "resourceKind": "WorkflowTemplate", "resourceName": "greet", "submitOptions": {"serverDryRun": True}})
    assert dry["metadata"]["generateName"] == "greet-"
    assert (await call(client, "GET", BASE))["items"] == []


# -- actions -----------------------------------------------------------------------------------


def flaky_dag(flag: Path) -> dict[str, Any]:
    """a writes an output; b fails until ``flag`` exists; c uses a's output."""
    return {
        "metadata": {"name": "flaky"},
        "spec": {"entrypoint": "main", "templates": [
            {"name": "main", "dag": {"tasks": [
                {"name": "a", "template": "produce"},
                {"name": "b", "template": "check", "dependencies": ["a"]},
                {"name": "c", "template": "show", "dependencies": ["b"],
                 "arguments": {"parameters": [{"name": "v", "value": "{{tasks.a.outputs.parameters.v}}"}]}},
            ]}},
            {"name": "produce", "script": {"image": "alpine", "command": ["sh"],
                                           "source": "date +%s%N | tee /tmp/v"},
             "outputs": {"parameters": [{"name": "v", "valueFrom": {"path": "/tmp/v"}}]}},
            {"name": "check", "container": {"image": "alpine", "command": ["test", "-e", str(flag)]}},
            {"name": "show", "inputs": {"parameters": [{"name": "v"}]},
             "container": {"image": "alpine", "command": ["echo", "{{inputs.parameters.v}}"]}},
        ]},
    }


async def test_retry_reruns_only_the_failed_task(client: Client, parts: Parts, tmp_path: Path) -> None:
    flag = tmp_path / "ok"
    await call(client, "POST", BASE, json={"workflow": flaky_dag(flag)})
    failed = await finished(parts, "flaky")
    assert failed["status"]["phase"] == "Failed"
    a_before = node(failed, "a")
    flag.touch()
    retried = await call(client, "PUT", f"{BASE}/flaky/retry", json={})
    assert retried["status"]["phase"] == "Running"
    HeraWorkflow.model_validate(retried)
    done = await finished(parts, "flaky")
    assert done["status"]["phase"] == "Succeeded"
    a_after = node(done, "a")
    assert a_after["startedAt"] == a_before["startedAt"] and a_after["outputs"] == a_before["outputs"]
    value = a_before["outputs"]["parameters"][0]["value"]
    logs = [(ln.pod_name, ln.content) for _, ln in await parts.store.read(namespace="default", workflow="flaky")]
    assert [content for pod, content in logs if "-produce-" in pod] == [value]  # a ran once
    assert [content for pod, content in logs if "-show-" in pod] == [value]
    # a Succeeded run needs restartSuccessful and a nodeFieldSelector (Argo's rule) -> 400
    refused = await call(client, "PUT", f"{BASE}/flaky/retry", json={"restartSuccessful": True}, status=400)
    assert "nodeFieldSelector" in refused["message"]
    again = await call(client, "PUT", f"{BASE}/flaky/retry",
                       json={"restartSuccessful": True, "nodeFieldSelector": "displayName=c"})
    assert again["status"]["phase"] == "Running"
    await finished(parts, "flaky")
    await call(client, "PUT", f"{BASE}/nope/retry", json={}, status=404)


async def test_retry_of_a_running_workflow_is_400(client: Client, parts: Parts) -> None:
    await call(client, "POST", BASE, json={"workflow": echo("slow", command="sleep 30")})
    body = await call(client, "PUT", f"{BASE}/slow/retry", status=400)
    assert "Running" in body["message"]
    await call(client, "PUT", f"{BASE}/slow/terminate")
    assert (await finished(parts, "slow"))["status"]["phase"] == "Failed"


async def test_resubmit(client: Client, parts: Parts) -> None:
    await call(client, "POST", BASE, json={"workflow": echo("orig", {"app": "ci"})})
    await finished(parts, "orig")
    new = await call(client, "PUT", f"{BASE}/orig/resubmit", json={"memoized": False})
    assert new["metadata"]["name"].startswith("orig-")
    assert new["metadata"]["labels"][LABEL_RESUBMITTED_FROM] == "orig"
    HeraWorkflow.model_validate(new)
    assert (await finished(parts, new["metadata"]["name"]))["status"]["phase"] == "Succeeded"
    body = await call(client, "PUT", f"{BASE}/orig/resubmit", json={"memoized": True}, status=400)
    assert "Failed/Error" in body["message"]


EXIT_HANDLER = {
    "spec": {"entrypoint": "main", "onExit": "bye", "templates": [
        {"name": "main", "container": {"image": "alpine", "command": ["sleep", "30"]}},
        {"name": "bye", "container": {"image": "alpine", "command": ["echo", "bye"]}},
    ]},
}


@pytest.mark.parametrize(("action", "exit_ran"), [("stop", True), ("terminate", False)])
async def test_stop_runs_exit_handler_terminate_does_not(client: Client, parts: Parts, action: str,
                                                         exit_ran: bool) -> None:
    await call(client, "POST", BASE, json={"workflow": {"metadata": {"name": action}, **EXIT_HANDLER}})
    await until_node(client, action, action, "Running")
    answer = await call(client, "PUT", f"{BASE}/{action}/{action}", json={})
    assert answer["spec"]["shutdown"] == action.capitalize()
    HeraWorkflow.model_validate(answer)
    done = await finished(parts, action)
    assert done["status"]["phase"] == "Failed"
    names = {n["displayName"] for n in done["status"]["nodes"].values()}
    assert (f"{action}.onExit" in names) is exit_ran
    await call(client, "PUT", f"{BASE}/{action}/{action}", json={}, status=409)  # already finished


SUSPENDING: dict[str, Any] = {
    "spec": {"entrypoint": "main", "templates": [
        {"name": "main", "steps": [[{"name": "approve", "template": "approve"}],
                                   [{"name": "use", "template": "echo", "arguments": {"parameters": [
                                       {"name": "m", "value": "{{steps.approve.outputs.parameters.answer}}"}]}}]]},
        {"name": "approve", "suspend": {},
         "outputs": {"parameters": [{"name": "answer", "valueFrom": {"supplied": {}}}]}},
        {"name": "echo", "inputs": {"parameters": [{"name": "m"}]},
         "container": {"image": "alpine", "command": ["echo", "{{inputs.parameters.m}}"]}},
    ]},
}


async def test_set_on_a_suspend_node(client: Client, parts: Parts) -> None:
    await call(client, "POST", BASE, json={"workflow": {"metadata": {"name": "ask"}, **SUSPENDING}})
    await until_node(client, "ask", "approve", "Running")
    await call(client, "PUT", f"{BASE}/ask/set", status=400, json={
        "nodeFieldSelector": "displayName=nope", "phase": "Succeeded"})
    await call(client, "PUT", f"{BASE}/ask/set", status=400, json={
        "nodeFieldSelector": "displayName=approve", "phase": "Succeeded", "outputParameters": "[1]"})
    answer = await call(client, "PUT", f"{BASE}/ask/set", json={
        "nodeFieldSelector": "displayName=approve", "phase": "Succeeded", "message": "fine",
        "outputParameters": '{"answer": "yes"}'})
    assert node(answer, "approve")["phase"] == "Succeeded"
    HeraWorkflow.model_validate(answer)
    done = await finished(parts, "ask")
    assert done["status"]["phase"] == "Succeeded"
    assert node(done, "approve")["message"] == "fine"
    assert [ln.content for _, ln in await parts.store.read(namespace="default", workflow="ask")] == ["yes"]


async def test_stop_and_resume_with_node_selector(client: Client, parts: Parts) -> None:
    await call(client, "POST", BASE, json={"workflow": {"metadata": {"name": "deny"}, **SUSPENDING}})
    await until_node(client, "deny", "approve", "Running")
    await call(client, "PUT", f"{BASE}/deny/stop", json={"nodeFieldSelector": "displayName=approve",
                                                        "message": "no"})
    done = await finished(parts, "deny")
    assert done["status"]["phase"] == "Failed" and node(done, "approve")["message"] == "no"

    allow = copy.deepcopy(SUSPENDING)
    allow["spec"]["templates"][1]["outputs"]["parameters"][0]["valueFrom"]["default"] = "maybe"
    await call(client, "POST", BASE, json={"workflow": {"metadata": {"name": "allow"}, **allow}})
    await until_node(client, "allow", "approve", "Running")
    await call(client, "PUT", f"{BASE}/allow/resume", json={"nodeFieldSelector": "templateName=approve"})
    done = await finished(parts, "allow")
    assert done["status"]["phase"] == "Succeeded"
    assert [ln.content for _, ln in await parts.store.read(namespace="default", workflow="allow")] == ["maybe"]


async def test_suspend_and_resume(client: Client, parts: Parts, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    steps = {"metadata": {"name": "pausable"}, "spec": {"entrypoint": "main", "templates": [
        {"name": "main", "steps": [[{"name": "first", "template": "wait"}], [{"name": "second", "template": "hi"}]]},
        {"name": "wait", "container": {"image": "alpine", "command": ["sh", "-c", f"while [ ! -e {gate} ]; do "
                                                                                  "sleep 0.05; done"]}},
        {"name": "hi", "container": {"image": "alpine", "command": ["echo", "hi"]}},
    ]}}
    await call(client, "POST", BASE, json={"workflow": steps})
    await until_node(client, "pausable", "first", "Running")
    suspended = await call(client, "PUT", f"{BASE}/pausable/suspend")
    assert suspended["spec"]["suspend"] is True
    gate.touch()
    await until_node(client, "pausable", "first", "Succeeded")
    await asyncio.sleep(0.3)
    paused = await call(client, "GET", f"{BASE}/pausable")
    assert paused["status"]["phase"] == "Running"
    assert "second" not in {n["displayName"] for n in paused["status"]["nodes"].values()}
    resumed = await call(client, "PUT", f"{BASE}/pausable/resume", json={})
    assert "suspend" not in resumed["spec"]
    assert (await finished(parts, "pausable"))["status"]["phase"] == "Succeeded"


# -- the sensors' argoWorkflow operations, through StoreOps ------------------------------------


@pytest.mark.parametrize("operation", ["retry", "resubmit"])
async def test_sensor_operations_use_the_engine(parts: Parts, tmp_path: Path, operation: str) -> None:
    """An argoWorkflow trigger with operation retry/resubmit acts on the named run through StoreOps."""
    flag = tmp_path / "ok"
    await parts.engine.submit(flaky_dag(flag), namespace="default")
    assert (await finished(parts, "flaky"))["status"]["phase"] == "Failed"
    flag.touch()
    trigger = {"name": "again", "argoWorkflow": {"operation": operation, "source": {"resource": {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "flaky"}}}}}
    sensor = parse_sensor({"kind": "Sensor", "metadata": {"name": "ops"}, "spec": {
        "dependencies": [{"name": "push", "eventSourceName": "hooks", "eventName": "a"}],
        "triggers": [{"template": trigger}]}})
    elog = MemoryEventLog()
    stored, _ = await elog.append(make_event(webhook({}), name="a", event_id="e1"), source_kind="webhook",
                                  delivery_id=None, received_at=datetime.now(UTC))
    ops = StoreOps(engine=parts.engine, store=parts.store)
    await Dispatcher(log=elog, sensors=[sensor], submitter=parts.engine, ops=ops).drain()
    last = (await elog.get(stored.event.context.id)).audit[-1]
    assert last.kind == "submitted", last.detail
    target = str(last.detail["workflow"])
    assert (target == "flaky") is (operation == "retry")
    assert (await finished(parts, target))["status"]["phase"] == "Succeeded"


@pytest.mark.parametrize("body", [
    {}, {"workflow": []}, {"workflow": {}, "createOptions": [None]}, {"workflow": {}, "serverDryRun": "yes"},
    {"workflow": {}, "createOptions": {"dryRun": "All"}},
], ids=["no-workflow", "workflow-not-object", "options-not-object", "dry-run-not-bool", "dry-run-not-list"])
async def test_create_rejects(client: Client, body: dict[str, Any]) -> None:
    answer = await call(client, "POST", BASE, json=body, status=400)
    assert answer["code"] == 3


async def test_actions_on_unknown_or_finished_runs(client: Client, parts: Parts) -> None:
    for action in ("retry", "resubmit", "stop", "terminate", "suspend", "resume"):
        await call(client, "PUT", f"{BASE}/nope/{action}", status=404)
    await call(client, "PUT", f"{BASE}/nope/set", json={"nodeFieldSelector": "id=x", "phase": "Succeeded"},
               status=404)
    await call(client, "POST", BASE, json={"workflow": echo("over")})
    await finished(parts, "over")
    for action in ("stop", "terminate", "suspend", "resume"):
        await call(client, "PUT", f"{BASE}/over/{action}", status=409)
    await call(client, "PUT", f"{BASE}/over/retry", json={"restartSuccessful": "yes"}, status=400)
