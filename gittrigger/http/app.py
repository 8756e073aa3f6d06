"""
The aiohttp application factory: typed state, middlewares and routes; no module-level app.

Called by :func:`gittrigger.runtime.serve` and by the HTTP tests (with a MemoryStore).
"""

from __future__ import annotations

from aiohttp import web

from gittrigger.http import argo, keys, middlewares
from gittrigger.settings import Settings
from workflows.engine import Engine
from workflows.store.base import ListOptions, WorkflowStore

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process serves requests."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Readiness: the store answers (a cheap list)."""
    await request.app[keys.STORE].list(None, ListOptions(limit=1))  # Unavailable -> 503 via the middleware
    return web.json_response({"status": "ok"})


def make_app(settings: Settings, *, engine: Engine, store: WorkflowStore) -> web.Application:
    """The application serving the health endpoints and the Argo workflow API."""
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[middlewares.request_context, middlewares.domain_errors],
    )
    app[keys.SETTINGS] = settings
    app[keys.ENGINE] = engine
    app[keys.STORE] = store
    app.add_routes(routes)
    app.add_routes(argo.routes)
    return app
