"""Engine feature tests: a server restart in the middle of a run (SqliteStore + the same data dir)."""

# ruff: noqa: E501  (workflow YAML lines)
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.workflows.conftest import (
    EngineFactory,
    Harness,
    RawWorkflow,
    children,
    node,
    node_phase_is,
    nodes,
    phases,
    processes_with,
    wait_until,
)
from workflows.store.sqlite import SqliteStore

TEXT = """
metadata: {name: %(name)s}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: first, template: first}
    - - {name: slow, template: slow}
    - - {name: after, template: after}
  - name: first
    container: {image: alpine, command: [echo, first-ran]}
  - name: slow
    %(retry)s
    container:
      image: python
      command: [python3, -c, "import sys, time; print('slow {{retries}}', flush=True); time.sleep(30 if '{{retries}}' in ('0', '{{' + 'retries}}') else 0)", "%(token)s"]
  - name: after
    container: {image: alpine, command: [echo, after-ran]}
"""


@pytest.mark.parametrize("retry", ["", "retryStrategy: {limit: 2, retryPolicy: OnError}"], ids=["no-retry", "on-error"])
async def test_running_pod_is_lost_on_restart(make_engine: EngineFactory, tmp_path: Path, retry: str) -> None:
    token = f"h8-restart-{uuid.uuid4().hex}"
    name = "restart-retry" if retry else "restart"
    text = TEXT % {"name": name, "retry": retry, "token": token}
    if not retry:
        text = text.replace("{{retries}}", "0")
    store = await SqliteStore.open(tmp_path / "runs.db")
    try:
        first = await make_engine(store=store, data_dir=tmp_path / "data")
        stored = await first.submit_yaml(text)
        await wait_until(first, stored, node_phase_is("slow" if not retry else "slow(0)", "Running"), what="slow running")
        await first.engine.close()
        assert processes_with(token) == []

        second = await make_engine(store=store, data_dir=tmp_path / "data")
        assert await second.engine.resume_all() == 1
        wf = await second.wait(stored)
        logs = await second.logs_of(wf)
        await second.engine.close()
    finally:
        await store.close()

    assert logs.count("first-ran") == 1, logs
    assert processes_with(token) == []
    if not retry:
        assert wf["status"]["phase"] == "Failed", phases(wf)
        slow = node(wf, "slow")
        assert slow["phase"] == "Error"
        assert "server" in slow["message"] and "stop" in slow["message"]
        assert "after-ran" not in logs
    else:
        assert wf["status"]["phase"] == "Succeeded", phases(wf)
        slow = node(wf, "slow")
        assert [(c["displayName"], c["phase"]) for c in children(wf, slow)] == [("slow(0)", "Error"), ("slow(1)", "Succeeded")]
        assert "server" in node(wf, "slow(0)")["message"]
        assert logs.count("after-ran") == 1
        assert logs.count("slow 1") == 1


async def restart(make_engine: EngineFactory, tmp_path: Path, text: str, ready: str, phase: str,
                  then: Callable[[Harness, RawWorkflow], Awaitable[None]] | None = None) -> tuple[RawWorkflow, list[str]]:
    """Submit ``text``, wait until node ``ready`` has ``phase``, restart the engine, finish the run."""
    store = await SqliteStore.open(tmp_path / "runs.db")
    try:
        first = await make_engine(store=store, data_dir=tmp_path / "data")
        stored = await first.submit_yaml(text)
        before = await wait_until(first, stored, node_phase_is(ready, phase), what=f"{ready} {phase}")
        await first.engine.close()
        second = await make_engine(store=store, data_dir=tmp_path / "data")
        assert await second.engine.resume_all() == 1
        if then is not None:
            await then(second, stored)
        wf = await second.wait(stored)
        logs = await second.logs_of(wf)
        await second.engine.close()
    finally:
        await store.close()
    ids_before = {n["name"]: n["id"] for n in nodes(before).values()}
    assert {n["name"]: n["id"] for n in nodes(wf).values() if n["name"] in ids_before} == ids_before
    return wf, logs


async def test_restart_of_a_suspended_run_then_resume(make_engine: EngineFactory, tmp_path: Path) -> None:
    async def resume(h: Harness, stored: RawWorkflow) -> None:
        meta = stored["metadata"]
        await h.engine.resume(meta["namespace"], meta["name"], outputs={"v": "after-restart"})

    wf, logs = await restart(make_engine, tmp_path, """
metadata: {name: restart-suspend}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: first, template: first}
    - - {name: gate, template: gate}
    - - name: use
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.gate.outputs.parameters.v}}"}]}
  - name: first
    container: {image: alpine, command: [echo, first-ran]}
  - name: gate
    suspend: {}
    outputs:
      parameters:
      - {name: v, valueFrom: {supplied: {}}}
  - name: echo
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
""", "gate", "Running", then=resume)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert logs == ["first-ran", "after-restart"]


async def test_restart_during_backoff_and_timed_suspend(make_engine: EngineFactory, tmp_path: Path) -> None:
    wf, logs = await restart(make_engine, tmp_path, """
metadata: {name: restart-backoff}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: r, template: flaky}
    - - {name: nap, template: nap}
    - - {name: done, template: done}
  - name: flaky
    retryStrategy: {limit: 2, backoff: {duration: 2s}}
    container: {image: alpine, command: [sh, -c, "echo try {{retries}}; [ {{retries}} -ge 1 ]"]}
  - name: nap
    suspend: {duration: 1s}
  - name: done
    container: {image: alpine, command: [echo, all-done]}
""", "r(0)", "Failed")
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert logs == ["try 0", "try 1", "all-done"]
    assert node(wf, "r(1)")["startedAt"] >= node(wf, "r(0)")["finishedAt"]


async def test_restart_of_a_dag_loses_only_the_running_task(make_engine: EngineFactory, tmp_path: Path) -> None:
    token = f"h8-restart-dag-{uuid.uuid4().hex}"
    wf, logs = await restart(make_engine, tmp_path, f"""
metadata: {{name: restart-dag}}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - {{name: a, template: a}}
      - {{name: b, template: b, depends: a}}
      - {{name: c, template: a, depends: "b.Errored"}}
  - name: a
    container: {{image: alpine, command: [echo, a-ran]}}
  - name: b
    container: {{image: python, command: [python3, -c, "import time; time.sleep(30)", "{token}"]}}
""", "b", "Running")
    assert node(wf, "b")["phase"] == "Error"
    assert node(wf, "c")["phase"] == "Succeeded"
    assert logs == ["a-ran", "a-ran"]
    assert processes_with(token) == []
    assert wf["status"]["phase"] == "Succeeded", phases(wf)


async def test_timed_suspend_that_expired_while_down_continues(make_engine: EngineFactory, tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "runs.db")
    try:
        first = await make_engine(store=store, data_dir=tmp_path / "data")
        stored = await first.submit_yaml("""
metadata: {name: restart-expired}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: nap, template: nap}
    - - {name: done, template: done}
  - name: nap
    suspend: {duration: "1"}
  - name: done
    container: {image: alpine, command: [echo, done]}
""")
        await wait_until(first, stored, node_phase_is("nap", "Running"), what="nap running")
        await first.engine.close()
        await asyncio.sleep(1.5)  # the suspend's deadline passes while no engine runs
        second = await make_engine(store=store, data_dir=tmp_path / "data")
        await second.engine.resume_all()
        wf = await second.wait(stored)
        logs = await second.logs_of(wf)
        await second.engine.close()
    finally:
        await store.close()
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert node(wf, "nap")["phase"] == "Succeeded"
    assert logs == ["done"]
