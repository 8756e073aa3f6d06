"""
Run state: workflow and node phases and the node tree, in Argo's ``status`` shape.

Produced by :mod:`workflows.scheduling` (pure) and persisted by :mod:`workflows.store` through
:mod:`workflows.model.wire`. Values are frozen, so the engine can tell what changed in a pass by
identity (``old is new``) and write only those nodes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from workflows.model.ids import NodeId


class WorkflowPhase(enum.Enum):
    """Phase of a whole run (Argo's WorkflowPhase); ``UNKNOWN`` is the empty phase of a new run."""

    UNKNOWN = ""
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"

    @property
    def completed(self) -> bool:
        return self in (WorkflowPhase.SUCCEEDED, WorkflowPhase.FAILED, WorkflowPhase.ERROR)


class NodePhase(enum.Enum):
    """Phase of one node (Argo's NodePhase)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    SKIPPED = "Skipped"
    FAILED = "Failed"
    ERROR = "Error"
    OMITTED = "Omitted"

    @property
    def completed(self) -> bool:
        return self not in (NodePhase.PENDING, NodePhase.RUNNING)

    @property
    def failed(self) -> bool:
        """Failed or Error: the two phases that fail a parent unless ``continueOn`` says otherwise."""
        return self in (NodePhase.FAILED, NodePhase.ERROR)


class NodeType(enum.Enum):
    """Kind of node in the tree (Argo's NodeType)."""

    POD = "Pod"
    CONTAINER = "Container"
    STEPS = "Steps"
    STEP_GROUP = "StepGroup"
    DAG = "DAG"
    TASK_GROUP = "TaskGroup"
    RETRY = "Retry"
    SKIPPED = "Skipped"
    SUSPEND = "Suspend"
    HTTP = "HTTP"


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactRef:
    """An artifact a node produced or consumed: its name, path in the container, and store key."""

    name: str
    path: str | None = None
    key: str | None = None
    archive_none: bool = False
    raw: Mapping[str, Any] = field(default_factory=_frozen)  # other location fields, kept as given


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeIO:
    """Resolved parameters and artifacts of a node (inputs or outputs)."""

    parameters: tuple[tuple[str, str], ...] = ()
    artifacts: tuple[ArtifactRef, ...] = ()
    result: str | None = None
    exit_code: str | None = None

    def parameter(self, name: str) -> str | None:
        for key, value in self.parameters:
            if key == name:
                return value
        return None

    def artifact(self, name: str) -> ArtifactRef | None:
        for art in self.artifacts:
            if art.name == name:
                return art
        return None

    @property
    def empty(self) -> bool:
        return not (self.parameters or self.artifacts) and self.result is None and self.exit_code is None


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStatus:
    """One node of the run tree, as Argo stores it in ``status.nodes[id]``."""

    id: NodeId
    name: str
    display_name: str
    type: NodeType
    phase: NodePhase = NodePhase.PENDING
    template_name: str | None = None
    template_ref: Mapping[str, Any] | None = None  # {"name", "template", "clusterScope"}
    template_scope: str | None = None
    boundary_id: NodeId | None = None
    children: tuple[NodeId, ...] = ()
    outbound_nodes: tuple[NodeId, ...] = ()
    inputs: NodeIO | None = None
    outputs: NodeIO | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str | None = None
    pod_ip: str | None = None
    daemoned: bool = False
    hooked: bool = False
    retried: bool = False
    memoization: Mapping[str, Any] | None = None  # {"hit", "key", "cacheName"}
    host_node_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowStatus:
    """The ``status`` of a run."""

    phase: WorkflowPhase = WorkflowPhase.UNKNOWN
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str | None = None
    progress: str | None = None
    nodes: Mapping[NodeId, NodeStatus] = field(default_factory=lambda: MappingProxyType({}))
    outputs: NodeIO | None = None  # global outputs (globalName)
    stored_templates: Mapping[str, Any] = field(default_factory=_frozen)  # resolved templateRefs, wire form
    stored_spec: Mapping[str, Any] | None = None  # the workflowTemplateRef spec merged at submit
    conditions: tuple[Mapping[str, Any], ...] = ()
    synchronization: Mapping[str, Any] | None = None
