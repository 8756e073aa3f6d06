"""Real webhook payloads (opt-in): each verifies when signed, parses, and yields the right push summary.

Runs only when ``GITTRIGGER_WEBHOOK_FIXTURES_DIR`` names the shared fixtures folder
(``../shared/fixtures/webhooks`` on our machines; its README documents provenance, headers
and signature rules). The payloads are read in place, never copied into the project.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gittrigger.sources import bitbucket, gitea, github, gitlab
from gittrigger.sources.errors import SignatureRejected, WebhookRejected
from gittrigger.sources.pushes import ZERO_SHA, push_summary

ENV = "GITTRIGGER_WEBHOOK_FIXTURES_DIR"
ROOT = Path(os.environ[ENV]) if os.environ.get(ENV) else None
pytestmark = pytest.mark.skipif(ROOT is None, reason=f"set {ENV} to the shared webhook fixtures folder")

SECRET = b"conformance-secret"
WHEN = datetime(2024, 1, 1, tzinfo=UTC)
EVENT_HEADER = {
    "github": "X-Github-Event",
    "gitlab": "X-Gitlab-Event",
    "gitea": "X-Gitea-Event",
    "bitbucket": "X-Event-Key",
}
MODULES: dict[str, ModuleType] = {"github": github, "gitlab": gitlab, "gitea": gitea, "bitbucket": bitbucket}


def sha256_hex(body: bytes) -> str:
    return hmac.new(SECRET, body, hashlib.sha256).hexdigest()


def signed_headers(host: str, event: str, body: bytes) -> dict[str, str]:
    """The headers each host documents (fixtures README), signed the way that host signs."""
    if host == "github":
        return {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": "d-1",
            "X-Hub-Signature-256": "sha256=" + sha256_hex(body),
            "X-Hub-Signature": "sha1=" + hmac.new(SECRET, body, hashlib.sha1).hexdigest(),
        }
    if host == "gitlab":
        return {"X-Gitlab-Event": event, "X-Gitlab-Token": SECRET.decode(), "Idempotency-Key": "d-1"}
    if host == "gitea":
        return {
            "X-Gitea-Event": event,
            "X-Gitea-Delivery": "d-1",
            "X-Gitea-Signature": sha256_hex(body),
            "X-Forgejo-Signature": sha256_hex(body),
            "X-Hub-Signature-256": "sha256=" + sha256_hex(body),
        }
    return {"X-Event-Key": event, "X-Request-UUID": "d-1", "X-Hub-Signature": "sha256=" + sha256_hex(body)}


# file -> (event header value, expected push summary fields or None when not a push)
EXPECTED: dict[str, tuple[str, dict[str, Any] | None]] = {
    "github/push.json": (
        "push",
        {
            "ref": "refs/heads/master",
            "branch": "master",
            "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            "before": ZERO_SHA,
            "created": True,
            "deleted": False,
            "commits": 1,
            "head_message": "Initial commit",
            "clone_url": "https://github.com/Codertocat/Hello-World.git",
            "pusher": "Codertocat",
        },
    ),
    "github/push-tag-delete.json": (
        "push",
        {
            "ref": "refs/tags/simple-tag",
            "tag": "simple-tag",
            "branch": None,
            "after": ZERO_SHA,
            "deleted": True,
            "commits": 0,
        },
    ),
    "github/ping.json": ("ping", None),
    "github/pull_request-opened.json": ("pull_request", None),
    "github/pull_request-synchronize.json": ("pull_request", None),
    "gitlab/push.json": (
        "Push Hook",
        {
            "branch": "master",
            "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            "commits": 2,
            "head_message": "fixed readme",
            "clone_url": "http://example.com/mike/diaspora.git",
            "pusher": "jsmith",
        },
    ),
    "gitlab/push.go-gitlab.json": (
        "Push Hook",
        {
            "branch": "master",
            "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            "commits": 2,
        },
    ),
    "gitlab/push.go-scm.json": (
        "Push Hook",
        {
            "branch": "master",
            "after": "2adc9465c4edfc33834e173fe89436a7cb899a1d",
            "commits": 1,
            "clone_url": "https://gitlab.com/gitlab-org/hello-world.git",
        },
    ),
    "gitlab/tag_push.json": (
        "Tag Push Hook",
        {
            "tag": "v1.0.0",
            "branch": None,
            "created": True,
            "after": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
            "commits": 0,
        },
    ),
    "gitlab/tag_push.go-gitlab.json": ("Tag Push Hook", {"tag": "v1.0.0", "created": True, "commits": 1}),
    "gitlab/tag_push.go-scm.json": ("Tag Push Hook", {"tag": "v1.0.0", "created": True, "commits": 1}),
    "gitea/push.json": (
        "push",
        {
            "branch": "main",
            "after": "29be01c073851cf0db0c6a466e396b725a670453",
            "commits": 3,
            "head_message": "add some text\n",
            "first_commit": "93787b87",  # oldest first after reordering
            "clone_url": "http://127.0.0.1:3000/Test-CI/multi-line-secrets.git",
            "pusher": "test-user",
        },
    ),
    "gitea/push-new-branch.json": (
        "push",
        {
            "branch": "fdsafdsa",
            "before": ZERO_SHA,
            "created": True,
            "commits": 0,
            "after": "28c3613ae62640216bea5e7dc71aa65356e4298b",
        },
    ),
    "gitea/push.go-scm.json": (
        "push",
        {"branch": "master", "commits": 1, "head_message": "Updated readme\n"},
    ),
    "gitea/create-tag.json": ("create", None),
    "bitbucket/push.json": (
        "repo:push",
        {
            "branch": "main",
            "after": "c14c1bb05dfb1fdcdf06b31485fff61b0ea44277",
            "before": "a51241ae1f00cbe728930db48e890b18fd527f99",
            "commits": 1,
            "head_message": "a\n",
            "clone_url": "https://bitbucket.org/martinherren1984/publictestrepo.git",
        },
    ),
    "bitbucket/push.go-scm.json": (
        "repo:push",
        {
            "branch": "master",
            "after": "141977fedf5cf35aa290ac87d4b5177ac4cd9de1",
            "commits": 1,
            "repo_url": "https://bitbucket.org/brydzewski/foo",
        },
    ),
    "bitbucket/push-tag-create.json": (
        "repo:push",
        {
            "tag": "feature/x",
            "branch": None,
            "created": True,
            "before": ZERO_SHA,
            "commits": 0,
        },
    ),
}


def test_every_fixture_is_covered() -> None:
    """A payload added to the folder without an expectation here fails, so nothing goes unchecked."""
    assert ROOT is not None
    assert set(EXPECTED) == {p.relative_to(ROOT).as_posix() for p in ROOT.glob("*/*.json")}


def test_documented_github_test_vector() -> None:
    """The README's vector (GitHub's doc) verifies for GitHub and, unprefixed, for Gitea."""
    digest = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    github.verify(
        {"X-Hub-Signature-256": "sha256=" + digest}, b"Hello, World!", b"It's a Secret to Everybody"
    )
    gitea.verify({"X-Gitea-Signature": digest}, b"Hello, World!", b"It's a Secret to Everybody")


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=str)
def test_real_payload(name: str) -> None:
    """The real payload verifies when signed, fails with another secret, parses, and summarises."""
    assert ROOT is not None
    host = name.split("/")[0]
    module = MODULES[host]
    body = (ROOT / name).read_bytes()
    event, expected = EXPECTED[name]
    headers = signed_headers(host, event, body)

    module.verify(headers, body, SECRET)
    with pytest.raises(SignatureRejected):
        module.verify(headers, body, b"another secret")
    assert event == module.event_type(headers, body)
    assert (event == "ping") is module.is_ping(headers, body)
    assert module.delivery_id(headers) == "d-1"
    parts = module.to_event(headers, body, source_name="es", event_name="ev", received_at=WHEN)
    payload = parts.data["body"]
    assert {k: v for k, v in payload.items() if not k.startswith("X-GitHub-")} == json.loads(body)
    assert [event] == parts.data["headers"][EVENT_HEADER[host]]
    json.dumps(parts.data)

    if expected is None:
        with pytest.raises(WebhookRejected, match="not a push event"):
            push_summary(host, body)
        return
    summary = push_summary(host, body)
    actual: dict[str, Any] = {
        k: getattr(summary, k) for k in expected if k not in ("commits", "first_commit")
    }
    actual["commits"] = len(summary.commits)
    if "first_commit" in expected:
        actual["first_commit"] = summary.commits[0].id[:8]
    assert expected == actual
    assert summary.ref.startswith(("refs/heads/", "refs/tags/"))
    assert (summary.branch is None) != (summary.tag is None)
