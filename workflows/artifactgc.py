"""
Argo's artifact garbage collection rules, pure: which strategies are valid, which strategy an
output artifact of a run has, and which artifacts a completion or a deletion collects.

Argo (``artifactGC``, v3.4+): ``spec.artifactGC.strategy`` is the run's default and an output
artifact's own ``artifactGC.strategy`` overrides it; ``""`` inherits, ``Never`` is the default.
``OnWorkflowCompletion`` artifacts go when the run completes, ``OnWorkflowDeletion`` ones when it
is deleted, and a deletion also collects completion ones not collected yet (Argo processes both
strategies for a workflow with a deletionTimestamp). Only Pod nodes' artifacts are collected, as
Argo's search does (the stores index only those). ``forceFinalizerRemoval``, ``serviceAccountName``
and ``podMetadata`` configure Argo's GC pods and finalizer, which do not exist here: accepted, no effect.

Used by :mod:`workflows.validation` (:func:`problems`) and by the collector at the top layer
(:mod:`gittrigger.artifactcollector`), which does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, Protocol, TypeVar

from workflows.errors import InvalidSpec

ON_COMPLETION: Final = "OnWorkflowCompletion"
ON_DELETION: Final = "OnWorkflowDeletion"
NEVER: Final = "Never"
STRATEGIES: Final = (ON_COMPLETION, ON_DELETION, NEVER)
Event = Literal["completion", "deletion"]
# What each event collects: a deletion also takes completion artifacts a completion did not take
# (the server was down when the run completed, or the run never completed).
COLLECTED: Final[Mapping[str, frozenset[str]]] = {
    "completion": frozenset({ON_COMPLETION}),
    "deletion": frozenset({ON_COMPLETION, ON_DELETION}),
}


class Located(Protocol):
    """An indexed artifact: the node that stored it and its name (``IndexedArtifact`` is one)."""

    @property
    def node_id(self) -> str: ...

    @property
    def name(self) -> str: ...


A = TypeVar("A", bound=Located)


def _strategy(gc: Any) -> str:
    return str(gc.get("strategy") or "") if isinstance(gc, Mapping) else ""


def _check(gc: Any, *, path: str) -> InvalidSpec | None:
    if gc is None:
        return None
    if not isinstance(gc, Mapping):
        return InvalidSpec(path, f"must be an object, got {type(gc).__name__}")
    strategy = gc.get("strategy")
    if strategy in (None, "") or strategy in STRATEGIES:
        return None
    return InvalidSpec(f"{path}.strategy", f"must be one of {', '.join(STRATEGIES)}, got {strategy!r}")


def problems(spec: Mapping[str, Any], *, path: str = "spec") -> list[InvalidSpec]:
    """Unknown strategies at ``spec.artifactGC`` and on templates' output artifacts, each naming its field."""
    found = [_check(spec.get("artifactGC"), path=f"{path}.artifactGC")]
    for i, template in enumerate(spec.get("templates") or ()):
        outputs = template.get("outputs") if isinstance(template, Mapping) else None
        arts = outputs.get("artifacts") if isinstance(outputs, Mapping) else None
        for j, art in enumerate(arts if isinstance(arts, list) else ()):
            if isinstance(art, Mapping):
                at = f"{path}.templates[{i}].outputs.artifacts[{j}].artifactGC"
                found.append(_check(art.get("artifactGC"), path=at))
    return [p for p in found if p is not None]


def declares_gc(workflow: Mapping[str, Any]) -> bool:
    """Whether anything in the run asks for collection (a cheap test before reading the index)."""
    spec = effective_spec(workflow)
    if _strategy(spec.get("artifactGC")) not in ("", NEVER):
        return True
    return any(_strategy(art.get("artifactGC")) not in ("", NEVER)
               for template in spec.get("templates") or () if isinstance(template, Mapping)
               for art in ((template.get("outputs") or {}).get("artifacts") or ()) if isinstance(art, Mapping))


def effective_spec(workflow: Mapping[str, Any]) -> Mapping[str, Any]:
    """The spec the run executed: a workflowTemplateRef's stored spec, else the run's own."""
    status = workflow.get("status") or {}
    stored = status.get("storedWorkflowTemplateSpec") if isinstance(status, Mapping) else None
    spec = workflow.get("spec") or {}
    if isinstance(stored, Mapping):
        return {**stored, **{k: v for k, v in spec.items() if k == "artifactGC"}}
    return spec if isinstance(spec, Mapping) else {}


def strategy_of(workflow: Mapping[str, Any], *, node_id: str, name: str) -> str:
    """The strategy of output artifact ``name`` of node ``node_id``: the artifact's own (as recorded
    on the node, else on its template), else the run's, else ``Never``. A node run from a templateRef
    (another WorkflowTemplate) or an inline template has only the run's default."""
    spec = effective_spec(workflow)
    node = ((workflow.get("status") or {}).get("nodes") or {}).get(node_id) or {}
    own = ""
    for art in (node.get("outputs") or {}).get("artifacts") or ():
        if art.get("name") == name:
            own = _strategy(art.get("artifactGC"))
    template_name = node.get("templateName")
    if not own and template_name and not node.get("templateRef"):
        for template in spec.get("templates") or ():
            if isinstance(template, Mapping) and template.get("name") == template_name:
                for art in (template.get("outputs") or {}).get("artifacts") or ():
                    if isinstance(art, Mapping) and art.get("name") == name:
                        own = _strategy(art.get("artifactGC"))
    return own or _strategy(spec.get("artifactGC")) or NEVER


def collectable(workflow: Mapping[str, Any], artifacts: Iterable[A], *, event: Event) -> list[A]:
    """The artifacts of ``workflow`` that ``event`` collects (see the module docstring)."""
    wanted = COLLECTED[event]
    return [a for a in artifacts if strategy_of(workflow, node_id=a.node_id, name=a.name) in wanted]


def keys_to_delete(collected: Sequence[str], *, still_referenced: Iterable[str]) -> list[str]:
    """Distinct collected keys no other indexed run still names (key-only artifacts are shared)."""
    kept = set(still_referenced)
    return [key for key in dict.fromkeys(collected) if key not in kept]
