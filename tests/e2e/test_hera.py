"""
End to end with Hera (Argo's Python SDK) against a real ``gittrigger serve`` subprocess (local
executor in bubblewrap, an admin bearer token): Hera-built workflows run to their expected
outputs, and Hera's ``WorkflowsService`` parses every answer into its own models.

Isolation is bwrap, not none: without isolation every script pod writes its source to the same
host path (``/argo/staging/script``), so a withItems fan-out of a script races (reported to the lead).
Template and CronWorkflow tests run once the server documents those routes
(:mod:`gittrigger.http.openapi` lists exactly the served routes, a test keeps it so).
"""

# No ``from __future__ import annotations``: Hera 7.1 reads script parameters' annotations as
# classes (``issubclass``), so they must not be strings.

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
from hera.workflows import (
    DAG,
    Container,
    CronWorkflow,
    Parameter,
    Task,
    Workflow,
    WorkflowsService,
    WorkflowTemplate,
    script,
)
from hera.workflows.models import (
    SubmitOpts,
    WorkflowList,
    WorkflowResubmitRequest,
    WorkflowRetryRequest,
    WorkflowStopRequest,
    WorkflowSubmitRequest,
)
from hera.workflows.models import Workflow as WorkflowModel

from gittrigger.http import openapi

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hera-admin-token-0123456789"
NS = "default"
FINISHED = ("Succeeded", "Failed", "Error")

pytestmark = [
    pytest.mark.timeout(60),
    # Hera 7.1's service serializes requests with pydantic v1's .json(): deprecated in pydantic 2, not ours.
    pytest.mark.filterwarnings("ignore:The `json` method is deprecated:pydantic.warnings.PydanticDeprecatedSince20"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkflowsService]:
    """Hera's WorkflowsService for a fresh ``gittrigger serve`` (empty manifest folder, admin token)."""
    tmp = tmp_path_factory.mktemp("hera")
    (tmp / "manifests").mkdir()
    port = _free_port()
    env = {**os.environ, "GITTRIGGER_ADMIN_TOKEN": TOKEN, "GITTRIGGER_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gittrigger", "serve", str(tmp / "manifests"), "--port", str(port),
         "--data-dir", str(tmp / "data"), "--isolation", "bwrap"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with WorkflowsService(host=f"http://127.0.0.1:{port}", token=TOKEN, namespace=NS) as svc:
            yield svc
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]


def served(method: str, path: str) -> bool:
    return method.lower() in openapi.document()["paths"].get(path, {})


def wait_for(service: WorkflowsService, name: str, done: Callable[[WorkflowModel], bool]) -> WorkflowModel:
    """Poll ``get_workflow`` (Hera's model each time) until ``done``; fails the test after 30 s."""
    deadline = time.monotonic() + 30
    while True:
        wf = service.get_workflow(name, namespace=NS)
        if done(wf) or time.monotonic() > deadline:
            return wf
        time.sleep(0.2)


def phase(wf: WorkflowModel) -> str | None:
    return wf.status.phase if wf.status is not None else None


def results(wf: WorkflowModel) -> dict[str, str]:
    """display name -> outputs.result of every Pod node."""
    assert wf.status is not None and wf.status.nodes is not None
    return {node.display_name or node.name or "": node.outputs.result or ""
            for node in wf.status.nodes.values() if node.type == "Pod" and node.outputs is not None}


@script()
def square(x: int) -> None:
    print(x * x)


@script()
def total(values: str) -> None:
    import json as j

    # Hera's preamble json-decodes the parameter: the aggregated results arrive as a list.
    items = values if isinstance(values, list) else j.loads(values)
    print(sum(int(v) for v in items))


@script()
def fail() -> None:
    raise SystemExit(3)


def test_dag_fan_out_and_script_output_with_create_wait(service: WorkflowsService) -> None:
    """withItems fans out; the aggregated results feed a script whose output is checked."""
    with Workflow(generate_name="hera-dag-", entrypoint="main", namespace=NS, workflows_service=service) as w, \
            DAG(name="main"):
        fan = cast(Task, square(name="square", with_items=[1, 2, 3], arguments={"x": "{{item}}"}))
        fan >> cast(Task, total(name="total", arguments={"values": "{{tasks.square.outputs.result}}"}))
    done = w.create(wait=True, poll_interval=1)
    assert isinstance(done, WorkflowModel)
    assert phase(done) == "Succeeded", done.status
    outputs = results(done)
    assert sorted(v for k, v in outputs.items() if k.startswith("square(")) == ["1", "4", "9"]
    assert outputs["total"] == "14"


@pytest.mark.skipif(not served("POST", "/api/v1/workflow-templates/{namespace}"),
                    reason="the WorkflowTemplate API is not served yet")
def test_workflow_template_created_and_submitted_with_parameters(service: WorkflowsService) -> None:
    with WorkflowTemplate(name="hera-greet", entrypoint="main", namespace=NS, workflows_service=service,
                          arguments=Parameter(name="who", value="world")) as t:
        Container(name="main", image="busybox", command=["echo"], args=["hello {{workflow.parameters.who}}"])
    created = t.create()
    assert created.metadata.name == "hera-greet"
    submitted = service.submit_workflow(WorkflowSubmitRequest(
        resource_kind="WorkflowTemplate", resource_name="hera-greet",
        submit_options=SubmitOpts(parameters=["who=hera"])), namespace=NS)
    assert submitted.metadata.name is not None
    done = wait_for(service, submitted.metadata.name, lambda wf: phase(wf) in FINISHED)
    assert phase(done) == "Succeeded", done.status
    assert list(results(done).values()) == ["hello hera"]


@pytest.mark.skipif(not served("POST", "/api/v1/cron-workflows/{namespace}"),
                    reason="the CronWorkflow API is not served yet")
def test_cron_workflow_created_and_listed(service: WorkflowsService) -> None:
    with CronWorkflow(name="hera-nightly", schedules=["0 3 * * *"], entrypoint="main", namespace=NS,
                      workflows_service=service) as cron:
        Container(name="main", image="busybox", command=["true"])
    assert cron.create().metadata.name == "hera-nightly"
    listed = service.list_cron_workflows(namespace=NS)
    assert "hera-nightly" in [c.metadata.name for c in listed.items or []]


def test_get_list_retry_resubmit_parse_into_heras_models(service: WorkflowsService) -> None:
    """A failing run: get/list parse; retry runs it again (and it fails again); resubmit makes a new run."""
    with Workflow(generate_name="hera-fails-", entrypoint="fail", namespace=NS, workflows_service=service,
                  labels={"suite": "hera-actions"}) as w:
        fail()
    created = w.create()
    name = created.metadata.name
    assert name is not None
    failed = wait_for(service, name, lambda wf: phase(wf) in FINISHED)
    assert phase(failed) == "Failed", failed.status

    listed = service.list_workflows(namespace=NS, label_selector="suite=hera-actions")
    assert isinstance(listed, WorkflowList)
    assert [item.metadata.name for item in listed.items or []] == [name]

    retried = service.retry_workflow(name, WorkflowRetryRequest(name=name, namespace=NS), namespace=NS)
    assert isinstance(retried, WorkflowModel) and retried.metadata.name == name
    assert phase(retried) == "Running"  # as Argo answers a retry: the run is going again
    again = wait_for(service, name, lambda wf: phase(wf) in FINISHED)
    assert phase(again) == "Failed"

    resubmitted = service.resubmit_workflow(name, WorkflowResubmitRequest(name=name, namespace=NS), namespace=NS)
    assert isinstance(resubmitted, WorkflowModel)
    assert resubmitted.metadata.name not in (None, name)
    new = wait_for(service, resubmitted.metadata.name or "", lambda wf: phase(wf) in FINISHED)
    assert phase(new) == "Failed"


def test_stop_parses_and_ends_a_running_workflow(service: WorkflowsService) -> None:
    with Workflow(generate_name="hera-long-", entrypoint="main", namespace=NS, workflows_service=service) as w:
        Container(name="main", image="busybox", command=["sleep", "30"])
    name = w.create().metadata.name
    assert name is not None
    wait_for(service, name, lambda wf: phase(wf) == "Running")
    stopped = service.stop_workflow(name, WorkflowStopRequest(name=name, namespace=NS), namespace=NS)
    assert isinstance(stopped, WorkflowModel) and stopped.metadata.name == name
    done = wait_for(service, name, lambda wf: phase(wf) in FINISHED)
    assert phase(done) == "Failed", done.status
