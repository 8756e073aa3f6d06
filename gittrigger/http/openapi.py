"""
The OpenAPI 3.0 document of everything gittrigger serves under ``/api/`` (and Argo's artifact
download routes beside it, :data:`OUTSIDE_API`) and its route, ``GET /api/v1/openapi.json``.

Routes are added by :func:`gittrigger.http.app.make_app`. The document is built once from one
table, :data:`OPERATIONS` (method, path, query parameters, body, answer, error statuses), and the
component schemas below. ``tests/gittrigger/test_openapi.py`` walks the app's router and fails when
a route under ``/api/`` is missing from the table or the table names a route nobody serves, so the
document stays exact as route modules change. Argo's objects are open (``additionalProperties``)
but the fields we always return are typed; errors have Argo's ``{"code", "message"}`` shape.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from gittrigger import __version__
from gittrigger.http.auth import DOWNLOADS

routes = web.RouteTableDef()

Schema = dict[str, Any]
PATH: Final = "/api/v1/openapi.json"
# Documented routes outside /api/: Argo Server's artifact downloads (gittrigger.http.artifactfiles),
# the prefixes the auth middleware guards beside /api/.
OUTSIDE_API: Final = DOWNLOADS

# -- schema building blocks ------------------------------------------------------------------

STRING: Final[Schema] = {"type": "string"}
BOOLEAN: Final[Schema] = {"type": "boolean"}
INTEGER: Final[Schema] = {"type": "integer"}
TIME: Final[Schema] = {"type": "string", "format": "date-time"}
OPEN: Final[Schema] = {"type": "object", "additionalProperties": True}
STRING_MAP: Final[Schema] = {"type": "object", "additionalProperties": {"type": "string"}}
# A path segment: routes take any name and answer 404 for unknown ones (Kubernetes' name rules are
# checked where objects are created, not by the router).
SEGMENT: Final[Schema] = {"type": "string", "pattern": r"^[^/]+$"}


def ref(name: str) -> Schema:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: Mapping[str, Schema], *, required: tuple[str, ...] = (), open_: bool = True) -> Schema:
    """An object schema; open (extra fields allowed) unless ``open_`` is False."""
    schema: Schema = {"type": "object", "properties": dict(properties), "additionalProperties": open_}
    if required:
        schema["required"] = list(required)
    return schema


def array(items: Schema) -> Schema:
    """An array schema."""
    return {"type": "array", "items": items}


def nullable(schema: Schema) -> Schema:
    """OpenAPI 3.0's way of allowing null."""
    return {**schema, "nullable": True}


def _resource(spec: Schema, *, status: Schema | None = None) -> Schema:
    """An Argo object as we return it: apiVersion, kind, stamped metadata, a spec (and a status)."""
    properties = {"apiVersion": STRING, "kind": STRING, "metadata": ref("ObjectMeta"), "spec": spec}
    if status is not None:
        properties["status"] = status
    return obj(properties, required=("metadata",))


def _list(item: str) -> Schema:
    return obj({"metadata": ref("ListMeta"), "items": nullable(array(ref(item)))}, required=("metadata", "items"))


def _trimmable(schema: Schema) -> Schema:
    return {key: value for key, value in schema.items() if key != "required"}


PHASES: Final = ["", "Pending", "Running", "Succeeded", "Failed", "Error"]

SCHEMAS: Final[dict[str, Schema]] = {
    "Error": obj({"code": INTEGER, "message": STRING}, required=("code", "message")),
    "ObjectMeta": obj({
        "name": STRING, "generateName": STRING, "namespace": STRING, "uid": STRING, "resourceVersion": STRING,
        "creationTimestamp": TIME, "labels": STRING_MAP, "annotations": STRING_MAP,
    }),
    "ListMeta": obj({"resourceVersion": STRING, "continue": STRING}),
    "NodeStatus": obj({
        "id": STRING, "name": STRING, "displayName": STRING, "type": STRING, "phase": STRING,
        "templateName": STRING, "boundaryID": STRING, "message": STRING, "startedAt": nullable(TIME),
        "finishedAt": nullable(TIME), "children": array(STRING), "outputs": OPEN, "inputs": OPEN,
    }, required=("id", "name", "type")),
    "WorkflowStatus": obj({
        "phase": {"type": "string", "enum": PHASES}, "startedAt": nullable(TIME), "finishedAt": nullable(TIME),
        "progress": STRING, "message": STRING, "nodes": {"type": "object", "additionalProperties": ref("NodeStatus")},
        "outputs": OPEN, "conditions": array(OPEN),
    }),
    "WorkflowSpec": obj({"entrypoint": STRING, "templates": array(OPEN), "arguments": OPEN,
                         "workflowTemplateRef": OPEN}),
    # Argo's ``fields`` query trims reads of Workflows to the listed paths, so nothing is required there.
    "Workflow": _trimmable(_resource(ref("WorkflowSpec"), status=ref("WorkflowStatus"))),
    "WorkflowList": _trimmable(_list("Workflow")),
    "WorkflowCreateRequest": obj({"namespace": STRING, "workflow": OPEN, "instanceID": STRING,
                                  "serverDryRun": BOOLEAN, "createOptions": OPEN}, required=("workflow",)),
    "WorkflowLintRequest": obj({"namespace": STRING, "workflow": OPEN}, required=("workflow",)),
    "WorkflowSubmitRequest": obj({"namespace": STRING, "resourceKind": STRING, "resourceName": STRING,
                                  "submitOptions": OPEN}, required=("resourceKind", "resourceName")),
    "WorkflowRetryRequest": obj({"name": STRING, "namespace": STRING, "restartSuccessful": BOOLEAN,
                                 "nodeFieldSelector": STRING, "parameters": array(STRING)}),
    "WorkflowResubmitRequest": obj({"name": STRING, "namespace": STRING, "memoized": BOOLEAN,
                                    "parameters": array(STRING)}),
    "WorkflowStopRequest": obj({"name": STRING, "namespace": STRING, "nodeFieldSelector": STRING,
                                "message": STRING}),
    "WorkflowTerminateRequest": obj({"name": STRING, "namespace": STRING}),
    "WorkflowSuspendRequest": obj({"name": STRING, "namespace": STRING}),
    "WorkflowResumeRequest": obj({"name": STRING, "namespace": STRING, "nodeFieldSelector": STRING}),
    "WorkflowSetRequest": obj({"name": STRING, "namespace": STRING, "nodeFieldSelector": {**STRING, "minLength": 1},
                               "message": STRING, "phase": {"type": "string", "enum": ["Succeeded", "Failed", "Error"]},
                               "outputParameters": {**STRING, "description": "a JSON object of names to values"}},
                              required=("nodeFieldSelector", "phase")),
    "WorkflowDeleteResponse": obj({}),
    "TemplateCreateRequest": obj({"namespace": STRING, "template": OPEN, "createOptions": OPEN},
                                 required=("template",)),
    "TemplateUpdateRequest": obj({"namespace": STRING, "name": STRING, "template": OPEN}, required=("template",)),
    "CronWorkflowCreateRequest": obj({"namespace": STRING, "cronWorkflow": OPEN, "createOptions": OPEN},
                                     required=("cronWorkflow",)),
    "CronWorkflowUpdateRequest": obj({"namespace": STRING, "name": STRING, "cronWorkflow": OPEN},
                                     required=("cronWorkflow",)),
    "DeleteResponse": obj({}),
    "ArtifactStored": obj({"key": STRING, "size": INTEGER}, required=("key", "size")),
    "ArtifactBytes": {"type": "string", "format": "binary"},
    "WorkflowTemplate": _resource(ref("WorkflowSpec")),
    "WorkflowTemplateList": _trimmable(_list("WorkflowTemplate")),  # the fields filter may drop anything
    "ClusterWorkflowTemplate": _resource(ref("WorkflowSpec")),
    "ClusterWorkflowTemplateList": _trimmable(_list("ClusterWorkflowTemplate")),
    "CronWorkflow": _resource(obj({"schedule": STRING, "schedules": array(STRING),
                                   "workflowSpec": ref("WorkflowSpec")}), status=OPEN),
    "CronWorkflowList": _trimmable(_list("CronWorkflow")),
    "WorkflowEventBindingList": obj({"metadata": OPEN, "items": nullable(array(OPEN))},
                                    required=("metadata", "items")),
    "EventResponse": obj({}),
    "InfoResponse": obj({"managedNamespace": STRING, "links": array(OPEN), "columns": array(OPEN),
                         "modals": OPEN, "navColor": STRING}),
    "Version": obj({key: STRING for key in ("version", "buildDate", "gitCommit", "gitTag", "gitTreeState",
                                             "goVersion", "compiler", "platform")},
                   required=("version", "buildDate", "gitCommit", "gitTag", "gitTreeState", "goVersion",
                             "compiler", "platform")),
    "GetUserInfoResponse": obj({"subject": STRING, "name": STRING, "issuer": STRING, "groups": array(STRING),
                                "role": STRING, "namespaces": array(STRING)}, required=("subject", "issuer")),
    # Streams are grpc-gateway's: one JSON object per line; the schema is that of one line.
    "LogStreamFrame": obj({"result": obj({"podName": STRING, "content": STRING}),
                           "error": ref("Error")}),
    "WatchStreamFrame": obj({"result": obj({"type": STRING, "object": ref("Workflow")}), "error": ref("Error")}),
    "EventStreamFrame": obj({"result": OPEN, "error": ref("Error")}),
    "OpenAPIDocument": obj({"openapi": STRING, "info": OPEN, "paths": OPEN}, required=("openapi", "info", "paths")),
    "EventSummary": obj({
        "id": STRING, "seq": INTEGER, "eventSourceName": nullable(STRING), "eventName": nullable(STRING),
        "sourceKind": STRING, "type": STRING, "deliveryId": nullable(STRING), "receivedAt": TIME,
        "dispatched": BOOLEAN,
    }, required=("id", "seq", "sourceKind", "receivedAt", "dispatched")),
    "EventList": obj({"items": array(ref("EventSummary")), "nextBefore": nullable(INTEGER)},
                     required=("items", "nextBefore")),
    "EventDetail": {"allOf": [ref("EventSummary"), obj({"event": OPEN, "audit": array(OPEN)},
                                                       required=("event", "audit"))]},
    "ReplayResponse": obj({"id": STRING, "replayOf": STRING}, required=("id", "replayOf")),
}


# -- the table -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """A query parameter (Argo's dotted grpc-gateway names, ``listOptions.labelSelector``)."""

    name: str
    schema: Schema
    description: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One served route: what it takes, what it answers, and the error statuses it can answer."""

    method: str
    path: str
    operation_id: str
    summary: str
    answer: str  # component schema of the success body
    status: int = 200
    query: tuple[Param, ...] = ()
    body: str | None = None  # component schema of the JSON request body ("" : any JSON)
    body_required: bool = True
    errors: tuple[int, ...] = ()
    stream: bool = False  # a grpc-gateway stream: one JSON object per line, possibly endless


LABELS: Final = Param(name="listOptions.labelSelector", schema=STRING,
                      description="Kubernetes label selector (k=v, comma-separated)")
LIST: Final = (
    LABELS,
    Param(name="listOptions.limit", schema={"type": "string", "pattern": r"^[0-9]*$"}, description="page size"),
    Param(name="listOptions.continue", schema=STRING, description="continue token of the previous page"),
)
LOGS: Final = (
    Param(name="podName", schema=STRING), Param(name="logOptions.container", schema=STRING),
    Param(name="logOptions.follow", schema={"type": "string", "enum": ["true", "false"]}),
    Param(name="logOptions.timestamps", schema={"type": "string", "enum": ["true", "false"]}),
    Param(name="logOptions.tailLines", schema={"type": "string", "pattern": r"^[0-9]+$"}),
    Param(name="logOptions.sinceSeconds", schema={"type": "string", "pattern": r"^[0-9]+$"}),
    Param(name="logOptions.sinceTime", schema=TIME),
    Param(name="grep", schema=STRING, description="regular expression lines must match"),
    Param(name="selector", schema=STRING, description="label selector of the pods"),
)
WATCH: Final = (
    LABELS, Param(name="listOptions.fieldSelector", schema=STRING, description="metadata.name / metadata.namespace"),
    Param(name="listOptions.resourceVersion", schema={"type": "string", "pattern": r"^[0-9]*$"}),
    Param(name="fields", schema=STRING),
)
FIELDS: Final = Param(name="fields", schema=STRING, description="Argo's fields filter (dotted paths, - to drop)")
READ: Final = (400, 404, 503)
WRITE: Final = (400, 404, 409, 413, 503)


def _action(verb: str, *, body_required: bool = False) -> Operation:
    """One of Argo's ``PUT /api/v1/workflows/{namespace}/{name}/<verb>`` actions, answering the Workflow."""
    title = verb.capitalize()
    return Operation(method="PUT", path=f"/api/v1/workflows/{{namespace}}/{{name}}/{verb}",
                     operation_id=f"WorkflowService_{title}Workflow", summary=f"{title} a Workflow",
                     body=f"Workflow{title}Request", body_required=body_required, answer="Workflow", errors=WRITE)


def _template_operations(base: str, *, service: str, kind: str, body_key: str) -> tuple[Operation, ...]:
    """Create, lint, list, get, update and delete of one stored kind, as Argo's template services."""
    create, update = f"{body_key}CreateRequest", f"{body_key}UpdateRequest"
    return (
        Operation(method="POST", path=base, operation_id=f"{service}_Create{kind}", summary=f"Create a {kind}",
                  body=create, answer=kind, errors=(400, 409, 413, 503)),
        Operation(method="POST", path=f"{base}/lint", operation_id=f"{service}_Lint{kind}",
                  summary=f"Validate a {kind}", body=create, answer=kind, errors=(400, 413, 503)),
        Operation(method="GET", path=base, operation_id=f"{service}_List{kind}s", summary=f"List {kind}s",
                  answer=f"{kind}List", errors=(400, 503),
                  query=(LABELS, Param(name="namePattern", schema=STRING, description="name substring"), FIELDS)),
        Operation(method="GET", path=f"{base}/{{name}}", operation_id=f"{service}_Get{kind}", summary=f"Get a {kind}",
                  answer=kind, errors=READ),
        Operation(method="PUT", path=f"{base}/{{name}}", operation_id=f"{service}_Update{kind}",
                  summary=f"Replace a {kind}", body=update, answer=kind, errors=WRITE),
        Operation(method="DELETE", path=f"{base}/{{name}}", operation_id=f"{service}_Delete{kind}",
                  summary=f"Delete a {kind}", answer="DeleteResponse", errors=(404, 503)),
    )


OPERATIONS: Final[tuple[Operation, ...]] = (
    # workflows (gittrigger.http.argo)
    Operation(method="POST", path="/api/v1/workflows/{namespace}", operation_id="WorkflowService_CreateWorkflow",
              summary="Create and start a Workflow", body="WorkflowCreateRequest", answer="Workflow",
              errors=(400, 409, 413, 503)),
    Operation(method="GET", path="/api/v1/workflows/{namespace}", operation_id="WorkflowService_ListWorkflows",
              summary="List Workflows", answer="WorkflowList", errors=(400, 503), query=(
                  *LIST, Param(name="listOptions.fieldSelector", schema=STRING,
                               description="metadata.name, metadata.namespace, status.phase with = or !="), FIELDS)),
    Operation(method="GET", path="/api/v1/workflows/{namespace}/{name}", operation_id="WorkflowService_GetWorkflow",
              summary="Get a Workflow", answer="Workflow", errors=READ, query=(FIELDS,)),
    Operation(method="DELETE", path="/api/v1/workflows/{namespace}/{name}",
              operation_id="WorkflowService_DeleteWorkflow", summary="Delete a Workflow (terminating it first)",
              answer="WorkflowDeleteResponse", errors=(404, 409, 503)),
    Operation(method="POST", path="/api/v1/workflows/{namespace}/lint", operation_id="WorkflowService_LintWorkflow",
              summary="Validate a Workflow", body="WorkflowLintRequest", answer="Workflow", errors=(400, 413, 503)),
    Operation(method="POST", path="/api/v1/workflows/{namespace}/submit",
              operation_id="WorkflowService_SubmitWorkflow",
              summary="Submit a Workflow from a (Cluster)WorkflowTemplate or CronWorkflow",
              body="WorkflowSubmitRequest", answer="Workflow", errors=WRITE),
    *(_action(verb) for verb in ("retry", "resubmit", "stop", "terminate", "suspend", "resume")),
    _action("set", body_required=True),
    # templates and cron workflows (gittrigger.http.templates)
    *_template_operations("/api/v1/workflow-templates/{namespace}", service="WorkflowTemplateService",
                          kind="WorkflowTemplate", body_key="Template"),
    *_template_operations("/api/v1/cluster-workflow-templates", service="ClusterWorkflowTemplateService",
                          kind="ClusterWorkflowTemplate", body_key="Template"),
    *_template_operations("/api/v1/cron-workflows/{namespace}", service="CronWorkflowService",
                          kind="CronWorkflow", body_key="CronWorkflow"),
    *(Operation(method="PUT", path=f"/api/v1/cron-workflows/{{namespace}}/{{name}}/{verb}",
                operation_id=f"CronWorkflowService_{verb.capitalize()}CronWorkflow",
                summary=f"{verb.capitalize()} a CronWorkflow's schedule", body="", body_required=False,
                answer="CronWorkflow", errors=(404, 413, 503)) for verb in ("suspend", "resume")),
    # streams (gittrigger.http.streams)
    Operation(method="GET", path="/api/v1/workflows/{namespace}/{name}/log",
              operation_id="WorkflowService_WorkflowLogs", summary="Log lines of a Workflow's pods",
              query=LOGS, answer="LogStreamFrame", errors=READ, stream=True),
    Operation(method="GET", path="/api/v1/workflows/{namespace}/{name}/{podName}/log",
              operation_id="WorkflowService_PodLogs", summary="Log lines of one pod (Argo's older route)",
              query=LOGS, answer="LogStreamFrame", errors=READ, stream=True),
    Operation(method="GET", path="/api/v1/workflow-events/{namespace}", operation_id="WorkflowService_WatchWorkflows",
              summary="Watch Workflows of a namespace", query=WATCH, answer="WatchStreamFrame", errors=(400, 503),
              stream=True),
    Operation(method="GET", path="/api/v1/workflow-events/", operation_id="WorkflowService_WatchAllWorkflows",
              summary="Watch Workflows of every namespace", query=WATCH, answer="WatchStreamFrame",
              errors=(400, 503), stream=True),
    Operation(method="GET", path="/api/v1/stream/events/{namespace}", operation_id="EventService_WatchEvents",
              summary="Kubernetes events (none here: an open, idle stream)", answer="EventStreamFrame",
              errors=(), stream=True),
    # events and bindings (gittrigger.http.bindings)
    Operation(method="POST", path="/api/v1/events/{namespace}/{discriminator}",
              operation_id="EventService_ReceiveEvent", summary="Submit from every matching WorkflowEventBinding",
              body="", body_required=False, answer="EventResponse", errors=(400, 413, 503)),
    Operation(method="GET", path="/api/v1/workflow-event-bindings/{namespace}",
              operation_id="EventService_ListWorkflowEventBindings", summary="List WorkflowEventBindings",
              answer="WorkflowEventBindingList", errors=(503,)),
    # info (gittrigger.http.info)
    Operation(method="GET", path="/api/v1/info", operation_id="InfoService_GetInfo", summary="Server info",
              answer="InfoResponse"),
    Operation(method="GET", path="/api/v1/version", operation_id="InfoService_GetVersion",
              summary="gittrigger's version", answer="Version"),
    Operation(method="GET", path="/api/v1/userinfo", operation_id="InfoService_GetUserInfo",
              summary="Who the caller is", answer="GetUserInfoResponse"),
    Operation(method="GET", path=PATH, operation_id="gittrigger_OpenAPI", summary="This document",
              answer="OpenAPIDocument"),
    # the artifact store pods use (gittrigger.http.artifacts): bearer is the pod's per-workflow token
    Operation(method="PUT", path="/api/v1/gittrigger/artifacts/{key}", operation_id="gittrigger_PutArtifact",
              summary="Store an artifact (a pod's output) under a key of its own workflow", body="ArtifactBytes",
              body_required=False, answer="ArtifactStored", status=201, errors=(400, 413, 503)),
    Operation(method="GET", path="/api/v1/gittrigger/artifacts/{key}", operation_id="gittrigger_GetArtifact",
              summary="Read an artifact of the caller's workflow", answer="ArtifactBytes", errors=(400, 404, 503)),
    # Argo Server's artifact downloads (gittrigger.http.artifactfiles): outside /api/ as in Argo, same tokens
    *(Operation(method="GET", path=f"/artifact-files/{{namespace}}/{{discriminator}}/{{id}}/{{nodeId}}/{{direction}}"
                                   f"/{{artifactName}}{tail}",
                operation_id=f"ArtifactService_GetArtifactFile{suffix}", answer="ArtifactBytes", errors=(400, 404, 503),
                summary=f"Download {what} (discriminator: workflows|archived-workflows, direction: outputs|inputs)")
      for tail, suffix, what in (("", "", "an artifact as stored"),
                                 ("/{file}", "Path", "a file of a directory artifact"))),
    *(Operation(method="GET", path=f"/{prefix}/{{namespace}}/{{name}}/{{nodeId}}/{{artifactName}}",
                operation_id=f"ArtifactService_Get{kind}Artifact", answer="ArtifactBytes", errors=(404, 503),
                summary=f"Download an {kind.lower()} artifact of a Workflow (Argo's older route)")
      for prefix, kind in (("artifacts", "Output"), ("input-artifacts", "Input"))),
    *(Operation(method="GET", path=f"/{prefix}/{{uid}}/{{nodeId}}/{{artifactName}}",
                operation_id=f"ArtifactService_Get{kind}ArtifactByUID", answer="ArtifactBytes", errors=(404, 503),
                summary=f"Download an {kind.lower()} artifact of the Workflow with this uid")
      for prefix, kind in (("artifacts-by-uid", "Output"), ("input-artifacts-by-uid", "Input"))),
    # the delivery audit API (gittrigger.http.events, installed with the webhooks)
    Operation(method="GET", path="/api/v1/gittrigger/events", operation_id="gittrigger_ListEvents",
              summary="Stored deliveries, newest first", answer="EventList", errors=(400, 503), query=(
                  Param(name="limit", schema={"type": "string", "pattern": r"^([1-9][0-9]?|[1-4][0-9]{2}|500)?$"},
                        description="1 to 500, default 50"),
                  Param(name="before", schema={"type": "string", "pattern": r"^([1-9][0-9]*)?$"},
                        description="seq to page from (nextBefore)"))),
    Operation(method="GET", path="/api/v1/gittrigger/events/{id}", operation_id="gittrigger_GetEvent",
              summary="One stored delivery with its audit trail", answer="EventDetail", errors=(404, 503)),
    Operation(method="POST", path="/api/v1/gittrigger/events/{id}/replay", operation_id="gittrigger_ReplayEvent",
              summary="Dispatch a copy of a stored delivery", answer="ReplayResponse", status=202,
              errors=(404, 503)),
)

ERROR_TEXT: Final = {
    400: "Invalid request (the message names the field)", 401: "No or unknown bearer token",
    403: "The token's role or namespaces do not cover this request", 404: "Not found",
    409: "Already exists or changed meanwhile", 413: "Request body too large", 503: "Store unavailable",
}


def _path_params(path: str) -> list[Schema]:
    params = []
    for name in re.findall(r"{(\w+)}", path):
        params.append({"name": name, "in": "path", "required": True, "schema": SEGMENT})
    return params


def _operation(op: Operation) -> Schema:
    media = "application/json"
    answer: Schema = {"description": "A stream of JSON lines, each like the schema" if op.stream else "OK",
                      "content": {media: {"schema": ref(op.answer)}}}
    responses: dict[str, Schema] = {str(op.status): answer}
    for status in sorted({*op.errors, 401, 403}):
        responses[str(status)] = {"description": ERROR_TEXT[status], "content": {media: {"schema": ref("Error")}}}
    built: Schema = {"operationId": op.operation_id, "summary": op.summary, "responses": responses,
                     "parameters": _path_params(op.path) + [
                         {"name": p.name, "in": "query", "required": False, "schema": p.schema,
                          **({"description": p.description} if p.description else {})} for p in op.query]}
    if op.body is not None:
        schema = ref(op.body) if op.body else {}
        built["requestBody"] = {"required": op.body_required, "content": {media: {"schema": schema}}}
    if op.stream:
        built["x-stream"] = True
    return built


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.0.3 document (built once; callers must not change it)."""
    paths: dict[str, dict[str, Schema]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.0.3",
        "info": {"title": "gittrigger: Argo Server's API", "version": __version__,
                 "description": "The Argo Workflows Server REST API as served by gittrigger."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


@routes.get(PATH)
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI document of ``/api/``."""
    return web.json_response(document())
