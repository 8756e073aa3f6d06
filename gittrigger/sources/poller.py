"""
The git poller event source's async loop (ours; for hosts that cannot send webhooks).

:class:`GitPoller` lists a repository's remote refs every ``interval`` (through
:class:`~gittrigger.repos.GitRepos`, so pygit2 stays in that module), diffs them against the refs
it saw last, and emits one push-shaped event per changed ref matching the ``refs`` globs. The
event body is shaped like a GitHub push (``ref``, ``before``, ``after``, ``created``,
``deleted``, ``commits[]`` with ``added``/``modified``/``removed``, ``head_commit``,
``repository``), so the sensors, ``filters.git``, ``skipCI`` and
:func:`gittrigger.sources.pushes.push_summary` (as ``"github"``) work on it unchanged.
Run by the process wiring as one named root task per ``spec.git.<event>``; ``emit`` is
connected to the event log.

The last seen refs are persisted through :class:`RefState` after each emitted change, so a
restart reports what changed while we were down. The first poll of a repository never seen
before only records a baseline: announcing every existing branch as a push would start a build
of each. A ref's change is persisted only once ``emit`` accepted it, and its delivery id
(``<ref>:<before>:<after>``) is stable, so a change re-emitted after a crash is stored once.
Poll failures (network, auth) are logged and retried at the next interval, never raised.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import structlog

from gittrigger.repos import CommitInfo, redact
from gittrigger.sources import envelope
from gittrigger.sources.envelope import EventParts
from gittrigger.sources.model import GitPollerSource, SecretRef
from gittrigger.sources.ticker import JsonFile
from workflows.model.spec import GitSource

logger = structlog.get_logger(__name__)

SOURCE_TYPE: Final = "git"
ZERO_SHA: Final = "0" * 40
# GitHub lists at most 2048 commits in a push; a long-lived branch merged into a watched one
# would otherwise put its whole history into one event.
MAX_COMMITS: Final = 2048

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
Emit = Callable[[EventParts], Awaitable[None]]


class RemoteRefs(Protocol):
    """What the poller needs from Git (:class:`gittrigger.repos.GitRepos` satisfies it)."""

    async def list_remote_refs(self, repo_url: str, *, creds: GitSource | None = None) -> dict[str, str]:
        """Ref name -> sha as the remote advertises them (tags peeled)."""
        ...

    async def commits_between(
        self, repo_url: str, old_sha: str | None, new_sha: str, *, creds: GitSource | None = None
    ) -> list[CommitInfo]:
        """Commits reachable from ``new_sha`` but not ``old_sha``, oldest first."""
        ...


class RefState(Protocol):
    """Where the last seen refs of each poller are kept across restarts."""

    async def get(self, key: str) -> dict[str, str] | None:
        """The refs last seen for ``key``; None when this poller never polled."""
        ...

    async def set(self, key: str, refs: Mapping[str, str]) -> None:
        """Remember ``refs`` as the last seen refs of ``key``."""
        ...


class MemoryRefState:
    """A :class:`RefState` in a dict, for tests."""

    def __init__(self) -> None:
        self.refs: dict[str, dict[str, str]] = {}

    async def get(self, key: str) -> dict[str, str] | None:
        """A copy of the remembered refs of ``key``."""
        refs = self.refs.get(key)
        return dict(refs) if refs is not None else None

    async def set(self, key: str, refs: Mapping[str, str]) -> None:
        """Remember a copy of ``refs``."""
        self.refs[key] = dict(refs)


class JsonFileRefState:
    """A :class:`RefState` persisted in a JSON file (``{key: {ref: sha}}``), rewritten atomically."""

    def __init__(self, path: Path) -> None:
        self._file = JsonFile(path)

    async def get(self, key: str) -> dict[str, str] | None:
        """The remembered refs of ``key`` (None when absent or malformed)."""
        value = await self._file.get(key)
        if not isinstance(value, dict):
            return None
        return {str(k): str(v) for k, v in value.items()}

    async def set(self, key: str, refs: Mapping[str, str]) -> None:
        """Remember ``refs`` for ``key`` durably."""
        await self._file.set(key, dict(refs))


class GitPoller:
    """Polls one ``spec.git.<event>`` repository and emits a push event per changed ref, until cancelled."""

    def __init__(
        self,
        *,
        spec: GitPollerSource,
        source_name: str,
        event_name: str,
        repos: RemoteRefs,
        emit: Emit,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        state: RefState,
    ) -> None:
        self._spec = spec
        self._source_name = source_name
        self._event_name = event_name
        self._repos = repos
        self._emit = emit
        self._clock = clock
        self._sleep = sleep
        self._state = state
        self._creds = _creds(spec)
        self._log = logger.bind(source=source_name, event=event_name, repo=redact(spec.repo))

    @property
    def key(self) -> str:
        """The state key of this poller: ``<source name>/<event name>``."""
        return f"{self._source_name}/{self._event_name}"

    async def run(self) -> None:
        """Poll, then sleep ``interval``, forever; returns only by cancellation."""
        while True:
            await self.poll_once()
            await self._sleep(self._spec.interval.total_seconds())

    async def poll_once(self) -> int:
        """One poll: emit an event per changed matching ref; the number emitted. Never raises."""
        try:
            remote = await self._repos.list_remote_refs(self._spec.repo, creds=self._creds)
        except Exception as e:  # a host being down must not stop the server; try next interval
            self._log.warning("git poll failed", reason=str(e))
            return 0
        current = {ref: sha for ref, sha in remote.items() if self._wanted(ref)}
        seen = await self._state.get(self.key)
        if seen is None:
            await self._state.set(self.key, current)
            self._log.info("git poll baseline", refs=len(current))
            return 0
        emitted = 0
        for ref in sorted(set(seen) | set(current)):
            before, after = seen.get(ref, ZERO_SHA), current.get(ref, ZERO_SHA)
            if before == after:
                continue
            try:
                await self._emit(await self._event(ref, before=before, after=after))
            except Exception as e:  # unrecorded: the next poll sees the same change and retries
                self._log.warning("git poll emit failed", ref=ref, reason=str(e))
                return emitted
            if after == ZERO_SHA:
                seen.pop(ref, None)
            else:
                seen[ref] = after
            await self._state.set(self.key, seen)
            emitted += 1
            self._log.info("git ref changed", ref=ref, before=before, sha=after)
        return emitted

    def _wanted(self, ref: str) -> bool:
        # fnmatch's ``*`` crosses ``/``, as a git refspec glob does (refs/heads/* has feature/x).
        return ref.startswith("refs/") and any(fnmatch.fnmatchcase(ref, glob) for glob in self._spec.refs)

    async def _event(self, ref: str, *, before: str, after: str) -> EventParts:
        commits = await self._commits(ref, before=before, after=after)
        body = push_body(repo_url=self._spec.repo, ref=ref, before=before, after=after, commits=commits)
        return envelope.build(
            source_type=SOURCE_TYPE, headers={}, body=body, source_name=self._source_name,
            event_name=self._event_name, received_at=self._clock(), delivery_id=f"{ref}:{before}:{after}",
            metadata=self._spec.metadata,
        )

    async def _commits(self, ref: str, *, before: str, after: str) -> Sequence[CommitInfo]:
        if after == ZERO_SHA:
            return []
        try:
            return await self._repos.commits_between(self._spec.repo, before, after, creds=self._creds)
        except Exception as e:
            # After a force push ``before`` may be gone from the remote: report the head alone.
            self._log.info("git commit range unavailable", ref=ref, before=before, sha=after, reason=str(e))
        try:
            return await self._repos.commits_between(self._spec.repo, None, after, creds=self._creds)
        except Exception as e:
            self._log.warning("git commits unavailable", ref=ref, sha=after, reason=str(e))
            return []


def push_body(
    *, repo_url: str, ref: str, before: str, after: str, commits: Sequence[CommitInfo]
) -> dict[str, Any]:
    """A GitHub-shaped push body for a ref change seen by polling (pure)."""
    url = redact(repo_url)
    path = urlsplit(url).path.strip("/").removesuffix(".git")
    name = path.rsplit("/", 1)[-1] or url
    listed = [_commit_json(c) for c in commits[-MAX_COMMITS:]]  # the newest, as GitHub keeps them
    return {
        "ref": ref,
        "before": before,
        "after": after,
        "created": before == ZERO_SHA,
        "deleted": after == ZERO_SHA,
        "commits": listed,
        "head_commit": next((c for c in reversed(listed) if c["id"] == after), listed[-1] if listed else None),
        "repository": {
            "name": name,
            "full_name": "/".join(path.split("/")[-2:]) if path else name,
            "url": url,
            "html_url": url,
            "clone_url": url,
        },
        "pusher": {"name": ""},  # polling cannot tell who pushed
    }


def _commit_json(commit: CommitInfo) -> dict[str, Any]:
    return {
        "id": commit.sha,
        "message": commit.message,
        "timestamp": commit.timestamp.isoformat(),
        "author": {"name": commit.author, "email": commit.author_email},
        "added": list(commit.added),
        "modified": list(commit.modified),
        "removed": list(commit.removed),
    }


def _creds(spec: GitPollerSource) -> GitSource | None:
    """The spec's secret references in the shape :class:`GitRepos` resolves (None without any)."""
    def ref(secret: SecretRef | None) -> dict[str, str] | None:
        return {"name": secret.name, "key": secret.key} if secret is not None else None

    if spec.ssh_key_secret is None and spec.username is None and spec.password is None:
        return None
    return GitSource(repo=spec.repo, username_secret=ref(spec.username), password_secret=ref(spec.password),
                     ssh_private_key_secret=ref(spec.ssh_key_secret))

