"""
Argo Server's info endpoints: ``GET /api/v1/info``, ``/api/v1/version`` and ``/api/v1/userinfo``.

Routes are added by :func:`gittrigger.http.app.make_app`; like every ``/api/`` route they need a
token when tokens are configured (:mod:`gittrigger.http.auth`), which is who ``userinfo`` names.
Bodies are Argo's ``InfoResponse``, ``Version`` and ``GetUserInfoResponse`` JSON.
"""

from __future__ import annotations

import platform
import sys
from typing import Any, Final

from aiohttp import web

from gittrigger import __version__
from gittrigger.http.auth import CALLER, Caller, Role

routes = web.RouteTableDef()

ISSUER: Final = "gittrigger"
BUILD_DATE: Final = "1970-01-01T00:00:00Z"  # what Argo reports when the build did not stamp one
GO_ARCH: Final = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i686": "386"}
ANONYMOUS: Final = Caller(name="anonymous", role=Role.ADMIN)  # no tokens configured: loopback, allowed all


def version_info() -> dict[str, str]:
    """Argo's ``Version``, for gittrigger: its version, and Python where Argo names Go."""
    machine = platform.machine().lower()
    return {
        "version": __version__,
        "buildDate": BUILD_DATE,
        "gitCommit": "",
        "gitTag": "",
        "gitTreeState": "",
        "goVersion": f"python{platform.python_version()}",
        "compiler": platform.python_implementation().lower(),
        "platform": f"{sys.platform}/{GO_ARCH.get(machine, machine)}",
    }


def user_info(caller: Caller) -> dict[str, Any]:
    """Argo's ``GetUserInfoResponse`` for a token: the name as subject, the role as its group.

    ``role`` and ``namespaces`` (absent: every namespace) are gittrigger's additions; Argo's
    clients ignore fields they do not know.
    """
    body: dict[str, Any] = {"subject": caller.name, "name": caller.name, "issuer": ISSUER,
                            "groups": [caller.role.label], "role": caller.role.label}
    if caller.namespaces is not None:
        body["namespaces"] = sorted(caller.namespaces)
    return body


@routes.get("/api/v1/info")
async def info(request: web.Request) -> web.Response:
    """Argo's ``InfoResponse``: no managed namespace (the server serves every one), no links or columns."""
    return web.json_response({"links": [], "columns": [], "modals": {}, "navColor": ""})


@routes.get("/api/v1/version")
async def version(request: web.Request) -> web.Response:
    """Argo's ``Version``."""
    return web.json_response(version_info())


@routes.get("/api/v1/userinfo")
async def userinfo(request: web.Request) -> web.Response:
    """Who the caller is: the token's identity, or ``anonymous`` when no tokens are configured."""
    return web.json_response(user_info(request.get(CALLER) or ANONYMOUS))
