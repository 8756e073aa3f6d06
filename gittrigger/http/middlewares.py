"""
Request middlewares: a request id bound into structlog's context, and THE one mapping of
domain errors (:class:`workflows.errors.ErrorCode`) to HTTP statuses.

Installed by :func:`gittrigger.http.app.make_app`. Errors are answered in Argo's grpc-gateway
shape, ``{"code": <grpc code>, "message": ...}``, so Argo's CLI and UI understand them.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Final

import structlog
from aiohttp import hdrs, web

from workflows.errors import ErrorCode, WorkflowError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_HEADER: Final = "X-Request-Id"
_SAFE_ID: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Request ids: a random prefix per process and a counter (unique without a urandom call per request).
_ID_PREFIX: Final = uuid.uuid4().hex[:16]
_ID_COUNTER: Final = itertools.count(1)

# ErrorCode -> (HTTP status, gRPC code), as Argo's server maps gRPC errors through grpc-gateway.
STATUS: Final[dict[ErrorCode, tuple[int, int]]] = {
    ErrorCode.INVALID: (400, 3),
    ErrorCode.NOT_FOUND: (404, 5),
    ErrorCode.ALREADY_EXISTS: (409, 6),
    ErrorCode.CONFLICT: (409, 10),
    ErrorCode.UNAUTHENTICATED: (401, 16),
    ErrorCode.FORBIDDEN: (403, 7),
    ErrorCode.TOO_LARGE: (413, 3),
    ErrorCode.UNAVAILABLE: (503, 14),
}
INTERNAL: Final = (500, 13)

log = structlog.get_logger("gittrigger.http")


def error_body(*, grpc_code: int, message: str) -> dict[str, object]:
    """Argo's error JSON."""
    return {"code": grpc_code, "message": message}


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind ``request_id`` (the client's, if sane, else a new one) for every log line of the request."""
    sent = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = sent if _SAFE_ID.match(sent) else f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        try:
            response = await handler(request)
        except web.HTTPException as e:
            e.headers[REQUEST_ID_HEADER] = request_id
            raise
        response.headers[REQUEST_ID_HEADER] = request_id
        return response


@web.middleware
async def domain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """WorkflowError -> Argo-shaped JSON error with the status of its code; bugs -> 500, logged."""
    try:
        return await handler(request)
    except WorkflowError as e:
        status, grpc_code = STATUS.get(e.code, INTERNAL)
        if status >= 500:
            log.error("request failed", method=request.method, path=request.path, error=str(e))
        return web.json_response(error_body(grpc_code=grpc_code, message=str(e)), status=status)
    except web.HTTPRequestEntityTooLarge as e:
        status, grpc_code = STATUS[ErrorCode.TOO_LARGE]
        return web.json_response(error_body(grpc_code=grpc_code, message=e.text or "request body too large"),
                                 status=status)
    except web.HTTPException as e:
        if e.status < 400 or e.content_type == "application/json":
            raise
        grpc_code = {404: 5, 405: 12, 401: 16, 403: 7}.get(e.status, 3 if e.status < 500 else 13)
        return web.json_response(error_body(grpc_code=grpc_code, message=e.reason), status=e.status,
                                 headers={k: v for k, v in e.headers.items() if k == hdrs.ALLOW})
    except Exception:
        log.exception("request failed", method=request.method, path=request.path)
        status, grpc_code = INTERNAL
        return web.json_response(error_body(grpc_code=grpc_code, message="internal error"), status=status)
