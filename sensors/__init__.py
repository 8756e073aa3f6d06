"""
Events to workflow submissions, with Argo Events semantics; knows nothing of HTTP.

The pure half lives here: :class:`Event` (the envelope sources build), :func:`parse_sensor`
(Sensor manifests to :class:`Sensor`), and :func:`match` (one event against one sensor:
new :class:`SensorState`, :class:`Submission` s, per-dependency :class:`FilterVerdict` s).
Other packages import only these names.
"""

from sensors.conditions import parse as parse_conditions
from sensors.events import Event, EventContext
from sensors.filters import FilterVerdict
from sensors.filterspec import GitFilter
from sensors.matching import MatchOutcome, Notice, SensorState, Submission, match
from sensors.model import (
    ArgoWorkflowTrigger,
    EventDependency,
    K8sTrigger,
    LogTrigger,
    Sensor,
    Trigger,
    TriggerParameter,
    parse_sensor,
)
from sensors.params import apply_parameters

__all__ = [
    "ArgoWorkflowTrigger",
    "Event",
    "EventContext",
    "EventDependency",
    "FilterVerdict",
    "GitFilter",
    "K8sTrigger",
    "LogTrigger",
    "MatchOutcome",
    "Notice",
    "Sensor",
    "SensorState",
    "Submission",
    "Trigger",
    "TriggerParameter",
    "apply_parameters",
    "match",
    "parse_conditions",
    "parse_sensor",
]
