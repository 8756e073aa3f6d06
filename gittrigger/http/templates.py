"""
Argo Server's template and cron services: ``WorkflowTemplateService`` under
``/api/v1/workflow-templates/{namespace}``, ``ClusterWorkflowTemplateService`` under
``/api/v1/cluster-workflow-templates`` and ``CronWorkflowService`` under
``/api/v1/cron-workflows/{namespace}`` — create, list, get, update, delete, lint, and for
CronWorkflows suspend and resume.

Routes are added by :func:`gittrigger.http.app.make_app`. Objects live in the ObjectStore in Argo's
wire JSON. Writes are validated as Argo's server does (the object parses, the workflow spec passes
:func:`workflows.validation.validate`, a CronWorkflow's own fields pass
:func:`gittrigger.cronworkflows.check_cron_spec`), and keep the engine's template getter
(``app[keys.TEMPLATES]``) in step, so a ``templateRef`` to a template created here resolves at once.
A CronWorkflow write wakes the scheduler (:data:`CRON_SCHEDULER`, when the process set one); its
``status`` is the scheduler's, never the client's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from gittrigger.cronworkflows import KIND as CRON_WORKFLOW
from gittrigger.cronworkflows import CronScheduler, check_cron_spec
from gittrigger.http import keys
from gittrigger.http.argo import body_object, clean_fields, json_body, parse_label_selector
from workflows.errors import InvalidSpec, NotFound, Problems
from workflows.model import wire
from workflows.model.spec import Workflow
from workflows.resolution import CLUSTER_WORKFLOW_TEMPLATE, WORKFLOW_TEMPLATE, DictTemplateGetter, TemplateGetter
from workflows.store.base import RawObject
from workflows.store.objects import copy_json, labels_of, matches
from workflows.validation import validate

routes = web.RouteTableDef()

# Set by the process wiring (gittrigger.runtime) to the running scheduler; absent in tests without one.
CRON_SCHEDULER: Final = web.AppKey("cron_scheduler", CronScheduler)


@dataclass(frozen=True, slots=True, kw_only=True)
class Resource:
    """One of the three services: its kind, the request body key and whether it is cluster-scoped."""

    kind: str
    body_key: str

    @property
    def cluster(self) -> bool:
        return self.kind == CLUSTER_WORKFLOW_TEMPLATE


TEMPLATE: Final = Resource(kind=WORKFLOW_TEMPLATE, body_key="template")
CLUSTER_TEMPLATE: Final = Resource(kind=CLUSTER_WORKFLOW_TEMPLATE, body_key="template")
CRON: Final = Resource(kind=CRON_WORKFLOW, body_key="cronWorkflow")


class _Overlay:
    """A TemplateGetter: the object being written first, then what the engine already knows."""

    def __init__(self, first: DictTemplateGetter, then: TemplateGetter) -> None:
        self._first, self._then = first, then

    def get(self, kind: str, namespace: str | None, name: str) -> Workflow:
        try:
            return self._first.get(kind, namespace, name)
        except NotFound:
            return self._then.get(kind, namespace, name)


def _namespace(request: web.Request, resource: Resource) -> str | None:
    return None if resource.cluster else request.match_info["namespace"]


def prepare(obj: Mapping[str, Any], *, resource: Resource, namespace: str | None) -> RawObject:
    """A copy of a client's object with the kind, apiVersion and the path's namespace set, status dropped."""
    out: RawObject = copy_json(dict(obj))
    out.setdefault("apiVersion", wire.API_VERSION)
    out.setdefault("kind", resource.kind)
    if out["kind"] != resource.kind:
        raise InvalidSpec(f"{resource.body_key}.kind", f"must be {resource.kind}, got {out['kind']!r}")
    meta = out.get("metadata")
    if meta is None:
        meta = out["metadata"] = {}
    if not isinstance(meta, dict):
        raise InvalidSpec(f"{resource.body_key}.metadata", "must be an object")
    if namespace is not None:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    out.pop("status", None)
    return out


def check(obj: RawObject, *, resource: Resource, templates: TemplateGetter) -> Workflow:
    """Argo's lint: the parsed object, or :class:`Problems` naming every field (``template.spec...``)."""
    prefix = resource.body_key
    try:
        workflow = wire.parse_object(obj, path=prefix)
    except InvalidSpec as e:
        raise Problems([e]) from None
    problems: list[InvalidSpec] = []
    if not workflow.metadata.name and not workflow.metadata.generate_name:
        problems.append(InvalidSpec(f"{prefix}.metadata.name", "name or generateName is required"))
    if resource is CRON:
        problems.extend(check_cron_spec(obj.get("spec") or {}, path=f"{prefix}.spec"))
    overlay = _Overlay(DictTemplateGetter([workflow]), templates)
    base = f"{prefix}.spec.workflowSpec" if resource is CRON else f"{prefix}.spec"
    for problem in validate(workflow, getter=overlay):
        path = problem.path
        if path == "spec" or path.startswith(("spec.", "spec[")):
            path = base + path[len("spec"):]  # validation names the workflow spec "spec"
        else:
            path = f"{prefix}.{path}" if path else prefix
        problems.append(InvalidSpec(path, problem.message))
    if problems:
        raise Problems(problems)
    return workflow


def render(obj: RawObject, resource: Resource) -> RawObject:
    """An object as Argo's server returns it; a CronWorkflow's status carries every field Argo fills."""
    if resource is not CRON:
        return obj
    status = dict(obj.get("status") or {})
    status.setdefault("active", [])
    status.setdefault("conditions", [])
    status.setdefault("succeeded", 0)
    status.setdefault("failed", 0)
    status.setdefault("phase", "Active")
    return {**obj, "status": status}


def _dry_run(body: Mapping[str, Any]) -> bool:
    options = body.get("createOptions") or {}
    if not isinstance(options, Mapping):
        raise InvalidSpec("createOptions", "must be an object")
    return "All" in (options.get("dryRun") or [])


def _after_write(app: web.Application, resource: Resource, stored: RawObject | None, *,
                 removed: tuple[str | None, str] | None = None) -> None:
    """Keep the engine's template getter and the cron scheduler in step with a write."""
    if resource is CRON:
        scheduler = app.get(CRON_SCHEDULER)
        if scheduler is not None:
            scheduler.notify()
        return
    if removed is not None:
        app[keys.TEMPLATES].remove(resource.kind, *removed)
    if stored is not None:
        app[keys.TEMPLATES].add(wire.parse_object(stored))


# -- handlers shared by the three services -----------------------------------------------------


async def _create(request: web.Request, resource: Resource) -> web.Response:
    namespace = _namespace(request, resource)
    body = await json_body(request)
    obj = prepare(body_object(body, resource.body_key), resource=resource, namespace=namespace)
    check(obj, resource=resource, templates=request.app[keys.TEMPLATES])
    if _dry_run(body):
        return web.json_response(render(obj, resource))
    stored = await request.app[keys.STORE].put_object(resource.kind, obj, create=True)
    _after_write(request.app, resource, stored)
    return web.json_response(render(stored, resource))


async def _lint(request: web.Request, resource: Resource) -> web.Response:
    obj = prepare(body_object(await json_body(request), resource.body_key), resource=resource,
                  namespace=_namespace(request, resource))
    check(obj, resource=resource, templates=request.app[keys.TEMPLATES])
    return web.json_response(obj)


async def _list(request: web.Request, resource: Resource) -> web.Response:
    query = parse_label_selector(request.query.get("listOptions.labelSelector", ""))
    pattern = request.query.get("namePattern", "")
    items = []
    for obj in await request.app[keys.STORE].list_objects(resource.kind, _namespace(request, resource)):
        name = str((obj.get("metadata") or {}).get("name") or "")
        if pattern and pattern not in name:
            continue
        if matches(name=name, labels=labels_of(obj), phase="", options=query.options) and all(
                p(obj) for p in query.predicates):
            items.append(render(obj, resource))
    return web.json_response(clean_fields({"metadata": {}, "items": items}, request.query.get("fields", "")))


async def _get(request: web.Request, resource: Resource) -> web.Response:
    got = await request.app[keys.STORE].get_object(resource.kind, _namespace(request, resource),
                                                   request.match_info["name"])
    return web.json_response(render(got, resource))


async def _update(request: web.Request, resource: Resource) -> web.Response:
    namespace, name = _namespace(request, resource), request.match_info["name"]
    store = request.app[keys.STORE]
    obj = prepare(body_object(await json_body(request), resource.body_key), resource=resource, namespace=namespace)
    given = obj["metadata"].get("name")
    if given and given != name:
        raise InvalidSpec(f"{resource.body_key}.metadata.name",
                          f"must be {name!r} (the name in the path), got {given!r}")
    obj["metadata"]["name"] = name
    obj["metadata"].pop("generateName", None)
    old = await store.get_object(resource.kind, namespace, name)  # NotFound -> 404: update never creates
    check(obj, resource=resource, templates=request.app[keys.TEMPLATES])
    if "status" in old:
        obj["status"] = old["status"]  # the scheduler's, not the client's
    stored = await store.put_object(resource.kind, obj)
    _after_write(request.app, resource, stored)
    return web.json_response(render(stored, resource))


async def _delete(request: web.Request, resource: Resource) -> web.Response:
    namespace, name = _namespace(request, resource), request.match_info["name"]
    await request.app[keys.STORE].delete_object(resource.kind, namespace, name)
    _after_write(request.app, resource, None, removed=(namespace, name))
    return web.json_response({})


# -- WorkflowTemplateService -------------------------------------------------------------------


@routes.post("/api/v1/workflow-templates/{namespace}")
async def create_workflow_template(request: web.Request) -> web.Response:
    """``{"template": {...}, "createOptions": {"dryRun": ["All"]}}`` -> the stored template (409 if taken)."""
    return await _create(request, TEMPLATE)


@routes.post("/api/v1/workflow-templates/{namespace}/lint")
async def lint_workflow_template(request: web.Request) -> web.Response:
    """``{"template": {...}}`` -> the template, or 400 naming every problem."""
    return await _lint(request, TEMPLATE)


@routes.get("/api/v1/workflow-templates/{namespace}")
async def list_workflow_templates(request: web.Request) -> web.Response:
    """``WorkflowTemplateList``; ``listOptions.labelSelector`` and ``namePattern`` filter."""
    return await _list(request, TEMPLATE)


@routes.get("/api/v1/workflow-templates/{namespace}/{name}")
async def get_workflow_template(request: web.Request) -> web.Response:
    return await _get(request, TEMPLATE)


@routes.put("/api/v1/workflow-templates/{namespace}/{name}")
async def update_workflow_template(request: web.Request) -> web.Response:
    """``{"template": {...}}`` replaces the stored template (404 if there is none)."""
    return await _update(request, TEMPLATE)


@routes.delete("/api/v1/workflow-templates/{namespace}/{name}")
async def delete_workflow_template(request: web.Request) -> web.Response:
    return await _delete(request, TEMPLATE)


# -- ClusterWorkflowTemplateService ------------------------------------------------------------


@routes.post("/api/v1/cluster-workflow-templates")
async def create_cluster_workflow_template(request: web.Request) -> web.Response:
    return await _create(request, CLUSTER_TEMPLATE)


@routes.post("/api/v1/cluster-workflow-templates/lint")
async def lint_cluster_workflow_template(request: web.Request) -> web.Response:
    return await _lint(request, CLUSTER_TEMPLATE)


@routes.get("/api/v1/cluster-workflow-templates")
async def list_cluster_workflow_templates(request: web.Request) -> web.Response:
    return await _list(request, CLUSTER_TEMPLATE)


@routes.get("/api/v1/cluster-workflow-templates/{name}")
async def get_cluster_workflow_template(request: web.Request) -> web.Response:
    return await _get(request, CLUSTER_TEMPLATE)


@routes.put("/api/v1/cluster-workflow-templates/{name}")
async def update_cluster_workflow_template(request: web.Request) -> web.Response:
    return await _update(request, CLUSTER_TEMPLATE)


@routes.delete("/api/v1/cluster-workflow-templates/{name}")
async def delete_cluster_workflow_template(request: web.Request) -> web.Response:
    return await _delete(request, CLUSTER_TEMPLATE)


# -- CronWorkflowService -----------------------------------------------------------------------


@routes.post("/api/v1/cron-workflows/{namespace}")
async def create_cron_workflow(request: web.Request) -> web.Response:
    """``{"cronWorkflow": {...}}`` -> the stored CronWorkflow; the scheduler picks it up at once."""
    return await _create(request, CRON)


@routes.post("/api/v1/cron-workflows/{namespace}/lint")
async def lint_cron_workflow(request: web.Request) -> web.Response:
    return await _lint(request, CRON)


@routes.get("/api/v1/cron-workflows/{namespace}")
async def list_cron_workflows(request: web.Request) -> web.Response:
    return await _list(request, CRON)


@routes.get("/api/v1/cron-workflows/{namespace}/{name}")
async def get_cron_workflow(request: web.Request) -> web.Response:
    return await _get(request, CRON)


@routes.put("/api/v1/cron-workflows/{namespace}/{name}")
async def update_cron_workflow(request: web.Request) -> web.Response:
    """``{"cronWorkflow": {...}}`` replaces the spec; the status stays the scheduler's."""
    return await _update(request, CRON)


@routes.delete("/api/v1/cron-workflows/{namespace}/{name}")
async def delete_cron_workflow(request: web.Request) -> web.Response:
    """Delete the CronWorkflow; its runs stay (Argo's would go with their owner by Kubernetes GC)."""
    return await _delete(request, CRON)


async def _set_suspend(request: web.Request, suspend: bool) -> web.Response:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    store = request.app[keys.STORE]
    obj = await store.get_object(CRON_WORKFLOW, namespace, name)
    obj.setdefault("spec", {})["suspend"] = suspend
    stored = await store.put_object(CRON_WORKFLOW, obj)
    _after_write(request.app, CRON, stored)
    return web.json_response(render(stored, CRON))


@routes.put("/api/v1/cron-workflows/{namespace}/{name}/suspend")
async def suspend_cron_workflow(request: web.Request) -> web.Response:
    """Set ``spec.suspend``: no new runs until resumed."""
    return await _set_suspend(request, True)


@routes.put("/api/v1/cron-workflows/{namespace}/{name}/resume")
async def resume_cron_workflow(request: web.Request) -> web.Response:
    """Clear ``spec.suspend``."""
    return await _set_suspend(request, False)
