"""
gittrigger's CI filters on Git webhook payloads: branch/tag/path globs, ``[skip ci]``, and
concurrency group names.

Pure; called by :mod:`sensors.filters` (the ``filters.git`` and ``skipCI`` dependency
extensions) and :mod:`sensors.matching` (``concurrency.group``). Reads the ``body`` of an
event's data in the shapes GitHub, Gitea/Forgejo, GitLab and Bitbucket Cloud send:

- GitHub/Gitea push: ``ref``, ``after``, ``repository.full_name``, ``head_commit.message``,
  ``commits[].added/modified/removed``; pull_request: ``pull_request.base.ref`` (the branch
  filters see the *target* branch, as in GitHub Actions) and ``pull_request.head.sha``.
- GitLab push/tag_push: ``ref``, ``checkout_sha``, ``project.path_with_namespace``, ``commits``
  (head is the commit whose id is ``checkout_sha``); merge_request:
  ``object_attributes.target_branch``.
- Bitbucket push: ``push.changes[0].new.{name,type,target.hash,target.message}`` (no file lists,
  so path filters cannot be evaluated and pass, with a reason saying so).

Globs: ``*`` matches within one path segment, ``**`` across segments (``**/x`` also matches
``x``), ``?`` one character other than ``/``, ``[abc]`` a class. A pattern starting with ``!``
excludes; patterns apply in order and the last one that matches wins (GitHub Actions' rule).
Unlike GitHub Actions, ``?`` and ``+`` are not quantifiers of the preceding character.
Branch/tag semantics follow GitHub Actions: with only branch filters a tag push is skipped and
vice versa; path filters are not evaluated for tag pushes; a push that deletes the ref does not
pass a ``filters.git`` (there is nothing to build).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from sensors.filterspec import GitFilter

SKIP_MARKERS: Final = ("[skip ci]", "[ci skip]")
GROUP_VARIABLES: Final = frozenset(
    {"repo", "branch", "tag", "ref", "sha", "pr", "sensor", "trigger", "eventSource", "event"}
)
_ZERO_SHA: Final = "0" * 40
_GROUP_VAR: Final = re.compile(r"\{\{\s*([A-Za-z]+)\s*\}\}")


@dataclass(frozen=True, slots=True, kw_only=True)
class GitFacts:
    """What the CI filters need from a push or pull request, whichever host sent it."""

    ref: str = ""
    branch: str = ""
    tag: str = ""
    sha: str = ""
    repo: str = ""
    pr: str = ""
    head_message: str | None = None
    changed_paths: tuple[str, ...] | None = None  # None: the payload does not say
    deleted: bool = False  # the push deleted the ref: nothing to build


def facts(data: Any) -> GitFacts | None:
    """Git facts of an event's data (``{"body": ...}`` or a bare body); None if not a Git event."""
    body = data.get("body", data) if isinstance(data, Mapping) else None
    if not isinstance(body, Mapping):
        return None
    if isinstance(body.get("push"), Mapping):
        return _bitbucket(body)
    if isinstance(body.get("pull_request"), Mapping):
        pr = body["pull_request"]
        return _with_ref(
            f"refs/heads/{_str(pr, 'base', 'ref')}",
            sha=_str(pr, "head", "sha"),
            repo=_str(body, "repository", "full_name"),
            pr=str(pr.get("number") or body.get("number") or ""),
        )
    if body.get("object_kind") == "merge_request":
        attrs = body.get("object_attributes") or {}
        return _with_ref(
            f"refs/heads/{_str(attrs, 'target_branch')}",
            sha=_str(attrs, "last_commit", "id"),
            repo=_str(body, "project", "path_with_namespace"),
            pr=str(attrs.get("iid") or ""),
        )
    ref = body.get("ref")
    if not isinstance(ref, str) or not ref.startswith("refs/"):
        return None
    sha = _str(body, "checkout_sha") or _str(body, "after")
    deleted = body.get("deleted") is True or sha == _ZERO_SHA
    commits = [c for c in body.get("commits") or [] if isinstance(c, Mapping)]
    head = body.get("head_commit")
    if not isinstance(head, Mapping):
        head = next((c for c in commits if c.get("id") == sha), commits[-1] if commits else None)
    return _with_ref(
        ref,
        sha=sha,
        repo=_str(body, "repository", "full_name") or _str(body, "project", "path_with_namespace"),
        head_message=str(head.get("message", "")) if isinstance(head, Mapping) else None,
        changed_paths=_changed_paths(commits),
        deleted=deleted,
    )


def _bitbucket(body: Mapping[str, Any]) -> GitFacts | None:
    changes = body["push"].get("changes") or []
    if not changes or not isinstance(changes[0], Mapping):
        return None
    new = changes[0].get("new")
    state = new or changes[0].get("old") or {}
    prefix = "refs/tags/" if state.get("type") == "tag" else "refs/heads/"
    return _with_ref(
        prefix + str(state.get("name", "")),
        sha=_str(changes[0], "new", "target", "hash"),
        repo=_str(body, "repository", "full_name"),
        head_message=_str(changes[0], "new", "target", "message") or None,
        deleted=not new,
    )


def _with_ref(ref: str, **kwargs: Any) -> GitFacts:
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else ""
    tag = ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else ""
    return GitFacts(ref=ref, branch=branch, tag=tag, **kwargs)


def _changed_paths(commits: Sequence[Mapping[str, Any]]) -> tuple[str, ...] | None:
    if not commits:
        return None
    paths: dict[str, None] = {}
    for commit in commits:
        if not any(key in commit for key in ("added", "modified", "removed")):
            return None  # a host that does not list files: we cannot tell
        for key in ("added", "modified", "removed"):
            paths.update(dict.fromkeys(str(p) for p in commit.get(key) or []))
    return tuple(paths)


def _str(value: Any, *keys: str) -> str:
    for key in keys:
        if not isinstance(value, Mapping):
            return ""
        value = value.get(key)
    return value if isinstance(value, str) else ""


@lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 1)) > i + 1:
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + re.escape(body[1:]) if body[0] == "!" else re.escape(body)) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def glob_match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches one glob (no ``!`` handling)."""
    return _glob_regex(pattern).fullmatch(text) is not None


def matches(patterns: Sequence[str], text: str) -> bool:
    """Ordered include/``!``exclude globs; the last matching pattern decides, default no."""
    result = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if glob_match(pattern[1:], text):
                result = False
        elif glob_match(pattern, text):
            result = True
    return result


def check(git: GitFilter | None, *, skip_ci: bool, data: Any) -> tuple[bool, tuple[str, ...]]:
    """Evaluate ``filters.git`` and ``skipCI`` on an event's data: (passed, reasons)."""
    found = facts(data)
    if found is None:
        if git is None:
            return True, ()
        return False, ("git: not a Git push or pull request payload",)
    reasons: list[str] = []
    if skip_ci and found.head_message is not None:
        lowered = found.head_message.lower()
        if marker := next((m for m in SKIP_MARKERS if m in lowered), None):
            return False, (f"skipCI: head commit message contains {marker}",)
    if git is None:
        return True, ()
    if found.deleted:
        return False, (f"git: {found.ref!r} was deleted",)
    ok = _check_ref(git, found, reasons) and _check_paths(git, found, reasons)
    return ok, tuple(reasons)


def _check_ref(git: GitFilter, found: GitFacts, reasons: list[str]) -> bool:
    kinds = (
        ("branch", found.branch, git.branches, git.branches_ignore),
        ("tag", found.tag, git.tags, git.tags_ignore),
    )
    for kind, name, include, ignore in kinds:
        other_filtered = any(k != kind and (inc is not None or ign is not None) for k, _, inc, ign in kinds)
        if not name:
            continue
        if include is None and ignore is None:
            if other_filtered:
                others = "tags" if kind == "branch" else "branches"
                reasons.append(f"git: {kind} {name!r} skipped: only {others} are filtered")
                return False
            return True
        passed = matches(include, name) if include is not None else not matches(ignore or (), name)
        field = f"{kind}es" if kind == "branch" else "tags"
        label = field if include is not None else f"{field}Ignore"
        reasons.append(f"git: {kind} {name!r} {'passes' if passed else 'fails'} {label}")
        return passed
    if found.ref and (git.branches is not None or git.tags is not None):
        reasons.append(f"git: ref {found.ref!r} is neither a branch nor a tag")
        return False
    return True


def _check_paths(git: GitFilter, found: GitFacts, reasons: list[str]) -> bool:
    if git.paths is None and git.paths_ignore is None:
        return True
    if found.tag:
        reasons.append("git: path filters are not evaluated for tags")
        return True
    if found.changed_paths is None:
        reasons.append("git: changed paths unknown; path filters pass")
        return True
    changed = found.changed_paths
    if git.paths is not None:
        hit = next((p for p in changed if matches(git.paths, p)), None)
        reasons.append(
            f"git: {hit!r} matches paths" if hit else f"git: none of {len(changed)} changed paths match paths"
        )
        return hit is not None
    kept = next((p for p in changed if not matches(git.paths_ignore or (), p)), None)
    if changed and kept is None:
        reasons.append(f"git: all {len(changed)} changed paths match pathsIgnore")
        return False
    reasons.append(f"git: {kept!r} is not ignored" if kept else "git: no changed paths")
    return True


def group_variables(template: str) -> frozenset[str]:
    """The ``{{name}}`` variables a concurrency group template uses."""
    return frozenset(_GROUP_VAR.findall(template))


def render_group(
    template: str, *, data: Any, sensor: str, trigger: str, event_source: str, event: str
) -> str:
    """Render a ``concurrency.group``; a variable the event has no value for renders empty."""
    found = facts(data) or GitFacts()
    values = {
        "repo": found.repo,
        "branch": found.branch,
        "tag": found.tag,
        "ref": found.ref,
        "sha": found.sha,
        "pr": found.pr,
        "sensor": sensor,
        "trigger": trigger,
        "eventSource": event_source,
        "event": event,
    }
    return _GROUP_VAR.sub(lambda m: values.get(m.group(1), ""), template)
