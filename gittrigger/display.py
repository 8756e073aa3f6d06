"""
Text views of a run for the terminal: the node tree (like ``argo get``/``argo watch``) and one
line per finished node.

PURE (no I/O, no clock: ``now`` is passed in). Called by :mod:`gittrigger.cli` (``gittrigger
run``) to redraw the live tree, print progress lines and the final tree. Works on the raw
Argo JSON the store holds (``status.nodes``), so it shows exactly what the API would return.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from workflows.model.wire import parse_time

GLYPHS: Final[Mapping[str, str]] = {
    "Succeeded": "✔",
    "Failed": "✖",
    "Error": "⚠",
    "Pending": "◷",
    "Running": "●",
    "Skipped": "○",
    "Omitted": "○",
}
# Nodes that only group others: Argo's tree draws their children one level up.
_GROUPS: Final = frozenset({"StepGroup", "TaskGroup"})
# Nodes whose children are their own, even when those children name another boundary.
_OWNERS: Final = frozenset({"Retry", "Steps", "DAG", "StepGroup", "TaskGroup"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One displayed node: tree prefix, glyph, name, duration and message."""

    node_id: str
    prefix: str
    glyph: str
    name: str
    duration: str
    message: str

    def text(self) -> str:
        parts = [f"{self.prefix}{self.glyph} {self.name}"]
        if self.duration:
            parts.append(self.duration)
        if self.message:
            parts.append(self.message)
        return "  ".join(parts)


def glyph(phase: str | None) -> str:
    """The phase's glyph; a space-like dot for an unknown or empty phase."""
    return GLYPHS.get(phase or "", "·")


def format_duration(seconds: float) -> str:
    """Argo-style short durations: ``4s``, ``1m 5s``, ``2h 3m``."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def node_duration(node: Mapping[str, Any], *, now: datetime) -> str:
    """How long the node ran (or has been running); empty when it has not started."""
    started = node.get("startedAt")
    if not started:
        return ""
    try:
        begin = parse_time(started, path="startedAt")
        finished = node.get("finishedAt")
        end = parse_time(finished, path="finishedAt") if finished else now
    except Exception:  # a malformed time must not break the display
        return ""
    return format_duration((end - begin).total_seconds())


def _parents(nodes: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """child id -> the id of the node it is drawn under."""
    listed_by: dict[str, list[str]] = {}
    for node_id, node in nodes.items():
        for child in node.get("children") or ():
            if child in nodes and child != node_id:
                listed_by.setdefault(child, []).append(node_id)
    parents: dict[str, str] = {}
    for node_id, node in nodes.items():
        candidates = listed_by.get(node_id, [])
        owner = next((c for c in candidates if nodes[c].get("type") in _OWNERS), None)
        boundary = str(node.get("boundaryID") or "")
        if owner is not None:
            parents[node_id] = owner
        elif boundary in nodes and boundary != node_id:
            # DAG tasks list their dependents as children; Argo draws them under the DAG.
            parents[node_id] = boundary
        elif candidates:
            parents[node_id] = candidates[0]
    return parents


def _sort_key(
    nodes: Mapping[str, Mapping[str, Any]], *, parent: str | None, node_id: str, created: Mapping[str, int]
) -> tuple[int, str, str, int]:
    """Position in the parent's ``children`` (creation order), then start time, then ``status.nodes`` order.

    Times have 1 s resolution, so they cannot order siblings on their own.
    """
    listed = list(nodes[parent].get("children") or ()) if parent is not None else []
    position = listed.index(node_id) if node_id in listed else len(listed)
    # Stores list nodes by id (a hash), so creation order is lost there: the name orders DAG tasks
    # started in the same second (A, B, C rather than hash order).
    return (position, str(nodes[node_id].get("startedAt") or "~"), str(nodes[node_id].get("name") or ""),
            created[node_id])


def _shown_children(nodes: Mapping[str, Mapping[str, Any]]) -> dict[str | None, list[str]]:
    """parent id (None for the roots) -> the ids drawn under it, in order, group nodes folded away."""
    parents = _parents(nodes)
    children: dict[str | None, list[str]] = {}
    for node_id in nodes:
        children.setdefault(parents.get(node_id), []).append(node_id)
    created = {node_id: index for index, node_id in enumerate(nodes)}
    for parent, ids in children.items():
        keys = {i: _sort_key(nodes, parent=parent, node_id=i, created=created) for i in ids}
        ids.sort(key=keys.__getitem__)

    def shown(node_id: str | None) -> list[str]:
        out: list[str] = []
        for child in children.get(node_id, []):
            out.extend(shown(child) if nodes[child].get("type") in _GROUPS else [child])
        return out

    return {node_id: shown(node_id) for node_id in [None, *nodes]}


def tree_rows(workflow: Mapping[str, Any], *, now: datetime) -> list[Row]:
    """The run's nodes as an indented tree, the workflow's own node first; groups folded away."""
    nodes: Mapping[str, Mapping[str, Any]] = (workflow.get("status") or {}).get("nodes") or {}
    shown = _shown_children(nodes)
    rows: list[Row] = []

    def walk(node_id: str, *, lead: str, branch: str) -> None:
        node = nodes[node_id]
        rows.append(Row(
            node_id=node_id, prefix=lead + branch, glyph=glyph(node.get("phase")),
            name=str(node.get("displayName") or node.get("name") or node_id),
            duration=node_duration(node, now=now), message=str(node.get("message") or ""),
        ))
        kids = shown[node_id]
        below = lead + ("   " if branch == "└─ " else "│  " if branch else "")
        for i, kid in enumerate(kids):
            walk(kid, lead=below, branch="└─ " if i == len(kids) - 1 else "├─ ")

    for root in shown[None]:
        walk(root, lead="", branch="")
    return rows


def _post_order(nodes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    shown = _shown_children(nodes)
    out: list[str] = []

    def walk(node_id: str | None) -> None:
        for kid in shown[node_id]:
            walk(kid)
        if node_id is not None:
            out.append(node_id)

    walk(None)
    return out


def render_tree(workflow: Mapping[str, Any], *, now: datetime) -> list[str]:
    """The tree as text lines, the workflow's own node first."""
    return [row.text() for row in tree_rows(workflow, now=now)]


def summary(workflow: Mapping[str, Any], *, now: datetime) -> list[str]:
    """Name, phase, progress, duration and message of the run (lines under the tree)."""
    meta = workflow.get("metadata") or {}
    status = workflow.get("status") or {}
    lines = [f"Name:      {meta.get('name', '')}", f"Phase:     {status.get('phase') or 'Pending'}"]
    if status.get("progress"):
        lines.append(f"Progress:  {status['progress']}")
    if duration := node_duration(status, now=now):
        lines.append(f"Duration:  {duration}")
    if status.get("message"):
        lines.append(f"Message:   {status['message']}")
    return lines


def finished_lines(workflow: Mapping[str, Any], *, seen: set[str], now: datetime) -> list[str]:
    """A line for each node that completed since the last call (``seen`` is updated); groups skipped."""
    nodes: Mapping[str, Mapping[str, Any]] = (workflow.get("status") or {}).get("nodes") or {}
    rank = {node_id: i for i, node_id in enumerate(_post_order(nodes))}
    done = [
        node_id for node_id, node in nodes.items()
        if node_id not in seen and node.get("phase") in GLYPHS and node.get("phase") not in ("Pending", "Running")
    ]
    # Finish time first; within its 1 s resolution, children before their parents.
    done.sort(key=lambda i: (str(nodes[i].get("finishedAt") or "~"), rank.get(i, -1)))
    lines: list[str] = []
    for node_id in done:
        seen.add(node_id)
        node = nodes[node_id]
        if node.get("type") in _GROUPS:
            continue
        row = Row(node_id=node_id, prefix="", glyph=glyph(node.get("phase")),
                  name=str(node.get("displayName") or node_id), duration=node_duration(node, now=now),
                  message=str(node.get("message") or ""))
        lines.append(f"{row.text()}  ({node.get('phase')})")
    return lines
