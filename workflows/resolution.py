"""
Where templates come from: ``template``, ``templateRef`` (+ ``clusterScope``), ``inline``,
``spec.workflowTemplateRef`` and ``spec.templateDefaults``, with Argo's merge semantics.

Called by :mod:`workflows.validation` (lint/submit) and by the scheduling core each time it starts
a node. Objects are looked up through the :class:`TemplateGetter` seam: the store in the server,
:class:`DictTemplateGetter` over loaded files for ``lint`` and tests. Merging follows Argo's
Kubernetes strategic merge (``workflow/util/merge.go``): maps merge key by key, lists of named
things (templates, parameters, artifacts, volumes, env, ...) merge by name, other lists are
replaced, and the more specific side (workflow over template, template over defaults) wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final, Protocol

from workflows.errors import InvalidSpec, NotFound
from workflows.model.spec import (
    LifecycleHook,
    ObjectKind,
    Step,
    Template,
    TemplateKind,
    TemplateRef,
    Workflow,
    WorkflowSpec,
)
from workflows.model.wire import parse_template, parse_workflow_spec

WORKFLOW_TEMPLATE: Final = ObjectKind.WORKFLOW_TEMPLATE.value
CLUSTER_WORKFLOW_TEMPLATE: Final = ObjectKind.CLUSTER_WORKFLOW_TEMPLATE.value

# List fields that Argo/Kubernetes declare patchStrategy "merge", and the key their items merge on.
_MERGE_KEYS: Final = {
    "templates": "name", "parameters": "name", "artifacts": "name", "volumes": "name", "env": "name",
    "sidecars": "name", "initContainers": "name", "volumeMounts": "mountPath", "imagePullSecrets": "name",
}
_BODIES: Final = frozenset(kind.value for kind in TemplateKind)


class TemplateGetter(Protocol):
    """Finds WorkflowTemplates and ClusterWorkflowTemplates (Argo's WorkflowTemplateNamespacedGetter)."""

    def get(self, kind: str, namespace: str | None, name: str) -> Workflow:
        """The object ``kind`` ("WorkflowTemplate" | "ClusterWorkflowTemplate") named ``name``.

        ``namespace`` is ignored for cluster-scoped kinds. Raises :class:`NotFound`.
        """
        ...


class DictTemplateGetter:
    """A TemplateGetter over objects already in memory (loaded files, tests).

    Objects without a namespace match any namespace: manifests in a repository rarely name one.
    """

    def __init__(self, objects: Iterable[Workflow] = ()) -> None:
        self._objects: dict[tuple[str, str | None, str], Workflow] = {}
        for obj in objects:
            self.add(obj)

    def add(self, obj: Workflow) -> None:
        """Make ``obj`` findable; other kinds than (Cluster)WorkflowTemplate are ignored."""
        if obj.kind not in (ObjectKind.WORKFLOW_TEMPLATE, ObjectKind.CLUSTER_WORKFLOW_TEMPLATE):
            return
        if obj.metadata.name:
            namespace = None if obj.kind is ObjectKind.CLUSTER_WORKFLOW_TEMPLATE else obj.metadata.namespace
            self._objects[(obj.kind.value, namespace, obj.metadata.name)] = obj

    def remove(self, kind: str, namespace: str | None, name: str) -> None:
        """Forget an object added under this kind, namespace and name (a no-op when absent)."""
        self._objects.pop((kind, None if kind == CLUSTER_WORKFLOW_TEMPLATE else namespace, name), None)

    def get(self, kind: str, namespace: str | None, name: str) -> Workflow:
        """See :meth:`TemplateGetter.get`."""
        if kind == CLUSTER_WORKFLOW_TEMPLATE:
            namespace = None
        found = self._objects.get((kind, namespace, name)) or self._objects.get((kind, None, name))
        if found is None and namespace is None:
            found = next((o for (k, _, n), o in self._objects.items() if (k, n) == (kind, name)), None)
        if found is None:
            raise NotFound(kind, name)
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateScope:
    """Where a template was found, and so where the names of its own steps/tasks resolve.

    ``wire`` is Argo's node ``templateScope`` (``local/<wf>``, ``namespaced/<wft>``, ``cluster/<cwft>``).
    """

    kind: str  # "local" | "namespaced" | "cluster"
    name: str
    namespace: str | None
    spec: WorkflowSpec

    @property
    def wire(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def template_ref(self) -> Mapping[str, Any] | None:
        """The node ``templateRef`` prefix for templates of this scope (None when local)."""
        if self.kind == "local":
            return None
        ref: dict[str, Any] = {"name": self.name}
        if self.kind == "cluster":
            ref["clusterScope"] = True
        return ref


def local_scope(workflow: Workflow) -> TemplateScope:
    """The scope of a workflow's own templates."""
    meta = workflow.metadata
    return TemplateScope(kind="local", name=meta.name or "", namespace=meta.namespace, spec=workflow.spec)


def object_scope(obj: Workflow) -> TemplateScope:
    """The scope of the templates of a WorkflowTemplate or ClusterWorkflowTemplate."""
    kind = {ObjectKind.WORKFLOW_TEMPLATE: "namespaced", ObjectKind.CLUSTER_WORKFLOW_TEMPLATE: "cluster"}.get(
        obj.kind, "local")
    return TemplateScope(kind=kind, name=obj.metadata.name or "", namespace=obj.metadata.namespace,
                         spec=obj.spec)


def merge_raw(base: Any, override: Any, *, key: str | None = None) -> Any:
    """Strategic-merge ``override`` onto ``base``: override wins, maps merge, named lists merge by key."""
    if override is None:
        return base
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for k, v in override.items():
            merged[k] = merge_raw(base[k], v, key=k) if k in base else v
        return merged
    merge_key = _MERGE_KEYS.get(key or "")
    if (merge_key and isinstance(base, list) and isinstance(override, list)
            and all(isinstance(i, Mapping) and merge_key in i for i in (*base, *override))):
        out = list(base)
        index = {item[merge_key]: i for i, item in enumerate(out)}
        for item in override:
            if item[merge_key] in index:
                out[index[item[merge_key]]] = merge_raw(out[index[item[merge_key]]], item)
            else:
                index[item[merge_key]] = len(out)
                out.append(item)
        return out
    return override


def resolve_workflow_template_ref(workflow: Workflow, getter: TemplateGetter) -> Workflow:
    """The workflow with its ``workflowTemplateRef`` merged in (Argo JoinWorkflowSpec).

    The workflow's own fields win; arguments and templates merge by name; ``suspend`` is the
    workflow's. The template's ``workflowMetadata`` labels/annotations are added where the workflow
    has none. The result has no ``workflowTemplateRef`` (it is resolved); a workflow without one
    is returned unchanged. Raises NotFound, or InvalidSpec when the merged spec does not parse.
    """
    ref = workflow.spec.workflow_template_ref
    if ref is None:
        return workflow
    kind = CLUSTER_WORKFLOW_TEMPLATE if ref.cluster_scope else WORKFLOW_TEMPLATE
    source = getter.get(kind, workflow.metadata.namespace, ref.name)
    own = {k: v for k, v in workflow.spec.raw.items() if k != "workflowTemplateRef"}
    merged = merge_raw(dict(source.spec.raw), own)
    merged.pop("workflowTemplateRef", None)
    merged.pop("suspend", None)  # Argo keeps the workflow's own suspend, even when false
    if workflow.spec.suspend:
        merged["suspend"] = True
    spec = parse_workflow_spec(merged, path="spec")
    metadata = workflow.metadata
    extra = source.workflow_metadata or {}
    if extra.get("labels") or extra.get("annotations"):
        metadata = replace(
            metadata,
            labels=MappingProxyType({**dict(extra.get("labels") or {}), **metadata.labels}),
            annotations=MappingProxyType({**dict(extra.get("annotations") or {}), **metadata.annotations}),
        )
    return replace(workflow, spec=spec, metadata=metadata,
                   workflow_metadata=merge_raw(source.workflow_metadata, workflow.workflow_metadata))


def apply_template_defaults(template: Template, defaults_raw: Mapping[str, Any] | None) -> Template:
    """``spec.templateDefaults`` merged under ``template`` (Argo SetTemplateDefaults; template wins).

    Defaults never change a template's kind: a ``container`` default does not give a ``steps``
    template a second body.
    """
    if not defaults_raw:
        return template
    defaults = {k: v for k, v in defaults_raw.items()
                if k != "name" and (k not in _BODIES or k == template.kind.value)}
    merged = merge_raw(defaults, dict(template.raw))
    return parse_template(merged, path="templateDefaults", require_name=bool(template.name))


def resolve_template(
    holder: TemplateScope | WorkflowSpec,
    target: Step | LifecycleHook | str,
    getter: TemplateGetter,
    *,
    template_defaults: Mapping[str, Any] | None = None,
) -> tuple[Template, TemplateScope]:
    """The template a step, task, hook or template name refers to, and the scope it lives in.

    ``template:`` names resolve in ``holder`` (the scope of the template containing the step),
    ``templateRef`` through ``getter``, ``inline`` is the step's own. ``template_defaults`` (the
    running workflow's ``spec.templateDefaults``) are applied to the result. Raises NotFound for
    a missing object or template, InvalidSpec for a step naming no template.
    """
    scope = holder if isinstance(holder, TemplateScope) else TemplateScope(
        kind="local", name="", namespace=None, spec=holder)
    if isinstance(target, str):
        name: str | None = target
        ref: TemplateRef | None = None
        inline: Template | None = None
    else:
        name, ref = target.template, target.template_ref
        inline = target.inline if isinstance(target, Step) else None
    if inline is not None:
        template = inline
    elif ref is not None:
        kind = CLUSTER_WORKFLOW_TEMPLATE if ref.cluster_scope else WORKFLOW_TEMPLATE
        obj = getter.get(kind, scope.namespace, ref.name)
        found = obj.spec.template(ref.template)
        if found is None:
            raise NotFound("template", f"{ref.name}/{ref.template}")
        template, scope = found, object_scope(obj)
    elif name:
        found = scope.spec.template(name)
        if found is None:
            raise NotFound("template", name)
        template = found
    else:
        step_name = getattr(target, "name", "")
        raise InvalidSpec(step_name, "one of template, templateRef or inline is required")
    return apply_template_defaults(template, template_defaults), scope
