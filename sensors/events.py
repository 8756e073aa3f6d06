"""
The event envelope that sensors match: Argo Events' ``Event`` (CloudEvents context + JSON data).

Built by the event sources in :mod:`gittrigger.sources` and consumed by :mod:`sensors.matching`.
The shape is exactly what Argo Events sensors address, so manifests written for Argo Events
work unchanged: ``context`` holds ``id``, ``source``, ``type``, ``subject``, ``time``,
``specversion`` and ``datacontenttype``; ``data`` is the decoded JSON payload, for webhooks
``{"header": {Canonical-Name: [values]}, "body": ..., "metadata": {...}}`` (Argo's webhook source
writes ``header``; the Git sources write ``headers``).

In Argo Events ``context.source`` is the EventSource name and ``context.subject`` the event
name; we keep them as explicit ``event_source_name`` / ``event_name`` fields because that is
what dependencies match on, and sources are free to set ``source``/``subject`` as they like.

:meth:`Event.to_cloudevent_json` / :meth:`Event.from_json` are the storage and replay format:
a structured-mode CloudEvent with the two names as the extensions ``eventsourcename`` and
``eventname``. ``data`` is treated as read-only once an Event is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from workflows import jsontext
from workflows.errors import InvalidSpec

SPEC_VERSION: Final = "1.0"
JSON_CONTENT_TYPE: Final = "application/json"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventContext:
    """CloudEvents context attributes, named as Argo Events' ``EventContext`` JSON names them."""

    id: str
    source: str
    type: str
    subject: str = ""
    time: datetime
    specversion: str = SPEC_VERSION
    datacontenttype: str = JSON_CONTENT_TYPE

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("EventContext.time must be timezone-aware")

    def to_json_dict(self) -> dict[str, str]:
        """The context as Argo Events marshals it (``time`` as RFC 3339 in UTC, seconds precision)."""
        return {
            "id": self.id,
            "source": self.source,
            "specversion": self.specversion,
            "type": self.type,
            "datacontenttype": self.datacontenttype,
            "subject": self.subject,
            "time": format_time(self.time),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One event from an event source, addressed to dependencies by source and event name."""

    context: EventContext
    data: Any = field(default=None)
    event_source_name: str
    event_name: str

    def to_cloudevent_json(self) -> str:
        """Structured-mode CloudEvent JSON (for the event store and replay)."""
        envelope: dict[str, Any] = {
            "specversion": self.context.specversion,
            "id": self.context.id,
            "source": self.context.source,
            "type": self.context.type,
            "subject": self.context.subject,
            "time": self.context.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "datacontenttype": self.context.datacontenttype,
            "eventsourcename": self.event_source_name,
            "eventname": self.event_name,
            "data": self.data,
        }
        return jsontext.dumps(envelope)

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        """Parse what :meth:`to_cloudevent_json` wrote; errors name the missing attribute."""
        try:
            raw = jsontext.loads(text, lenient=True)
        except ValueError as exc:
            raise InvalidSpec("", f"event is not valid JSON: {exc}") from exc
        if not isinstance(raw, Mapping):
            raise InvalidSpec("", "event must be a JSON object")
        return cls.from_argo(
            raw,
            raw.get("data"),
            event_source_name=raw.get("eventsourcename"),
            event_name=raw.get("eventname"),
        )

    @classmethod
    def from_argo(
        cls,
        context: Mapping[str, Any],
        data: Any,
        *,
        event_source_name: str | None = None,
        event_name: str | None = None,
    ) -> Event:
        """An Event from Argo's context JSON (``time`` as RFC 3339 text or a datetime) and data.

        As in Argo Events, the names default to ``source`` (EventSource name) and ``subject``
        (event name): this is how the webhook sources' ``EventParts`` become Events.
        """
        moment = context.get("time")
        return cls(
            context=EventContext(
                id=_required(context, "id"),
                source=_required(context, "source"),
                type=_required(context, "type"),
                subject=str(context.get("subject") or ""),
                time=moment
                if isinstance(moment, datetime)
                else parse_time(_required(context, "time"), path="time"),
                specversion=str(context.get("specversion") or SPEC_VERSION),
                datacontenttype=str(context.get("datacontenttype") or JSON_CONTENT_TYPE),
            ),
            data=data,
            event_source_name=str(event_source_name or context["source"]),
            event_name=str(event_name if event_name is not None else context.get("subject") or ""),
        )

    def to_json_dict(self) -> dict[str, Any]:
        """``{"context": ..., "data": ...}``: what a parameter with no key resolves to.

        Argo Events marshals ``data`` as base64 bytes there; we give the JSON value itself,
        which is what anyone reading the parameter actually wants.
        """
        return {"context": self.context.to_json_dict(), "data": self.data}


def _required(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidSpec(key, "required CloudEvent attribute is missing")
    return value


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes' ``metav1.Time`` marshals."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str, *, path: str) -> datetime:
    """An RFC 3339 timestamp (``Z`` or offset) as an aware datetime."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InvalidSpec(path, f"not an RFC 3339 time: {text!r}") from exc
    if moment.tzinfo is None:
        raise InvalidSpec(path, f"time has no UTC offset: {text!r}")
    return moment
