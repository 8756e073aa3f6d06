"""
Text views of a run for the terminal: the node tree (like ``argo get``/``argo watch``) and one
line per finished node.

PURE (no I/O, no clock: ``now`` is passed in). Called by :mod:`gittrigger.cli` (``gittrigger
run``) to redraw the live tree, print progress lines and the final tree, and by
:mod:`gittrigger.clicommands` for ``list``/``get``/``template``/``cron`` tables and summaries. Works on the raw
Argo JSON the store holds (``status.nodes``), so it shows exactly what the API would return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from workflows.model.ids import pod_name
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


# -- API views (``gittrigger list|get|template|cron``) ------------------------------------------------


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value, path="time") if value else None
    except Exception:  # a malformed time must not break the display
        return None


def age(value: Any, *, now: datetime) -> str:
    """Argo's short relative age of a timestamp: ``5s``, ``3m``, ``2h``, ``4d``; empty without one."""
    at = _time(value)
    if at is None:
        return ""
    seconds = max(0, int((now - at).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _when(value: Any, *, now: datetime) -> str:
    at = _time(value)
    if at is None:
        return ""
    return f"{at.strftime('%a %b %d %H:%M:%S %z')} ({age(value, now=now)} ago)"


def status_text(workflow: Mapping[str, Any]) -> str:
    """``Running``, ``Running (Suspended)``, ``Pending`` for a run not yet picked up, as ``argo list``."""
    status = workflow.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    if phase == "Running" and (workflow.get("spec") or {}).get("suspend"):
        return "Running (Suspended)"
    return phase


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell (3 spaces apart), like ``kubectl get``; no trailing blanks."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return ["   ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]]


def _parameters(workflow: Mapping[str, Any]) -> list[tuple[str, str]]:
    params = ((workflow.get("spec") or {}).get("arguments") or {}).get("parameters") or []
    return [(str(p.get("name")), str(p.get("value", p.get("default", "")))) for p in params if isinstance(p, dict)]


def workflow_table(items: Sequence[Mapping[str, Any]], *, now: datetime, wide: bool = False) -> list[str]:
    """``argo list``: NAME STATUS AGE DURATION PRIORITY MESSAGE (wide: + P/R/C and PARAMETERS)."""
    header = ["NAME", "STATUS", "AGE", "DURATION", "PRIORITY", "MESSAGE"]
    if wide:
        header += ["P/R/C", "PARAMETERS"]
    rows: list[list[str]] = []
    for wf in items:
        meta, status = wf.get("metadata") or {}, wf.get("status") or {}
        row = [str(meta.get("name", "")), status_text(wf), age(meta.get("creationTimestamp"), now=now),
               node_duration(status, now=now), str((wf.get("spec") or {}).get("priority") or 0),
               str(status.get("message") or "")]
        if wide:
            pods = [n.get("phase") for n in (status.get("nodes") or {}).values() if n.get("type") == "Pod"]
            counts = (sum(p == "Pending" for p in pods), sum(p == "Running" for p in pods),
                      sum(p not in ("Pending", "Running") for p in pods))
            row += ["/".join(map(str, counts)), ",".join(f"{k}={v}" for k, v in _parameters(wf))]
        rows.append(row)
    return table(header, rows)


def workflow_details(workflow: Mapping[str, Any], *, now: datetime) -> list[str]:
    """``argo get``'s summary: Name, Namespace, Status, Message, times, Duration, Progress, Parameters."""
    meta, status = workflow.get("metadata") or {}, workflow.get("status") or {}
    fields = [
        ("Name", meta.get("name")), ("Namespace", meta.get("namespace")),
        ("ServiceAccount", (workflow.get("spec") or {}).get("serviceAccountName") or "unset"),
        ("Status", status_text(workflow)), ("Message", status.get("message")),
        ("Created", _when(meta.get("creationTimestamp"), now=now)),
        ("Started", _when(status.get("startedAt"), now=now)),
        ("Finished", _when(status.get("finishedAt"), now=now)), ("Duration", node_duration(status, now=now)),
        ("Progress", status.get("progress")),
    ]
    lines = [f"{label + ':':<20} {value}" for label, value in fields if value]
    if params := _parameters(workflow):
        lines.append("Parameters:")
        lines += [f"  {name + ':':<18} {value}" for name, value in params]
    return lines


def node_table(workflow: Mapping[str, Any], *, now: datetime) -> list[str]:
    """``argo get``'s node tree: STEP (glyph, tree) TEMPLATE PODNAME DURATION MESSAGE."""
    nodes: Mapping[str, Mapping[str, Any]] = (workflow.get("status") or {}).get("nodes") or {}
    name = str((workflow.get("metadata") or {}).get("name") or "")
    rows: list[list[str]] = []
    for row in tree_rows(workflow, now=now):
        node = nodes[row.node_id]
        template = str(node.get("templateName") or (node.get("templateRef") or {}).get("template") or "")
        pod = pod_name(name, str(node.get("name") or ""), template) if node.get("type") == "Pod" else ""
        rows.append([f" {row.prefix}{row.glyph} {row.name}", template, pod, row.duration, row.message])
    return table(["STEP", "TEMPLATE", "PODNAME", "DURATION", "MESSAGE"], rows) if rows else []


def template_table(items: Sequence[Mapping[str, Any]], *, now: datetime) -> list[str]:
    """``argo template list``: NAME and AGE."""
    return table(["NAME", "AGE"], [[str((t.get("metadata") or {}).get("name", "")),
                                    age((t.get("metadata") or {}).get("creationTimestamp"), now=now)] for t in items])


def cron_table(items: Sequence[Mapping[str, Any]], *, now: datetime) -> list[str]:
    """``argo cron list``: NAME AGE LAST RUN SCHEDULE TIMEZONE SUSPENDED."""
    rows = []
    for cron in items:
        meta, spec, status = cron.get("metadata") or {}, cron.get("spec") or {}, cron.get("status") or {}
        schedules = spec.get("schedules") or ([spec["schedule"]] if spec.get("schedule") else [])
        rows.append([str(meta.get("name", "")), age(meta.get("creationTimestamp"), now=now),
                     age(status.get("lastScheduledTime"), now=now) or "N/A", ",".join(map(str, schedules)),
                     str(spec.get("timezone") or ""), str(bool(spec.get("suspend"))).lower()])
    return table(["NAME", "AGE", "LAST RUN", "SCHEDULE", "TIMEZONE", "SUSPENDED"], rows)


def object_details(obj: Mapping[str, Any], *, now: datetime) -> list[str]:
    """``argo template get`` / ``argo cron get``: name, namespace, created, and a CronWorkflow's schedule."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    fields: list[tuple[str, Any]] = [("Name", meta.get("name")), ("Namespace", meta.get("namespace")),
                                     ("Created", _when(meta.get("creationTimestamp"), now=now))]
    if obj.get("kind") == "CronWorkflow" or "schedule" in spec or "schedules" in spec:
        schedules = spec.get("schedules") or ([spec["schedule"]] if spec.get("schedule") else [])
        fields += [("Schedule", ",".join(map(str, schedules))), ("Suspended", str(bool(spec.get("suspend"))).lower()),
                   ("ConcurrencyPolicy", spec.get("concurrencyPolicy") or "Allow"),
                   ("LastScheduledTime", _when(status.get("lastScheduledTime"), now=now)),
                   ("Active Workflows", ", ".join(str(a.get("name")) for a in status.get("active") or []))]
    else:
        fields.append(("Entrypoint", spec.get("entrypoint")))
    return [f"{label + ':':<20} {value}" for label, value in fields if value]
