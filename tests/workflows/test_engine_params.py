"""Engine feature tests: input/output parameters, defaults, enum, valueFrom, globalName, submit overrides."""

# ruff: noqa: E501  (workflow YAML lines)
from __future__ import annotations

import pytest

from tests.workflows.conftest import Harness, node, param, phases
from workflows.errors import Problems


async def test_inputs_defaults_and_submit_override(engine: Harness) -> None:
    text = """
metadata: {name: params-%s}
spec:
  entrypoint: main
  arguments:
    parameters:
    - {name: greeting, value: hello}
    - {name: who, value: world}
  templates:
  - name: main
    steps:
    - - name: say
        template: say
        arguments: {parameters: [{name: a, value: "{{workflow.parameters.greeting}}"}]}
  - name: say
    inputs:
      parameters:
      - {name: a}
      - {name: b, default: "{{workflow.parameters.who}}"}
      - {name: c, value: fixed}
    container: {image: alpine, command: [echo, "{{inputs.parameters.a}} {{inputs.parameters.b}} {{inputs.parameters.c}}"]}
"""
    wf = await engine.run_yaml(text % "a")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert await engine.logs_of(wf, "say") == ["hello world fixed"]
    wf2 = await engine.run_yaml(text % "b", parameters={"who": "there", "greeting": "hi"})
    assert await engine.logs_of(wf2, "say") == ["hi there fixed"]
    say = node(wf2, "say")
    assert {p["name"]: p["value"] for p in say["inputs"]["parameters"]} == {"a": "hi", "b": "there", "c": "fixed"}


async def test_enum_violation_at_runtime_errors_node_and_names_parameter(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: enum-rt}
spec:
  entrypoint: main
  arguments: {parameters: [{name: color, value: purple}]}
  templates:
  - name: main
    steps:
    - - name: pick
        template: pick
        arguments: {parameters: [{name: color, value: "{{workflow.parameters.color}}"}]}
  - name: pick
    inputs:
      parameters:
      - {name: color, enum: [red, green]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.color}}"]}
""")
    # Argo: the node is Error; its step group (and so the run) is Failed ("child ... failed")
    assert wf["status"]["phase"] == "Failed", phases(wf)
    pick = node(wf, "pick")
    assert pick["phase"] == "Error"
    assert "color" in pick["message"]


async def test_enum_on_workflow_arguments_rejected_at_submit(engine: Harness) -> None:
    text = """
metadata: {name: enum-submit}
spec:
  entrypoint: main
  arguments:
    parameters:
    - {name: size, value: small, enum: [small, large]}
  templates:
  - name: main
    container: {image: alpine, command: [echo, "{{workflow.parameters.size}}"]}
"""
    with pytest.raises(Problems) as err:
        await engine.submit_yaml(text, parameters={"size": "huge"})
    # Argo: "spec.arguments.size.value should be present in spec.arguments.size.enum list"
    assert "size" in str(err.value)
    wf = await engine.run_yaml(text, parameters={"size": "large"})
    assert wf["status"]["phase"] == "Succeeded"
    assert await engine.logs_of(wf) == ["large"]


async def test_output_parameters_value_from(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: outparams}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: gen, template: gen}
    - - name: use
        template: echo
        arguments:
          parameters:
          - {name: m, value: "{{steps.gen.outputs.parameters.file}}|{{steps.gen.outputs.parameters.missing}}|{{steps.gen.outputs.parameters.expr}}|{{steps.gen.outputs.parameters.lit}}"}
  - name: gen
    container:
      image: alpine
      command: [sh, -c, "printf 'line1\\nline2\\n' > /tmp/out.txt; echo 7"]
    outputs:
      parameters:
      - name: file
        valueFrom: {path: /tmp/out.txt}
      - name: missing
        valueFrom: {path: /tmp/nope.txt, default: dflt}
      - name: expr
        valueFrom: {expression: "string(asInt(outputs.result) * 6)"}
      - {name: lit, value: "literal-{{pod.name}}"}
  - name: echo
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    gen = node(wf, "gen")
    assert param(gen, "file") == "line1\nline2"
    assert param(gen, "missing") == "dflt"
    assert param(gen, "expr") == "42"
    pod_name = param(gen, "lit")
    assert pod_name is not None and pod_name.startswith("literal-outparams-gen-")
    assert await engine.logs_of(wf, "use") == ["line1", f"line2|dflt|42|{pod_name}"]


async def test_missing_output_file_without_default_errors(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: outmissing}
spec:
  entrypoint: gen
  templates:
  - name: gen
    container: {image: alpine, command: ["true"]}
    outputs:
      parameters:
      - name: p
        valueFrom: {path: /tmp/absent}
""")
    assert wf["status"]["phase"] in ("Error", "Failed")
    assert node(wf, "outmissing")["phase"] in ("Error", "Failed")


async def test_global_output_parameters(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: globals}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: gen, template: gen}
    - - name: use
        template: echo
        arguments: {parameters: [{name: m, value: "{{workflow.outputs.parameters.color}}"}]}
  - name: gen
    script:
      image: alpine
      command: [sh]
      source: echo -n blue > /tmp/c
    outputs:
      parameters:
      - name: c
        globalName: color
        valueFrom: {path: /tmp/c}
  - name: echo
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert await engine.logs_of(wf, "use") == ["blue"]
    assert {p["name"]: p["value"] for p in wf["status"]["outputs"]["parameters"]} == {"color": "blue"}


async def test_steps_template_outputs_from_parameter(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: nested-out}
spec:
  entrypoint: outer
  templates:
  - name: outer
    steps:
    - - {name: inner, template: inner}
    - - name: use
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.inner.outputs.parameters.v}}"}]}
  - name: inner
    steps:
    - - {name: gen, template: gen}
    outputs:
      parameters:
      - name: v
        valueFrom: {parameter: "{{steps.gen.outputs.result}}"}
  - name: gen
    script: {image: alpine, command: [sh], source: echo from-inner}
  - name: echo
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert param(node(wf, "inner"), "v") == "from-inner"
    assert await engine.logs_of(wf, "use") == ["from-inner"]


async def test_dag_template_outputs_and_global(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: dag-out}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - {name: gen, template: gen}
    outputs:
      parameters:
      - name: v
        globalName: gv
        valueFrom: {parameter: "{{tasks.gen.outputs.result}}"}
  - name: gen
    script: {image: python, command: [python3], source: "print('dag-value')"}
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert param(node(wf, "dag-out"), "v") == "dag-value"
    assert {p["name"]: p["value"] for p in wf["status"]["outputs"]["parameters"]} == {"gv": "dag-value"}


async def test_parameters_in_timeout_limit_and_sequence(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: paramfields}
spec:
  entrypoint: main
  arguments: {parameters: [{name: n, value: "2"}, {name: t, value: 1s}]}
  templates:
  - name: main
    steps:
    - - name: seq
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withSequence: {end: "{{workflow.parameters.n}}"}
      - name: flaky
        template: flaky
        arguments: {parameters: [{name: limit, value: "{{workflow.parameters.n}}"}]}
      - name: slow
        template: slow
        arguments: {parameters: [{name: t, value: "{{workflow.parameters.t}}"}]}
        continueOn: {failed: true}
  - name: echo
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
  - name: flaky
    inputs: {parameters: [{name: limit}]}
    retryStrategy: {limit: "{{inputs.parameters.limit}}"}
    container: {image: alpine, command: [sh, -c, "exit 1"]}
  - name: slow
    inputs: {parameters: [{name: t}]}
    timeout: "{{inputs.parameters.t}}"
    container: {image: alpine, command: [sleep, "30"]}
""")
    ph = phases(wf)
    assert sorted(k for k in ph if k.startswith("seq(")) == ["seq(0:0)", "seq(1:1)", "seq(2:2)"]
    assert sorted(k for k in ph if k.startswith("flaky(")) == ["flaky(0)", "flaky(1)", "flaky(2)"]
    assert node(wf, "slow")["message"] == "Pod was active on the node longer than the specified deadline"
    assert wf["status"]["phase"] == "Failed"
