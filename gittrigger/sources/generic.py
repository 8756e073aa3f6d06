"""
Generic JSON webhooks: Argo Events' ``webhook`` source (any client, optional Bearer token).

Pure; called by :mod:`gittrigger.http.webhooks` for an EventSource of type ``webhook``. Unlike
the Git-host sources the envelope key is ``header`` (singular: Argo's ``WebhookEventData``), a
form-encoded POST becomes ``{name: [values]}``, and a GET carries its query the same way. There
is no delivery id: the caller derives a dedup key (for example a hash of the body).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from gittrigger.sources import headers as hdr
from gittrigger.sources.envelope import EventParts, build, decode_form, decode_json, media_type
from gittrigger.sources.errors import WebhookRejected
from gittrigger.sources.signatures import check_token

SOURCE_TYPE: Final = "webhook"
_FORM: Final = "application/x-www-form-urlencoded"


def verify(headers: Mapping[str, str], body: bytes, secret: bytes | None) -> None:
    """With an ``authSecret``, require ``Authorization: Bearer <secret>``; otherwise accept."""
    if not secret:
        return
    check_token(
        hdr.lookup(headers, hdr.AUTHORIZATION), header=hdr.AUTHORIZATION, secret=secret, scheme="Bearer "
    )


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """Generic clients send no delivery id; the caller hashes the request instead."""
    return None


def event_type(headers: Mapping[str, str], body: bytes) -> str:
    """Always ``webhook``: a generic endpoint has one kind of event."""
    return SOURCE_TYPE


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """Generic webhooks have no ping."""
    return False


def decode_body(
    headers: Mapping[str, str],
    body: bytes,
    *,
    method: str = "POST",
    query: Mapping[str, list[str]] | None = None,
) -> Any:
    """The event body as Argo builds it: the query for GET, the form for form POSTs, else JSON."""
    if method.upper() == "GET":
        return {k: list(v) for k, v in (query or {}).items()}
    if method.upper() != "POST":
        raise WebhookRejected(f"unsupported method: {method}", 405)
    if media_type(headers) == _FORM:
        return decode_form(body)
    return decode_json(body)


def to_event(
    headers: Mapping[str, str],
    body: bytes,
    *,
    source_name: str,
    event_name: str,
    received_at: datetime,
    metadata: Mapping[str, str] | None = None,
    method: str = "POST",
    query: Mapping[str, list[str]] | None = None,
) -> EventParts:
    """The Argo Events ``webhook`` event; ``Authorization`` is masked as Argo does."""
    return build(
        source_type=SOURCE_TYPE,
        headers=headers,
        body=decode_body(headers, body, method=method, query=query),
        source_name=source_name,
        event_name=event_name,
        received_at=received_at,
        delivery_id=None,
        metadata=metadata,
        header_key="header",
    )
