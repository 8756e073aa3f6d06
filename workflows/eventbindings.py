"""
Argo's WorkflowEventBindings, as pure functions: parse a binding, build the expression
environment of one event, decide whether a binding's selector matches, and build the Workflow
its ``submit`` asks for.

Called by :mod:`gittrigger.http.bindings` (``POST /api/v1/events/{namespace}/{discriminator}``)
and by :func:`gittrigger.runtime.load_manifests` (validation at start). Semantics follow Argo's
``server/event/dispatch``: the environment holds ``namespace``, ``discriminator``, ``payload``
(the request's JSON) and ``metadata`` (only the ``x-`` request headers, lower-cased names, each a
list of values, so credentials such as ``authorization`` never reach an expression); the
selector must evaluate to a boolean; parameter values are the result as text (strings as they
are, anything else as Go's ``json.Marshal``); ``submit.metadata`` name, generateName, labels and
annotations are expressions that must evaluate to strings. Like :mod:`workflows.model.wire`,
this module knows the kind's camelCase wire names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from workflows.errors import ExpressionError, InvalidSpec
from workflows.expressions import ARGO_FUNCTIONS, check_syntax, evaluate, to_json

KIND: Final = "WorkflowEventBinding"
LABEL_WORKFLOW_TEMPLATE: Final = "workflows.argoproj.io/workflow-template"
LABEL_CLUSTER_WORKFLOW_TEMPLATE: Final = "workflows.argoproj.io/cluster-workflow-template"
LABEL_EVENT_BINDING: Final = "workflows.argoproj.io/workflow-event-binding"
LABEL_CREATOR: Final = "workflows.argoproj.io/creator"
_LABEL_VALUE: Final = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class EventParameter:
    """``submit.arguments.parameters[]``: a workflow argument taken from the event."""

    name: str
    expression: str  # valueFrom.event


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    """``spec.submit``: which template to run, with which arguments and metadata expressions."""

    template: str
    cluster_scope: bool = False
    parameters: tuple[EventParameter, ...] = ()
    name: str | None = None  # expressions, evaluated per event
    generate_name: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventBinding:
    """One WorkflowEventBinding: a selector over events, and what to submit when it matches."""

    name: str
    namespace: str
    selector: str
    submit: Submission | None = None


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSpec(path, f"must be an object, got {type(value).__name__}")
    return value


def _text(value: Any, path: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidSpec(path, "required")
        return None
    if not isinstance(value, str):
        raise InvalidSpec(path, f"must be a string, got {type(value).__name__}")
    return value


def _expression(value: Any, path: str, *, required: bool = False) -> str | None:
    text = _text(value, path, required=required)
    if text is not None:
        try:
            check_syntax(text)
        except ExpressionError as e:
            raise InvalidSpec(path, str(e)) from None
    return text


def _expressions(value: Any, path: str) -> dict[str, str]:
    return {str(key): str(_expression(item, f"{path}.{key}", required=True))
            for key, item in _mapping(value, path).items()}


def _parameters(value: Any, path: str) -> tuple[EventParameter, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidSpec(path, f"must be a list, got {type(value).__name__}")
    out: list[EventParameter] = []
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        raw = _mapping(item, where)
        name = str(_text(raw.get("name"), f"{where}.name", required=True))
        source = _mapping(raw.get("valueFrom"), f"{where}.valueFrom")
        expression = _expression(source.get("event"), f"{where}.valueFrom.event", required=True)
        out.append(EventParameter(name=name, expression=str(expression)))
    return tuple(out)


def _submission(value: Any, path: str) -> Submission | None:
    if value is None:
        return None
    raw = _mapping(value, path)
    ref = _mapping(raw.get("workflowTemplateRef"), f"{path}.workflowTemplateRef")
    template = _text(ref.get("name"), f"{path}.workflowTemplateRef.name", required=True)
    cluster_scope = ref.get("clusterScope", False)
    if not isinstance(cluster_scope, bool):
        raise InvalidSpec(f"{path}.workflowTemplateRef.clusterScope", "must be a boolean")
    arguments = _mapping(raw.get("arguments"), f"{path}.arguments")
    meta = _mapping(raw.get("metadata"), f"{path}.metadata")
    return Submission(
        template=str(template),
        cluster_scope=cluster_scope,
        parameters=_parameters(arguments.get("parameters"), f"{path}.arguments.parameters"),
        name=_expression(meta.get("name"), f"{path}.metadata.name"),
        generate_name=_expression(meta.get("generateName"), f"{path}.metadata.generateName"),
        labels=_expressions(meta.get("labels"), f"{path}.metadata.labels"),
        annotations=_expressions(meta.get("annotations"), f"{path}.metadata.annotations"),
    )


def parse_binding(raw: Mapping[str, Any], *, namespace: str = "default") -> EventBinding:
    """A WorkflowEventBinding manifest -> :class:`EventBinding`; InvalidSpec names the field.

    Expressions are syntax-checked here, so a bad binding fails at start, not on the first event.
    ``namespace`` applies when ``metadata.namespace`` is absent.
    """
    kind = raw.get("kind")
    if kind not in (None, KIND):
        raise InvalidSpec("kind", f"must be {KIND}, got {kind!r}")
    meta = _mapping(raw.get("metadata"), "metadata")
    spec = _mapping(raw.get("spec"), "spec")
    event = _mapping(spec.get("event"), "spec.event")
    return EventBinding(
        name=str(_text(meta.get("name"), "metadata.name", required=True)),
        namespace=_text(meta.get("namespace"), "metadata.namespace") or namespace,
        selector=str(_expression(event.get("selector"), "spec.event.selector", required=True)),
        submit=_submission(spec.get("submit"), "spec.submit"),
    )


def event_environment(*, namespace: str, discriminator: str, payload: Any,
                      headers: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The variables every expression of a binding sees for one event (Argo's ``expressionEnvironment``).

    ``headers`` are the request's (name, value) pairs; only ``x-`` ones are kept, as lists.
    """
    metadata: dict[str, list[str]] = {}
    for name, value in headers:
        key = name.lower()
        if key.startswith("x-"):
            metadata.setdefault(key, []).append(value)
    return {**ARGO_FUNCTIONS, "namespace": namespace, "discriminator": discriminator,
            "metadata": metadata, "payload": payload}


def selects(binding: EventBinding, env: Mapping[str, Any]) -> bool:
    """Whether the binding's selector matches; ExpressionError when it fails or is not a boolean."""
    result = evaluate(binding.selector, env)
    if not isinstance(result, bool):
        raise ExpressionError(binding.selector, f"unable to cast expression result {result!r} to bool")
    return result


def parameter_text(value: Any) -> str:
    """An evaluated ``valueFrom.event`` as the parameter's text: strings as they are, else JSON."""
    return value if isinstance(value, str) else to_json(value)


def _string(expression: str, env: Mapping[str, Any], what: str) -> str:
    result = evaluate(expression, env)
    if not isinstance(result, str):
        raise ExpressionError(expression, f"workflow {what} expression must evaluate to a string, "
                                          f"not {type(result).__name__}")
    return result


def workflow_for(binding: EventBinding, env: Mapping[str, Any], *,
                 creator: str | None = None) -> dict[str, Any] | None:
    """The Workflow manifest a matched binding submits (None when it has no ``submit``).

    A Workflow referring to the template by ``workflowTemplateRef``, labelled with the template,
    the binding and (when it is a valid label value) the ``creator``, as Argo does. Failing
    expressions raise ExpressionError.
    """
    submit = binding.submit
    if submit is None:
        return None
    template_label = LABEL_CLUSTER_WORKFLOW_TEMPLATE if submit.cluster_scope else LABEL_WORKFLOW_TEMPLATE
    labels = {template_label: submit.template, LABEL_EVENT_BINDING: binding.name}
    labels.update({key: _string(value, env, f"label {key!r}") for key, value in submit.labels.items()})
    if creator and _LABEL_VALUE.match(creator):
        labels[LABEL_CREATOR] = creator
    metadata: dict[str, Any] = {"generateName": submit.template + "-", "labels": labels}
    if submit.name is not None:
        metadata["name"] = _string(submit.name, env, "name")
    if submit.generate_name is not None:
        metadata["generateName"] = _string(submit.generate_name, env, "generateName")
    if submit.annotations:
        metadata["annotations"] = {key: _string(value, env, f"annotation {key!r}")
                                   for key, value in submit.annotations.items()}
    ref: dict[str, Any] = {"name": submit.template}
    if submit.cluster_scope:
        ref["clusterScope"] = True
    spec: dict[str, Any] = {"workflowTemplateRef": ref}
    if submit.parameters:
        spec["arguments"] = {"parameters": [
            {"name": p.name, "value": parameter_text(evaluate(p.expression, env))} for p in submit.parameters
        ]}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": metadata, "spec": spec}
