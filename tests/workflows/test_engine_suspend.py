"""Engine feature tests: suspend templates (duration, resume with supplied outputs), workflow suspend/resume."""

from __future__ import annotations

import asyncio

from tests.workflows.conftest import Harness, node, node_phase_is, nodes, phases, wait_until


async def test_suspend_with_duration(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: susp-dur}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: before, template: echo}
    - - {name: wait, template: wait}
    - - {name: after, template: echo}
  - name: wait
    suspend: {duration: "1"}
  - name: echo
    container: {image: alpine, command: [echo, hi]}
""")
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    wait = node(wf, "wait")
    assert wait["type"] == "Suspend" and wait["phase"] == "Succeeded"
    assert wait["startedAt"] >= node(wf, "before")["finishedAt"]
    assert node(wf, "after")["startedAt"] >= wait["finishedAt"]
    assert wf["status"]["progress"] == "3/3"  # Suspend nodes count, like pods


async def test_resume_supplies_outputs(engine: Harness) -> None:
    stored = await engine.submit_yaml("""
metadata: {name: susp-resume}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: approve, template: approve}
    - - name: use
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.approve.outputs.parameters.answer}}"}]}
  - name: approve
    suspend: {}
    outputs:
      parameters:
      - name: answer
        valueFrom: {supplied: {}}
  - name: echo
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
""")
    meta = stored["metadata"]
    await wait_until(engine, stored, node_phase_is("approve", "Running"), what="suspend node running")
    await engine.engine.resume(meta["namespace"], meta["name"], outputs={"answer": "yes"})
    wf = await engine.wait(stored)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    approve = node(wf, "approve")
    assert approve["type"] == "Suspend" and approve["phase"] == "Succeeded"
    assert [(p["name"], p["value"]) for p in approve["outputs"]["parameters"]] == [("answer", "yes")]
    assert await engine.logs_of(wf, "use") == ["yes"]


async def test_resume_with_fail(engine: Harness) -> None:
    stored = await engine.submit_yaml("""
metadata: {name: susp-fail}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: gate, template: gate}
  - name: gate
    suspend: {}
""")
    meta = stored["metadata"]
    await wait_until(engine, stored, node_phase_is("gate", "Running"), what="suspend node running")
    await engine.engine.resume(meta["namespace"], meta["name"], fail=True, message="rejected")
    wf = await engine.wait(stored)
    assert wf["status"]["phase"] == "Failed"
    assert node(wf, "gate")["phase"] == "Failed"
    assert node(wf, "gate")["message"] == "rejected"


async def test_workflow_suspend_holds_new_steps_until_resumed(engine: Harness) -> None:
    stored = await engine.submit_yaml("""
metadata: {name: wf-suspend}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: one, template: slow}
    - - {name: two, template: slow}
  - name: slow
    container: {image: alpine, command: [sh, -c, "sleep 1; echo done"]}
""")
    meta = stored["metadata"]
    await wait_until(engine, stored, node_phase_is("one", "Running"), what="one running")
    await engine.engine.suspend(meta["namespace"], meta["name"])
    held = await wait_until(engine, stored, node_phase_is("one", "Succeeded"), what="one finished")
    await asyncio.sleep(0.5)
    held = await engine.store.get(meta["namespace"], meta["name"])
    assert "two" not in {n["displayName"] for n in nodes(held).values()}
    assert held["status"]["phase"] == "Running"
    await engine.engine.resume(meta["namespace"], meta["name"])
    wf = await engine.wait(stored)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert node(wf, "two")["phase"] == "Succeeded"


async def test_resume_one_node_by_name(engine: Harness) -> None:
    stored = await engine.submit_yaml("""
metadata: {name: susp-two}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: a, template: gate}
      - {name: b, template: gate}
  - name: gate
    suspend: {}
""")
    meta = stored["metadata"]
    await wait_until(engine, stored, lambda w: node_phase_is("a", "Running")(w) and node_phase_is("b", "Running")(w),
                     what="both suspended")
    await engine.engine.resume(meta["namespace"], meta["name"], node_names=["susp-two[0].a"])
    await wait_until(engine, stored, node_phase_is("a", "Succeeded"), what="a resumed")
    held = await engine.store.get(meta["namespace"], meta["name"])
    assert node(held, "b")["phase"] == "Running"
    await engine.engine.resume(meta["namespace"], meta["name"])
    wf = await engine.wait(stored)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
