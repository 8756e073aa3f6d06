"""
The delivery audit API over the event log: list events, show one with its trail, replay one.

Installed by :func:`setup` (which :func:`gittrigger.http.webhooks.setup` calls); reads and appends
through the :class:`sensors.eventlog.EventLog` seam only. The keys :data:`EVENT_LOG`,
:data:`NOTIFY` and :data:`CLOCK` are shared with the webhook edge. JSON shapes (camelCase, as the
rest of the HTTP API):

``GET /api/v1/gittrigger/events?limit=50&before=<seq>`` -> newest first::

    {"items": [<summary>...], "nextBefore": <seq of the last item, or null on the last page>}

    <summary> = {"id": "<context id>", "seq": 12, "eventSourceName": "ci", "eventName": "push",
                 "sourceKind": "github", "type": "github", "deliveryId": "<host id or null>",
                 "receivedAt": "2026-01-02T03:04:05.123456Z", "dispatched": true}

``limit`` is 1..500 (default 50); ``before`` is the ``seq`` to page from (``nextBefore``).

``GET /api/v1/gittrigger/events/{id}`` -> ``<summary>`` plus::

    "event": {"context": {id, source, specversion, type, datacontenttype, subject, time},
              "data": {"headers": {...}, "body": ..., "metadata": {...}}},
    "audit": [{"at": "<RFC 3339>", "kind": "received|rejected|filter|submitted|replay|replayed|...",
               "detail": {...}}]

``POST /api/v1/gittrigger/events/{id}/replay`` -> 202 ``{"id": "<new id>", "replayOf": "<id>"}``:
a copy of the event with a new id and ``time``, stored with source kind ``replay`` and dispatched
through the current sensors; the copy's audit gets ``{"kind": "replay", "detail": {"replayOf":
<id>, "originalSeq": <seq>}}`` and the original's ``{"kind": "replayed", "detail": {"replay":
<new id>}}``. Unknown ids answer 404, a bad ``limit``/``before`` 400, an unavailable log 503
(Argo's error shape, through :mod:`gittrigger.http.middlewares`).
"""

from __future__ import annotations

import dataclasses
import inspect
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from sensors.eventlog import AuditEntry, EventLog, StoredEvent
from sensors.events import Event
from workflows.errors import InvalidSpec

EVENT_LOG: Final = web.AppKey("gittrigger.events.log", EventLog)
NOTIFY: Final = web.AppKey[Callable[[], object]]("gittrigger.events.notify")
CLOCK: Final = web.AppKey[Callable[[], datetime]]("gittrigger.events.clock")

PREFIX: Final = "/api/v1/gittrigger/events"
MAX_LIMIT: Final = 500
DEFAULT_LIMIT: Final = 50

routes = web.RouteTableDef()


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


def setup(
    app: web.Application,
    *,
    log: EventLog,
    notify: Callable[[], object],
    clock: Callable[[], datetime] | None = None,
) -> None:
    """Serve the audit API on ``app``; ``notify`` wakes the dispatcher after a replay is stored."""
    app[EVENT_LOG] = log
    app[NOTIFY] = notify
    app[CLOCK] = clock or utc_now
    app.add_routes(routes)


async def wake(app: web.Application) -> None:
    """Call the dispatcher's wake-up (awaiting it if it is a coroutine function)."""
    result = app[NOTIFY]()
    if inspect.isawaitable(result):
        await result


@routes.get(PREFIX)
async def list_events(request: web.Request) -> web.Response:
    """Newest first, ``limit`` per page, from ``before``."""
    limit = _int_param(request, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    before = _int_param(request, "before", None, low=1, high=None)
    items = await request.app[EVENT_LOG].list(limit=limit, before_seq=before)
    next_before = items[-1].seq if len(items) == limit else None
    return web.json_response({"items": [summary(s) for s in items], "nextBefore": next_before})


@routes.get(PREFIX + "/{id}")
async def get_event(request: web.Request) -> web.Response:
    """One event with its envelope and audit trail."""
    stored = await request.app[EVENT_LOG].get(request.match_info["id"])
    return web.json_response(detail(stored))


@routes.post(PREFIX + "/{id}/replay")
async def replay_event(request: web.Request) -> web.Response:
    """Store a copy of the event under a new id and dispatch it through the current sensors."""
    event_log = request.app[EVENT_LOG]
    original = await event_log.get(request.match_info["id"])
    now = request.app[CLOCK]()
    copy = Event(
        context=dataclasses.replace(original.event.context, id=uuid.uuid4().hex, time=now),
        data=original.event.data,
        event_source_name=original.event.event_source_name,
        event_name=original.event.event_name,
    )
    stored, _ = await event_log.append(copy, source_kind="replay", delivery_id=None, received_at=now)
    original_id = original.event.context.id
    await event_log.audit(
        stored.seq, AuditEntry(at=now, kind="replay", detail={"replayOf": original_id, "originalSeq": original.seq})
    )
    await event_log.audit(original.seq, AuditEntry(at=now, kind="replayed", detail={"replay": copy.context.id}))
    await wake(request.app)
    return web.json_response({"id": copy.context.id, "replayOf": original_id}, status=202)


def summary(stored: StoredEvent) -> dict[str, Any]:
    """The list item of one stored event."""
    event = stored.event
    return {
        "id": event.context.id,
        "seq": stored.seq,
        "eventSourceName": event.event_source_name,
        "eventName": event.event_name,
        "sourceKind": stored.source_kind,
        "type": event.context.type,
        "deliveryId": stored.delivery_id,
        "receivedAt": _time(stored.received_at),
        "dispatched": stored.dispatched,
    }


def detail(stored: StoredEvent) -> dict[str, Any]:
    """The summary plus the event envelope and its audit trail."""
    return {
        **summary(stored),
        "event": stored.event.to_json_dict(),
        "audit": [{"at": _time(a.at), "kind": a.kind, "detail": dict(a.detail)} for a in stored.audit],
    }


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _int_param(request: web.Request, name: str, default: int | None, *, low: int, high: int | None) -> Any:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidSpec(name, f"must be an integer {bounds}, got {text!r}")
    return int(text)
