"""
Templates of WorkflowTemplates and ClusterWorkflowTemplates, pinned in the run's status.

Argo copies each template it resolves through a ``templateRef`` into ``status.storedTemplates``
so that editing a WorkflowTemplate does not change a run already under way, and so that a
restarted server resolves exactly what the run started with. :class:`StoredGetter` wraps the
engine's :class:`~workflows.resolution.TemplateGetter` to do the same for :mod:`.operator`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Final

from workflows.model import wire
from workflows.model.spec import ObjectKind, ObjectMeta, Workflow, WorkflowSpec
from workflows.resolution import TemplateGetter

_SCOPE: Final = {"WorkflowTemplate": "namespaced", "ClusterWorkflowTemplate": "cluster"}


class StoredGetter:
    """A TemplateGetter that reads pinned templates first and pins what it fetches."""

    def __init__(self, inner: TemplateGetter, stored: MutableMapping[str, Any], *,
                 memo: MutableMapping[Any, Any]) -> None:
        self._inner = inner
        self._stored = stored
        self._cache: MutableMapping[str, Workflow] = memo.setdefault("stored-objects", {})

    def get(self, kind: str, namespace: str | None, name: str) -> Workflow:
        scope = _SCOPE.get(kind, "namespaced")
        prefix = f"{scope}/{name}/"
        cached = self._cache.get(prefix)
        if cached is not None:
            return cached
        pinned = {k[len(prefix):]: v for k, v in self._stored.items() if k.startswith(prefix)}
        if pinned:
            templates = tuple(
                wire.parse_template(raw, path=f"status.storedTemplates[{prefix}{tname}]")
                for tname, raw in sorted(pinned.items())
            )
            obj = Workflow(
                kind=ObjectKind(kind) if kind in ObjectKind._value2member_map_ else ObjectKind.WORKFLOW_TEMPLATE,
                metadata=ObjectMeta(name=name, namespace=namespace),
                spec=WorkflowSpec(templates=templates),
            )
        else:
            obj = self._inner.get(kind, namespace, name)
            for template in obj.spec.templates:
                self._stored[f"{prefix}{template.name}"] = dict(template.raw)
        self._cache[prefix] = obj
        return obj
