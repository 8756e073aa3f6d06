"""
Variable scopes: what ``{{steps.x.outputs.result}}``, ``{{tasks.a.ip}}`` and friends resolve to.

Argo's wfScope: a flat map of dotted names to strings, plus artifacts by name. Built by
:mod:`.steps` and :mod:`.dag` from finished nodes, merged with the global scope of
:mod:`.operator`. Aggregation of loop outputs follows Argo's processAggregateNodeOutputs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from workflows.model.ids import NodeId
from workflows.model.status import ArtifactRef, NodeIO, NodePhase, NodeStatus, NodeType

_LOOP_INDEX = re.compile(r"\((\d+):")


def timestamp(at: datetime) -> str:
    """RFC3339 with seconds, UTC, as Argo formats times."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Scope:
    """Parameters (flat dotted names to strings) and artifacts (dotted names to refs)."""

    params: dict[str, str | None] = field(default_factory=dict)  # None: a skipped step's absent output
    artifacts: dict[str, ArtifactRef] = field(default_factory=dict)

    def copy(self) -> Scope:
        return Scope(params=dict(self.params), artifacts=dict(self.artifacts))

    def add_outputs(self, prefix: str, outputs: NodeIO | None) -> None:
        """Argo's addOutputsToLocalScope."""
        if outputs is None:
            return
        if prefix != "workflow":
            if outputs.result is not None:
                self.params[f"{prefix}.outputs.result"] = outputs.result
            if outputs.exit_code is not None:
                self.params[f"{prefix}.exitCode"] = outputs.exit_code
                self.params[f"{prefix}.outputs.exitCode"] = outputs.exit_code
        for name, value in outputs.parameters:
            self.params[f"{prefix}.outputs.parameters.{name}"] = value
        for art in outputs.artifacts:
            self.artifacts[f"{prefix}.outputs.artifacts.{art.name}"] = art

    def add_node(self, prefix: str, node: NodeStatus, nodes: Mapping[NodeId, NodeStatus]) -> None:
        """Argo's buildLocalScope: id, times, ip, status, exit code and outputs of a node."""
        if node.type is NodeType.RETRY and node.children:
            node = nodes[node.children[-1]]
        self.params[f"{prefix}.id"] = node.id
        if node.started_at is not None:
            self.params[f"{prefix}.startedAt"] = timestamp(node.started_at)
        if node.finished_at is not None:
            self.params[f"{prefix}.finishedAt"] = timestamp(node.finished_at)
        if node.pod_ip:
            self.params[f"{prefix}.ip"] = node.pod_ip
        self.params[f"{prefix}.status"] = node.phase.value
        if node.host_node_name:
            self.params[f"{prefix}.hostNodeName"] = node.host_node_name
        self.add_outputs(prefix, node.outputs)

    def add_aggregate(self, prefix: str, children: Iterable[NodeStatus], nodes: Mapping[NodeId, NodeStatus]) -> None:
        """Outputs of an expanded (withItems/withParam) step or task as JSON lists, in item order."""
        kids = [c for c in children if not c.hooked]
        kids.sort(key=_loop_index)
        params: list[dict[str, str]] = []
        per_name: dict[str, list[str]] = {}
        results: list[object] = []
        for child in kids:
            if child.type is NodeType.RETRY and child.children:
                child = nodes[child.children[-1]]
            out = child.outputs
            if out is None or child.phase is not NodePhase.SUCCEEDED:
                continue
            if out.parameters:
                params.append(dict(out.parameters))
                for name, value in out.parameters:
                    per_name.setdefault(name, []).append(value)
            if out.result is not None:
                results.append(_json_or_string(out.result))
        self.params[f"{prefix}.outputs.result"] = go_json(results)
        self.params[f"{prefix}.outputs.parameters"] = go_json(params)
        for name, values in per_name.items():
            self.params[f"{prefix}.outputs.parameters.{name}"] = _aggregated_values(values)


def _loop_index(node: NodeStatus) -> int:
    matches = _LOOP_INDEX.findall(node.name)
    return int(matches[-1]) if matches else 0


def _aggregated_values(values: list[str]) -> str:
    """One output parameter over loop children as a JSON list: values that hold JSON objects or
    lists (judged by the first) are embedded as JSON, anything else stays a string."""
    first = values[0].lstrip() if values else ""
    if first.startswith(("{", "[")):
        return go_json([_json_or_string(v) for v in values])
    return go_json(values)


def _json_or_string(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def go_json(value: object) -> str:
    """JSON as Go's json.Marshal writes it: compact, HTML characters escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)  # Go sorts map keys
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
