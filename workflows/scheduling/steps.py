"""
Steps templates: outer list sequential, inner list parallel, ``when``, loops and exit hooks.

Called by :func:`workflows.scheduling.leaves.execute_body` (Argo's executeSteps and
executeStepGroup). Step arguments are resolved against the outputs of earlier groups, then
expanded (``withItems``/``withParam``/``withSequence``), then each child is executed through
:meth:`Pass.execute`. Also home of the step/task exit-hook helper that :mod:`.dag` shares.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from workflows.errors import InvalidSpec, WorkflowError
from workflows.expressions import evaluate_when
from workflows.model import wire
from workflows.model.ids import NodeId
from workflows.model.spec import LifecycleHook, Step
from workflows.model.status import NodePhase, NodeStatus, NodeType
from workflows.resolution import TemplateScope
from workflows.scheduling import expansion, outputs
from workflows.scheduling.commands import StopPod
from workflows.scheduling.leaves import Processed, node_template_fields, open_scope
from workflows.scheduling.scope import Scope
from workflows.scheduling.tree import fulfilled
from workflows.templating import substitute

if TYPE_CHECKING:
    from workflows.scheduling.operator import Call, Pass

_SINGLE_TAG = re.compile(r"{{\s*([^{}=][^{}]*?)\s*}}")


FAIL_FAST_MESSAGE = "template has failed or errored children and failFast enabled"


def failed_fast(p: Pass, boundary_id: NodeId) -> bool:
    """Argo's checkParallelism failFast branch: a failFast template with a failed child and
    nothing left running under it fails instead of starting more children."""
    limits = p.memo.get(("boundary", boundary_id))
    return bool(limits and limits[1] and p.tree.unsuccessful_children[boundary_id] > 0
                and p.tree.active_children[boundary_id] == 0)


def continues_on(step: Step | None, phase: NodePhase) -> bool:
    """Does ``continueOn`` let the parent carry on although this child ended in ``phase``?"""
    if step is None or step.continue_on is None:
        return False
    return (phase is NodePhase.FAILED and step.continue_on.failed) or (
        phase is NodePhase.ERROR and step.continue_on.error)


def skipped_outputs(p: Pass, step: Step, holder: TemplateScope, *, prefix: str) -> dict[str, str | None]:
    """Outputs of a step that was skipped: each declared parameter's ``default``, else absent (None).

    An argument that refers to an absent output is left out, so the consumer's own input default
    applies; an expression sees nil (``?? 'fallback'``).
    """
    from workflows.scheduling.operator import Call

    try:
        template, _ = p.resolve(Call(name="", target=step, holder=holder))
    except WorkflowError:
        return {}
    out: dict[str, str | None] = {}
    for param in template.outputs.parameters:
        default = param.value_from.default if param.value_from is not None else None
        out[f"{prefix}.outputs.parameters.{param.name}"] = default
    return out


def _drop_absent_arguments(raw: dict[str, Any], scope: Scope) -> dict[str, Any]:
    args = raw.get("arguments")
    if not isinstance(args, dict) or not args.get("parameters"):
        return raw
    kept = []
    for param in args["parameters"]:
        value = param.get("value") if isinstance(param, dict) else None
        m = _SINGLE_TAG.fullmatch(value) if isinstance(value, str) else None
        if m and m.group(1) in scope.params and scope.params[m.group(1)] is None:
            continue
        kept.append(param)
    return {**raw, "arguments": {**args, "parameters": kept}}


def resolve_step(p: Pass, step: Step, scope: Scope, *, path: str, kind: str = "steps") -> Step:
    """Argo's resolveReferences: substitute the scope into a step and resolve its artifact ``from``s."""
    mapping = {**p.global_params, **scope.params, f"{kind}.name": step.name}
    raw = substitute(_drop_absent_arguments(dict(step.raw), scope), mapping, allow_unresolved=True)
    resolved = wire.parse_step(raw, path=path)
    if resolved.when and "{{" not in resolved.when and not resolved.expands:
        try:
            if not evaluate_when(resolved.when):
                return resolved
        except WorkflowError:
            pass
    arts = []
    for art in resolved.arguments.artifacts:
        if art.from_ is None and art.from_expression is None:
            arts.append(art)
            continue
        ref = outputs.resolve_artifact(art, scope)
        if ref is None:
            if art.optional:
                continue
            raise InvalidSpec(f"{path}.arguments.artifacts.{art.name}",
                              f"unable to resolve references: {art.from_ or art.from_expression}")
        arts.append(outputs.artifact_from_ref(art, ref))
    return replace(resolved, arguments=replace(resolved.arguments, artifacts=tuple(arts)))


def kill_daemons(p: Pass, boundary_id: str) -> None:
    """A scope ended: its daemons are stopped and marked Succeeded."""
    for node in list(p.tree.nodes.values()):
        if node.boundary_id == boundary_id and node.daemoned and not node.phase.completed:
            p.tree.mark(node, NodePhase.SUCCEEDED)
            if node.type is NodeType.POD:
                p.command(StopPod(node_id=node.id))


def exit_hook_of(step: Step) -> LifecycleHook | None:
    hook = step.hooks.get("exit")
    if hook is not None:
        return hook
    if step.on_exit:
        return LifecycleHook(template=step.on_exit)
    return None


def run_exit_hook(p: Pass, step: Step, child: NodeStatus, *, prefix: str, scope: Scope, holder: TemplateScope,
                  boundary_id: NodeId, path: str) -> NodeStatus | None:
    """Run a step's or task's exit hook once the child completed; None while it cannot start."""
    from workflows.scheduling.operator import Call

    hook = exit_hook_of(step)
    if hook is None:
        return child
    local = scope.copy()
    local.add_node(prefix, child, p.tree.nodes)
    args = hook.arguments
    if args.parameters or args.artifacts:
        raw_args = wire.parse_arguments(
            substitute({"parameters": [{"name": a.name, "value": a.value}
                                        for a in args.parameters if a.value is not None],
                        "artifacts": []},
                       {**p.global_params, **local.params}, allow_unresolved=True),
            path=f"{path}.hooks.exit.arguments",
        )
        arts = []
        for art in args.artifacts:
            ref = outputs.resolve_artifact(art, local) if (art.from_ or art.from_expression) else None
            arts.append(outputs.artifact_from_ref(art, ref) if ref is not None else art)
        args = replace(raw_args, artifacts=tuple(arts))
    name = f"{child.name}.onExit"
    existed = p.tree.get(name) is not None
    hook_node = p.execute(Call(name=name, target=hook, holder=holder, args=args, boundary_id=boundary_id,
                               display_name=f"{child.display_name}.onExit", hooked=True, on_exit=True,
                               path=f"{path}.hooks.exit"))
    if hook_node is not None and not existed:
        p.tree.add_child(child, hook_node.id)
    return hook_node


def execute_steps(p: Pass, call: Call, holder: TemplateScope, processed: Processed,
                  node: NodeStatus | None) -> NodeStatus | None:
    template = processed.template
    node = open_scope(p, call, holder, processed, node, NodeType.STEPS)
    if node is None:
        return None
    scope = p.workflow_scope(processed.inputs)
    last_group: NodeStatus | None = None
    for i, group in enumerate(template.steps):
        sg_name = f"{call.name}[{i}]"
        sg = p.tree.get(sg_name)
        if sg is None:
            sg = p.tree.create(sg_name, NodeType.STEP_GROUP, display_name=f"[{i}]", boundary_id=node.id,
                               phase=NodePhase.RUNNING, **node_template_fields(holder, template))
            if last_group is None:
                p.tree.add_child(node, sg.id)
            elif not last_group.children:
                p.tree.add_child(last_group, sg.id)
            else:
                for child_id in last_group.children:
                    for out in p.tree.outbound(child_id):
                        p.tree.add_child(out, sg.id)
        sg = _execute_group(p, group, sg, scope=scope, steps_node=node, holder=holder, path=f"{call.path}.steps[{i}]")
        last_group = p.tree.by_id(sg.id)
        if not sg.phase.completed:
            return p.tree.by_id(node.id)
        if sg.phase.failed:
            _set_outbound(p, node, last_group)
            kill_daemons(p, node.id)
            return p.tree.mark(node, NodePhase.FAILED, sg.message)
        _add_group_scope(p, group, sg, scope, holder)
    if last_group is not None:
        _set_outbound(p, node, last_group)
    collected = outputs.from_scope(template, scope)
    kill_daemons(p, node.id)
    if collected.error:
        return p.tree.mark(node, NodePhase.ERROR, collected.error)
    if not collected.outputs.empty:
        node = p.tree.update(node, outputs=collected.outputs)
        p.set_global_output(*outputs.global_outputs(template, collected.outputs))
    return p.tree.mark(node, NodePhase.SUCCEEDED)


def _set_outbound(p: Pass, node: NodeStatus, last_group: NodeStatus) -> None:
    out: list[str] = []
    for child_id in last_group.children:
        out.extend(p.tree.outbound(child_id))
    if tuple(out) != p.tree.by_id(node.id).outbound_nodes:
        p.tree.update(node, outbound_nodes=tuple(out))


def _add_group_scope(p: Pass, group: tuple[Step, ...], sg: NodeStatus, scope: Scope, holder: TemplateScope) -> None:
    key = ("group-scope", sg.id)
    cached: Scope | None = p.memo.get(key)
    if cached is None:
        cached = Scope()
        for step in group:
            child_name = f"{sg.name}.{step.name}"
            prefix = f"steps.{step.name}"
            child = p.tree.get(child_name)
            if child is not None and not (step.expands and child.type is NodeType.SKIPPED):
                cached.add_node(prefix, child, p.tree.nodes)
                if child.phase is NodePhase.SKIPPED:
                    cached.params.update(skipped_outputs(p, step, holder, prefix=prefix))
                continue
            lead = child_name + "("
            kids = [p.tree.by_id(c) for c in sg.children]
            kids = [k for k in kids if k.name.startswith(lead) and k.type is not NodeType.SKIPPED]
            if kids or step.expands:
                cached.add_aggregate(prefix, kids, p.tree.nodes)
        p.memo[key] = cached
    scope.params.update(cached.params)
    scope.artifacts.update(cached.artifacts)


def _expand_group(p: Pass, group: tuple[Step, ...], sg: NodeStatus, *, scope: Scope,
                  path: str) -> list[tuple[str, str, Step, Step]]:
    key = ("group", sg.id)
    cached: list[tuple[str, str, Step, Step]] | None = p.memo.get(key)
    if cached is not None:
        return cached
    out: list[tuple[str, str, Step, Step]] = []
    for j, step in enumerate(group):
        resolved = resolve_step(p, step, scope, path=f"{path}[{j}]")
        if not step.expands:
            out.append((f"{sg.name}.{step.name}", step.name, resolved, step))
            continue
        kids = expansion.expand(resolved, path=f"{path}[{j}]")
        if not kids:
            name = f"{sg.name}.{step.name}"
            if p.tree.get(name) is None:
                skipped = p.tree.create(name, NodeType.SKIPPED, display_name=step.name, boundary_id=sg.boundary_id,
                                        phase=NodePhase.SKIPPED, message="Skipped, empty params")
                p.tree.add_child(sg, skipped.id)
            continue
        out.extend((f"{sg.name}.{k.name}", k.name, k.step, step) for k in kids)
    p.memo[key] = out
    return out


def _execute_group(p: Pass, group: tuple[Step, ...], sg: NodeStatus, *, scope: Scope, steps_node: NodeStatus,
                   holder: TemplateScope, path: str) -> NodeStatus:
    from workflows.scheduling.operator import Call

    if sg.phase.completed:
        return sg
    try:
        expanded = _expand_group(p, group, sg, scope=scope, path=path)
    except WorkflowError as e:
        return p.tree.mark(sg, NodePhase.ERROR, str(e))
    step_of: dict[str, Step] = {}
    waiting = False
    new_children: list[NodeId] = []
    for child_name, display, step, original in expanded:
        step_of[child_name] = original
        child = p.tree.get(child_name)
        if child is None and (p.pods_full or steps_node.id in p.saturated):
            waiting = True  # a parallelism limit is met: no new child this pass
            continue
        if child is None and step.when:
            try:
                proceed = evaluate_when(step.when)
            except WorkflowError as e:
                bad = p.tree.create(child_name, NodeType.SKIPPED, display_name=display, boundary_id=steps_node.id,
                                    phase=NodePhase.ERROR, message=str(e))
                p.tree.add_child(sg, bad.id)
                return p.tree.mark(sg, NodePhase.ERROR, str(e))
            if not proceed:
                skipped = p.tree.create(child_name, NodeType.SKIPPED, display_name=display, boundary_id=steps_node.id,
                                        phase=NodePhase.SKIPPED, message=f"when '{step.when}' evaluated false")
                p.tree.add_child(sg, skipped.id)
                continue
        created = child is None
        child = p.execute(Call(name=child_name, target=step, holder=holder, args=step.arguments,
                               boundary_id=steps_node.id, display_name=display, path=path,
                               local={"steps.name": display}))
        if child is None:
            waiting = True  # not created yet (parallelism, a lock, the memo cache): the group goes on
        elif created:
            new_children.append(child.id)
    if new_children:
        p.tree.add_children(sg, new_children)  # once: a 10,000-item group stays linear
    sg = p.tree.by_id(sg.id)
    if waiting and failed_fast(p, steps_node.id):
        return p.tree.mark(sg, NodePhase.FAILED, FAIL_FAST_MESSAGE)
    completed = not waiting
    for child_id in sg.children:
        child = p.tree.by_id(child_id)
        if not fulfilled(child):
            completed = False
        elif child.phase.completed and child.type is not NodeType.SKIPPED:
            hooked_step = step_of.get(child.name)
            if hooked_step is not None and exit_hook_of(hooked_step) is not None:
                hook = run_exit_hook(p, hooked_step, child, prefix=f"steps.{hooked_step.name}", scope=scope,
                                     holder=holder, boundary_id=steps_node.id, path=path)
                if hook is None or not fulfilled(hook):
                    completed = False
    if not completed:
        return sg
    for child_id in sg.children:
        child = p.tree.by_id(child_id)
        if child.phase.failed and not continues_on(step_of.get(child.name), child.phase):
            return p.tree.mark(sg, NodePhase.FAILED, f"child '{child.id}' failed")
    return p.tree.mark(sg, NodePhase.SUCCEEDED)


