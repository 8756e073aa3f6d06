"""Argo's event API: WorkflowEventBindings loaded at start submit workflows from templates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hera.workflows.models import WorkflowEventBindingList
from structlog.testing import capture_logs

from gittrigger.assembly import Parts, assemble
from gittrigger.http.app import make_app
from gittrigger.runtime import load_manifests
from gittrigger.settings import load_settings
from workflows.errors import InvalidSpec
from workflows.eventbindings import LABEL_CREATOR, LABEL_EVENT_BINDING, LABEL_WORKFLOW_TEMPLATE

TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: greet
spec:
  entrypoint: main
  arguments:
    parameters: [{name: message, value: default}]
  templates:
    - name: main
      inputs:
        parameters: [{name: message}]
      container:
        image: busybox
        command: [echo, "{{inputs.parameters.message}}"]
"""

BINDINGS = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowEventBinding
metadata:
  name: greet-on-event
spec:
  event:
    selector: payload.message != "" && metadata["x-kind"] == ["greeting"] && discriminator == "greet"
  submit:
    workflowTemplateRef:
      name: greet
    arguments:
      parameters:
        - name: message
          valueFrom:
            event: payload.message
    metadata:
      labels:
        from: '"event"'
---
apiVersion: argoproj.io/v1alpha1
kind: WorkflowEventBinding
metadata:
  name: fragile
spec:
  event:
    selector: payload.deep.field == 1
---
apiVersion: argoproj.io/v1alpha1
kind: WorkflowEventBinding
metadata:
  name: broken-template
spec:
  event:
    selector: discriminator == "broken"
  submit:
    workflowTemplateRef:
      name: no-such-template
---
apiVersion: argoproj.io/v1alpha1
kind: WorkflowEventBinding
metadata:
  name: also-on-broken
spec:
  event:
    selector: discriminator == "broken"
  submit:
    workflowTemplateRef:
      name: greet
"""

TOKENS = """\
- {name: sender, token: send-secret-0123456789, role: write, namespaces: [default]}
- {name: looker, token: look-secret-0123456789, role: read}
"""


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_ISOLATION": "none"})
    async with assemble(settings, memory=True) as built:
        manifests = tmp_path / "manifests"
        manifests.mkdir()
        (manifests / "template.yaml").write_text(TEMPLATE)
        (manifests / "bindings.yaml").write_text(BINDINGS)
        counts = (await load_manifests(built, [manifests], namespace="default")).counts
        assert counts["WorkflowEventBinding"] == 4
        yield built


async def make_client(aiohttp_client: Any, parts: Parts, tmp_path: Path, *,
                      tokens: bool = False) -> TestClient[Any, web.Application]:
    env = {"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_ISOLATION": "none"}
    if tokens:
        (tmp_path / "tokens.yaml").write_text(TOKENS)
        env["GITTRIGGER_TOKENS_FILE"] = str(tmp_path / "tokens.yaml")
    app = make_app(load_settings(env=env), engine=parts.engine, store=parts.store, templates=parts.templates)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


@pytest.fixture
async def client(aiohttp_client: Any, parts: Parts, tmp_path: Path) -> TestClient[Any, web.Application]:
    return await make_client(aiohttp_client, parts, tmp_path)


async def workflows_in(parts: Parts, namespace: str = "default") -> list[dict[str, Any]]:
    return list((await parts.store.list(namespace)).items)


async def test_event_submits_a_workflow_with_a_payload_parameter(client: TestClient[Any, web.Application],
                                                                 parts: Parts) -> None:
    """The matching binding submits its template; the argument comes from the payload; the run succeeds."""
    resp = await client.post("/api/v1/events/default/greet", json={"message": "hello from the event"},
                             headers={"X-Kind": "greeting"})
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {}
    [workflow] = await workflows_in(parts)
    meta = workflow["metadata"]
    assert meta["name"].startswith("greet-")
    assert meta["labels"][LABEL_WORKFLOW_TEMPLATE] == "greet"
    assert meta["labels"][LABEL_EVENT_BINDING] == "greet-on-event"
    assert meta["labels"]["from"] == "event"
    assert LABEL_CREATOR not in meta["labels"]  # no tokens: nobody to name
    assert workflow["spec"]["arguments"]["parameters"] == [{"name": "message", "value": "hello from the event"}]
    final = await asyncio.wait_for(parts.engine.wait("default", meta["name"]), 30)
    assert final["status"]["phase"] == "Succeeded"
    inputs = [node.get("inputs", {}).get("parameters") for node in final["status"]["nodes"].values()]
    assert [{"name": "message", "value": "hello from the event"}] in inputs


@pytest.mark.parametrize(("path", "body", "headers"), [
    ("/api/v1/events/default/greet", {"message": "hi"}, {}),
    ("/api/v1/events/default/greet", {"message": "hi"}, {"X-Kind": "other"}),
    ("/api/v1/events/default/greet", {"message": ""}, {"X-Kind": "greeting"}),
    ("/api/v1/events/default/other", {"message": "hi"}, {"X-Kind": "greeting"}),
    ("/api/v1/events/elsewhere/greet", {"message": "hi"}, {"X-Kind": "greeting"}),
    ("/api/v1/events/default/greet", ["a", "list"], {"X-Kind": "greeting"}),
], ids=["no-header", "other-header", "empty-message", "other-discriminator", "other-namespace", "list-payload"])
async def test_nothing_matches_is_still_200(client: TestClient[Any, web.Application], parts: Parts, path: str,
                                            body: Any, headers: dict[str, str]) -> None:
    resp = await client.post(path, json=body, headers=headers)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {}
    assert await workflows_in(parts) == [] and await workflows_in(parts, "elsewhere") == []


async def test_malformed_json_is_400(client: TestClient[Any, web.Application], parts: Parts) -> None:
    resp = await client.post("/api/v1/events/default/greet", data=b"{not json",
                             headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert "payload" in (await resp.json())["message"]


async def test_failing_selector_is_logged_and_no_match(client: TestClient[Any, web.Application]) -> None:
    """``payload.deep.field`` fails on a payload without ``deep``: a warning, not an error answer."""
    with capture_logs() as logs:
        resp = await client.post("/api/v1/events/default/greet", json={"message": "hi"})
    assert resp.status == 200
    [failed] = [entry for entry in logs if entry["event"] == "event binding selector failed"]
    assert failed["binding"] == "fragile"


async def test_failed_submit_is_500_but_other_bindings_submit(client: TestClient[Any, web.Application],
                                                              parts: Parts) -> None:
    """As Argo's synchronous dispatch: every matching binding is tried; the failures make the answer an error."""
    with capture_logs() as logs:
        resp = await client.post("/api/v1/events/default/broken", json={})
    assert resp.status == 500
    assert "broken-template" in (await resp.json())["message"]
    [workflow] = await workflows_in(parts)
    assert workflow["metadata"]["labels"][LABEL_EVENT_BINDING] == "also-on-broken"
    assert [entry["binding"] for entry in logs if entry["event"] == "event binding submit failed"] == \
        ["broken-template"]
    await asyncio.wait_for(parts.engine.wait("default", workflow["metadata"]["name"]), 30)


async def test_list_bindings(client: TestClient[Any, web.Application]) -> None:
    body = await (await client.get("/api/v1/workflow-event-bindings/default")).json()
    items = WorkflowEventBindingList.model_validate(body).items or []
    assert sorted(b.metadata.name or "" for b in items) == \
        ["also-on-broken", "broken-template", "fragile", "greet-on-event"]
    assert all(b.metadata.namespace == "default" for b in items)
    assert (await (await client.get("/api/v1/workflow-event-bindings/other")).json())["items"] == []


async def test_events_need_a_write_token_for_the_namespace(aiohttp_client: Any, parts: Parts,
                                                           tmp_path: Path) -> None:
    """A read token may not send events; a write token may, and is named as the workflow's creator."""
    client = await make_client(aiohttp_client, parts, tmp_path, tokens=True)
    anonymous = await client.post("/api/v1/events/default/greet", json={"message": "hi"},
                                  headers={"X-Kind": "greeting"})
    assert anonymous.status == 401
    looker = {"Authorization": "Bearer look-secret-0123456789", "X-Kind": "greeting"}
    assert (await client.post("/api/v1/events/default/greet", json={"message": "hi"}, headers=looker)).status == 403
    sender = {"Authorization": "Bearer send-secret-0123456789", "X-Kind": "greeting"}
    assert (await client.post("/api/v1/events/ci/greet", json={"message": "hi"}, headers=sender)).status == 403
    resp = await client.post("/api/v1/events/default/greet", json={"message": "hi"}, headers=sender)
    assert resp.status == 200, await resp.text()
    [workflow] = await workflows_in(parts)
    assert workflow["metadata"]["labels"][LABEL_CREATOR] == "sender"
    await asyncio.wait_for(parts.engine.wait("default", workflow["metadata"]["name"]), 30)


async def test_invalid_binding_stops_loading(parts: Parts, tmp_path: Path) -> None:
    """A bad binding at start is an error naming the file and the field."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: WorkflowEventBinding\nmetadata: {name: b}\nspec:\n  event: {selector: 'payload.x ==='}\n")
    with pytest.raises(InvalidSpec) as caught:
        await load_manifests(parts, [bad], namespace="default")
    assert caught.value.path == f"{bad}: spec.event.selector"
