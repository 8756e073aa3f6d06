"""
DAG templates: dependencies and ``depends`` logic, ``target``, fan-out tasks, failFast and phase.

Called by :func:`workflows.scheduling.leaves.execute_body` (Argo's executeDAG, executeDAGTask and
assessDAGPhase). Task nodes are named ``<dag node>.<task>``; expanded tasks get a TaskGroup node
with children ``<dag node>.<task>(i:item)``. Successors hang from their dependencies' outbound
nodes, so the node graph is the DAG and the phase is assessed by walking it, as Argo does.
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workflows import jsontext
from workflows.errors import InvalidSpec, WorkflowError
from workflows.expressions import evaluate_when, parse_depends
from workflows.model.ids import NodeId
from workflows.model.spec import Step, Template
from workflows.model.status import NodeIO, NodePhase, NodeStatus, NodeType
from workflows.resolution import TemplateScope
from workflows.scheduling import expansion, outputs
from workflows.scheduling.leaves import Processed, node_template_fields, open_scope, parallelism_allows
from workflows.scheduling.scope import Scope
from workflows.scheduling.steps import (
    FAIL_FAST_MESSAGE,
    continues_on,
    exit_hook_of,
    failed_fast,
    kill_daemons,
    resolve_step,
    run_exit_hook,
    skipped_outputs,
)
from workflows.scheduling.tree import fulfilled

if TYPE_CHECKING:
    from workflows.scheduling.operator import Call, Pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Shape:
    """What a DAG template's tasks look like; computed once per template and memoized."""

    tasks: dict[str, Step]
    deps: dict[str, tuple[str, ...]]
    logic: dict[str, Any]  # task -> parsed depends expression (None: no dependencies)
    targets: tuple[str, ...]
    order: dict[str, int]  # the targets' ancestors and themselves, in Argo's visiting order (deps first)
    dependents: dict[str, tuple[str, ...]]  # within ``order``


@dataclass(slots=True)
class Frontier:
    """Which tasks of one DAG node a pass must look at, so a pass costs what can change.

    ``active``: tasks with a node that is not settled yet (visited every pass). ``heap``: tasks
    without a node that may be startable, by visiting order; a task is pushed when its last
    dependency is done (and once, at the start, every task: a resumed run's nodes are found
    so). A task blocked on a dependency leaves the heap until that dependency is done.
    """

    active: dict[str, None] = field(default_factory=dict)
    heap: list[tuple[int, str]] = field(default_factory=list)
    queued: set[str] = field(default_factory=set)
    released: set[str] = field(default_factory=set)  # tasks whose dependents were pushed


@dataclass(slots=True, kw_only=True)
class Ctx:
    p: Pass
    call: Call
    holder: TemplateScope
    node: NodeStatus
    shape: Shape
    template: Template
    inputs: NodeIO | None = None
    settled: set[str] = field(default_factory=set)  # tasks done for good (kept in the run's memo)
    ids: dict[str, NodeId] = field(default_factory=dict)  # task -> node id (kept in the run's memo)
    visited: set[str] = field(default_factory=set)
    busy: bool = False  # some task node is not fulfilled yet
    frontier: Frontier | None = None

    def task_name(self, task: str) -> str:
        return f"{self.node.name}.{task}"

    def task_node(self, task: str) -> NodeStatus | None:
        nid = self.ids.get(task)
        if nid is None:
            nid = self.ids[task] = self.p.tree.id_of(self.task_name(task))
        return self.p.tree.nodes.get(nid)


def _legacy_depends(task: str, deps: tuple[str, ...], tasks: dict[str, Step]) -> str:
    parts = []
    for dep in deps:
        alts = [f"{dep}.Succeeded", f"{dep}.Skipped", f"{dep}.Daemoned"]
        cont = tasks[dep].continue_on if dep in tasks else None
        if cont is not None and cont.error:
            alts.append(f"{dep}.Errored")
        if cont is not None and cont.failed:
            alts.append(f"{dep}.Failed")
        parts.append("(" + " || ".join(alts) + ")")
    return " && ".join(parts)


def shape_of(p: Pass, template: Template, *, path: str) -> Shape:
    key = ("dag-shape", path, template.name, id(template.dag))
    cached: Shape | None = p.memo.get(key)
    if cached is not None:
        return cached
    assert template.dag is not None
    tasks = {t.name: t for t in template.dag.tasks}
    deps: dict[str, tuple[str, ...]] = {}
    logic: dict[str, Any] = {}
    for t in template.dag.tasks:
        if t.depends:
            parsed = parse_depends(t.depends)
            deps[t.name] = tuple(sorted(parsed.tasks))
            logic[t.name] = parsed
        elif t.dependencies:
            deps[t.name] = t.dependencies
            logic[t.name] = parse_depends(_legacy_depends(t.name, t.dependencies, tasks))
        else:
            deps[t.name] = ()
            logic[t.name] = None
        for d in deps[t.name]:
            if d not in tasks:
                raise InvalidSpec(f"{path}.dag.tasks.{t.name}", f"unknown dependency {d!r}")
    if template.dag.target:
        targets = tuple(template.dag.target.split())
        for target in targets:
            if target not in tasks:
                raise InvalidSpec(f"{path}.dag.target", f"target {target!r} is not a task")
    else:
        depended = {d for ds in deps.values() for d in ds}
        targets = tuple(t.name for t in template.dag.tasks if t.name not in depended)
    order = _visiting_order(targets, deps)
    dependents: dict[str, list[str]] = {}
    for name in order:
        for d in deps[name]:
            dependents.setdefault(d, []).append(name)
    shape = Shape(tasks=tasks, deps=deps, logic=logic, targets=targets, order=order,
                  dependents={d: tuple(ts) for d, ts in dependents.items()})
    p.memo[key] = shape
    return shape


def _visiting_order(targets: tuple[str, ...], deps: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """Post-order of a depth-first walk from the targets (Argo's executeDAGTask recursion): the
    order in which a walk would find tasks ready, so a parallelism limit admits the same ones."""
    order: dict[str, int] = {}
    seen: set[str] = set()
    for target in targets:
        stack: list[tuple[str, int]] = [(target, 0)]
        while stack:
            task, i = stack.pop()
            if i == 0:
                if task in seen:
                    continue
                seen.add(task)
            task_deps = deps.get(task, ())
            if i < len(task_deps):
                stack.append((task, i + 1))
                stack.append((task_deps[i], 0))
            else:
                order[task] = len(order)
    return order


def execute_dag(p: Pass, call: Call, holder: TemplateScope, processed: Processed,
                node: NodeStatus | None) -> NodeStatus | None:
    template = processed.template
    node = open_scope(p, call, holder, processed, node, NodeType.DAG)
    if node is None:
        return None
    try:
        shape = shape_of(p, template, path=call.path)
    except WorkflowError as e:
        return p.tree.mark(node, NodePhase.ERROR, str(e))
    ctx = Ctx(p=p, call=call, holder=holder, node=node, shape=shape, template=template, inputs=processed.inputs,
              settled=p.memo.setdefault(("dag-settled", node.id), set()),
              ids=p.memo.setdefault(("dag-ids", node.id), {}))
    frontier: Frontier | None = p.memo.get(("dag-frontier", node.id))
    if frontier is None:
        frontier = p.memo[("dag-frontier", node.id)] = _first_frontier(ctx)
    ctx.frontier = frontier
    for task in list(frontier.active):
        if task in ctx.settled:
            del frontier.active[task]
            continue
        n = ctx.task_node(task)
        if (n is not None and not p.full and n.type is NodeType.POD and not n.phase.completed
                and n.id not in p.finished and not fulfilled(n)):
            # A pod still running with nothing new: all a visit would learn is what operator.execute
            # answers for it at once (the node, unchanged), so only its effect is kept.
            ctx.visited.add(task)
            ctx.busy = True
            continue
        _execute_task(ctx, task)
        _after_visit(ctx, task)
    while frontier.heap:
        _, task = heapq.heappop(frontier.heap)
        frontier.queued.discard(task)
        if task in ctx.settled or task in frontier.active:
            continue
        if ctx.task_node(task) is None:
            if not _deps_done(ctx, task):
                continue  # pushed again when its dependencies are done
            if p.pods_full or node.id in p.saturated:
                _push(frontier, ctx.shape, task)
                ctx.busy = True  # a limit is met: nothing new starts in this pass
                break
        _execute_task(ctx, task)
        if ctx.task_node(task) is None:
            if _deps_done(ctx, task):  # deps done, yet not started: a parallelism limit
                _push(frontier, ctx.shape, task)
                ctx.busy = True
                break
            continue
        _after_visit(ctx, task)
    if ctx.busy and node.id in p.saturated and failed_fast(p, node.id):
        kill_daemons(p, node.id)
        return p.tree.mark(node, NodePhase.FAILED, FAIL_FAST_MESSAGE)
    phase = NodePhase.RUNNING if ctx.busy else _assess(ctx)
    node = p.tree.by_id(node.id)
    if phase is NodePhase.RUNNING:
        return node
    _set_outbound(ctx)
    kill_daemons(p, node.id)
    if phase.failed:
        return p.tree.mark(node, phase, _failure_message(ctx))
    scope = _scope_for(ctx, list(shape.tasks))
    collected = outputs.from_scope(template, scope)
    if collected.error:
        return p.tree.mark(node, NodePhase.ERROR, collected.error)
    if not collected.outputs.empty:
        node = p.tree.update(node, outputs=collected.outputs)
        p.set_global_output(*outputs.global_outputs(template, collected.outputs))
    return p.tree.mark(node, NodePhase.SUCCEEDED)


def _first_frontier(ctx: Ctx) -> Frontier:
    """Every task queued once: the first pass (or the first after a restart) finds what exists."""
    frontier = Frontier()
    for task in ctx.shape.order:
        _push(frontier, ctx.shape, task)
    return frontier


def _push(frontier: Frontier, shape: Shape, task: str) -> None:
    if task not in frontier.queued:
        frontier.queued.add(task)
        heapq.heappush(frontier.heap, (shape.order[task], task))


def _deps_done(ctx: Ctx, task: str) -> bool:
    for dep in ctx.shape.deps.get(task, ()):
        dn = ctx.task_node(dep)
        if dn is None or not fulfilled(dn) or not _hook_done(ctx, dep, dn):
            return False
    return True


def _after_visit(ctx: Ctx, task: str) -> None:
    """Track a visited task: active while unsettled; once done, its dependents become candidates."""
    frontier = ctx.frontier
    assert frontier is not None
    n = ctx.task_node(task)
    if n is None:
        return
    if task not in ctx.settled:
        frontier.active[task] = None
    if not fulfilled(n) or (n.type is NodeType.TASK_GROUP and not n.phase.completed):
        return
    if n.phase.completed:
        # A task that finished just now is not visited again: run its exit hook here (as Argo does).
        if not _hook_done(ctx, task, n):
            ctx.busy = True
            return
        ctx.settled.add(task)
        frontier.active.pop(task, None)
    if task not in frontier.released:
        frontier.released.add(task)
        for dependent in ctx.shape.dependents.get(task, ()):
            if ctx.task_node(dependent) is None:
                _push(frontier, ctx.shape, dependent)


def _failure_message(ctx: Ctx) -> str | None:
    for target in ctx.shape.targets:
        n = ctx.task_node(target)
        if n is not None and n.phase.failed and n.message:
            return n.message
    return None


def _set_outbound(ctx: Ctx) -> None:
    out: list[str] = []
    for target in ctx.shape.targets:
        n = ctx.task_node(target)
        if n is not None:
            out.extend(ctx.p.tree.outbound(n.id))
    if tuple(out) != ctx.p.tree.by_id(ctx.node.id).outbound_nodes:
        ctx.p.tree.update(ctx.node, outbound_nodes=tuple(out))


def _ancestry(ctx: Ctx, task: str) -> list[str]:
    key = ("dag-ancestry", ctx.node.id, task)
    cached: list[str] | None = ctx.p.memo.get(key)
    if cached is not None:
        return cached
    seen: dict[str, None] = {}
    stack = list(ctx.shape.deps.get(task, ()))
    while stack:
        d = stack.pop()
        if d in seen:
            continue
        seen[d] = None
        stack.extend(ctx.shape.deps.get(d, ()))
    cached = list(seen)
    ctx.p.memo[key] = cached
    return cached


_TASK_REF = re.compile(r"\btasks(?:\.([A-Za-z0-9_-]+)|\[\s*['\"]([^'\"]+)['\"]\s*\])?")


def _visible(ctx: Ctx, task: str) -> list[str]:
    """The ancestors whose ``tasks.<name>`` entries ``task`` can use: those its spec names.

    A task sees every ancestor's outputs, but building all of them for every task made a layered
    DAG quadratic; only the ancestors referenced (``tasks.x``, ``tasks['x']``) are put in its
    scope, and all of them when ``tasks`` is used in a way that names none.
    """
    key = ("dag-visible", ctx.node.id, task)
    cached: list[str] | None = ctx.p.memo.get(key)
    if cached is not None:
        return cached
    text = jsontext.dumps(dict(ctx.shape.tasks[task].raw), default=str)
    names: set[str] = set()
    dynamic = False
    if "{{" in text:
        for match in _TASK_REF.finditer(text):
            name = match.group(1) or match.group(2)
            if name is None:
                dynamic = True
                break
            names.add(name)
    if dynamic:
        cached = _ancestry(ctx, task)
    elif names:
        cached = [a for a in _ancestry(ctx, task) if a in names]
    else:
        cached = []
    ctx.p.memo[key] = cached
    return cached


def _scope_for(ctx: Ctx, tasks: list[str]) -> Scope:
    scope = ctx.p.workflow_scope(ctx.inputs)
    nodes = ctx.p.tree.nodes
    for task in tasks:
        n = ctx.task_node(task)
        if n is None:
            continue
        prefix = f"tasks.{task}"
        if n.type is NodeType.TASK_GROUP:
            scope.add_aggregate(prefix, ctx.p.tree.children(n), nodes)
        elif ctx.shape.tasks[task].expands and n.type is NodeType.SKIPPED:
            scope.add_aggregate(prefix, (), nodes)
        elif n.phase.completed:
            # A finished task's entries never change: build them once per run.
            key = ("task-scope", n.id)
            part: Scope | None = ctx.p.memo.get(key)
            if part is None:
                part = Scope()
                part.add_node(prefix, n, nodes)
                if n.phase is NodePhase.SKIPPED:
                    part.params.update(skipped_outputs(ctx.p, ctx.shape.tasks[task], ctx.holder, prefix=prefix))
                ctx.p.memo[key] = part
            scope.params.update(part.params)
            scope.artifacts.update(part.artifacts)
        else:
            scope.add_node(prefix, n, nodes)
            if n.phase is NodePhase.SKIPPED:
                scope.params.update(
                    skipped_outputs(ctx.p, ctx.shape.tasks[task], ctx.holder, prefix=prefix))
    return scope


def _result(ctx: Ctx, task: str, kind: str) -> bool:
    n = ctx.task_node(task)
    if n is None:
        return False
    if kind == "Succeeded":
        return n.phase is NodePhase.SUCCEEDED
    if kind == "Failed":
        return n.phase is NodePhase.FAILED
    if kind == "Errored":
        return n.phase is NodePhase.ERROR
    if kind == "Skipped":
        return n.phase is NodePhase.SKIPPED
    if kind == "Omitted":
        return n.phase is NodePhase.OMITTED
    if kind == "Daemoned":
        return n.daemoned and n.phase is not NodePhase.PENDING
    kids = [ctx.p.tree.by_id(c) for c in n.children] if n.type is NodeType.TASK_GROUP else []
    if kind == "AnySucceeded":
        return any(k.phase is NodePhase.SUCCEEDED for k in kids)
    if kind == "AllFailed":
        return bool(kids) and all(k.phase is NodePhase.FAILED for k in kids)
    raise InvalidSpec("depends", f"unknown task result {kind!r}")


def _connect(ctx: Ctx, task: str, node: NodeStatus) -> None:
    deps = ctx.shape.deps.get(task, ())
    if not deps:
        ctx.p.tree.add_child(ctx.node, node.id)
        return
    for dep in deps:
        dn = ctx.task_node(dep)
        if dn is None:
            continue
        for out in ctx.p.tree.outbound(dn.id):
            ctx.p.tree.add_child(out, node.id)


def _hook_done(ctx: Ctx, task: str, node: NodeStatus) -> bool:
    """Run a completed task's exit hook; True once it is fulfilled (or there is none)."""
    step = ctx.shape.tasks[task]
    if not node.phase.completed or exit_hook_of(step) is None or node.type is NodeType.SKIPPED:
        return True
    scope = _scope_for(ctx, _visible(ctx, task))
    hook = run_exit_hook(ctx.p, step, node, prefix=f"tasks.{task}", scope=scope, holder=ctx.holder,
                         boundary_id=ctx.node.id, path=f"{ctx.call.path}.dag.tasks.{task}")
    return hook is not None and fulfilled(hook)


def _execute_task(ctx: Ctx, task: str) -> None:

    if task in ctx.visited or task in ctx.settled:
        return
    ctx.visited.add(task)
    p = ctx.p
    node = ctx.task_node(task)
    if node is not None and fulfilled(node) and node.type is not NodeType.TASK_GROUP:
        if not _hook_done(ctx, task, node):
            ctx.busy = True
        elif node.phase.completed:
            ctx.settled.add(task)  # finished with its hook: later passes skip it at once
        return
    deps = ctx.shape.deps.get(task, ())
    for dep in deps:
        _execute_task(ctx, dep)
    for dep in deps:
        dn = ctx.task_node(dep)
        if dn is None or not fulfilled(dn) or not _hook_done(ctx, dep, dn):
            ctx.busy = True if node is not None else ctx.busy
            return
    name = ctx.task_name(task)
    step = ctx.shape.tasks[task]
    if node is None:
        logic = ctx.shape.logic.get(task)
        if logic is not None:
            try:
                run = logic.evaluate(lambda t, kind: _result(ctx, t, kind))
            except WorkflowError as e:
                bad = p.tree.create(name, NodeType.SKIPPED, display_name=task, boundary_id=ctx.node.id,
                                    phase=NodePhase.ERROR, message=str(e))
                _connect(ctx, task, bad)
                return
            if not run:
                omitted = p.tree.create(name, NodeType.SKIPPED, display_name=task, boundary_id=ctx.node.id,
                                        phase=NodePhase.OMITTED, message="omitted: depends condition not met")
                _connect(ctx, task, omitted)
                return
        if p.pods_full or ctx.node.id in p.saturated:
            ctx.busy = True  # a parallelism limit is met: no new task this pass
            return
        if not parallelism_allows(p, _boundary_call(ctx), leaf=False):
            ctx.busy = True
            return
    path = f"{ctx.call.path}.dag.tasks.{task}"
    try:
        resolved = _resolved_task(ctx, task, step, path=path)
        kids = expansion.expand(resolved, path=path) if step.expands else None
    except WorkflowError as e:
        if node is None:
            bad = p.tree.create(name, NodeType.SKIPPED, display_name=task, boundary_id=ctx.node.id,
                                phase=NodePhase.ERROR, message=str(e))
            _connect(ctx, task, bad)
        return
    if kids is None:
        _run_child(ctx, task, name=name, display=task, step=resolved, parent=None,
                   created_hook=lambda n: _connect(ctx, task, n))
        return
    if not kids:
        skipped = p.tree.create(name, NodeType.SKIPPED, display_name=task, boundary_id=ctx.node.id,
                                phase=NodePhase.SKIPPED, message="Skipped, empty params")
        _connect(ctx, task, skipped)
        return
    group = node
    if group is None:
        group = p.tree.create(name, NodeType.TASK_GROUP, display_name=task, boundary_id=ctx.node.id,
                              phase=NodePhase.RUNNING, **node_template_fields(ctx.holder, ctx.template))
        _connect(ctx, task, group)
    created: list[NodeId] = []
    for kid in kids:
        _run_child(ctx, task, name=f"{ctx.node.name}.{kid.name}", display=kid.name, step=kid.step, parent=group,
                   created_hook=lambda n: created.append(n.id))
    if created:
        p.tree.add_children(group, created)
    group = p.tree.by_id(group.id)
    if len(group.children) < len(kids):
        ctx.busy = True  # some item waits (a lock, a parallelism limit): the group is not done
        return
    phase = NodePhase.SUCCEEDED
    for child in p.tree.children(group):
        if not fulfilled(child):
            ctx.busy = True
            return
        if child.phase.failed:
            phase = child.phase
    p.tree.mark(group, phase)


def _boundary_call(ctx: Ctx) -> Call:
    from workflows.scheduling.operator import Call

    return Call(name="", target="", holder=ctx.holder, boundary_id=ctx.node.id)


def _resolved_task(ctx: Ctx, task: str, step: Step, *, path: str) -> Step:
    key = ("dag-task", ctx.node.id, task)
    cached: Step | None = ctx.p.memo.get(key)
    if cached is None:
        cached = resolve_step(ctx.p, step, _scope_for(ctx, _visible(ctx, task)), path=path, kind="tasks")
        ctx.p.memo[key] = cached
    return cached


def _run_child(ctx: Ctx, task: str, *, name: str, display: str, step: Step, parent: NodeStatus | None,
               created_hook: Any) -> None:
    from workflows.scheduling.operator import Call

    p = ctx.p
    node = p.tree.get(name)
    if node is None and step.when:
        try:
            proceed = evaluate_when(step.when)
        except WorkflowError as e:
            created_hook(p.tree.create(name, NodeType.SKIPPED, display_name=display, boundary_id=ctx.node.id,
                                       phase=NodePhase.ERROR, message=str(e)))
            return
        if not proceed:
            created_hook(p.tree.create(name, NodeType.SKIPPED, display_name=display, boundary_id=ctx.node.id,
                                       phase=NodePhase.SKIPPED, message=f"when '{step.when}' evaluated false"))
            return
    created = node is None
    child = p.execute(Call(name=name, target=step, holder=ctx.holder, args=step.arguments, boundary_id=ctx.node.id,
                           display_name=display, path=f"{ctx.call.path}.dag.tasks.{task}",
                           local={"tasks.name": display}))
    if child is None:
        ctx.busy = True
        return
    if created:
        created_hook(child)
    if not fulfilled(child):
        ctx.busy = True


def _assess(ctx: Ctx) -> NodePhase:
    """Argo's assessDAGPhase: walk from the roots, carrying each branch's last completed phase."""
    tree = ctx.p.tree
    target_ids = {tree.id_of(ctx.task_name(t)): t for t in ctx.shape.targets}
    target_phase: dict[str, NodePhase | None] = {nid: None for nid in target_ids}
    dag = tree.by_id(ctx.node.id)
    queue: deque[tuple[str, NodePhase]] = deque((c, NodePhase.SUCCEEDED) for c in dag.children)
    seen: set[tuple[str, NodePhase]] = set()
    while queue:
        item = queue.popleft()
        if item in seen:
            continue
        seen.add(item)
        nid, branch = item
        node = tree.nodes.get(NodeId(nid))
        if node is None:
            continue
        if not fulfilled(node):
            return NodePhase.RUNNING
        if node.phase in (NodePhase.SUCCEEDED, NodePhase.FAILED, NodePhase.ERROR):
            branch = node.phase  # Skipped and Omitted inherit their branch's phase (Argo's Completed)
        if nid in target_phase:
            previous = target_phase[nid]
            if previous is None or not previous.failed:
                target_phase[nid] = branch
        children = node.children
        if node.type is NodeType.RETRY and node.children:
            children = tree.by_id(node.children[-1]).children
        queue.extend((c, branch) for c in children)
    fail_fast = ctx.template.dag is None or ctx.template.dag.fail_fast is None or ctx.template.dag.fail_fast
    result = NodePhase.SUCCEEDED
    for nid, task in target_ids.items():
        seen_phase = target_phase[nid]
        if seen_phase is None:
            result = NodePhase.RUNNING
            if not fail_fast:
                break
        elif seen_phase.failed:
            if continues_on(ctx.shape.tasks[task], seen_phase):
                continue
            result = seen_phase
            if fail_fast:
                break
    return result
