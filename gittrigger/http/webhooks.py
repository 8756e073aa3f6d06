"""
The webhook edge: every registered EventSource endpoint, stored before it is acknowledged.

Installed by the lead with :func:`setup` (after :func:`gittrigger.http.app.make_app`); it adds the
audit API of :mod:`gittrigger.http.events` and one catch-all route that looks the request path up
in the :class:`~gittrigger.eventsources.EventSourceRegistry` on every delivery (so a reload that
swaps the registry needs no route change). Per delivery, in this order:

- unknown path -> 404 (Argo's ``{"code": 5, "message": ...}``); a path another route serves with
  other methods -> 405 with ``Allow``;
- method other than the endpoint's -> 405;
- body over ``maxPayloadSize`` (default 1 MiB) -> 413, read with a bounded reader that stops at
  the cap (``Content-Length`` over the cap is refused before reading anything);
- host verification over the raw bytes (``gittrigger.sources.<host>.verify``): missing or bad
  signature/token when a secret is set -> 401;
- GitHub ``ping`` -> 200 ``{"pong": true}``, no event;
- event type not in the source's ``events`` (GitHub, Gitea/Forgejo, Bitbucket; ``*`` matches all)
  -> 200 ``{"ignored": true, "reason": ...}``, no event;
- malformed JSON or a missing event header -> 400;
- otherwise ``to_event`` -> :class:`sensors.events.Event` -> ``await log.append(...)`` BEFORE
  answering: created -> 202 ``{"id": <event id>}`` and ``notify()`` wakes the dispatcher; a
  redelivery (same host delivery id) -> 200 ``{"id": <original id>, "duplicate": true}``; the log
  unavailable -> 503 so the host retries.

Every refusal (405, 413, 401, 400, ignored) is recorded with ``log.reject``. Each delivery gets
one structlog line, ``webhook accepted`` or ``webhook rejected``, with ``source``, ``delivery``,
``request_id``, ``status`` and ``reason``; headers, bodies and secrets are never logged.
The generic ``webhook`` source has no delivery id; a client may send ``Idempotency-Key`` to get
the same exactly-once treatment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

import structlog
from aiohttp import hdrs, web

from gittrigger.eventsources import Endpoint, EventSourceRegistry
from gittrigger.http import events as events_api
from gittrigger.http.middlewares import error_body
from gittrigger.sources import bitbucket, generic, gitea, github, gitlab
from gittrigger.sources import headers as hdr
from gittrigger.sources.envelope import EventParts, WebhookHost
from gittrigger.sources.errors import WebhookRejected
from sensors.eventlog import EventLog
from sensors.events import Event
from workflows.errors import Unavailable

REGISTRY: Final = web.AppKey("gittrigger.webhooks.registry", EventSourceRegistry)


class DeliveryLoad:
    """Whether deliveries are arriving: the dispatcher yields to them (a 2xx is what a host waits
    for; dispatch reads from the durable log and may come a moment later).

    Busy while one is being answered or one arrived in the last ``recent_s``: under a flood the
    in-flight count drops to zero for a moment after every group commit answers a batch, and
    those moments must not count as quiet.
    """

    def __init__(self, *, recent_s: float = 0.01, clock: Callable[[], float] = time.monotonic) -> None:
        self.in_flight = 0
        self._recent_s = recent_s
        self._clock = clock
        self._last = -recent_s

    def arrived(self) -> None:
        """A delivery is being answered (pair with :meth:`answered`)."""
        self.in_flight += 1
        self._last = self._clock()

    def answered(self) -> None:
        self.in_flight -= 1

    def busy(self) -> bool:
        """Whether a delivery is being answered now or arrived within ``recent_s``."""
        return self.in_flight > 0 or self._clock() - self._last < self._recent_s


LOAD: Final = web.AppKey("gittrigger.webhooks.load", DeliveryLoad)

HOSTS: Final[Mapping[str, WebhookHost]] = {
    "github": github,
    "gitlab": gitlab,
    "gitea": gitea,
    "forgejo": gitea,
    "bitbucket": bitbucket,
    "webhook": generic,
}
# Sources whose ``events`` list names the host's event header values, so it filters deliveries.
# (GitLab's ``events`` are hook settings such as PushEvents, not X-Gitlab-Event values.)
_FILTERED_KINDS: Final = frozenset({"github", "gitlab", "gitea", "forgejo", "bitbucket"})
_CHUNK: Final = 64 * 1024

log = structlog.get_logger("gittrigger.webhooks")


def setup(
    app: web.Application,
    *,
    registry: EventSourceRegistry,
    log: EventLog,
    notify: Callable[[], object],
    clock: Callable[[], datetime] | None = None,
    load: DeliveryLoad | None = None,
) -> None:
    """Serve the registry's endpoints and the event audit API on ``app`` (call once, before start).

    ``notify`` is called (and awaited if it returns an awaitable) after each new event is stored.
    ``load`` counts the deliveries in flight (for the dispatcher's ``busy``). The catch-all route
    goes last, so every route added earlier keeps precedence.
    """
    events_api.setup(app, log=log, notify=notify, clock=clock)
    app[REGISTRY] = registry
    app[LOAD] = load or DeliveryLoad()
    app.router.add_route("*", "/{tail:.*}", handle_delivery, name="webhooks")


class _Refused(Exception):
    """A delivery answered without an event; ``status`` and ``reason`` go to the client and the log."""

    def __init__(self, status: int, reason: str, *, body: dict[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.body = body
        self.headers = dict(headers or {})


_GRPC: Final = {400: 3, 401: 16, 404: 5, 405: 12, 413: 3, 503: 14}


async def handle_delivery(request: web.Request) -> web.StreamResponse:
    """The catch-all: find the endpoint for the path, then run one delivery through it."""
    endpoint = request.app[REGISTRY].lookup(request.path)
    if endpoint is None:
        return await _unknown(request)
    load = request.app[LOAD]
    load.arrived()
    try:
        return await _deliver(request, endpoint)
    finally:
        load.answered()


async def _deliver(request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
    received_at = request.app[events_api.CLOCK]()
    headers = request.headers
    host = HOSTS[endpoint.kind]
    delivery = host.delivery_id(headers)
    if endpoint.kind == "webhook":
        delivery = hdr.lookup(headers, hdr.IDEMPOTENCY_KEY) or None
    try:
        event = await _admit(request, endpoint, host, received_at=received_at, delivery=delivery)
    except _Refused as refused:
        await request.app[events_api.EVENT_LOG].reject(
            source_kind=endpoint.kind,
            event_source_name=endpoint.event_source_name,
            event_name=endpoint.event_name,
            delivery_id=delivery,
            reason=refused.reason,
            received_at=received_at,
        )
        _line("webhook rejected", endpoint, delivery, status=refused.status, reason=refused.reason)
        body = refused.body
        if body is None:
            body = error_body(grpc_code=_GRPC.get(refused.status, 3), message=refused.reason)
        return web.json_response(body, status=refused.status, headers=refused.headers)
    if event is None:  # a ping
        _line("webhook accepted", endpoint, delivery, status=200, reason="ping")
        return web.json_response({"pong": True})
    try:
        stored, created = await request.app[events_api.EVENT_LOG].append(
            event, source_kind=endpoint.kind, delivery_id=delivery, received_at=received_at
        )
    except Unavailable as e:
        reason = f"event log unavailable: {e}"
        _line("webhook rejected", endpoint, delivery, status=503, reason=reason)
        return web.json_response(error_body(grpc_code=14, message="event log unavailable, retry later"),
                                 status=503, headers={hdrs.RETRY_AFTER: "1"})
    if not created:
        original = stored.event.context.id
        _line("webhook accepted", endpoint, delivery, status=200, reason="redelivery", event_id=original)
        return web.json_response({"id": original, "duplicate": True}, status=200)
    _line("webhook accepted", endpoint, delivery, status=202, reason="stored", event_id=event.context.id)
    await events_api.wake(request.app)
    return web.json_response({"id": event.context.id}, status=202)


async def _admit(request: web.Request, endpoint: Endpoint, host: WebhookHost, *,
                 received_at: datetime, delivery: str | None) -> Event | None:
    """The event for an acceptable delivery, ``None`` for a ping; :class:`_Refused` otherwise."""
    if request.method != endpoint.method:
        raise _Refused(405, f"method {request.method} not allowed, endpoint accepts {endpoint.method}",
                       headers={hdrs.ALLOW: endpoint.method})
    body = await _read_bounded(request, endpoint.max_payload_size)
    headers = request.headers
    try:
        host.verify(headers, body, endpoint.secret)
        if host.is_ping(headers, body):
            return None
        if endpoint.kind in _FILTERED_KINDS and endpoint.events and "*" not in endpoint.events:
            kind = host.event_type(headers, body)
            if kind not in endpoint.events:
                reason = f"event type {kind!r} is not in the source's events {list(endpoint.events)}"
                raise _Refused(200, reason, body={"ignored": True, "reason": reason})
        parts = _to_event(request, endpoint, host, body, received_at=received_at)
    except WebhookRejected as e:
        raise _Refused(e.status, e.reason) from None
    return Event.from_argo(
        parts.context, parts.data, event_source_name=endpoint.event_source_name, event_name=endpoint.event_name
    )


def _to_event(request: web.Request, endpoint: Endpoint, host: WebhookHost, body: bytes, *,
              received_at: datetime) -> EventParts:
    source, event, metadata = endpoint.event_source_name, endpoint.event_name, endpoint.metadata or None
    if endpoint.kind == "webhook":
        query = {k: request.query.getall(k) for k in request.query}
        return generic.to_event(request.headers, body, source_name=source, event_name=event,
                                received_at=received_at, metadata=metadata, method=request.method, query=query)
    if endpoint.kind == "forgejo":
        return gitea.to_event(request.headers, body, source_name=source, event_name=event,
                              received_at=received_at, metadata=metadata, source_type="forgejo")
    return host.to_event(request.headers, body, source_name=source, event_name=event,
                         received_at=received_at, metadata=metadata)


async def _read_bounded(request: web.Request, limit: int) -> bytes:
    """The body, never holding more than ``limit`` + one chunk; 413 as soon as it is over."""
    too_large = f"body exceeds maxPayloadSize of {limit} bytes"
    if request.content_length is not None:
        if request.content_length > limit:
            raise _Refused(413, too_large)
        try:  # the common case (a Git host sends Content-Length): one read
            return await request.content.readexactly(request.content_length)
        except asyncio.IncompleteReadError as e:
            raise _Refused(400, f"body ended after {len(e.partial)} of {request.content_length} bytes") from None
    buf = bytearray()
    while chunk := await request.content.read(min(_CHUNK, limit + 1 - len(buf))):
        buf += chunk
        if len(buf) > limit:
            raise _Refused(413, too_large)
    return bytes(buf)


async def _unknown(request: web.Request) -> web.Response:
    """404, or 405 when another route serves this path with other methods."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.name == "webhooks":
            continue
        match, methods = await resource.resolve(request)
        if match is None:
            allowed |= methods
    if allowed:
        return web.json_response(error_body(grpc_code=12, message="method not allowed"), status=405,
                                 headers={hdrs.ALLOW: ",".join(sorted(allowed))})
    _line("webhook rejected", None, None, status=404, reason=f"no event source at {request.path}")
    return web.json_response(error_body(grpc_code=5, message=f"no event source endpoint at {request.path}"),
                             status=404)


def _line(message: str, endpoint: Endpoint | None, delivery: str | None, *, status: int, reason: str,
          **extra: Any) -> None:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    fields = {"source": endpoint.label if endpoint else None, "kind": endpoint.kind if endpoint else None,
              "delivery": delivery, "request_id": request_id, "status": status, "reason": reason, **extra}
    if message == "webhook accepted":
        log.info(message, **fields)
    else:
        log.warning(message, **fields)

