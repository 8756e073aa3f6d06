"""Artifact GC over real runs: a LocalExecutor writes the artifacts, the SQLite store indexes them,
:class:`~gittrigger.artifactcollector.ArtifactCollector` removes what each strategy gives up on
deletion (API and CronWorkflow history alike) and on completion, and keeps shared keys."""

# ruff: noqa: E501  (workflow YAML lines)
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gittrigger.artifactcollector import ArtifactCollector
from gittrigger.cronworkflows import CronScheduler
from workflows.engine import Engine
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.local import LocalExecutor
from workflows.resolution import DictTemplateGetter
from workflows.store.sqlite import SqliteStore


@dataclass(slots=True, kw_only=True)
class Kit:
    engine: Engine
    store: SqliteStore
    artifacts: LocalArtifactStore
    collector: ArtifactCollector

    async def run(self, text: str) -> dict[str, Any]:
        stored = await self.engine.submit(yaml.safe_load(text))
        done = await self.engine.wait(stored["metadata"]["namespace"], stored["metadata"]["name"])
        assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
        return await self.store.get(stored["metadata"]["namespace"], stored["metadata"]["name"])

    def files(self, run: dict[str, Any]) -> dict[str, bool]:
        """Artifact name -> whether its key is still in the artifact store."""
        return {a["name"]: self.artifacts.exists(a["s3"]["key"])
                for n in run["status"]["nodes"].values() for a in (n.get("outputs") or {}).get("artifacts") or ()}


@pytest.fixture
async def kit(tmp_path: Path) -> AsyncIterator[Kit]:
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    async with await SqliteStore.open(tmp_path / "gittrigger.db") as store:
        executor = LocalExecutor(data_dir=tmp_path, artifacts=artifacts, logs=store, isolation="none", grace_period=1.0)
        engine = Engine(store=store, executor=executor, templates=DictTemplateGetter())
        try:
            yield Kit(engine=engine, store=store, artifacts=artifacts,
                      collector=ArtifactCollector(store=store, artifacts=artifacts, engine=engine))
        finally:
            await engine.close()
            executor.close()


def workflow(name: str, *, default: str | None = None, kept: str = "Never", key: str | None = None) -> str:
    """One pod writing artifacts ``out`` (the run's strategy) and ``kept`` (its own strategy)."""
    gc = f"artifactGC: {{strategy: {default}}}" if default is not None else ""
    shared = f"\n      - {{name: shared, path: /tmp/{name}-out, s3: {{key: {key}}}}}" if key else ""
    return f"""
metadata: {{name: {name}, namespace: ci}}
spec:
  entrypoint: main
  {gc}
  templates:
  - name: main
    container: {{image: alpine, command: [sh, -c, "echo {name} > /tmp/{name}-out"]}}
    outputs:
      artifacts:
      - {{name: out, path: /tmp/{name}-out}}
      - {{name: kept, path: /tmp/{name}-out, artifactGC: {{strategy: {kept}}}}}{shared}
"""


async def test_a_real_run_fills_the_index(kit: Kit) -> None:
    run = await kit.run(workflow("indexed", key="my-file"))
    rows = await kit.store.indexed_artifacts(uid=run["metadata"]["uid"])
    pod = next(n for n in run["status"]["nodes"].values() if n["type"] == "Pod")
    pod_name = _pod_name(pod)
    assert sorted((r.node_id, r.name, r.key) for r in rows) == [
        (pod["id"], "kept", f"ci/indexed/{pod_name}/kept.tgz"),
        (pod["id"], "out", f"ci/indexed/{pod_name}/out.tgz"),
        (pod["id"], "shared", "my-file"),
    ]
    assert all(kit.files(run).values())
    assert {(r.namespace, r.workflow) for r in rows} == {("ci", "indexed")}


def _pod_name(pod: dict[str, Any]) -> str:
    """The key's pod segment, as the stored key says (the pod name derives from the node)."""
    key = next(a["s3"]["key"] for a in pod["outputs"]["artifacts"] if a["name"] == "out")
    return str(key.split("/")[2])


@pytest.mark.parametrize(("default", "removed"), [
    (None, False), ("Never", False), ("OnWorkflowDeletion", True), ("OnWorkflowCompletion", True),
], ids=["unset-is-never", "never", "on-deletion", "completion-not-yet-collected"])
async def test_deletion_collects_by_strategy(kit: Kit, default: str | None, removed: bool) -> None:
    """On deletion the run's rows go whatever the strategy; files go when the strategy says so."""
    run = await kit.run(workflow("gone", default=default))
    await kit.collector.delete_workflow("ci", "gone")
    assert kit.files(run) == {"out": not removed, "kept": True}
    assert list(await kit.store.indexed_artifacts(uid=run["metadata"]["uid"])) == []


async def test_shared_key_is_kept_while_another_run_names_it(kit: Kit) -> None:
    """Key-only artifacts (``s3.key: my-file``) of two runs: the first deletion leaves the file."""
    one = await kit.run(workflow("one", default="OnWorkflowDeletion", kept="OnWorkflowDeletion", key="my-file"))
    await kit.run(workflow("two", default="Never", key="my-file"))
    await kit.collector.delete_workflow("ci", "one")
    assert kit.files(one) == {"out": False, "kept": False, "shared": True}
    three = await kit.run(workflow("three", default="OnWorkflowDeletion", key="my-file"))
    await kit.collector.delete_workflow("ci", "two")  # Never: its files stay, its rows go
    assert kit.artifacts.exists("my-file")
    await kit.collector.delete_workflow("ci", "three")
    assert kit.files(three)["shared"] is False


async def test_completion_collects_through_the_phase_listener(kit: Kit) -> None:
    kit.engine.add_phase_listener(kit.collector.on_workflow_phase)
    run = await kit.run(workflow("done", default="OnWorkflowCompletion"))
    uid = run["metadata"]["uid"]
    for _ in range(1000):  # the listener runs in a task of its own, after the run's last write;
        # it removes the files first and then forgets their rows: wait for both
        rows = await kit.store.indexed_artifacts(uid=uid)
        if not kit.files(run)["out"] and [r.name for r in rows] == ["kept"]:
            break
        await asyncio.sleep(0.01)
    assert kit.files(run) == {"out": False, "kept": True}
    rows = await kit.store.indexed_artifacts(uid=uid)
    assert [r.name for r in rows] == ["kept"]  # collected rows are forgotten, the rest stay
    assert await kit.collector.delete_workflow("ci", "done") == []


async def test_cron_history_limits_collect_artifacts(kit: Kit) -> None:
    """A CronWorkflow child trimmed by the history limit takes its OnWorkflowDeletion artifacts along."""
    children = []
    for i in range(2):
        text = workflow(f"nightly-{i}", default="OnWorkflowDeletion").replace(
            "namespace: ci}", "namespace: ci, labels: {workflows.argoproj.io/cron-workflow: nightly}}")
        children.append(await kit.run(text))
    await kit.store.put_object("CronWorkflow", {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow",
        "metadata": {"name": "nightly", "namespace": "ci"},
        "spec": {"schedule": "0 0 1 1 *", "successfulJobsHistoryLimit": 1,
                 "workflowSpec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "alpine"}}]}},
    }, create=True)
    scheduler = CronScheduler(store=kit.store, engine=kit.engine, collector=kit.collector)
    await scheduler.sync_all()
    remaining = [w["metadata"]["name"] for w in (await kit.store.list("ci")).items]
    assert len(remaining) == 1
    gone = next(c for c in children if c["metadata"]["name"] not in remaining)
    assert kit.files(gone)["out"] is False
