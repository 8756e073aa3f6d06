"""
The node tree of one reconciliation pass: lookups by name, creation, phase changes, links.

Owned by :class:`workflows.scheduling.operator.Pass`; the only place nodes are replaced, so it
also records which node ids changed (the engine persists just those) and keeps the counts that
parallelism checks need without scanning every node (a 10,000-item fan-out stays linear).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import datetime
from typing import Any, Final

from workflows.model.ids import NodeId, node_id
from workflows.model.status import NodeIO, NodePhase, NodeStatus, NodeType

_ACTIVE = (NodePhase.PENDING, NodePhase.RUNNING)
_EXECUTABLE = (NodeType.POD, NodeType.CONTAINER, NodeType.SUSPEND, NodeType.HTTP)
_DONE = (NodePhase.SUCCEEDED, NodePhase.SKIPPED, NodePhase.OMITTED)
_COUNTED = (NodeType.POD, NodeType.STEPS, NodeType.DAG)


def fulfilled(node: NodeStatus) -> bool:
    """Completed, or a daemon that is up (Argo's Fulfilled): steps may move past it."""
    return node.phase.completed or (node.daemoned and node.phase is not NodePhase.PENDING)


_NODE_FIELDS: Final = tuple(f.name for f in dataclasses.fields(NodeStatus))
_NODE_FIELD_SET: Final = frozenset(_NODE_FIELDS)
_set = object.__setattr__


def _evolve(node: NodeStatus, changes: Mapping[str, object]) -> NodeStatus:
    """``dataclasses.replace(node, **changes)`` at half the cost: a node changes several times per
    pod, and replace's generic field walk was a seventh of a 20,000-item fan-out's time."""
    if not changes.keys() <= _NODE_FIELD_SET:
        raise TypeError(f"NodeStatus has no field {sorted(changes.keys() - _NODE_FIELD_SET)[0]!r}")
    new = object.__new__(NodeStatus)
    for name in _NODE_FIELDS:
        _set(new, name, changes[name] if name in changes else getattr(node, name))
    return new


class _Counts:
    """Running counts over the nodes that parallelism checks and progress need."""

    def __init__(self) -> None:
        self.nodes: Mapping[NodeId, NodeStatus] | None = None
        self.active_pods = 0
        self.active_children: Counter[NodeId | None] = Counter()
        self.unsuccessful_children: Counter[NodeId | None] = Counter()
        self.executable = 0
        self.executable_done = 0

    def add(self, node: NodeStatus, sign: int) -> None:
        if node.phase in _ACTIVE:
            if node.type is NodeType.POD:
                self.active_pods += sign
            if node.type in _COUNTED:
                self.active_children[node.boundary_id] += sign
        elif node.phase.failed and node.type is not NodeType.RETRY:
            self.unsuccessful_children[node.boundary_id] += sign
        if node.type in _EXECUTABLE:
            self.executable += sign
            if node.phase in _DONE:
                self.executable_done += sign


class Tree:
    """Mutable view of ``status.nodes`` for one pass."""

    def __init__(self, workflow_name: str, nodes: Mapping[NodeId, NodeStatus], *, now: datetime,
                 memo: MutableMapping[Any, Any] | None = None) -> None:
        self.workflow_name = workflow_name
        memo = {} if memo is None else memo
        self._ids: dict[str, NodeId] = memo.setdefault("ids", {})  # name -> id; hashing is not free
        self._child_sets: dict[NodeId, tuple[tuple[NodeId, ...], set[NodeId]]] = memo.setdefault("child sets", {})
        self.nodes: dict[NodeId, NodeStatus] = dict(nodes)
        self.changed: set[NodeId] = set()
        self.now = now
        counts: _Counts | None = memo.get("counts")
        if counts is None or counts.nodes is not nodes:
            # Counted from scratch only when the nodes are not the ones the last pass left
            # (first pass, restart): otherwise each pass would cost O(all nodes) before any work.
            counts = _Counts()
            for node in self.nodes.values():
                counts.add(node, +1)
        self.counts = counts
        memo["counts"] = counts

    def seal(self) -> Mapping[NodeId, NodeStatus]:
        """The nodes as the pass leaves them; the counters stay valid for the next pass."""
        self.counts.nodes = self.nodes
        return self.nodes

    @property
    def active_pods(self) -> int:
        return self.counts.active_pods

    @property
    def active_children(self) -> Counter[NodeId | None]:
        return self.counts.active_children

    @property
    def unsuccessful_children(self) -> Counter[NodeId | None]:
        return self.counts.unsuccessful_children

    @property
    def progress(self) -> str:
        return f"{self.counts.executable_done}/{self.counts.executable}"

    # -- bookkeeping ------------------------------------------------------------------------

    def _count(self, node: NodeStatus, sign: int) -> None:
        self.counts.add(node, sign)

    def put(self, node: NodeStatus) -> NodeStatus:
        old = self.nodes.get(node.id)
        if old is node:
            return node
        if old is not None:
            self._count(old, -1)
        self._count(node, +1)
        self.nodes[node.id] = node
        self.changed.add(node.id)
        return node

    # -- lookups ----------------------------------------------------------------------------

    def id_of(self, name: str) -> NodeId:
        nid = self._ids.get(name)
        if nid is None:
            nid = self._ids[name] = node_id(self.workflow_name, name)
        return nid

    def get(self, name: str) -> NodeStatus | None:
        return self.nodes.get(self.id_of(name))

    def by_id(self, nid: NodeId) -> NodeStatus:
        return self.nodes[nid]

    def children(self, node: NodeStatus) -> Iterable[NodeStatus]:
        return (self.nodes[c] for c in node.children if c in self.nodes)

    # -- changes ----------------------------------------------------------------------------

    def create(
        self,
        name: str,
        type_: NodeType,
        *,
        display_name: str,
        boundary_id: NodeId | None,
        phase: NodePhase = NodePhase.PENDING,
        message: str | None = None,
        template_name: str | None = None,
        template_ref: Mapping[str, object] | None = None,
        template_scope: str | None = None,
        hooked: bool = False,
        inputs: NodeIO | None = None,
    ) -> NodeStatus:
        """Create a node (started now; finished now too when created completed)."""
        node = NodeStatus(
            id=self.id_of(name),
            name=name,
            display_name=display_name,
            type=type_,
            phase=phase,
            boundary_id=boundary_id,
            message=message,
            template_name=template_name,
            template_ref=template_ref,
            template_scope=template_scope,
            started_at=self.now,
            finished_at=self.now if phase.completed else None,
            hooked=hooked,
            inputs=inputs,
        )
        return self.put(node)

    def update(self, node: NodeStatus, **changes: object) -> NodeStatus:
        current = self.nodes.get(node.id, node)
        return self.put(_evolve(current, changes))

    def mark(self, node: NodeStatus, phase: NodePhase, message: str | None = None) -> NodeStatus:
        """Set a node's phase (and finishedAt when it completes); keep the message unless given."""
        current = self.nodes.get(node.id, node)
        if current.phase is phase and (message is None or message == current.message):
            return current
        changes: dict[str, object] = {"phase": phase}
        if message is not None:
            changes["message"] = message
        if phase.completed and current.finished_at is None:
            changes["finished_at"] = self.now
        if current.started_at is None:
            changes["started_at"] = self.now
        return self.update(current, **changes)

    def add_child(self, parent: NodeStatus | NodeId, child: NodeId) -> None:
        self.add_children(parent, (child,))

    def add_children(self, parent: NodeStatus | NodeId, children: Iterable[NodeId]) -> None:
        """Link children in order, once each; one copy of the tuple however many are added."""
        pid = parent if isinstance(parent, str) else parent.id
        current = self.nodes[pid]
        if len(current.children) < 8:
            new = [c for c in dict.fromkeys(children) if c not in current.children]
            if new:
                self.put(_evolve(current, {"children": (*current.children, *new)}))
            return
        # A DAG of 1,000 tasks adds its children one per pass: the set of those already linked is
        # kept (valid while the node still holds that very tuple), not rebuilt for every link.
        cached = self._child_sets.get(pid)
        known = cached[1] if cached is not None and cached[0] is current.children else set(current.children)
        new = [c for c in dict.fromkeys(children) if c not in known]
        if new:
            known.update(new)
            current = self.put(_evolve(current, {"children": (*current.children, *new)}))
        self._child_sets[pid] = (current.children, known)

    def outbound(self, nid: NodeId) -> tuple[NodeId, ...]:
        """Argo's getOutboundNodes: the nodes a successor should hang from."""
        node = self.nodes[nid]
        if node.type in (NodeType.POD, NodeType.SKIPPED, NodeType.SUSPEND, NodeType.HTTP, NodeType.CONTAINER):
            return (nid,)
        if node.type is NodeType.TASK_GROUP:
            out: list[NodeId] = []
            for child in node.children:
                out.extend(self.outbound(child))
            return tuple(out) or (nid,)
        if node.type is NodeType.RETRY and node.children:
            return (node.children[-1],)
        out = []
        for ob in node.outbound_nodes:
            out.extend(self.outbound(ob))
        return tuple(out) or (nid,)
