"""
(placeholder) Routes of this module are registered by :func:`gittrigger.http.app.make_app`.
"""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
