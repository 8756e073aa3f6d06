"""Engine feature tests: template activeDeadlineSeconds and timeout, workflow activeDeadlineSeconds."""

from __future__ import annotations

import asyncio

from tests.workflows.conftest import Harness, node, nodes, phases

DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


async def test_template_deadlines(engine: Harness) -> None:
    texts = {
        "ads": """
metadata: {name: ads}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: slow, template: slow}
  - name: slow
    activeDeadlineSeconds: 1
    container: {image: alpine, command: [sleep, "30"]}
""",
        "timeout": """
metadata: {name: timeout}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: slow, template: slow}
  - name: slow
    timeout: 1s
    container: {image: alpine, command: [sleep, "30"]}
""",
    }
    runs = [await engine.submit_yaml(t) for t in texts.values()]
    for wf in await asyncio.gather(*(engine.wait(r) for r in runs)):
        assert wf["status"]["phase"] == "Failed", phases(wf)
        slow = node(wf, "slow")
        assert slow["phase"] == "Failed"
        assert slow["message"] == DEADLINE_MESSAGE


async def test_workflow_active_deadline(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: wfdeadline}
spec:
  entrypoint: main
  activeDeadlineSeconds: 1
  onExit: after
  templates:
  - name: main
    steps:
    - - {name: slow, template: slow}
    - - {name: never, template: after}
  - name: slow
    container: {image: alpine, command: [sleep, "30"]}
  - name: after
    container: {image: alpine, command: [echo, exit-ran]}
""")
    assert wf["status"]["phase"] == "Failed", phases(wf)
    slow = node(wf, "slow")
    assert slow["phase"] == "Failed"
    assert slow["message"] in ("Step exceeded its deadline", DEADLINE_MESSAGE)
    assert "never" not in phases(wf)
    exit_node = next(n for n in nodes(wf).values() if n["name"] == "wfdeadline.onExit")
    assert exit_node["phase"] == "Succeeded"  # Argo runs exit handlers after the deadline too


async def test_workflow_deadline_during_retry_backoff(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: deadline-backoff}
spec:
  entrypoint: main
  activeDeadlineSeconds: 1
  templates:
  - name: main
    steps:
    - - {name: r, template: flaky}
  - name: flaky
    retryStrategy: {limit: 1, backoff: {duration: 10s}}
    container: {image: alpine, command: [sh, -c, "exit 1"]}
""")
    assert wf["status"]["phase"] == "Failed"
    r = node(wf, "r")
    # Argo's processNodeRetries: "retry exceeded workflow deadline <deadline>", no further attempt
    assert [n["displayName"] for n in nodes(wf).values() if n["displayName"].startswith("r(")] == ["r(0)"]
    assert r["phase"] == "Failed"
    assert r["message"].startswith("retry exceeded workflow deadline")
