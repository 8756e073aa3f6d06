"""
The storage seam: Protocols for runs, stored objects (templates), logs, the memo cache and the
index of the artifacts runs stored.

Rows hold Argo wire JSON (``metadata``, ``spec``, ``status``), so the store, the engine and the
HTTP API speak the same JSON. Implemented by :mod:`.memory` (tests, dev) and :mod:`.sqlite`
(the default). Called by :mod:`workflows.engine` and the HTTP edge.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from workflows.executors.base import LogLine

RawObject = dict[str, Any]  # an Argo object in wire JSON (metadata/spec/status)
Artifact = tuple[str, str, str]  # (node id, artifact name, key) of one indexed output artifact


@dataclass(frozen=True, slots=True, kw_only=True)
class ListOptions:
    """Filters of :meth:`WorkflowStore.list`, as Argo's ``listOptions``.

    ``labels`` are equality requirements (``{"app": "ci"}``); ``label_exists`` names labels that
    must be present; ``phases`` filters on ``status.phase`` ("" for a run not yet operated).
    ``limit``/``continue_token`` page the list in creation order, newest first.
    """

    labels: Mapping[str, str] | None = None
    label_exists: Collection[str] = ()
    label_not_equal: Mapping[str, str] | None = None
    phases: Collection[str] | None = None
    name_prefix: str | None = None
    limit: int | None = None
    continue_token: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """One page of a list; ``continue_token`` is None on the last page."""

    items: Sequence[RawObject]
    continue_token: str | None = None
    resource_version: str = "0"


class WorkflowStore(Protocol):
    """Durable runs, keyed by (namespace, name)."""

    async def create(self, workflow: RawObject) -> RawObject:
        """Store a new run: resolve ``generateName``, set uid, creationTimestamp, resourceVersion.

        Raises AlreadyExists when the name is taken. Returns the stored object.
        """
        ...

    async def get(self, namespace: str, name: str) -> RawObject:
        """The stored run; raises NotFound."""
        ...

    async def list(self, namespace: str | None, options: ListOptions | None = None) -> Page:
        """Runs of one namespace (all when None), newest first."""
        ...

    async def phase_counts(self) -> Mapping[str, int]:
        """How many runs are in each ``status.phase`` ("" for a run not yet operated), all namespaces."""
        ...

    async def update(
        self,
        workflow: RawObject,
        *,
        expected_version: str,
        changed_nodes: Collection[str] | None = None,
    ) -> RawObject:
        """Replace a run (metadata, spec, status) if its resourceVersion is ``expected_version``.

        ``changed_nodes`` names the ``status.nodes`` entries that changed (None: all may have),
        so a backend can write only those. Raises Conflict on a stale version, NotFound if gone.
        Returns the object with its new resourceVersion.
        """
        ...

    async def delete(self, namespace: str, name: str) -> None:
        """Delete a run with its logs (and its artifact index rows, where indexed); raises NotFound."""
        ...


class ObjectStore(Protocol):
    """WorkflowTemplates, ClusterWorkflowTemplates, CronWorkflows and other named objects."""

    async def put_object(self, kind: str, obj: RawObject, *, create: bool = False) -> RawObject:
        """Create or replace; with ``create`` an existing name raises AlreadyExists."""
        ...

    async def get_object(self, kind: str, namespace: str | None, name: str) -> RawObject:
        """Raises NotFound. Cluster-scoped kinds use namespace None."""
        ...

    async def list_objects(self, kind: str, namespace: str | None) -> Sequence[RawObject]:
        """All objects of ``kind`` (in ``namespace``, or all when None), sorted by name."""
        ...

    async def delete_object(self, kind: str, namespace: str | None, name: str) -> None:
        """Raises NotFound."""
        ...


class LogStore(Protocol):
    """Container logs, kept after pods and processes are gone."""

    def append(self, line: LogLine) -> None:
        """Queue a line (non-blocking; flushed by :meth:`flush` or a background flusher)."""
        ...

    async def flush(self) -> None:
        """Write every queued line."""
        ...

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
        """Stored lines in write order with their ids (for following: pass the last id as ``after_id``)."""
        ...


class MemoCache(Protocol):
    """The memoization cache (Argo keeps it in ConfigMaps): outputs by (cache name, key)."""

    async def memo_get(
        self, cache: str, key: str, *, max_age_seconds: float | None, now: datetime
    ) -> Mapping[str, Any] | None:
        """The stored entry ``{"nodeID", "outputs", "creationTimestamp"}`` if younger than max age."""
        ...

    async def memo_put(self, cache: str, key: str, entry: Mapping[str, Any]) -> None:
        """Store or replace an entry."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexedArtifact:
    """One output artifact a run stored: which run and node made it, and its artifact store key."""

    namespace: str
    workflow: str
    workflow_uid: str
    node_id: str
    name: str
    key: str
    size: int | None = None  # bytes, when the writer knew it (the store does not look at the files)
    created: datetime


def node_artifacts(node_id: str, node: Mapping[str, Any]) -> Sequence[Artifact]:
    """The output artifacts with a key of one wire node, as index rows; only Pod nodes count.

    Steps/DAG nodes re-export their children's artifacts (the same keys), and Argo's artifact GC
    looks at Pod nodes only. Called by the stores for every changed node of every write, so a node
    without outputs costs one dict lookup.
    """
    outputs = node.get("outputs")
    if not outputs or "artifacts" not in outputs or node.get("type") != "Pod":
        return ()
    out: list[Artifact] = []
    for art in outputs["artifacts"] or ():
        s3 = art.get("s3") if isinstance(art, Mapping) else None
        key = s3.get("key") if isinstance(s3, Mapping) else None
        if isinstance(key, str) and key:
            out.append((node_id, str(art.get("name") or ""), key))
    return out


class ArtifactIndex(Protocol):
    """Which run stored which artifact under which key: filled by :meth:`WorkflowStore.update` from
    the changed nodes' ``outputs.artifacts`` (Pod nodes, see :func:`node_artifacts`) in the same
    transaction, dropped with the run by :meth:`WorkflowStore.delete`. Read by artifact GC
    (:mod:`gittrigger.artifactcollector`) and the artifact download routes."""

    async def indexed_artifacts(self, *, uid: str) -> Sequence[IndexedArtifact]:
        """The artifacts indexed for the run with this uid, by node id then name."""
        ...

    async def referenced_keys(self, keys: Collection[str], *, excluding_uid: str | None = None) -> frozenset[str]:
        """Which of ``keys`` an indexed run (other than ``excluding_uid``) still names."""
        ...

    async def forget_artifacts(self, *, uid: str, keys: Collection[str]) -> None:
        """Drop this run's rows naming ``keys`` (their files were collected); unknown ones are ignored."""
        ...


class Store(WorkflowStore, ObjectStore, LogStore, MemoCache, ArtifactIndex, Protocol):
    """Everything a backend offers (both :mod:`.memory` and :mod:`.sqlite` do): what the server holds."""
