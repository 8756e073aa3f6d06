"""
The Argo-compatible workflow API: Argo Server's ``WorkflowService`` under
``/api/v1/workflows/{namespace}`` — create, list, get, delete, lint, submit (from a
WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow) and the actions retry, resubmit,
stop, terminate, suspend, resume and set.

Routes are added by :func:`gittrigger.http.app.make_app`. Handlers parse, call the engine (or the
store) and serialize Argo wire JSON; list filters the store cannot apply (``!key``, ``in``,
``notin``, ``status.phase!=``) are applied here while paging, and Argo's ``fields`` filter shapes
every read. Failures are raised as :mod:`workflows.errors` and turned into HTTP by
:mod:`gittrigger.http.middlewares` (InvalidSpec -> 400, NotFound -> 404, Conflict -> 409).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from aiohttp import web

from gittrigger.artifactcollector import ArtifactCollector
from gittrigger.cronworkflows import workflow_of
from gittrigger.http import keys
from workflows.errors import InvalidSpec
from workflows.eventbindings import LABEL_CLUSTER_WORKFLOW_TEMPLATE, LABEL_WORKFLOW_TEMPLATE
from workflows.rerun import parse_parameters
from workflows.store.base import ListOptions, RawObject

routes = web.RouteTableDef()

_KINDS: Final = {  # Argo accepts the kind's name and its CLI short names, in any case
    "workflowtemplate": "WorkflowTemplate", "wftmpl": "WorkflowTemplate",
    "clusterworkflowtemplate": "ClusterWorkflowTemplate", "cwftmpl": "ClusterWorkflowTemplate",
    "cronworkflow": "CronWorkflow", "cronwf": "CronWorkflow",
}
_SET_REQUIREMENT: Final = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s*\(([^()]*)\)\s*$")
_REQUIREMENT: Final = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*(?:(==|!=|=)\s*([^\s!=(),]*))?\s*$")

Predicate = Callable[[RawObject], bool]


# -- request bodies ----------------------------------------------------------------------------


async def json_body(request: web.Request, *, optional: bool = False) -> Mapping[str, Any]:
    """The request's JSON object (InvalidSpec naming ``body`` otherwise); ``{}`` for an empty optional one."""
    raw = await request.read()
    if optional and not raw.strip():
        return {}
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidSpec("body", f"not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise InvalidSpec("body", f"must be a JSON object, got {type(body).__name__}")
    return body


def _bool(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidSpec(key, f"must be a boolean, got {type(value).__name__}")
    return value


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidSpec(key, f"must be a string, got {type(value).__name__}")
    return value


def _strings(body: Mapping[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidSpec(key, "must be a list of strings")
    return value


def body_object(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The object under ``key`` of a request body (``workflow``, ``template``...); InvalidSpec names the key."""
    value = body.get(key)
    if value is None:
        raise InvalidSpec(key, "required")
    if not isinstance(value, dict):
        raise InvalidSpec(key, f"must be an object, got {type(value).__name__}")
    return value


def _key_values(text: str, *, path: str) -> dict[str, str]:
    """``a=b,c=d`` (Argo's submitOptions.labels and annotations)."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InvalidSpec(path, f"expected NAME=VALUE pairs separated by commas, got {part!r}")
        out[key.strip()] = value.strip()
    return out


# -- list filters and Argo's fields ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ListQuery:
    """What a list request asks: store options, the filters left to us, and the page wanted."""

    options: ListOptions
    predicates: tuple[Predicate, ...] = ()
    limit: int | None = None
    continue_token: str | None = None
    empty: bool = False  # a requirement nothing can meet (another namespace)


def _labels(obj: RawObject) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def parse_label_selector(text: str, *, path: str = "listOptions.labelSelector") -> ListQuery:
    """Kubernetes label selector syntax: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``,
    ``a notin (x)``; requirements are and-ed. What the store cannot filter becomes a predicate."""
    equal: dict[str, str] = {}
    unequal: dict[str, str] = {}
    exists: list[str] = []
    predicates: list[Predicate] = []
    for part in _split_requirements(text):
        if m := _SET_REQUIREMENT.match(part):
            key, op = m.group(1), m.group(2)
            values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            predicates.append(_label_in(key, values, inside=op == "in"))
            continue
        m = _REQUIREMENT.match(part)
        if m is None or (m.group(1) and m.group(3)):
            raise InvalidSpec(path, f"unsupported requirement {part!r}")
        negated, key, op, value = m.group(1), m.group(2), m.group(3), m.group(4) or ""
        if negated:
            predicates.append(_label_in(key, frozenset(), inside=False, absent=True))
        elif op == "!=":
            unequal[key] = value
        elif op:
            equal[key] = value
        else:
            exists.append(key)
    options = ListOptions(labels=equal or None, label_not_equal=unequal or None, label_exists=tuple(exists))
    return ListQuery(options=options, predicates=tuple(predicates))


def _label_in(key: str, values: frozenset[str], *, inside: bool, absent: bool = False) -> Predicate:
    if absent:
        return lambda obj: key not in _labels(obj)
    return lambda obj: (_labels(obj).get(key) in values) is inside


def _field_is(section: str, key: str, value: str, *, equal: bool) -> Predicate:
    return lambda obj: (((obj.get(section) or {}).get(key) or "") == value) is equal


def _split_requirements(text: str) -> list[str]:
    """Split on commas outside parentheses (``a in (x,y),b``)."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_list_query(query: Mapping[str, str], *, namespace: str) -> ListQuery:
    """Argo's ``listOptions.*`` query: label and field selectors, limit and continue."""
    parsed = parse_label_selector(query.get("listOptions.labelSelector", ""))
    options, predicates, empty = parsed.options, list(parsed.predicates), False
    for part in _split_requirements(query.get("listOptions.fieldSelector", "")):
        m = re.fullmatch(r"\s*([\w.]+)\s*(==|!=|=)\s*(\S*)\s*", part)
        if m is None or m.group(1) not in ("metadata.name", "metadata.namespace", "status.phase"):
            raise InvalidSpec("listOptions.fieldSelector", f"unsupported requirement {part!r}: use metadata.name, "
                                                           "metadata.namespace or status.phase with = or !=")
        name, equal, value = m.group(1), m.group(2) != "!=", m.group(3)
        if name == "metadata.namespace":
            empty |= (value == namespace) is not equal
        elif name == "metadata.name":
            if equal:
                options = replace(options, name_prefix=value)
            predicates.append(_field_is("metadata", "name", value, equal=equal))
        elif equal:
            options = replace(options, phases=(value,))
        else:
            predicates.append(_field_is("status", "phase", value, equal=False))
    limit: int | None = None
    if raw_limit := query.get("listOptions.limit"):
        if not raw_limit.isdigit():
            raise InvalidSpec("listOptions.limit", f"must be a non-negative integer, got {raw_limit!r}")
        limit = int(raw_limit) or None
    return ListQuery(options=options, predicates=tuple(predicates), limit=limit, empty=empty,
                     continue_token=query.get("listOptions.continue") or None)


def clean_fields(value: Any, fields: str, *, prefix: str = "") -> Any:
    """Argo's ``fields`` filter: keep only the listed dotted paths (and what leads to them), or with a
    leading ``-`` drop them; lists are looked through (``items.metadata.name`` applies to each item).
    ``prefix`` is what the paths name above ``value`` (a watch frame's ``result.object.``)."""
    if not fields:
        return value
    exclude = fields.startswith("-")
    wanted = {f.strip().lstrip("-").removeprefix(prefix) for f in fields.split(",") if f.strip()}
    parents = {w[:i] for w in wanted for i, ch in enumerate(w) if ch == "."}

    def walk(v: Any, path: str) -> Any:
        if isinstance(v, list):
            return [walk(x, path) for x in v]
        if not isinstance(v, dict):
            return v
        out: dict[str, Any] = {}
        for key, child in v.items():
            p = f"{path}.{key}" if path else key
            if exclude:
                if p not in wanted:
                    out[key] = walk(child, p)
            elif p in wanted:
                out[key] = child
            elif p in parents:
                out[key] = walk(child, p)
        return out

    return walk(value, "")


async def _page(request: web.Request, namespace: str, q: ListQuery) -> tuple[list[RawObject], str | None, str]:
    """One page of matching runs. With predicates, store pages are asked for exactly the number still
    missing, so a page never overshoots and the store's continue token stays exact."""
    store = request.app[keys.STORE]
    if q.empty:
        return [], None, "0"
    if not q.predicates:
        page = await store.list(namespace, replace(q.options, limit=q.limit, continue_token=q.continue_token))
        return list(page.items), page.continue_token, page.resource_version
    items: list[RawObject] = []
    token, version = q.continue_token, "0"
    while True:
        want = None if q.limit is None else q.limit - len(items)
        page = await store.list(namespace, replace(q.options, limit=want, continue_token=token))
        version = page.resource_version
        items.extend(o for o in page.items if all(p(o) for p in q.predicates))
        token = page.continue_token
        if token is None or (q.limit is not None and len(items) >= q.limit):
            return items, token, version


# -- CRUD --------------------------------------------------------------------------------------


@routes.post("/api/v1/workflows/{namespace}")
async def create_workflow(request: web.Request) -> web.Response:
    """Argo's WorkflowCreateRequest: ``{"workflow": {...}, "serverDryRun": bool}`` -> the Workflow,
    returned once the engine's first pass is stored (phase Running, as a poller expects)."""
    namespace = request.match_info["namespace"]
    body = await json_body(request)
    workflow = body_object(body, "workflow")
    create_options = body.get("createOptions") or {}
    if not isinstance(create_options, dict):
        raise InvalidSpec("createOptions", f"must be an object, got {type(create_options).__name__}")
    dry_run = _bool(body, "serverDryRun") or "All" in _strings(create_options, "dryRun")
    engine = request.app[keys.ENGINE]
    created = await engine.submit(workflow, namespace=namespace, dry_run=dry_run)
    if not dry_run:
        created = await engine.started(namespace, created["metadata"]["name"])
    return web.json_response(created)


@routes.get("/api/v1/workflows/{namespace}")
async def list_workflows(request: web.Request) -> web.Response:
    """Argo's WorkflowList: ``{"metadata": {"resourceVersion", "continue"}, "items": [...]}``."""
    namespace = request.match_info["namespace"]
    items, token, version = await _page(request, namespace, parse_list_query(request.query, namespace=namespace))
    metadata: dict[str, str] = {"resourceVersion": version}
    if token:
        metadata["continue"] = token
    return web.json_response(clean_fields({"metadata": metadata, "items": items}, request.query.get("fields", "")))


@routes.get("/api/v1/workflows/{namespace}/{name}")
async def get_workflow(request: web.Request) -> web.Response:
    """One Workflow, as stored (``getOptions.resourceVersion`` is ignored); NotFound -> 404."""
    got = await request.app[keys.STORE].get(request.match_info["namespace"], request.match_info["name"])
    return web.json_response(clean_fields(got, request.query.get("fields", "")))


@routes.delete("/api/v1/workflows/{namespace}/{name}")
async def delete_workflow(request: web.Request) -> web.Response:
    """Delete a Workflow; a running one is terminated first (its pods killed), as Kubernetes GC would;
    artifacts whose ``artifactGC`` strategy says so are removed (:mod:`gittrigger.artifactcollector`)."""
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    engine, store = request.app[keys.ENGINE], request.app[keys.STORE]
    await store.get(namespace, name)  # NotFound before anything else
    if (namespace, name) in engine.running():
        await engine.stop(namespace, name, strategy="Terminate")
        await engine.wait(namespace, name)
    # Its artifacts go too, as its artifactGC strategies say (Argo's OnWorkflowDeletion).
    await ArtifactCollector(store=store, artifacts=request.app[keys.ARTIFACTS]).delete_workflow(namespace, name)
    return web.json_response({})


# -- lint and submit ---------------------------------------------------------------------------


@routes.post("/api/v1/workflows/{namespace}/lint")
async def lint_workflow(request: web.Request) -> web.Response:
    """Argo's WorkflowLintRequest ``{"workflow": {...}}`` -> the workflow, or 400 naming every problem."""
    namespace = request.match_info["namespace"]
    workflow = body_object(await json_body(request), "workflow")
    checked = await request.app[keys.ENGINE].submit(workflow, namespace=namespace, dry_run=True)
    checked.pop("status", None)
    return web.json_response(checked)


@routes.post("/api/v1/workflows/{namespace}/submit")
async def submit_workflow(request: web.Request) -> web.Response:
    """Argo's WorkflowSubmitRequest: a new Workflow from a (Cluster)WorkflowTemplate (by
    ``workflowTemplateRef``) or a CronWorkflow (its ``workflowSpec``), with ``submitOptions``."""
    namespace = request.match_info["namespace"]
    body = await json_body(request)
    kind = _KINDS.get(_text(body, "resourceKind").lower())
    if kind is None:
        raise InvalidSpec("resourceKind", f"must be WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow, "
                                          f"got {body.get('resourceKind')!r}")
    name = _text(body, "resourceName")
    if not name:
        raise InvalidSpec("resourceName", "required")
    opts = body.get("submitOptions") or {}
    if not isinstance(opts, dict):
        raise InvalidSpec("submitOptions", "must be an object")
    source = await request.app[keys.STORE].get_object(
        kind, None if kind == "ClusterWorkflowTemplate" else namespace, name)
    manifest = workflow_from(kind, source)
    meta = manifest["metadata"]
    for key, path in (("generateName", "generateName"), ("name", "name")):
        if value := _text(opts, key):
            meta[path] = value
    if annotations := _key_values(_text(opts, "annotations"), path="submitOptions.annotations"):
        meta["annotations"] = {**meta.get("annotations", {}), **annotations}
    if service_account := _text(opts, "serviceAccount"):
        manifest["spec"]["serviceAccountName"] = service_account
    dry_run = _bool(opts, "serverDryRun") or _bool(opts, "dryRun")
    engine = request.app[keys.ENGINE]
    created = await engine.submit(
        manifest, namespace=namespace, dry_run=dry_run,
        parameters=parse_parameters(_strings(opts, "parameters"), path="submitOptions.parameters"),
        labels=_key_values(_text(opts, "labels"), path="submitOptions.labels"),
        entrypoint=_text(opts, "entryPoint") or None)
    if not dry_run:
        created = await engine.started(namespace, created["metadata"]["name"])
    return web.json_response(created)


def workflow_from(kind: str, source: Mapping[str, Any]) -> dict[str, Any]:
    """The Workflow Argo's ``submit --from`` makes of a stored template or CronWorkflow."""
    name = str((source.get("metadata") or {}).get("name") or "")
    if kind == "CronWorkflow":
        return workflow_of(source)
    cluster = kind == "ClusterWorkflowTemplate"
    ref: dict[str, Any] = {"name": name, **({"clusterScope": True} if cluster else {})}
    label = LABEL_CLUSTER_WORKFLOW_TEMPLATE if cluster else LABEL_WORKFLOW_TEMPLATE
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"generateName": f"{name}-", "labels": {label: name}},
            "spec": {"workflowTemplateRef": ref}}


# -- actions -----------------------------------------------------------------------------------


def _names(request: web.Request) -> tuple[str, str]:
    return request.match_info["namespace"], request.match_info["name"]


@routes.put("/api/v1/workflows/{namespace}/{name}/retry")
async def retry_workflow(request: web.Request) -> web.Response:
    """``{"restartSuccessful", "nodeFieldSelector", "parameters"}``: failed nodes run again (400 unless
    Failed/Error, or Succeeded with both restartSuccessful and a nodeFieldSelector, as in Argo)."""
    body = await json_body(request, optional=True)
    return web.json_response(await request.app[keys.ENGINE].retry(
        *_names(request), restart_successful=_bool(body, "restartSuccessful"),
        node_field_selector=_text(body, "nodeFieldSelector"), parameters=_strings(body, "parameters")))


@routes.put("/api/v1/workflows/{namespace}/{name}/resubmit")
async def resubmit_workflow(request: web.Request) -> web.Response:
    """``{"memoized", "parameters"}`` -> the new Workflow (``<name>-xxxxx``)."""
    body = await json_body(request, optional=True)
    return web.json_response(await request.app[keys.ENGINE].resubmit(
        *_names(request), memoized=_bool(body, "memoized"), parameters=_strings(body, "parameters")))


@routes.put("/api/v1/workflows/{namespace}/{name}/stop")
async def stop_workflow(request: web.Request) -> web.Response:
    """Stop (exit handlers run); with ``nodeFieldSelector`` fail those suspend nodes with ``message``."""
    body = await json_body(request, optional=True)
    engine = request.app[keys.ENGINE]
    if selector := _text(body, "nodeFieldSelector"):
        await engine.set_nodes(*_names(request), node_field_selector=selector, phase="Failed",
                               message=_text(body, "message") or None)
    else:
        await engine.stop(*_names(request), strategy="Stop")
    return web.json_response(await engine.current(*_names(request)))


@routes.put("/api/v1/workflows/{namespace}/{name}/terminate")
async def terminate_workflow(request: web.Request) -> web.Response:
    """Terminate: everything stops, exit handlers do not run."""
    engine = request.app[keys.ENGINE]
    await engine.stop(*_names(request), strategy="Terminate")
    return web.json_response(await engine.current(*_names(request)))


@routes.put("/api/v1/workflows/{namespace}/{name}/suspend")
async def suspend_workflow(request: web.Request) -> web.Response:
    engine = request.app[keys.ENGINE]
    await engine.suspend(*_names(request))
    return web.json_response(await engine.current(*_names(request)))


@routes.put("/api/v1/workflows/{namespace}/{name}/resume")
async def resume_workflow(request: web.Request) -> web.Response:
    """Resume the workflow and its suspend nodes; with ``nodeFieldSelector`` only those nodes."""
    body = await json_body(request, optional=True)
    engine = request.app[keys.ENGINE]
    if selector := _text(body, "nodeFieldSelector"):
        await engine.set_nodes(*_names(request), node_field_selector=selector, phase="Succeeded")
    else:
        await engine.resume(*_names(request))
    return web.json_response(await engine.current(*_names(request)))


@routes.put("/api/v1/workflows/{namespace}/{name}/set")
async def set_workflow(request: web.Request) -> web.Response:
    """``{"nodeFieldSelector", "phase", "message", "outputParameters": "{\\"k\\": \\"v\\"}"}`` on suspend nodes."""
    body = await json_body(request)
    outputs: dict[str, str] = {}
    if raw_outputs := _text(body, "outputParameters"):
        try:
            parsed = json.loads(raw_outputs)
        except ValueError as e:
            raise InvalidSpec("outputParameters", f"not valid JSON: {e}") from None
        if not isinstance(parsed, dict):
            raise InvalidSpec("outputParameters", "must be a JSON object of names to values")
        outputs = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in parsed.items()}
    engine = request.app[keys.ENGINE]
    await engine.set_nodes(*_names(request), node_field_selector=_text(body, "nodeFieldSelector"),
                           phase=_text(body, "phase") or None, message=_text(body, "message") or None,
                           output_parameters=outputs)
    return web.json_response(await engine.current(*_names(request)))
