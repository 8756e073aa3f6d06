"""Engine feature tests: outputs.result trimming and size cap, exitCode, and the variables a run exposes."""

# ruff: noqa: E501  (workflow YAML lines)
from __future__ import annotations

import json

from tests.workflows.conftest import Harness, node, phases


async def test_result_trims_one_trailing_newline(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: trim}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: two, template: two}
      - {name: none, template: none}
  - name: two
    script: {image: python, command: [python3], source: "import sys; sys.stdout.write('a\\\\nb\\\\n\\\\n')"}
  - name: none
    script: {image: python, command: [python3], source: "import sys; sys.stdout.write('x')"}
""")
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert node(wf, "two")["outputs"]["result"] == "a\nb\n"
    assert node(wf, "none")["outputs"]["result"] == "x"


async def test_large_result_keeps_last_256_kib(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: big}
spec:
  entrypoint: big
  templates:
  - name: big
    script:
      image: python
      command: [python3]
      source: |
        import sys
        sys.stdout.write("A" * 100000 + "B" * 262144 + "\\n")
""")
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    result = node(wf, "big")["outputs"]["result"]
    assert len(result) == 256 * 1024
    assert set(result) == {"B"}


async def test_exit_code_outputs_and_variable(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: exitcode}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: bad, template: bad, continueOn: {failed: true}}
    - - name: show
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.bad.exitCode}} {{steps.bad.status}}"}]}
  - name: bad
    container: {image: alpine, command: [sh, -c, "exit 5"]}
  - name: echo
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
""")
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    bad = node(wf, "bad")
    assert bad["phase"] == "Failed" and bad["outputs"]["exitCode"] == "5"
    assert await engine.logs_of(wf, "show") == ["5 Failed"]


async def test_node_and_workflow_variables(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: vars, namespace: team-a}
spec:
  entrypoint: main
  arguments: {parameters: [{name: p, value: pv}, {name: j, value: '{"a": {"b": 7}}'}]}
  templates:
  - name: main
    steps:
    - - {name: first, template: info}
    - - name: show
        template: show
        arguments:
          parameters:
          - name: m
            value: |
              {"id": "{{steps.first.id}}", "status": "{{steps.first.status}}", "started": "{{steps.first.startedAt}}", "finished": "{{steps.first.finishedAt}}", "ip": "{{steps.first.ip}}", "result": "{{steps.first.outputs.result}}"}
  - name: info
    script:
      image: alpine
      command: [sh]
      source: |
        echo "{{workflow.name}} {{workflow.namespace}} {{workflow.uid}} {{workflow.parameters.p}} {{workflow.creationTimestamp}} {{pod.name}} {{node.name}} {{= asInt('2') + 1 }} {{=sprig.upper('up')}} {{= jsonpath(workflow.parameters.j, '$.a.b') }}"
  - name: show
    inputs: {parameters: [{name: m}]}
    script: {image: alpine, command: [sh], source: "cat <<'EOF'\\n{{inputs.parameters.m}}\\nEOF"}
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert wf["metadata"]["namespace"] == "team-a"
    first = node(wf, "first")
    words = first["outputs"]["result"].split(" ")
    assert words[0] == "vars" and words[1] == "team-a"
    assert words[2] == wf["metadata"]["uid"]
    assert words[3] == "pv"
    assert words[4] == wf["metadata"]["creationTimestamp"]
    assert words[5].startswith("vars-info-") and words[5].endswith(first["id"].rsplit("-", 1)[-1])
    assert words[6] == "vars[0].first"
    assert words[7:] == ["3", "UP", "7"]
    shown = json.loads(node(wf, "show")["outputs"]["result"])
    assert shown["id"] == first["id"]
    assert shown["status"] == "Succeeded"
    assert shown["started"] == first["startedAt"] and shown["finished"] == first["finishedAt"]
    assert shown["ip"] and shown["ip"] == first.get("podIP", shown["ip"])
    assert shown["result"] == first["outputs"]["result"]


async def test_item_key_value_of_map_items(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: itemkey}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: m
        template: echo
        arguments: {parameters: [{name: m, value: "{{item.key}}:{{item.value}}"}]}
        withItems: [{key: k1, value: v1}]
  - name: echo
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert await engine.logs_of(wf, "m(0:key:k1,value:v1)") == ["k1:v1"]


async def test_more_workflow_variables(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata:
  name: morevars
  labels: {team: blue}
  annotations: {note: hello}
spec:
  entrypoint: main
  arguments: {parameters: [{name: p, value: pv}]}
  templates:
  - name: main
    inputs: {parameters: [{name: a, value: "1"}]}
    script:
      image: python
      command: [python3]
      source: |
        import json
        print(json.dumps({
          "label": "{{workflow.labels.team}}",
          "labels": {{workflow.labels.json}},
          "annotation": "{{workflow.annotations.note}}",
          "entry": "{{workflow.mainEntrypoint}}",
          "year": "{{workflow.creationTimestamp.Y}}",
          "wparams": {{workflow.parameters.json}},
          "inputs": {{inputs.parameters}},
        }))
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    got = json.loads(node(wf, "morevars")["outputs"]["result"])
    assert got["label"] == "blue"
    assert got["labels"]["team"] == "blue"
    assert got["annotation"] == "hello"
    assert got["entry"] == "main"
    assert got["year"] == wf["metadata"]["creationTimestamp"][:4]
    assert [(p["name"], p["value"]) for p in got["wparams"]] == [("p", "pv")]
    assert [(p["name"], p["value"]) for p in got["inputs"]] == [("a", "1")]


async def test_when_operators(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: whenops}
spec:
  entrypoint: main
  arguments: {parameters: [{name: x, value: hello}, {name: n, value: "7"}]}
  templates:
  - name: main
    steps:
    - - {name: quoted, template: t, when: "'{{workflow.parameters.x}}' == 'hello'"}
      - {name: regex, template: t, when: "'{{workflow.parameters.x}}' =~ '^he'"}
      - {name: regex-no, template: t, when: "'{{workflow.parameters.x}}' =~ '^xx'"}
      - {name: in, template: t, when: "{{workflow.parameters.n}} in (1, 7)"}
      - {name: and-or, template: t, when: "({{workflow.parameters.n}} > 5 && {{workflow.parameters.n}} < 6) || false"}
      - {name: not-equal, template: t, when: "{{workflow.parameters.x}} != hello"}
  - name: t
    container: {image: alpine, command: ["true"]}
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    ph = phases(wf)
    assert (ph["quoted"], ph["regex"], ph["in"]) == ("Succeeded", "Succeeded", "Succeeded"), ph
    assert (ph["regex-no"], ph["and-or"], ph["not-equal"]) == ("Skipped", "Skipped", "Skipped"), ph


async def test_pod_name_per_retry_attempt(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: podnames}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: r, template: flaky}
  - name: flaky
    retryStrategy: {limit: 1}
    container: {image: alpine, command: [sh, -c, "echo {{pod.name}}; [ {{retries}} -ge 1 ]"]}
""")
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    for attempt in ("r(0)", "r(1)"):
        n = node(wf, attempt)
        (line,) = await engine.logs_of(wf, attempt)
        assert line == f"podnames-flaky-{n['id'].rsplit('-', 1)[-1]}"
