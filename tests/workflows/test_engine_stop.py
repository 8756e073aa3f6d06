"""Engine feature tests: stop (exit handlers run) and terminate (they do not); no process survives."""

# ruff: noqa: E501  (workflow YAML lines)
from __future__ import annotations

import uuid

import pytest

from tests.workflows.conftest import Harness, by_name, node, node_phase_is, nodes, processes_with, wait_until

TEXT = """
metadata: {name: %(name)s}
spec:
  entrypoint: main
  onExit: exit
  templates:
  - name: main
    steps:
    - - {name: long, template: long}
    - - {name: never, template: exit}
  - name: long
    container: {image: python, command: [python3, -c, "import time; time.sleep(30)", "%(token)s"]}
  - name: exit
    container: {image: alpine, command: [echo, exit-ran]}
"""


@pytest.mark.parametrize("strategy", ["Stop", "Terminate"])
async def test_stop_and_terminate(engine: Harness, strategy: str) -> None:
    token = f"h8-stop-{uuid.uuid4().hex}"
    stored = await engine.submit_yaml(TEXT % {"name": f"stop-{strategy.lower()}", "token": token})
    meta = stored["metadata"]
    await wait_until(engine, stored, node_phase_is("long", "Running"), what="long running")
    await engine.engine.stop(meta["namespace"], meta["name"], strategy=strategy)
    wf = await engine.wait(stored)
    message = f"Stopped with strategy '{strategy}'"
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["message"] == message
    long = node(wf, "long")
    assert long["phase"] == "Failed"
    assert long["message"] == message
    assert not [n for n in nodes(wf).values() if n["displayName"] == "never"]
    exit_nodes = [n for n in nodes(wf).values() if n["name"] == f"{meta['name']}.onExit"]
    if strategy == "Stop":
        assert by_name(wf, f"{meta['name']}.onExit")["phase"] == "Succeeded"
    else:
        assert exit_nodes == []
    assert processes_with(token) == []


async def test_stop_fails_suspended_nodes_and_runs_exit_handler(engine: Harness) -> None:
    stored = await engine.submit_yaml("""
metadata: {name: stop-suspended}
spec:
  entrypoint: d
  onExit: exit
  templates:
  - name: d
    dag:
      tasks:
      - {name: gate, template: gate}
      - {name: next, template: exit, depends: gate}
  - name: gate
    suspend: {}
  - name: exit
    container: {image: alpine, command: [echo, exit-ran]}
""")
    meta = stored["metadata"]
    await wait_until(engine, stored, node_phase_is("gate", "Running"), what="gate suspended")
    await engine.engine.stop(meta["namespace"], meta["name"])
    wf = await engine.wait(stored)
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["message"] == "Stopped with strategy 'Stop'"
    gate = node(wf, "gate")
    assert gate["phase"] == "Failed" and gate["message"] == "Stopped with strategy 'Stop'"
    assert by_name(wf, "stop-suspended.onExit")["phase"] == "Succeeded"
    assert "next" not in {n["displayName"] for n in nodes(wf).values() if n["phase"] == "Succeeded"}


async def test_workflow_deadline_fails_suspended_node(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: deadline-suspended}
spec:
  entrypoint: main
  activeDeadlineSeconds: 1
  templates:
  - name: main
    steps:
    - - {name: gate, template: gate}
  - name: gate
    suspend: {}
""")
    assert wf["status"]["phase"] == "Failed"
    gate = node(wf, "gate")
    assert gate["phase"] == "Failed"
    assert gate["message"] == "Step exceeded its deadline"


async def test_stop_during_retry_backoff(engine: Harness) -> None:
    stored = await engine.submit_yaml("""
metadata: {name: stop-backoff}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: r, template: flaky}
  - name: flaky
    retryStrategy: {limit: 1, backoff: {duration: 10s}}
    container: {image: alpine, command: [sh, -c, "exit 1"]}
""")
    meta = stored["metadata"]
    await wait_until(engine, stored, node_phase_is("r(0)", "Failed"), what="first attempt failed")
    await engine.engine.stop(meta["namespace"], meta["name"])
    wf = await engine.wait(stored)
    assert wf["status"]["phase"] == "Failed"
    r = node(wf, "r")
    assert r["phase"] == "Failed"
    # Argo's processNodeRetries: on shutdown the Retry node fails at once, no further attempt
    assert [c["displayName"] for c in nodes(wf).values() if c["displayName"].startswith("r(")] == ["r(0)"]
    assert r["message"] == "Stopped with strategy 'Stop'"


async def test_terminate_kills_daemons_and_sidecars(engine: Harness) -> None:
    token = f"h8-term-{uuid.uuid4().hex}"
    stored = await engine.submit_yaml(f"""
metadata: {{name: term-daemon}}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - {{name: srv, template: srv}}
      - {{name: main, template: main, depends: srv}}
  - name: srv
    daemon: true
    container: {{image: python, command: [python3, -c, "import time; print('up', flush=True); time.sleep(60)", "{token}-daemon"]}}
  - name: main
    sidecars:
    - {{name: side, image: python, command: [python3, -c, "import time; time.sleep(60)", "{token}-sidecar"]}}
    container: {{image: python, command: [python3, -c, "import time; time.sleep(60)", "{token}-main"]}}
""")
    meta = stored["metadata"]
    await wait_until(engine, stored, node_phase_is("main", "Running"), what="main running")
    await engine.engine.stop(meta["namespace"], meta["name"], strategy="Terminate")
    wf = await engine.wait(stored)
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["message"] == "Stopped with strategy 'Terminate'"
    assert node(wf, "main")["phase"] == "Failed"
    assert processes_with(token) == []
