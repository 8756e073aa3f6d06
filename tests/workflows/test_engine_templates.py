"""Engine feature tests: WorkflowTemplate/ClusterWorkflowTemplate templateRef, workflowTemplateRef, templateDefaults."""

# ruff: noqa: E501  (workflow YAML lines)
from __future__ import annotations

from tests.workflows.conftest import Harness, children, node, phases

LIBRARY = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: lib}
spec:
  templates:
  - name: greet
    inputs:
      parameters:
      - {name: who, default: nobody}
    container: {image: alpine, command: [echo, "hello {{inputs.parameters.who}}"]}
  - name: twice
    inputs: {parameters: [{name: who}]}
    steps:
    - - name: a
        template: greet
        arguments: {parameters: [{name: who, value: "{{inputs.parameters.who}}-1"}]}
    - - name: b
        template: greet
        arguments: {parameters: [{name: who, value: "{{inputs.parameters.who}}-2"}]}
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterWorkflowTemplate
metadata: {name: cluster-lib}
spec:
  templates:
  - name: shout
    inputs: {parameters: [{name: msg}]}
    script: {image: python, command: [python3], source: "print('{{inputs.parameters.msg}}'.upper())"}
---
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: whole}
spec:
  entrypoint: main
  arguments:
    parameters:
    - {name: color, value: red}
    - {name: size, value: small}
  templates:
  - name: main
    container: {image: alpine, command: [echo, "{{workflow.parameters.color}} {{workflow.parameters.size}}"]}
"""


async def test_template_refs(engine: Harness) -> None:
    engine.add_templates(LIBRARY)
    wf = await engine.run_yaml("""
metadata: {name: refs}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: plain
        templateRef: {name: lib, template: greet}
        arguments: {parameters: [{name: who, value: you}]}
      - name: dflt
        templateRef: {name: lib, template: greet}
      - name: nested
        templateRef: {name: lib, template: twice}
        arguments: {parameters: [{name: who, value: me}]}
      - name: cluster
        templateRef: {name: cluster-lib, template: shout, clusterScope: true}
        arguments: {parameters: [{name: msg, value: quiet}]}
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert await engine.logs_of(wf, "plain") == ["hello you"]
    assert await engine.logs_of(wf, "dflt") == ["hello nobody"]
    assert await engine.logs_of(wf, "b") == ["hello me-2"]
    assert node(wf, "cluster")["outputs"]["result"] == "QUIET"
    assert node(wf, "plain")["templateRef"] == {"name": "lib", "template": "greet"}
    nested = node(wf, "nested")
    assert nested["type"] == "Steps"
    assert [c["displayName"] for c in children(wf, nested)] == ["[0]"]


async def test_workflow_template_ref_with_arguments(engine: Harness) -> None:
    engine.add_templates(LIBRARY)
    wf = await engine.run_yaml("""
metadata: {name: from-whole}
spec:
  workflowTemplateRef: {name: whole}
  arguments:
    parameters:
    - {name: color, value: blue}
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert await engine.logs_of(wf) == ["blue small"]
    wf2 = await engine.run_yaml("""
metadata: {name: from-whole-2}
spec:
  workflowTemplateRef: {name: whole}
""", parameters={"size": "large"})
    assert await engine.logs_of(wf2) == ["red large"]


async def test_template_defaults(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: defaults}
spec:
  entrypoint: main
  templateDefaults:
    retryStrategy: {limit: 1}
    container:
      env:
      - {name: FROM_DEFAULTS, value: yes-please}
  templates:
  - name: main
    steps:
    - - {name: env, template: env}
      - {name: flaky, template: flaky}
  - name: env
    container: {image: alpine, command: [sh, -c, "echo $FROM_DEFAULTS"]}
  - name: flaky
    container: {image: alpine, command: [sh, -c, "[ {{retries}} -ge 1 ]"]}
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert node(wf, "env(0)")["outputs"]["result"] == "yes-please"
    flaky = node(wf, "flaky")
    assert flaky["type"] == "Retry"
    assert [(c["displayName"], c["phase"]) for c in children(wf, flaky)] == [("flaky(0)", "Failed"), ("flaky(1)", "Succeeded")]


async def test_workflow_template_ref_exit_handler_and_entrypoint_override(engine: Harness) -> None:
    engine.add_templates("""
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: with-exit}
spec:
  entrypoint: one
  onExit: bye
  templates:
  - name: one
    container: {image: alpine, command: [echo, one]}
  - name: two
    container: {image: alpine, command: [echo, two]}
  - name: bye
    container: {image: alpine, command: [echo, "bye {{workflow.status}}"]}
""")
    text = """
metadata: {name: %s}
spec:
  workflowTemplateRef: {name: with-exit}
"""
    wf = await engine.run_yaml(text % "wt-exit-1")
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert await engine.logs_of(wf) == ["one", "bye Succeeded"]
    wf2 = await engine.run_yaml(text % "wt-exit-2", entrypoint="two")
    assert await engine.logs_of(wf2) == ["two", "bye Succeeded"]
