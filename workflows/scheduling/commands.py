"""
What goes into and comes out of the pure scheduling core.

:mod:`workflows.engine` turns executor callbacks and API calls into :data:`Observation` values,
calls :func:`workflows.scheduling.operator.operate`, persists the returned status once and then
applies the :data:`Command` values (start or stop pods, arm a timer, consult the memo cache).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from workflows.executors.base import PodRequest, PodResult
from workflows.model.ids import NodeId
from workflows.model.spec import Workflow
from workflows.model.status import WorkflowStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """One workflow run: its spec (workflowTemplateRef already resolved) and its status."""

    workflow: Workflow
    status: WorkflowStatus


# --- observations: facts the engine reports to the core ----------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PodStarted:
    """The executor started the pod's processes (or the Pod is running)."""

    node_id: NodeId
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PodReady:
    """A daemon pod passed its readiness probe and is reachable at ``ip``."""

    node_id: NodeId
    ip: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PodFinished:
    """The pod ended; ``result`` says how."""

    node_id: NodeId
    result: PodResult


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume:
    """Resume suspended nodes (all when ``node_names`` is empty), optionally supplying outputs."""

    node_names: tuple[str, ...] = ()
    output_parameters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    message: str | None = None
    fail: bool = False  # Argo "stop" of a suspend node: fail it instead of succeeding it


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoLookedUp:
    """Answer to :class:`LookupMemo`: the cache entry's outputs, or None on a miss."""

    node_id: NodeId
    outputs: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LockAcquired:
    """The engine granted the synchronization locks a node asked for."""

    node_id: NodeId


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """A timer fired, or the spec changed (shutdown, suspend): just operate again."""


Observation = PodStarted | PodReady | PodFinished | Resume | MemoLookedUp | LockAcquired | Tick


# --- commands: what the core asks the engine to do -------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StartPod:
    """Run this pod; report PodStarted / PodReady / PodFinished for ``pod.node_id``."""

    pod: PodRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class StopPod:
    """Stop the pod of this node; the core has already decided the node's phase."""

    node_id: NodeId


@dataclass(frozen=True, slots=True, kw_only=True)
class WakeAt:
    """Operate again at ``at`` (retry backoff, deadline, suspend duration)."""

    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupMemo:
    """Look ``key`` up in memo cache ``cache``; answer with MemoLookedUp."""

    node_id: NodeId
    cache: str
    key: str
    max_age_seconds: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SaveMemo:
    """Store a node's outputs under ``key`` in memo cache ``cache``."""

    cache: str
    key: str
    entry: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class AcquireLocks:
    """Ask for mutexes/semaphores (``mutex/<name>``, ``semaphore/<key>``) for a node; answer LockAcquired."""

    node_id: NodeId
    locks: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseLocks:
    """Release every lock held for a node."""

    node_id: NodeId


Command = StartPod | StopPod | WakeAt | LookupMemo | SaveMemo | AcquireLocks | ReleaseLocks


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The result of one pass: the new status, what changed, and what to do now."""

    status: WorkflowStatus
    commands: Sequence[Command]
    changed_nodes: frozenset[NodeId]
    labels: Mapping[str, str] | None = None  # workflow labels to set (workflowMetadata.labelsFrom, phase)
