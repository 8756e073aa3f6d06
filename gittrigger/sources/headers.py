"""
HTTP header names the Git hosts send, and Go's canonical spelling of header names.

Used by every host module in :mod:`gittrigger.sources` and by :mod:`gittrigger.http.webhooks`.
Argo Events stores request headers as Go's ``http.Header`` does: canonical names
(``X-Github-Event``, not ``X-GitHub-Event``) mapped to lists of values, so sensors written for
Argo Events address ``headers.X-Github-Event.0``; :func:`as_argo` builds exactly that shape.
Lookups here are case-insensitive whatever mapping the caller passes (a plain ``dict`` in
tests, aiohttp's ``CIMultiDictProxy`` in the server).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Final

# GitHub
X_GITHUB_EVENT: Final = "X-GitHub-Event"
X_GITHUB_DELIVERY: Final = "X-GitHub-Delivery"
X_GITHUB_HOOK_ID: Final = "X-GitHub-Hook-ID"
X_HUB_SIGNATURE_256: Final = "X-Hub-Signature-256"
# GitHub's legacy SHA-1 signature; Bitbucket Cloud reuses the name for a SHA-256 signature.
X_HUB_SIGNATURE: Final = "X-Hub-Signature"

# GitLab
X_GITLAB_TOKEN: Final = "X-Gitlab-Token"
X_GITLAB_EVENT: Final = "X-Gitlab-Event"
X_GITLAB_EVENT_UUID: Final = "X-Gitlab-Event-UUID"
X_GITLAB_WEBHOOK_UUID: Final = "X-Gitlab-Webhook-UUID"
X_GITLAB_INSTANCE: Final = "X-Gitlab-Instance"
# GitLab 17.4+: the same value on every retry of one delivery, so it is the dedup key.
IDEMPOTENCY_KEY: Final = "Idempotency-Key"

# Gitea, Forgejo and Gogs (Gitea sends all three families for compatibility)
X_GITEA_EVENT: Final = "X-Gitea-Event"
X_GITEA_EVENT_TYPE: Final = "X-Gitea-Event-Type"
X_GITEA_DELIVERY: Final = "X-Gitea-Delivery"
X_GITEA_SIGNATURE: Final = "X-Gitea-Signature"
X_FORGEJO_EVENT: Final = "X-Forgejo-Event"
X_FORGEJO_EVENT_TYPE: Final = "X-Forgejo-Event-Type"
X_FORGEJO_DELIVERY: Final = "X-Forgejo-Delivery"
X_FORGEJO_SIGNATURE: Final = "X-Forgejo-Signature"
X_GOGS_EVENT: Final = "X-Gogs-Event"
X_GOGS_DELIVERY: Final = "X-Gogs-Delivery"
X_GOGS_SIGNATURE: Final = "X-Gogs-Signature"

# Bitbucket Cloud
X_EVENT_KEY: Final = "X-Event-Key"
X_REQUEST_UUID: Final = "X-Request-UUID"
X_HOOK_UUID: Final = "X-Hook-UUID"
X_ATTEMPT_NUMBER: Final = "X-Attempt-Number"

# Generic
CONTENT_TYPE: Final = "Content-Type"
AUTHORIZATION: Final = "Authorization"
USER_AGENT: Final = "User-Agent"

# RFC 7230 token characters besides letters and digits; Go leaves any other name untouched.
_TOKEN_PUNCTUATION: Final = frozenset("!#$%&'*+-.^_`|~")


@functools.lru_cache(maxsize=4096)  # the same few dozen names arrive with every delivery
def canonical(name: str) -> str:
    """Spell ``name`` as Go's ``textproto.CanonicalMIMEHeaderKey`` does.

    The first letter and every letter after a hyphen are upper-cased, the rest lower-cased
    (``x-github-event`` -> ``X-Github-Event``). A name holding a byte that is not a valid
    header token (a space, a colon, non-ASCII) is returned unchanged, as Go does.
    """
    if not name or not all((c.isascii() and c.isalnum()) or c in _TOKEN_PUNCTUATION for c in name):
        return name
    out: list[str] = []
    upper = True
    for c in name:
        out.append(c.upper() if upper else c.lower())
        upper = c == "-"
    return "".join(out)


def lookup(headers: Mapping[str, str], name: str) -> str | None:
    """The first value of header ``name``, compared case-insensitively; ``None`` when absent."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def as_argo(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Headers as Argo Events stores them: canonical name -> every value, in arrival order.

    ``items()`` of a multidict yields repeated headers once each, so they all land in the list.
    """
    out: dict[str, list[str]] = {}
    for key, value in headers.items():
        out.setdefault(canonical(key), []).append(value)
    return out
