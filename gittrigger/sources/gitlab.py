"""
GitLab webhook deliveries: check the shared token, name the delivery, build the Argo Events event.

Pure; called by :mod:`gittrigger.http.webhooks` for an EventSource of type ``gitlab``. GitLab
signs nothing: the hook's "secret token" travels verbatim in ``X-Gitlab-Token`` and Argo Events
compares it to ``secretToken``. We compare in constant time and mask the header in the stored
event, since it is the secret itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from gittrigger.sources import headers as hdr
from gittrigger.sources.envelope import EventParts, build, decode_object, first
from gittrigger.sources.errors import WebhookRejected
from gittrigger.sources.signatures import check_token

SOURCE_TYPE: Final = "gitlab"

# body.object_kind -> the X-Gitlab-Event value GitLab sends with it, for deliveries that
# lost the header (a proxy, a replay by hand).
_OBJECT_KINDS: Final = {
    "push": "Push Hook",
    "tag_push": "Tag Push Hook",
    "merge_request": "Merge Request Hook",
    "note": "Note Hook",
    "issue": "Issue Hook",
    "pipeline": "Pipeline Hook",
    "build": "Job Hook",
    "release": "Release Hook",
}


# An EventSource's ``events`` name GitLab's project-hook options (go-gitlab's AddProjectHookOptions,
# as Argo Events registers the hook); deliveries carry the hook's name in X-Gitlab-Event. The
# registry (gittrigger.eventsources) translates them once; a hook name itself is kept as it is.
HOOKS_BY_EVENT: Final = {
    "PushEvents": "Push Hook",
    "TagPushEvents": "Tag Push Hook",
    "IssuesEvents": "Issue Hook",
    "ConfidentialIssuesEvents": "Confidential Issue Hook",
    "MergeRequestsEvents": "Merge Request Hook",
    "NoteEvents": "Note Hook",
    "ConfidentialNoteEvents": "Confidential Note Hook",
    "JobEvents": "Job Hook",
    "PipelineEvents": "Pipeline Hook",
    "WikiPageEvents": "Wiki Page Hook",
    "DeploymentEvents": "Deployment Hook",
    "ReleasesEvents": "Release Hook",
}


def verify(headers: Mapping[str, str], body: bytes, secret: bytes | None) -> None:
    """Require ``X-Gitlab-Token`` to equal ``secret``; with no secret there is nothing to check."""
    if not secret:
        return
    check_token(hdr.lookup(headers, hdr.X_GITLAB_TOKEN), header=hdr.X_GITLAB_TOKEN, secret=secret)


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """``Idempotency-Key`` (17.4+, stable across retries), else ``X-Gitlab-Event-UUID`` (16.2+)."""
    return first(headers, hdr.IDEMPOTENCY_KEY, hdr.X_GITLAB_EVENT_UUID)


def event_type(headers: Mapping[str, str], body: bytes) -> str:
    """The ``X-Gitlab-Event`` value (``Push Hook``...), else derived from ``body.object_kind``."""
    value = first(headers, hdr.X_GITLAB_EVENT)
    if value is not None:
        return value
    kind = decode_object(body).get("object_kind")
    if isinstance(kind, str) and kind in _OBJECT_KINDS:
        return _OBJECT_KINDS[kind]
    raise WebhookRejected(f"missing {hdr.X_GITLAB_EVENT} header")


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """GitLab has no ping: its "Test" button sends an ordinary event."""
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
    """The Argo Events ``gitlab`` event for a verified delivery."""
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
