"""Matching events to sensors: conditions across events, consumption, resets, submissions."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from sensors import SensorState, match, parse_sensor
from tests.sensors.eventkit import NOON, fixture_json, fixture_yaml, make_event, webhook

PAIR = parse_sensor(fixture_yaml("two-deps-sensor.yaml"))
CI = parse_sensor(fixture_yaml("ci-sensor.yaml"))


def fire(sensor: Any, events: list[Any], *, now: datetime = NOON) -> tuple[SensorState, list[Any]]:
    """Feed events in order; return the final state and every outcome."""
    state, outcomes = SensorState(), []
    for event in events:
        outcome = match(state, event, sensor, now=now if event.context.time <= now else event.context.time)
        state = outcome.state
        outcomes.append(outcome)
    return state, outcomes


def event_a(name: str = "alpha", **kw: Any) -> Any:
    return make_event(webhook({"name": name}), source="hooks", name="a", **kw)


def event_b(count: int, **kw: Any) -> Any:
    return make_event(webhook({"count": count}), source="hooks", name="b", **kw)


def test_or_condition_fires_on_either_and_and_waits() -> None:
    """'either' fires at once; 'both' (no conditions = all deps) keeps dep-a until dep-b arrives."""
    state, (first,) = fire(PAIR, [event_a()])
    assert [s.trigger for s in first.submissions] == ["either"]
    assert set(state.pending("both")) == {"dep-a"}
    assert state.pending("either") == {}


def test_filtered_out_event_changes_nothing() -> None:
    """A dep-b event failing its number filter is reported and stored nowhere."""
    state, (_, second) = fire(PAIR, [event_a(), event_b(1)])
    assert not second.verdicts["dep-b"].passed
    assert "data[0]" in second.verdicts["dep-b"].reasons[0]
    assert second.submissions == () and second.state is state


def test_all_dependencies_fire_with_each_events_parameters() -> None:
    """When dep-b completes 'both', parameters read each dependency's own stored event."""
    state, (_, _, third) = fire(PAIR, [event_a("first"), event_a("second"), event_b(3)])
    by_trigger = {s.trigger: s for s in third.submissions}
    assert set(by_trigger) == {"either", "both"}
    both = by_trigger["both"]
    assert both.operation == "submit"
    assert both.workflow["spec"]["arguments"]["parameters"] == [
        {"name": "a", "value": "second"},
        {"name": "b", "value": 3},
    ]
    assert set(both.events) == {"dep-a", "dep-b"}
    assert [n.kind for n in third.notices] == ["log"]
    assert state.pending("both") == {} and state.pending("reset-daily") == {}


def test_firing_consumes_events() -> None:
    """After a trigger fires, the next dep-b alone does not fire it again."""
    _, outcomes = fire(PAIR, [event_a(), event_b(3), event_b(4)])
    assert [s.trigger for s in outcomes[2].submissions] == ["either"]


@pytest.mark.parametrize(
    ("b_time", "fires"),
    [
        (datetime(2026, 3, 14, 22, 30, tzinfo=UTC), True),
        (datetime(2026, 3, 14, 23, 30, tzinfo=UTC), False),
    ],
    ids=["before-midnight-berlin", "after-midnight-berlin"],
)
def test_conditions_reset_by_cron_in_timezone(b_time: datetime, fires: bool) -> None:
    """A cron tick (midnight Europe/Berlin = 23:00 UTC) between the events drops the stored dep-a."""
    a_time = datetime(2026, 3, 14, 22, 0, tzinfo=UTC)
    _, outcomes = fire(PAIR, [event_a(when=a_time), event_b(3, when=b_time)])
    assert fires == any(n.trigger == "reset-daily" for n in outcomes[1].notices)


def test_unrelated_event_has_no_verdicts() -> None:
    """Events from other sources or names concern no dependency."""
    outcome = match(SensorState(), make_event({}, source="other", name="a"), PAIR, now=NOON)
    assert outcome.verdicts == {} and outcome.submissions == ()


def test_ci_push_submits_with_concurrency_group() -> None:
    """A GitHub push to main through the CI sensor: filters pass, parameters set, group rendered."""
    push = make_event(webhook(fixture_json("github-push.json")), source="forge", name="push")
    outcome = match(SensorState(), push, CI, now=NOON)
    assert outcome.verdicts["push"].passed, outcome.verdicts["push"].reasons
    (submission,) = outcome.submissions
    assert (submission.sensor, submission.trigger, submission.operation) == ("ci", "build", "submit")
    assert (submission.concurrency_group, submission.cancel_in_progress) == ("acme/widgets-main", True)
    values = [p.get("value") for p in submission.workflow["spec"]["arguments"]["parameters"]]
    assert values == [
        "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
        'Fix "parser"\n\nKeeps {{ braces }} and $(subshells) literal',
        "main",
    ]


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [("gitlab-push.json", "[ci skip]"), ("bitbucket-push.json", "fails branches")],
    ids=["skip-ci", "branch-not-listed"],
)
def test_ci_push_filtered(fixture: str, reason: str) -> None:
    """CI extensions drop pushes, and the verdict says why."""
    push = make_event(webhook(fixture_json(fixture)), source="forge", name="push")
    outcome = match(SensorState(), push, CI, now=NOON)
    assert outcome.submissions == ()
    assert any(reason in r for r in outcome.verdicts["push"].reasons), outcome.verdicts["push"].reasons


def _single(template: dict[str, Any], **trigger: Any) -> Any:
    doc = {
        "kind": "Sensor",
        "metadata": {"name": "one"},
        "spec": {
            "dependencies": [{"name": "dep", "eventSourceName": "hooks", "eventName": "a"}],
            "triggers": [{"template": {"name": "t", **template}, **trigger}],
        },
    }
    return parse_sensor(copy.deepcopy(doc))


WORKFLOW = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "wf"}, "spec": {}}


@pytest.mark.parametrize(
    ("template", "kind", "message"),
    [
        (
            {"k8s": {"operation": "create", "source": {"resource": {"kind": "Pod", "metadata": {}}}}},
            "unsupported",
            "k8s create of 'Pod'",
        ),
        ({"k8s": {"operation": "patch", "source": {"resource": WORKFLOW}}}, "unsupported", "k8s patch"),
        ({"http": {"url": "http://example.test"}}, "unsupported", "http triggers"),
        (
            {
                "argoWorkflow": {
                    "source": {"resource": WORKFLOW},
                    "parameters": [
                        {"src": {"dependencyName": "dep", "dataKey": "body.nope"}, "dest": "metadata.name"}
                    ],
                }
            },
            "failed",
            "unable to resolve",
        ),
    ],
    ids=["k8s-pod", "k8s-patch", "http", "parameter-fails"],
)
def test_triggers_that_cannot_submit_leave_notices(template: dict[str, Any], kind: str, message: str) -> None:
    """Unsupported actions and failed parameters are reported, never raised."""
    outcome = match(SensorState(), event_a(), _single(template), now=NOON)
    assert outcome.submissions == ()
    (notice,) = outcome.notices
    assert notice.kind == kind and message in notice.message


def test_argo_workflow_operation_and_args_pass_through() -> None:
    """resubmit/stop/... are handed over with the workflow and the CLI args."""
    sensor = _single(
        {"argoWorkflow": {"operation": "resubmit", "args": ["--memoized"], "source": {"resource": WORKFLOW}}}
    )
    (submission,) = match(SensorState(), event_a(), sensor, now=NOON).submissions
    assert (submission.operation, submission.args, submission.workflow["metadata"]["name"]) == (
        "resubmit",
        ("--memoized",),
        "wf",
    )


def test_trigger_level_parameters_rewrite_the_template() -> None:
    """Trigger-level parameters apply to the template itself (here: the resource's name)."""
    sensor = _single(
        {"argoWorkflow": {"source": {"resource": WORKFLOW}}},
        parameters=[
            {
                "src": {"dependencyName": "dep", "dataKey": "body.name"},
                "dest": "argoWorkflow.source.resource.metadata.name",
            }
        ],
    )
    (submission,) = match(SensorState(), event_a("from-event"), sensor, now=NOON).submissions
    assert submission.workflow["metadata"]["name"] == "from-event"
    assert WORKFLOW["metadata"] == {"name": "wf"}
