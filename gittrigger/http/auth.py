"""
(placeholder) Access control for ``/api/``: installed by :func:`gittrigger.http.app.make_app`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pass-through until access control lands."""
    return await handler(request)
