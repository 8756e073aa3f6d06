"""
Artifact garbage collection (Argo's ``artifactGC``): files of the local artifact store removed when
their run completes or is deleted, as the run's strategies say (:mod:`workflows.artifactgc`).

Callers: every path that deletes a run goes through :meth:`ArtifactCollector.delete_workflow` — the
API's delete (:mod:`gittrigger.http.argo`) and CronWorkflow history limits
(:mod:`gittrigger.cronworkflows`); :meth:`ArtifactCollector.on_workflow_phase` is an engine phase
listener (``engine.add_phase_listener``) for ``OnWorkflowCompletion``.

Which files: the run's rows of the store's artifact index (Pod nodes' output artifacts, see
:class:`~workflows.store.base.ArtifactIndex`), read before the run is deleted (its rows go with it,
whatever the strategy: Argo forgets a deleted workflow's artifacts too, and leaves ``Never`` ones in
the bucket, as we leave their files). A key another indexed run still names (a key-only artifact such
as ``s3.key: my-file`` written by several runs) is kept. A completion's collected rows are dropped
from the index, so a later deletion does not collect them again. Failures to remove a file are
logged, never raised: the run is deleted either way (Argo's ``forceFinalizerRemoval`` has nothing
to force here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

import structlog

from workflows import artifactgc
from workflows.engine import Engine
from workflows.errors import WorkflowError
from workflows.executors.artifacts import LocalArtifactStore
from workflows.store.base import ArtifactIndex, IndexedArtifact, RawObject, WorkflowStore

log = structlog.get_logger(__name__)
_COMPLETED = frozenset({"Succeeded", "Failed", "Error"})


class CollectingStore(WorkflowStore, ArtifactIndex, Protocol):
    """What the collector reads and deletes: runs and their artifact index."""


class ArtifactCollector:
    """Deletes runs with the artifacts their strategies give up; see the module docstring."""

    def __init__(self, *, store: CollectingStore, artifacts: LocalArtifactStore, engine: Engine | None = None) -> None:
        self._store = store
        self._artifacts = artifacts
        self._engine = engine  # completion: wait until the run's last state (and index rows) is written

    async def delete_workflow(self, namespace: str, name: str) -> list[str]:
        """Delete the run (NotFound if absent), then its collectable artifacts; returns the keys removed."""
        run = await self._store.get(namespace, name)
        uid = str((run.get("metadata") or {}).get("uid") or "")
        rows = await self._store.indexed_artifacts(uid=uid) if uid and artifactgc.declares_gc(run) else ()
        await self._store.delete(namespace, name)
        return await self._collect(run, rows, uid=uid, event="deletion")

    async def on_workflow_phase(self, namespace: str, name: str, phase: str, workflow: RawObject) -> None:
        """Engine phase listener: collect ``OnWorkflowCompletion`` artifacts once the run completed."""
        if phase not in _COMPLETED or not artifactgc.declares_gc(workflow):
            return  # most runs declare no artifactGC: no wait, no read
        try:
            if self._engine is not None:
                await self._engine.wait(namespace, name)
            run = await self._store.get(namespace, name)
            if not artifactgc.declares_gc(run):
                return
            uid = str(run["metadata"].get("uid") or "")
            rows = await self._store.indexed_artifacts(uid=uid)
            await self._collect(run, rows, uid=uid, event="completion")
        except WorkflowError as e:  # deleted or re-run meanwhile: its deletion collects what is left
            log.warning("artifact gc skipped", namespace=namespace, workflow=name, error=str(e))

    async def _collect(self, run: RawObject, rows: Sequence[IndexedArtifact], *, uid: str,
                       event: artifactgc.Event) -> list[str]:
        picked = artifactgc.collectable(run, rows, event=event)
        if not picked:
            return []
        keys = [a.key for a in picked]
        shared = await self._store.referenced_keys(keys, excluding_uid=uid)
        doomed = artifactgc.keys_to_delete(keys, still_referenced=shared)
        removed = await asyncio.to_thread(self._remove, doomed)
        if event == "completion":
            await self._store.forget_artifacts(uid=uid, keys=keys)
        meta: dict[str, Any] = run.get("metadata") or {}
        log.info("artifacts collected", namespace=meta.get("namespace"), workflow=meta.get("name"), on=event,
                 removed=len(removed), kept_shared=len(set(keys) & shared))
        return removed

    def _remove(self, keys: Sequence[str]) -> list[str]:
        removed = []
        for key in keys:
            try:
                self._artifacts.delete_prefix(key)
            except (WorkflowError, OSError) as e:
                log.warning("artifact not removed", key=key, error=str(e))
                continue
            removed.append(key)
        return removed
