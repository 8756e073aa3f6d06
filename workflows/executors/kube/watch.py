"""
One watch of gittrigger's pods per namespace, and the latest state of each pod it saw.

Started by :mod:`workflows.executors.kubernetes` the first time a pod of a namespace runs;
every pod run of that namespace reads :meth:`PodWatch.get` and waits on :meth:`PodWatch.changed`
instead of polling its pod. The watch lists once (label selector
``app.kubernetes.io/managed-by=gittrigger``), then watches from the list's resourceVersion,
resumes from the last resourceVersion it saw (events or bookmarks) when the stream ends or
breaks, and lists again only after ``410 Gone``, telling every pod whose state changed
across the gap (a pod that vanished meanwhile included).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, Final, Protocol

import structlog

from workflows.errors import WorkflowError
from workflows.executors.kube.calls import Backoff, Raw

WATCH_SECONDS: Final = 300  # the server ends each watch after this; we resume at once
_GONE_KEPT: Final = 10_000

logger = structlog.get_logger(__name__)


class PodSource(Protocol):
    """The two calls a watch makes (:class:`~workflows.executors.kube.calls.PodsApi` has them)."""

    async def list_pods(self, namespace: str, *, selector: str) -> Raw:
        """A PodList with its resourceVersion."""
        ...

    def watch_pods(self, namespace: str, *, selector: str, resource_version: str,
                   timeout_seconds: int) -> Any:
        """An async iterator of ``(type, object)`` events."""
        ...


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _newer(a: str, b: str) -> bool:
    """Whether resourceVersion ``a`` is newer than ``b`` (etcd revisions; unknown ones: yes)."""
    try:
        return int(a) > int(b)
    except ValueError:
        return True


class PodWatch:
    """The cache of one namespace's pods, kept current by one watch (see the module docstring)."""

    def __init__(self, source: PodSource, *, namespace: str, selector: str,
                 watch_seconds: int = WATCH_SECONDS) -> None:
        self.namespace = namespace
        self.selector = selector
        self._source = source
        self._watch_seconds = watch_seconds
        self._pods: dict[str, Raw] = {}
        self._gone: dict[str, str] = {}  # name -> resourceVersion of its deletion (see seed)
        self._events: dict[str, asyncio.Event] = {}
        self._rv: str | None = None
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.relists = 0  # lists after the first (410 Gone), for tests and logs
        self.reconnects = 0

    # -- bookkeeping (no I/O) ------------------------------------------------------------------

    def get(self, name: str) -> Raw | None:
        """The latest state of pod ``name`` seen, None when it does not exist (or not seen yet)."""
        return self._pods.get(name)

    def pods(self) -> list[Raw]:
        return list(self._pods.values())

    def changed(self, name: str) -> asyncio.Event:
        """An event set at the next change of pod ``name`` (take it before reading :meth:`get`)."""
        event = self._events.get(name)
        if event is None:
            event = self._events[name] = asyncio.Event()
        return event

    def _notify(self, name: str) -> None:
        event = self._events.pop(name, None)
        if event is not None:
            event.set()

    def seed(self, pod: Raw) -> None:
        """Record a pod just created (from the create response), unless the watch already knows
        better: a pod the watch saw deleted after this version stays deleted."""
        name = str(pod["metadata"]["name"])
        rv = _rv(pod)
        if name in self._pods or (name in self._gone and not _newer(rv, self._gone[name])):
            return
        self._pods[name] = pod
        self._notify(name)

    def apply(self, kind: str, pod: Raw) -> None:
        """One watch event (ADDED, MODIFIED, DELETED)."""
        name = str((pod.get("metadata") or {}).get("name") or "")
        if not name:
            return
        if kind == "DELETED":
            self._pods.pop(name, None)
            self._forget(name, _rv(pod))
        else:
            known = self._pods.get(name)
            if known is not None and not _newer(_rv(pod), _rv(known)):
                return  # a seeded or relisted state already newer
            self._pods[name] = pod
            self._gone.pop(name, None)
        self._notify(name)

    def replace(self, items: list[Raw], *, resource_version: str) -> None:
        """A full list: the cache becomes it; pods that changed or vanished are told."""
        fresh = {str(p["metadata"]["name"]): p for p in items if (p.get("metadata") or {}).get("name")}
        old = self._pods
        self._pods = fresh
        for name in old.keys() - fresh.keys():
            self._forget(name, resource_version)
        for name in old.keys() | fresh.keys():
            if old.get(name) is None or fresh.get(name) is None or _rv(old[name]) != _rv(fresh[name]):
                self._notify(name)
        self._rv = resource_version

    def _forget(self, name: str, rv: str) -> None:
        self._gone[name] = rv
        if len(self._gone) > _GONE_KEPT:  # only a create racing a delete needs it: keep the recent
            for stale in list(self._gone)[: _GONE_KEPT // 10]:
                del self._gone[stale]

    # -- the watch -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start watching (once) and wait for the first list."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"pod watch {self.namespace}")
        await self._synced.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        log = logger.bind(namespace=self.namespace)
        backoff = Backoff(first=0.2, cap=10.0)
        while True:
            try:
                if self._rv is None:
                    listing = await self._source.list_pods(self.namespace, selector=self.selector)
                    if self._synced.is_set():
                        self.relists += 1
                    self.replace(list(listing.get("items") or ()),
                                 resource_version=_rv(listing) or "0")
                    self._synced.set()
                await self._follow()
                backoff.reset()  # a clean end (the server's timeout): resume at once
            except asyncio.CancelledError:
                raise
            except WorkflowError as e:
                delay = backoff.next()
                log.warning("pod watch interrupted", error=str(e), retry_in_s=delay)
                await asyncio.sleep(delay)
            except Exception:  # never let one bad event end the watch every pod of the namespace waits on
                delay = backoff.next()
                log.exception("pod watch failed", retry_in_s=delay)
                await asyncio.sleep(delay)
            self.reconnects += 1

    async def _follow(self) -> None:
        assert self._rv is not None
        stream = self._source.watch_pods(self.namespace, selector=self.selector, resource_version=self._rv,
                                         timeout_seconds=self._watch_seconds)
        async with contextlib.aclosing(stream):
            async for kind, obj in stream:
                if kind == "ERROR":
                    if obj.get("code") == 410:  # history compacted: only a new list can catch up
                        logger.info("pod watch expired, listing again", namespace=self.namespace)
                        self._rv = None
                        return
                    raise WorkflowError(f"pod watch: {obj.get('message') or obj}")
                if kind == "BOOKMARK":
                    self._rv = _rv(obj) or self._rv
                    continue
                self.apply(kind, obj)
                self._rv = _rv(obj) or self._rv
