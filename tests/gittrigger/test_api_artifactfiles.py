"""Argo Server's artifact download routes over real HTTP: the artifacts of a real run (local executor),
bearer tokens (header or Argo UI's cookie) with namespace limits, 404s naming what is missing, and
the API's delete collecting artifacts by strategy."""

# ruff: noqa: E501  (workflow YAML lines)
from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from gittrigger.assembly import Parts, assemble
from gittrigger.http.app import make_app
from gittrigger.settings import load_settings
from workflows.executors.artifacts import LocalArtifactStore

Client = TestClient[Any, web.Application]
TOKENS = """\
- {name: viewer, token: view-secret-0123456789, role: read}
- {name: elsewhere, token: else-secret-0123456789, role: read, namespaces: [other]}
- {name: writer, token: write-secret-0123456789, role: write}
"""
VIEW = {"Authorization": "Bearer view-secret-0123456789"}
WORKFLOW = """
metadata: {name: arts, namespace: ci}
spec:
  entrypoint: main
  artifactGC: {strategy: OnWorkflowDeletion}
  templates:
  - name: main
    container:
      image: alpine
      command: [sh, -c, "mkdir -p /tmp/d && echo one > /tmp/d/a.txt && echo hello > /tmp/f.txt"]
    outputs:
      artifacts:
      - {name: out, path: /tmp/f.txt}
      - {name: plain, path: /tmp/f.txt, archive: {none: {}}}
      - {name: dir, path: /tmp/d, archive: {none: {}}}
      - {name: kept, path: /tmp/f.txt, artifactGC: {strategy: Never}}
"""


@dataclass(slots=True, kw_only=True)
class Served:
    client: Client
    parts: Parts
    run: dict[str, Any]
    node_id: str
    artifacts: LocalArtifactStore

    def key(self, name: str) -> str:
        node = self.run["status"]["nodes"][self.node_id]
        return str(next(a["s3"]["key"] for a in node["outputs"]["artifacts"] if a["name"] == name))


@pytest.fixture
async def served(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Served]:
    (tmp_path / "tokens.yaml").write_text(TOKENS)
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_TOKENS_FILE": str(tmp_path / "tokens.yaml")})
    async with assemble(settings, memory=True) as parts:
        stored = await parts.engine.submit(yaml.safe_load(WORKFLOW))
        run = await parts.engine.wait("ci", stored["metadata"]["name"])
        assert run["status"]["phase"] == "Succeeded", run["status"].get("message")
        run = await parts.store.get("ci", "arts")
        node_id = next(n["id"] for n in run["status"]["nodes"].values() if n["type"] == "Pod")
        client = await aiohttp_client(make_app(settings, engine=parts.engine, store=parts.store))
        yield Served(client=client, parts=parts, run=run, node_id=node_id,
                     artifacts=LocalArtifactStore(tmp_path / "artifacts"))


def paths(s: Served, name: str) -> list[str]:
    """Every route that names artifact ``name`` of the run's pod."""
    uid, n = s.run["metadata"]["uid"], s.node_id
    return [f"/artifacts/ci/arts/{n}/{name}", f"/artifact-files/ci/workflows/arts/{n}/outputs/{name}",
            f"/artifact-files/ci/archived-workflows/{uid}/{n}/outputs/{name}", f"/artifacts-by-uid/{uid}/{n}/{name}"]


async def test_every_route_serves_the_stored_object(served: Served) -> None:
    """As Argo: the object as stored (an archived artifact is its .tgz), named by the key's base name."""
    for path in paths(served, "out"):
        resp = await served.client.get(path, headers=VIEW)
        assert resp.status == 200, (path, await resp.text())
        assert await resp.read() == served.artifacts.read_bytes(served.key("out"))
        assert resp.headers["Content-Disposition"] == 'filename="out.tgz"'
        assert resp.headers["X-Frame-Options"] == "SAMEORIGIN"
    plain = await served.client.get(paths(served, "plain")[1], headers=VIEW)
    assert plain.status == 200 and await plain.text() == "hello\n"
    assert plain.headers["Content-Disposition"] == 'filename="plain"'


async def test_directory_artifacts_are_listed_and_their_files_served(served: Served) -> None:
    base = paths(served, "dir")[1]
    moved = await served.client.get(base, headers=VIEW, allow_redirects=False)
    assert moved.status == 307 and moved.headers["Location"] == base + "/"
    listing = await served.client.get(base + "/", headers=VIEW)
    assert listing.status == 200 and '<a href="./a.txt">a.txt</a>' in await listing.text()
    file = await served.client.get(base + "/a.txt", headers=VIEW)
    assert file.status == 200 and await file.text() == "one\n"
    assert (await served.client.get(base + "/missing.txt", headers=VIEW)).status == 404


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"Authorization": "Bearer not-a-token-0123456789"}, 401),
    ({"Authorization": "Bearer else-secret-0123456789"}, 403),
    ({"Cookie": "authorization=Bearer view-secret-0123456789"}, 200),
    (VIEW, 200),
], ids=["no-token", "unknown-token", "other-namespace", "argo-ui-cookie", "read-token"])
async def test_routes_need_an_api_token_for_the_namespace(served: Served, headers: dict[str, str], status: int) -> None:
    """Outside /api/, yet protected like it: any role reads, within its namespaces; errors in Argo's shape."""
    for path in paths(served, "out"):
        resp = await served.client.get(path, headers=headers)
        assert resp.status == status, path
        if status != 200:
            body = await resp.json()
            assert set(body) == {"code", "message"} and body["code"] == {401: 16, 403: 7}[status]


async def test_not_found_names_what_is_missing(served: Served) -> None:
    n, uid = served.node_id, served.run["metadata"]["uid"]
    cases = {
        "/artifacts/ci/nope/x/out": "workflow 'ci/nope' not found",
        f"/artifacts/ci/arts/{n}-x/out": f"node '{n}-x of workflow ci/arts' not found",
        f"/artifacts/ci/arts/{n}/nope": f"artifact 'outputs.nope of node {n}' not found",
        f"/input-artifacts/ci/arts/{n}/out": f"artifact 'inputs.out of node {n}' not found",
        f"/artifacts-by-uid/{uid}x/{n}/out": f"workflow 'with uid {uid}x' not found",
    }
    for path, message in cases.items():
        resp = await served.client.get(path, headers=VIEW)
        assert (resp.status, await resp.json()) == (404, {"code": 5, "message": message}), path
    served.artifacts.delete_prefix(served.key("out"))  # collected meanwhile
    resp = await served.client.get(paths(served, "out")[0], headers=VIEW)
    assert resp.status == 404 and served.key("out") in (await resp.json())["message"]


@pytest.mark.parametrize(("path", "field"), [
    ("/artifact-files/ci/workflows/arts/{n}/sideways/out", "direction"),
    ("/artifact-files/ci/archive/arts/{n}/outputs/out", "discriminator"),
    ("/artifact-files/other/archived-workflows/{uid}/{n}/outputs/out", "namespace"),
], ids=["direction", "discriminator", "uid-in-another-namespace"])
async def test_bad_requests_name_the_segment(served: Served, path: str, field: str) -> None:
    resp = await served.client.get(path.format(n=served.node_id, uid=served.run["metadata"]["uid"]), headers=VIEW)
    assert resp.status == 400 and (await resp.json())["message"].startswith(f"{field}:")


async def test_api_delete_collects_artifacts_by_strategy(served: Served) -> None:
    """DELETE of the Workflow removes OnWorkflowDeletion artifacts and keeps the Never one."""
    resp = await served.client.delete("/api/v1/workflows/ci/arts", headers={"Authorization": "Bearer write-secret-0123456789"})
    assert resp.status == 200, await resp.text()
    assert {name: served.artifacts.exists(served.key(name)) for name in ("out", "plain", "dir", "kept")} == \
        {"out": False, "plain": False, "dir": False, "kept": True}
    assert (await served.client.get(paths(served, "kept")[0], headers=VIEW)).status == 404  # the run is gone


@pytest.mark.parametrize(("path", "with_token"), [
    ("/artifact-files/0/0/0/0/0/0", 400),
    ("/artifact-files/ci/workflows/nope/n/outputs/out/a.txt", 404),
    ("/artifact-files/ci/archived-workflows/nope/n/outputs/out", 404),
    ("/artifacts/ci/nope/n/out", 404),
    ("/input-artifacts/ci/nope/n/out", 404),
    ("/artifacts-by-uid/nope/n/out", 404),
    ("/input-artifacts-by-uid/nope/n/out", 404),
    ("/artifact-files/too/short", 404),
], ids=["malformed-segments", "file", "archived", "artifacts", "input-artifacts", "by-uid", "input-by-uid",
        "no-such-route"])
async def test_a_stranger_gets_401_before_any_path_check(served: Served, path: str, with_token: int) -> None:
    """Found by schemathesis: a malformed path without a token answered 400; who asks comes first."""
    resp = await served.client.get(path)
    assert resp.status == 401 and (await resp.json())["code"] == 16
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await served.client.get(path, headers=VIEW)).status == with_token


async def test_without_tokens_every_route_is_open_as_the_api_is(served: Served, aiohttp_client: Any,
                                                                tmp_path: Path) -> None:
    """No tokens configured (loopback only): downloads need no token, like /api/."""
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path)})
    client = await aiohttp_client(make_app(settings, engine=served.parts.engine, store=served.parts.store))
    assert (await client.get("/api/v1/workflows/ci")).status == 200
    for path in paths(served, "out"):
        resp = await client.get(path)
        assert resp.status == 200, (path, await resp.text())
        assert await resp.read() == served.artifacts.read_bytes(served.key("out"))
