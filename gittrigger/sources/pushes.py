"""
One normalised view of a push, whichever host sent it: :func:`push_summary` -> :class:`PushSummary`.

Pure; called by the CI filters and by commit-status reporting, which must not care whether a
push came from GitHub, GitLab, Gitea/Forgejo or Bitbucket Cloud. What differs per host:
- GitHub and Gitea put ``ref``/``before``/``after``/``commits`` at the top; Gitea lists commits
  newest first, GitHub oldest first.
- GitLab names the checked-out commit ``checkout_sha`` and the clone URL ``project.git_http_url``.
- Bitbucket Cloud nests everything in ``push.changes[]`` (``old``/``new`` ref states, ``new: null``
  for a deletion, commits newest first and without file lists).
Commits are always returned oldest first, so ``commits[-1]`` is the head.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from gittrigger.sources.envelope import decode_object
from gittrigger.sources.errors import WebhookRejected

ZERO_SHA: Final = "0" * 40
HOSTS: Final = frozenset({"github", "gitlab", "gitea", "forgejo", "bitbucket"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    """One pushed commit; file lists are empty where the host does not send them (Bitbucket)."""

    id: str
    message: str
    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PushSummary:
    """What a push changed: which ref, from which sha to which, and the commits in between."""

    repo_url: str
    clone_url: str
    ref: str
    branch: str | None
    tag: str | None
    before: str
    after: str
    commits: tuple[Commit, ...]
    head_message: str
    pusher: str
    deleted: bool
    created: bool


def push_summary(host: str, body: bytes | Mapping[str, Any]) -> PushSummary:
    """Normalise a push delivery of ``host`` (raw bytes or already-decoded JSON).

    Raises :class:`WebhookRejected` (INVALID) when the body is not a push of that host.
    Bitbucket may carry several ref changes in one delivery; this returns the first,
    :func:`push_summaries` returns them all.
    """
    return push_summaries(host, body)[0]


def push_summaries(host: str, body: bytes | Mapping[str, Any]) -> tuple[PushSummary, ...]:
    """Every ref change in one push delivery (one for every host but Bitbucket)."""
    payload = decode_object(body) if isinstance(body, bytes | bytearray) else body
    if host == "github":
        return (_github(payload),)
    if host in ("gitea", "forgejo"):
        return (_gitea(payload),)
    if host == "gitlab":
        return (_gitlab(payload),)
    if host == "bitbucket":
        return _bitbucket(payload)
    raise ValueError(f"unknown host {host!r}; expected one of {sorted(HOSTS)}")


def split_ref(ref: str) -> tuple[str | None, str | None]:
    """``refs/heads/main`` -> (``main``, None); ``refs/tags/v1`` -> (None, ``v1``)."""
    if ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/"), None
    if ref.startswith("refs/tags/"):
        return None, ref.removeprefix("refs/tags/")
    return None, None


def _get(payload: Mapping[str, Any], path: str, *, required: bool = True) -> Any:
    value: Any = payload
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if required and (value is None or value == ""):
        raise WebhookRejected(f"body.{path} is missing: not a push event")
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _paths(raw: Any) -> tuple[str, ...]:
    return tuple(p for p in raw if isinstance(p, str)) if isinstance(raw, list) else ()


def _commits(raw: Any) -> list[Commit]:
    if not isinstance(raw, Sequence):
        return []
    return [
        Commit(
            id=_text(c.get("id") or c.get("hash")),
            message=_text(c.get("message")),
            added=_paths(c.get("added")),
            modified=_paths(c.get("modified")),
            removed=_paths(c.get("removed")),
        )
        for c in raw
        if isinstance(c, Mapping)
    ]


def _head_message(commits: Sequence[Commit], after: str, head: Any) -> str:
    if isinstance(head, Mapping) and isinstance(head.get("message"), str):
        return str(head["message"])
    for commit in commits:
        if commit.id == after:
            return commit.message
    return commits[-1].message if commits else ""


def _summary(
    *,
    ref: str,
    before: str,
    after: str,
    commits: list[Commit],
    head: Any,
    repo_url: str,
    clone_url: str,
    pusher: str,
    deleted: bool | None = None,
    created: bool | None = None,
) -> PushSummary:
    branch, tag = split_ref(ref)
    return PushSummary(
        repo_url=repo_url,
        clone_url=clone_url,
        ref=ref,
        branch=branch,
        tag=tag,
        before=before,
        after=after,
        commits=tuple(commits),
        head_message=_head_message(commits, after, head),
        pusher=pusher,
        deleted=after == ZERO_SHA if deleted is None else deleted,
        created=before == ZERO_SHA if created is None else created,
    )


def _github(p: Mapping[str, Any]) -> PushSummary:
    deleted, created = p.get("deleted"), p.get("created")
    return _summary(
        ref=_get(p, "ref"),
        before=_get(p, "before"),
        after=_get(p, "after"),
        commits=_commits(p.get("commits")),
        head=p.get("head_commit"),
        repo_url=_get(p, "repository.html_url"),
        clone_url=_get(p, "repository.clone_url"),
        pusher=_text(_get(p, "pusher.name", required=False)),
        deleted=deleted if isinstance(deleted, bool) else None,
        created=created if isinstance(created, bool) else None,
    )


def _gitea(p: Mapping[str, Any]) -> PushSummary:
    pusher = p.get("pusher")
    pusher = pusher if isinstance(pusher, Mapping) else {}
    return _summary(
        ref=_get(p, "ref"),
        before=_get(p, "before"),
        after=_get(p, "after"),
        commits=list(reversed(_commits(p.get("commits")))),  # Gitea sends newest first
        head=p.get("head_commit"),
        repo_url=_get(p, "repository.html_url"),
        clone_url=_get(p, "repository.clone_url"),
        pusher=_text(pusher.get("login") or pusher.get("username")),
    )


def _gitlab(p: Mapping[str, Any]) -> PushSummary:
    after = _get(p, "after")
    # checkout_sha is null for a deletion; otherwise it is the head GitLab checked out.
    head_sha = _text(p.get("checkout_sha")) or after
    commits = _commits(p.get("commits"))
    head = next((c for c in commits if c.id == head_sha), None)
    return _summary(
        ref=_get(p, "ref"),
        before=_get(p, "before"),
        after=after,
        commits=commits,
        head={"message": head.message} if head else None,
        repo_url=_text(_get(p, "project.web_url", required=False) or _get(p, "repository.homepage")),
        clone_url=_text(
            _get(p, "project.git_http_url", required=False) or _get(p, "repository.git_http_url")
        ),
        pusher=_text(p.get("user_username") or p.get("user_name")),
    )


def _bitbucket(p: Mapping[str, Any]) -> tuple[PushSummary, ...]:
    changes = _get(p, "push.changes")
    if not isinstance(changes, Sequence) or not changes:
        raise WebhookRejected("body.push.changes is missing: not a push event")
    repo_url = _text(_get(p, "repository.links.html.href"))
    actor = p.get("actor")
    actor = actor if isinstance(actor, Mapping) else {}
    pusher = _text(actor.get("nickname") or actor.get("username") or actor.get("display_name"))
    out = []
    for i, change in enumerate(changes):
        if not isinstance(change, Mapping):
            raise WebhookRejected(f"body.push.changes[{i}] is not an object")
        old, new = change.get("old") or {}, change.get("new") or {}
        state = new or old
        kind, name = state.get("type"), _text(state.get("name"))
        ref = f"refs/tags/{name}" if kind == "tag" else f"refs/heads/{name}"
        commits = list(reversed(_commits(change.get("commits"))))  # Bitbucket sends newest first
        target = new.get("target") or {}
        out.append(
            _summary(
                ref=ref,
                before=_text((old.get("target") or {}).get("hash")) or ZERO_SHA,
                after=_text(target.get("hash")) or ZERO_SHA,
                commits=commits,
                head=target if new else None,
                repo_url=repo_url,
                clone_url=repo_url + ".git",
                pusher=pusher,
                deleted=not new,
                created=not old,
            )
        )
    return tuple(out)
