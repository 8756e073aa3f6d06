"""
The in-memory store: runs, objects, logs, the memo cache and the artifact index in dicts, for
tests and dev.

Implements :class:`~workflows.store.base.WorkflowStore`, ``ObjectStore``, ``LogStore``,
``MemoCache`` and ``ArtifactIndex`` with the same semantics as :mod:`.sqlite` (both use :mod:`.objects`), so the
engine and the HTTP edge can be tested against it. Every method runs without awaiting, so each
call is atomic on the event loop. Nothing stored aliases caller data: objects go in and come out
as JSON copies. As in the SQLite store, ``update`` with ``changed_nodes`` copies only those nodes,
and the returned run shares its unchanged node dicts with the argument (never with the store).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workflows.errors import AlreadyExists, Conflict, InvalidSpec, NotFound
from workflows.executors.base import LogLine
from workflows.store import objects
from workflows.store.base import IndexedArtifact, ListOptions, Page, RawObject, node_artifacts


@dataclass(slots=True, kw_only=True)
class _Run:
    head: RawObject  # the run without status.nodes (see objects.split_nodes)
    nodes: dict[str, Any]
    seq: int
    version: int


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MemoryStore:
    """Dict-backed store; ``clock`` stamps creationTimestamps (injectable for tests)."""

    def __init__(self, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._clock = clock
        self._version = 0
        self._runs: dict[tuple[str, str], _Run] = {}
        self._objects: dict[tuple[str, str, str], RawObject] = {}
        self._logs: list[tuple[int, LogLine]] = []
        self._log_ids = itertools.count(1)
        self._memo: dict[tuple[str, str], dict[str, Any]] = {}
        self._artifacts: dict[str, dict[str, list[IndexedArtifact]]] = {}  # uid -> node id -> artifacts

    def _bump(self) -> int:
        self._version += 1
        return self._version

    # -- WorkflowStore ---------------------------------------------------------------------

    async def create(self, workflow: RawObject) -> RawObject:
        """Store a new run; see :meth:`WorkflowStore.create`."""
        ident = objects.identity(workflow)
        obj = objects.copy_json(workflow)
        ns = ident.namespace
        assert ns is not None
        for _ in range(objects.GENERATE_ATTEMPTS):
            name = objects.candidate_name(ident)
            if (ns, name) not in self._runs:
                break
            if ident.name is not None:
                raise AlreadyExists("workflow", name)
        else:
            raise AlreadyExists("workflow", f"{ns}/{ident.generate_name}*")
        version = self._bump()
        objects.stamp(obj, namespace=ns, name=name, version=version, now=self._clock())
        head, nodes = objects.split_nodes(obj)
        self._runs[(ns, name)] = _Run(head=head, nodes=nodes or {}, seq=version, version=version)
        self._index(head, nodes or {}, replace_all=True)
        return self._assemble(self._runs[(ns, name)])

    async def get(self, namespace: str, name: str) -> RawObject:
        """The stored run (a copy); raises NotFound."""
        return self._assemble(self._find(namespace, name))

    async def phase_counts(self) -> Mapping[str, int]:
        return dict(Counter(objects.phase_of(r.head) for r in self._runs.values()))

    async def list(self, namespace: str | None, options: ListOptions | None = None) -> Page:
        """Runs newest first, filtered and paged as :class:`ListOptions` says."""
        options = options or ListOptions()
        limit = objects.check_options(options)
        cursor = objects.decode_continue(options.continue_token) if options.continue_token else None
        runs = sorted(
            (r for (ns, _), r in self._runs.items() if namespace is None or ns == namespace),
            key=lambda r: objects.sort_key(r.head["metadata"]["creationTimestamp"], r.seq),
            reverse=True,
        )
        picked: list[_Run] = []
        more = False
        for run in runs:
            key = objects.sort_key(run.head["metadata"]["creationTimestamp"], run.seq)
            if cursor is not None and key >= cursor:
                continue
            meta = run.head["metadata"]
            if not objects.matches(
                name=meta["name"], labels=objects.labels_of(run.head), phase=objects.phase_of(run.head),
                options=options,
            ):
                continue
            if limit is not None and len(picked) == limit:
                more = True
                break
            picked.append(run)
        token = None
        if more:
            last = picked[-1]
            token = objects.encode_continue(last.head["metadata"]["creationTimestamp"], last.seq)
        return Page(
            items=[self._assemble(r) for r in picked],
            continue_token=token,
            resource_version=str(self._version),
        )

    async def update(
        self,
        workflow: RawObject,
        *,
        expected_version: str,
        changed_nodes: Collection[str] | None = None,
    ) -> RawObject:
        """Compare-and-swap on resourceVersion; see :meth:`WorkflowStore.update`."""
        ident = objects.identity(workflow)
        if ident.name is None:
            raise InvalidSpec("metadata.name", "is required to update a run")
        assert ident.namespace is not None
        run = self._find(ident.namespace, ident.name)
        if str(run.version) != expected_version:
            raise Conflict(
                f"workflow {ident.namespace}/{ident.name}: resourceVersion is {run.version}, "
                f"not {expected_version}"
            )
        given_head, given_nodes = objects.split_nodes(workflow)
        head = objects.copy_json(given_head)
        new_nodes = given_nodes or {}
        if changed_nodes is None:
            stored_nodes = objects.copy_json(new_nodes)
        else:
            stored_nodes = run.nodes
            fresh = objects.copy_json({k: new_nodes[k] for k in changed_nodes if k in new_nodes})
            for node_id in changed_nodes:
                if node_id in fresh:
                    stored_nodes[node_id] = fresh[node_id]
                else:
                    stored_nodes.pop(node_id, None)
        meta = run.head["metadata"]
        version = self._bump()
        objects.stamp(
            head, namespace=ident.namespace, name=ident.name, version=version,
            uid=meta["uid"], created=meta["creationTimestamp"], now=self._clock(),
        )
        run.head, run.nodes, run.version = head, stored_nodes, version
        if changed_nodes is None:
            self._index(head, stored_nodes, replace_all=True)
            return self._assemble(run)
        self._index(head, {k: stored_nodes.get(k) for k in changed_nodes}, replace_all=False)
        # O(changed): fresh copies of the head and changed nodes; unchanged nodes are the
        # caller's own dicts (see the module docstring), the store keeps its own copies.
        out_nodes = dict(new_nodes)
        out_nodes.update({k: objects.copy_json(stored_nodes[k]) for k in changed_nodes if k in stored_nodes})
        return objects.join_nodes(objects.copy_json(head), out_nodes)

    async def delete(self, namespace: str, name: str) -> None:
        """Delete a run and its logs; raises NotFound."""
        run = self._find(namespace, name)
        self._artifacts.pop(run.head["metadata"]["uid"], None)
        del self._runs[(namespace, name)]
        self._logs = [(i, ln) for i, ln in self._logs if (ln.namespace, ln.workflow) != (namespace, name)]
        self._bump()

    def _find(self, namespace: str, name: str) -> _Run:
        run = self._runs.get((namespace, name))
        if run is None:
            raise NotFound("workflow", f"{namespace}/{name}")
        return run

    def _index(self, head: RawObject, changed: Mapping[str, Any], *, replace_all: bool) -> None:
        """Index the output artifacts of ``changed`` nodes (None: removed) of one run, as SQLite does."""
        meta = head["metadata"]
        uid = meta["uid"]
        by_node = self._artifacts.get(uid)
        if replace_all and by_node:
            by_node.clear()
        now = self._clock()
        for node_id, node in changed.items():
            found = node_artifacts(node_id, node) if node is not None else ()
            if not found:
                if node is None and by_node:
                    by_node.pop(node_id, None)
                continue
            if by_node is None:
                by_node = self._artifacts[uid] = {}
            by_node[node_id] = [IndexedArtifact(
                namespace=meta["namespace"], workflow=meta["name"], workflow_uid=uid, node_id=node_id, name=name,
                key=key, created=now) for _, name, key in found]

    @staticmethod
    def _assemble(run: _Run) -> RawObject:
        head: RawObject = objects.copy_json(run.head)
        # By node id, as the SQLite store reads them and as Go's JSON encoder writes Argo's map.
        return objects.join_nodes(head, objects.copy_json(dict(sorted(run.nodes.items()))))

    # -- ObjectStore -----------------------------------------------------------------------

    async def put_object(self, kind: str, obj: RawObject, *, create: bool = False) -> RawObject:
        """Create or replace an object; with ``create`` an existing name raises AlreadyExists."""
        ident = objects.identity(obj, cluster_scoped=objects.is_cluster_scoped(kind))
        ns = ident.namespace or ""
        if ident.name is None and not create:
            raise InvalidSpec("metadata.name", "is required to replace an object")
        copy = objects.copy_json(obj)
        for _ in range(objects.GENERATE_ATTEMPTS):
            name = objects.candidate_name(ident)
            old = self._objects.get((kind, ns, name))
            if old is None or ident.name is not None:
                break
        else:
            raise AlreadyExists(kind, f"{ns}/{ident.generate_name}*")
        if old is not None and create:
            raise AlreadyExists(kind, f"{ns}/{name}" if ns else name)
        meta = old["metadata"] if old is not None else {}
        objects.stamp(
            copy, namespace=ident.namespace, name=name, version=self._bump(),
            uid=meta.get("uid"), created=meta.get("creationTimestamp"), now=self._clock(),
        )
        self._objects[(kind, ns, name)] = copy
        return objects.copy_json(copy)  # type: ignore[no-any-return]

    async def get_object(self, kind: str, namespace: str | None, name: str) -> RawObject:
        """The stored object (a copy); raises NotFound."""
        obj = self._objects.get((kind, namespace or "", name))
        if obj is None:
            raise NotFound(kind, f"{namespace}/{name}" if namespace else name)
        return objects.copy_json(obj)  # type: ignore[no-any-return]

    async def list_objects(self, kind: str, namespace: str | None) -> Sequence[RawObject]:
        """Objects of ``kind`` (in ``namespace``, or all), sorted by name then namespace."""
        keys = sorted(
            (name, ns)
            for k, ns, name in self._objects
            if k == kind and (namespace is None or ns == namespace)
        )
        return [objects.copy_json(self._objects[(kind, ns, name)]) for name, ns in keys]

    async def delete_object(self, kind: str, namespace: str | None, name: str) -> None:
        """Delete an object; raises NotFound."""
        if self._objects.pop((kind, namespace or "", name), None) is None:
            raise NotFound(kind, f"{namespace}/{name}" if namespace else name)
        self._bump()

    # -- LogStore --------------------------------------------------------------------------

    def append(self, line: LogLine) -> None:
        """Store a line at once (memory has nothing to buffer)."""
        self._logs.append((next(self._log_ids), line))

    async def flush(self) -> None:
        """Nothing to do: :meth:`append` stores immediately."""

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
        """Lines of one run in write order, filtered; ``tail`` keeps the last N."""
        since_us = objects.epoch_us(since) if since is not None else None
        out = [
            (i, ln)
            for i, ln in self._logs
            if ln.namespace == namespace
            and ln.workflow == workflow
            and (pod_name is None or ln.pod_name == pod_name)
            and (container is None or ln.container == container)
            and (after_id is None or i > after_id)
            and (since_us is None or objects.epoch_us(ln.time) >= since_us)
        ]
        if tail is not None:
            out = out[-tail:] if tail > 0 else []
        return out

    # -- MemoCache -------------------------------------------------------------------------

    async def memo_get(
        self, cache: str, key: str, *, max_age_seconds: float | None, now: datetime
    ) -> Mapping[str, Any] | None:
        """The entry if present and younger than ``max_age_seconds``."""
        entry = self._memo.get((cache, key))
        if entry is None or not objects.memo_fresh(entry, max_age_seconds=max_age_seconds, now=now):
            return None
        return objects.copy_json(entry)  # type: ignore[no-any-return]

    async def memo_put(self, cache: str, key: str, entry: Mapping[str, Any]) -> None:
        """Store or replace an entry; stamps ``creationTimestamp`` when the entry has none."""
        stored = objects.copy_json(dict(entry))
        stored.setdefault("creationTimestamp", objects.rfc3339(self._clock()))
        self._memo[(cache, key)] = stored

    # -- ArtifactIndex ---------------------------------------------------------------------

    async def indexed_artifacts(self, *, uid: str) -> Sequence[IndexedArtifact]:
        """The run's indexed artifacts, by node id then name."""
        by_node = self._artifacts.get(uid) or {}
        return sorted((a for arts in by_node.values() for a in arts), key=lambda a: (a.node_id, a.name))

    async def referenced_keys(self, keys: Collection[str], *, excluding_uid: str | None = None) -> frozenset[str]:
        """Which of ``keys`` another indexed run names (a scan: memory serves tests and dev)."""
        wanted = set(keys)
        return frozenset(
            a.key for uid, by_node in self._artifacts.items() if uid != excluding_uid
            for arts in by_node.values() for a in arts if a.key in wanted
        )

    async def forget_artifacts(self, *, uid: str, keys: Collection[str]) -> None:
        """Drop the run's rows naming ``keys``."""
        gone = set(keys)
        by_node = self._artifacts.get(uid) or {}
        for node_id, arts in list(by_node.items()):
            kept = [a for a in arts if a.key not in gone]
            if kept:
                by_node[node_id] = kept
            else:
                del by_node[node_id]
