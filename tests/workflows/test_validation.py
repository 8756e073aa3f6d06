"""Tests of :mod:`workflows.validation`: one YAML snippet and its expected problems per case."""

# ruff: noqa: E501  (YAML snippets and the exact messages they produce read better unwrapped)

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml

from workflows.linting import lint_paths
from workflows.loading import load_paths, parse_sourced
from workflows.model.wire import parse_object
from workflows.resolution import DictTemplateGetter
from workflows.validation import validate, validate_object

LIB = parse_object(yaml.safe_load("""
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: lib}
spec:
  arguments: {parameters: [{name: lib-arg, value: x}]}
  templates:
  - name: echo
    inputs: {parameters: [{name: msg}, {name: mode, value: fast, enum: [fast, slow]}]}
    outputs: {parameters: [{name: out, valueFrom: {path: /o}}]}
    container: {image: busybox, args: ["{{inputs.parameters.msg}}", "{{workflow.parameters.lib-arg}}"]}
"""))
GETTER = DictTemplateGetter([LIB])

HEAD = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: wf}
spec:
  entrypoint: main
"""
LEAF = """
  - name: echo
    inputs: {parameters: [{name: msg, default: hi}]}
    outputs: {parameters: [{name: out, valueFrom: {path: /tmp/out}}]}
    container: {image: busybox, args: ["{{inputs.parameters.msg}}"]}
  - name: need
    inputs: {parameters: [{name: req}, {name: color, default: red, enum: [red, blue]}]}
    container: {image: busybox}
"""


def problems(spec_text: str, *, head: str = HEAD, submit: dict[str, str] | None = None) -> list[str]:
    raw = yaml.safe_load(head + textwrap.dedent(spec_text).replace("\n", "\n  ") + LEAF)
    return [str(p) for p in validate(parse_object(raw), getter=GETTER, submit_parameters=submit)]


CASES: list[tuple[str, str, list[str]]] = [
    ("ok-steps", """
        templates:
        - name: main
          steps:
          - - {name: a, template: echo}
          - - {name: b, template: echo, arguments: {parameters: [{name: msg, value: "{{steps.a.outputs.result}}"}]}}
            - {name: c, template: need, when: "{{steps.a.outputs.parameters.out}} == x", arguments: {parameters: [
                {name: req, value: "{{item}}"}]}, withItems: [1, 2]}
    """, []),
    ("ok-dag", """
        arguments: {parameters: [{name: p, value: "1"}]}
        templates:
        - name: main
          outputs: {parameters: [{name: r, valueFrom: {parameter: "{{tasks.C.outputs.parameters.out}}"}}]}
          dag:
            tasks:
            - {name: A, template: echo, arguments: {parameters: [{name: msg, value: "{{workflow.parameters.p}}"}]}}
            - {name: B, template: echo, depends: A}
            - {name: C, template: echo, depends: "B.Succeeded || A.Failed",
               arguments: {parameters: [{name: msg, value: "{{tasks.A.outputs.result}}"}]}}
    """, []),
    ("entrypoint-unknown", """
        entrypoint: nothing
        templates:
        - {name: main, suspend: {}}
    """, ["spec.entrypoint: unknown template 'nothing'"]),
    ("entrypoint-missing", """
        entrypoint: null
        templates:
        - {name: main, container: {image: x}}
    """, ["spec.entrypoint: is required"]),
    ("unknown-templates", """
        onExit: bye
        hooks: {running: {template: nope, expression: "true"}}
        templates:
        - name: main
          steps: [[{name: a, template: missing, hooks: {exit: {template: gone}}}]]
    """, ["spec.onExit: unknown template 'bye'", "spec.hooks.running.template: unknown template 'nope'",
          "spec.templates[0].steps[0][0].template: unknown template 'missing'",
          "spec.templates[0].steps[0][0].hooks.exit.template: unknown template 'gone'"]),
    ("template-ref", """
        templates:
        - name: main
          dag:
            tasks:
            - {name: a, templateRef: {name: lib, template: echo}, arguments: {parameters: [{name: msg, value: m}]}}
            - {name: b, templateRef: {name: lib, template: nope}}
            - {name: c, templateRef: {name: other, template: echo}}
            - {name: d, templateRef: {name: lib, template: echo, clusterScope: true}}
            - {name: e, templateRef: {name: lib, template: echo}, arguments: {parameters: [
                {name: msg, value: m}, {name: mode, value: medium}]}}
    """, ["spec.templates[0].dag.tasks[1].templateRef.template: WorkflowTemplate 'lib' has no template 'nope'",
          "spec.templates[0].dag.tasks[2].templateRef.name: WorkflowTemplate 'other' not found",
          "spec.templates[0].dag.tasks[3].templateRef.name: ClusterWorkflowTemplate 'lib' not found",
          "spec.templates[0].dag.tasks[4].arguments: parameter 'mode': 'medium' is not one of the allowed values "
          "['fast', 'slow'] of template 'echo'"]),
    ("duplicates", """
        templates:
        - name: main
          steps: [[{name: a, template: echo}], [{name: a, template: echo}]]
        - name: main
          dag: {tasks: [{name: x, template: echo}, {name: x, template: echo}]}
    """, ["spec.templates[1].name: duplicate template name 'main' (also spec.templates[0])",
          "spec.templates[0].steps[1][0].name: duplicate step name 'a' (also spec.templates[0].steps[0][0])",
          "spec.templates[1].dag.tasks[1].name: duplicate task name 'x' (also spec.templates[1].dag.tasks[0])"]),
    ("dag-dependencies", """
        templates:
        - name: main
          dag:
            tasks:
            - {name: A, template: echo}
            - {name: B, template: echo, dependencies: [A, E]}
    """, ["spec.templates[0].dag.tasks[1].dependencies: unknown task 'E'"]),
    ("dag-depends-and-mixing", """
        templates:
        - name: main
          dag:
            tasks:
            - {name: A, template: echo, depends: "Z.Succeeded || D.AnySucceeded"}
            - {name: B, template: echo, dependencies: [A], depends: A}
            - {name: C, template: echo, dependencies: [A], continueOn: {failed: true}}
            - {name: D, template: echo}
    """, ["spec.templates[0].dag.tasks[0].depends: unknown task 'Z'",
          "spec.templates[0].dag.tasks[0].depends: 'D' has no items (withItems, withParam or withSequence), so .AnySucceeded/.AllFailed do not apply",
          "spec.templates[0].dag.tasks[1]: only one of dependencies and depends may be given",
          "spec.templates[0].dag.tasks[2].dependencies: cannot be mixed with depends in the same DAG",
          "spec.templates[0].dag.tasks[2].continueOn: cannot be used with depends (use depends: \"x.Failed\")"]),
    ("dag-cycle", """
        templates:
        - name: main
          dag:
            target: C Q
            tasks:
            - {name: A, template: echo, dependencies: [C]}
            - {name: B, template: echo, dependencies: [A]}
            - {name: C, template: echo, dependencies: [B]}
            - {name: D, template: echo, dependencies: [D]}
    """, ["spec.templates[0].dag.tasks: dependency cycle: A -> C -> B -> A",
          "spec.templates[0].dag.tasks: dependency cycle: D -> D",
          "spec.templates[0].dag.target: unknown task 'Q'"]),
    ("missing-inputs-and-enum", """
        arguments: {parameters: [{name: req, value: v}]}
        entrypoint: need
        templates:
        - name: main
          steps:
          - - {name: a, template: need}
            - {name: b, template: need, arguments: {parameters: [{name: req, value: v}, {name: color, value: green}]}}
            - {name: c, template: need, arguments: {parameters: [{name: req}]}}
    """, ["spec.templates[0].steps[0][0].arguments: missing argument for input parameter 'req' of template 'need'",
          "spec.templates[0].steps[0][1].arguments: parameter 'color': 'green' is not one of the allowed values "
          "['red', 'blue'] of template 'need'",
          "spec.templates[0].steps[0][2].arguments.parameters[0]: argument 'req' has no value"]),
    ("entrypoint-inputs-from-arguments", """
        entrypoint: need
        templates:
        - {name: main, suspend: {}}
    """, ["spec.entrypoint: missing argument for input parameter 'req' of template 'need'"]),
    ("workflow-arguments", """
        arguments:
          parameters:
          - {name: nothing}
          - {name: env, value: qa, enum: [dev, prod]}
          - {name: ok, valueFrom: {configMapKeyRef: {name: c, key: k}}}
        templates:
        - {name: main, suspend: {}}
    """, ["spec.arguments.parameters[0].value: argument 'nothing' has no value and none was supplied",
          "spec.arguments.parameters[1].value: parameter 'env': 'qa' is not one of the allowed values ['dev', 'prod']"]),
    ("bad-numbers-and-durations", """
        templates:
        - name: main
          retryStrategy: {limit: "-1", backoff: {duration: 5 mins, maxDuration: "1m", cap: "10"}}
          timeout: "30"
          activeDeadlineSeconds: soon
          parallelism: 2
          container: {image: x}
        - name: w1
          retryStrategy: {limit: many}
          suspend: {duration: "2 hours"}
        - name: w2
          retryStrategy: {limit: "{{inputs.parameters.n}}"}
          memoize: {key: k, cache: {configMap: {name: c}}, maxAge: 1d}
          inputs: {parameters: [{name: n}]}
          suspend: {duration: "20"}
    """, ["spec.templates[0].retryStrategy.limit: must be a non-negative integer or a variable, got '-1'",
          "spec.templates[0].retryStrategy.backoff.duration: invalid duration '5 mins' (use e.g. 30s, 5m, 1h or "
          "seconds)",
          "spec.templates[0].timeout: invalid duration '30' (use e.g. 30s, 5m or 1h)",
          "spec.templates[0].activeDeadlineSeconds: must be a non-negative integer or a variable, got 'soon'",
          "spec.templates[0].parallelism: is only valid for steps and dag templates",
          "spec.templates[1].retryStrategy.limit: must be a non-negative integer or a variable, got 'many'",
          "spec.templates[1].suspend.duration: invalid duration '2 hours' (use e.g. 30s, 5m, 1h or seconds)",
          "spec.templates[2].memoize.maxAge: invalid duration '1d' (use e.g. 30s, 5m or 1h)"]),
    ("bad-loops", """
        templates:
        - name: main
          steps:
          - - {name: a, template: echo, withSequence: {count: 3, end: 5}}
            - {name: b, template: echo, withSequence: {start: x}}
            - {name: c, template: echo, withItems: [1], withParam: "[1]"}
    """, ["spec.templates[0].steps[0][0].withSequence: only one of count or end may be given",
          "spec.templates[0].steps[0][1].withSequence.start: must be an integer or a variable, got 'x'",
          "spec.templates[0].steps[0][2]: only one of withItems, withParam, withSequence may be given, "
          "not withItems and withParam"]),
    ("unknown-variables", """
        templates:
        - name: main
          steps:
          - - {name: a, template: echo, arguments: {parameters: [{name: msg, value: "{{steps.b.outputs.result}}"}]}}
            - {name: b, template: echo, arguments: {parameters: [{name: msg, value: "{{item}}"}]}}
          - - {name: c, template: echo, arguments: {parameters: [
                {name: msg, value: "{{steps.a.outputs.parameters.nope}} {{steps.zz.id}} {{workflow.parameters.q}}"}]}}
        - name: leaf
          container: {image: x, args: ["{{inputs.parameters.y}}", "{{workflow.bogus}}", "{{=inputs.parameters.z}}",
                                      "{{pod.name}} {{workflow.name}} {{outputs.parameters.x.path}} {{node.name}}"]}
    """, ["spec.templates[0].steps[0][0].arguments.parameters[0].value: unknown variable "
          "{{steps.b.outputs.result}}: step 'b' does not run before this step (only earlier step groups are visible)",
          "spec.templates[0].steps[0][1].arguments.parameters[0].value: unknown variable {{item}}: used outside a "
          "loop (withItems, withParam or withSequence)",
          "spec.templates[0].steps[1][0].arguments.parameters[0].value: unknown variable "
          "{{steps.a.outputs.parameters.nope}}: step 'a' (template 'echo') has no output parameter 'nope'",
          "spec.templates[0].steps[1][0].arguments.parameters[0].value: unknown variable {{steps.zz.id}}: "
          "template 'main' has no step 'zz'",
          "spec.templates[0].steps[1][0].arguments.parameters[0].value: unknown variable "
          "{{workflow.parameters.q}}: 'q' is not a workflow argument (spec.arguments.parameters)",
          "spec.templates[1].container.args[0]: unknown variable {{inputs.parameters.y}}: template 'leaf' has no "
          "input parameter 'y'",
          "spec.templates[1].container.args[1]: unknown variable {{workflow.bogus}}: not a workflow variable",
          "spec.templates[1].container.args[2]: unknown variable {{=inputs.parameters.z}}: template 'leaf' has no "
          "input parameter 'z'"]),
    ("dag-scope", """
        templates:
        - name: main
          dag:
            tasks:
            - {name: A, template: echo}
            - {name: B, template: echo, arguments: {parameters: [{name: msg, value: "{{tasks.A.outputs.result}}"}]}}
            - {name: C, template: echo, depends: B, when: "{{=tasks['A'].outputs.result == 'x'}}"}
            - {name: D, template: echo, arguments: {parameters: [{name: msg, value: "{{steps.A.id}}"}]}}
    """, ["spec.templates[0].dag.tasks[1].arguments.parameters[0].value: unknown variable "
          "{{tasks.A.outputs.result}}: task 'A' is not a dependency of task 'B'",
          "spec.templates[0].dag.tasks[2].when: unknown variable {{=tasks['A'].outputs.result == 'x'}}: "
          "task 'A' is not a dependency of task 'C'",
          "spec.templates[0].dag.tasks[3].arguments.parameters[0].value: unknown variable {{steps.A.id}}: "
          "steps.* is only defined inside a steps template"]),
    ("exit-hook-sees-own-outputs-and-inline", """
        templates:
        - name: main
          steps:
          - - name: a
              template: echo
              hooks: {exit: {template: echo, arguments: {parameters: [
                {name: msg, value: "{{steps.a.outputs.parameters.out}}"}]}}}
            - name: b
              withItems: [x]
              inline:
                inputs: {parameters: [{name: v, value: "{{item}}"}]}
                container: {image: busybox, args: ["{{inputs.parameters.v}}", "{{inputs.parameters.w}}"]}
    """, ["spec.templates[0].steps[0][1].inline.container.args[1]: unknown variable {{inputs.parameters.w}}: "
          "template 'main' has no input parameter 'w'"]),
    ("step-target", """
        templates:
        - name: main
          steps: [[{name: a}, {name: b, template: echo, templateRef: {name: lib, template: echo}}]]
    """, ["spec.templates[0].steps[0][0]: exactly one of template, templateRef or inline is required",
          "spec.templates[0].steps[0][1]: only one of template, templateRef may be given"]),
    ("template-bodies", """
        templates:
        - name: main
          steps: [[{name: a, template: noimage}]]
          timeout: 1m
        - name: noimage
          script: {source: echo}
    """, ["spec.templates[0].timeout: steps templates do not support timeout",
          "spec.templates[1].script.image: is required"]),
]


@pytest.mark.parametrize(("spec_text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validation_problems(spec_text: str, expected: list[str]) -> None:
    """Every problem is reported, each with its field path."""
    assert sorted(problems(spec_text)) == sorted(expected)


def test_submit_parameters_supply_and_are_checked() -> None:
    spec = """
        arguments: {parameters: [{name: a}, {name: env, value: dev, enum: [dev, prod]}]}
        templates:
        - {name: main, suspend: {}}
    """
    assert problems(spec, submit={"a": "1"}) == []
    assert problems(spec, submit={"a": "1", "env": "qa"}) == [
        "spec.arguments.parameters[1].value: parameter 'env': 'qa' is not one of the allowed values ['dev', 'prod']"]


def test_workflow_template_is_lenient_about_arguments() -> None:
    """A WorkflowTemplate's arguments, entrypoint inputs and workflow.parameters come from its users."""
    head = HEAD.replace("kind: Workflow", "kind: WorkflowTemplate")
    spec = """
        arguments: {parameters: [{name: later}]}
        entrypoint: need
        templates:
        - name: main
          container: {image: x, args: ["{{workflow.parameters.from-user}}"]}
    """
    assert problems(spec, head=head) == []


def test_workflow_template_ref() -> None:
    ok = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "w"},
          "spec": {"workflowTemplateRef": {"name": "lib"}, "entrypoint": "echo",
                   "arguments": {"parameters": [{"name": "msg", "value": "m"}]}}}
    assert validate_object(ok, getter=GETTER) == []
    missing = {**ok, "spec": {"workflowTemplateRef": {"name": "nope"}}}
    assert [str(p) for p in validate_object(missing, getter=GETTER)] == [
        "spec.workflowTemplateRef.name: WorkflowTemplate 'nope' not found"]
    no_arg = {**ok, "spec": {"workflowTemplateRef": {"name": "lib"}, "entrypoint": "echo"}}
    assert [str(p) for p in validate_object(no_arg, getter=GETTER)] == [
        "spec.entrypoint: missing argument for input parameter 'msg' of template 'echo'"]


def test_validate_object_returns_parse_error() -> None:
    assert [str(p) for p in validate_object({"apiVersion": "v1"}, getter=GETTER, path="x")] == [
        "x.apiVersion: must be 'argoproj.io/v1alpha1', got 'v1'"]


CONFORMANCE = os.environ.get("GITTRIGGER_CONFORMANCE_DIR")
ARGO_KINDS = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")


@pytest.mark.skipif(not CONFORMANCE, reason="GITTRIGGER_CONFORMANCE_DIR not set")
def test_argo_examples_validate_cleanly() -> None:
    """Every Argo example parses and validates with no problems (templates loaded into the getter)."""
    root = Path(CONFORMANCE or ".") / "argo-examples"
    if not root.is_dir():
        root = Path(CONFORMANCE or ".")
    objects = [(source, parse_sourced(source, doc)) for source, doc in load_paths([root])
               if doc.get("kind") in ARGO_KINDS]
    assert objects
    getter = DictTemplateGetter(obj for _, obj in objects)
    found = [f"{source}: {problem}" for source, obj in objects for problem in validate(obj, getter=getter)]
    assert found == []


def test_lint_paths(tmp_path: Path) -> None:
    """Templates among the files serve the others' references; bad files are one line each."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "lib.yaml").write_text(yaml.safe_dump({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": "shared"},
        "spec": {"templates": [{"name": "t", "container": {"image": "busybox"}}]}}))
    (tmp_path / "ci.yaml").write_text(HEAD + """\
  templates:
  - name: main
    dag:
      tasks:
      - {name: A, templateRef: {name: shared, template: t}}
      - {name: B, templateRef: {name: elsewhere, template: t}, dependencies: [E]}
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: ignored}
""")
    (tmp_path / "broken.yaml").write_text("a: [1\n")
    (tmp_path / "bad.yml").write_text(HEAD + "  templates: [{name: main}]\n")
    extra = parse_object({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
                          "metadata": {"name": "elsewhere"}, "spec": {"templates": [
                              {"name": "t", "suspend": {}}]}})
    lines = lint_paths([tmp_path])
    assert lines == [
        f"{tmp_path}/bad.yml: spec.templates[0]: template 'main' has no body: one of container, script, "
        "containerSet, steps, dag, suspend, resource, http, data, plugin is required",
        f"{tmp_path}/broken.yaml: line 2, column 1: expected ',' or ']', but got '<stream end>'",
        f"{tmp_path}/ci.yaml#1: spec.templates[0].dag.tasks[1].dependencies: unknown task 'E'",
        f"{tmp_path}/ci.yaml#1: spec.templates[0].dag.tasks[1].templateRef.name: WorkflowTemplate 'elsewhere' not found",
    ]
    with_extra = lint_paths([tmp_path / "ci.yaml"], getter_extra=[extra, LIB])
    assert with_extra == [
        f"{tmp_path}/ci.yaml#1: spec.templates[0].dag.tasks[0].templateRef.name: WorkflowTemplate 'shared' not found",
        f"{tmp_path}/ci.yaml#1: spec.templates[0].dag.tasks[1].dependencies: unknown task 'E'",
    ]


def test_lint_clean(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(HEAD + "  templates: [{name: main, container: {image: x}}]\n")
    assert lint_paths([tmp_path]) == []
