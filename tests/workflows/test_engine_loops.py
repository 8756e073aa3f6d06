"""Engine feature tests: withItems / withParam / withSequence fan-out, aggregated outputs, parallelism."""

# ruff: noqa: E501  (workflow YAML lines)
from __future__ import annotations

import json

from tests.workflows.conftest import Harness, children, node, nodes, phases

ECHO = """
  - name: echo
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
"""


def max_overlap(lines: list[str]) -> int:
    """Most pods between their 'start' and 'end' lines at once, from lines in write order."""
    running = peak = 0
    for line in lines:
        if line.startswith("start"):
            running += 1
            peak = max(peak, running)
        elif line.startswith("end"):
            running -= 1
    return peak


async def test_with_items_scalars_and_maps(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: items}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: s
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withItems: [a, 2, true]
    - - name: m
        template: echo
        arguments: {parameters: [{name: m, value: "{{item.os}}-{{item.v}}"}]}
        withItems:
        - {os: debian, v: "12"}
        - {os: ubuntu, v: "24"}
""" + ECHO)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    names = sorted(n["displayName"] for n in nodes(wf).values() if n["type"] == "Pod")
    assert names == ["m(0:os:debian,v:12)", "m(1:os:ubuntu,v:24)", "s(0:a)", "s(1:2)", "s(2:true)"]
    assert node(wf, "s(1:2)")["name"] == "items[0].s(1:2)"
    assert await engine.logs_of(wf, "m(1:os:ubuntu,v:24)") == ["ubuntu-24"]
    assert await engine.logs_of(wf, "s(2:true)") == ["true"]
    # a looped step has no node of its own in steps: the expanded nodes are children of the group
    (group0,) = children(wf, node(wf, "items"))
    assert [c["displayName"] for c in children(wf, group0)] == ["s(0:a)", "s(1:2)", "s(2:true)"]


async def test_with_param_from_previous_result_and_aggregated_outputs(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: withparam}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: gen, template: gen}
    - - name: sq
        template: sq
        arguments: {parameters: [{name: n, value: "{{item}}"}]}
        withParam: "{{steps.gen.outputs.result}}"
    - - name: sum
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.sq.outputs.result}}|{{steps.sq.outputs.parameters.half}}"}]}
  - name: gen
    script: {image: python, command: [python3], source: "import json; print(json.dumps([1, 2, 3]))"}
  - name: sq
    inputs: {parameters: [{name: n}]}
    script:
      image: python
      command: [python3]
      source: |
        n = {{inputs.parameters.n}}
        open('/tmp/half', 'w').write(str(n * 5))
        print(n * n)
    outputs:
      parameters:
      - name: half
        valueFrom: {path: /tmp/half}
""" + ECHO)
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert sorted(n["displayName"] for n in nodes(wf).values() if n["templateName"] == "sq") == ["sq(0:1)", "sq(1:2)", "sq(2:3)"]
    (line,) = await engine.logs_of(wf, "sum")
    results, halves = line.split("|")
    assert json.loads(results) == [1, 4, 9]  # Argo unmarshals each result as an Item
    assert json.loads(halves) == ["5", "10", "15"]


async def test_with_param_json_objects_in_dag(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: dagparam}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - {name: gen, template: gen}
      - name: use
        depends: gen
        template: echo
        arguments: {parameters: [{name: m, value: "{{item.name}}={{item.n}}"}]}
        withParam: "{{tasks.gen.outputs.result}}"
  - name: gen
    script: {image: python, command: [python3], source: "import json; print(json.dumps([{'name': 'x', 'n': 1}, {'name': 'y', 'n': 2}]))"}
""" + ECHO)
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert sorted(n["displayName"] for n in nodes(wf).values() if n["type"] == "Pod" and n["displayName"] != "gen") == [
        "use(0:n:1,name:x)", "use(1:n:2,name:y)"]
    assert await engine.logs_of(wf, "use(1:n:2,name:y)") == ["y=2"]
    assert node(wf, "use")["type"] == "TaskGroup"


async def test_with_sequence(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: seq}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: count
        template: echo
        arguments: {parameters: [{name: m, value: "c{{item}}"}]}
        withSequence: {count: "3"}
      - name: range
        template: echo
        arguments: {parameters: [{name: m, value: "r{{item}}"}]}
        withSequence: {start: "5", end: "7"}
      - name: fmt
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withSequence: {start: "1", end: "2", format: "host%02X"}
      - name: down
        template: echo
        arguments: {parameters: [{name: m, value: "d{{item}}"}]}
        withSequence: {start: "3", end: "1"}
""" + ECHO)
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    pods = sorted(n["displayName"] for n in nodes(wf).values() if n["type"] == "Pod")
    assert pods == sorted(["count(0:0)", "count(1:1)", "count(2:2)", "range(0:5)", "range(1:6)", "range(2:7)",
                           "fmt(0:host01)", "fmt(1:host02)", "down(0:3)", "down(1:2)", "down(2:1)"])
    assert await engine.logs_of(wf, "down(2:1)") == ["d1"]


async def test_empty_lists_are_skipped(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: empty}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: gen, template: gen}
    - - name: none
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withParam: "{{steps.gen.outputs.result}}"
      - name: none-items
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withItems: []
    - - name: after
        template: echo
        arguments: {parameters: [{name: m, value: "after"}]}
  - name: gen
    script: {image: alpine, command: [sh], source: "echo '[]'"}
""" + ECHO)
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    for name in ("none", "none-items"):
        n = node(wf, name)
        assert n["phase"] == "Skipped" and n["type"] == "Skipped", n
        assert n["message"] == "Skipped, empty params"
    assert node(wf, "after")["phase"] == "Succeeded"


async def test_empty_with_param_in_dag_is_skipped(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: emptydag}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - name: none
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withParam: "[]"
      - {name: after, template: echo, depends: none, arguments: {parameters: [{name: m, value: x}]}}
""" + ECHO)
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert node(wf, "none")["phase"] == "Skipped"
    assert node(wf, "none")["message"] == "Skipped, empty params"
    assert node(wf, "after")["phase"] == "Succeeded"


SLEEPER = """
  - name: sleeper
    inputs: {parameters: [{name: i}]}
    container: {image: alpine, command: [sh, -c, "echo start {{inputs.parameters.i}}; sleep 1; echo end {{inputs.parameters.i}}"]}
"""


async def test_template_parallelism_limits_overlap(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: tpar}
spec:
  entrypoint: main
  templates:
  - name: main
    parallelism: 2
    steps:
    - - name: s
        template: sleeper
        arguments: {parameters: [{name: i, value: "{{item}}"}]}
        withSequence: {count: "4"}
""" + SLEEPER)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    lines = await engine.logs_of(wf)
    assert len(lines) == 8
    assert max_overlap(lines) == 2, lines


async def test_workflow_parallelism_limits_overlap_in_dag(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: wpar}
spec:
  entrypoint: d
  parallelism: 1
  templates:
  - name: d
    dag:
      tasks:
      - name: t
        template: sleeper
        arguments: {parameters: [{name: i, value: "{{item}}"}]}
        withItems: [a, b, c]
""" + SLEEPER)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    lines = await engine.logs_of(wf)
    assert len(lines) == 6
    assert max_overlap(lines) == 1, lines


async def test_unlimited_fan_out_overlaps(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: nopar}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: s
        template: sleeper
        arguments: {parameters: [{name: i, value: "{{item}}"}]}
        withSequence: {count: "3"}
""" + SLEEPER)
    lines = await engine.logs_of(wf)
    assert max_overlap(lines) == 3, lines


async def test_workflow_parallelism_counts_pods_in_nested_templates(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: nestedpar}
spec:
  entrypoint: main
  parallelism: 2
  onExit: bye
  templates:
  - name: main
    steps:
    - - name: group
        template: group
        arguments: {parameters: [{name: g, value: "{{item}}"}]}
        withItems: [a, b]
  - name: group
    inputs: {parameters: [{name: g}]}
    steps:
    - - name: s
        template: sleeper
        arguments: {parameters: [{name: i, value: "{{inputs.parameters.g}}{{item}}"}]}
        withItems: [1, 2]
  - name: bye
    container: {image: alpine, command: [echo, bye]}
""" + SLEEPER)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    lines = [ln for ln in await engine.logs_of(wf) if ln != "bye"]
    assert len(lines) == 8
    assert max_overlap(lines) == 2, lines
    assert "bye" in await engine.logs_of(wf)


async def test_item_rendering_of_maps_and_lists(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: itemrender}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: m
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withItems:
        - {z: 1, a: x}
      - name: l
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withParam: '[[1, 2], ["q"]]'
""" + ECHO)
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    pods = sorted(n["displayName"] for n in nodes(wf).values() if n["type"] == "Pod")
    # list items are named with Go's fmt.Sprint of the list (not asserted exactly); maps as sorted k:v
    assert pods[0].startswith("l(0:[") and pods[1].startswith("l(1:[") and pods[2] == "m(0:a:x,z:1)"
    assert await engine.logs_of(wf, "m(0:a:x,z:1)") == ['{"a":"x","z":1}']
    assert await engine.logs_of(wf, pods[0]) == ["[1,2]"]


async def test_continue_on_in_fan_out_and_aggregates_of_succeeded_only(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: fancontinue}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: x
        template: maybe
        arguments: {parameters: [{name: c, value: "{{item}}"}]}
        withItems: [0, 3, 0]
        continueOn: {failed: true}
    - - name: sum
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.x.outputs.result}}"}]}
  - name: maybe
    inputs: {parameters: [{name: c}]}
    script: {image: alpine, command: [sh], source: "echo {{inputs.parameters.c}}; exit {{inputs.parameters.c}}"}
""" + ECHO)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert node(wf, "x(1:3)")["phase"] == "Failed"
    assert await engine.logs_of(wf, "sum") == ["[0,0]"]
