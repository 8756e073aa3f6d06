"""Sensor manifests parse into the model; wrong fields fail with their path."""

from __future__ import annotations

import copy
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from sensors import ArgoWorkflowTrigger, K8sTrigger, LogTrigger, parse_sensor
from sensors.filterspec import Comparator, JSONType, LogicalOperator
from sensors.model import ArgoWorkflowOperation, ParameterOperation, UnsupportedTrigger
from tests.sensors.eventkit import fixture_yaml
from workflows.errors import InvalidSpec


def test_ci_sensor_fixture_parses_with_extensions() -> None:
    """Every Argo field and every gittrigger extension in the CI fixture lands in the model."""
    sensor = parse_sensor(fixture_yaml("ci-sensor.yaml"))
    assert (sensor.name, sensor.namespace, sensor.logging_fields) == ("ci", "builds", {"team": "platform"})
    (dep,) = sensor.dependencies
    assert (dep.name, dep.event_source_name, dep.event_name, dep.skip_ci) == ("push", "forge", "push", True)
    assert dep.filters is not None and dep.filters.git is not None
    assert dep.filters.git.branches == ("main", "release/**", "!release/old-*")
    assert dep.filters.git.paths == ("src/**", "pyproject.toml")
    assert dep.filters.data is not None and dep.filters.data[0].type is JSONType.STRING
    (trigger,) = sensor.triggers
    assert isinstance(trigger.action, ArgoWorkflowTrigger)
    assert trigger.action.operation is ArgoWorkflowOperation.SUBMIT
    assert [p.dest for p in trigger.action.parameters] == [
        f"spec.arguments.parameters.{i}.value" for i in range(3)
    ]
    assert trigger.concurrency is not None and trigger.concurrency.group == "{{repo}}-{{branch}}"
    assert trigger.concurrency.cancel_in_progress
    assert trigger.retry_strategy is not None
    assert (trigger.retry_strategy.steps, trigger.retry_strategy.duration) == (3, timedelta(seconds=2))
    assert (trigger.retry_strategy.factor, trigger.retry_strategy.jitter) == (1.5, 0.1)
    assert trigger.rate_limit is not None and trigger.rate_limit.unit == "Minute"


def test_two_deps_fixture_parses_conditions_and_kinds() -> None:
    """k8s, log, conditions and conditionsReset parse; number filters keep their comparator."""
    sensor = parse_sensor(fixture_yaml("two-deps-sensor.yaml"))
    either, both, reset = sensor.triggers
    assert either.conditions == "dep-a || dep-b" and isinstance(either.action, K8sTrigger)
    assert both.conditions == "" and isinstance(both.action, K8sTrigger)
    assert both.action.parameters[1].src.use_raw_data
    assert isinstance(reset.action, LogTrigger) and reset.action.interval_seconds == 10
    assert reset.conditions_reset[0].cron == "0 0 * * *"
    dep_b = sensor.dependency("dep-b")
    assert dep_b is not None and dep_b.filters is not None and dep_b.filters.data is not None
    assert dep_b.filters.data[0].comparator is Comparator.GE
    assert dep_b.filters.data_logical_operator is LogicalOperator.AND


def _base() -> dict[str, Any]:
    return copy.deepcopy(fixture_yaml("two-deps-sensor.yaml"))


def _set(doc: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()
T0 = ["spec", "triggers", 0, "template"]
D1 = ["spec", "dependencies", 1]


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        (["kind"], "Workflow", "kind", "expected Sensor"),
        (["metadata", "name"], _DELETE, "metadata.name", "required"),
        (["spec", "dependencies"], [], "spec.dependencies", "at least one"),
        ([*D1, "name"], "dep-a", "spec.dependencies[1].name", "duplicate"),
        ([*D1, "eventName"], 3, "spec.dependencies[1].eventName", "non-empty string"),
        ([*D1, "filtersLogicalOperator"], "xor", "spec.dependencies[1].filtersLogicalOperator", "and or or"),
        (
            [*D1, "filters", "data", 0, "type"],
            "int",
            "spec.dependencies[1].filters.data[0].type",
            "bool, number",
        ),
        (
            [*D1, "filters", "data", 0, "comparator"],
            "~",
            "spec.dependencies[1].filters.data[0].comparator",
            ">=",
        ),
        (
            [*D1, "filters", "data", 0, "value"],
            ["x"],
            "spec.dependencies[1].filters.data[0].value[0]",
            "number",
        ),
        (
            [*D1, "filters", "time"],
            {"start": "25:00:00", "stop": "01:00:00"},
            "spec.dependencies[1].filters.time.start",
            "HH:MM:SS",
        ),
        ([*D1, "filters", "git"], {"branch": ["main"]}, "spec.dependencies[1].filters.git.branch", "unknown"),
        ([*D1, "skipCI"], "yes", "spec.dependencies[1].skipCI", "true or false"),
        ([*T0, "conditions"], "dep-a && dep-z", "spec.triggers[0].template.conditions", "unknown dependency"),
        ([*T0, "k8s", "operation"], "apply", "spec.triggers[0].template.k8s.operation", "create"),
        (
            [*T0, "k8s", "source"],
            {"configmap": {"name": "x", "key": "y"}},
            "spec.triggers[0].template.k8s.source",
            "inline 'resource'",
        ),
        ([*T0, "kafka"], {"url": "k:9092"}, "spec.triggers[0].template", "exactly one"),
        ([*T0, "k8s"], _DELETE, "spec.triggers[0].template", "no trigger type"),
        (
            ["spec", "triggers", 1, "template", "name"],
            "either",
            "spec.triggers[1].template.name",
            "duplicate",
        ),
        (
            ["spec", "triggers", 2, "template", "conditionsReset", 0, "byTime", "cron"],
            "0 0 * *",
            "spec.triggers[2].template.conditionsReset[0].byTime.cron",
            "cron",
        ),
        (
            ["spec", "triggers", 2, "template", "conditionsReset", 0, "byTime", "timezone"],
            "Mars/Base",
            "spec.triggers[2].template.conditionsReset[0].byTime.timezone",
            "time zone",
        ),
        (
            ["spec", "triggers", 0, "retryStrategy"],
            {"duration": "soon"},
            "spec.triggers[0].retryStrategy.duration",
            "duration",
        ),
        (
            ["spec", "triggers", 0, "concurrency"],
            {"group": "{{who}}"},
            "spec.triggers[0].concurrency.group",
            "unknown variable",
        ),
        (
            ["spec", "triggers", 1, "template", "k8s", "parameters", 0, "operation"],
            "merge",
            "spec.triggers[1].template.k8s.parameters[0].operation",
            "overwrite",
        ),
    ],
    ids=[
        "kind",
        "name",
        "no-deps",
        "dup-dep",
        "event-name-type",
        "operator",
        "json-type",
        "comparator",
        "number-value",
        "time-format",
        "git-field",
        "skipci-type",
        "conditions-unknown",
        "k8s-op",
        "configmap",
        "two-kinds",
        "no-kind",
        "dup-trigger",
        "cron",
        "tz",
        "duration",
        "group-var",
        "param-op",
    ],
)
def test_errors_name_the_field(path: list[Any], value: Any, field: str, message: str) -> None:
    """Each wrong field is reported with its full path."""
    with pytest.raises(InvalidSpec) as caught:
        parse_sensor(_set(_base(), path, value))
    assert field == caught.value.path
    assert message in caught.value.message


@pytest.mark.parametrize("kind", ["slack", "awsLambda", "custom", "email"], ids=str)
def test_unsupported_trigger_types_fail_clearly(kind: str) -> None:
    """Trigger types we cannot run fail at load time, naming the field and what is supported."""
    doc = _base()
    template = doc["spec"]["triggers"][0]["template"]
    del template["k8s"]
    template[kind] = {}
    with pytest.raises(InvalidSpec) as caught:
        parse_sensor(doc)
    assert caught.value.path == f"spec.triggers[0].template.{kind}"
    assert "not supported" in caught.value.message


def test_http_trigger_parses_as_unsupported() -> None:
    """http triggers load (so sensors with them stay usable) and are marked unsupported."""
    doc = _base()
    template = doc["spec"]["triggers"][0]["template"]
    del template["k8s"]
    template["http"] = {"url": "http://example.test", "method": "POST"}
    action = parse_sensor(doc).triggers[0].action
    assert isinstance(action, UnsupportedTrigger) and action.kind == "http"


def test_parameter_operation_defaults_to_overwrite() -> None:
    """An absent or empty operation means overwrite, as Argo's TriggerParameterOpNone."""
    sensor = parse_sensor(_base())
    action = sensor.triggers[1].action
    assert isinstance(action, K8sTrigger)
    assert {p.operation for p in action.parameters} == {ParameterOperation.OVERWRITE}


EXAMPLES = os.environ.get("GITTRIGGER_EVENTS_EXAMPLES_DIR")


def _example_files() -> list[Path]:
    if not EXAMPLES:
        return []
    root = Path(EXAMPLES)
    return sorted([*root.glob("*.yaml"), *root.glob("*.yml")])


@pytest.mark.skipif(
    not EXAMPLES, reason="set GITTRIGGER_EVENTS_EXAMPLES_DIR to the argo-events sensors folder"
)
@pytest.mark.parametrize("path", _example_files(), ids=lambda p: p.name)
def test_argo_events_examples_parse(path: Path) -> None:
    """Argo's example sensors parse, or fail only because a trigger type is unsupported."""
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc or doc.get("kind") != "Sensor":
            continue
        try:
            sensor = parse_sensor(doc)
        except InvalidSpec as exc:
            assert "is not supported" in exc.message, str(exc)
        else:
            assert sensor.triggers
