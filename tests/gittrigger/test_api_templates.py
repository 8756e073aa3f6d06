"""Argo's WorkflowTemplate, ClusterWorkflowTemplate and CronWorkflow services over real HTTP on a real
engine: CRUD, lint with field paths, 404/409, label selectors, the engine's template getter kept in
step (a templateRef resolves right after create and fails after delete), cron suspend/resume, and a
CronWorkflow created over the API that the running scheduler fires without a restart. Responses are
parsed with Hera's models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hera.workflows.models import ClusterWorkflowTemplate as HeraClusterTemplate
from hera.workflows.models import ClusterWorkflowTemplateList as HeraClusterTemplateList
from hera.workflows.models import CronWorkflow as HeraCronWorkflow
from hera.workflows.models import CronWorkflowList as HeraCronWorkflowList
from hera.workflows.models import WorkflowTemplate as HeraTemplate
from hera.workflows.models import WorkflowTemplateList as HeraTemplateList

from gittrigger.assembly import Parts, assemble
from gittrigger.cronworkflows import LABEL_CRON_WORKFLOW, run_cron_workflows
from gittrigger.http.app import make_app
from gittrigger.http.templates import CRON_SCHEDULER
from gittrigger.settings import load_settings
from workflows.store.base import ListOptions

Client = TestClient[Any, web.Application]
WFT = "/api/v1/workflow-templates/ci"
CWFT = "/api/v1/cluster-workflow-templates"
CRON = "/api/v1/cron-workflows/ci"


def template(name: str = "greet", *, kind: str = "WorkflowTemplate", word: str = "hello",
             labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": kind,
            "metadata": {"name": name, "labels": labels or {"team": "a"}},
            "spec": {"entrypoint": "main", "templates": [
                {"name": "main", "container": {"image": "busybox", "command": ["echo", word]}}]}}


def cron(name: str = "nightly", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"schedules": ["* * * * *"], **spec, "workflowSpec": {
                "entrypoint": "main",
                "templates": [{"name": "main", "container": {"image": "busybox", "command": ["echo", "hi"]}}]}}}


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_ISOLATION": "none"})
    async with assemble(settings, memory=True) as built:
        yield built


def app_for(parts: Parts, tmp_path: Path) -> web.Application:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path)})
    return make_app(settings, engine=parts.engine, store=parts.store, templates=parts.templates)


@pytest.fixture
async def client(aiohttp_client: Any, parts: Parts, tmp_path: Path) -> Client:
    return await aiohttp_client(app_for(parts, tmp_path))  # type: ignore[no-any-return]


async def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json()


# -- WorkflowTemplates -------------------------------------------------------------------------


async def test_workflow_template_crud(client: Client) -> None:
    """Create, conflict, get, list by label, update, delete, then 404s; every answer parses with Hera."""
    created = await ok(await client.post(WFT, json={"template": template()}))
    HeraTemplate.model_validate(created)
    assert created["metadata"]["namespace"] == "ci"
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    again = await client.post(WFT, json={"template": template()})
    assert again.status == 409
    assert (await again.json())["code"] == 6

    got = await ok(await client.get(f"{WFT}/greet"))
    assert got["spec"] == created["spec"]
    await ok(await client.post(WFT, json={"template": template("other", labels={"team": "b"})}))
    listed = await ok(await client.get(WFT))
    HeraTemplateList.model_validate(listed)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["greet", "other"]
    selected = await ok(await client.get(WFT, params={"listOptions.labelSelector": "team=b"}))
    assert [i["metadata"]["name"] for i in selected["items"]] == ["other"]
    assert (await ok(await client.get("/api/v1/workflow-templates/elsewhere")))["items"] == []

    updated = await ok(await client.put(f"{WFT}/greet", json={"template": template(word="bonjour")}))
    assert updated["spec"]["templates"][0]["container"]["command"] == ["echo", "bonjour"]
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    mismatch = await client.put(f"{WFT}/greet", json={"template": template("renamed")})
    assert mismatch.status == 400
    assert (await client.put(f"{WFT}/absent", json={"template": template("absent")})).status == 404

    assert await ok(await client.delete(f"{WFT}/greet")) == {}
    assert (await client.get(f"{WFT}/greet")).status == 404
    assert (await client.delete(f"{WFT}/greet")).status == 404


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda t: t["spec"]["templates"][0].update(steps=[[{"name": "s", "template": "nope"}]]),
     "template.spec.templates[0]"),
    (lambda t: t["spec"].update(entrypoint="absent"), "template.spec.entrypoint"),
    (lambda t: t.update(kind="Workflow"), "template.kind"),
    (lambda t: t["metadata"].pop("name"), "template.metadata.name"),
    (lambda t: t["spec"].update(templates="x"), "template.spec.templates"),
], ids=["unknown-step-template", "unknown-entrypoint", "wrong-kind", "no-name", "templates-not-a-list"])
async def test_invalid_templates_are_400_naming_the_field(client: Client, mutate: Any, path: str) -> None:
    """create and lint refuse the same way, naming the field; nothing is stored."""
    body = template()
    mutate(body)
    for url in (WFT, f"{WFT}/lint"):
        resp = await client.post(url, json={"template": body})
        assert resp.status == 400, await resp.text()
        assert path in (await resp.json())["message"]
    assert (await ok(await client.get(WFT)))["items"] == []


async def test_lint_and_dry_run_store_nothing(client: Client) -> None:
    """lint answers the object; createOptions.dryRun validates without storing."""
    linted = await ok(await client.post(f"{WFT}/lint", json={"template": template()}))
    assert linted["metadata"]["name"] == "greet"
    dry = await ok(await client.post(WFT, json={"template": template(), "createOptions": {"dryRun": ["All"]}}))
    assert dry["metadata"]["name"] == "greet"
    assert (await client.get(f"{WFT}/greet")).status == 404


async def test_template_getter_follows_the_api(client: Client, parts: Parts) -> None:
    """A workflowTemplateRef resolves right after create, sees the update, and fails after delete."""
    await ok(await client.post(WFT, json={"template": template()}))
    ref = {"metadata": {"generateName": "use-"}, "spec": {"workflowTemplateRef": {"name": "greet"}}}
    run = await ok(await client.post("/api/v1/workflows/ci", json={"workflow": ref}))
    final = await asyncio.wait_for(parts.engine.wait("ci", run["metadata"]["name"]), 30)
    assert final["status"]["phase"] == "Succeeded"
    await ok(await client.put(f"{WFT}/greet", json={"template": template(word="updated")}))
    updated = parts.templates.get("WorkflowTemplate", "ci", "greet")
    assert updated.spec.templates[0].raw["container"]["command"] == ["echo", "updated"]
    await ok(await client.delete(f"{WFT}/greet"))
    refused = await client.post("/api/v1/workflows/ci", json={"workflow": ref})
    assert refused.status in (400, 404)


async def test_template_referring_to_itself_is_valid(client: Client) -> None:
    """A template whose step calls its own other template by templateRef validates against itself."""
    body = template()
    body["spec"]["templates"].append({"name": "outer", "steps": [[{"name": "s", "templateRef": {
        "name": "greet", "template": "main"}}]]})
    await ok(await client.post(WFT, json={"template": body}))


# -- ClusterWorkflowTemplates ------------------------------------------------------------------


async def test_cluster_workflow_template_crud_and_cluster_scope_ref(client: Client, parts: Parts) -> None:
    """Cluster-scoped: no namespace stored; templateRef with clusterScope resolves from any namespace."""
    body = template("shared", kind="ClusterWorkflowTemplate")
    created = await ok(await client.post(CWFT, json={"template": body}))
    HeraClusterTemplate.model_validate(created)
    assert "namespace" not in created["metadata"]
    assert (await client.post(CWFT, json={"template": body})).status == 409
    HeraClusterTemplateList.model_validate(await ok(await client.get(CWFT)))
    await ok(await client.get(f"{CWFT}/shared"))
    wf = {"metadata": {"generateName": "x-"}, "spec": {"entrypoint": "go", "templates": [
        {"name": "go", "steps": [[{"name": "s", "templateRef": {"name": "shared", "template": "main",
                                                                 "clusterScope": True}}]]}]}}
    run = await ok(await client.post("/api/v1/workflows/elsewhere", json={"workflow": wf}))
    final = await asyncio.wait_for(parts.engine.wait("elsewhere", run["metadata"]["name"]), 30)
    assert final["status"]["phase"] == "Succeeded"
    await ok(await client.put(f"{CWFT}/shared", json={"template": template("shared", kind="ClusterWorkflowTemplate",
                                                                           word="v2")}))
    await ok(await client.post(f"{CWFT}/lint", json={"template": body}))
    await ok(await client.delete(f"{CWFT}/shared"))
    assert (await client.get(f"{CWFT}/shared")).status == 404
    assert (await client.post("/api/v1/workflows/elsewhere", json={"workflow": wf})).status in (400, 404)


# -- CronWorkflows -----------------------------------------------------------------------------


async def test_cron_workflow_crud_suspend_resume(client: Client) -> None:
    """Create answers Argo's status shape; suspend/resume flip spec.suspend; update keeps the status."""
    created = await ok(await client.post(CRON, json={"cronWorkflow": cron()}))
    HeraCronWorkflow.model_validate(created)
    assert created["kind"] == "CronWorkflow" and created["metadata"]["namespace"] == "ci"
    assert created["status"] == {"active": [], "conditions": [], "succeeded": 0, "failed": 0, "phase": "Active"}
    assert (await client.post(CRON, json={"cronWorkflow": cron()})).status == 409

    suspended = await ok(await client.put(f"{CRON}/nightly/suspend", json={"namespace": "ci", "name": "nightly"}))
    assert suspended["spec"]["suspend"] is True
    resumed = await ok(await client.put(f"{CRON}/nightly/resume", json={}))
    assert resumed["spec"]["suspend"] is False
    assert (await client.put(f"{CRON}/absent/suspend")).status == 404

    listed = await ok(await client.get(CRON))
    HeraCronWorkflowList.model_validate(listed)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["nightly"]

    sent = cron(concurrencyPolicy="Forbid")
    sent["status"] = {"succeeded": 99}  # a client cannot write the scheduler's status
    updated = await ok(await client.put(f"{CRON}/nightly", json={"cronWorkflow": sent}))
    assert updated["spec"]["concurrencyPolicy"] == "Forbid"
    assert updated["status"]["succeeded"] == 0
    HeraCronWorkflow.model_validate(await ok(await client.get(f"{CRON}/nightly")))
    await ok(await client.delete(f"{CRON}/nightly"))
    assert (await client.get(f"{CRON}/nightly")).status == 404


@pytest.mark.parametrize(("spec", "path"), [
    ({"schedules": ["every minute"]}, "cronWorkflow.spec.schedules[0]"),
    ({"concurrencyPolicy": "Sometimes"}, "cronWorkflow.spec.concurrencyPolicy"),
    ({"timezone": "Nowhere/Land"}, "cronWorkflow.spec.timezone"),
], ids=["schedule", "policy", "timezone"])
async def test_invalid_cron_fields_are_400(client: Client, spec: dict[str, Any], path: str) -> None:
    """The cron's own fields are checked on create and lint, each problem naming its path."""
    for url in (CRON, f"{CRON}/lint"):
        resp = await client.post(url, json={"cronWorkflow": cron(**spec)})
        assert resp.status == 400, await resp.text()
        assert path in (await resp.json())["message"]


async def test_invalid_cron_workflow_spec_is_400(client: Client) -> None:
    """Problems in the wrapped workflowSpec are named under cronWorkflow.spec.workflowSpec."""
    body = cron()
    body["spec"]["workflowSpec"]["entrypoint"] = "absent"
    resp = await client.post(CRON, json={"cronWorkflow": body})
    assert resp.status == 400
    assert "cronWorkflow.spec.workflowSpec.entrypoint" in (await resp.json())["message"]


async def test_cron_created_over_the_api_fires_without_restart(aiohttp_client: Any, parts: Parts,
                                                               tmp_path: Path) -> None:
    """The running scheduler is notified by the create and fires the next tick; a delete stops it."""
    now = [datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC)]
    ticked = asyncio.Event()

    async def sleep(seconds: float) -> None:
        await ticked.wait()  # the clock moves once; after that, passes only recheck it
        await asyncio.sleep(0.01)

    async with run_cron_workflows(store=parts.store, engine=parts.engine, clock=lambda: now[0],
                                  sleep=sleep) as scheduler:
        app = app_for(parts, tmp_path)
        app[CRON_SCHEDULER] = scheduler
        client: Client = await aiohttp_client(app)
        await ok(await client.post(CRON, json={"cronWorkflow": cron()}))
        await asyncio.sleep(0.05)  # the notified pass sees it at 00:00:30
        now[0] += timedelta(seconds=30)
        ticked.set()

        async def first_run() -> list[Any]:
            while not (items := (await parts.store.list("ci", ListOptions(
                    labels={LABEL_CRON_WORKFLOW: "nightly"}))).items):
                await asyncio.sleep(0.02)
            return list(items)

        [run] = await asyncio.wait_for(first_run(), 20)
        assert run["metadata"]["name"] == "nightly-1704067260"
        await asyncio.wait_for(parts.engine.wait("ci", "nightly-1704067260"), 30)
        await ok(await client.delete(f"{CRON}/nightly"))
