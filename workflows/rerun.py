"""
Retry and resubmit, pure: Argo's ``FormulateRetryWorkflow`` and ``FormulateResubmitWorkflow``
(workflow/util/util.go) as functions over wire JSON, plus node field selectors.

Called by :mod:`workflows.engine` (``Engine.retry``/``resubmit``/``set_nodes``) and the Argo API
edge (:mod:`gittrigger.http.argo`). No I/O and no clock: ``now`` and the name suffix are passed in.

Retry keeps the run (same name, same node ids): failed and errored leaf nodes are deleted with
everything below them, and the group nodes that contain them (DAG, TaskGroup, Steps, StepGroup,
Retry) are reset to Running, so the engine re-executes only what failed; succeeded nodes keep
their outputs and times. ``restart_successful`` with a ``node_field_selector`` also deletes the
selected nodes (and their descendants). Exit handler nodes are always deleted (they run again).
Resubmit builds a new Workflow; ``memoized`` carries the succeeded nodes over under the new name.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from workflows.errors import InvalidSpec
from workflows.model.ids import node_id, pod_name
from workflows.model.wire import format_time

LABEL_RESUBMITTED_FROM: Final = "workflows.argoproj.io/resubmitted-from-workflow"
LABEL_COMPLETED: Final = "workflows.argoproj.io/completed"
_DROPPED_ON_RESUBMIT: Final = frozenset({
    "workflows.argoproj.io/creator", "workflows.argoproj.io/creator-email",
    "workflows.argoproj.io/creator-preferred-username", "workflows.argoproj.io/phase", LABEL_COMPLETED,
    "workflows.argoproj.io/workflow-archiving-status",
})
_DROPPED_ON_RETRY: Final = (LABEL_COMPLETED, "workflows.argoproj.io/workflow-archiving-status")
# Failed nodes of these types are re-run; the types containing them are reset.
_LEAF_TYPES: Final = frozenset({"Pod", "Container", "HTTP", "Plugin", "Skipped", "Suspend"})
_RESET_TYPES: Final = frozenset({"DAG", "TaskGroup", "Steps", "StepGroup", "Retry"})
_FAILED: Final = frozenset({"Failed", "Error"})
_SELECTOR: Final = re.compile(r"^\s*([^=!\s]+)\s*(==|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    """One ``field=value`` (or ``==``, ``!=``) term of a node field selector."""

    field: str
    value: str
    equal: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Retried:
    """A retry's outcome: the run to store, which nodes were deleted (to re-run) or reset, and the
    pods of the deleted Pod nodes (Argo's podsToDelete: their names are used again by the re-run)."""

    workflow: dict[str, Any]
    deleted: frozenset[str]
    reset: frozenset[str]
    pods: tuple[str, ...] = ()


def parse_node_selector(text: str, *, path: str = "nodeFieldSelector") -> tuple[Requirement, ...]:
    """Kubernetes field selector syntax over node fields: ``a=b,c!=d`` (terms are and-ed)."""
    terms: list[Requirement] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = _SELECTOR.match(part)
        if m is None:
            raise InvalidSpec(path, f"invalid selector term {part!r}: use field=value or field!=value")
        terms.append(Requirement(field=m.group(1), value=m.group(3), equal=m.group(2) != "!="))
    return tuple(terms)


def node_fields(node: Mapping[str, Any]) -> dict[str, str]:
    """The fields a node field selector sees (Argo's SelectorMatchesNode)."""
    ref = node.get("templateRef") or None
    out = {
        "displayName": str(node.get("displayName") or ""),
        "templateName": str(ref.get("template") or "") if ref else str(node.get("templateName") or ""),
        "phase": str(node.get("phase") or ""),
        "name": str(node.get("name") or ""),
        "id": str(node.get("id") or ""),
    }
    if ref:
        out["templateRef.name"] = str(ref.get("name") or "")
        out["templateRef.template"] = str(ref.get("template") or "")
    for param in (node.get("inputs") or {}).get("parameters") or ():
        value = param.get("value")
        out[f"inputs.parameters.{param.get('name')}.value"] = "" if value is None else str(value)
    return out


def node_matches(selector: Sequence[Requirement], node: Mapping[str, Any]) -> bool:
    """True when every term holds; a field the node lacks reads as ``""`` (as in Kubernetes)."""
    fields = node_fields(node)
    return all((fields.get(r.field, "") == r.value) is r.equal for r in selector)


def select_nodes(nodes: Mapping[str, Mapping[str, Any]], selector_text: str,
                 *, path: str = "nodeFieldSelector") -> list[str]:
    """Ids of the nodes ``selector_text`` selects (none for an empty selector), sorted."""
    selector = parse_node_selector(selector_text, path=path)
    if not selector:
        return []
    return sorted(nid for nid, node in nodes.items() if node_matches(selector, node))


def parse_parameters(parameters: Sequence[str] | None, *, path: str = "parameters") -> dict[str, str]:
    """``["k=v", ...]`` (Argo's submit and retry parameters) as a dict, in order."""
    out: dict[str, str] = {}
    for i, text in enumerate(parameters or ()):
        name, sep, value = str(text).partition("=")
        if not sep or not name:
            raise InvalidSpec(f"{path}[{i}]", f"expected NAME=VALUE, got {text!r}")
        out[name] = value
    return out


def override_parameters(spec: dict[str, Any], parameters: Mapping[str, str]) -> None:
    """Argo's overrideParameters: the given parameters first (values set), then the rest as they were."""
    if not parameters:
        return
    args = spec.setdefault("arguments", {})
    kept = [p for p in args.get("parameters") or () if p.get("name") not in parameters]
    args["parameters"] = [{"name": k, "value": v} for k, v in parameters.items()] + kept


def formulate_retry(
    workflow: Mapping[str, Any],
    *,
    restart_successful: bool = False,
    node_field_selector: str = "",
    parameters: Sequence[str] | None = None,
    now: datetime,
) -> Retried:
    """The run to store for Argo's retry; InvalidSpec (400) when the phase does not allow it."""
    status = workflow.get("status") or {}
    phase = status.get("phase") or ""
    if phase == "Succeeded":
        if not (restart_successful and node_field_selector):
            raise InvalidSpec("restartSuccessful", "to retry a succeeded workflow, set the options "
                                                   "restartSuccessful and nodeFieldSelector")
    elif phase not in _FAILED:
        raise InvalidSpec("status.phase", f"cannot retry a workflow in phase {phase or 'Pending'}")
    params = parse_parameters(parameters)
    new: dict[str, Any] = copy.deepcopy(dict(workflow))
    name = str(new["metadata"]["name"])
    nodes: dict[str, Any] = new.setdefault("status", {}).get("nodes") or {}
    selected = set(select_nodes(nodes, node_field_selector)) if restart_successful else set()
    deleted, reset = _plan(name, nodes, selected=selected, regroup=bool(params))
    stamp = format_time(now)
    kept: dict[str, Any] = {}
    for nid, node in nodes.items():
        if nid in deleted:
            continue
        node = _without(node, deleted)
        if nid in reset:
            if node.get("phase") != "Skipped":
                node["phase"] = "Running"
            node.pop("message", None)
            node["startedAt"], node["finishedAt"] = stamp, None
        kept[nid] = node
    labels = new["metadata"].get("labels") or {}
    for key in _DROPPED_ON_RETRY:
        labels.pop(key, None)
    spec = new.setdefault("spec", {})
    _clear_shutdown(spec)
    override_parameters(spec, params)
    new_status: dict[str, Any] = new["status"]
    stored_spec = new_status.get("storedWorkflowTemplateSpec")
    if isinstance(stored_spec, dict):
        stored_spec.pop("shutdown", None)
        override_parameters(stored_spec, params)
    new_status.update(phase="", startedAt=stamp, finishedAt=None, nodes=kept)
    new_status.pop("message", None)
    new_status["conditions"] = _not_completed(new_status.get("conditions"))
    pods = sorted({pod_name(name, str(nodes[nid].get("name") or ""), _template_of(nodes[nid]))
                   for nid in deleted if nodes[nid].get("type") == "Pod"})
    return Retried(workflow=new, deleted=frozenset(deleted), reset=frozenset(reset - deleted), pods=tuple(pods))


def formulate_resubmit(
    workflow: Mapping[str, Any],
    *,
    memoized: bool = False,
    parameters: Sequence[str] | None = None,
    name_suffix: str,
    now: datetime,
) -> dict[str, Any]:
    """A new Workflow manifest from ``workflow``; with ``memoized`` (Failed/Error runs only) it
    carries a ``status`` whose succeeded nodes are kept, renamed to the new run."""
    status = workflow.get("status") or {}
    if memoized and status.get("phase") not in _FAILED:
        raise InvalidSpec("memoized", "workflow must be Failed/Error to resubmit in memoized mode")
    meta = workflow.get("metadata") or {}
    old_name = str(meta.get("name") or "")
    generate_name = str(meta.get("generateName") or f"{old_name}-")
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in _DROPPED_ON_RESUBMIT}
    labels[LABEL_RESUBMITTED_FROM] = old_name
    new_meta: dict[str, Any] = {"generateName": generate_name, "labels": labels}
    if meta.get("namespace"):
        new_meta["namespace"] = meta["namespace"]
    if meta.get("annotations"):
        new_meta["annotations"] = dict(meta["annotations"])
    if meta.get("ownerReferences"):
        new_meta["ownerReferences"] = copy.deepcopy(meta["ownerReferences"])
    spec: dict[str, Any] = copy.deepcopy(dict(workflow.get("spec") or {}))
    _clear_shutdown(spec)
    spec.pop("suspend", None)
    override_parameters(spec, parse_parameters(parameters))
    new: dict[str, Any] = {"apiVersion": workflow.get("apiVersion", "argoproj.io/v1alpha1"),
                           "kind": "Workflow", "metadata": new_meta, "spec": spec}
    if not memoized:
        return new
    new_name = generate_name + name_suffix
    new_meta["name"] = new_name
    nodes: dict[str, Any] = status.get("nodes") or {}
    deleted, _ = _plan(old_name, nodes, selected=set(), regroup=False)
    stamp = format_time(now)
    renamed: dict[str, Any] = {}
    for nid, node in nodes.items():
        if nid in deleted:
            continue
        node = _rename(_without(node, deleted), nodes, old=old_name, new=new_name)
        if node.get("type") == "Pod" and node.get("phase") == "Succeeded":
            node["message"] = f"original pod: {nid}"
            node["startedAt"] = node["finishedAt"] = stamp
        elif node.get("phase") != "Skipped":
            node["phase"] = "Running"
            node.pop("message", None)
            node["startedAt"], node["finishedAt"] = stamp, None
        renamed[node["id"]] = node
    new["status"] = {"phase": "", "nodes": renamed,
                     "conditions": [{"type": "Completed", "status": "False"}]}
    for key in ("storedTemplates", "storedWorkflowTemplateSpec"):
        if status.get(key):
            new["status"][key] = copy.deepcopy(status[key])
    return new


# -- the plan ----------------------------------------------------------------------------------


def _plan(name: str, nodes: Mapping[str, Mapping[str, Any]], *, selected: Collection[str],
          regroup: bool) -> tuple[set[str], set[str]]:
    """(nodes to delete, nodes to reset): Argo's resetPath over every failed leaf and selected node."""
    parent: dict[str, str] = {}
    for nid in sorted(nodes):
        for child in nodes[nid].get("children") or ():
            parent[child] = nid  # a DAG task hangs under each dependency: Argo keeps the last, sorted

    def succeeded_below(nid: str, seen: set[str]) -> bool:
        for child in nodes.get(nid, {}).get("children") or ():
            if child in seen or child not in nodes:
                continue
            seen.add(child)
            if (child not in selected and nodes[child].get("phase") == "Succeeded") or succeeded_below(child, seen):
                return True
        return False

    seeds = set(selected)
    for nid, node in nodes.items():
        if node.get("phase") not in _FAILED or node.get("type") not in _LEAF_TYPES:
            continue
        holder = nid
        if (node.get("nodeFlag") or {}).get("retried") and nodes.get(parent.get(nid, ""), {}).get("type") == "Retry":
            holder = parent[nid]
        if not succeeded_below(holder, set()):
            seeds.add(nid)
    deleted: set[str] = set()
    reset: set[str] = set()
    for nid in _breadth_first(name, nodes):
        if nid not in seeds or nid in deleted:
            continue
        deleted |= {nid, *_descendants(nid, nodes)}
        up = parent.get(nid)
        while up is not None and up not in reset:
            if nodes[up].get("type") in _RESET_TYPES:
                reset.add(up)
            up = parent.get(up)
    if regroup:  # new parameters: loops are expanded again (Argo #15802)
        for nid in list(reset):
            if nodes[nid].get("type") in ("TaskGroup", "StepGroup"):
                deleted |= _descendants(nid, nodes)
    exit_prefix = f"{name}.onExit"
    for nid, node in nodes.items():
        if str(node.get("name") or "").startswith(exit_prefix):
            deleted.add(nid)
    return deleted, reset - deleted


def _breadth_first(name: str, nodes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    root = next((nid for nid, n in nodes.items() if n.get("name") == name), None)
    if root is None:
        return sorted(nodes)
    order, seen, i = [root], {root}, 0
    while i < len(order):
        for child in nodes.get(order[i], {}).get("children") or ():
            if child in nodes and child not in seen:
                seen.add(child)
                order.append(child)
        i += 1
    return order


def _descendants(nid: str, nodes: Mapping[str, Mapping[str, Any]]) -> set[str]:
    out: set[str] = set()
    stack = list(nodes.get(nid, {}).get("children") or ())
    while stack:
        child = stack.pop()
        if child in out or child not in nodes:
            continue
        out.add(child)
        stack.extend(nodes[child].get("children") or ())
    return out


def _without(node: Mapping[str, Any], deleted: Collection[str]) -> dict[str, Any]:
    """A copy of ``node`` whose children and outbound nodes leave out ``deleted``."""
    out = dict(node)
    for key in ("children", "outboundNodes"):
        if key in out:
            kept = [c for c in out[key] if c not in deleted]
            if kept:
                out[key] = kept
            else:
                del out[key]
    return out


def _rename(node: dict[str, Any], nodes: Mapping[str, Mapping[str, Any]], *, old: str, new: str) -> dict[str, Any]:
    def new_name(text: str) -> str:
        return new + text[len(old):] if text.startswith(old) else text

    def new_id(nid: str) -> str:
        other = nodes.get(nid)
        return node_id(new, new_name(str(other.get("name") or ""))) if other is not None else nid

    node["name"] = new_name(str(node.get("name") or ""))
    node["id"] = node_id(new, node["name"])
    if node.get("boundaryID"):
        node["boundaryID"] = new_id(node["boundaryID"])
    for key in ("children", "outboundNodes"):
        if key in node:
            node[key] = [new_id(c) for c in node[key]]
    return node


def _template_of(node: Mapping[str, Any]) -> str:
    """The template name a node's pod is named after (as the scheduler names it)."""
    return str(node.get("templateName") or (node.get("templateRef") or {}).get("template") or "")


def _clear_shutdown(spec: dict[str, Any]) -> None:
    spec.pop("shutdown", None)
    if spec.get("activeDeadlineSeconds") == 0:  # a terminated run: Argo unsets the deadline
        del spec["activeDeadlineSeconds"]


def _not_completed(conditions: Any) -> list[dict[str, Any]]:
    kept = [dict(c) for c in conditions or () if isinstance(c, Mapping) and c.get("type") != "Completed"]
    return [*kept, {"type": "Completed", "status": "False"}]


__all__ = [
    "LABEL_RESUBMITTED_FROM",
    "Requirement",
    "Retried",
    "formulate_resubmit",
    "formulate_retry",
    "node_fields",
    "node_matches",
    "override_parameters",
    "parse_node_selector",
    "parse_parameters",
    "select_nodes",
]
