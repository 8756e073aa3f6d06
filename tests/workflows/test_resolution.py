"""Tests of :mod:`workflows.resolution`: template lookup, workflowTemplateRef merge, templateDefaults."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import yaml

from workflows.errors import InvalidSpec, NotFound
from workflows.model.spec import TemplateKind, Workflow
from workflows.model.wire import parse_object, parse_step
from workflows.resolution import (
    DictTemplateGetter,
    apply_template_defaults,
    local_scope,
    merge_raw,
    resolve_template,
    resolve_workflow_template_ref,
)


def obj(text: str) -> Workflow:
    return parse_object(yaml.safe_load(textwrap.dedent(text)))


LIB = obj("""
    apiVersion: argoproj.io/v1alpha1
    kind: WorkflowTemplate
    metadata: {name: lib, namespace: ci}
    spec:
      entrypoint: main
      workflowMetadata: {labels: {from: template, both: template}}
      arguments:
        parameters:
        - {name: msg, value: hello, enum: [hello, bye]}
        - {name: other, value: x}
      templates:
      - name: main
        steps: [[{name: s, template: echo}]]
      - name: echo
        container: {image: busybox, env: [{name: A, value: "1"}]}
""")
CLUSTER = obj("""
    apiVersion: argoproj.io/v1alpha1
    kind: ClusterWorkflowTemplate
    metadata: {name: lib}
    spec:
      templates: [{name: echo, script: {image: python, source: print(1)}}]
""")
GETTER = DictTemplateGetter([LIB, CLUSTER])

WF = obj("""
    apiVersion: argoproj.io/v1alpha1
    kind: Workflow
    metadata: {name: run, namespace: ci, labels: {both: workflow}}
    spec:
      workflowTemplateRef: {name: lib}
      entrypoint: echo
      arguments:
        parameters:
        - {name: msg, value: bye}
        - {name: extra, value: "2"}
      templates:
      - name: echo
        container: {image: alpine}
""")


def test_workflow_template_ref_merges_with_workflow_winning() -> None:
    """Argo JoinWorkflowSpec: arguments/templates by name, workflow fields win."""
    merged = resolve_workflow_template_ref(WF, GETTER)
    spec = merged.spec
    assert spec.workflow_template_ref is None and spec.entrypoint == "echo"
    assert [(p.name, p.value, p.enum) for p in spec.arguments.parameters] == [
        ("msg", "bye", ("hello", "bye")), ("other", "x", ()), ("extra", "2", ()),
    ]
    assert [t.name for t in spec.templates] == ["main", "echo"]
    echo = spec.template("echo")
    assert echo is not None and echo.container == {"image": "alpine", "env": [{"name": "A", "value": "1"}]}
    assert dict(merged.metadata.labels) == {"from": "template", "both": "workflow"}


def test_workflow_without_ref_is_unchanged() -> None:
    assert resolve_workflow_template_ref(LIB, GETTER) is LIB


def test_workflow_template_ref_not_found() -> None:
    wf = obj("""
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata: {name: run}
        spec: {workflowTemplateRef: {name: nope, clusterScope: true}}
    """)
    with pytest.raises(NotFound, match="ClusterWorkflowTemplate 'nope' not found"):
        resolve_workflow_template_ref(wf, GETTER)


@pytest.mark.parametrize(("step", "template", "kind", "scope"), [
    ({"name": "a", "template": "echo"}, "echo", TemplateKind.CONTAINER, "local/run"),
    ({"name": "a", "templateRef": {"name": "lib", "template": "main"}}, "main", TemplateKind.STEPS,
     "namespaced/lib"),
    ({"name": "a", "templateRef": {"name": "lib", "template": "echo", "clusterScope": True}}, "echo",
     TemplateKind.SCRIPT, "cluster/lib"),
    ({"name": "a", "inline": {"suspend": {}}}, "", TemplateKind.SUSPEND, "local/run"),
], ids=["local", "namespaced", "cluster", "inline"])
def test_resolve_template(step: dict[str, Any], template: str, kind: TemplateKind, scope: str) -> None:
    wf = obj(f"""
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata: {{name: run, namespace: ci}}
        spec:
          templates:
          - name: main
            steps: [[{yaml.safe_dump(step, default_flow_style=True).strip()}]]
          - {{name: echo, container: {{image: busybox}}}}
    """)
    main = wf.spec.template("main")
    assert main is not None
    found, where = resolve_template(local_scope(wf), main.steps[0][0], GETTER)
    assert (found.name, found.kind, where.wire) == (template, kind, scope)


def test_nested_names_resolve_in_the_template_scope() -> None:
    """A step inside a WorkflowTemplate's template names templates of that WorkflowTemplate."""
    ref_step = obj("""
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata: {name: run, namespace: ci}
        spec: {templates: [{name: x, steps: [[{name: a, templateRef: {name: lib, template: main}}]]}]}
    """)
    x = ref_step.spec.template("x")
    assert x is not None
    main, scope = resolve_template(local_scope(ref_step), x.steps[0][0], GETTER)
    echo, echo_scope = resolve_template(scope, main.steps[0][0], GETTER)
    assert echo.kind is TemplateKind.CONTAINER and echo_scope.wire == "namespaced/lib"
    assert echo_scope.template_ref == {"name": "lib"}


@pytest.mark.parametrize(("target", "error"), [
    ("missing", "template 'missing' not found"),
    ({"name": "a", "templateRef": {"name": "lib", "template": "nope"}}, "template 'lib/nope' not found"),
    ({"name": "a", "templateRef": {"name": "other", "template": "x"}}, "WorkflowTemplate 'other' not found"),
], ids=["local", "ref-template", "ref-object"])
def test_resolve_template_not_found(target: str | dict[str, Any], error: str) -> None:
    step = target if isinstance(target, str) else parse_step(target, path="s")
    with pytest.raises(NotFound, match=error):
        resolve_template(local_scope(WF), step, GETTER)


def test_step_without_template() -> None:
    with pytest.raises(InvalidSpec):
        resolve_template(local_scope(WF), parse_step({"name": "a"}, path="s"), GETTER)


def test_template_defaults_template_wins_and_kind_kept() -> None:
    """SetTemplateDefaults: defaults fill gaps, never override or add a second body."""
    defaults = {"timeout": "1m", "retryStrategy": {"limit": 2}, "container": {"image": "d", "env": [
        {"name": "A", "value": "default"}, {"name": "B", "value": "b"}]}, "name": "ignored"}
    echo = LIB.spec.template("echo")
    main = LIB.spec.template("main")
    assert echo is not None and main is not None
    merged = apply_template_defaults(echo, defaults)
    assert merged.name == "echo" and merged.timeout == "1m" and merged.retry_strategy is not None
    assert merged.container == {"image": "busybox", "env": [{"name": "A", "value": "1"},
                                                            {"name": "B", "value": "b"}]}
    steps = apply_template_defaults(main, defaults)
    assert steps.kind is TemplateKind.STEPS and steps.timeout == "1m"
    assert apply_template_defaults(echo, None) is echo


@pytest.mark.parametrize(("base", "override", "expected"), [
    ({"a": 1, "b": {"c": 1}}, {"b": {"d": 2}}, {"a": 1, "b": {"c": 1, "d": 2}}),
    ({"command": ["a"]}, {"command": ["b"]}, {"command": ["b"]}),
    ({"a": 1}, {"a": None}, {"a": 1}),
    ({"parameters": [{"name": "x", "value": 1}]}, {"parameters": [{"name": "y"}, {"name": "x", "value": 2}]},
     {"parameters": [{"name": "x", "value": 2}, {"name": "y"}]}),
], ids=["maps", "plain-list-replaced", "null-ignored", "named-list"])
def test_merge_raw(base: Any, override: Any, expected: Any) -> None:
    assert merge_raw(base, override) == expected


def test_getter_namespaces() -> None:
    """Namespaced lookups fall back to objects with no namespace; cluster kinds ignore namespace."""
    getter = DictTemplateGetter([LIB, CLUSTER, WF])
    assert getter.get("WorkflowTemplate", None, "lib") is LIB
    assert getter.get("ClusterWorkflowTemplate", "any", "lib") is CLUSTER
    with pytest.raises(NotFound):
        getter.get("WorkflowTemplate", "other-ns", "lib")
    with pytest.raises(NotFound):
        getter.get("Workflow", "ci", "run")
