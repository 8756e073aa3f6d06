"""API access control: the role table, token files, check_host, and the middleware over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from gittrigger.assembly import Parts, assemble
from gittrigger.http.app import make_app
from gittrigger.http.auth import (
    Access,
    Caller,
    Role,
    access_for,
    bearer,
    guarded,
    load_access,
    parse_tokens,
    read_tokens_file,
    required_role,
    scope_problem,
)
from gittrigger.runtime import check_host
from gittrigger.settings import AuthSettings, load_settings
from workflows.errors import InvalidSpec

READ_TOKEN = "read-secret-0123456789"
WRITE_TOKEN = "write-secret-0123456789"
OPS_TOKEN = "ops-secret-0123456789"
ENV_ADMIN_TOKEN = "env-admin-secret-0123456789"

TOKENS_YAML = f"""\
# API tokens
- name: reader
  token: {READ_TOKEN}
  role: read
- name: writer
  tokenFile: secrets/writer.token
  role: write
  namespaces: [ci]
- name: ops
  token: {OPS_TOKEN}
  role: admin
"""


@pytest.mark.parametrize(("method", "route", "role"), [
    ("GET", "/api/v1/workflows/{namespace}", Role.READ),
    ("GET", "/api/v1/workflows/{namespace}/{name}/log", Role.READ),
    ("GET", "/api/v1/workflow-events/{namespace}", Role.READ),
    ("HEAD", "/api/v1/info", Role.READ),
    ("POST", "/api/v1/workflows/{namespace}", Role.WRITE),
    ("POST", "/api/v1/workflows/{namespace}/submit", Role.WRITE),
    ("POST", "/api/v1/workflows/{namespace}/lint", Role.WRITE),
    ("PUT", "/api/v1/workflows/{namespace}/{name}/retry", Role.WRITE),
    ("PUT", "/api/v1/workflows/{namespace}/{name}/resubmit", Role.WRITE),
    ("PUT", "/api/v1/workflows/{namespace}/{name}/stop", Role.WRITE),
    ("PUT", "/api/v1/workflows/{namespace}/{name}/terminate", Role.WRITE),
    ("PUT", "/api/v1/workflows/{namespace}/{name}/suspend", Role.WRITE),
    ("PUT", "/api/v1/workflows/{namespace}/{name}/resume", Role.WRITE),
    ("PUT", "/api/v1/workflows/{namespace}/{name}/set", Role.WRITE),
    ("DELETE", "/api/v1/workflows/{namespace}/{name}", Role.WRITE),
    ("PUT", "/api/v1/workflow-templates/{namespace}/{name}", Role.WRITE),
    ("POST", "/api/v1/cluster-workflow-templates", Role.WRITE),
    ("PUT", "/api/v1/cron-workflows/{namespace}/{name}/suspend", Role.WRITE),
    ("POST", "/api/v1/events/{namespace}/{discriminator}", Role.WRITE),
    ("POST", "/api/v1/gittrigger/events/{id}/replay", Role.WRITE),
    ("POST", "/api/v1/gittrigger/reload", Role.ADMIN),
    ("PUT", "/api/v1/workflows/{namespace}/{name}/something-new", Role.ADMIN),
    ("PATCH", "/api/v1/workflows/{namespace}/{name}", Role.ADMIN),
    ("GET", "/artifact-files/{namespace}/{discriminator}/{id}/{nodeId}/{direction}/{artifactName}", Role.READ),
    ("GET", "/input-artifacts-by-uid/{uid}/{nodeId}/{artifactName}", Role.READ),
    ("POST", "/webhooks/{tail}", None),
    ("GET", "/healthz", None),
    ("GET", "/metrics", None),
], ids=lambda v: v if isinstance(v, str) else getattr(v, "name", str(v)))
def test_required_role(method: str, route: str, role: Role | None) -> None:
    assert required_role(method, route) is role


@pytest.mark.parametrize(("path", "needs_token"), [
    ("/api/v1/workflows/ci", True),
    ("/api/v1/nothing-here", True),
    ("/api/v1/gittrigger/artifacts/ci/run/key.tgz", False),
    ("/artifact-files/ci/workflows/run/n/outputs/out", True),
    ("/artifact-files/malformed", True),
    ("/artifacts/ci/run/n/out", True),
    ("/input-artifacts/ci/run/n/out", True),
    ("/artifacts-by-uid/u/n/out", True),
    ("/input-artifacts-by-uid/u/n/out", True),
    ("/artifactsx/ci", False),
    ("/webhooks/github/ci", False),
    ("/healthz", False),
    ("/metrics", False),
], ids=lambda v: v if isinstance(v, str) else str(v))
def test_guarded(path: str, needs_token: bool) -> None:
    """The API and Argo's downloads need a token; the pods' artifact store, webhooks and probes do not."""
    assert guarded(path) is needs_token


CI_WRITER = Caller(name="w", role=Role.WRITE, namespaces=frozenset({"ci"}))
EVERYWHERE = Caller(name="e", role=Role.WRITE)


@pytest.mark.parametrize(("caller", "needed", "route", "namespace", "allowed"), [
    (CI_WRITER, Role.WRITE, "/api/v1/workflows/{namespace}", "ci", True),
    (CI_WRITER, Role.READ, "/api/v1/workflows/{namespace}", "other", False),
    (CI_WRITER, Role.READ, "/api/v1/cluster-workflow-templates/{name}", None, True),
    (CI_WRITER, Role.WRITE, "/api/v1/cluster-workflow-templates", None, False),
    (CI_WRITER, Role.READ, "/api/v1/userinfo", None, True),
    (CI_WRITER, Role.READ, "/api/v1/workflow-events/", None, False),
    (EVERYWHERE, Role.WRITE, "/api/v1/cluster-workflow-templates", None, True),
    (EVERYWHERE, Role.READ, "/api/v1/workflows/{namespace}", "other", True),
], ids=["own-namespace", "other-namespace", "cluster-read", "cluster-write-limited", "userinfo",
        "all-namespaces-watch", "cluster-write-unlimited", "unlimited"])
def test_scope(caller: Caller, needed: Role, route: str, namespace: str | None, allowed: bool) -> None:
    assert (scope_problem(caller, needed=needed, route=route, namespace=namespace) is None) is allowed


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None), ("", None), (None, None),
], ids=["bearer", "case-and-spaces", "basic", "no-token", "empty", "absent"])
def test_bearer(header: str | None, token: str | None) -> None:
    assert bearer(header) == token


def entry(**fields: Any) -> dict[str, Any]:
    return {"name": "t", "token": "secret-1", "role": "read", **fields}


@pytest.mark.parametrize(("raw", "path", "message"), [
    ({"tokens": []}, "tokens", "must be a list"),
    (["x"], "tokens[0]", "must be an object"),
    ([entry(), entry(name="u", token="secret-2", role="owner")], "tokens[1].role",
     "must be one of read, write, admin"),
    ([{"token": "secret-1", "role": "read"}], "tokens[0].name", "required"),
    ([entry(tokenFile="x")], "tokens[0]", "exactly one of token and tokenFile"),
    ([{"name": "t", "role": "read"}], "tokens[0]", "exactly one of token and tokenFile"),
    ([entry(token="")], "tokens[0].token", "must not be empty"),
    ([entry(token="has space")], "tokens[0].token", "whitespace"),
    ([entry(token=123456)], "tokens[0].token", "must be a string"),
    ([entry(namespace=["ci"])], "tokens[0].namespace", "unknown field"),
    ([entry(namespaces="ci")], "tokens[0].namespaces", "must be a list"),
    ([entry(), entry(token="secret-2")], "tokens[1].name", "also the name of tokens[0]"),
    ([entry(), entry(name="u")], "tokens[1]", "the same token as tokens[0]"),
    ([entry(tokenFile="missing.token", token=None) | {"token": None}], "tokens[0]", "exactly one"),
], ids=["not-a-list", "entry-not-object", "bad-role", "no-name", "both-secrets", "no-secret", "empty-token",
        "token-with-space", "token-not-text", "typo-field", "namespaces-not-list", "duplicate-name",
        "duplicate-token", "null-token-and-file"])
def test_token_errors_name_the_field(tmp_path: Path, raw: Any, path: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_tokens(raw, base_dir=tmp_path)
    assert caught.value.path == path
    assert message in caught.value.message
    assert "secret-" not in str(caught.value)


def test_token_file_missing_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_tokens([{"name": "t", "tokenFile": "missing.token", "role": "read"}], base_dir=tmp_path)
    assert caught.value.path == "tokens[0].tokenFile"
    assert "missing.token" in caught.value.message


def tokens_file(folder: Path, text: str = TOKENS_YAML) -> Path:
    (folder / "secrets").mkdir(exist_ok=True)
    (folder / "secrets" / "writer.token").write_text(WRITE_TOKEN + "\n")
    file = folder / "tokens.yaml"
    file.write_text(text)
    return file


def test_token_file_loads(tmp_path: Path) -> None:
    """A YAML list; tokenFile relative to the file's folder (trailing newline dropped); env admin added."""
    access = load_access(AuthSettings(tokens_file=tokens_file(tmp_path), admin_token=ENV_ADMIN_TOKEN))
    assert access.identify(READ_TOKEN) == Caller(name="reader", role=Role.READ)
    assert access.identify(WRITE_TOKEN) == Caller(name="writer", role=Role.WRITE, namespaces=frozenset({"ci"}))
    assert access.identify(ENV_ADMIN_TOKEN) == Caller(name="admin", role=Role.ADMIN)
    assert access.identify("nope") is None
    assert access.identify(READ_TOKEN + "x") is None
    assert access.describe() == "bearer tokens: 4 (2 admin, 1 read, 1 write)"
    assert READ_TOKEN not in repr(access)


def test_token_file_as_mapping_and_document_marker(tmp_path: Path) -> None:
    file = tmp_path / "tokens.yaml"
    file.write_text(f"---\ntokens:\n  - {{name: a, token: {READ_TOKEN}, role: read}}\n")
    assert read_tokens_file(file) == [{"name": "a", "token": READ_TOKEN, "role": "read"}]


def test_token_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    """A field error names file and entry; a YAML error the file's own line."""
    bad_role = tokens_file(tmp_path, TOKENS_YAML.replace("role: admin", "role: root"))
    with pytest.raises(InvalidSpec) as caught:
        load_access(AuthSettings(tokens_file=bad_role))
    assert caught.value.path == f"{bad_role}: tokens[2].role"
    assert OPS_TOKEN not in str(caught.value)
    broken = tmp_path / "broken.yaml"
    broken.write_text("- name: a\n  token: [unclosed\n")
    with pytest.raises(InvalidSpec, match="line 3"):
        load_access(AuthSettings(tokens_file=broken))
    with pytest.raises(InvalidSpec, match="cannot read"):
        load_access(AuthSettings(tokens_file=tmp_path / "absent.yaml"))


def test_no_tokens_is_disabled() -> None:
    access = load_access(AuthSettings())
    assert not access.enabled
    assert access.describe().startswith("off")
    assert Access().identify("") is None


@pytest.mark.parametrize(("host", "with_tokens", "refused"), [
    ("127.0.0.1", False, False), ("::1", False, False), ("localhost", False, False),
    ("0.0.0.0", False, True), ("192.0.2.7", False, True),
    ("0.0.0.0", True, False), ("192.0.2.7", True, False),
], ids=["v4-loopback", "v6-loopback", "localhost", "any-without-tokens", "address-without-tokens",
        "any-with-tokens", "address-with-tokens"])
def test_check_host(tmp_path: Path, host: str, with_tokens: bool, refused: bool) -> None:
    env = {"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_HOST": host}
    if with_tokens:
        env["GITTRIGGER_TOKENS_FILE"] = str(tokens_file(tmp_path))
    settings = load_settings(env=env)
    if not refused:
        check_host(settings)
        return
    with pytest.raises(InvalidSpec) as caught:
        check_host(settings)
    assert caught.value.path == "server.host"
    assert "auth.tokens_file" in caught.value.message and "GITTRIGGER_ADMIN_TOKEN" in caught.value.message


def test_check_host_refuses_a_bad_token_file(tmp_path: Path) -> None:
    file = tokens_file(tmp_path, "- name: a\n  token: x\n  role: boss\n")
    with pytest.raises(InvalidSpec, match=r"tokens\[0\]\.role: must be one of read, write, admin"):
        check_host(load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_TOKENS_FILE": str(file)}))


def test_access_is_loaded_once_per_settings(tmp_path: Path) -> None:
    settings = AuthSettings(tokens_file=tokens_file(tmp_path))
    assert access_for(settings) is access_for(AuthSettings(tokens_file=settings.tokens_file))


# -- over HTTP ---------------------------------------------------------------------------------

HELLO: dict[str, Any] = {
    "metadata": {"generateName": "hello-"},
    "spec": {"entrypoint": "main",
             "templates": [{"name": "main", "container": {"image": "busybox", "command": ["true"]}}]},
}


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_ISOLATION": "none"})
    async with assemble(settings, memory=True) as built:
        yield built


@pytest.fixture
async def client(aiohttp_client: Any, parts: Parts, tmp_path: Path) -> TestClient[Any, web.Application]:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_ISOLATION": "none",
                                  "GITTRIGGER_TOKENS_FILE": str(tokens_file(tmp_path)),
                                  "GITTRIGGER_ADMIN_TOKEN": ENV_ADMIN_TOKEN})
    return await aiohttp_client(make_app(settings, engine=parts.engine, store=parts.store))  # type: ignore[no-any-return]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_unprotected_paths_need_no_token(client: TestClient[Any, web.Application]) -> None:
    """Probes, metrics and webhooks (everything outside /api/) never answer 401."""
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(path)).status == 200, path
    webhook = await client.post("/webhooks/github/ci", json={})
    assert webhook.status not in (401, 403)


@pytest.mark.parametrize("headers", [{}, auth("wrong-token"), {"Authorization": f"Basic {READ_TOKEN}"}],
                         ids=["none", "unknown", "basic"])
async def test_missing_or_unknown_token_is_401(client: TestClient[Any, web.Application],
                                               headers: dict[str, str]) -> None:
    with capture_logs() as logs:
        resp = await client.get("/api/v1/workflows/ci", headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await resp.json())["code"] == 16
    assert [entry["status"] for entry in logs if entry["event"] == "api request refused"] == [401]
    assert READ_TOKEN not in repr(logs)


async def test_the_argo_ui_cookie_is_no_token_for_the_api(client: TestClient[Any, web.Application]) -> None:
    """Only downloads (browser links) take the cookie: on /api/ it would let any site send writes."""
    resp = await client.get("/api/v1/workflows/ci", headers={"Cookie": f"authorization=Bearer {READ_TOKEN}"})
    assert resp.status == 401


async def test_unknown_api_path_needs_a_token_then_404s(client: TestClient[Any, web.Application]) -> None:
    assert (await client.get("/api/v1/nothing-here")).status == 401
    assert (await client.get("/api/v1/nothing-here", headers=auth(WRITE_TOKEN))).status == 404


async def test_roles_and_namespaces(client: TestClient[Any, web.Application], parts: Parts) -> None:
    """read may list but not create; write may create in its namespace only; admin anywhere."""
    assert (await client.get("/api/v1/workflows/ci", headers=auth(READ_TOKEN))).status == 200
    refused = await client.post("/api/v1/workflows/ci", json={"workflow": HELLO}, headers=auth(READ_TOKEN))
    assert refused.status == 403
    body = await refused.json()
    assert body["code"] == 7 and "needs write" in body["message"]

    other = await client.post("/api/v1/workflows/other", json={"workflow": HELLO}, headers=auth(WRITE_TOKEN))
    assert other.status == 403
    assert "namespace 'other'" in (await other.json())["message"]
    assert (await client.get("/api/v1/workflows/other", headers=auth(WRITE_TOKEN))).status == 403
    assert (await client.get("/api/v1/workflow-events/", headers=auth(WRITE_TOKEN))).status == 403

    created = await client.post("/api/v1/workflows/ci", json={"workflow": HELLO}, headers=auth(WRITE_TOKEN))
    assert created.status == 200, await created.text()
    name = (await created.json())["metadata"]["name"]
    await asyncio.wait_for(parts.engine.wait("ci", name), 30)
    assert (await client.delete(f"/api/v1/workflows/ci/{name}", headers=auth(READ_TOKEN))).status == 403
    assert (await client.delete(f"/api/v1/workflows/ci/{name}", headers=auth(WRITE_TOKEN))).status == 200

    for token in (OPS_TOKEN, ENV_ADMIN_TOKEN):
        resp = await client.post("/api/v1/workflows/other", json={"workflow": HELLO, "serverDryRun": True},
                                 headers=auth(token))
        assert resp.status == 200, await resp.text()


async def test_no_tokens_allows_everything(aiohttp_client: Any, parts: Parts, tmp_path: Path) -> None:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path)})
    client = await aiohttp_client(make_app(settings, engine=parts.engine, store=parts.store))
    assert (await client.get("/api/v1/workflows/ci")).status == 200
    resp = await client.post("/api/v1/workflows/ci", json={"workflow": HELLO, "serverDryRun": True})
    assert resp.status == 200, await resp.text()
