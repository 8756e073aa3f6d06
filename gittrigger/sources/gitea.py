"""
Gitea and Forgejo webhook deliveries: verify the signature, name the delivery, build the event.

Pure; called by :mod:`gittrigger.http.webhooks` for an EventSource of type ``gitea`` (or
``forgejo``: same wire format). Argo Events has no Gitea source, so this module defines one on
the model of its ``github`` source: the same ``{headers, body, metadata}`` envelope. Gitea signs
the raw body with HMAC-SHA256 and sends bare lowercase hex (no ``sha256=`` prefix) in
``X-Gitea-Signature``; Forgejo sends the same value as ``X-Forgejo-Signature`` and older
Gitea/Gogs as ``X-Gogs-Signature``. With no secret configured the headers are present but empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from gittrigger.sources import headers as hdr
from gittrigger.sources.envelope import EventParts, build, decode_object, first
from gittrigger.sources.errors import WebhookRejected
from gittrigger.sources.signatures import check_hmac

SOURCE_TYPE: Final = "gitea"

_SIGNATURES: Final = (hdr.X_GITEA_SIGNATURE, hdr.X_FORGEJO_SIGNATURE, hdr.X_GOGS_SIGNATURE)
_DELIVERIES: Final = (
    hdr.X_GITEA_DELIVERY,
    hdr.X_FORGEJO_DELIVERY,
    hdr.X_GOGS_DELIVERY,
    hdr.X_GITHUB_DELIVERY,
)
_EVENTS: Final = (hdr.X_GITEA_EVENT, hdr.X_FORGEJO_EVENT, hdr.X_GOGS_EVENT, hdr.X_GITHUB_EVENT)


def verify(headers: Mapping[str, str], body: bytes, secret: bytes | None) -> None:
    """Check the HMAC-SHA256 of the body against ``secret``; with no secret there is nothing to check."""
    if not secret:
        return
    for name in _SIGNATURES:
        sent = hdr.lookup(headers, name)
        if sent:
            check_hmac(sent, header=name, body=body, secret=secret, algorithm="sha256", prefix="")
            return
    check_hmac(None, header=hdr.X_GITEA_SIGNATURE, body=body, secret=secret, algorithm="sha256", prefix="")


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """The delivery UUID (``X-Gitea-Delivery``, or the Forgejo/Gogs/GitHub alias)."""
    return first(headers, *_DELIVERIES)


def event_type(headers: Mapping[str, str], body: bytes) -> str:
    """The ``X-Gitea-Event`` value (``push``, ``create``, ``pull_request``...)."""
    value = first(headers, *_EVENTS)
    if value is None:
        raise WebhookRejected(f"missing {hdr.X_GITEA_EVENT} header")
    return value


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """Gitea has no ping: "Test Delivery" sends a ``push`` built from the last commit."""
    return False


def to_event(
    headers: Mapping[str, str],
    body: bytes,
    *,
    source_name: str,
    event_name: str,
    received_at: datetime,
    metadata: Mapping[str, str] | None = None,
    source_type: str = SOURCE_TYPE,
) -> EventParts:
    """The ``gitea`` event (``source_type="forgejo"`` for a ``forgejo`` EventSource entry)."""
    return build(
        source_type=source_type,
        headers=headers,
        body=decode_object(body),
        source_name=source_name,
        event_name=event_name,
        received_at=received_at,
        delivery_id=delivery_id(headers),
        metadata=metadata,
    )
