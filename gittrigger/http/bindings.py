"""
Argo's event API: ``POST /api/v1/events/{namespace}/{discriminator}`` submits a workflow for every
WorkflowEventBinding of the namespace whose selector matches, and
``GET /api/v1/workflow-event-bindings/{namespace}`` lists the bindings.

Routes are added by :func:`gittrigger.http.app.make_app`. Bindings are loaded into the ObjectStore
at start (:func:`gittrigger.runtime.load_manifests`); matching and the submitted Workflow are pure
(:mod:`workflows.eventbindings`); workflows go through ``engine.submit`` like any other. As Argo's
server (synchronous dispatch), the answer is ``{}`` whether or not anything matched; a selector
that fails on this payload is logged and counts as no match; a matched binding whose workflow
cannot be submitted (template missing, parameter expression failing) is logged, the others are
still submitted, and the answer is a 500 naming the failed bindings.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from aiohttp import web

from gittrigger.http import keys
from gittrigger.http.auth import CALLER
from workflows.errors import ExpressionError, InvalidSpec, WorkflowError
from workflows.eventbindings import KIND, event_environment, parse_binding, selects, workflow_for

routes = web.RouteTableDef()
log = structlog.get_logger("gittrigger.http.bindings")


async def _payload(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidSpec("payload", f"not valid JSON: {e}") from None


@routes.post("/api/v1/events/{namespace}/{discriminator}")
async def receive_event(request: web.Request) -> web.Response:
    """Argo's ``EventService.ReceiveEvent``: any JSON payload -> ``{}``; matching bindings submit."""
    namespace, discriminator = request.match_info["namespace"], request.match_info["discriminator"]
    payload = await _payload(request)
    env = event_environment(namespace=namespace, discriminator=discriminator, payload=payload,
                            headers=request.headers.items())
    caller = request.get(CALLER)
    engine = request.app[keys.ENGINE]
    failed: list[str] = []
    for raw in await request.app[keys.STORE].list_objects(KIND, namespace):
        try:
            binding = parse_binding(raw, namespace=namespace)
        except InvalidSpec as e:  # validated when loaded; a bad stored one must not block the others
            log.warning("event binding skipped", namespace=namespace, error=str(e))
            continue
        try:
            matched = selects(binding, env)
        except ExpressionError as e:
            log.warning("event binding selector failed", namespace=namespace, binding=binding.name,
                        discriminator=discriminator, error=str(e))
            continue
        if not matched:
            continue
        try:
            manifest = workflow_for(binding, env, creator=caller.name if caller is not None else None)
            if manifest is None:
                continue
            created = await engine.submit(manifest, namespace=binding.namespace)
        except WorkflowError as e:
            log.error("event binding submit failed", namespace=namespace, binding=binding.name,
                      discriminator=discriminator, error=str(e))
            failed.append(f"{binding.name}: {e}")
            continue
        log.info("event binding submitted", namespace=namespace, binding=binding.name,
                 discriminator=discriminator, workflow=created["metadata"]["name"])
    if failed:
        raise WorkflowError(f"failed to dispatch event: {'; '.join(failed)}")
    return web.json_response({})


@routes.get("/api/v1/workflow-event-bindings/{namespace}")
async def list_bindings(request: web.Request) -> web.Response:
    """Argo's ``WorkflowEventBindingList`` of one namespace."""
    items = await request.app[keys.STORE].list_objects(KIND, request.match_info["namespace"])
    return web.json_response({"metadata": {}, "items": list(items)})
