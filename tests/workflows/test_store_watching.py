"""The change feed (:mod:`workflows.store.watching`) over a MemoryStore: events, filtering, overflow."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from workflows.errors import Conflict, NotFound
from workflows.executors.base import LogLine
from workflows.store.base import Store
from workflows.store.memory import MemoryStore
from workflows.store.watching import Subscription, WatchEvent, WatchingStore


def wf(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"entrypoint": "main"}, "status": {"phase": "Pending"}}


def queued(sub: Subscription) -> list[WatchEvent]:
    """Everything already queued for ``sub`` (without waiting)."""
    out = []
    while not sub._queue.empty():
        item = sub._queue.get_nowait()
        if item is not None:
            out.append(item)
    return out


async def test_is_a_store() -> None:
    """The wrapper satisfies the whole Store protocol (checked by mypy through this assignment)."""
    store: Store = WatchingStore(MemoryStore())
    assert await store.list_objects("WorkflowTemplate", None) == []


async def test_create_update_delete_publish_in_order() -> None:
    """Each successful write publishes one event with the object as the store returned it."""
    store = WatchingStore(MemoryStore())
    with store.subscribe() as sub:
        created = await store.create(wf("a", app="ci"))
        running = dict(created, status={"phase": "Running"})
        updated = await store.update(running, expected_version=created["metadata"]["resourceVersion"])
        await store.delete("default", "a")
        events = queued(sub)
    assert [(e.type, e.name, e.phase) for e in events] == [
        ("ADDED", "a", "Pending"), ("MODIFIED", "a", "Running"), ("DELETED", "a", "Running")]
    assert events[0].object == created
    assert events[1].resource_version == updated["metadata"]["resourceVersion"]
    assert events[0].labels == {"app": "ci"}
    assert store.subscriber_count == 0


async def test_failed_writes_publish_nothing() -> None:
    """A Conflict or NotFound leaves the feed silent."""
    store = WatchingStore(MemoryStore())
    created = await store.create(wf("a"))
    with store.subscribe() as sub:
        with pytest.raises(Conflict):
            await store.update(created, expected_version="999")
        with pytest.raises(NotFound):
            await store.delete("default", "nope")
        assert queued(sub) == []


async def test_snapshot_is_taken_at_publish_time() -> None:
    """Mutating the returned object afterwards (as a writer may) does not change the queued event."""
    store = WatchingStore(MemoryStore())
    with store.subscribe() as sub:
        created = await store.create(wf("a"))
        created["status"]["phase"] = "Mutated"
        [event] = queued(sub)
    assert event.object["status"]["phase"] == "Pending"


@pytest.mark.parametrize(("namespace", "expected"), [
    (None, ["x/a", "y/b"]),
    ("x", ["x/a"]),
    ("z", []),
], ids=["all-namespaces", "one-namespace", "other-namespace"])
async def test_namespace_filter(namespace: str | None, expected: list[str]) -> None:
    store = WatchingStore(MemoryStore())
    with store.subscribe(namespace) as sub:
        await store.create(wf("a", "x"))
        await store.create(wf("b", "y"))
        assert [f"{e.namespace}/{e.name}" for e in queued(sub)] == expected


async def test_slow_subscriber_is_dropped_with_a_closing_event() -> None:
    """Past its limit a subscriber gets a 410 ERROR event and ends; writers and others carry on."""
    store = WatchingStore(MemoryStore(), queue_limit=2)
    slow = store.subscribe()
    fast = store.subscribe(limit=100)
    for name in "abcd":
        await store.create(wf(name))
    assert store.subscriber_count == 1
    got = [e async for e in slow]
    assert [e.type for e in got] == ["ADDED", "ADDED", "ERROR"]
    assert got[-1].object["code"] == 410 and got[-1].object["reason"] == "Expired"
    assert [e.name for e in queued(fast)] == list("abcd")
    fast.close()


async def test_iteration_waits_for_events_and_ends_on_close() -> None:
    """A consumer blocked in ``async for`` receives later events; closing the feed ends it."""
    store = WatchingStore(MemoryStore())
    sub = store.subscribe()
    received: list[str] = []

    async def consume() -> None:
        async for event in sub:
            received.append(event.name)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    await store.create(wf("late"))
    store.close_feed()
    await asyncio.wait_for(task, 5)
    assert received == ["late"]
    assert store.subscriber_count == 0
    with pytest.raises(StopAsyncIteration):
        await sub.__anext__()
    assert store.feed_closed
    assert [e async for e in store.subscribe()] == []  # a subscription after the close is over at once
    await store.create(wf("after"))  # the store itself still works


async def test_delegates_objects_logs_and_memo() -> None:
    """Everything else reaches the wrapped store unchanged."""
    inner = MemoryStore()
    store = WatchingStore(inner)
    assert store.inner is inner
    template = {"metadata": {"name": "t", "namespace": "default"}, "spec": {}}
    await store.put_object("WorkflowTemplate", template)
    assert (await inner.get_object("WorkflowTemplate", "default", "t"))["metadata"]["name"] == "t"
    assert [o["metadata"]["name"] for o in await store.list_objects("WorkflowTemplate", None)] == ["t"]
    await store.delete_object("WorkflowTemplate", "default", "t")
    now = datetime(2024, 1, 1, tzinfo=UTC)
    store.append(LogLine(namespace="default", workflow="w", pod_name="p", container="main", time=now, content="hi"))
    await store.flush()
    assert [ln.content for _, ln in await store.read(namespace="default", workflow="w", tail=1)] == ["hi"]
    await store.memo_put("c", "k", {"nodeID": "n", "outputs": {}})
    assert (await store.memo_get("c", "k", max_age_seconds=None, now=now) or {})["nodeID"] == "n"
    created = await store.create(wf("a"))
    assert (await store.get("default", "a")) == created
    assert [w["metadata"]["name"] for w in (await store.list("default")).items] == ["a"]


def test_queue_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="queue_limit"):
        WatchingStore(MemoryStore(), queue_limit=0)
