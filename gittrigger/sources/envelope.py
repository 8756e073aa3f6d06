"""
The event every webhook source produces: :class:`EventParts`, in Argo Events' shape.

Called by the host modules (:mod:`gittrigger.sources.github` and friends); the caller of
those (:mod:`gittrigger.http.webhooks`) turns :class:`EventParts` into a ``sensors.Event``.
Argo Events wraps a delivery as ``{"headers": {Canonical-Name: [values]}, "body": <JSON>,
"metadata": {...}}`` (the generic ``webhook`` source says ``header``, not ``headers``), and
publishes it as a CloudEvent whose ``source`` is the EventSource name, ``type`` the source
type, ``subject`` the event name. Sensors address exactly those paths (``body.ref``,
``headers.X-Github-Event``), so the shape is copied, not improved.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from urllib.parse import parse_qs

from gittrigger.sources import headers as hdr
from gittrigger.sources.errors import WebhookRejected
from workflows import jsontext

# Argo Events replaces the Authorization header before dispatch; a GitLab token is the
# same kind of secret, so it is masked too (Argo passes it through; we do not store secrets).
MASK: Final = "*** Masked Auth Secret ***"
_MASKED: Final = frozenset({hdr.AUTHORIZATION.lower(), hdr.X_GITLAB_TOKEN.lower()})

# A fixed namespace so one delivery always gets the same event id (uuid5 below).
_EVENT_ID_NAMESPACE: Final = uuid.UUID("6f0c2a8e-7e0c-4d1a-9a55-6a9b8f3d2c10")


@dataclass(frozen=True, slots=True, kw_only=True)
class EventParts:
    """A verified delivery: the CloudEvents ``context``, Argo's ``data`` and the dedup key."""

    context: Mapping[str, Any]
    data: Mapping[str, Any]
    delivery_id: str | None


class WebhookHost(Protocol):
    """What every host module (``github``, ``gitlab``, ``gitea``, ``bitbucket``, ``generic``) offers.

    The modules satisfy it structurally, so the HTTP edge can hold ``{"github": github, ...}``
    typed as ``Mapping[str, WebhookHost]`` and call them alike.
    """

    @property
    def SOURCE_TYPE(self) -> str:  # upper case: it is a module constant on the host modules
        """The EventSource type this host serves (``github``...)."""
        ...

    def verify(self, headers: Mapping[str, str], body: bytes, secret: bytes | None) -> None:
        """Raise :class:`SignatureRejected` unless the delivery is signed with ``secret`` (if any)."""
        ...

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """The host's id of this delivery, the dedup key; ``None`` when it sends none."""
        ...

    def event_type(self, headers: Mapping[str, str], body: bytes) -> str:
        """The host's name for the kind of event (``push``, ``Push Hook``, ``repo:push``)."""
        ...

    def is_ping(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether this is a set-up ping to answer 2xx without dispatching."""
        ...

    def to_event(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        source_name: str,
        event_name: str,
        received_at: datetime,
        metadata: Mapping[str, str] | None = None,
    ) -> EventParts:
        """The Argo Events event for a verified delivery; :class:`WebhookRejected` if malformed."""
        ...


def decode_json(body: bytes) -> Any:
    """Parse ``body`` as JSON or reject it as INVALID with the parser's one-line reason."""
    try:
        return jsontext.loads(body)
    except json.JSONDecodeError as e:
        where = f"line {e.lineno} column {e.colno}"
        raise WebhookRejected(f"body is not valid JSON: {e.msg} at {where}") from None
    except UnicodeDecodeError as e:
        raise WebhookRejected(f"body is not valid JSON: not UTF-8 ({e.reason})") from None
    except ValueError as e:  # NaN, Infinity, a number no double holds: not JSON (Go refuses them too)
        raise WebhookRejected(f"body is not valid JSON: {e}") from None


def decode_object(body: bytes) -> dict[str, Any]:
    """Like :func:`decode_json` but the document must be an object (every Git host sends one)."""
    value = decode_json(body)
    if not isinstance(value, dict):
        raise WebhookRejected(f"body is not valid JSON: expected an object, got {type(value).__name__}")
    return value


def argo_headers(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Headers as Argo Events stores them, with secrets masked."""
    out = hdr.as_argo(headers)
    for name in list(out):
        if name.lower() in _MASKED:
            out[name] = [MASK for _ in out[name]]
    return out


def event_id_for(*, source_type: str, source_name: str, event_name: str, delivery_id: str | None) -> str:
    """The CloudEvent id: 32 hex digits like Argo's, stable for a redelivered delivery id.

    Argo Events uses a random UUID; deriving it from the host's delivery id instead means a
    redelivery carries the same event id, which is what the event store deduplicates on.
    Without a delivery id it is random, as in Argo.
    """
    if delivery_id is None:
        return uuid.uuid4().hex
    name = f"{source_type}/{source_name}/{event_name}/{delivery_id}"
    # uuid.uuid5(_EVENT_ID_NAMESPACE, name).hex, without building UUID objects (a third the cost,
    # once per delivery): SHA-1 of namespace + name, version 5 and the RFC 4122 variant set.
    digest = bytearray(hashlib.sha1(_EVENT_ID_NAMESPACE.bytes + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return digest.hex()


def rfc3339(moment: datetime) -> str:
    """``moment`` as RFC 3339 in UTC (``2024-05-01T12:00:00Z``, fractions kept), as Go marshals it."""
    if moment.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def build(
    *,
    source_type: str,
    headers: Mapping[str, str],
    body: Any,
    source_name: str,
    event_name: str,
    received_at: datetime,
    delivery_id: str | None,
    metadata: Mapping[str, str] | None = None,
    header_key: str = "headers",
) -> EventParts:
    """Wrap a decoded body into Argo Events' envelope and CloudEvents context."""
    data: dict[str, Any] = {header_key: argo_headers(headers), "body": body}
    if metadata:  # Go's `omitempty`: no key at all when there is no metadata
        data["metadata"] = dict(metadata)
    context = {
        "id": event_id_for(
            source_type=source_type, source_name=source_name, event_name=event_name, delivery_id=delivery_id
        ),
        "source": source_name,
        "specversion": "1.0",
        "type": source_type,
        "subject": event_name,
        "time": rfc3339(received_at),
        "datacontenttype": "application/json",
    }
    return EventParts(context=context, data=data, delivery_id=delivery_id)


def media_type(headers: Mapping[str, str]) -> str:
    """The Content-Type without parameters, lower-cased; ``""`` when absent."""
    value = hdr.lookup(headers, hdr.CONTENT_TYPE) or ""
    return value.split(";", 1)[0].strip().lower()


def decode_form(body: bytes) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body as Go's ``url.ParseQuery``: name -> values."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WebhookRejected(f"form body is not UTF-8 ({e.reason})") from None
    return parse_qs(text, keep_blank_values=True)


def first(headers: Mapping[str, str], *names: str) -> str | None:
    """The first non-empty value among ``names``, in order; ``None`` when none is set."""
    for name in names:
        value = hdr.lookup(headers, name)
        if value:
            return value
    return None
