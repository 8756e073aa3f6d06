"""The webhook edge and the endpoint registry: signed deliveries from every host through a real app."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from gittrigger.assembly import Parts, assemble
from gittrigger.eventsources import EventSourceRegistry
from gittrigger.http import webhooks
from gittrigger.http.app import make_app
from gittrigger.repos import FileSecrets
from gittrigger.settings import load_settings
from sensors.eventlog import AuditEntry, StoredEvent
from sensors.events import Event
from workflows.errors import InvalidSpec, NotFound, Unavailable

FIXTURES = Path(__file__).parent / "fixtures" / "eventsources"
SECRETS = {
    ("github-hook", "secret"): b"gh-s3cret",
    ("gitlab-hook", "token"): b"gl-t0ken",
    ("gitea-hook", "secret"): b"gt-s3cret",
    ("bitbucket-hook", "secret"): b"bb-s3cret",
    ("generic-hook", "token"): b"bearer-t0ken",
}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class MemoryLog:
    """An in-memory :class:`sensors.eventlog.EventLog` for the edge's tests."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.rejections: list[dict[str, Any]] = []
        self.unavailable = False

    async def append(self, event: Event, *, source_kind: str, delivery_id: str | None,
                     received_at: datetime) -> tuple[StoredEvent, bool]:
        if self.unavailable:
            raise Unavailable("disk full")
        for stored in self.events:
            if delivery_id is not None and (stored.event.event_source_name, stored.delivery_id) == (
                event.event_source_name, delivery_id
            ):
                return stored, False
        stored = StoredEvent(seq=len(self.events) + 1, event=event, source_kind=source_kind,
                             delivery_id=delivery_id, received_at=received_at,
                             audit=(AuditEntry(at=received_at, kind="received"),))
        self.events.append(stored)
        return stored, True

    async def reject(self, *, source_kind: str, event_source_name: str, event_name: str,
                     delivery_id: str | None, reason: str, received_at: datetime) -> None:
        self.rejections.append({"source_kind": source_kind, "source": f"{event_source_name}/{event_name}",
                                "delivery_id": delivery_id, "reason": reason})

    async def pending(self, *, limit: int = 100, after_seq: int = 0) -> Sequence[StoredEvent]:
        return [s for s in self.events if not s.dispatched and s.seq > after_seq][:limit]

    async def mark_dispatched(self, seq: int) -> None:
        self.events[seq - 1] = replace(self.events[seq - 1], dispatched=True)

    async def audit(self, seq: int, entry: AuditEntry) -> None:
        stored = self.events[seq - 1]
        self.events[seq - 1] = replace(stored, audit=(*stored.audit, entry))

    async def get(self, event_id: str) -> StoredEvent:
        for stored in self.events:
            if stored.event.context.id == event_id:
                return stored
        raise NotFound("event", event_id)

    async def list(self, *, limit: int = 50, before_seq: int | None = None) -> Sequence[StoredEvent]:
        newest = [s for s in reversed(self.events) if before_seq is None or s.seq < before_seq]
        return newest[:limit]


class DictSecrets:
    def __init__(self, values: Mapping[tuple[str, str], bytes]) -> None:
        self.values = values

    def resolve(self, name: str, key: str) -> bytes:
        try:
            return self.values[(name, key)]
        except KeyError:
            raise NotFound("secret", f"{name}/{key}") from None


def manifests() -> list[Any]:
    return list(yaml.safe_load_all((FIXTURES / "eventsources.yaml").read_text()))


def payload(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sha256_hex(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def github_headers(body: bytes, *, event: str = "push", delivery: str | None = None,
                   secret: bytes | None = SECRETS[("github-hook", "secret")]) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event,
               "X-GitHub-Delivery": delivery or str(uuid.uuid4())}
    if secret is not None:
        headers["X-Hub-Signature-256"] = "sha256=" + sha256_hex(secret, body)
    return headers


class Wakeups:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def event_log() -> MemoryLog:
    return MemoryLog()


@pytest.fixture
def wakeups() -> Wakeups:
    return Wakeups()


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_ISOLATION": "none"})
    async with assemble(settings, memory=True) as built:
        yield built


def build_app(parts: Parts, tmp_path: Path, *, log: MemoryLog, notify: Wakeups,
              registry: EventSourceRegistry | None = None) -> web.Application:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path)})
    app = make_app(settings, engine=parts.engine, store=parts.store)
    registry = registry or EventSourceRegistry.from_manifests(manifests(), secrets=DictSecrets(SECRETS))
    webhooks.setup(app, registry=registry, log=log, notify=notify, clock=lambda: NOW)
    return app


@pytest.fixture
async def client(aiohttp_client: Any, parts: Parts, tmp_path: Path, event_log: MemoryLog,
                 wakeups: Wakeups) -> TestClient[Any, web.Application]:
    return await aiohttp_client(build_app(parts, tmp_path, log=event_log, notify=wakeups))  # type: ignore[no-any-return]


@pytest.fixture
def captured() -> Iterator[list[MutableMapping[str, Any]]]:
    with structlog.testing.capture_logs() as logs:
        yield logs


# --- the registry ---------------------------------------------------------------------------


def test_registry_serves_every_webhook_event_with_its_secret() -> None:
    """Every webhook event is served at its endpoint with the secret resolved; calendar is not."""
    registry = EventSourceRegistry.from_manifests(
        [*manifests(), {"kind": "Sensor", "metadata": {"name": "x"}}], secrets=DictSecrets(SECRETS)
    )
    table = {e.path: (e.kind, e.label, e.method, e.secret) for e in registry.endpoints()}
    assert table == {
        "/bitbucket": ("bitbucket", "bitbucket/push", "POST", b"bb-s3cret"),
        "/forgejo": ("forgejo", "gitea/forgejo-push", "POST", b"gt-s3cret"),
        "/gitea": ("gitea", "gitea/push", "POST", b"gt-s3cret"),
        "/github": ("github", "github/push", "POST", b"gh-s3cret"),
        "/github-open": ("github", "github/open", "POST", None),
        "/gitlab": ("gitlab", "gitlab/push", "POST", b"gl-t0ken"),
        "/hooks/build": ("webhook", "hooks/build", "POST", b"bearer-t0ken"),
        "/hooks/query": ("webhook", "hooks/query", "GET", None),
    }
    hook = registry.lookup("/hooks/build")
    assert hook is not None and hook.max_payload_size == 4096
    assert "s3cret" not in repr(registry.lookup("/github"))


def _one(spec: Mapping[str, Any], name: str = "es") -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": {"name": name}, "spec": spec}


def test_two_events_on_one_endpoint_is_a_config_error_naming_both() -> None:
    """Two events at one path: the error names the field of the second and the origin of the first."""
    first = _one({"github": {"a": {"webhook": {"endpoint": "/push", "port": "1"}}}}, "one")
    second = _one({"gitlab": {"b": {"webhook": {"endpoint": "/push", "port": "2"}}}}, "two")
    with pytest.raises(InvalidSpec) as e:
        EventSourceRegistry.from_manifests([first, second], secrets=DictSecrets({}))
    assert e.value.path == "two.spec.gitlab.b.webhook.endpoint"
    assert "one.spec.github.a" in e.value.message and "'/push'" in e.value.message


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"github": {"a": {"webhook": {"endpoint": "/a", "port": "1"}, "webhookSecret": {"name": "gone", "key": "k"}}}},
         "es.spec.github.a.webhookSecret"),
        ({"gitlab": {"a": {"webhook": {"endpoint": "/a", "port": "1"}, "secretToken": {"name": "gone", "key": "k"}}}},
         "es.spec.gitlab.a.secretToken"),
        ({"webhook": {"a": {"endpoint": "/a", "port": "1", "authSecret": {"name": "gone", "key": "k"}}}},
         "es.spec.webhook.a.authSecret"),
    ],
    ids=["github", "gitlab", "generic"],
)
def test_missing_secret_is_a_config_error_naming_it(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as e:
        EventSourceRegistry.from_manifests([_one(spec)], secrets=DictSecrets({}))
    assert e.value.path == field
    assert "gone/k" in e.value.message


def test_optional_missing_secret_and_file_secrets(tmp_path: Path) -> None:
    """An optional missing secret means unsigned; FileSecrets reads <root>/<name>/<key>; empty is an error."""
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "s").write_bytes(b"abc")
    (tmp_path / "hook" / "empty").write_bytes(b"")
    spec = {"github": {
        "a": {"webhook": {"endpoint": "/a", "port": "1"}, "webhookSecret": {"name": "hook", "key": "s"}},
        "b": {"webhook": {"endpoint": "/b", "port": "1"},
              "webhookSecret": {"name": "gone", "key": "k", "optional": True}},
    }}
    registry = EventSourceRegistry.from_manifests([_one(spec)], secrets=FileSecrets(tmp_path))
    assert [(e.path, e.secret) for e in registry.endpoints()] == [("/a", b"abc"), ("/b", None)]
    empty = {"github": {"a": {"webhook": {"endpoint": "/a", "port": "1"},
                              "webhookSecret": {"name": "hook", "key": "empty"}}}}
    with pytest.raises(InvalidSpec, match="hook/empty is empty"):
        EventSourceRegistry.from_manifests([_one(empty)], secrets=FileSecrets(tmp_path))


def test_bad_manifest_names_its_field() -> None:
    bad = _one({"github": {"a": {"webhook": {"endpoint": "no-slash", "port": "1"}}}}, "broken")
    with pytest.raises(InvalidSpec) as e:
        EventSourceRegistry.from_manifests([bad], secrets=DictSecrets({}))
    assert e.value.path == "broken.spec.github.a.webhook.endpoint"


def test_replace_swaps_the_whole_table() -> None:
    registry = EventSourceRegistry.from_manifests(manifests(), secrets=DictSecrets(SECRETS))
    other = EventSourceRegistry.from_manifests(
        [_one({"webhook": {"x": {"endpoint": "/x", "port": "1"}}})], secrets=DictSecrets({})
    )
    registry.replace(other)
    assert registry.lookup("/github") is None
    assert registry.lookup("/x") is not None and len(registry) == 1


# --- deliveries through the app ------------------------------------------------------------

Client = TestClient[Any, web.Application]


async def test_signed_github_push_is_stored_before_202(client: Client, event_log: MemoryLog, wakeups: Wakeups,
                                                       captured: list[MutableMapping[str, Any]]) -> None:
    """A signed push: stored in the log in Argo's envelope, answered 202 with its id, dispatcher woken."""
    body = payload("github-push.json")
    resp = await client.post("/github", data=body, headers={**github_headers(body, delivery="d-1"),
                                                            "X-Request-Id": "req-1"})
    assert resp.status == 202, await resp.text()
    answer = await resp.json()
    [stored] = event_log.events
    event = stored.event
    assert answer == {"id": event.context.id}
    assert (stored.source_kind, stored.delivery_id, stored.received_at) == ("github", "d-1", NOW)
    assert (event.event_source_name, event.event_name, event.context.type) == ("github", "push", "github")
    assert event.data["headers"]["X-Github-Event"] == ["push"]
    assert event.data["body"]["ref"] == "refs/heads/main"
    assert event.data["body"]["X-GitHub-Delivery"] == "d-1"
    assert event.data["body"]["head_commit"]["message"].startswith('Fix "quoted" {{ things }} and $(rm -rf /)')
    assert wakeups.count == 1
    [line] = [c for c in captured if c["event"].startswith("webhook")]
    assert line["event"] == "webhook accepted" and line["log_level"] == "info"
    fields = (line["source"], line["delivery"], line["request_id"], line["status"])
    assert fields == ("github/push", "d-1", "req-1", 202)
    assert line["reason"] == "stored"


async def test_github_redelivery_runs_once_and_names_the_original(client: Client, event_log: MemoryLog,
                                                                   wakeups: Wakeups) -> None:
    """The same X-GitHub-Delivery twice: one event; the second answer is 200 with the original id."""
    body = payload("github-push.json")
    headers = github_headers(body, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    first = await client.post("/github", data=body, headers=headers)
    second = await client.post("/github", data=body, headers=headers)
    assert first.status == 202 and second.status == 200
    original = (await first.json())["id"]
    assert await second.json() == {"id": original, "duplicate": True}
    assert len(event_log.events) == 1 and wakeups.count == 1


def _gitlab(body: bytes, secret: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret.decode(),
            "Idempotency-Key": "gl-1"}


def _gitea(body: bytes, secret: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Gitea-Event": "push", "X-Gitea-Delivery": "gt-1",
            "X-Gitea-Signature": sha256_hex(secret, body)}


def _forgejo(body: bytes, secret: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Forgejo-Event": "push", "X-Forgejo-Delivery": "fj-1",
            "X-Forgejo-Signature": sha256_hex(secret, body)}


def _bitbucket(body: bytes, secret: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Event-Key": "repo:push", "X-Request-UUID": "bb-1",
            "X-Hub-Signature": "sha256=" + sha256_hex(secret, body)}


def _generic(body: bytes, secret: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {secret.decode()}",
            "Idempotency-Key": "gen-1"}


def _github(body: bytes, secret: bytes) -> dict[str, str]:
    return github_headers(body, delivery="gh-1", secret=secret)


HOSTS = [
    # (path, fixture, headers, secret, type, source/event, delivery id, a body path to check)
    ("/github", "github-push.json", _github, ("github-hook", "secret"), "github", "github/push", "gh-1", "ref"),
    ("/gitlab", "gitlab-push.json", _gitlab, ("gitlab-hook", "token"), "gitlab", "gitlab/push", "gl-1", "ref"),
    ("/gitea", "gitea-push.json", _gitea, ("gitea-hook", "secret"), "gitea", "gitea/push", "gt-1", "ref"),
    ("/forgejo", "gitea-push.json", _forgejo, ("gitea-hook", "secret"), "forgejo", "gitea/forgejo-push", "fj-1",
     "ref"),
    ("/bitbucket", "bitbucket-push.json", _bitbucket, ("bitbucket-hook", "secret"), "bitbucket", "bitbucket/push",
     "bb-1", "push"),
    ("/hooks/build", "generic-build.json", _generic, ("generic-hook", "token"), "webhook", "hooks/build", "gen-1",
     "revision"),
]
HOST_IDS = ["github", "gitlab", "gitea", "forgejo", "bitbucket", "generic"]


@pytest.mark.parametrize(("path", "fixture", "sign", "secret", "kind", "label", "delivery", "key"), HOSTS,
                         ids=HOST_IDS)
async def test_each_host_signed_delivery_is_accepted_once(
    client: Client, event_log: MemoryLog, path: str, fixture: str, sign: Any, secret: tuple[str, str], kind: str,
    label: str, delivery: str, key: str,
) -> None:
    """Signed with the right secret -> 202 and one event; sent again -> 200 duplicate naming the original."""
    body = payload(fixture)
    headers = sign(body, SECRETS[secret])
    resp = await client.post(path, data=body, headers=headers)
    assert resp.status == 202, await resp.text()
    [stored] = event_log.events
    assert (stored.source_kind, stored.delivery_id, stored.event.context.type) == (kind, delivery, kind)
    assert f"{stored.event.event_source_name}/{stored.event.event_name}" == label
    assert key in stored.event.data["body"]
    assert SECRETS[secret].decode() not in json.dumps(stored.event.data)  # tokens are masked, never stored
    again = await client.post(path, data=body, headers=headers)
    assert again.status == 200
    assert await again.json() == {"id": stored.event.context.id, "duplicate": True}
    assert len(event_log.events) == 1


@pytest.mark.parametrize(("path", "fixture", "sign", "secret", "kind", "label", "delivery", "key"), HOSTS,
                         ids=HOST_IDS)
@pytest.mark.parametrize("tamper", ["wrong-secret", "missing"])
async def test_each_host_bad_or_missing_signature_is_401(
    client: Client, event_log: MemoryLog, captured: list[MutableMapping[str, Any]], tamper: str, path: str,
    fixture: str, sign: Any, secret: tuple[str, str], kind: str, label: str, delivery: str, key: str,
) -> None:
    """A wrong or absent signature/token: 401 in Argo's shape, a rejection recorded, the secret never logged."""
    body = payload(fixture)
    headers = sign(body, b"not-the-secret")
    if tamper == "missing":
        for name in ("X-Hub-Signature-256", "X-Hub-Signature", "X-Gitlab-Token", "X-Gitea-Signature",
                     "X-Forgejo-Signature", "Authorization"):
            headers.pop(name, None)
    resp = await client.post(path, data=body, headers=headers)
    assert resp.status == 401
    answer = await resp.json()
    assert answer["code"] == 16 and answer["message"]
    assert event_log.events == []
    [rejection] = event_log.rejections
    assert (rejection["source_kind"], rejection["source"]) == (kind, label)
    [line] = [c for c in captured if c["event"].startswith("webhook")]
    assert line["event"] == "webhook rejected" and line["status"] == 401 and line["reason"] == rejection["reason"]
    real = SECRETS[secret].decode()
    assert real not in json.dumps(captured, default=str) and real not in json.dumps(answer)
    assert "not-the-secret" not in json.dumps(captured, default=str)


async def test_github_ping_is_answered_without_an_event(client: Client, event_log: MemoryLog,
                                                        wakeups: Wakeups) -> None:
    body = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
    resp = await client.post("/github", data=body, headers=github_headers(body, event="ping"))
    assert resp.status == 200
    assert await resp.json() == {"pong": True}
    assert event_log.events == [] and event_log.rejections == [] and wakeups.count == 0


async def test_github_event_not_in_events_is_ignored_with_a_reason(client: Client, event_log: MemoryLog) -> None:
    """``events: [push, pull_request]`` and an ``issues`` delivery: 200 ignored, recorded, no event."""
    body = b'{"action": "opened"}'
    resp = await client.post("/github", data=body, headers=github_headers(body, event="issues"))
    assert resp.status == 200
    answer = await resp.json()
    assert answer["ignored"] is True and "'issues'" in answer["reason"]
    assert event_log.events == []
    assert [r["reason"] for r in event_log.rejections] == [answer["reason"]]


async def test_star_events_and_no_secret_accept_any_unsigned_delivery(client: Client, event_log: MemoryLog) -> None:
    body = b'{"action": "opened"}'
    resp = await client.post("/github-open", data=body, headers=github_headers(body, event="issues", secret=None))
    assert resp.status == 202
    assert event_log.events[0].event.data["headers"]["X-Github-Event"] == ["issues"]


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/github", b'{"ref": ', None),
        ("/github", b"[1, 2]", None),
        ("/hooks/build", b"{not json", {"Authorization": "Bearer bearer-t0ken"}),
    ],
    ids=["github-truncated", "github-not-object", "generic"],
)
async def test_malformed_json_is_400(client: Client, event_log: MemoryLog, path: str, body: bytes,
                                     headers: dict[str, str] | None) -> None:
    resp = await client.post(path, data=body, headers=headers or github_headers(body))
    assert resp.status == 400
    answer = await resp.json()
    assert answer["code"] == 3 and "not valid JSON" in answer["message"]
    assert event_log.events == [] and len(event_log.rejections) == 1


async def test_unknown_endpoint_is_404_in_argo_shape(client: Client, event_log: MemoryLog) -> None:
    resp = await client.post("/nowhere", data=b"{}")
    assert resp.status == 404
    answer = await resp.json()
    assert answer["code"] == 5 and "/nowhere" in answer["message"]
    assert resp.headers["X-Request-Id"]
    assert event_log.rejections == []


async def test_other_routes_keep_working_and_keep_their_405(client: Client) -> None:
    """The catch-all does not shadow the app's routes: /healthz answers, PUT /healthz is 405."""
    assert (await client.get("/healthz")).status == 200
    resp = await client.put("/healthz")
    assert resp.status == 405
    assert "GET" in resp.headers["Allow"]


async def test_wrong_method_is_405(client: Client, event_log: MemoryLog) -> None:
    resp = await client.get("/github")
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"
    assert (await resp.json())["code"] == 12
    assert len(event_log.rejections) == 1


async def test_generic_get_endpoint_takes_the_query(client: Client, event_log: MemoryLog) -> None:
    resp = await client.get("/hooks/query", params=[("sha", "abc"), ("sha", "def"), ("x", "1")])
    assert resp.status == 202, await resp.text()
    assert event_log.events[0].event.data["body"] == {"sha": ["abc", "def"], "x": ["1"]}
    assert "header" in event_log.events[0].event.data
    assert (await client.post("/hooks/query", data=b"{}")).status == 405


async def test_generic_without_idempotency_key_is_never_deduplicated(client: Client, event_log: MemoryLog) -> None:
    auth = {"Authorization": "Bearer bearer-t0ken"}
    for _ in range(2):
        assert (await client.post("/hooks/build", data=b"{}", headers=auth)).status == 202
    assert len(event_log.events) == 2
    assert event_log.events[0].event.data["header"]["Authorization"] == ["*** Masked Auth Secret ***"]


async def test_body_over_max_payload_size_is_413(client: Client, event_log: MemoryLog) -> None:
    """maxPayloadSize 4096: refused from Content-Length, and from a chunked body without one."""
    auth = {"Authorization": "Bearer bearer-t0ken"}
    big = b'{"pad": "' + b"x" * 5000 + b'"}'
    resp = await client.post("/hooks/build", data=big, headers=auth)
    assert resp.status == 413
    assert "4096" in (await resp.json())["message"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    resp = await client.post("/hooks/build", data=chunks(), headers=auth)
    assert resp.status == 413
    exact = b'{"pad": "' + b"x" * (4096 - 11) + b'"}'
    assert len(exact) == 4096
    assert (await client.post("/hooks/build", data=exact, headers=auth)).status == 202
    assert len(event_log.events) == 1 and len(event_log.rejections) == 2


async def test_default_max_payload_is_one_mebibyte(client: Client, event_log: MemoryLog) -> None:
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    resp = await client.post("/github", data=io.BytesIO(body), headers=github_headers(body))
    assert resp.status == 413
    assert event_log.events == []


async def test_log_unavailable_is_503_and_nothing_is_woken(client: Client, event_log: MemoryLog,
                                                           wakeups: Wakeups) -> None:
    event_log.unavailable = True
    body = payload("github-push.json")
    resp = await client.post("/github", data=body, headers=github_headers(body))
    assert resp.status == 503
    assert (await resp.json())["code"] == 14
    assert wakeups.count == 0


async def test_replaced_registry_is_served_at_once(client: Client, event_log: MemoryLog) -> None:
    """A reload swaps the table: the old endpoint is gone, the new one answers, no route change."""
    new = EventSourceRegistry.from_manifests(
        [_one({"webhook": {"later": {"endpoint": "/later", "port": "1"}}})], secrets=DictSecrets({})
    )
    client.app[webhooks.REGISTRY].replace(new)
    assert (await client.post("/github", data=b"{}")).status == 404
    assert (await client.post("/later", data=b"{}")).status == 202


# --- a real client on a real socket ---------------------------------------------------------


async def test_curl_posts_a_signed_github_push_over_a_real_socket(parts: Parts, tmp_path: Path,
                                                                  event_log: MemoryLog, wakeups: Wakeups) -> None:
    """curl, a loopback port, the app as served: 202, then the redelivery answered as a duplicate."""
    curl = shutil.which("curl")
    assert curl, "curl is needed for this test"
    runner = web.AppRunner(build_app(parts, tmp_path, log=event_log, notify=wakeups))
    await runner.setup()
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        body = payload("github-push.json")
        (tmp_path / "body.json").write_bytes(body)
        headers = github_headers(body, delivery="curl-1")
        argv = [curl, "-sS", "--max-time", "10", "-X", "POST", "--data-binary", f"@{tmp_path / 'body.json'}",
                "-w", "\n%{http_code}", f"http://127.0.0.1:{port}/github"]
        for name, value in headers.items():
            argv += ["-H", f"{name}: {value}"]
        answers = []
        for _ in range(2):
            proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            text, code = out.decode().rsplit("\n", 1)
            answers.append((int(code), json.loads(text)))
    finally:
        await runner.cleanup()
    [stored] = event_log.events
    assert answers == [(202, {"id": stored.event.context.id}),
                       (200, {"id": stored.event.context.id, "duplicate": True})]
    assert stored.delivery_id == "curl-1"


async def test_deliveries_stay_out_of_the_access_log_api_requests_do_not(
        client: Client, caplog: pytest.LogCaptureFixture) -> None:
    """A delivery has its own line (source, delivery, reason); the access log keeps the rest."""
    body = b'{"action": "opened"}'
    with caplog.at_level("INFO", logger="aiohttp.access"):
        resp = await client.post("/github-open", data=body, headers=github_headers(body, event="issues", secret=None))
        assert resp.status == 202
        assert (await client.get("/healthz")).status == 200
        await asyncio.sleep(0)  # the access line is written once the response is sent
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 1 and "/healthz" in lines[0]


@pytest.mark.parametrize(("hook", "accepted"), [("Push Hook", True), ("Merge Request Hook", False)])
async def test_gitlab_events_name_the_hooks_a_source_takes(client: Client, event_log: MemoryLog, hook: str,
                                                           accepted: bool) -> None:
    """``events: [PushEvents]`` (the hook option Argo Events registers) admits ``Push Hook`` deliveries only."""
    body = payload("gitlab-push.json")
    headers = {**_gitlab(body, SECRETS[("gitlab-hook", "token")]), "X-Gitlab-Event": hook}
    resp = await client.post("/gitlab", data=body, headers=headers)
    if accepted:
        assert resp.status == 202 and len(event_log.events) == 1
    else:
        answer = await resp.json()
        assert resp.status == 200 and answer["ignored"] and "Merge Request Hook" in answer["reason"]
        assert not event_log.events


class HeldLog(MemoryLog):
    """append waits until released, so a test can look at the edge while a delivery is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def append(self, event: Event, *, source_kind: str, delivery_id: str | None,
                     received_at: datetime) -> tuple[StoredEvent, bool]:
        self.entered.set()
        await self.release.wait()
        return await super().append(event, source_kind=source_kind, delivery_id=delivery_id,
                                    received_at=received_at)


async def test_delivery_load_counts_deliveries_being_answered(aiohttp_client: Any, parts: Parts,
                                                              tmp_path: Path, wakeups: Wakeups) -> None:
    """The dispatcher's busy signal: true exactly while a delivery is being answered, whatever
    its outcome (stored, refused, unknown endpoint)."""
    held = HeldLog()
    app = build_app(parts, tmp_path, log=held, notify=wakeups)
    now = [100.0]
    load = app[webhooks.LOAD] = webhooks.DeliveryLoad(recent_s=0.01, clock=lambda: now[0])
    client = await aiohttp_client(app)
    assert not load.busy()
    body = payload("github-push.json")
    post = asyncio.create_task(client.post("/github", data=body, headers=github_headers(body, delivery="d-9")))
    await asyncio.wait_for(held.entered.wait(), 5)
    assert load.busy() and load.in_flight == 1
    now[0] += 60  # long in flight: busy because it is being answered, not because it is recent
    assert load.busy()
    held.release.set()
    resp = await post
    assert resp.status == 202
    assert load.in_flight == 0 and not load.busy()  # it arrived a minute ago
    refused = await client.post("/github", data=body, headers=github_headers(body, secret=b"wrong"))
    assert refused.status == 401
    assert load.in_flight == 0 and load.busy()  # one arrived just now: more may be on their way
    now[0] += 0.011
    assert not load.busy()
    unknown = await client.post("/nowhere", data=body)
    assert unknown.status == 404
    assert load.in_flight == 0
