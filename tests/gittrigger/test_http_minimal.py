"""The minimal Argo API and health endpoints, through aiohttp's test client, on a real engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gittrigger.assembly import Parts, assemble
from gittrigger.http.app import make_app
from gittrigger.settings import load_settings

HELLO: dict[str, Any] = {
    "metadata": {"generateName": "hello-", "labels": {"app": "ci"}},
    "spec": {
        "entrypoint": "main",
        "templates": [{"name": "main", "container": {"image": "busybox", "command": ["echo", "hi"]}}],
    },
}


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_ISOLATION": "none"})
    async with assemble(settings, memory=True) as built:
        yield built


@pytest.fixture
async def client(aiohttp_client: Any, parts: Parts, tmp_path: Path) -> TestClient[Any, web.Application]:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_MAX_BODY_BYTES": "2048"})
    return await aiohttp_client(make_app(settings, engine=parts.engine, store=parts.store))  # type: ignore[no-any-return]


async def test_health(client: TestClient[Any, web.Application]) -> None:
    """Both probes answer 200 and every response carries a request id."""
    for path in ("/healthz", "/readyz"):
        resp = await client.get(path)
        assert resp.status == 200
        assert resp.headers["X-Request-Id"]
    resp = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"


async def test_submit_get_list(client: TestClient[Any, web.Application], parts: Parts) -> None:
    """A submitted workflow is returned, runs, and shows in get and list."""
    resp = await client.post("/api/v1/workflows/ci", json={"workflow": HELLO})
    assert resp.status == 200, await resp.text()
    created = await resp.json()
    name = created["metadata"]["name"]
    assert created["metadata"]["namespace"] == "ci"
    assert name.startswith("hello-")
    final = await asyncio.wait_for(parts.engine.wait("ci", name), 30)
    assert final["status"]["phase"] == "Succeeded"

    got = await (await client.get(f"/api/v1/workflows/ci/{name}")).json()
    assert got["status"]["phase"] == "Succeeded"
    listed = await (await client.get("/api/v1/workflows/ci")).json()
    assert [w["metadata"]["name"] for w in listed["items"]] == [name]
    assert "resourceVersion" in listed["metadata"]
    other = await (await client.get("/api/v1/workflows/other")).json()
    assert other["items"] == []
    by_label = await (await client.get("/api/v1/workflows/ci", params={"listOptions.labelSelector": "app=x"})).json()
    assert by_label["items"] == []


async def test_delete(client: TestClient[Any, web.Application], parts: Parts) -> None:
    """DELETE removes the workflow; a second DELETE is a 404."""
    created = await (await client.post("/api/v1/workflows/default", json={"workflow": HELLO})).json()
    name = created["metadata"]["name"]
    await asyncio.wait_for(parts.engine.wait("default", name), 30)
    resp = await client.delete(f"/api/v1/workflows/default/{name}")
    assert resp.status == 200
    assert (await client.get(f"/api/v1/workflows/default/{name}")).status == 404
    assert (await client.delete(f"/api/v1/workflows/default/{name}")).status == 404


async def test_not_found_shape(client: TestClient[Any, web.Application]) -> None:
    """Missing workflows answer 404 in Argo's grpc-gateway shape."""
    resp = await client.get("/api/v1/workflows/default/nope")
    assert resp.status == 404
    body = await resp.json()
    assert body["code"] == 5
    assert "nope" in body["message"]


@pytest.mark.parametrize(("body", "field"), [
    (b"{not json", "body: not valid JSON"),
    (b"[1]", "body: must be a JSON object"),
    (b"{}", "workflow: required"),
    (b'{"workflow": "x"}', "workflow: must be an object"),
    (b'{"workflow": {"spec": {"entrypoint": "main", "templates": [{"name": "main", "steps": [[{"name": "a", '
     b'"template": "missing"}]]}]}}}', "spec.templates[0].steps[0][0].template"),
], ids=["not-json", "not-object", "no-workflow", "workflow-not-object", "invalid-workflow"])
async def test_bad_body_is_400_naming_the_field(
    client: TestClient[Any, web.Application], body: bytes, field: str,
) -> None:
    """Bad requests answer 400 / grpc 3 with the offending field in the message."""
    resp = await client.post("/api/v1/workflows/default", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    payload = await resp.json()
    assert payload["code"] == 3
    assert field in payload["message"]


async def test_too_large_body(client: TestClient[Any, web.Application]) -> None:
    """A body over max_body_bytes is 413 in the same shape."""
    resp = await client.post("/api/v1/workflows/default", data=b"x" * 4096)
    assert resp.status == 413
    assert (await resp.json())["code"] == 3


async def test_unknown_route_is_json(client: TestClient[Any, web.Application]) -> None:
    """Unknown paths are 404s in the same shape, not HTML."""
    resp = await client.get("/api/v1/nothing")
    assert resp.status == 404
    assert (await resp.json())["code"] == 5
