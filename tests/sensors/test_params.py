"""Trigger parameters (Argo Events params.go): values from events into a resource, as data."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from sensors import paths
from sensors.events import Event
from sensors.model import ParameterOperation, ParameterSource, TriggerParameter
from sensors.params import apply_parameters
from tests.sensors.eventkit import make_event, webhook
from workflows.errors import InvalidSpec

NASTY = "Fix \"quotes\" 'single'\nnew line {{inputs.parameters.x}} $(rm -rf /) `tick` ${HOME}: - [a]"
BODY: dict[str, Any] = {
    "ref": "refs/heads/main",
    "number": 21500,
    "ratio": 0.5,
    "draft": False,
    "none": None,
    "message": NASTY,
    "repo": {"name": "widgets", "tags": ["a", "b"]},
}
EVENTS: dict[str, Event] = {"dep": make_event(webhook(BODY), event_id="id-7")}
RESOURCE: dict[str, Any] = {
    "metadata": {"generateName": "build-", "name": "base"},
    "spec": {"arguments": {"parameters": [{"name": "p", "value": "old"}]}},
}
DEST = "spec.arguments.parameters.0.value"


def param(dest: str = DEST, operation: str = "overwrite", **src: Any) -> TriggerParameter:
    """A parameter on dependency ``dep`` unless ``dependency_name`` is given."""
    src.setdefault("dependency_name", "dep")
    return TriggerParameter(src=ParameterSource(**src), dest=dest, operation=ParameterOperation(operation))


def value_at(obj: dict[str, Any], dest: str = DEST) -> Any:
    return paths.get(obj, dest)


@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        (param(data_key="body.ref"), "refs/heads/main"),
        (param(data_key="body.number"), "21500"),
        (param(data_key="body.number", use_raw_data=True), 21500),
        (param(data_key="body.ratio"), "0.5"),
        (param(data_key="body.draft"), "false"),
        (param(data_key="body.draft", use_raw_data=True), False),
        (param(data_key="body.none"), "null"),
        (param(data_key="body.none", use_raw_data=True), None),
        (param(data_key="body.repo"), '{"name":"widgets","tags":["a","b"]}'),
        (param(data_key="body.repo", use_raw_data=True), {"name": "widgets", "tags": ["a", "b"]}),
        (param(data_key="body.ref", use_raw_data=True), "refs/heads/main"),
        (param(data_key="body.repo.tags.#"), "2"),
        (param(data_key="body.message"), NASTY),
        (param(data_template="{{ .Input.body.message }}"), NASTY),
        (param(data_key="body.missing", value="fallback"), "fallback"),
        (param(data_template='{{ .Input.body.ref | trimPrefix "refs/heads/" }}'), "main"),
        (param(data_template="{{ .Input.body.missing }}", data_key="body.ref"), "refs/heads/main"),
        (param(data_template="{{ .Input.body.missing.x }}", value="dflt"), "dflt"),
        (param(context_key="id"), "id-7"),
        (param(context_template="{{ .Input.type }}/{{ .Input.subject }}"), "webhook/a"),
        (param(value="literal"), "literal"),
        (param(dependency_name="absent", value="dflt"), "dflt"),
        (param(dependency_name="absent"), "old"),
    ],
    ids=[
        "string",
        "number-as-text",
        "number-raw",
        "float",
        "bool-as-text",
        "bool-raw",
        "null-as-text",
        "null-raw",
        "object-as-json",
        "object-raw",
        "string-raw-stays-string",
        "array-length",
        "nasty-string-intact",
        "nasty-template-intact",
        "default-on-missing-key",
        "template",
        "template-falls-back-to-key",
        "template-error-falls-back-to-value",
        "context-key",
        "context-template",
        "value-only",
        "absent-dependency-default",
        "absent-dependency-skipped",
    ],
)
def test_resolve_and_set(parameter: TriggerParameter, expected: Any) -> None:
    """Each source kind resolves as in Argo Events and lands at dest exactly."""
    out = apply_parameters(RESOURCE, [parameter], EVENTS)
    assert expected == value_at(out)


def test_nasty_string_survives_serialisation_unchanged() -> None:
    """Quotes, newlines, {{ }} and $(...) are data: JSON round trip gives back the same string."""
    out = apply_parameters(RESOURCE, [param(data_key="body.message")], EVENTS)
    assert json.loads(json.dumps(out))["spec"]["arguments"]["parameters"][0]["value"] == NASTY


@pytest.mark.parametrize(
    ("operation", "dest", "expected"),
    [
        ("append", "metadata.name", "base21500"),
        ("prepend", "metadata.name", "21500base"),
        ("overwrite", "metadata.name", "21500"),
        ("append", "metadata.labels.pr", "21500"),
        ("append", "metadata.generateName", "build-21500"),
    ],
    ids=["append", "prepend", "overwrite", "append-to-missing", "append-generate-name"],
)
def test_operations(operation: str, dest: str, expected: str) -> None:
    """append/prepend concatenate with the current text; with nothing there they just set."""
    out = apply_parameters(RESOURCE, [param(dest=dest, operation=operation, data_key="body.number")], EVENTS)
    assert expected == value_at(out, dest)


def test_append_makes_raw_values_text() -> None:
    """Appending to an existing value always yields a string, even with useRawData (Argo)."""
    p = param(dest="metadata.name", operation="append", data_key="body.number", use_raw_data=True)
    assert value_at(apply_parameters(RESOURCE, [p], EVENTS), "metadata.name") == "base21500"


def test_whole_event_without_key() -> None:
    """No key, template or value: the whole event as JSON text (data as JSON, not base64)."""
    out = apply_parameters(RESOURCE, [param()], EVENTS)
    decoded = json.loads(value_at(out))
    assert decoded["context"]["id"] == "id-7"
    assert decoded["data"]["body"]["number"] == 21500


def test_resource_is_not_mutated() -> None:
    """The sensor's resource is deep-copied, so one firing cannot leak into the next."""
    before = copy.deepcopy(RESOURCE)
    apply_parameters(
        RESOURCE, [param(data_key="body.ref"), param(dest="spec.x.-1", data_key="body.ref")], EVENTS
    )
    assert before == RESOURCE


def test_parameters_apply_in_order() -> None:
    """Later parameters see earlier ones (append onto a value a previous parameter set)."""
    params = [
        param(dest="metadata.name", data_template="{{ .Input.body.repo.name }}-"),
        param(dest="metadata.name", operation="append", data_key="body.number"),
    ]
    assert value_at(apply_parameters(RESOURCE, params, EVENTS), "metadata.name") == "widgets-21500"


@pytest.mark.parametrize(
    ("parameter", "field"),
    [
        (param(data_key="body.missing"), "parameters[0].src"),
        (param(data_template="{{ .Input.body.missing }}"), "parameters[0].src"),
        (param(dest="spec.arguments.parameters.name", data_key="body.ref"), "parameters[0].dest"),
    ],
    ids=["missing-key", "empty-template", "key-on-list"],
)
def test_unresolvable_parameter_fails(parameter: TriggerParameter, field: str) -> None:
    """Without a default, a value that cannot be resolved fails the trigger, naming the parameter."""
    with pytest.raises(InvalidSpec) as caught:
        apply_parameters(RESOURCE, [parameter], EVENTS)
    assert field == caught.value.path


def test_non_json_event_uses_default() -> None:
    """Data of another content type cannot be keyed into; the default value is used instead."""
    events = {"dep": make_event("plain text", content_type="text/plain")}
    out = apply_parameters(RESOURCE, [param(data_key="body", value="dflt")], events)
    assert value_at(out) == "dflt"
