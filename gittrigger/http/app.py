"""
The aiohttp application factory: typed state, middlewares and routes; no module-level app.

Called by :func:`gittrigger.runtime.serve` and by the HTTP tests (with a MemoryStore).
"""

from __future__ import annotations

from aiohttp import web

from gittrigger.http import access, argo, artifacts, auth, bindings, info, keys, middlewares, openapi, streams
from gittrigger.http import artifactfiles as artifact_files
from gittrigger.http import templates as template_api
from gittrigger.http.webhooks import REGISTRY
from gittrigger.metrics import CONTENT_TYPE, Metrics, delivery_outcome
from gittrigger.settings import Settings
from workflows.engine import Engine
from workflows.resolution import DictTemplateGetter
from workflows.store.base import ListOptions, Store

routes = web.RouteTableDef()
METRICS = web.AppKey("metrics", Metrics)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process serves requests."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Readiness: the store answers (a cheap list)."""
    await request.app[keys.STORE].list(None, ListOptions(limit=1))  # Unavailable -> 503 via the middleware
    return web.json_response({"status": "ok"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of :class:`gittrigger.metrics.Metrics`."""
    text = await request.app[METRICS].render()
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


async def _count_delivery(request: web.Request, response: web.StreamResponse) -> None:
    """Count answers of the webhook catch-all (``gittrigger.http.webhooks``) by source and outcome."""
    if request.match_info.route.name != "webhooks":
        return
    registry = request.app.get(REGISTRY)
    endpoint = registry.lookup(request.path) if registry is not None else None
    if endpoint is None:
        return  # no EventSource at this path: not a delivery
    body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else None
    request.app[METRICS].count_delivery(endpoint.label, delivery_outcome(response.status, body))


def make_app(settings: Settings, *, engine: Engine, store: Store,
             templates: DictTemplateGetter | None = None) -> web.Application:
    """The application serving the health endpoints and the Argo workflow API.

    ``templates`` is the getter the engine resolves templateRefs with (template API writes go there
    too); a fresh empty one when not given.
    """
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[middlewares.request_context, middlewares.domain_errors, auth.authenticate],
        handler_args={"access_log_class": access.ApiAccessLogger},
    )
    app[keys.SETTINGS] = settings
    app[keys.ENGINE] = engine
    app[keys.STORE] = store
    app[keys.TEMPLATES] = templates if templates is not None else DictTemplateGetter()
    app[keys.ARTIFACTS], app[keys.ARTIFACT_TOKENS] = artifacts.state_for(settings.store.data_dir)
    app[METRICS] = Metrics(store=store, engine=engine)
    app.on_response_prepare.append(_count_delivery)
    app.on_shutdown.append(streams.on_shutdown)  # open follows and watches end; a graceful stop does not wait
    app.add_routes(routes)
    for module in (argo, streams, template_api, bindings, info, artifacts, artifact_files, openapi):
        app.add_routes(module.routes)
    return app
