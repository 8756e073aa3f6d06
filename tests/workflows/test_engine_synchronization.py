"""synchronization: mutexes admit one pod at a time, semaphores as many as their ConfigMap key says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workflows.configmaps import ConfigMaps
from workflows.engine import Engine
from workflows.errors import InvalidSpec
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.local import LocalExecutor
from workflows.resolution import DictTemplateGetter
from workflows.store.memory import MemoryStore


def fan_out(sync: dict[str, Any], *, items: int, marks: Path) -> dict[str, Any]:
    """``items`` parallel steps, each holding the lock for 0.3 s and logging start/end times to ``marks``."""
    script = f'echo "start $(date +%s%N)" >> {marks}; sleep 0.3; echo "end $(date +%s%N)" >> {marks}'
    return {
        "metadata": {"name": "sync", "namespace": "ns"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "steps": [[{"name": "work", "template": "locked",
                                             "withItems": list(range(items))}]]},
                {"name": "locked", "synchronization": sync,
                 "container": {"image": "busybox", "command": ["sh", "-c", script]}},
            ],
        },
    }


def most_at_once(marks: Path) -> int:
    events = sorted((int(t), 1 if kind == "start" else -1)
                    for kind, t in (line.split() for line in marks.read_text().splitlines()))
    now = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):  # an end before a start at the same instant
        now += delta
        peak = max(peak, now)
    return peak


async def run(tmp_path: Path, sync: dict[str, Any], *, items: int, configmaps: ConfigMaps | None) -> int:
    store = MemoryStore()
    executor = LocalExecutor(data_dir=tmp_path / "data", artifacts=LocalArtifactStore(tmp_path / "art"),
                             logs=store, isolation="none", grace_period=1)
    engine = Engine(store=store, executor=executor, templates=DictTemplateGetter(), semaphores=configmaps)
    marks = tmp_path / "marks"
    try:
        await engine.submit(fan_out(sync, items=items, marks=marks))
        done = await engine.wait("ns", "sync")
    finally:
        await engine.close()
        executor.close()
    assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
    assert len(marks.read_text().splitlines()) == 2 * items
    return most_at_once(marks)


SEMAPHORE = {"semaphore": {"configMapKeyRef": {"name": "limits", "key": "builds"}}}


@pytest.mark.parametrize(
    ("sync", "data", "expected"),
    [
        ({"mutex": {"name": "deploy"}}, {}, 1),
        (SEMAPHORE, {"builds": "2"}, 2),
        (SEMAPHORE, {"builds": "3"}, 3),
        (SEMAPHORE, {}, 1),  # unknown size: one holder, and a warning
        (SEMAPHORE, {"builds": "many"}, 1),
    ],
    ids=["mutex", "semaphore-2", "semaphore-3", "semaphore-unknown", "semaphore-not-a-number"],
)
async def test_holders_at_once(tmp_path: Path, sync: dict[str, Any], data: dict[str, str], expected: int) -> None:
    configmaps = ConfigMaps([{"metadata": {"name": "limits", "namespace": "ns"}, "data": data}])
    assert await run(tmp_path, sync, items=4, configmaps=configmaps) == expected


def test_configmaps_without_namespace_serve_every_namespace_and_bad_ones_are_refused() -> None:
    maps = ConfigMaps([{"metadata": {"name": "limits"}, "data": {"builds": 4}},
                       {"metadata": {"name": "limits", "namespace": "ns"}, "data": {"builds": "2"}}])
    assert maps.limit("ns", "limits", "builds") == 2
    assert maps.limit("other", "limits", "builds") == 4
    assert maps.limit("ns", "limits", "missing") is None
    with pytest.raises(InvalidSpec, match=r"ConfigMap\[0\]\.metadata\.name"):
        maps.replace([{"metadata": {}}])
    assert maps.limit("ns", "limits", "builds") == 2  # a refused replacement leaves the old ones


async def test_a_dag_fan_out_waiting_on_a_mutex_is_not_done_until_every_item_ran(tmp_path: Path) -> None:
    """Items that wait for a lock have no node yet; their TaskGroup must not count as finished."""
    store = MemoryStore()
    executor = LocalExecutor(data_dir=tmp_path / "data", artifacts=LocalArtifactStore(tmp_path / "art"),
                             logs=store, isolation="none", grace_period=1)
    engine = Engine(store=store, executor=executor, templates=DictTemplateGetter())
    manifest = {
        "metadata": {"name": "fan", "namespace": "ns"},
        "spec": {"entrypoint": "main", "templates": [
            {"name": "main", "dag": {"tasks": [
                {"name": "items", "template": "locked", "withItems": [1, 2, 3]},
                {"name": "after", "template": "plain", "depends": "items"},
            ]}},
            {"name": "locked", "synchronization": {"mutex": {"name": "one-at-a-time"}},
             "container": {"image": "busybox", "command": ["sleep", "0.1"]}},
            {"name": "plain", "container": {"image": "busybox", "command": ["true"]}},
        ]},
    }
    try:
        await engine.submit(manifest)
        done = await engine.wait("ns", "fan")
    finally:
        await engine.close()
        executor.close()
    nodes = list(done["status"]["nodes"].values())
    pods = sorted(n["displayName"] for n in nodes if n["type"] == "Pod")
    assert done["status"]["phase"] == "Succeeded"
    assert pods == ["after", "items(0:1)", "items(1:2)", "items(2:3)"]
    after = next(n for n in nodes if n["displayName"] == "after")
    assert all(n["finishedAt"] <= after["startedAt"] for n in nodes if n["displayName"].startswith("items("))
