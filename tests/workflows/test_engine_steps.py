"""Engine feature tests: container, script, steps groups, ``when``, inline templates, status shape."""

from __future__ import annotations

import re

from tests.workflows.conftest import Harness, by_name, children, node, nodes, phases

STEPS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: steps-shape
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: first
        template: echo
        arguments: {parameters: [{name: msg, value: one}]}
    - - name: second-a
        template: echo
        arguments: {parameters: [{name: msg, value: two-a}]}
      - name: second-b
        template: echo
        arguments: {parameters: [{name: msg, value: two-b}]}
  - name: echo
    inputs: {parameters: [{name: msg}]}
    container:
      image: alpine
      command: [sh, -c]
      args: ["echo {{inputs.parameters.msg}}"]
"""


async def test_steps_tree_shape_and_status(engine: Harness) -> None:
    wf = await engine.run_yaml(STEPS)
    st = wf["status"]
    assert st["phase"] == "Succeeded"
    assert st["progress"] == "3/3"
    assert st["startedAt"] and st["finishedAt"]
    root = node(wf, "steps-shape")
    assert root["type"] == "Steps" and root["name"] == "steps-shape" and root["id"] == "steps-shape"
    groups = children(wf, root)
    assert [g["displayName"] for g in groups] == ["[0]"]
    assert groups[0]["type"] == "StepGroup" and groups[0]["name"] == "steps-shape[0]"
    assert [c["displayName"] for c in children(wf, groups[0])] == ["first"]
    first = by_name(wf, "steps-shape[0].first")
    assert first["type"] == "Pod" and first["templateName"] == "echo"
    # groups chain: the pod of group 0 has group 1 as child
    (g1,) = children(wf, first)
    assert g1["displayName"] == "[1]" and g1["type"] == "StepGroup"
    assert sorted(c["displayName"] for c in children(wf, g1)) == ["second-a", "second-b"]
    for n in nodes(wf).values():
        assert n["phase"] == "Succeeded", phases(wf)
        assert n["startedAt"] and n["finishedAt"]
    assert await engine.logs_of(wf, "first") == ["one"]
    assert await engine.logs_of(wf, "second-b") == ["two-b"]


async def test_groups_run_in_order(engine: Harness) -> None:
    wf = await engine.run_yaml(STEPS)
    first = node(wf, "first")
    for name in ("second-a", "second-b"):
        assert node(wf, name)["startedAt"] >= first["finishedAt"]


async def test_node_ids_are_deterministic_for_the_same_name(make_engine) -> None:  # type: ignore[no-untyped-def]
    a = await make_engine()
    b = await make_engine()
    wf1 = await a.run_yaml(STEPS)
    wf2 = await b.run_yaml(STEPS)
    ids1 = {n["name"]: n["id"] for n in nodes(wf1).values()}
    ids2 = {n["name"]: n["id"] for n in nodes(wf2).values()}
    assert ids1 == ids2
    assert set(nodes(wf1)) == set(ids1.values())
    assert all(re.fullmatch(r"steps-shape(-\d+)?", i) for i in ids1.values())


async def test_script_bash_and_python_results(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {generateName: script-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: py, template: py}
      - {name: sh, template: sh}
    - - name: use
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.py.outputs.result}}+{{steps.sh.outputs.result}}"}]}
  - name: py
    script:
      image: python:3
      command: [python3]
      source: |
        print(6 * 7)
  - name: sh
    script:
      image: alpine
      command: [bash]
      source: |
        x=hi
        echo "$x there"
  - name: echo
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
""")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert node(wf, "py")["outputs"]["result"] == "42"
    assert node(wf, "sh")["outputs"]["result"] == "hi there"
    assert node(wf, "use")["outputs"]["result"] == "42+hi there"
    assert wf["metadata"]["name"].startswith("script-")


async def test_failed_container_fails_workflow(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: fails}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: bad, template: bad}
    - - {name: never, template: bad}
  - name: bad
    container: {image: alpine, command: [sh, -c, "exit 3"]}
""")
    assert wf["status"]["phase"] == "Failed"
    bad = node(wf, "bad")
    assert bad["phase"] == "Failed"
    assert bad["message"] == "Error (exit code 3)"
    assert bad["outputs"]["exitCode"] == "3"
    assert not [n for n in nodes(wf).values() if n["displayName"] == "never"]
    assert node(wf, "fails")["phase"] == "Failed"
    assert wf["status"]["progress"] == "0/1"  # a failed pod does not complete its progress


WHEN = """
metadata: {name: when}
spec:
  entrypoint: main
  arguments: {parameters: [{name: coin, value: heads}]}
  templates:
  - name: main
    steps:
    - - {name: flip, template: flip}
    - - name: heads
        template: echo
        when: "{{steps.flip.outputs.result}} == heads"
      - name: tails
        template: echo
        when: "{{steps.flip.outputs.result}} == tails"
      - name: expr-yes
        template: echo
        when: "{{= steps.flip.outputs.result == 'heads' && 2 > 1 }}"
      - name: expr-no
        template: echo
        when: "{{= asInt('3') < 2 }}"
      - name: num
        template: echo
        when: "5 > 10"
  - name: flip
    script:
      image: alpine
      command: [sh]
      source: echo {{workflow.parameters.coin}}
  - name: echo
    container: {image: alpine, command: [echo, ran]}
"""


async def test_when_bare_words_and_expressions(engine: Harness) -> None:
    wf = await engine.run_yaml(WHEN)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert node(wf, "heads")["phase"] == "Succeeded"
    assert node(wf, "expr-yes")["phase"] == "Succeeded"
    for skipped in ("tails", "expr-no", "num"):
        n = node(wf, skipped)
        assert n["phase"] == "Skipped", (skipped, n)
        assert n["type"] == "Skipped"
        assert n["message"].startswith("when '")
        assert n["message"].endswith("' evaluated false")


async def test_when_with_submit_parameter_override(engine: Harness) -> None:
    wf = await engine.run_yaml(WHEN.replace("name: when}", "name: when2}"), parameters={"coin": "tails"})
    assert node(wf, "tails")["phase"] == "Succeeded"
    assert node(wf, "heads")["phase"] == "Skipped"
    assert node(wf, "flip")["outputs"]["result"] == "tails"


async def test_inline_templates_in_steps(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: inline}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: inl
        inline:
          container: {image: alpine, command: [echo, inline-ran]}
""")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    n = node(wf, "inl")
    assert n["type"] == "Pod" and n["phase"] == "Succeeded"
    assert await engine.logs_of(wf, "inl") == ["inline-ran"]


async def test_entrypoint_container_alone(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: lone}
spec:
  entrypoint: c
  templates:
  - name: c
    container: {image: alpine, command: [sh, -c, "echo out; echo err >&2"]}
""")
    assert wf["status"]["phase"] == "Succeeded"
    (only,) = nodes(wf).values()
    assert only["type"] == "Pod" and only["name"] == "lone" and only["id"] == "lone"
    assert wf["status"]["progress"] == "1/1"
    assert only["outputs"]["exitCode"] == "0"
    assert "out" in await engine.logs_of(wf)
