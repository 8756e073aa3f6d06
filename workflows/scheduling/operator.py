"""
One reconciliation pass over a workflow run: the pure core (Argo's ``woc.operate``, made pure).

Called by :mod:`workflows.engine` once per batch of observations. :func:`operate` never raises
for workflow-level failures: bad parameters, missing templates and exhausted retries end up as
node and workflow phases with messages. An exception from here is a bug in the engine.

Like Argo, each pass walks the tree from the entrypoint, creating nodes whose turn has come and
rolling finished children up into their parents. Completed nodes return at once, so a pass over a
large fan-out stays linear; expansions and template resolutions are memoized per run in ``memo``
(an optional dict the engine keeps between passes; the result is the same without it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from workflows.errors import WorkflowError
from workflows.executors.base import PodResult
from workflows.model.ids import NodeId
from workflows.model.spec import Arguments, LifecycleHook, Step, Template, Workflow
from workflows.model.status import (
    ArtifactRef,
    NodeIO,
    NodePhase,
    NodeStatus,
    NodeType,
    WorkflowPhase,
)
from workflows.resolution import TemplateGetter, TemplateScope, local_scope, resolve_template
from workflows.scheduling import gates, leaves
from workflows.scheduling.commands import (
    Command,
    Decision,
    LockAcquired,
    MemoLookedUp,
    Observation,
    PodFinished,
    PodReady,
    PodStarted,
    Resume,
    Run,
    StopPod,
    Tick,
    WakeAt,
)
from workflows.scheduling.scope import Scope, go_json, timestamp
from workflows.scheduling.stored import StoredGetter
from workflows.scheduling.tree import Tree, fulfilled

_LEAF_STOP = (NodeType.POD, NodeType.SUSPEND)
_DISPLAY_NAME = "workflows.argoproj.io/display-name"



@dataclass(slots=True, kw_only=True)
class Call:
    """How a template is invoked: by which node name, from which scope, with which arguments."""

    name: str
    target: Step | LifecycleHook | str
    holder: TemplateScope
    args: Arguments = field(default_factory=Arguments)
    boundary_id: NodeId | None = None
    display_name: str | None = None
    on_exit: bool = False
    hooked: bool = False
    path: str = "spec"
    local: dict[str, str] = field(default_factory=dict)  # steps.name / tasks.name of the calling step


def operate(
    run: Run,
    observed: Sequence[Observation],
    *,
    now: datetime,
    templates: TemplateGetter,
    memo: MutableMapping[Any, Any] | None = None,
) -> Decision:
    """Advance one workflow run by one reconciliation pass."""
    p = Pass(run, now=now, templates=templates, memo=memo if memo is not None else {})
    p.absorb(observed)
    p.run()
    return p.decision()


class Pass:
    """The state of one pass (Argo's wfOperationCtx): the tree, scopes, and the commands issued."""

    def __init__(self, run: Run, *, now: datetime, templates: TemplateGetter, memo: MutableMapping[Any, Any]) -> None:
        self.workflow: Workflow = run.workflow
        self.spec = run.workflow.spec
        meta = run.workflow.metadata
        self.name = meta.name or ""
        self.namespace = meta.namespace or "default"
        self.uid = meta.uid or ""
        self.now = now
        self.memo = memo
        self.status = run.status
        self.tree = Tree(self.name, run.status.nodes, now=now, memo=memo)
        self.stored = dict(run.status.stored_templates)
        self.getter = StoredGetter(templates, self.stored, memo=memo)
        self.commands: list[Command] = []
        self.wake: datetime | None = None
        self.finished: dict[str, PodResult] = {}
        self.ready: set[str] = set()
        self.resumes: list[Resume] = []
        self.memo_answers: dict[str, Mapping[str, Any] | None] = {}
        self.locks_granted: set[str] = set()
        self.full = bool(memo.get("full", True))
        base = memo.get("globals")
        if base is None or base[0] is not run.workflow:
            base = memo["globals"] = (run.workflow, self._global_params())
        self.global_params = dict(base[1])
        out = run.status.outputs or NodeIO()
        self.global_out_params: dict[str, str] = dict(out.parameters)
        self.global_out_artifacts: dict[str, ArtifactRef] = {a.name: a for a in out.artifacts}
        for name, value in self.global_out_params.items():
            self.global_params[f"workflow.outputs.parameters.{name}"] = value
        start = run.status.started_at or now
        self.global_params["workflow.duration"] = f"{(now - start).total_seconds():.6f}"
        self.global_params["workflow.status"] = (run.status.phase.value or "Running")
        self.shutdown = self.spec.shutdown
        self.deadline_exceeded = False
        # Parallelism limits met in this pass: loops skip the rest of their not-yet-created
        # children at once instead of trying each one (a 1,000-task DAG stays linear per pass).
        self.saturated: set[NodeId | None] = set()
        self.pods_full = False
        self.labels: dict[str, str] | None = None
        self.root = local_scope(run.workflow)
        self.phase = run.status.phase
        self.started_at = run.status.started_at
        self.finished_at = run.status.finished_at
        self.message = run.status.message

    # -- inputs --------------------------------------------------------------------------------

    def absorb(self, observed: Sequence[Observation]) -> None:
        """Fold observations into the tree, or park them for the walk that has the template."""
        for obs in observed:
            if isinstance(obs, PodStarted):
                node = self.tree.nodes.get(obs.node_id)
                if node is not None and node.phase is NodePhase.PENDING:
                    self.tree.mark(node, NodePhase.RUNNING)
            elif isinstance(obs, PodReady):
                node = self.tree.nodes.get(obs.node_id)
                if node is not None and not node.phase.completed:
                    self.tree.update(node, phase=NodePhase.RUNNING, daemoned=True, pod_ip=obs.ip)
                    self.ready.add(obs.node_id)
            elif isinstance(obs, PodFinished):
                node = self.tree.nodes.get(obs.node_id)
                if node is not None and not node.phase.completed:  # else: we stopped it and decided already
                    self.finished[obs.node_id] = obs.result
            elif isinstance(obs, Resume):
                self.resumes.append(obs)
            elif isinstance(obs, MemoLookedUp):
                self.memo_answers[obs.node_id] = obs.outputs
            elif isinstance(obs, LockAcquired):
                self.locks_granted.add(obs.node_id)
            elif isinstance(obs, Tick):
                self.full = True

    # -- output helpers ------------------------------------------------------------------------

    def command(self, command: Command) -> None:
        self.commands.append(command)

    def wake_at(self, at: datetime) -> None:
        if self.wake is None or at < self.wake:
            self.wake = at

    def decision(self) -> Decision:
        self.memo["full"] = False
        if self.wake is not None and not self.phase.completed:
            self.commands.append(WakeAt(at=self.wake))
        out = NodeIO(
            parameters=tuple(self.global_out_params.items()),
            artifacts=tuple(self.global_out_artifacts.values()),
        )
        status = replace(
            self.status,
            phase=self.phase,
            started_at=self.started_at,
            finished_at=self.finished_at,
            message=self.message,
            nodes=self.tree.seal(),
            outputs=None if out.empty else out,
            stored_templates=self.stored,
            progress=self.tree.progress,
        )
        return Decision(status=status, commands=tuple(self.commands), changed_nodes=frozenset(self.tree.changed),
                        labels=self.labels)

    # -- scopes --------------------------------------------------------------------------------

    def _global_params(self) -> dict[str, str]:
        meta = self.workflow.metadata
        g: dict[str, str] = {
            "workflow.name": self.name,
            "workflow.namespace": self.namespace,
            "workflow.uid": self.uid,
            "workflow.mainEntrypoint": self.spec.entrypoint or "",
            "workflow.serviceAccountName": str(self.spec.pod_fields.get("serviceAccountName", "")),
            "workflow.labels": go_json(dict(meta.labels)),
            "workflow.annotations": go_json(dict(meta.annotations)),
            "workflow.labels.json": go_json(dict(meta.labels)),
            "workflow.annotations.json": go_json(dict(meta.annotations)),
        }
        created = meta.creation_timestamp or self.now
        g["workflow.creationTimestamp"] = timestamp(created)
        for ch in "aAbBcCdDeFgGhHIjklmMnNpPrRsStTuUVwWxXyYzZ":
            try:
                g[f"workflow.creationTimestamp.{ch}"] = created.strftime(f"%{ch}")
            except ValueError:
                continue
        g["workflow.creationTimestamp.s"] = str(int(created.timestamp()))
        g["workflow.creationTimestamp.RFC3339"] = timestamp(created)
        for k, v in meta.labels.items():
            g[f"workflow.labels.{k}"] = v
        for k, v in meta.annotations.items():
            g[f"workflow.annotations.{k}"] = v
        if "priority" in self.spec.raw:
            g["workflow.priority"] = str(self.spec.raw["priority"])
        scheduled = meta.annotations.get("workflows.argoproj.io/scheduled-time")
        if scheduled:
            g["workflow.scheduledTime"] = scheduled
        params: list[dict[str, str]] = []
        for param in self.spec.arguments.parameters:
            value = param.value if param.value is not None else param.default
            if value is None:
                continue
            # Data, never re-scanned: a value from an event (a commit message holding "{{workflow.name}}")
            # must reach the step as written.
            g[f"workflow.parameters.{param.name}"] = value
            params.append({"name": param.name, "value": value})
        g["workflow.parameters"] = g["workflow.parameters.json"] = go_json(params)
        return g

    def set_global_output(self, params: Mapping[str, str], artifacts: Mapping[str, ArtifactRef]) -> None:
        for name, value in params.items():
            self.global_out_params[name] = value
            self.global_params[f"workflow.outputs.parameters.{name}"] = value
        self.global_out_artifacts.update(artifacts)

    def workflow_scope(self, inputs: NodeIO | None = None) -> Scope:
        """A steps/DAG scope to start from (Argo's createScope): globals, the template's inputs,
        and the workflow's global output artifacts."""
        scope = Scope(params=dict(self.global_params))
        for name, ref in self.global_out_artifacts.items():
            scope.artifacts[f"workflow.outputs.artifacts.{name}"] = ref
        if inputs is not None:
            for name, value in inputs.parameters:
                scope.params[f"inputs.parameters.{name}"] = value
            for art in inputs.artifacts:
                scope.artifacts[f"inputs.artifacts.{art.name}"] = art
        return scope

    # -- the walk ------------------------------------------------------------------------------

    def run(self) -> None:
        if self.phase.completed:
            self._drain_leftovers()
            return
        if self.phase in (WorkflowPhase.UNKNOWN, WorkflowPhase.PENDING):
            if not gates.locks_held(self, holder=self.tree.id_of(self.name), sync=self.spec.synchronization):
                self.phase = WorkflowPhase.PENDING
                self.message = "Waiting for a synchronization lock"
                return
            self.message = None
            self.phase = WorkflowPhase.RUNNING
            self.started_at = self.started_at or self.now
            self.labels = leaves.labels_from(self)
        deadline_hit = self.deadline_exceeded = self._check_workflow_deadline()
        if self.shutdown or deadline_hit:
            self._stop_everything(
                f"Stopped with strategy '{self.shutdown}'" if self.shutdown else "Step exceeded its deadline",
                keep_exit_handlers=self.shutdown != "Terminate",
            )
        entry_name = self.spec.entrypoint or ""
        entry = self.execute(Call(name=self.name, target=entry_name, holder=self.root,
                                  args=self.spec.arguments, path="spec.entrypoint"))
        if entry is None or not entry.phase.completed:
            self._drain_leftovers()
            return
        exit_node: NodeStatus | None = None
        handler = self._exit_handler()
        if handler is not None and self.shutdown != "Terminate":
            self._add_exit_globals(entry)
            exit_node = self.execute(Call(
                name=f"{self.name}.onExit", target=handler, holder=self.root,
                args=handler.arguments if isinstance(handler, LifecycleHook) else Arguments(),
                on_exit=True, hooked=True, path="spec.onExit",
            ))
            if exit_node is None or not exit_node.phase.completed:
                self._drain_leftovers()
                return
        self._complete(entry, exit_node)
        self._drain_leftovers()

    def _exit_handler(self) -> LifecycleHook | str | None:
        hook = self.spec.hooks.get("exit")
        if hook is not None:
            return hook
        return self.spec.on_exit

    def _add_exit_globals(self, entry: NodeStatus) -> None:
        status = entry.phase.value if entry.phase.failed or entry.phase is NodePhase.SUCCEEDED else "Succeeded"
        self.global_params["workflow.status"] = status
        failures = [
            {
                "displayName": n.display_name,
                "message": n.message or "",
                "templateName": n.template_name or "",
                "phase": n.phase.value,
                "podName": leaves.pod_name_of(self, n),
                "finishedAt": timestamp(n.finished_at) if n.finished_at else "",
            }
            for n in self.tree.nodes.values()
            if n.phase.failed
        ]
        self.global_params["workflow.failures"] = go_json(failures) if failures else "null"
        start = self.started_at or self.now
        self.global_params["workflow.duration"] = f"{(self.now - start).total_seconds():.6f}"

    def _complete(self, entry: NodeStatus, exit_node: NodeStatus | None) -> None:
        phase_of = {NodePhase.FAILED: WorkflowPhase.FAILED, NodePhase.ERROR: WorkflowPhase.ERROR}
        phase = phase_of.get(entry.phase, WorkflowPhase.SUCCEEDED)
        message = entry.message if entry.phase.failed else None
        if exit_node is not None and exit_node.phase.failed and phase is WorkflowPhase.SUCCEEDED:
            phase = WorkflowPhase.FAILED
            message = exit_node.message
        if self.shutdown and phase is not WorkflowPhase.SUCCEEDED:
            message = f"Stopped with strategy '{self.shutdown}'"
        self.phase = phase
        self.message = message
        self.finished_at = self.now
        gates.release_locks(self, holder=self.tree.id_of(self.name))

    def _check_workflow_deadline(self) -> bool:
        seconds = self.spec.active_deadline_seconds
        if seconds is None or self.started_at is None:
            return False
        deadline = self.started_at + timedelta(seconds=seconds)
        if self.now >= deadline:
            return True
        self.wake_at(deadline)
        return False

    def _stop_everything(self, message: str, *, keep_exit_handlers: bool) -> None:
        """Fail every running leaf (but exit handlers' when they may still run) and stop its pod."""
        exit_prefix = f"{self.name}.onExit"
        for node in list(self.tree.nodes.values()):
            if node.phase.completed or node.type not in _LEAF_STOP:
                continue
            if keep_exit_handlers and (node.name.startswith(exit_prefix) or ".onExit" in node.name):
                continue
            self.tree.mark(node, NodePhase.FAILED, message)
            self.finished.pop(node.id, None)
            if node.type is NodeType.POD:
                self.command(StopPod(node_id=node.id))

    def _drain_leftovers(self) -> None:
        """Results for nodes the walk did not reach (e.g. an aborted scope): record the phase."""
        for nid, result in list(self.finished.items()):
            node = self.tree.nodes.get(NodeId(nid))
            if node is None or node.phase.completed:
                continue
            phase = result.phase if result.phase.completed else NodePhase.ERROR
            self.tree.update(node, phase=phase, message=result.message,
                             finished_at=result.finished_at or self.now)
        self.finished.clear()

    # -- templates -----------------------------------------------------------------------------

    def resolve(self, call: Call) -> tuple[Template, TemplateScope]:
        key = ("resolve", call.holder.wire, _target_key(call.target))
        cached = self.memo.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        found = resolve_template(call.holder, call.target, self.getter,
                                 template_defaults=self.spec.template_defaults)
        if not isinstance(call.target, Step) or call.target.inline is None:
            self.memo[key] = found
        return found

    def execute(self, call: Call) -> NodeStatus | None:
        """Argo's executeTemplate: create or advance the node ``call.name``; None when it must wait."""
        node = self.tree.get(call.name)
        if node is not None and fulfilled(node) and (
                node.phase.completed or (node.id not in self.finished and node.type is not NodeType.RETRY)):
            return node
        if (node is not None and node.type is NodeType.POD and not node.phase.completed
                and node.id not in self.finished and not self.full):
            return node
        if node is None and self.shutdown and not (self.shutdown == "Stop" and call.on_exit):
            return self.tree.create(call.name, NodeType.SKIPPED, display_name=_display(call),
                                    boundary_id=call.boundary_id, phase=NodePhase.FAILED,
                                    message=f"Stopped with strategy '{self.shutdown}'", hooked=call.hooked)
        if node is None and self.deadline_exceeded and not call.on_exit:
            return self.tree.create(call.name, NodeType.SKIPPED, display_name=_display(call),
                                    boundary_id=call.boundary_id, phase=NodePhase.FAILED,
                                    message="Step exceeded its deadline", hooked=call.hooked)
        try:
            template, holder = self.resolve(call)
            if node is None and not leaves.parallelism_allows(self, call, leaf=template.is_leaf):
                return None
            processed = leaves.process_args(self, template, call, retries=None)
        except WorkflowError as e:
            return self._error_node(call, node, str(e))
        resolved_raw = processed.template.raw
        display = ((resolved_raw.get("annotations") or {}).get(_DISPLAY_NAME)
                   or (processed.template.metadata.get("annotations") or {}).get(_DISPLAY_NAME))
        if display:
            call.display_name = str(display)  # Argo's workflows.argoproj.io/display-name annotation
        resolved = processed.template
        if node is None:
            gate = gates.memo_gate(self, call, resolved)
            if gate is gates.WAITING:
                return None
            if isinstance(gate, NodeStatus):
                return gate
            if not gates.locks_held(self, holder=self.tree.id_of(call.name), sync=resolved.synchronization):
                return None
        if template.retry_strategy is not None and resolved.retry_strategy is not None:
            result = leaves.execute_retry(self, call, template, holder, processed, node)
        else:
            result = leaves.execute_body(self, call, template, holder, processed, node)
        return gates.after(self, call, resolved, result)

    def _error_node(self, call: Call, node: NodeStatus | None, message: str) -> NodeStatus:
        if node is None:
            return self.tree.create(call.name, NodeType.SKIPPED, display_name=_display(call),
                                    boundary_id=call.boundary_id, phase=NodePhase.ERROR, message=message,
                                    hooked=call.hooked)
        return self.tree.mark(node, NodePhase.ERROR, message)


def _display(call: Call) -> str:
    if call.display_name is not None:
        return call.display_name
    name = call.name
    return name.rsplit(".", 1)[-1] if "." in name else name


def _target_key(target: Step | LifecycleHook | str) -> str:
    if isinstance(target, str):
        return target
    ref = target.template_ref
    if ref is not None:
        return f"ref:{'cluster' if ref.cluster_scope else 'ns'}:{ref.name}:{ref.template}"
    if isinstance(target, Step) and target.inline is not None:
        return f"inline:{json.dumps(dict(target.inline.raw), sort_keys=True, default=str)}"
    return f"tmpl:{target.template}"


__all__ = ["Call", "Pass", "operate"]
