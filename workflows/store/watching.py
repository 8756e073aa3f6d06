"""
A change feed over a store: :class:`WatchingStore` wraps any :class:`~workflows.store.base.Store`,
delegates every call to it and, after each successful workflow create/update/delete, publishes a
Kubernetes-style watch event (``ADDED``/``MODIFIED``/``DELETED`` with the object) to subscribers.

Built by :func:`gittrigger.assembly.assemble` around the SQLite or memory store, so every write the
engine or the API makes is seen; read by the workflow watch of :mod:`gittrigger.http.streams`.

Publishing never blocks the writer: each subscriber has a bounded queue, and a subscriber that
falls behind is dropped with a closing ``ERROR`` event carrying a Kubernetes ``Status`` (410
Expired, as an API server ends a watch that fell too far behind), after which its iteration ends.
Events hold a JSON snapshot taken at publish time (one serialization shared by all subscribers),
so later in-place changes by the writer never leak into an event already queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from workflows.executors.base import LogLine
from workflows.store import objects
from workflows.store.base import IndexedArtifact, ListOptions, Page, RawObject, Store

EventType = Literal["ADDED", "MODIFIED", "DELETED", "ERROR"]
DEFAULT_QUEUE_LIMIT: Final = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchEvent:
    """One change of one workflow, as a Kubernetes watch event: ``type`` and the object's JSON.

    ``namespace``/``name``/``labels``/``phase`` are read from the object at publish time, so
    subscribers filter without parsing ``body``. An ``ERROR`` event's body is a ``Status``.
    """

    type: EventType
    namespace: str
    name: str
    resource_version: str
    labels: Mapping[str, str]
    phase: str
    body: str  # the object as compact JSON

    @property
    def object(self) -> RawObject:
        """A fresh parsed copy of the object."""
        parsed: RawObject = objects.loads(self.body)
        return parsed


def _event(type_: EventType, obj: Mapping[str, Any]) -> WatchEvent:
    meta = obj.get("metadata") or {}
    return WatchEvent(
        type=type_, namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
        resource_version=str(meta.get("resourceVersion") or ""), labels=objects.labels_of(obj),
        phase=objects.phase_of(obj), body=objects.dumps(obj),
    )


def expired(message: str) -> WatchEvent:
    """The closing event of a dropped subscriber: a Kubernetes 410 ``Status``."""
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": message, "reason": "Expired", "code": 410}
    return WatchEvent(type="ERROR", namespace="", name="", resource_version="", labels={}, phase="",
                      body=objects.dumps(status))


class Subscription:
    """Events of one subscriber: an async iterator, and a context manager that unsubscribes.

    Registered when created (by :meth:`WatchingStore.subscribe`), so events published before the
    first ``__anext__`` are kept. Iteration ends after a closing ``ERROR`` event, or when the
    feed is closed or the subscription is.
    """

    def __init__(self, feed: WatchingStore, namespace: str | None, *, limit: int) -> None:
        self._feed = feed
        self.namespace = namespace
        self._limit = limit
        self._queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()  # bounded by offer()
        self._ended = False  # no further event will be queued

    def offer(self, event: WatchEvent) -> bool:
        """Queue an event without blocking; False (and closed with an ERROR event) when full."""
        if self._ended:
            return False
        if self._queue.qsize() >= self._limit:
            self._ended = True
            self._queue.put_nowait(expired(f"watch dropped: more than {self._limit} events unread"))
            return False
        self._queue.put_nowait(event)
        return True

    def end(self) -> None:
        """No more events: iteration ends once the queued ones are read."""
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(None)

    def close(self) -> None:
        """Unsubscribe; iteration ends after the queued events."""
        self._feed._unsubscribe(self)
        self.end()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self

    async def __anext__(self) -> WatchEvent:
        event = await self._queue.get()
        if event is None:
            self._queue.put_nowait(None)  # stay ended for further calls
            raise StopAsyncIteration
        if event.type == "ERROR":
            self._queue.put_nowait(None)
        return event


class WatchingStore:
    """A :class:`~workflows.store.base.Store` that publishes workflow changes; see the module docstring."""

    def __init__(self, inner: Store, *, queue_limit: int = DEFAULT_QUEUE_LIMIT) -> None:
        if queue_limit < 1:
            raise ValueError("queue_limit must be at least 1")
        self._inner = inner
        self._queue_limit = queue_limit
        self._subscribers: list[Subscription] = []
        self._closed = False

    @property
    def inner(self) -> Store:
        """The wrapped store (for backend-specific operations, e.g. closing SQLite)."""
        return self._inner

    # -- the feed ------------------------------------------------------------------------------

    def subscribe(self, namespace: str | None = None, *, limit: int | None = None) -> Subscription:
        """Start receiving events of ``namespace`` (all when None), at most ``limit`` unread."""
        sub = Subscription(self, namespace, limit=limit or self._queue_limit)
        if self._closed:
            sub.end()
        else:
            self._subscribers.append(sub)
        return sub

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def feed_closed(self) -> bool:
        """The feed was closed: the process is shutting down, long-lived readers should end."""
        return self._closed

    def close_feed(self) -> None:
        """End every subscription, and any made later (at shutdown); the store itself stays usable."""
        self._closed = True
        subscribers, self._subscribers = self._subscribers, []
        for sub in subscribers:
            sub.end()

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def _publish(self, type_: EventType, obj: Mapping[str, Any]) -> None:
        if not self._subscribers:
            return  # no serialization cost without watchers
        event = _event(type_, obj)
        for sub in list(self._subscribers):
            if sub.namespace is not None and sub.namespace != event.namespace:
                continue
            if not sub.offer(event):
                self._unsubscribe(sub)

    # -- WorkflowStore -------------------------------------------------------------------------

    async def create(self, workflow: RawObject) -> RawObject:
        """Delegate, then publish ADDED."""
        stored = await self._inner.create(workflow)
        self._publish("ADDED", stored)
        return stored

    async def get(self, namespace: str, name: str) -> RawObject:
        return await self._inner.get(namespace, name)

    async def list(self, namespace: str | None, options: ListOptions | None = None) -> Page:
        return await self._inner.list(namespace, options)

    async def phase_counts(self) -> Mapping[str, int]:
        return await self._inner.phase_counts()

    async def update(
        self,
        workflow: RawObject,
        *,
        expected_version: str,
        changed_nodes: Collection[str] | None = None,
    ) -> RawObject:
        """Delegate, then publish MODIFIED with the returned object."""
        stored = await self._inner.update(workflow, expected_version=expected_version, changed_nodes=changed_nodes)
        self._publish("MODIFIED", stored)
        return stored

    async def delete(self, namespace: str, name: str) -> None:
        """Delegate, then publish DELETED with the last stored state (read first, when watched)."""
        last = await self._inner.get(namespace, name) if self._subscribers else None
        await self._inner.delete(namespace, name)
        if last is not None:
            self._publish("DELETED", last)

    # -- ObjectStore ---------------------------------------------------------------------------

    async def put_object(self, kind: str, obj: RawObject, *, create: bool = False) -> RawObject:
        return await self._inner.put_object(kind, obj, create=create)

    async def get_object(self, kind: str, namespace: str | None, name: str) -> RawObject:
        return await self._inner.get_object(kind, namespace, name)

    async def list_objects(self, kind: str, namespace: str | None) -> Sequence[RawObject]:
        return await self._inner.list_objects(kind, namespace)

    async def delete_object(self, kind: str, namespace: str | None, name: str) -> None:
        await self._inner.delete_object(kind, namespace, name)

    # -- LogStore ------------------------------------------------------------------------------

    def append(self, line: LogLine) -> None:
        self._inner.append(line)

    async def flush(self) -> None:
        await self._inner.flush()

    async def read(
        self,
        *,
        namespace: str,
        workflow: str,
        pod_name: str | None = None,
        container: str | None = None,
        since: datetime | None = None,
        tail: int | None = None,
        after_id: int | None = None,
    ) -> Sequence[tuple[int, LogLine]]:
        return await self._inner.read(namespace=namespace, workflow=workflow, pod_name=pod_name,
                                      container=container, since=since, tail=tail, after_id=after_id)

    # -- MemoCache -----------------------------------------------------------------------------

    async def memo_get(
        self, cache: str, key: str, *, max_age_seconds: float | None, now: datetime
    ) -> Mapping[str, Any] | None:
        return await self._inner.memo_get(cache, key, max_age_seconds=max_age_seconds, now=now)

    async def memo_put(self, cache: str, key: str, entry: Mapping[str, Any]) -> None:
        await self._inner.memo_put(cache, key, entry)

    # -- ArtifactIndex -------------------------------------------------------------------------

    async def indexed_artifacts(self, *, uid: str) -> Sequence[IndexedArtifact]:
        return await self._inner.indexed_artifacts(uid=uid)

    async def referenced_keys(self, keys: Collection[str], *, excluding_uid: str | None = None) -> frozenset[str]:
        return await self._inner.referenced_keys(keys, excluding_uid=excluding_uid)

    async def forget_artifacts(self, *, uid: str, keys: Collection[str]) -> None:
        await self._inner.forget_artifacts(uid=uid, keys=keys)
