"""
Tests of :mod:`gittrigger.sources.poller` against a REAL repository (the ``git`` CLI in
``tmp_path``, polled over ``file://``) through :class:`gittrigger.repos.GitRepos`, with a fake
clock and sleep.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gittrigger.repos import CommitInfo, FileSecrets, GitRepos
from gittrigger.sources.envelope import EventParts
from gittrigger.sources.model import GitPollerSource, SecretRef
from gittrigger.sources.poller import (
    MAX_COMMITS,
    ZERO_SHA,
    GitPoller,
    JsonFileRefState,
    MemoryRefState,
    RefState,
    _creds,
    push_body,
)
from gittrigger.sources.pushes import push_summary
from sensors import gitfilters

KEY = "poll/main"
NOW = datetime(2024, 5, 1, 10, tzinfo=UTC)
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent",
}


@dataclass(slots=True)
class Upstream:
    """A working repository the tests commit to; polled through its ``file://`` URL."""

    path: Path

    def git(self, *args: str) -> str:
        env = {**os.environ, **GIT_ENV}
        return subprocess.run(["git", *args], cwd=self.path, env=env, check=True, capture_output=True,
                              text=True).stdout.strip()

    def commit(self, message: str, *, files: dict[str, str] | None = None, remove: tuple[str, ...] = ()) -> str:
        for rel, content in (files or {}).items():
            (self.path / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.path / rel).write_text(content)
            self.git("add", rel)
        for rel in remove:
            self.git("rm", "-q", rel)
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    @property
    def url(self) -> str:
        return self.path.as_uri()


@dataclass(slots=True)
class Emitted:
    """An ``emit`` recording events; ``fail`` makes the next calls raise."""

    events: list[EventParts] = field(default_factory=list)
    fail: int = 0

    async def __call__(self, parts: EventParts) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError("event log unavailable")
        self.events.append(parts)

    @property
    def bodies(self) -> list[dict[str, object]]:
        return [dict(e.data["body"]) for e in self.events]


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    up = Upstream(path=tmp_path / "upstream" / "project")
    up.path.mkdir(parents=True)
    up.git("init", "-q", "-b", "main")
    up.commit("initial", files={"README": "one\n", "docs/a.txt": "a\n"})
    return up


@pytest.fixture
def repos(tmp_path: Path) -> GitRepos:
    return GitRepos(cache_dir=tmp_path / "cache", secrets=FileSecrets(tmp_path / "secrets"))


def poller(upstream: Upstream, repos: GitRepos, emit: Emitted, *, state: RefState | None = None,
           refs: tuple[str, ...] = ("refs/heads/*",), sleep: Callable[[float], Awaitable[None]] | None = None,
           url: str | None = None) -> GitPoller:
    spec = GitPollerSource(repo=url or upstream.url, refs=refs, interval=timedelta(seconds=30),
                           metadata={"team": "ci"})

    async def no_sleep(seconds: float) -> None:
        pass

    return GitPoller(spec=spec, source_name="poll", event_name="main", repos=repos, emit=emit,
                     clock=lambda: NOW, sleep=sleep or no_sleep, state=state or MemoryRefState())


async def test_first_poll_is_a_baseline_then_a_push_is_one_event(upstream: Upstream, repos: GitRepos) -> None:
    """Existing branches are not announced; two new commits on main are one push with both commits."""
    emit, state = Emitted(), MemoryRefState()
    p = poller(upstream, repos, emit, state=state)
    before = upstream.git("rev-parse", "HEAD")
    assert await p.poll_once() == 0 and emit.events == []
    assert state.refs[KEY] == {"refs/heads/main": before}
    c2 = upstream.commit("add and change", files={"src/app.py": "x\n", "README": "two\n"})
    c3 = upstream.commit("remove docs [skip ci]", remove=("docs/a.txt",))
    assert await p.poll_once() == 1
    [event] = emit.events
    body = event.data["body"]
    assert (body["ref"], body["before"], body["after"]) == ("refs/heads/main", before, c3)
    assert (body["created"], body["deleted"]) == (False, False)
    assert [c["id"] for c in body["commits"]] == [c2, c3]
    assert body["commits"][0]["added"] == ["src/app.py"] and body["commits"][0]["modified"] == ["README"]
    assert body["commits"][1]["removed"] == ["docs/a.txt"]
    assert body["commits"][0]["author"] == {"name": "Ada", "email": "ada@example.com"}
    assert body["head_commit"]["id"] == c3
    assert body["repository"]["name"] == "project" and body["repository"]["clone_url"] == upstream.url
    assert event.data["headers"] == {} and event.data["metadata"] == {"team": "ci"}
    assert event.context["type"] == "git" and event.context["source"] == "poll"
    assert event.context["subject"] == "main" and event.context["time"] == "2024-05-01T10:00:00Z"
    assert event.delivery_id == f"refs/heads/main:{before}:{c3}"
    assert state.refs[KEY] == {"refs/heads/main": c3}
    assert await p.poll_once() == 0  # nothing changed since


async def test_push_events_work_with_push_summary_and_git_filters(upstream: Upstream, repos: GitRepos) -> None:
    """The body is GitHub-shaped: push_summary and the sensors' git facts read it unchanged."""
    emit = Emitted()
    p = poller(upstream, repos, emit)
    await p.poll_once()
    head = upstream.commit("change [skip ci]", files={"src/x.py": "1\n"})
    await p.poll_once()
    summary = push_summary("github", emit.events[0].data["body"])
    assert (summary.branch, summary.after, summary.head_message.strip()) == ("main", head, "change [skip ci]")
    assert summary.commits[-1].added == ("src/x.py",)
    facts = gitfilters.facts(emit.events[0].data)
    assert facts is not None and facts.branch == "main" and facts.changed_paths == ("src/x.py",)


async def test_created_and_deleted_branches_and_tag_globs(upstream: Upstream, repos: GitRepos) -> None:
    """A new branch has before=0 and its head commit; a deleted one after=0 and no commits; tags only if globbed."""
    emit, state = Emitted(), MemoryRefState()
    p = poller(upstream, repos, emit, state=state, refs=("refs/heads/feature/*",))
    await p.poll_once()
    upstream.git("checkout", "-q", "-b", "feature/x")
    fx = upstream.commit("feature work", files={"f.txt": "f\n"})
    upstream.git("checkout", "-q", "-b", "other")
    upstream.commit("not watched", files={"o.txt": "o\n"})
    upstream.git("tag", "v1")
    assert await p.poll_once() == 1
    created = emit.bodies[-1]
    assert (created["ref"], created["before"], created["after"], created["created"]) == (
        "refs/heads/feature/x", ZERO_SHA, fx, True)
    assert [c["id"] for c in created["commits"]] == [fx]  # type: ignore[attr-defined]
    upstream.git("checkout", "-q", "main")
    upstream.git("branch", "-q", "-D", "feature/x")
    assert await p.poll_once() == 1
    deleted = emit.bodies[-1]
    assert (deleted["before"], deleted["after"], deleted["deleted"], deleted["commits"]) == (fx, ZERO_SHA, True, [])
    assert deleted["head_commit"] is None
    assert state.refs[KEY] == {}

    tags = poller(upstream, repos, Emitted(), refs=("refs/tags/*",))
    await tags.poll_once()
    assert await tags.poll_once() == 0


async def test_run_polls_every_interval_and_persists_across_restarts(
    upstream: Upstream, repos: GitRepos, tmp_path: Path
) -> None:
    """run() sleeps ``interval`` between polls; a new poller on the same state file sees what changed while down."""
    path = tmp_path / "state" / "refs.json"
    emit, sleeps, pushed = Emitted(), [], []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 1:  # a push lands between the first and the second poll
            pushed.append(upstream.commit("during interval", files={"b.txt": "b\n"}))
        elif len(sleeps) == 3:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    with pytest.raises(asyncio.CancelledError):
        await poller(upstream, repos, emit, state=JsonFileRefState(path), sleep=sleep).run()
    assert sleeps == [30.0, 30.0, 30.0]
    assert [b["after"] for b in emit.bodies] == pushed

    down = upstream.commit("while down", files={"c.txt": "c\n"})
    again = Emitted()
    assert await poller(upstream, repos, again, state=JsonFileRefState(path)).poll_once() == 1
    assert (again.bodies[0]["before"], again.bodies[0]["after"]) == (pushed[0], down)


async def test_a_failed_emit_is_not_recorded_and_is_retried(upstream: Upstream, repos: GitRepos) -> None:
    """When the event log refuses, the change stays unseen and the next poll emits the same delivery."""
    emit, state = Emitted(), MemoryRefState()
    p = poller(upstream, repos, emit, state=state)
    await p.poll_once()
    old = state.refs[KEY]
    head = upstream.commit("next", files={"n.txt": "n\n"})
    emit.fail = 1
    with capture_logs() as logs:
        assert await p.poll_once() == 0
    assert state.refs[KEY] == old and logs[-1]["event"] == "git poll emit failed"
    assert await p.poll_once() == 1
    assert emit.events[0].delivery_id == f"refs/heads/main:{old['refs/heads/main']}:{head}"


async def test_force_push_reports_the_new_commits(upstream: Upstream, repos: GitRepos) -> None:
    """A rewritten branch reports the commits of the new history that the old head lacks."""
    emit = Emitted()
    p = poller(upstream, repos, emit)
    base = upstream.git("rev-parse", "HEAD")
    upstream.commit("to be rewritten", files={"r.txt": "1\n"})
    await p.poll_once()
    upstream.git("reset", "-q", "--hard", base)
    new = upstream.commit("rewritten", files={"r.txt": "2\n"})
    assert await p.poll_once() == 1
    assert [c["id"] for c in emit.bodies[0]["commits"]] == [new]  # type: ignore[attr-defined]


async def test_an_unreachable_repository_is_logged_not_raised(tmp_path: Path, repos: GitRepos,
                                                              upstream: Upstream) -> None:
    """A poll failure costs one interval, not the server."""
    emit = Emitted()
    p = poller(upstream, repos, emit, url=(tmp_path / "missing").as_uri())
    with capture_logs() as logs:
        assert await p.poll_once() == 0
    assert logs[-1]["event"] == "git poll failed" and logs[-1]["log_level"] == "warning"
    assert emit.events == []


def test_secret_references_become_git_credentials() -> None:
    """username/password/sshKeySecret are handed to GitRepos as secret references, never values."""
    spec = GitPollerSource(repo="https://h/r.git", username=SecretRef(name="git", key="user"),
                           password=SecretRef(name="git", key="token"))
    creds = _creds(spec)
    assert creds is not None
    assert (creds.username_secret, creds.password_secret, creds.ssh_private_key_secret) == (
        {"name": "git", "key": "user"}, {"name": "git", "key": "token"}, None)
    assert _creds(GitPollerSource(repo="https://h/r.git")) is None


def test_push_body_keeps_the_newest_commits_and_hides_passwords() -> None:
    """A huge range keeps the newest MAX_COMMITS commits (head last); a password in the URL never shows."""
    commits = [CommitInfo(sha=f"{i:040x}", message=f"c{i}", author="A", author_email="a@x", timestamp=NOW)
               for i in range(MAX_COMMITS + 5)]
    body = push_body(repo_url="https://bot:hunter2@git.example.com/team/app.git", ref="refs/heads/main",
                     before="1" * 40, after=commits[-1].sha, commits=commits)
    assert len(body["commits"]) == MAX_COMMITS and body["commits"][0]["id"] == commits[5].sha
    assert body["head_commit"]["id"] == commits[-1].sha
    assert body["repository"]["full_name"] == "team/app" and body["repository"]["name"] == "app"
    assert "hunter2" not in repr(body)
