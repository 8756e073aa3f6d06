"""How the engine persists a busy run: one write per interval, and the final state at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import Any

from workflows.engine import Engine
from workflows.executors.base import PodRequest, PodResult
from workflows.model.status import NodePhase
from workflows.resolution import DictTemplateGetter
from workflows.store.memory import MemoryStore


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.updates = 0

    async def update(self, workflow: dict[str, Any], *, expected_version: str,
                     changed_nodes: Collection[str] | None = None) -> dict[str, Any]:
        self.updates += 1
        return await super().update(workflow, expected_version=expected_version, changed_nodes=changed_nodes)


class QuickExecutor:
    """Every pod succeeds after a millisecond: each one is its own pass of the core."""

    def __init__(self) -> None:
        self.pods = 0

    async def run(self, pod: PodRequest, *, on_ready: Callable[[str], None]) -> PodResult:
        await asyncio.sleep(0.001)
        self.pods += 1
        return PodResult(phase=NodePhase.SUCCEEDED, exit_code=0, result="")


def dag(tasks: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "busy"},
        "spec": {
            "entrypoint": "main",
            "parallelism": 2,
            "templates": [
                {"name": "main", "dag": {"tasks": [{"name": f"t{i}", "template": "noop"} for i in range(tasks)]}},
                {"name": "noop", "container": {"image": "busybox", "command": ["true"]}},
            ],
        },
    }


async def test_a_busy_run_is_written_once_per_interval_and_its_end_at_once() -> None:
    store, executor = CountingStore(), QuickExecutor()
    engine = Engine(store=store, executor=executor, templates=DictTemplateGetter(), persist_interval=0.05)
    try:
        await engine.submit(dag(60))
        done = await engine.wait("default", "busy")
    finally:
        await engine.close()
    assert done["status"]["phase"] == "Succeeded"
    stored = await store.get("default", "busy")
    assert stored["status"]["phase"] == "Succeeded"  # the final state is persisted when wait() returns
    assert {n["phase"] for n in stored["status"]["nodes"].values()} == {"Succeeded"}
    assert len(stored["status"]["nodes"]) == 61
    assert executor.pods == 60
    assert store.updates < 30  # 60+ passes, far fewer writes


async def test_without_an_interval_every_pass_may_write() -> None:
    store, executor = CountingStore(), QuickExecutor()
    engine = Engine(store=store, executor=executor, templates=DictTemplateGetter(), persist_interval=0)
    try:
        await engine.submit(dag(20))
        await engine.wait("default", "busy")
    finally:
        await engine.close()
    assert store.updates >= 10  # about one write per pass (a pod start rides with the next pass)
