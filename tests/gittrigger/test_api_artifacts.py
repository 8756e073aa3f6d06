"""The artifact endpoint pods use (``/api/v1/gittrigger/artifacts/{key}``) and its per-workflow tokens."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gittrigger.artifacttokens import SECRET_FILE, ArtifactTokens, may_access, owner_of
from gittrigger.assembly import Parts, assemble
from gittrigger.http import artifacts
from gittrigger.http.app import make_app
from gittrigger.settings import load_settings
from workflows.executors.artifacts import LocalArtifactStore

API = "/api/v1/gittrigger/artifacts/"
Client = TestClient[Any, web.Application]


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    async with assemble(load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path)}), memory=True) as built:
        yield built


async def workflow(parts: Parts, name: str, namespace: str = "ns") -> str:
    created = await parts.store.create({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                                        "metadata": {"name": name, "namespace": namespace},
                                        "spec": {"entrypoint": "main", "templates": [{"name": "main"}]}})
    return str(created["metadata"]["uid"])


async def client_for(aiohttp_client: Any, parts: Parts, data_dir: Path, *, max_bytes: int | None = None) -> Client:
    app = make_app(load_settings(env={"GITTRIGGER_DATA_DIR": str(data_dir)}), engine=parts.engine, store=parts.store)
    if max_bytes is not None:
        app[artifacts.MAX_BYTES] = max_bytes
    return await aiohttp_client(app)  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_upload_then_download_round_trips_bytes(aiohttp_client: Any, parts: Parts, tmp_path: Path) -> None:
    """A file object (an archived artifact is one) comes back byte for byte, and lands in the store."""
    uid = await workflow(parts, "wf")
    client = await client_for(aiohttp_client, parts, tmp_path)
    token = ArtifactTokens.in_data_dir(tmp_path).token_for(uid)
    body = os.urandom(300_000)
    put = await client.put(API + "ns/wf/wf-1/out.tgz", data=body, headers=bearer(token))
    assert put.status == 201, await put.text()
    assert await put.json() == {"key": "ns/wf/wf-1/out.tgz", "size": len(body)}
    assert LocalArtifactStore(tmp_path / "artifacts").read_bytes("ns/wf/wf-1/out.tgz") == body
    get = await client.get(API + "ns/wf/wf-1/out.tgz", headers=bearer(token))
    assert get.status == 200 and await get.read() == body
    assert not [p for p in (tmp_path / "artifacts").iterdir() if p.name.startswith(".")]


async def test_directories_travel_as_tar(aiohttp_client: Any, parts: Parts, tmp_path: Path) -> None:
    """``archive: none`` of a directory: a tar of its contents each way, a directory in the store."""
    uid = await workflow(parts, "wf")
    client = await client_for(aiohttp_client, parts, tmp_path)
    token = ArtifactTokens.in_data_dir(tmp_path).token_for(uid)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("deep")
    (src / "link").symlink_to("sub/f")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for entry in sorted(src.iterdir()):
            tar.add(entry, arcname=entry.name)
    headers = {**bearer(token), "X-Gittrigger-Transfer": "tar"}
    assert (await client.put(API + "ns/wf/p/dir", data=buf.getvalue(), headers=headers)).status == 201
    stored = tmp_path / "artifacts" / "ns" / "wf" / "p" / "dir"
    assert (stored / "sub" / "f").read_text() == "deep" and os.readlink(stored / "link") == "sub/f"
    get = await client.get(API + "ns/wf/p/dir", headers=bearer(token))
    assert get.status == 200 and get.headers["X-Gittrigger-Transfer"] == "tar"
    with tarfile.open(fileobj=io.BytesIO(await get.read())) as tar:
        assert sorted(tar.getnames()) == ["link", "sub", "sub/f"]


@pytest.mark.parametrize(("who", "key", "status"), [
    ("none", "ns/wf/p/a.tgz", 401),
    ("garbage", "ns/wf/p/a.tgz", 401),
    ("forged", "ns/wf/p/a.tgz", 401),
    ("other-server", "ns/wf/p/a.tgz", 401),
    ("other-workflow", "ns/wf/p/a.tgz", 403),
    ("other-workflow", "ns/other/p/a.tgz", 201),
    ("own", "ns/wf/p/a.tgz", 201),
    ("own", "shared/key.txt", 201),
    ("own", "ns/gone/p/a.tgz", 201),
], ids=["no-token", "garbage", "forged-mac", "other-server", "other-workflows-key", "its-own-key", "own",
        "key-of-no-workflow", "workflow-not-stored"])
async def test_tokens_are_per_workflow(aiohttp_client: Any, parts: Parts, tmp_path: Path,
                                       who: str, key: str, status: int) -> None:
    """401 without one of our tokens; 403 for a key under another workflow; keys of no workflow are shared."""
    uid = await workflow(parts, "wf")
    other = await workflow(parts, "other")
    client = await client_for(aiohttp_client, parts, tmp_path)
    tokens = ArtifactTokens.in_data_dir(tmp_path)
    headers = {
        "none": {},
        "garbage": bearer("not-a-token"),
        "forged": bearer(f"{uid}.{'0' * 64}"),
        "other-server": bearer(ArtifactTokens.in_data_dir(tmp_path / "elsewhere").token_for(uid)),
        "other-workflow": bearer(tokens.token_for(other)),
        "own": bearer(tokens.token_for(uid)),
    }[who]
    put = await client.put(API + key, data=b"x", headers=headers)
    assert put.status == status, await put.text()
    get = await client.get(API + key, headers=headers)
    assert get.status == (200 if status == 201 else status)
    if status == 401:
        assert "Bearer" in put.headers["WWW-Authenticate"]
        assert "message" in await put.json()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_bodies_over_the_limit_are_refused_and_not_stored(
        aiohttp_client: Any, parts: Parts, tmp_path: Path, chunked: bool) -> None:
    """413 past the limit, whether the size is announced or only seen while streaming; nothing is left."""
    uid = await workflow(parts, "wf")
    client = await client_for(aiohttp_client, parts, tmp_path, max_bytes=100_000)
    token = ArtifactTokens.in_data_dir(tmp_path).token_for(uid)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 40_000

    put = await client.put(API + "ns/wf/p/big", data=body() if chunked else b"x" * 160_000, headers=bearer(token))
    assert put.status == 413
    root = tmp_path / "artifacts"
    assert not root.exists() or not [p for p in root.rglob("*") if p.is_file()]
    small = await client.put(API + "ns/wf/p/small", data=b"x" * 100_000, headers=bearer(token))
    assert small.status == 201


@pytest.mark.parametrize(("key", "status"), [
    ("ns/wf/%2E%2E/%2E%2E/etc/passwd", 404),  # normalized by HTTP to etc/passwd inside the store
    ("ns/wf/a%5Cb", 400),
    (".upload-x", 400),
    ("ns/wf/p/missing", 404),
], ids=["dotdot-normalized", "backslash", "hidden", "missing"])
async def test_bad_and_missing_keys(aiohttp_client: Any, parts: Parts, tmp_path: Path, key: str, status: int) -> None:
    """Keys that could escape the store or reach its scratch files are 400; an absent one is 404."""
    uid = await workflow(parts, "wf")
    client = await client_for(aiohttp_client, parts, tmp_path)
    token = ArtifactTokens.in_data_dir(tmp_path).token_for(uid)
    resp = await client.get(API + key, headers=bearer(token))
    assert resp.status == status, await resp.text()


async def test_a_tar_that_escapes_is_refused(aiohttp_client: Any, parts: Parts, tmp_path: Path) -> None:
    """A directory transfer whose tar names ``../`` paths is 400 and writes nothing outside."""
    uid = await workflow(parts, "wf")
    client = await client_for(aiohttp_client, parts, tmp_path)
    token = ArtifactTokens.in_data_dir(tmp_path).token_for(uid)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    resp = await client.put(API + "ns/wf/p/d", data=buf.getvalue(),
                            headers={**bearer(token), "X-Gittrigger-Transfer": "tar"})
    assert resp.status == 400
    assert not list(tmp_path.rglob("escaped"))


def test_secret_is_private_and_survives_a_restart(tmp_path: Path) -> None:
    """The secret file is created once with mode 0600; a new instance (a restarted server) agrees."""
    first = ArtifactTokens.in_data_dir(tmp_path)
    token = first.token_for("uid-1")
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600
    again = ArtifactTokens.in_data_dir(tmp_path)
    assert again.token_for("uid-1") == token and again.verify(token) == "uid-1"
    assert again.verify(first.token_for("uid-2")) == "uid-2"
    assert ArtifactTokens.in_data_dir(tmp_path / "other").verify(token) is None


@pytest.mark.parametrize(("token", "uid"), [
    ("", None),
    ("no-dot", None),
    (".deadbeef", None),
    ("uid-1.", None),
    ("uid-1.zz", None),
], ids=["empty", "no-dot", "no-uid", "no-mac", "bad-mac"])
def test_verify_refuses_malformed_tokens(tmp_path: Path, token: str, uid: str | None) -> None:
    """Anything but ``<uid>.<our mac>`` is refused."""
    assert ArtifactTokens.in_data_dir(tmp_path).verify(token) is uid


@pytest.mark.parametrize(("key", "owner_uid", "allowed", "owner"), [
    ("ns/wf/p/a.tgz", "u1", True, ("ns", "wf")),
    ("ns/wf/p/a.tgz", "u2", False, ("ns", "wf")),
    ("ns/wf/p/a.tgz", None, True, ("ns", "wf")),
    ("key.txt", None, True, None),
    ("a/b", None, True, None),
], ids=["own", "another", "no-such-workflow", "bare-key", "two-segments"])
def test_key_binding(key: str, owner_uid: str | None, allowed: bool, owner: tuple[str, str] | None) -> None:
    """A key under a stored workflow is that workflow's; other keys are shared."""
    assert owner_of(key) == owner
    assert may_access(key, uid="u1", owner_uid=owner_uid) is allowed


def test_app_has_the_store_under_the_data_dir(tmp_path: Path) -> None:
    """The endpoint's store is the one the local executor writes (``<data dir>/artifacts``)."""
    store, tokens = artifacts.state_for(tmp_path)
    assert store.root == (tmp_path / "artifacts").absolute()
    assert tokens.secret_file == tmp_path / SECRET_FILE


async def test_pods_reach_the_store_when_api_tokens_are_required(aiohttp_client: Any, parts: Parts,
                                                                tmp_path: Path) -> None:
    """API tokens guard /api/, but the artifact routes check the pod's own workflow token instead."""
    uid = await workflow(parts, "wf")
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_ADMIN_TOKEN": "api-admin"})
    client = await aiohttp_client(make_app(settings, engine=parts.engine, store=parts.store))
    token = ArtifactTokens.in_data_dir(tmp_path).token_for(uid)
    put = await client.put(API + "ns/wf/wf-1/out.tgz", data=b"bytes", headers=bearer(token))
    assert put.status == 201, await put.text()
    assert (await client.put(API + "ns/wf/wf-1/out.tgz", data=b"x", headers=bearer("api-admin"))).status == 401
    assert (await client.get("/api/v1/workflows/ns", headers=bearer(token))).status == 401  # not an API token
