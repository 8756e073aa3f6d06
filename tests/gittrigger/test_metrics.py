"""``GET /metrics``: Prometheus text scraped from a real app wired by ``start_triggers``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gittrigger.assembly import Parts, assemble
from gittrigger.http.app import make_app
from gittrigger.metrics import QUEUE_DEPTH_CAP, Histogram, Metrics, delivery_outcome, pod_durations
from gittrigger.settings import load_settings
from gittrigger.triggers import start_triggers

SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples by (name, labels); asserts every line is a comment or a well-formed sample."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not an exposition line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


DOCUMENTS: list[tuple[str, dict[str, Any]]] = [
    ("mem.yaml", {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": {"name": "hooks"},
                  "spec": {
                      "webhook": {"build": {"endpoint": "/build", "method": "POST", "port": "12000"}},
                      "github": {"repo": {"webhook": {"endpoint": "/gh", "method": "POST", "port": "12000"},
                                          "events": ["push"]}}}}),
]


@pytest.fixture
async def served(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[tuple[TestClient[Any, Any], Parts]]:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path / "data"), "GITTRIGGER_ISOLATION": "none"})
    async with assemble(settings) as parts:
        app = make_app(settings, engine=parts.engine, store=parts.store)
        async with start_triggers(settings, app=app, engine=parts.engine, store=parts.store, documents=DOCUMENTS):
            yield await aiohttp_client(app), parts


async def scrape(client: TestClient[Any, Any]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(await resp.text())


async def test_deliveries_are_counted_by_source_and_outcome(served: Any) -> None:
    client, _ = served
    assert (await client.post("/build", data=b'{"a":1}', headers={"Idempotency-Key": "k1"})).status == 202
    assert (await client.post("/build", data=b'{"a":1}', headers={"Idempotency-Key": "k1"})).status == 200
    assert (await client.put("/build", data=b"{}")).status == 405
    assert (await client.post("/build", data=b"not json")).status == 400
    ignored = await client.post("/gh", data=b"{}", headers={"X-GitHub-Event": "issues",
                                                              "X-GitHub-Delivery": "d1"})
    assert (await ignored.json())["ignored"] is True
    assert (await client.post("/nowhere", data=b"{}")).status == 404
    samples = await scrape(client)
    name = "gittrigger_webhook_deliveries_total"
    assert value(samples, name, source="hooks/build", outcome="accepted") == 1
    assert value(samples, name, source="hooks/build", outcome="duplicate") == 1
    assert value(samples, name, source="hooks/build", outcome="rejected") == 2
    assert value(samples, name, source="hooks/repo", outcome="ignored") == 1
    assert not [k for k in samples if k[0] == name and ("source", "") in k[1]]
    assert sum(v for k, v in samples.items() if k[0] == name) == 5  # the 404 is not a delivery


async def test_event_log_fsyncs_are_observed(served: Any) -> None:
    """Each group commit's WAL fsync lands in the histogram (etcd's buckets, 1 ms doubling to 8.192 s)."""
    client, _ = served
    name = "gittrigger_event_log_fsync_duration_seconds"
    before = await scrape(client)
    for key in ("k1", "k2"):
        assert (await client.post("/build", data=b'{"a":1}', headers={"Idempotency-Key": key})).status == 202
    after = await scrape(client)
    count = value(after, f"{name}_count")
    assert count is not None and count >= (value(before, f"{name}_count") or 0) + 2  # two deliveries, one at a time
    assert value(after, f"{name}_bucket", le="+Inf") == count
    assert [le for (n, labels), _ in after.items() if n == f"{name}_bucket"
            for k, le in labels if k == "le"] == ["0.001", "0.002", "0.004", "0.008", "0.016", "0.032", "0.064",
                                                  "0.128", "0.256", "0.512", "1.024", "2.048", "4.096", "8.192",
                                                  "+Inf"]
    sum_s = value(after, f"{name}_sum")
    assert sum_s is not None and sum_s > 0


async def test_gauges_and_step_histogram_after_a_run(served: Any) -> None:
    client, parts = served
    before = await scrape(client)
    assert value(before, "gittrigger_step_duration_seconds_count") == 0
    assert value(before, "gittrigger_engine_runs_active") == 0
    assert value(before, "gittrigger_dispatch_queue_depth") == 0
    manifest = {"metadata": {"name": "two-steps"}, "spec": {"entrypoint": "main", "templates": [
        {"name": "main", "steps": [[{"name": "a", "template": "ok"}], [{"name": "b", "template": "ok"}]]},
        {"name": "ok", "container": {"image": "busybox", "command": ["true"]}}]}}
    await parts.engine.submit(manifest)
    finished = await parts.engine.wait("default", "two-steps")
    assert finished["status"]["phase"] == "Succeeded"
    after = await scrape(client)
    assert value(after, "gittrigger_workflows", phase="Succeeded") == 1
    assert value(after, "gittrigger_step_duration_seconds_count") == 2
    assert value(after, "gittrigger_step_duration_seconds_bucket", le="+Inf") == 2
    again = await scrape(client)  # a run is observed once
    assert value(again, "gittrigger_step_duration_seconds_count") == 2


async def test_an_app_without_triggers_has_no_queue_depth(tmp_path: Path, aiohttp_client: Any) -> None:
    """``make_app`` alone (no event log attached) still serves /metrics; the depth series is absent."""
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path / "data"), "GITTRIGGER_ISOLATION": "none"})
    async with assemble(settings, memory=True) as parts:
        app = make_app(settings, engine=parts.engine, store=parts.store)
        samples = parse(await (await (await aiohttp_client(app)).get("/metrics")).text())
        assert value(samples, "gittrigger_dispatch_queue_depth") is None  # no event log attached
        assert value(samples, "gittrigger_engine_runs_active") == 0


@pytest.mark.parametrize(("status", "body", "outcome"), [
    (202, b'{"id":"x"}', "accepted"),
    (200, b'{"id":"x","duplicate":true}', "duplicate"),
    (200, b'{"ignored":true,"reason":"r"}', "ignored"),
    (200, b'{"pong":true}', "ignored"),
    (401, b"{}", "rejected"),
    (503, None, "rejected"),
], ids=["stored", "redelivery", "ignored", "ping", "unauthorized", "unavailable"])
def test_delivery_outcome(status: int, body: bytes | None, outcome: str) -> None:
    assert delivery_outcome(status, body) == outcome


def test_pod_durations_only_finished_pods() -> None:
    nodes = {
        "a": {"type": "Pod", "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:02Z"},
        "b": {"type": "Pod", "startedAt": "2026-01-01T00:00:00Z"},
        "c": {"type": "Steps", "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:01:00Z"},
    }
    assert pod_durations(nodes) == [2.0]


def test_histogram_is_cumulative() -> None:
    h = Histogram((1.0, 5.0))
    for v in (0.5, 2.0, 9.0):
        h.observe(v)
    assert (h.buckets, h.count, h.sum) == ([1, 2], 3, 11.5)


class FakeLog:
    def __init__(self, pending: int) -> None:
        self.count = pending

    async def pending(self, *, limit: int = 100) -> list[object]:
        return [object()] * min(self.count, limit)


class FakeEngine:
    def running(self) -> list[tuple[str, str]]:
        return [("default", "a"), ("default", "b")]


async def test_queue_depth_and_phases_from_their_sources() -> None:
    from workflows.store.memory import MemoryStore

    store = MemoryStore()
    await store.create({"metadata": {"name": "new", "namespace": "default"}, "spec": {}})
    metrics = Metrics(store=store, engine=FakeEngine())  # type: ignore[arg-type]
    metrics.watch_event_log(FakeLog(3))  # type: ignore[arg-type]
    samples = parse(await metrics.render())
    assert value(samples, "gittrigger_dispatch_queue_depth") == 3
    assert value(samples, "gittrigger_engine_runs_active") == 2
    assert value(samples, "gittrigger_workflows", phase="Pending") == 1  # not yet operated
    metrics.watch_event_log(FakeLog(5000))  # type: ignore[arg-type]
    assert value(parse(await metrics.render()), "gittrigger_dispatch_queue_depth") == QUEUE_DEPTH_CAP
