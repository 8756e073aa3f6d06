"""The push summary normalised across GitHub, GitLab, Gitea/Forgejo and Bitbucket Cloud."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gittrigger.sources.errors import WebhookRejected
from gittrigger.sources.pushes import ZERO_SHA, Commit, push_summaries, push_summary, split_ref

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"


def load(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


# host, fixture, expected fields (a subset of PushSummary), expected commit ids oldest first
CASES: list[tuple[str, str, dict[str, Any], list[str]]] = [
    (
        "github",
        "github/push.json",
        {
            "repo_url": "https://github.com/acme/widgets",
            "clone_url": "https://github.com/acme/widgets.git",
            "ref": "refs/heads/main",
            "branch": "main",
            "tag": None,
            "before": "1f9c6b0f0d2b9a3e7c1a4d5e6f708192a3b4c5d6",
            "after": "8e2d1c4b5a69788766554433221100ffeeddccbb",
            "head_message": "Fix typo in gear table\n\nSigned-off-by: Ada <ada@example.com>",
            "pusher": "ada",
            "deleted": False,
            "created": False,
        },
        ["3a4b5c6d7e8f90112233445566778899aabbccdd", "8e2d1c4b5a69788766554433221100ffeeddccbb"],
    ),
    (
        "github",
        "github/push-delete-tag.json",
        {
            "ref": "refs/tags/v0.9.0",
            "branch": None,
            "tag": "v0.9.0",
            "after": ZERO_SHA,
            "deleted": True,
            "head_message": "",
        },
        [],
    ),
    (
        "gitlab",
        "gitlab/push.json",
        {
            "repo_url": "https://gitlab.example.com/navy/compiler",
            "clone_url": "https://gitlab.example.com/navy/compiler.git",
            "branch": "release/1.x",
            "tag": None,
            "after": "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00",
            "head_message": "Find the moth\n",
            "pusher": "grace",
            "deleted": False,
        },
        ["aaaabbbbccccddddeeeeffff0000111122223333", "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"],
    ),
    (
        "gitlab",
        "gitlab/tag_push.json",
        # For an annotated tag `after` is the tag object; checkout_sha names the commit.
        {
            "tag": "v2.0.0",
            "branch": None,
            "created": True,
            "deleted": False,
            "head_message": "Find the moth\n",
        },
        ["c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"],
    ),
    (
        "gitea",
        "gitea/push.json",
        {
            "repo_url": "https://codeberg.example.org/linus/kernel",
            "clone_url": "https://codeberg.example.org/linus/kernel.git",
            "branch": "main",
            "after": "3" * 40,
            "head_message": "Merge the scheduler fix\n",
            "pusher": "linus",
        },
        ["2" * 40, "3" * 40],  # Gitea sends newest first
    ),
    (
        "forgejo",
        "gitea/push.json",
        {"branch": "main", "pusher": "linus"},
        ["2" * 40, "3" * 40],
    ),
    (
        "bitbucket",
        "bitbucket/push.json",
        {
            "repo_url": "https://bitbucket.org/nasa/apollo",
            "clone_url": "https://bitbucket.org/nasa/apollo.git",
            "ref": "refs/heads/guidance",
            "branch": "guidance",
            "before": "4" * 40,
            "after": "6" * 40,
            "head_message": "Shed low-priority jobs on overload\n",
            "pusher": "margaret",
            "deleted": False,
            "created": False,
        },
        ["5" * 40, "6" * 40],  # Bitbucket sends newest first
    ),
]


@pytest.mark.parametrize(
    ("host", "path", "expected", "commit_ids"),
    CASES,
    ids=["github", "github-tag-delete", "gitlab", "gitlab-tag", "gitea", "forgejo", "bitbucket"],
)
def test_push_summary(host: str, path: str, expected: dict[str, Any], commit_ids: list[str]) -> None:
    """Every host's push normalises to the same fields, commits oldest first."""
    summary = push_summary(host, load(path))
    assert expected == {k: getattr(summary, k) for k in expected}
    assert commit_ids == [c.id for c in summary.commits]


def test_file_lists_are_kept() -> None:
    """Added/modified/removed survive, for path filters."""
    summary = push_summary("github", load("github/push.json"))
    assert (
        Commit(
            id="8e2d1c4b5a69788766554433221100ffeeddccbb",
            message="Fix typo in gear table\n\nSigned-off-by: Ada <ada@example.com>",
            added=(),
            modified=("docs/gears.md",),
            removed=("docs/old.md",),
        )
        == summary.commits[-1]
    )


def test_decoded_body_is_accepted() -> None:
    """The sensor layer already holds parsed JSON; it need not re-encode it."""
    assert push_summary("gitlab", json.loads(load("gitlab/push.json"))) == push_summary(
        "gitlab", load("gitlab/push.json")
    )


def test_bitbucket_returns_every_ref_change() -> None:
    """One Bitbucket delivery can move several refs; a deleted tag has ``new: null``."""
    branch, tag = push_summaries("bitbucket", load("bitbucket/push.json"))
    assert (branch.branch, branch.deleted) == ("guidance", False)
    assert (tag.tag, tag.deleted, tag.after, tag.before) == ("rc1", True, ZERO_SHA, "4" * 40)


@pytest.mark.parametrize(
    ("host", "body", "reason"),
    [
        ("github", b'{"zen": "ping", "hook_id": 1}', "body.ref is missing: not a push event"),
        ("gitea", b'{"ref": "v1", "ref_type": "tag", "sha": "abc"}', "body.before is missing"),
        ("gitlab", b'{"object_kind": "merge_request"}', "body.after is missing"),
        ("bitbucket", b'{"pullrequest": {}}', "body.push.changes is missing"),
        ("bitbucket", b'{"push": {"changes": []}}', "body.push.changes is missing"),
        ("github", b"{oops", "body is not valid JSON"),
    ],
    ids=["github-ping", "gitea-create", "gitlab-mr", "bitbucket-pr", "bitbucket-empty", "garbage"],
)
def test_non_push_bodies_are_rejected(host: str, body: bytes, reason: str) -> None:
    """A body that is not a push of that host is INVALID, naming the missing field."""
    with pytest.raises(WebhookRejected, match=reason):
        push_summary(host, body)


def test_unknown_host() -> None:
    """A host name outside the four is a programming error."""
    with pytest.raises(ValueError, match="unknown host 'gerrit'"):
        push_summary("gerrit", b"{}")


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("refs/heads/feature/x", ("feature/x", None)),
        ("refs/tags/v1", (None, "v1")),
        ("refs/notes/x", (None, None)),
    ],
    ids=["branch", "tag", "other"],
)
def test_split_ref(ref: str, expected: tuple[str | None, str | None]) -> None:
    """Full ref names split into branch or tag."""
    assert split_ref(ref) == expected
