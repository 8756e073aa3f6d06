"""The streaming Argo API (:mod:`gittrigger.http.streams`): logs, follow, the workflow watch.

Over a real loopback server (aiohttp's test server) with a real engine running short workflows
through the local executor; pure parsing is checked table-driven.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from gittrigger.assembly import Parts, assemble
from gittrigger.http import streams
from gittrigger.http.app import make_app
from gittrigger.settings import load_settings
from workflows.errors import InvalidSpec
from workflows.executors.base import LogLine
from workflows.model.ids import pod_name
from workflows.store.base import ListOptions

Client = TestClient[Any, web.Application]


def script(name: str, source: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "container": {"image": "busybox", "command": ["sh", "-c", source]}, **extra}


def two_steps(name: str) -> dict[str, Any]:
    """Steps ``one`` then ``two``, each printing two lines; ``two`` carries the label role=second."""
    return {
        "metadata": {"name": name, "labels": {"app": "ci"}},
        "spec": {"entrypoint": "main", "templates": [
            {"name": "main", "steps": [[{"name": "one", "template": "first"}],
                                       [{"name": "two", "template": "second"}]]},
            script("first", "echo a1; echo a2"),
            script("second", "echo b1; echo b2", metadata={"labels": {"role": "second"}}),
        ]},
    }


def gated(name: str, gate: Path) -> dict[str, Any]:
    """One pod that prints ``first``, waits until ``gate`` exists, then prints ``last``."""
    return {"metadata": {"name": name}, "spec": {"entrypoint": "main", "templates": [
        script("main", f"echo first; while [ ! -e {gate} ]; do sleep 0.05; done; echo last")]}}


@pytest.fixture(autouse=True)
async def no_pending_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running once its server and engine are closed."""
    before = set(asyncio.all_tasks())
    yield
    for _ in range(50):
        left = {t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()}
        if not left:
            return
        await asyncio.sleep(0.02)
    assert not left, f"tasks left pending: {sorted(t.get_name() for t in left)}"


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path / "data"), "GITTRIGGER_ISOLATION": "none"})
    async with assemble(settings) as built:  # SQLite, with its background log flusher
        yield built


class ServeLikeServer(TestServer):
    """A loopback test server that, like ``gittrigger serve``'s AppRunner, does not cancel handlers whose
    client went away (aiohttp's TestServer does), so the streams must notice departures themselves."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        kwargs["handler_cancellation"] = False
        return web.AppRunner(self.app, **kwargs)


@pytest.fixture
async def client(aiohttp_client: Any, parts: Parts, tmp_path: Path) -> Client:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path / "data")})
    app = make_app(settings, engine=parts.engine, store=parts.store)
    return await aiohttp_client(ServeLikeServer(app))  # type: ignore[no-any-return]


async def run(parts: Parts, manifest: dict[str, Any], namespace: str = "ci") -> dict[str, Any]:
    stored = await parts.engine.submit(manifest, namespace=namespace)
    final = await asyncio.wait_for(parts.engine.wait(namespace, stored["metadata"]["name"]), 60)
    assert final["status"]["phase"] == "Succeeded", final["status"]
    return final


def pod_of(wf: dict[str, Any], display_name: str) -> str:
    [node] = [n for n in wf["status"]["nodes"].values() if n["displayName"] == display_name]
    return pod_name(wf["metadata"]["name"], node["name"], node["templateName"])


async def entries(resp: ClientResponse) -> list[dict[str, Any]]:
    """Every ndjson frame of a finished stream."""
    assert resp.status == 200, await resp.text()
    return [json.loads(line) for line in (await resp.text()).splitlines()]


async def next_frame(resp: ClientResponse) -> dict[str, Any] | None:
    """The next frame of an ndjson stream (None at its end)."""
    line = await asyncio.wait_for(resp.content.readline(), 30)
    return json.loads(line) if line else None


def awaiting(task: asyncio.Task[Any], function: str) -> bool:
    """Whether ``task`` is suspended somewhere inside ``function`` (walks the await chain)."""
    coro: Any = task.get_coro()
    while coro is not None:
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is not None and code.co_name == function:
            return True
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return False


async def until(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# -- logs ----------------------------------------------------------------------------------------


async def test_logs_of_a_finished_run(client: Client, parts: Parts) -> None:
    """All pods' lines in write order, each with its pod name, as LogEntry results."""
    wf = await run(parts, two_steps("logs"))
    got = await entries(await client.get("/api/v1/workflows/ci/logs/log"))
    one, two = pod_of(wf, "one"), pod_of(wf, "two")
    assert got == [{"result": {"content": c, "podName": p}} for c, p in
                   [("a1", one), ("a2", one), ("b1", two), ("b2", two)]]


async def test_pod_filters_and_the_pod_logs_route(client: Client, parts: Parts) -> None:
    """podName (query or path, pod name or node id) and a label selector pick pods."""
    wf = await run(parts, two_steps("pods"))
    two = pod_of(wf, "two")
    [node_id] = [k for k, n in wf["status"]["nodes"].items() if n["displayName"] == "two"]
    for url, params in [("/api/v1/workflows/ci/pods/log", {"podName": two}),
                        (f"/api/v1/workflows/ci/pods/{two}/log", {}),
                        (f"/api/v1/workflows/ci/pods/{node_id}/log", {}),
                        ("/api/v1/workflows/ci/pods/log", {"selector": "role=second"})]:
        got = await entries(await client.get(url, params=params))
        assert [e["result"]["content"] for e in got] == ["b1", "b2"], (url, params)
    none = await entries(await client.get("/api/v1/workflows/ci/pods/log", params={"selector": "role=third"}))
    assert none == []


@pytest.mark.parametrize(("params", "expected"), [
    ({"logOptions.tailLines": "1"}, ["a2", "b2"]),
    ({"logOptions.tailLines": "0"}, []),
    ({"grep": "^b"}, ["b1", "b2"]),
    ({"grep": "2$", "logOptions.tailLines": "1"}, ["a2", "b2"]),
    ({"logOptions.container": "wait"}, []),
    ({"logOptions.sinceSeconds": "3600"}, ["a1", "a2", "b1", "b2"]),
    ({"logOptions.sinceTime": "2999-01-01T00:00:00Z"}, []),
], ids=["tail-per-pod", "tail-zero", "grep", "grep-after-tail", "other-container", "since-seconds", "since-future"])
async def test_log_options(client: Client, parts: Parts, params: dict[str, str], expected: list[str]) -> None:
    await run(parts, two_steps("opts"))
    got = await entries(await client.get("/api/v1/workflows/ci/opts/log", params=params))
    assert [e["result"]["content"] for e in got] == expected


async def test_timestamps_prefix_each_line(client: Client, parts: Parts) -> None:
    """With timestamps, content starts with the line's RFC3339Nano time, as kubelet writes it."""
    await run(parts, two_steps("stamps"))
    got = await entries(await client.get("/api/v1/workflows/ci/stamps/log", params={"logOptions.timestamps": "true"}))
    assert len(got) == 4
    for entry in got:
        stamp, _, text = entry["result"]["content"].partition(" ")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", stamp)
        assert text in ("a1", "a2", "b1", "b2")


async def test_sidecar_container_logs(client: Client, parts: Parts) -> None:
    """Each container's lines are kept apart: ``main`` by default, a sidecar by its name."""
    manifest = {"metadata": {"name": "side"}, "spec": {"entrypoint": "main", "templates": [{
        "name": "main", "container": {"image": "busybox", "command": ["sh", "-c", "sleep 0.3; echo from-main"]},
        "sidecars": [{"name": "helper", "image": "busybox", "command": ["sh", "-c", "echo from-helper; sleep 30"]}],
    }]}}
    await run(parts, manifest)
    main = await entries(await client.get("/api/v1/workflows/ci/side/log"))
    helper = await entries(await client.get("/api/v1/workflows/ci/side/log", params={"logOptions.container": "helper"}))
    assert [e["result"]["content"] for e in main] == ["from-main"]
    assert [e["result"]["content"] for e in helper] == ["from-helper"]


async def test_errors_before_streaming(client: Client, parts: Parts) -> None:
    """An unknown workflow is a 404 and a bad query a 400, in Argo's error shape."""
    for url in ("/api/v1/workflows/ci/nope/log", "/api/v1/workflows/ci/nope/pod-1/log"):
        resp = await client.get(url)
        assert resp.status == 404
        assert (await resp.json())["code"] == 5
    await run(parts, two_steps("bad"))
    for params in ({"grep": "("}, {"logOptions.tailLines": "x"}, {"logOptions.follow": "maybe"}):
        resp = await client.get("/api/v1/workflows/ci/bad/log", params=params)
        assert resp.status == 400, params
        assert next(iter(params)) in (await resp.json())["message"]


async def test_server_sent_events(client: Client, parts: Parts) -> None:
    """With Accept: text/event-stream each result is one ``data:`` event."""
    wf = await run(parts, two_steps("sse"))
    resp = await client.get("/api/v1/workflows/ci/sse/log", headers={"Accept": "text/event-stream"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    body = await resp.text()
    assert body.endswith("\n\n")
    events = body[:-2].split("\n\n")
    assert json.loads(events[0].removeprefix("data: ")) == {
        "result": {"content": "a1", "podName": pod_of(wf, "one")}}
    assert all(e.startswith("data: ") for e in events) and len(events) == 4


async def test_follow_streams_lines_while_the_run_goes_and_ends_with_it(
    client: Client, parts: Parts, tmp_path: Path
) -> None:
    """A line printed while the pod still runs arrives before the run ends; the stream ends with the run."""
    gate = tmp_path / "gate"
    await parts.engine.submit(gated("follow", gate), namespace="ci")
    resp = await client.get("/api/v1/workflows/ci/follow/log", params={"logOptions.follow": "true"})
    assert resp.status == 200
    first = await next_frame(resp)
    assert first is not None and first["result"]["content"] == "first"
    # Unfinished (the gate is shut): Pending or Running, as the engine's persisting of the pass that
    # started the pod may come a few ms after the pod's first line reached the log store.
    assert (await parts.store.get("ci", "follow"))["status"]["phase"] in ("Pending", "Running")
    gate.touch()
    rest = []
    while (frame := await next_frame(resp)) is not None:
        rest.append(frame["result"]["content"])
    assert rest == ["last"]
    assert (await parts.store.get("ci", "follow"))["status"]["phase"] == "Succeeded"


async def test_follow_of_a_finished_run_ends_at_once(client: Client, parts: Parts) -> None:
    await run(parts, two_steps("done"))
    got = await entries(await client.get("/api/v1/workflows/ci/done/log", params={"logOptions.follow": "true"}))
    assert [e["result"]["content"] for e in got] == ["a1", "a2", "b1", "b2"]


async def test_disconnect_mid_follow_ends_the_handler(client: Client, parts: Parts, tmp_path: Path) -> None:
    """A client leaving a follow stream ends the server's handler; nothing is left running for it."""
    gate = tmp_path / "gate"
    await parts.engine.submit(gated("leave", gate), namespace="ci")
    resp = await client.get("/api/v1/workflows/ci/leave/log", params={"logOptions.follow": "true"})
    assert await next_frame(resp) is not None
    assert any(awaiting(t, "_logs") for t in asyncio.all_tasks())
    resp.close()
    await until(lambda: not any(awaiting(t, "_logs") for t in asyncio.all_tasks()), "the log handler to end")
    gate.touch()
    await asyncio.wait_for(parts.engine.wait("ci", "leave"), 30)


async def test_follow_ends_when_the_workflow_is_deleted(client: Client, parts: Parts, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    await parts.engine.submit(gated("gone", gate), namespace="ci")
    resp = await client.get("/api/v1/workflows/ci/gone/log", params={"logOptions.follow": "true"})
    assert await next_frame(resp) is not None
    assert (await client.delete("/api/v1/workflows/ci/gone")).status == 200
    assert await next_frame(resp) is None


# -- watch ---------------------------------------------------------------------------------------


async def test_watch_sees_a_run_from_added_to_succeeded(client: Client, parts: Parts, tmp_path: Path) -> None:
    """ADDED (Pending), MODIFIED with Running, ..., MODIFIED with Succeeded; other runs filtered out."""
    gate = tmp_path / "gate"
    resp = await client.get("/api/v1/workflow-events/ci",
                            params={"listOptions.fieldSelector": "metadata.name=watched"})
    assert resp.status == 200
    await parts.engine.submit(gated("other", tmp_path / "other-gate"), namespace="ci")
    await parts.engine.submit(gated("watched", gate), namespace="ci")
    seen: list[tuple[str, str]] = []
    while True:
        frame = await next_frame(resp)
        assert frame is not None
        event = frame["result"]
        assert event["object"]["metadata"]["name"] == "watched"
        seen.append((event["type"], event["object"]["status"].get("phase", "")))
        if seen[-1] == ("MODIFIED", "Running"):
            gate.touch()
        if seen[-1][1] == "Succeeded":
            break
    assert seen[0] == ("ADDED", "Pending")
    assert ("MODIFIED", "Running") in seen
    resp.close()
    (tmp_path / "other-gate").touch()
    await asyncio.wait_for(parts.engine.wait("ci", "other"), 30)
    await until(lambda: parts.store.subscriber_count == 0, "the watch to unsubscribe")


async def test_watch_starts_with_existing_runs_then_changes(client: Client, parts: Parts) -> None:
    """Existing matching runs come first as ADDED; a deletion arrives as DELETED; labels and fields filter."""
    await run(parts, two_steps("existing"))
    await run(parts, {**two_steps("unlabelled"), "metadata": {"name": "unlabelled"}})
    resp = await client.get("/api/v1/workflow-events/ci", params={
        "listOptions.labelSelector": "app=ci", "fields": "result.object.metadata.name,result.object.status.phase"})
    first = await next_frame(resp)
    assert first == {"result": {"type": "ADDED", "object": {"metadata": {"name": "existing"},
                                                             "status": {"phase": "Succeeded"}}}}
    assert (await client.delete("/api/v1/workflows/ci/unlabelled")).status == 200
    assert (await client.delete("/api/v1/workflows/ci/existing")).status == 200
    deleted = await next_frame(resp)
    assert deleted is not None and deleted["result"]["type"] == "DELETED"
    assert deleted["result"]["object"]["metadata"]["name"] == "existing"
    resp.close()
    await until(lambda: parts.store.subscriber_count == 0, "the watch to unsubscribe")


async def test_watch_over_sse_and_all_namespaces(client: Client, parts: Parts) -> None:
    await run(parts, two_steps("elsewhere"), namespace="other")
    resp = await client.get("/api/v1/workflow-events/", headers={"Accept": "text/event-stream"})
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    line = await asyncio.wait_for(resp.content.readline(), 30)
    assert line.startswith(b"data: ")
    event = json.loads(line.removeprefix(b"data: "))["result"]
    assert (event["type"], event["object"]["metadata"]["namespace"]) == ("ADDED", "other")
    assert await resp.content.readline() == b"\n"
    resp.close()
    await until(lambda: parts.store.subscriber_count == 0, "the watch to unsubscribe")


async def test_watch_from_a_resource_version_skips_older_state(client: Client, parts: Parts) -> None:
    final = await run(parts, two_steps("versioned"))
    version = final["metadata"]["resourceVersion"]
    resp = await client.get("/api/v1/workflow-events/ci", params={"listOptions.resourceVersion": version})
    await run(parts, two_steps("newer"))
    frame = await next_frame(resp)
    assert frame is not None and frame["result"]["object"]["metadata"]["name"] == "newer"
    resp.close()
    await until(lambda: parts.store.subscriber_count == 0, "the watch to unsubscribe")


async def test_watch_rejects_unsupported_selectors(client: Client) -> None:
    resp = await client.get("/api/v1/workflow-events/ci", params={"listOptions.fieldSelector": "status.phase=Running"})
    assert resp.status == 400
    assert "listOptions.fieldSelector" in (await resp.json())["message"]


async def test_kubernetes_events_stream_is_open_and_empty(client: Client) -> None:
    resp = await client.get("/api/v1/stream/events/ci")
    assert resp.status == 200
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(resp.content.readline(), 0.3)
    resp.close()
    await until(lambda: not any(awaiting(t, "watch_events") for t in asyncio.all_tasks()), "the handler to end")


# -- pure parsing --------------------------------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("", None),
    ("app=ci", ListOptions(labels={"app": "ci"})),
    ("app==ci, tier!=web", ListOptions(labels={"app": "ci"}, label_not_equal={"tier": "web"})),
    ("example.com/role", ListOptions(label_exists=("example.com/role",))),
], ids=["empty", "equals", "double-equals-and-not", "exists"])
def test_parse_selector(text: str, expected: ListOptions | None) -> None:
    assert streams.parse_selector(text, path="selector") == expected


@pytest.mark.parametrize("text", ["app in (a,b)", "!app", "a=b=c"], ids=["set", "not-exists", "two-equals"])
def test_parse_selector_rejects(text: str) -> None:
    with pytest.raises(InvalidSpec, match="selector"):
        streams.parse_selector(text, path="selector")


@pytest.mark.parametrize(("query", "field", "expected"), [
    ({}, "container", "main"),
    ({"logOptions.container": "wait"}, "container", "wait"),
    ({"logOptions.sinceSeconds": "60"}, "since", NOW - timedelta(seconds=60)),
    ({"logOptions.sinceTime": "2024-05-01T11:00:00Z"}, "since", datetime(2024, 5, 1, 11, tzinfo=UTC)),
    ({"logOptions.sinceTime.seconds": "0"}, "since", datetime(1970, 1, 1, tzinfo=UTC)),
    ({"logOptions.follow": "true"}, "follow", True),
    ({"podName": "p-1"}, "pod_name", "p-1"),
], ids=["default-container", "container", "since-seconds", "since-time", "since-time-seconds", "follow", "pod"])
def test_parse_log_query(query: dict[str, str], field: str, expected: Any) -> None:
    parsed = streams.parse_log_query(query, pod_name=None, now=NOW)
    assert getattr(parsed, field) == expected


@pytest.mark.parametrize(("when", "expected"), [
    (datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC), "2024-05-01T12:00:01Z"),
    (datetime(2024, 5, 1, 12, 0, 1, 120000, tzinfo=UTC), "2024-05-01T12:00:01.12Z"),
    (datetime(2024, 5, 1, 14, 0, 1, 5, tzinfo=UTC).astimezone(), "2024-05-01T14:00:01.000005Z"),
], ids=["whole-second", "trimmed-fraction", "local-time"])
def test_rfc3339_nano(when: datetime, expected: str) -> None:
    assert streams.rfc3339_nano(when) == expected


def test_tail_per_pod_keeps_write_order() -> None:
    def line(pod: str, text: str) -> LogLine:
        return LogLine(namespace="n", workflow="w", pod_name=pod, container="main", time=NOW, content=text)
    lines = [(1, line("a", "a1")), (2, line("b", "b1")), (3, line("a", "a2")), (4, line("b", "b2"))]
    assert [ln.content for _, ln in streams.tail_per_pod(lines, 1)] == ["a2", "b2"]


@pytest.mark.parametrize(("fields", "expected"), [
    ("result.object.metadata.name", {"metadata": {"name": "w"}}),
    ("-result.object.status", {"metadata": {"name": "w", "uid": "u"}}),
    ("result.object.status.nodes", {"status": {"nodes": [{"id": 1}]}}),
], ids=["include", "exclude", "nested-list"])
def test_clean_fields(fields: str, expected: dict[str, Any]) -> None:
    obj = {"metadata": {"name": "w", "uid": "u"}, "status": {"phase": "Running", "nodes": [{"id": 1}]}}
    assert streams.clean_fields(obj, fields, prefix="result.object.") == expected


@pytest.mark.parametrize(("query", "message"), [
    ({"listOptions.fieldSelector": "spec.x=1"}, "listOptions.fieldSelector"),
    ({"listOptions.resourceVersion": "abc"}, "listOptions.resourceVersion"),
    ({"listOptions.labelSelector": "a in (b)"}, "listOptions.labelSelector"),
], ids=["field", "version", "label"])
def test_parse_watch_query_rejects(query: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidSpec, match=re.escape(message)):
        streams.parse_watch_query(query)


def test_parse_watch_query_names() -> None:
    parsed = streams.parse_watch_query({"listOptions.fieldSelector": "metadata.name=a,metadata.name!=b",
                                        "listOptions.resourceVersion": "0"})
    assert parsed.names == frozenset({"a"}) and parsed.not_names == frozenset({"b"})
    assert parsed.resource_version is None


async def test_shutdown_hook_ends_open_streams(client: Client, parts: Parts, tmp_path: Path) -> None:
    """``on_shutdown`` ends follows, watches and the events stream, so a graceful stop need not wait."""
    gate = tmp_path / "gate"
    await parts.engine.submit(gated("stopping", gate), namespace="ci")
    follow = await client.get("/api/v1/workflows/ci/stopping/log", params={"logOptions.follow": "true"})
    assert await next_frame(follow) is not None
    watch = await client.get("/api/v1/workflow-events/ci")
    assert await next_frame(watch) is not None
    events = await client.get("/api/v1/stream/events/ci")
    assert client.app is not None
    await streams.on_shutdown(client.app)
    assert await next_frame(follow) is None
    while (frame := await next_frame(watch)) is not None:
        assert frame["result"]["type"] in ("ADDED", "MODIFIED")
    assert await asyncio.wait_for(events.content.read(), 30) == b""
    gate.touch()
    await asyncio.wait_for(parts.engine.wait("ci", "stopping"), 30)
