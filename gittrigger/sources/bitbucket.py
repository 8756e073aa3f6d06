"""
Bitbucket Cloud webhook deliveries: verify the signature, name the delivery, build the event.

Pure; called by :mod:`gittrigger.http.webhooks` for an EventSource of type ``bitbucket``.
Bitbucket Cloud signs only when the hook has a secret (since 2023): ``X-Hub-Signature:
sha256=<hex HMAC-SHA256 of the raw body>``, the name of GitHub's legacy SHA-1 header with
SHA-256 content. Argo Events' ``bitbucket`` source predates that and verifies nothing; our
``webhookSecret`` field adds the check while keeping its ``{headers, body, metadata}`` envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from gittrigger.sources import headers as hdr
from gittrigger.sources.envelope import EventParts, build, decode_object, first
from gittrigger.sources.errors import WebhookRejected
from gittrigger.sources.signatures import check_hmac

SOURCE_TYPE: Final = "bitbucket"


def verify(headers: Mapping[str, str], body: bytes, secret: bytes | None) -> None:
    """Check ``X-Hub-Signature: sha256=<hex>`` against ``secret``; with no secret nothing is checked."""
    if not secret:
        return
    check_hmac(
        hdr.lookup(headers, hdr.X_HUB_SIGNATURE),
        header=hdr.X_HUB_SIGNATURE,
        body=body,
        secret=secret,
        algorithm="sha256",
        prefix="sha256=",
    )


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """``X-Request-UUID``, Bitbucket's id of this request (``X-Hook-UUID`` names the hook)."""
    return first(headers, hdr.X_REQUEST_UUID)


def event_type(headers: Mapping[str, str], body: bytes) -> str:
    """The ``X-Event-Key`` value (``repo:push``, ``pullrequest:created``...)."""
    value = first(headers, hdr.X_EVENT_KEY)
    if value is None:
        raise WebhookRejected(f"missing {hdr.X_EVENT_KEY} header")
    return value


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """Bitbucket Cloud has no ping event."""
    return False


def to_event(
    headers: Mapping[str, str],
    body: bytes,
    *,
    source_name: str,
    event_name: str,
    received_at: datetime,
    metadata: Mapping[str, str] | None = None,
) -> EventParts:
    """The Argo Events ``bitbucket`` event for a verified delivery."""
    return build(
        source_type=SOURCE_TYPE,
        headers=headers,
        body=decode_object(body),
        source_name=source_name,
        event_name=event_name,
        received_at=received_at,
        delivery_id=delivery_id(headers),
        metadata=metadata,
    )
