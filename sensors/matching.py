"""
Matching: one event against one sensor -> new state, workflow submissions, filter verdicts.

Pure (takes ``now``, never reads a clock); called by :mod:`sensors.dispatcher` for each event
and each sensor, which keeps the returned :class:`SensorState` and hands the submissions to
the engine. Argo Events semantics:

- An event concerns a dependency when its event source name and event name match; it
  satisfies the dependency when the filters pass (:mod:`sensors.filters`).
- Each trigger keeps the latest satisfying event per dependency it mentions (Argo runs one
  consumer per trigger, so an event used by one trigger still counts for another).
- A trigger fires when its ``conditions`` hold over the dependencies holding an event; with
  no ``conditions`` it needs every dependency of the sensor. Firing consumes the trigger's
  stored events.
- ``conditionsReset.byTime``: stored events are dropped when a cron tick (in the given time
  zone) falls after the trigger's last update and at or before ``now``.
- An ``argoWorkflow`` trigger submits (or resubmits, retries, stops, ...) its resource; a
  ``k8s`` trigger with ``operation: create`` of a Workflow is a submit. Trigger-level
  ``parameters`` rewrite the trigger template first, resource parameters the resource.
- ``log``, ``http``, other ``k8s`` operations and failed parameters become :class:`Notice` s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from sensors import conditions, gitfilters
from sensors.events import Event
from sensors.filters import FilterVerdict, evaluate
from sensors.model import (
    ArgoWorkflowTrigger,
    K8sOperation,
    K8sTrigger,
    LogTrigger,
    Sensor,
    Trigger,
    parse_trigger,
)
from sensors.params import apply_parameters
from workflows.errors import WorkflowError


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorState:
    """Per trigger, the latest satisfying event of each dependency, and when that last changed."""

    events: Mapping[str, Mapping[str, Event]] = field(default_factory=dict)
    updated_at: Mapping[str, datetime] = field(default_factory=dict)

    def pending(self, trigger: str) -> Mapping[str, Event]:
        """The events ``trigger`` holds, by dependency name."""
        return self.events.get(trigger, {})


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    """A workflow operation to perform: the resource with parameters applied, and why."""

    sensor: str
    trigger: str
    operation: str  # submit | resubmit | retry | resume | suspend | stop | terminate | submit-from
    workflow: dict[str, Any]
    events: Mapping[str, Event]
    args: tuple[str, ...] = ()
    concurrency_group: str | None = None
    cancel_in_progress: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    """A trigger that fired without a submission: ``log``, unsupported, or failed (with message)."""

    trigger: str
    kind: str  # "log" | "unsupported" | "failed"
    message: str
    events: Mapping[str, Event] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchOutcome:
    """What one event did to one sensor."""

    state: SensorState
    submissions: tuple[Submission, ...] = ()
    verdicts: Mapping[str, FilterVerdict] = field(default_factory=dict)
    notices: tuple[Notice, ...] = ()


def match(state: SensorState, event: Event, sensor: Sensor, *, now: datetime) -> MatchOutcome:
    """Feed ``event`` to ``sensor``; see the module docstring for the rules."""
    state = reset_conditions(state, sensor, now=now)
    verdicts = {
        dep.name: evaluate(event, dep)
        for dep in sensor.dependencies
        if dep.event_source_name == event.event_source_name and dep.event_name == event.event_name
    }
    satisfied = {name for name, verdict in verdicts.items() if verdict.passed}
    if not satisfied:
        return MatchOutcome(state=state, verdicts=verdicts)
    events = dict(state.events)
    updated = dict(state.updated_at)
    submissions: list[Submission] = []
    notices: list[Notice] = []
    all_deps = [d.name for d in sensor.dependencies]
    for trigger in sensor.triggers:
        condition = _condition(trigger, all_deps)
        hit = satisfied & conditions.names(condition)
        if not hit:
            continue
        stored = dict(events.get(trigger.name, {}))
        stored.update(dict.fromkeys(hit, event))
        updated[trigger.name] = now
        if conditions.evaluate(condition, stored.keys()):
            fired = _fire(sensor, trigger, stored, event=event)
            if isinstance(fired, Submission):
                submissions.append(fired)
            else:
                notices.append(fired)
            stored = {}
        events[trigger.name] = stored
    return MatchOutcome(
        state=SensorState(events=events, updated_at=updated),
        submissions=tuple(submissions),
        verdicts=verdicts,
        notices=tuple(notices),
    )


def _condition(trigger: Trigger, all_deps: list[str]) -> conditions.Condition:
    if trigger.conditions:
        return conditions.parse(trigger.conditions)
    return conditions.all_of(all_deps)


def reset_conditions(state: SensorState, sensor: Sensor, *, now: datetime) -> SensorState:
    """Drop the events of triggers whose ``conditionsReset`` cron ticked since their last update."""
    events = dict(state.events)
    changed = False
    for trigger in sensor.triggers:
        since = state.updated_at.get(trigger.name)
        if since is None or not events.get(trigger.name):
            continue
        for reset in trigger.conditions_reset:
            zone = ZoneInfo(reset.timezone) if reset.timezone else ZoneInfo("UTC")
            tick = croniter(reset.cron, since.astimezone(zone)).get_next(datetime)
            if tick <= now:
                events[trigger.name] = {}
                changed = True
                break
    return SensorState(events=events, updated_at=state.updated_at) if changed else state


def _fire(
    sensor: Sensor, trigger: Trigger, stored: Mapping[str, Event], *, event: Event
) -> Submission | Notice:
    try:
        if trigger.parameters and trigger.raw_template is not None:
            rewritten = apply_parameters(
                trigger.raw_template, trigger.parameters, stored, path=f"{trigger.name}.parameters"
            )
            names = [d.name for d in sensor.dependencies]
            reparsed = parse_trigger({"template": rewritten}, path=trigger.name, dependencies=names)
            trigger = replace(trigger, action=reparsed.action)
        action = trigger.action
        if isinstance(action, LogTrigger):
            return Notice(trigger=trigger.name, kind="log", message="log trigger fired", events=stored)
        if isinstance(action, ArgoWorkflowTrigger):
            operation, args = action.operation.value, action.args
        elif isinstance(action, K8sTrigger):
            if action.operation is not K8sOperation.CREATE or action.resource.get("kind") != "Workflow":
                what = f"k8s {action.operation.value} of {action.resource.get('kind')!r}"
                return Notice(
                    trigger=trigger.name,
                    kind="unsupported",
                    message=f"{what} is not supported",
                    events=stored,
                )
            operation, args = "submit", ()
        else:
            return Notice(
                trigger=trigger.name,
                kind="unsupported",
                message=f"{action.kind} triggers are not supported",
                events=stored,
            )
        workflow = apply_parameters(
            action.resource, action.parameters, stored, path=f"{trigger.name}.parameters"
        )
    except WorkflowError as exc:
        return Notice(trigger=trigger.name, kind="failed", message=str(exc), events=stored)
    group = None
    if trigger.concurrency is not None:
        group = gitfilters.render_group(
            trigger.concurrency.group,
            data=event.data,
            sensor=sensor.name,
            trigger=trigger.name,
            event_source=event.event_source_name,
            event=event.event_name,
        )
    return Submission(
        sensor=sensor.name,
        trigger=trigger.name,
        operation=operation,
        workflow=workflow,
        events=stored,
        args=args,
        concurrency_group=group,
        cancel_in_progress=trigger.concurrency.cancel_in_progress if trigger.concurrency else False,
    )
