"""/api/v1/info, /version and /userinfo, parsed with Hera's models of Argo's responses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hera.exceptions import Unauthorized
from hera.workflows import WorkflowsService
from hera.workflows.models import GetUserInfoResponse, InfoResponse, Version

from gittrigger import __version__
from gittrigger.assembly import Parts, assemble
from gittrigger.http.app import make_app
from gittrigger.settings import load_settings

TOKENS = """\
- {name: ci-bot, token: bot-secret-0123456789, role: write, namespaces: [ci, staging]}
- {name: viewer, token: view-secret-0123456789, role: read}
"""


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path)})
    async with assemble(settings, memory=True) as built:
        yield built


async def make_client(aiohttp_client: Any, parts: Parts, tmp_path: Path, *,
                      tokens: bool) -> TestClient[Any, web.Application]:
    env = {"GITTRIGGER_DATA_DIR": str(tmp_path)}
    if tokens:
        (tmp_path / "tokens.yaml").write_text(TOKENS)
        env["GITTRIGGER_TOKENS_FILE"] = str(tmp_path / "tokens.yaml")
    return await aiohttp_client(make_app(load_settings(env=env), engine=parts.engine,  # type: ignore[no-any-return]
                                         store=parts.store))


async def test_info(aiohttp_client: Any, parts: Parts, tmp_path: Path) -> None:
    client = await make_client(aiohttp_client, parts, tmp_path, tokens=False)
    resp = await client.get("/api/v1/info")
    assert resp.status == 200
    info = InfoResponse.model_validate(await resp.json())
    assert info.links == [] and info.columns == [] and info.managed_namespace is None


async def test_version(aiohttp_client: Any, parts: Parts, tmp_path: Path) -> None:
    """Argo's Version with every required field; gittrigger's version, Python where Argo says Go."""
    client = await make_client(aiohttp_client, parts, tmp_path, tokens=False)
    version = Version.model_validate(await (await client.get("/api/v1/version")).json())
    assert version.version == __version__
    assert version.go_version.startswith("python3.")
    assert version.compiler == "cpython"
    assert version.platform.startswith("linux/")


async def test_userinfo_without_tokens_is_anonymous(aiohttp_client: Any, parts: Parts, tmp_path: Path) -> None:
    client = await make_client(aiohttp_client, parts, tmp_path, tokens=False)
    user = GetUserInfoResponse.model_validate(await (await client.get("/api/v1/userinfo")).json())
    assert (user.subject, user.issuer, user.groups) == ("anonymous", "gittrigger", ["admin"])


@pytest.mark.parametrize(("token", "name", "role", "namespaces"), [
    ("bot-secret-0123456789", "ci-bot", "write", ["ci", "staging"]),
    ("view-secret-0123456789", "viewer", "read", None),
], ids=["limited-writer", "reader"])
async def test_userinfo_names_the_token(aiohttp_client: Any, parts: Parts, tmp_path: Path, token: str, name: str,
                                        role: str, namespaces: list[str] | None) -> None:
    """The token's name, role and namespaces; every info route needs a token, any namespace limits allowed."""
    client = await make_client(aiohttp_client, parts, tmp_path, tokens=True)
    headers = {"Authorization": f"Bearer {token}"}
    body = await (await client.get("/api/v1/userinfo", headers=headers)).json()
    user = GetUserInfoResponse.model_validate(body)
    assert (user.subject, user.name, user.issuer, user.groups) == (name, name, "gittrigger", [role])
    assert (body["role"], body.get("namespaces")) == (role, namespaces)
    for path in ("/api/v1/info", "/api/v1/version", "/api/v1/userinfo"):
        assert (await client.get(path)).status == 401, path
        assert (await client.get(path, headers=headers)).status == 200, path


async def test_hera_client_over_a_real_server(aiohttp_server: Any, parts: Parts, tmp_path: Path) -> None:
    """Hera's WorkflowsService (requests, its own Bearer header) reads all three over loopback."""
    (tmp_path / "tokens.yaml").write_text(TOKENS)
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path),
                                  "GITTRIGGER_TOKENS_FILE": str(tmp_path / "tokens.yaml")})
    server = await aiohttp_server(make_app(settings, engine=parts.engine, store=parts.store))
    host = f"http://127.0.0.1:{server.port}/"
    service = WorkflowsService(host=host, token="view-secret-0123456789")
    user = await asyncio.to_thread(service.get_user_info)
    assert (user.subject, user.groups) == ("viewer", ["read"])
    assert (await asyncio.to_thread(service.get_version)).version == __version__
    assert (await asyncio.to_thread(service.get_info)).links == []
    with pytest.raises(Unauthorized, match="status code 401"):
        await asyncio.to_thread(WorkflowsService(host=host, token="wrong").get_user_info)
