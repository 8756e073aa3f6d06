"""
The Argo-compatible workflow API (a minimal subset of Argo Server's ``WorkflowService``):
create, list, get and delete under ``/api/v1/workflows/{namespace}``.

Routes are added by :func:`gittrigger.http.app.make_app`. Handlers parse, call one engine or
store function and serialize Argo wire JSON; failures are raised as :mod:`workflows.errors` and
turned into HTTP by :mod:`gittrigger.http.middlewares`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gittrigger.http import keys
from workflows.errors import InvalidSpec
from workflows.store.base import ListOptions

routes = web.RouteTableDef()


async def _json_body(request: web.Request) -> Mapping[str, Any]:
    try:
        body = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidSpec("body", f"not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise InvalidSpec("body", f"must be a JSON object, got {type(body).__name__}")
    return body


@routes.post("/api/v1/workflows/{namespace}")
async def create_workflow(request: web.Request) -> web.Response:
    """Argo's WorkflowCreateRequest: ``{"workflow": {...}, "serverDryRun": bool}`` -> the Workflow."""
    namespace = request.match_info["namespace"]
    body = await _json_body(request)
    workflow = body.get("workflow")
    if workflow is None:
        raise InvalidSpec("workflow", "required")
    if not isinstance(workflow, dict):
        raise InvalidSpec("workflow", f"must be an object, got {type(workflow).__name__}")
    dry_run = bool(body.get("serverDryRun")) or "All" in ((body.get("createOptions") or {}).get("dryRun") or ())
    created = await request.app[keys.ENGINE].submit(workflow, namespace=namespace, dry_run=dry_run)
    return web.json_response(created)


def _list_options(query: Mapping[str, str]) -> ListOptions:
    labels: dict[str, str] = {}
    for requirement in filter(None, (query.get("listOptions.labelSelector") or "").split(",")):
        key, sep, value = requirement.partition("=")
        if not sep or not key.strip() or key.endswith("!"):
            raise InvalidSpec("listOptions.labelSelector", f"only key=value requirements are supported, got "
                                                           f"{requirement!r}")
        labels[key.strip()] = value.lstrip("=").strip()
    limit: int | None = None
    if raw_limit := query.get("listOptions.limit"):
        if not raw_limit.isdigit():
            raise InvalidSpec("listOptions.limit", f"must be a non-negative integer, got {raw_limit!r}")
        limit = int(raw_limit) or None
    return ListOptions(labels=labels or None, limit=limit,
                       continue_token=query.get("listOptions.continue") or None)


@routes.get("/api/v1/workflows/{namespace}")
async def list_workflows(request: web.Request) -> web.Response:
    """Argo's WorkflowList: ``{"metadata": {"resourceVersion", "continue"}, "items": [...]}``."""
    page = await request.app[keys.STORE].list(request.match_info["namespace"], _list_options(request.query))
    metadata: dict[str, str] = {"resourceVersion": page.resource_version}
    if page.continue_token:
        metadata["continue"] = page.continue_token
    return web.json_response({"metadata": metadata, "items": list(page.items)})


@routes.get("/api/v1/workflows/{namespace}/{name}")
async def get_workflow(request: web.Request) -> web.Response:
    """One Workflow, as stored; NotFound -> 404."""
    return web.json_response(await request.app[keys.STORE].get(request.match_info["namespace"],
                                                               request.match_info["name"]))


@routes.delete("/api/v1/workflows/{namespace}/{name}")
async def delete_workflow(request: web.Request) -> web.Response:
    """Delete a Workflow; a running one is terminated first (its pods killed), as Kubernetes GC would."""
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    engine, store = request.app[keys.ENGINE], request.app[keys.STORE]
    await store.get(namespace, name)  # NotFound before anything else
    if (namespace, name) in engine.running():
        await engine.stop(namespace, name, strategy="Terminate")
        await engine.wait(namespace, name)
    await store.delete(namespace, name)
    return web.json_response({})
