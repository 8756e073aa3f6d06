"""
Invoking one template: arguments into inputs, then a pod, a suspend, a retry loop, or a subtree.

Called by :meth:`workflows.scheduling.operator.Pass.execute` (Argo's executeTemplate and
ProcessArgs, executeContainer, executeSuspend and processNodeRetries). Pure: pods are started by
issuing :class:`StartPod` commands, their results arrive as observations on later passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from workflows.errors import InvalidSpec, WorkflowError
from workflows.executors.base import PodRequest
from workflows.expressions import evaluate
from workflows.model import wire
from workflows.model.durations import parse_duration
from workflows.model.ids import pod_name
from workflows.model.spec import Artifact, Template, TemplateKind
from workflows.model.status import NodeIO, NodePhase, NodeStatus, NodeType
from workflows.resolution import TemplateScope
from workflows.scheduling import outputs, retries
from workflows.scheduling.commands import StartPod, StopPod
from workflows.scheduling.pods import build_pod
from workflows.scheduling.scope import Scope, go_json
from workflows.templating import expression_env, substitute

if TYPE_CHECKING:
    from workflows.scheduling.operator import Call, Pass

_POD_KINDS: Final = (TemplateKind.CONTAINER, TemplateKind.SCRIPT, TemplateKind.CONTAINER_SET)
_STRICT: Final = re.compile(
    r"{{\s*(=|inputs\.|outputs\.|steps\.|tasks\.|workflow\.|item\b|pod\.|node\.|retries\b|lastRetry\.)[^{}]*}}"
)
DEADLINE_MESSAGE: Final = "Pod was active on the node longer than the specified deadline"


@dataclass(frozen=True, slots=True, kw_only=True)
class Processed:
    """A template with its arguments applied and variables substituted (Argo's ProcessArgs)."""

    template: Template
    artifacts: tuple[Artifact, ...]
    inputs: NodeIO


def process_args(p: Pass, template: Template, call: Call, *, retries: int | None) -> Processed:
    """Inputs from arguments and defaults, then every known variable substituted into the template."""
    key = ("processed", call.name, retries)
    cached = p.memo.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    g = p.global_params
    values: list[tuple[str, str]] = []
    for param in template.inputs.parameters:
        value: str | None = None
        if param.value is not None:
            value = substitute(param.value, g, allow_unresolved=True)
        elif param.default is not None:
            value = substitute(param.default, g, allow_unresolved=True)
        arg = call.args.parameter(param.name)
        if arg is not None and arg.value is not None:
            value = arg.value
        if value is None:
            raise InvalidSpec(f"inputs.parameters.{param.name}", "was not supplied")
        if param.enum and value not in param.enum:
            raise InvalidSpec(f"inputs.parameters.{param.name}", f"value '{value}' is not one of {list(param.enum)}")
        values.append((param.name, value))
    if template.name and not _has_tags(p, template):
        new = template  # nothing to substitute: re-parsing would rebuild the very same template
    else:
        new = _substituted(p, template, call, values=values, retries=retries)
    arts = _input_artifacts(new, call)
    if new is not template and new.kind in _POD_KINDS and (retries is not None or new.retry_strategy is None):
        _check_resolved(new, written=template)  # a retried one is checked per attempt, once `retries` is known
    inputs = NodeIO(
        parameters=tuple(values),
        artifacts=tuple(outputs.ref_of(a) for a in arts),
    )
    processed = Processed(template=new, artifacts=tuple(arts), inputs=inputs)
    p.memo[key] = processed
    return processed


def _substituted(p: Pass, template: Template, call: Call, *, values: list[tuple[str, str]],
                 retries: int | None) -> Template:
    """The template with every known variable substituted, parsed again."""
    g = p.global_params
    mapping: dict[str, str] = dict(g)
    mapping["node.name"] = call.name
    mapping.update(call.local)
    if template.is_leaf:
        mapping["pod.name"] = pod_name(p.name, call.name, template.name)
    if retries is not None:
        mapping["retries"] = str(retries)
    for name, value in values:
        mapping[f"inputs.parameters.{name}"] = value
    mapping["inputs.parameters"] = go_json([{"name": n, "value": v} for n, v in values])
    for art in template.inputs.artifacts:
        if art.path:
            mapping[f"inputs.artifacts.{art.name}.path"] = art.path
    for out_art in template.outputs.artifacts:
        if out_art.path:
            mapping[f"outputs.artifacts.{out_art.name}.path"] = out_art.path
    for out_param in template.outputs.parameters:
        if out_param.value_from is not None and out_param.value_from.path:
            mapping[f"outputs.parameters.{out_param.name}.path"] = out_param.value_from.path
    raw = substitute(dict(template.raw), mapping, allow_unresolved=True)
    if not template.name:
        raw["name"] = call.name
    return wire.parse_template(raw, path=call.path, require_name=False)


def _has_tags(p: Pass, template: Template) -> bool:
    """Whether the template holds any ``{{`` at all (checked once per template object)."""
    key = ("has-tags", id(template))
    cached = p.memo.get(key)
    if cached is None or cached[0] is not template:  # the object itself is kept, so its id is not reused
        cached = p.memo[key] = (template, "{{" in json.dumps(dict(template.raw), default=str))
    return bool(cached[1])


def _input_artifacts(template: Template, call: Call) -> list[Artifact]:
    """Input artifacts with their location: from the call's arguments, else the template's own."""
    arts: list[Artifact] = []
    for art in template.inputs.artifacts:
        given = next((a for a in call.args.artifacts if a.name == art.name), None)
        if given is not None and given.has_location and given.from_ is None:
            arts.append(replace(
                art, key=given.key, raw_data=given.raw_data, git=given.git, http_url=given.http_url,
                archive_none=given.archive_none, sub_path=given.sub_path or art.sub_path, from_=None,
            ))
        elif art.has_location and art.from_ is None:
            arts.append(art)
        elif not art.optional:
            raise InvalidSpec(f"inputs.artifacts.{art.name}", "was not supplied")
    return arts


def _check_resolved(template: Template, *, written: Template) -> None:
    """A pod may not start with a ``{{...}}`` Argo would have resolved left in its spec.

    Only tags the template itself was written with count: a value substituted in (a commit
    message holding ``{{workflow.name}}``) is data and stays as it is.
    """
    original = "".join(repr(dict(b)) for b in _bodies(written))
    for body in _bodies(template):
        for match in _STRICT.finditer(repr(dict(body))):
            if match.group(0) in original:
                raise InvalidSpec("", f"failed to resolve {match.group(0)}")


def _bodies(template: Template) -> list[Mapping[str, Any]]:
    return [b for b in (template.container, template.container_set, *template.sidecars, *template.init_containers)
            if b]


def inputs_scope(p: Pass, inputs: NodeIO) -> Scope:
    scope = Scope(params=dict(p.global_params))
    for name, value in inputs.parameters:
        scope.params[f"inputs.parameters.{name}"] = value
    for art in inputs.artifacts:
        scope.artifacts[f"inputs.artifacts.{art.name}"] = art
    return scope


def execute_body(p: Pass, call: Call, template: Template, holder: TemplateScope, processed: Processed,
                 node: NodeStatus | None) -> NodeStatus | None:
    """Run a template that is not (or no longer) wrapped in a retry loop."""
    from workflows.scheduling import dag, steps

    kind = processed.template.kind
    if kind in _POD_KINDS:
        return execute_pod(p, call, holder, processed, node)
    if kind is TemplateKind.STEPS:
        return steps.execute_steps(p, call, holder, processed, node)
    if kind is TemplateKind.DAG:
        return dag.execute_dag(p, call, holder, processed, node)
    if kind is TemplateKind.SUSPEND:
        return execute_suspend(p, call, holder, processed, node)
    message = f"{kind.value} templates are not supported by this engine"
    if node is None:
        return p.tree.create(call.name, NodeType.SKIPPED, display_name=_display(call), boundary_id=call.boundary_id,
                             phase=NodePhase.ERROR, message=message, hooked=call.hooked)
    return p.tree.mark(node, NodePhase.ERROR, message)


def _display(call: Call) -> str:
    return call.display_name if call.display_name is not None else call.name


def node_template_fields(holder: TemplateScope, template: Template) -> dict[str, Any]:
    ref = holder.template_ref
    if ref is not None:
        return {"template_ref": {**ref, "template": template.name}, "template_scope": holder.wire,
                "template_name": None}
    return {"template_name": template.name or None, "template_scope": holder.wire, "template_ref": None}


def parallelism_allows(p: Pass, call: Call, *, leaf: bool) -> bool:
    """Argo's checkParallelism for a node about to be created."""
    if leaf and p.spec.parallelism is not None and p.tree.active_pods >= p.spec.parallelism:
        p.pods_full = True
        return False
    if call.boundary_id is not None:
        limits = p.memo.get(("boundary", call.boundary_id))
        if limits is not None:
            limit, fail_fast = limits
            if (fail_fast and p.tree.unsuccessful_children[call.boundary_id] > 0) or (
                    limit is not None and p.tree.active_children[call.boundary_id] >= limit):
                p.saturated.add(call.boundary_id)
                return False
    return True


def register_boundary(p: Pass, node: NodeStatus, template: Template) -> None:
    """Remember a steps/DAG node's parallelism and failFast for its children's checks."""
    limit: int | None = None
    if template.parallelism is not None:
        try:
            limit = int(template.parallelism)
        except ValueError:
            raise InvalidSpec("parallelism", f"must be an integer, got {template.parallelism!r}") from None
    p.memo[("boundary", node.id)] = (limit, bool(template.fail_fast))


def open_scope(p: Pass, call: Call, holder: TemplateScope, processed: Processed, node: NodeStatus | None,
               type_: NodeType) -> NodeStatus | None:
    """The Steps or DAG node of a call, created Running when its turn has come (None: not yet);
    its parallelism and failFast are registered for its children's checks."""
    if node is None:
        if not parallelism_allows(p, call, leaf=False):
            return None
        node = p.tree.create(call.name, type_, display_name=call.display_name or call.name,
                             boundary_id=call.boundary_id, phase=NodePhase.RUNNING, hooked=call.hooked,
                             inputs=None if processed.inputs.empty else processed.inputs,
                             **node_template_fields(holder, processed.template))
    register_boundary(p, node, processed.template)
    return node


def _pod_deadline(template: Template, node: NodeStatus, *, path: str) -> datetime | None:
    seconds: list[timedelta] = []
    if template.active_deadline_seconds is not None:
        seconds.append(parse_duration(template.active_deadline_seconds, path=f"{path}.activeDeadlineSeconds"))
    if template.timeout is not None:
        seconds.append(parse_duration(template.timeout, path=f"{path}.timeout"))
    if not seconds or node.started_at is None:
        return None
    return node.started_at + min(seconds)


def execute_pod(p: Pass, call: Call, holder: TemplateScope, processed: Processed,
                node: NodeStatus | None) -> NodeStatus | None:
    template = processed.template
    if node is None:
        if p.spec.suspend or not parallelism_allows(p, call, leaf=True):
            return None
        node = p.tree.create(call.name, NodeType.POD, display_name=_display(call), boundary_id=call.boundary_id,
                             hooked=call.hooked, inputs=None if processed.inputs.empty else processed.inputs,
                             **node_template_fields(holder, template))
        p.command(StartPod(pod=_pod_for(p, call, processed, node)))
        deadline = _pod_deadline(template, node, path=call.path)
        if deadline is not None:
            p.wake_at(deadline)
        return node
    if p.memo.get("reattach") and not node.phase.completed and node.id not in p.finished:
        p.command(StartPod(pod=_pod_for(p, call, processed, node)))
    result = p.finished.pop(node.id, None)
    if result is not None:
        collected = outputs.from_pod(template, result, scope=inputs_scope(p, processed.inputs))
        phase, message = result.phase, result.message
        if collected.error and phase is NodePhase.SUCCEEDED:
            phase, message = NodePhase.ERROR, collected.error
        node = p.tree.update(
            node, phase=phase, message=message, outputs=None if collected.outputs.empty else collected.outputs,
            finished_at=result.finished_at or p.now, pod_ip=result.pod_ip or node.pod_ip,
            host_node_name=result.host_node_name or node.host_node_name,
        )
        if phase is NodePhase.SUCCEEDED:
            p.set_global_output(*outputs.global_outputs(template, collected.outputs))
        return node
    deadline = _pod_deadline(template, node, path=call.path)
    if deadline is not None and not node.phase.completed:
        if p.now >= deadline:
            node = p.tree.mark(node, NodePhase.FAILED, DEADLINE_MESSAGE)
            p.command(StopPod(node_id=node.id))
        else:
            p.wake_at(deadline)
    return node


def _pod_for(p: Pass, call: Call, processed: Processed, node: NodeStatus) -> PodRequest:
    template = processed.template
    name = pod_name(p.name, call.name, template.name)
    labels = {
        "workflows.argoproj.io/workflow": p.name,
        **{str(k): str(v) for k, v in (template.metadata.get("labels") or {}).items()},
    }
    annotations = {
        "workflows.argoproj.io/node-name": call.name,
        "workflows.argoproj.io/node-id": node.id,
        **{str(k): str(v) for k, v in (template.metadata.get("annotations") or {}).items()},
    }
    pod = build_pod(template, spec=p.spec, node_id=node.id, pod_name=name, namespace=p.namespace,
                    workflow_name=p.name, workflow_uid=p.uid, attempt=_attempt_of(call.name),
                    input_artifacts=processed.artifacts, labels=labels, annotations=annotations, path=call.path,
                    global_params=p.global_params)
    hosts = _failed_hosts(p, call, template)
    return replace(pod, avoid_hosts=hosts) if hosts else pod


def _failed_hosts(p: Pass, call: Call, template: Template) -> tuple[str, ...]:
    """Argo's RetryOnDifferentHost: the machines where earlier attempts of this retry failed."""
    strategy = template.retry_strategy
    if strategy is None or (strategy.affinity or {}).get("nodeAntiAffinity") is None:
        return ()
    m = re.search(r"\(\d+\)$", call.name)
    retry = p.tree.get(call.name[: m.start()]) if m else None
    if retry is None:
        return ()
    hosts: list[str] = []
    for attempt in p.tree.children(retry):
        if attempt.phase.failed and attempt.host_node_name and attempt.host_node_name not in hosts:
            hosts.append(attempt.host_node_name)
    return tuple(hosts)


def _attempt_of(name: str) -> int:
    m = re.search(r"\((\d+)\)$", name)
    return int(m.group(1)) if m else 0


def execute_suspend(p: Pass, call: Call, holder: TemplateScope, processed: Processed,
                    node: NodeStatus | None) -> NodeStatus | None:
    template = processed.template
    if node is None:
        node = p.tree.create(call.name, NodeType.SUSPEND, display_name=_display(call), boundary_id=call.boundary_id,
                             phase=NodePhase.RUNNING, hooked=call.hooked, **node_template_fields(holder, template))
        node = p.tree.update(node, inputs=None if processed.inputs.empty else processed.inputs)
    if node.phase.completed:
        return node
    for resume in p.resumes:
        if resume.node_names and not {call.name, node.display_name, node.id} & set(resume.node_names):
            continue
        collected = outputs.from_scope(template, inputs_scope(p, processed.inputs), supplied=resume.output_parameters)
        if collected.error and not resume.fail:
            return p.tree.mark(node, NodePhase.ERROR, collected.error)
        phase = NodePhase.FAILED if resume.fail else NodePhase.SUCCEEDED
        node = p.tree.update(node, outputs=None if collected.outputs.empty else collected.outputs)
        p.set_global_output(*outputs.global_outputs(template, collected.outputs))
        return p.tree.mark(node, phase, resume.message)
    if template.suspend_duration:
        duration = parse_duration(template.suspend_duration, path=f"{call.path}.suspend.duration")
        until = (node.started_at or p.now) + duration
        if p.now >= until:
            collected = outputs.from_scope(template, inputs_scope(p, processed.inputs), supplied={})
            node = p.tree.update(node, outputs=None if collected.outputs.empty else collected.outputs)
            return p.tree.mark(node, NodePhase.SUCCEEDED)
        p.wake_at(until)
    return node


def execute_retry(p: Pass, call: Call, template: Template, holder: TemplateScope, processed: Processed,
                  node: NodeStatus | None) -> NodeStatus | None:
    """Argo's processNodeRetries around attempts named ``<node>(0)``, ``<node>(1)``, ..."""
    from workflows.scheduling.operator import Call as CallT

    strategy = processed.template.retry_strategy
    assert strategy is not None
    if node is None:
        if not parallelism_allows(p, call, leaf=processed.template.is_leaf):
            return None
        node = p.tree.create(call.name, NodeType.RETRY, display_name=_display(call), boundary_id=call.boundary_id,
                             phase=NodePhase.RUNNING, hooked=call.hooked,
                             **node_template_fields(holder, processed.template))
        node = p.tree.update(node, inputs=None if processed.inputs.empty else processed.inputs)

    def attempt(index: int, existing: NodeStatus | None) -> NodeStatus | None:
        local = dict(call.local)
        previous = attempts[index - 1] if 0 < index <= len(attempts) else None
        local.update(retries.last_retry_env(previous) if previous is not None else {
            "lastRetry.exitCode": "0", "lastRetry.status": "", "lastRetry.duration": "", "lastRetry.message": ""})
        sub = CallT(name=f"{call.name}({index})", target=call.target, holder=call.holder, args=call.args,
                    boundary_id=call.boundary_id, display_name=f"{_display(call)}({index})",
                    on_exit=call.on_exit, hooked=call.hooked, path=call.path, local=local)
        processed_i = process_args(p, template, sub, retries=index)
        return execute_body(p, sub, template, holder, processed_i, existing)

    attempts = [p.tree.by_id(c) for c in node.children]
    if attempts and (not attempts[-1].phase.completed or attempts[-1].id in p.finished):
        try:
            current = attempt(len(attempts) - 1, attempts[-1])
        except WorkflowError as e:
            return p.tree.mark(node, NodePhase.ERROR, str(e))
        if current is not None:
            attempts[-1] = current
    last = attempts[-1] if attempts else None
    if last is not None and last.daemoned and not last.phase.completed:
        return p.tree.update(node, daemoned=True, pod_ip=last.pod_ip)
    if p.shutdown and last is not None and last.phase.failed:
        return p.tree.mark(node, last.phase, f"Stopped with strategy '{p.shutdown}'")  # no new attempt
    if p.deadline_exceeded and last is not None and last.phase.failed:
        return p.tree.mark(node, last.phase, "retry exceeded workflow deadline")
    scope = inputs_scope(p, processed.inputs)
    if last is not None:
        scope.params.update(retries.last_retry_env(last))
    try:
        verdict = retries.decide(strategy, attempts=attempts, now=p.now, env=expression_env(scope.params),
                                 path=f"{call.path}.retryStrategy")
    except WorkflowError as e:
        return p.tree.mark(node, NodePhase.ERROR, str(e))
    if isinstance(verdict, retries.Succeed):
        assert last is not None
        node = p.tree.update(node, outputs=last.outputs)
        return p.tree.mark(node, NodePhase.SUCCEEDED)
    if isinstance(verdict, retries.GiveUp):
        return p.tree.mark(node, verdict.phase, verdict.message)
    if isinstance(verdict, retries.Wait):
        if verdict.until is not None:
            p.wake_at(verdict.until)
        if verdict.message and verdict.message != node.message:
            node = p.tree.update(node, message=verdict.message)
        return node
    if processed.template.is_leaf and not parallelism_allows(p, call, leaf=True):
        return node
    try:
        child = attempt(verdict.index, None)
    except WorkflowError as e:
        return p.tree.mark(node, NodePhase.ERROR, str(e))
    if child is not None:
        p.tree.add_child(node, child.id)
        if node.message:
            p.tree.update(node, message=None)
    return p.tree.by_id(node.id)


def labels_from(p: Pass) -> dict[str, str] | None:
    """``workflowMetadata.labelsFrom``: labels computed by expressions when the run starts."""
    meta = p.workflow.workflow_metadata or {}
    sources = meta.get("labelsFrom") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    env = expression_env(p.global_params)
    for label, spec in sources.items():
        expression = (spec or {}).get("expression") if isinstance(spec, Mapping) else None
        if not expression:
            continue
        try:
            value = evaluate(str(expression), env)
        except WorkflowError:
            continue
        labels[str(label)] = value if isinstance(value, str) else go_json(value)
    return labels or None


def pod_name_of(p: Pass, node: NodeStatus) -> str:
    template = node.template_name or (node.template_ref or {}).get("template") or ""
    return pod_name(p.name, node.name, str(template))
