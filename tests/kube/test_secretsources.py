"""
Secret references read from ``v1 Secret`` objects (:mod:`gittrigger.secretsources`), with the real
kubernetes-asyncio client against the fake API on loopback: keys decoded from base64, NotFound
naming ``name/key``, RBAC refusals, the cache's TTL (an injected clock, no sleeps), values never in a
repr, an error or a log line; the ``sources.secrets_from`` choice; and ``serve`` verifying GitHub
deliveries with a ``webhookSecret`` that lives only in the fake API, plus ``serve --check`` on a
missing Secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from structlog.testing import capture_logs

from gittrigger.eventsources import EventSourceRegistry
from gittrigger.repos import FileSecrets
from gittrigger.secretsources import (
    KubeSecrets,
    expire_secrets,
    kube_secrets,
    open_secrets,
    secrets_in,
    secrets_namespace,
    secrets_source,
)
from gittrigger.settings import load_settings
from tests.kube.conftest import MakeFakeKube, api_client_for
from tests.kube.fakeapi import FakeKube
from workflows.errors import InvalidSpec, NotFound, Unavailable
from workflows.executors.kube.secrets import SecretForbidden, SecretsApi

NS = "ci"
VALUE = "hunter2-do-not-print"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fake(make_fake_kube: MakeFakeKube) -> FakeKube:
    fake = await make_fake_kube(kubelet=False)
    fake.add_secret(NS, "hook", {"token": VALUE, "binary": b"\x00\xffkey\n", "empty": ""})
    return fake


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def secrets(fake: FakeKube, clock: Clock) -> AsyncIterator[KubeSecrets]:
    async def connect() -> SecretsApi:  # runs on the resolver's own loop, as the client must
        return SecretsApi(api_client_for(fake), owns_client=True)

    async with kube_secrets(connect, namespace=NS, ttl_seconds=10.0, clock=clock) as secrets:
        yield secrets


def gets(fake: FakeKube) -> int:
    return fake.requests[("get", "secrets")]


@pytest.mark.parametrize(("key", "expected"), [
    ("token", VALUE.encode()),
    ("binary", b"\x00\xffkey\n"),
    ("empty", b""),
], ids=["text", "binary-bytes-kept-as-is", "empty-value"])
async def test_resolve_reads_and_decodes_a_key(secrets: KubeSecrets, key: str, expected: bytes) -> None:
    """A worker thread's resolve GETs the Secret and answers the key's base64-decoded bytes."""
    assert await asyncio.to_thread(secrets.resolve, "hook", key) == expected


@pytest.mark.parametrize(("name", "key"), [("absent", "token"), ("hook", "absent")],
                         ids=["missing-secret", "missing-key"])
async def test_missing_secret_or_key_is_not_found_naming_name_and_key(
        secrets: KubeSecrets, name: str, key: str) -> None:
    with pytest.raises(NotFound) as caught:
        await asyncio.to_thread(secrets.resolve, name, key)
    assert caught.value.name == f"{name}/{key}" and f"{name}/{key}" in str(caught.value)


@pytest.mark.parametrize(("name", "key"), [("", "k"), ("a/b", "k"), ("n", ".hidden"), ("n", "")],
                         ids=["empty-name", "slash", "dot-key", "empty-key"])
async def test_bad_references_are_invalid_before_any_request(
        secrets: KubeSecrets, fake: FakeKube, name: str, key: str) -> None:
    with pytest.raises(InvalidSpec):
        await asyncio.to_thread(secrets.resolve, name, key)
    assert gets(fake) == 0


async def test_forbidden_says_rbac_must_allow_get_on_secrets(secrets: KubeSecrets, fake: FakeKube) -> None:
    """403 is SecretForbidden naming the Secret, the namespace and the missing permission; an
    EventSource needing it fails to load with its field path."""
    fake.forbid("get", "secrets", namespace=NS)
    with pytest.raises(SecretForbidden) as caught:
        await asyncio.to_thread(secrets.resolve, "hook", "token")
    message = str(caught.value)
    assert "'hook'" in message and f"'{NS}'" in message and "RBAC must allow get on secrets" in message
    source = github_source(secret={"name": "hook", "key": "token"})
    with pytest.raises(InvalidSpec) as invalid:
        await asyncio.to_thread(EventSourceRegistry.from_manifests, [source], secrets=secrets)
    assert invalid.value.path == "gh.spec.github.push.webhookSecret" and "RBAC" in invalid.value.message


@pytest.fixture
async def reader(fake: FakeKube) -> AsyncIterator[SecretsApi]:
    api = SecretsApi(api_client_for(fake), owns_client=True)
    yield api
    await api.close()


@pytest.mark.parametrize(("failures", "status", "read"), [
    (2, 500, True),
    (2, 429, True),
    (3, 503, False),
], ids=["500-retried", "429-retried", "gives-up-after-three-gets"])
async def test_transient_failures_are_retried_then_unavailable(
        reader: SecretsApi, fake: FakeKube, failures: int, status: int, read: bool) -> None:
    """Three GETs at most (the calls module's retries); what is left is Unavailable, "transient"."""
    fake.fail_next(failures, status=status)
    if read:
        assert (await reader.read(NS, "hook"))["token"] == VALUE.encode()
    else:
        with pytest.raises(Unavailable, match="transient"):
            await reader.read(NS, "hook")
    assert gets(fake) == 3


@pytest.mark.parametrize(("name", "forbid", "error", "message"), [
    ("absent", False, NotFound, f"secret '{NS}/absent' not found"),
    ("hook", True, SecretForbidden, "RBAC must allow get on secrets"),
], ids=["404-not-found", "403-forbidden"])
async def test_refusals_are_not_retried(reader: SecretsApi, fake: FakeKube, name: str, forbid: bool,
                                        error: type[Exception], message: str) -> None:
    """404 is NotFound naming namespace/name and 403 SecretForbidden, after one GET each."""
    if forbid:
        fake.forbid("get", "secrets", namespace=NS)
    with pytest.raises(error) as caught:
        await reader.read(NS, name)
    assert message in str(caught.value) and VALUE not in str(caught.value)
    assert gets(fake) == 1


async def test_transport_failure_is_unavailable(secrets: KubeSecrets, fake: FakeKube) -> None:
    await fake.stop()
    with pytest.raises(Unavailable, match="transient"):
        await asyncio.to_thread(secrets.resolve, "hook", "token")


async def test_cache_ttl_expire_and_prefetch(secrets: KubeSecrets, fake: FakeKube, clock: Clock) -> None:
    """One GET serves every key until the TTL passes; a rotated Secret is read after it, after
    ``expire`` (a reload) or on ``prefetch``; a missing Secret is cached too (no GET per key)."""
    resolve = secrets.resolve
    assert await asyncio.to_thread(resolve, "hook", "token") == VALUE.encode()
    assert await asyncio.to_thread(resolve, "hook", "binary") == b"\x00\xffkey\n"
    assert gets(fake) == 1
    fake.add_secret(NS, "hook", {"token": "rotated"})
    clock.now += 9.9
    assert await asyncio.to_thread(resolve, "hook", "token") == VALUE.encode()  # still within the TTL
    assert gets(fake) == 1
    clock.now += 0.2
    assert await asyncio.to_thread(resolve, "hook", "token") == b"rotated"
    assert gets(fake) == 2
    fake.add_secret(NS, "hook", {"token": "again"})
    expire_secrets(secrets)
    assert await asyncio.to_thread(resolve, "hook", "token") == b"again"
    fake.add_secret(NS, "hook", {"token": "third"})
    await secrets.prefetch([("", "hook"), (NS, "hook"), ("", "absent")])  # one GET per distinct Secret
    assert gets(fake) == 5
    assert await asyncio.to_thread(resolve, "hook", "token") == b"third"
    for _ in range(2):
        with pytest.raises(NotFound):
            await asyncio.to_thread(resolve, "absent", "k")
    assert gets(fake) == 5


async def test_on_the_event_loop_it_never_blocks(secrets: KubeSecrets, fake: FakeKube, clock: Clock) -> None:
    """On the loop thread resolve answers from the cache (even stale) or raises Unavailable; ``get``
    is the awaitable way."""
    with pytest.raises(Unavailable, match="hook/token"):
        secrets.resolve("hook", "token")
    assert gets(fake) == 0
    assert await secrets.get("hook", "token") == VALUE.encode()
    clock.now += 60
    assert secrets.resolve("hook", "token") == VALUE.encode()  # stale, but the loop must not wait
    assert gets(fake) == 1


async def test_concurrent_resolves_share_one_get(secrets: KubeSecrets, fake: FakeKube) -> None:
    values = await asyncio.gather(*(asyncio.to_thread(secrets.resolve, "hook", "token") for _ in range(8)))
    assert set(values) == {VALUE.encode()} and gets(fake) == 1


async def test_an_eventsource_reads_from_its_own_namespace(secrets: KubeSecrets, fake: FakeKube) -> None:
    """Argo Events reads an EventSource's secrets from its namespace; without one, the configured one."""
    fake.add_secret("team", "hook", {"token": "team-value"})
    scoped = secrets_in(secrets, "team")
    assert await asyncio.to_thread(scoped.resolve, "hook", "token") == b"team-value"
    assert secrets_in(secrets, "") is secrets
    own = github_source(secret={"name": "hook", "key": "token"}, namespace="team")
    default = {**github_source(secret={"name": "hook", "key": "token"}), "metadata": {"name": "other"}}
    default["spec"]["github"]["push"]["webhook"]["endpoint"] = "/other"
    registry = await asyncio.to_thread(EventSourceRegistry.from_manifests, [own, default], secrets=secrets)
    assert [e.secret for e in registry.endpoints()] == [b"team-value", VALUE.encode()]  # /hook, /other
    file_secrets = FileSecrets(Path("/nonexistent"))
    assert secrets_in(file_secrets, "team") is file_secrets


async def test_values_never_in_repr_errors_or_logs(secrets: KubeSecrets, fake: FakeKube) -> None:
    with capture_logs() as logs:
        await asyncio.to_thread(secrets.resolve, "hook", "token")
        await secrets.prefetch([("", "hook")])
        registry = await asyncio.to_thread(
            EventSourceRegistry.from_manifests, [github_source(secret={"name": "hook", "key": "token"})],
            secrets=secrets)
        with pytest.raises(NotFound) as missing:
            await asyncio.to_thread(secrets.resolve, "hook", "nope")
    shown = " ".join([repr(secrets), repr(secrets._cache), repr(registry.endpoints()), str(missing.value),
                      json.dumps(logs, default=repr)])
    assert VALUE not in shown and "aHVudGVy" not in shown  # nor its base64
    assert "cached=1" in repr(secrets)


# -- choosing the source ----------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "account", "expected"), [
    ({}, False, "files"),
    ({"GITTRIGGER_SECRETS_FROM": "files", "GITTRIGGER_EXECUTOR": "kubernetes"}, True, "files"),
    ({"GITTRIGGER_SECRETS_FROM": "kubernetes"}, False, "kubernetes"),
    ({"GITTRIGGER_EXECUTOR": "kubernetes"}, False, "kubernetes"),
    ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, True, "kubernetes"),
    ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, False, "files"),
    ({}, True, "files"),
], ids=["laptop-default", "files-wins", "kubernetes-forced", "auto-kube-executor", "auto-in-cluster",
        "service-host-without-token", "token-without-service-host"])
def test_secrets_source(tmp_path: Path, env: dict[str, str], account: bool, expected: str) -> None:
    """``auto`` means kubernetes in a pod (service host and token) or with the Kubernetes executor."""
    if account:
        (tmp_path / "token").write_text("t")
    settings = load_settings(env=env)
    assert secrets_source(settings, environ=env, account_dir=tmp_path) == expected


@pytest.mark.parametrize(("env", "own", "expected"), [
    ({"GITTRIGGER_KUBE_NAMESPACE": "set"}, "pod-ns", "set"),
    ({}, "pod-ns", "pod-ns"),
    ({"GITTRIGGER_NAMESPACE": "engine"}, None, "engine"),
], ids=["kubernetes-namespace", "pod-namespace-file", "engine-namespace"])
def test_secrets_namespace(tmp_path: Path, env: dict[str, str], own: str | None, expected: str) -> None:
    if own is not None:
        (tmp_path / "namespace").write_text(own + "\n")
    assert secrets_namespace(load_settings(env=env), account_dir=tmp_path) == expected


@pytest.mark.parametrize(("env", "file", "expected"), [
    ({}, None, "auto"),
    ({"GITTRIGGER_SECRETS_FROM": "Kubernetes"}, None, "kubernetes"),
    ({}, "sources: {secrets_from: files}", "files"),
    ({"GITTRIGGER_SECRETS_FROM": "auto"}, "sources: {secrets_from: files}", "auto"),
], ids=["default", "env-any-case", "file", "env-over-file"])
def test_secrets_from_setting(tmp_path: Path, env: dict[str, str], file: str | None, expected: str) -> None:
    path = None
    if file is not None:
        path = tmp_path / "settings.yaml"
        path.write_text(file)
    assert load_settings(file=path, env=env).sources.secrets_from == expected


@pytest.mark.parametrize(("env", "file", "where"), [
    ({"GITTRIGGER_SECRETS_FROM": "vault"}, None, "GITTRIGGER_SECRETS_FROM"),
    ({}, "sources: {secrets_from: [files]}", "sources.secrets_from"),
], ids=["env", "file"])
def test_bad_secrets_from_names_the_setting(tmp_path: Path, env: dict[str, str], file: str | None,
                                            where: str) -> None:
    path = None
    if file is not None:
        path = tmp_path / "settings.yaml"
        path.write_text(file)
    with pytest.raises(InvalidSpec) as caught:
        load_settings(file=path, env=env)
    assert where in caught.value.path and "auto, files, kubernetes" in caught.value.message


def write_kubeconfig(path: Path, fake: FakeKube) -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": fake.url}}],
        "users": [{"name": "me", "user": {}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "me"}}],
    }))
    return path


async def test_open_secrets_builds_the_chosen_resolver(fake: FakeKube, tmp_path: Path) -> None:
    """files -> FileSecrets over the secrets dir; kubernetes -> KubeSecrets with the executor's client config."""
    async with open_secrets(load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path)}), environ={},
                            account_dir=tmp_path) as files:
        assert isinstance(files, FileSecrets) and repr(files) == repr(FileSecrets(tmp_path / "secrets"))
    settings = load_settings(env={"GITTRIGGER_SECRETS_FROM": "kubernetes", "GITTRIGGER_KUBE_NAMESPACE": NS,
                                  "GITTRIGGER_KUBECONFIG": str(write_kubeconfig(tmp_path / "kubeconfig", fake))})
    async with open_secrets(settings, environ={}, account_dir=tmp_path) as kube:
        assert isinstance(kube, KubeSecrets) and kube.namespace == NS
        assert await asyncio.to_thread(kube.resolve, "hook", "token") == VALUE.encode()


# -- serve against the fake API -------------------------------------------------------------------


def github_source(*, secret: dict[str, str], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, str] = {"name": "gh"}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": meta, "spec": {"github": {
        "push": {"webhook": {"endpoint": "/hook", "port": "12000", "method": "POST"}, "events": ["push"],
                 "webhookSecret": secret}}}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_env(tmp_path: Path, fake: FakeKube) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITTRIGGER_", "KUBERNETES_"))}
    return {**env, "GITTRIGGER_EXECUTOR": "kubernetes", "GITTRIGGER_KUBE_NAMESPACE": NS,
            "GITTRIGGER_KUBECONFIG": str(write_kubeconfig(tmp_path / "kubeconfig", fake)),
            "GITTRIGGER_DATA_DIR": str(tmp_path / "data"), "GITTRIGGER_LOG_JSON": "true"}


@pytest.mark.timeout(60)
async def test_serve_verifies_github_deliveries_with_a_secret_only_in_the_api(
        fake: FakeKube, tmp_path: Path) -> None:
    """``executor.kind: kubernetes``, no secrets dir: the webhook secret comes from the fake API's
    Secret; a correctly signed delivery is accepted (202), a wrong signature refused (401)."""
    manifests = tmp_path / "eventsource.yaml"
    manifests.write_text(yaml.safe_dump(github_source(secret={"name": "hook", "key": "token"})))
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gittrigger", "serve", str(manifests), "--port", str(port),
        env=serve_env(tmp_path, fake), cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    body = json.dumps({"ref": "refs/heads/main", "after": "0" * 40, "repository": {"full_name": "dev/demo"}}).encode()

    def headers(signature: str, delivery: str) -> dict[str, str]:
        return {"Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": signature}

    good = "sha256=" + hmac.new(VALUE.encode(), body, hashlib.sha256).hexdigest()
    bad = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert server.returncode is None, "serve exited"
                await asyncio.sleep(0.1)
            async with session.post(f"http://127.0.0.1:{port}/hook", data=body, headers=headers(good, "d-1")) as resp:
                assert resp.status == 202, await resp.text()
            async with session.post(f"http://127.0.0.1:{port}/hook", data=body, headers=headers(bad, "d-2")) as resp:
                assert resp.status == 401
        assert gets(fake) >= 1
    finally:
        server.terminate()
        _, stderr = await server.communicate()
    assert VALUE not in stderr.decode()


@pytest.mark.timeout(60)
async def test_serve_check_reports_a_missing_secret_with_its_field_path(fake: FakeKube, tmp_path: Path) -> None:
    manifests = tmp_path / "eventsource.yaml"
    manifests.write_text(yaml.safe_dump(github_source(secret={"name": "absent", "key": "token"})))
    check = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gittrigger", "serve", "--check", str(manifests), env=serve_env(tmp_path, fake),
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await check.communicate()
    assert check.returncode == 2
    assert "gh.spec.github.push.webhookSecret" in stderr.decode() and "absent/token not found" in stderr.decode()
    assert gets(fake) == 1
