"""WorkflowEventBindings, pure: parsing with field paths, the event environment, selectors, workflows."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.errors import ExpressionError, InvalidSpec
from workflows.eventbindings import (
    LABEL_CLUSTER_WORKFLOW_TEMPLATE,
    LABEL_CREATOR,
    LABEL_EVENT_BINDING,
    LABEL_WORKFLOW_TEMPLATE,
    EventBinding,
    EventParameter,
    Submission,
    event_environment,
    parameter_text,
    parse_binding,
    selects,
    workflow_for,
)


def binding(spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowEventBinding",
            "metadata": {"name": "on-event", **meta}, "spec": spec}


FULL = binding({
    "event": {"selector": 'payload.message != "" && discriminator == "ci"'},
    "submit": {
        "workflowTemplateRef": {"name": "greet", "clusterScope": True},
        "arguments": {"parameters": [{"name": "message", "valueFrom": {"event": "payload.message"}}]},
        "metadata": {"generateName": '"greet-" + discriminator + "-"', "labels": {"who": "payload.who"},
                     "annotations": {"note": '"from event"'}},
    },
}, namespace="team")


def test_parse_full() -> None:
    """Every field of Argo's spec lands in the model; metadata.namespace wins over the default."""
    parsed = parse_binding(FULL, namespace="default")
    assert parsed == EventBinding(
        name="on-event", namespace="team", selector='payload.message != "" && discriminator == "ci"',
        submit=Submission(
            template="greet", cluster_scope=True,
            parameters=(EventParameter(name="message", expression="payload.message"),),
            generate_name='"greet-" + discriminator + "-"', labels={"who": "payload.who"},
            annotations={"note": '"from event"'},
        ),
    )


def test_parse_defaults() -> None:
    """No namespace: the given default; no submit: a binding that only matches."""
    parsed = parse_binding(binding({"event": {"selector": "true"}}), namespace="ci")
    assert (parsed.namespace, parsed.submit) == ("ci", None)


@pytest.mark.parametrize(("raw", "path"), [
    (binding({"event": {}}), "spec.event.selector"),
    (binding({"event": {"selector": "payload.x ==="}}), "spec.event.selector"),
    (binding({"event": {"selector": 3}}), "spec.event.selector"),
    ({"kind": "WorkflowEventBinding", "metadata": {}, "spec": {"event": {"selector": "true"}}}, "metadata.name"),
    (binding({"event": {"selector": "true"}, "submit": {}}), "spec.submit.workflowTemplateRef.name"),
    (binding({"event": {"selector": "true"},
              "submit": {"workflowTemplateRef": {"name": "t", "clusterScope": "yes"}}}),
     "spec.submit.workflowTemplateRef.clusterScope"),
    (binding({"event": {"selector": "true"}, "submit": {
        "workflowTemplateRef": {"name": "t"},
        "arguments": {"parameters": [{"name": "a", "valueFrom": {"event": "1"}}, {"name": "b", "value": "x"}]}}}),
     "spec.submit.arguments.parameters[1].valueFrom.event"),
    (binding({"event": {"selector": "true"}, "submit": {
        "workflowTemplateRef": {"name": "t"}, "arguments": {"parameters": [{"valueFrom": {"event": "1"}}]}}}),
     "spec.submit.arguments.parameters[0].name"),
    (binding({"event": {"selector": "true"}, "submit": {
        "workflowTemplateRef": {"name": "t"}, "metadata": {"labels": {"a": "foo...bar"}}}}),
     "spec.submit.metadata.labels.a"),
    (binding({"event": {"selector": "true"}, "submit": {
        "workflowTemplateRef": {"name": "t"}, "arguments": {"parameters": {"name": "a"}}}}),
     "spec.submit.arguments.parameters"),
    ({**binding({"event": {"selector": "true"}}), "kind": "Workflow"}, "kind"),
], ids=["no-selector", "bad-selector", "selector-not-text", "no-name", "no-template", "cluster-scope-not-bool",
        "param-without-event", "param-without-name", "bad-label-expression", "parameters-not-list", "wrong-kind"])
def test_parse_errors_name_the_field(raw: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_binding(raw)
    assert caught.value.path == path


def test_environment_keeps_only_x_headers_as_lists() -> None:
    """Argo forwards only ``x-`` headers (never ``authorization``), lower-cased, every value kept."""
    env = event_environment(namespace="ns", discriminator="d", payload={"a": 1}, headers=[
        ("X-GitHub-Event", "push"), ("Authorization", "Bearer secret"), ("x-multi", "1"), ("X-Multi", "2")])
    assert env["metadata"] == {"x-github-event": ["push"], "x-multi": ["1", "2"]}
    assert (env["namespace"], env["discriminator"], env["payload"]) == ("ns", "d", {"a": 1})


ENV = event_environment(namespace="ns", discriminator="ci", headers=[("X-Argo-E2E", "true")],
                        payload={"message": "hi", "foo": {"bar": "baz", "n": 8675309}, "list": ["one", "two"]})


@pytest.mark.parametrize(("selector", "expected"), [
    ("true", True),
    ("false", False),
    ('payload.message != "" && metadata["x-argo-e2e"] == ["true"] && discriminator == "ci"', True),
    ("payload.foo.bar == 'baz'", True),
    ('namespace == "other"', False),
    ("payload.missing == nil", True),
], ids=["true", "false", "argo-docs-example", "nested", "namespace", "missing-is-nil"])
def test_selects(selector: str, expected: bool) -> None:
    assert selects(EventBinding(name="b", namespace="ns", selector=selector), ENV) is expected


@pytest.mark.parametrize("selector", ['"garbage"', "payload.foo.n", "payload.nothing.deeper"],
                         ids=["string", "number", "nil-member"])
def test_selector_that_is_not_boolean_or_fails_raises(selector: str) -> None:
    with pytest.raises(ExpressionError):
        selects(EventBinding(name="b", namespace="ns", selector=selector), ENV)


@pytest.mark.parametrize(("value", "text"), [
    ("My%Test%", "My%Test%"), ({"bar": "baz"}, '{"bar":"baz"}'), (8675309, "8675309"), (1.5, "1.5"),
    (True, "true"), (None, "null"), (["a", "b"], '["a","b"]'),
], ids=["string", "map", "int", "float", "bool", "nil", "list"])
def test_parameter_text_is_go_json_except_strings(value: Any, text: str) -> None:
    assert parameter_text(value) == text


def test_workflow_for_full() -> None:
    """A workflowTemplateRef Workflow with evaluated arguments and metadata, labelled as Argo labels it."""
    parsed = parse_binding(FULL)
    env = {**ENV, "payload": {"message": "hello", "who": "alice"}}
    assert workflow_for(parsed, env, creator="ci-bot") == {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {
            "generateName": "greet-ci-",
            "labels": {LABEL_CLUSTER_WORKFLOW_TEMPLATE: "greet", LABEL_EVENT_BINDING: "on-event", "who": "alice",
                       LABEL_CREATOR: "ci-bot"},
            "annotations": {"note": "from event"},
        },
        "spec": {"workflowTemplateRef": {"name": "greet", "clusterScope": True},
                 "arguments": {"parameters": [{"name": "message", "value": "hello"}]}},
    }


def test_workflow_for_minimal() -> None:
    """Template name as generateName, namespaced template label, no creator label for an odd name."""
    parsed = parse_binding(binding({"event": {"selector": "true"},
                                    "submit": {"workflowTemplateRef": {"name": "t"},
                                               "metadata": {"name": '"fixed-" + payload.foo.bar'}}}))
    assert workflow_for(parsed, ENV, creator="not a label!") == {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"generateName": "t-", "name": "fixed-baz",
                     "labels": {LABEL_WORKFLOW_TEMPLATE: "t", LABEL_EVENT_BINDING: "on-event"}},
        "spec": {"workflowTemplateRef": {"name": "t"}},
    }


def test_workflow_for_without_submit_is_none() -> None:
    assert workflow_for(EventBinding(name="b", namespace="ns", selector="true"), ENV) is None


@pytest.mark.parametrize("meta", [{"name": "payload.foo.n"}, {"generateName": "payload.list"},
                                  {"labels": {"a": "payload.foo"}}, {"annotations": {"a": "payload.nothing"}}],
                         ids=["name-number", "generate-name-list", "label-map", "annotation-nil"])
def test_metadata_expressions_must_be_strings(meta: dict[str, Any]) -> None:
    parsed = parse_binding(binding({"event": {"selector": "true"},
                                    "submit": {"workflowTemplateRef": {"name": "t"}, "metadata": meta}}))
    with pytest.raises(ExpressionError, match="must evaluate to a string"):
        workflow_for(parsed, ENV)


def test_failing_parameter_expression_raises() -> None:
    parsed = parse_binding(binding({"event": {"selector": "true"}, "submit": {
        "workflowTemplateRef": {"name": "t"},
        "arguments": {"parameters": [{"name": "p", "valueFrom": {"event": "payload.nothing.deeper"}}]}}}))
    with pytest.raises(ExpressionError):
        workflow_for(parsed, ENV)
