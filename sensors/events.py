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

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

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
        return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        """Parse what :meth:`to_cloudevent_json` wrote; errors name the missing attribute."""
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise InvalidSpec("", f"event is not valid JSON: {exc}") from exc
        if not isinstance(raw, Mapping):
            raise InvalidSpec("", "event must be a JSON object")
        return cls(
            context=EventContext(
                id=_required(raw, "id"),
                source=_required(raw, "source"),
                type=_required(raw, "type"),
                subject=str(raw.get("subject", "")),
                time=parse_time(_required(raw, "time"), path="time"),
                specversion=str(raw.get("specversion", SPEC_VERSION)),
                datacontenttype=str(raw.get("datacontenttype", JSON_CONTENT_TYPE)),
            ),
            data=raw.get("data"),
            # Events stored by an Argo-style producer carry the names in source/subject.
            event_source_name=str(raw.get("eventsourcename", raw["source"])),
            event_name=str(raw.get("eventname", raw.get("subject", ""))),
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
