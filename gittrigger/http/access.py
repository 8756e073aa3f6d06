"""
The access log: aiohttp's, minus webhook deliveries.

Installed by :func:`gittrigger.http.app.make_app` (through ``handler_args``, so every runner of
the app uses it). A delivery already gets one line of its own from
:mod:`gittrigger.http.webhooks` (source, delivery id, status, reason); a second, poorer line
per delivery cost a tenth of the server's time at thousands of deliveries a second.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.web_log import AccessLogger


class ApiAccessLogger(AccessLogger):
    """aiohttp's access logger, silent for the webhook catch-all route."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        match_info = getattr(request, "match_info", None)
        route = getattr(match_info, "route", None)
        if route is not None and route.name == "webhooks":
            return
        super().log(request, response, time)
