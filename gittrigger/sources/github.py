"""
GitHub webhook deliveries: verify the signature, name the delivery, build the Argo Events event.

Pure (bytes and headers in, values out); called by :mod:`gittrigger.http.webhooks` for an
EventSource of type ``github``. Semantics follow Argo Events' ``github`` source, which relies on
go-github's ``ValidatePayload``: the HMAC covers the raw request body whatever its content type,
``X-Hub-Signature-256`` is preferred and the legacy SHA-1 ``X-Hub-Signature`` accepted when it is
the only one, and a form-encoded delivery carries its JSON in the ``payload`` field. Argo Events
also copies the event and delivery headers into the body (``body.X-GitHub-Event``), and sensors
written for it may filter on that, so we do the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from gittrigger.sources import headers as hdr
from gittrigger.sources.envelope import EventParts, build, decode_form, decode_object, first, media_type
from gittrigger.sources.errors import SignatureRejected, WebhookRejected
from gittrigger.sources.signatures import check_hmac

SOURCE_TYPE: Final = "github"
_JSON: Final = frozenset({"", "application/json"})
_FORM: Final = "application/x-www-form-urlencoded"


def verify(headers: Mapping[str, str], body: bytes, secret: bytes | None) -> None:
    """Check the delivery's HMAC against ``secret``; with no secret there is nothing to check."""
    if not secret:
        return
    sha256 = hdr.lookup(headers, hdr.X_HUB_SIGNATURE_256)
    if sha256:
        check_hmac(
            sha256,
            header=hdr.X_HUB_SIGNATURE_256,
            body=body,
            secret=secret,
            algorithm="sha256",
            prefix="sha256=",
        )
        return
    sha1 = hdr.lookup(headers, hdr.X_HUB_SIGNATURE)
    if sha1:
        # GitHub Enterprise Server before 2.23 signs with SHA-1 only; go-github accepts it.
        check_hmac(
            sha1, header=hdr.X_HUB_SIGNATURE, body=body, secret=secret, algorithm="sha1", prefix="sha1="
        )
        return
    raise SignatureRejected(f"missing {hdr.X_HUB_SIGNATURE_256} header")


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """GitHub's per-delivery GUID; a redelivery from the hook settings page keeps it."""
    return first(headers, hdr.X_GITHUB_DELIVERY)


def event_type(headers: Mapping[str, str], body: bytes) -> str:
    """The ``X-GitHub-Event`` value (``push``, ``ping``, ``pull_request``...)."""
    value = first(headers, hdr.X_GITHUB_EVENT)
    if value is None:
        raise WebhookRejected(f"missing {hdr.X_GITHUB_EVENT} header")
    return value


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """GitHub sends ``ping`` once when a hook is created; it is answered, never dispatched."""
    return first(headers, hdr.X_GITHUB_EVENT) == "ping"


def decode_body(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The JSON payload, from a JSON body or from the ``payload`` field of a form body."""
    kind = media_type(headers)
    if kind in _JSON:
        return decode_object(body)
    if kind == _FORM:
        payload = decode_form(body).get("payload")
        if not payload:
            raise WebhookRejected("form-encoded body has no payload field")
        return decode_object(payload[0].encode("utf-8"))
    raise WebhookRejected(f"unsupported Content-Type {kind!r}: expected application/json or {_FORM}")


def to_event(
    headers: Mapping[str, str],
    body: bytes,
    *,
    source_name: str,
    event_name: str,
    received_at: datetime,
    metadata: Mapping[str, str] | None = None,
) -> EventParts:
    """The Argo Events ``github`` event for a verified delivery."""
    payload = decode_body(headers, body)
    # Argo Events' parseValidateRequest adds these two keys ("" when the header is absent).
    payload[hdr.X_GITHUB_EVENT] = hdr.lookup(headers, hdr.X_GITHUB_EVENT) or ""
    payload[hdr.X_GITHUB_DELIVERY] = hdr.lookup(headers, hdr.X_GITHUB_DELIVERY) or ""
    return build(
        source_type=SOURCE_TYPE,
        headers=headers,
        body=payload,
        source_name=source_name,
        event_name=event_name,
        received_at=received_at,
        delivery_id=delivery_id(headers),
        metadata=metadata,
    )
