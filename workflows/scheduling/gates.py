"""
What a node must pass before it runs: the memoization cache and synchronization locks (pure).

Called by :meth:`workflows.scheduling.operator.Pass.execute`. Both need I/O or shared state the
core does not own, so they are asked for with commands (:class:`LookupMemo`, :class:`AcquireLocks`)
and answered with observations; until the answer comes the node is not created and its parent
waits. Answers are remembered in the run's ``memo`` between passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from workflows.errors import WorkflowError
from workflows.model import wire
from workflows.model.durations import parse_duration
from workflows.model.spec import Synchronization, Template, TemplateKind
from workflows.model.status import NodeIO, NodePhase, NodeStatus, NodeType
from workflows.scheduling.commands import AcquireLocks, LookupMemo, ReleaseLocks, SaveMemo

if TYPE_CHECKING:
    from workflows.scheduling.operator import Call, Pass

_WAITING: Final = object()  # answer not arrived yet
_TYPE_OF: Final = {TemplateKind.STEPS: NodeType.STEPS, TemplateKind.DAG: NodeType.DAG,
                   TemplateKind.SUSPEND: NodeType.SUSPEND}


def lock_names(p: Pass, sync: Synchronization) -> tuple[str, ...]:
    """Namespaced lock keys as the engine's lock table knows them."""
    return tuple(
        [f"mutex/{p.namespace}/{m}" for m in sync.mutexes] + [f"semaphore/{p.namespace}/{s}" for s in sync.semaphores]
    )


def locks_held(p: Pass, *, holder: str, sync: Synchronization | None) -> bool:
    """True once the locks of ``sync`` are held for ``holder``; asks for them the first time."""
    if sync is None or (not sync.mutexes and not sync.semaphores):
        return True
    if holder in p.locks_granted:
        p.memo[("lock-held", holder)] = True
    if p.memo.get(("lock-held", holder)):
        return True
    if not p.memo.get(("lock-asked", holder)):
        p.memo[("lock-asked", holder)] = True
        p.command(AcquireLocks(node_id=holder, locks=lock_names(p, sync)))  # type: ignore[arg-type]
    return False


def release_locks(p: Pass, *, holder: str) -> None:
    """Give a finished node's (or run's) locks back."""
    if p.memo.pop(("lock-held", holder), None):
        p.memo.pop(("lock-asked", holder), None)
        p.command(ReleaseLocks(node_id=holder))  # type: ignore[arg-type]


def memo_gate(p: Pass, call: Call, template: Template) -> NodeStatus | object | None:
    """Consult the memo cache for a node not yet created.

    Returns ``None`` to go on and run it (a miss), the created node (a hit: Succeeded with the
    cached outputs, no pod), or ``_WAITING`` while the lookup is under way.
    """
    memo = template.memoize
    if memo is None:
        return None
    nid = p.tree.id_of(call.name)
    if nid in p.memo_answers:
        p.memo[("memo-answer", nid)] = p.memo_answers.pop(nid)
    answer_key = ("memo-answer", nid)
    if answer_key not in p.memo:
        if not p.memo.get(("memo-asked", nid)):
            p.memo[("memo-asked", nid)] = True
            max_age = None
            if memo.max_age:
                try:
                    max_age = parse_duration(memo.max_age, path=f"{call.path}.memoize.maxAge").total_seconds()
                except WorkflowError:
                    max_age = None
            p.command(LookupMemo(node_id=nid, cache=memo.cache_name, key=memo.key, max_age_seconds=max_age))
        return _WAITING
    answer: Mapping[str, Any] | None = p.memo[answer_key]
    status = {"hit": answer is not None, "key": memo.key, "cacheName": memo.cache_name}
    p.memo[("memo-status", nid)] = status
    if answer is None:
        return None
    outputs = wire.parse_io(answer, path="memo") if answer else NodeIO()
    node = p.tree.create(call.name, _TYPE_OF.get(template.kind, NodeType.POD),
                         display_name=call.display_name or call.name, boundary_id=call.boundary_id,
                         phase=NodePhase.SUCCEEDED, hooked=call.hooked, template_name=template.name or None)
    return p.tree.update(node, outputs=None if outputs.empty else outputs, memoization=status)


def after(p: Pass, call: Call, template: Template, node: NodeStatus | None) -> NodeStatus | None:
    """Bookkeeping once a node was executed: record/save memoization, release finished locks."""
    if node is None:
        return None
    status = p.memo.get(("memo-status", node.id))
    if status is not None and node.memoization is None:
        node = p.tree.update(node, memoization=status)
    if (template.memoize is not None and node.phase is NodePhase.SUCCEEDED and node.memoization is not None
            and not node.memoization.get("hit") and not p.memo.get(("memo-saved", node.id))):
        p.memo[("memo-saved", node.id)] = True
        entry = {"nodeID": node.id, "outputs": wire.dump_io(node.outputs) if node.outputs else {}}
        p.command(SaveMemo(cache=template.memoize.cache_name, key=template.memoize.key, entry=entry))
    if node.phase.completed:
        release_locks(p, holder=node.id)
    return node


WAITING = _WAITING
