"""
Tests of :mod:`gittrigger.reporting` against loopback fake host APIs (aiohttp ``TestServer``)
that record and check the exact request each host receives: method, path, auth headers, JSON.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from gittrigger.reporting import (
    CommitStatus,
    Credentials,
    StatusReporter,
    StatusState,
    StatusTarget,
    build_request,
    default_api_url,
    host_state,
    state_for_phase,
    target_for_push,
)
from gittrigger.sources.pushes import PushSummary
from workflows.model.status import WorkflowPhase

SHA = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "tok-s3cret-value"
STATUS = CommitStatus(state=StatusState.RUNNING, target_url="http://ci.local/workflows/ns/build-x",
                      description="build-x is running", context="gittrigger/ci")


@dataclass(slots=True)
class Seen:
    """One request as the fake host received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass(slots=True)
class FakeHost:
    """A loopback server answering each request with the next scripted status (then 201)."""

    server: TestServer
    script: list[int] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    hang: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def api(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def fake_host() -> AsyncIterator[FakeHost]:
    app = web.Application()
    host = FakeHost(server=TestServer(app, host="127.0.0.1"))

    async def handle(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        host.seen.append(Seen(request.method, request.raw_path, dict(request.headers), body))
        if host.hang:
            await host.release.wait()
        status = host.script.pop(0) if host.script else 201
        return web.json_response({"message": f"answer {status}"}, status=status)

    app.router.add_route("*", "/{tail:.*}", handle)
    await host.server.start_server()
    try:
        yield host
    finally:
        host.release.set()
        await host.server.close()


@pytest.fixture
async def reporter() -> AsyncIterator[tuple[StatusReporter, list[float]]]:
    delays: list[float] = []

    async def no_wait(delay: float) -> None:
        delays.append(delay)

    async with StatusReporter(attempts=3, backoff_seconds=0.5, timeout_seconds=5, sleep=no_wait) as r:
        yield r, delays


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("host", "repo", "creds", "path", "auth", "body"),
    [
        ("github", "octo/hello", Credentials(token=TOKEN), f"/repos/octo/hello/statuses/{SHA}",
         {"Authorization": f"Bearer {TOKEN}", "Accept": "application/vnd.github+json",
          "X-GitHub-Api-Version": "2022-11-28"},
         {"state": "pending", "target_url": STATUS.target_url, "description": "build-x is running",
          "context": "gittrigger/ci"}),
        ("gitlab", "group/sub/proj", Credentials(token=TOKEN), f"/projects/group%2Fsub%2Fproj/statuses/{SHA}",
         {"PRIVATE-TOKEN": TOKEN},
         {"state": "running", "name": "gittrigger/ci", "target_url": STATUS.target_url,
          "description": "build-x is running"}),
        ("gitea", "octo/hello", Credentials(token=TOKEN), f"/repos/octo/hello/statuses/{SHA}",
         {"Authorization": f"token {TOKEN}"},
         {"state": "pending", "target_url": STATUS.target_url, "description": "build-x is running",
          "context": "gittrigger/ci"}),
        ("forgejo", "octo/hello", Credentials(token=TOKEN), f"/repos/octo/hello/statuses/{SHA}",
         {"Authorization": f"token {TOKEN}"},
         {"state": "pending", "target_url": STATUS.target_url, "description": "build-x is running",
          "context": "gittrigger/ci"}),
        ("bitbucket", "team/repo", Credentials(token=TOKEN, username="ada"),
         f"/repositories/team/repo/commit/{SHA}/statuses/build",
         {"Authorization": basic("ada", TOKEN)},
         {"state": "INPROGRESS", "key": "gittrigger/ci", "name": "gittrigger/ci", "url": STATUS.target_url,
          "description": "build-x is running"}),
        ("bitbucket", "team/repo", Credentials(token=TOKEN),
         f"/repositories/team/repo/commit/{SHA}/statuses/build",
         {"Authorization": f"Bearer {TOKEN}"},
         {"state": "INPROGRESS", "key": "gittrigger/ci", "name": "gittrigger/ci", "url": STATUS.target_url,
          "description": "build-x is running"}),
    ],
    ids=["github", "gitlab-nested-project", "gitea", "forgejo", "bitbucket-basic", "bitbucket-bearer"],
)
async def test_each_host_receives_its_exact_request(
    fake_host: FakeHost, reporter: tuple[StatusReporter, list[float]], host: str, repo: str,
    creds: Credentials, path: str, auth: dict[str, str], body: dict[str, Any],
) -> None:
    """Method, path, auth headers and JSON body are what the host's status API documents."""
    r, _ = reporter
    target = StatusTarget(host=host, api_url=fake_host.api + "/api", repo=repo, sha=SHA)
    outcome = await r.report(target, STATUS, credentials=creds)
    assert outcome.ok and outcome.attempts == 1 and outcome.http_status == 201
    [seen] = fake_host.seen
    assert seen.method == "POST"
    assert seen.path == "/api" + path
    assert auth.items() <= seen.headers.items()
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.body == body


@pytest.mark.parametrize(
    ("phase", "github", "gitlab", "bitbucket"),
    [
        (WorkflowPhase.PENDING, "pending", "pending", "INPROGRESS"),
        (WorkflowPhase.RUNNING, "pending", "running", "INPROGRESS"),
        (WorkflowPhase.SUCCEEDED, "success", "success", "SUCCESSFUL"),
        (WorkflowPhase.FAILED, "failure", "failed", "FAILED"),
        (WorkflowPhase.ERROR, "error", "failed", "FAILED"),
        ("Running", "pending", "running", "INPROGRESS"),
    ],
    ids=["pending", "running", "succeeded", "failed", "error", "phase-as-string"],
)
def test_phases_map_to_each_hosts_states(phase: Any, github: str, gitlab: str, bitbucket: str) -> None:
    """Argo phases become each host's state names (Gitea spells them like GitHub)."""
    state = state_for_phase(phase)
    assert (host_state("github", state), host_state("gitea", state), host_state("gitlab", state),
            host_state("bitbucket", state)) == (github, github, gitlab, bitbucket)


def test_canceled_is_stopped_on_bitbucket_and_canceled_on_gitlab() -> None:
    """A superseded run (cancel-in-progress) has a state of its own where the host has one."""
    assert [host_state(h, StatusState.CANCELED) for h in ("github", "gitlab", "bitbucket")] == [
        "error", "canceled", "STOPPED"]


def test_unknown_phase_is_refused() -> None:
    """A typo in a phase is a programming error, not a silent pending."""
    with pytest.raises(ValueError, match="Runing"):
        state_for_phase("Runing")


async def test_a_5xx_is_retried_with_backoff_then_succeeds(
    fake_host: FakeHost, reporter: tuple[StatusReporter, list[float]]
) -> None:
    """Two 5xx answers, then 201: three attempts, exponential delays through the injected sleep."""
    r, delays = reporter
    fake_host.script = [500, 503]
    target = StatusTarget(host="github", api_url=fake_host.api, repo="octo/hello", sha=SHA)
    with capture_logs() as logs:
        outcome = await r.report(target, STATUS, credentials=Credentials(token=TOKEN))
    assert (outcome.ok, outcome.attempts, outcome.http_status) == (True, 3, 201)
    assert delays == [0.5, 1.0]
    assert len(fake_host.seen) == 3 and fake_host.seen[0].body == fake_host.seen[2].body
    assert [e["event"] for e in logs] == ["status report retried", "status report retried", "status reported"]


async def test_retries_are_bounded_and_the_outcome_says_why(
    fake_host: FakeHost, reporter: tuple[StatusReporter, list[float]]
) -> None:
    """A host that keeps failing costs ``attempts`` requests and returns a failed outcome, not an error."""
    r, delays = reporter
    fake_host.script = [502, 502, 502, 502]
    target = StatusTarget(host="gitlab", api_url=fake_host.api, repo="g/p", sha=SHA)
    with capture_logs() as logs:
        outcome = await r.report(target, STATUS, credentials=Credentials(token=TOKEN))
    assert (outcome.ok, outcome.attempts, outcome.http_status) == (False, 3, 502)
    assert outcome.error is not None and "HTTP 502" in outcome.error and "answer 502" in outcome.error
    assert len(fake_host.seen) == 3 and delays == [0.5, 1.0]
    assert logs[-1]["event"] == "status report failed" and logs[-1]["log_level"] == "warning"


async def test_a_401_is_not_retried_and_the_token_is_not_logged(
    fake_host: FakeHost, reporter: tuple[StatusReporter, list[float]]
) -> None:
    """A refused token will not get better by asking again; the log names the status, never the token."""
    r, delays = reporter
    fake_host.script = [401]
    target = StatusTarget(host="github", api_url=fake_host.api, repo="octo/hello", sha=SHA)
    with capture_logs() as logs:
        outcome = await r.report(target, STATUS, credentials=Credentials(token=TOKEN))
    assert (outcome.ok, outcome.attempts, outcome.http_status) == (False, 1, 401)
    assert len(fake_host.seen) == 1 and delays == []
    assert logs[-1]["http_status"] == 401
    assert TOKEN not in repr(logs) and TOKEN not in repr(outcome) and TOKEN not in repr(Credentials(token=TOKEN))


async def test_a_429_is_retried(fake_host: FakeHost, reporter: tuple[StatusReporter, list[float]]) -> None:
    """Rate limiting is "later", not "never"."""
    r, _ = reporter
    fake_host.script = [429]
    target = StatusTarget(host="gitea", api_url=fake_host.api, repo="o/r", sha=SHA)
    outcome = await r.report(target, STATUS, credentials=Credentials(token=TOKEN))
    assert (outcome.ok, outcome.attempts) == (True, 2)


async def test_a_silent_host_times_out_and_is_retried(fake_host: FakeHost) -> None:
    """Each attempt is bounded by the timeout; the outcome reports the timeout."""
    fake_host.hang = True
    delays: list[float] = []

    async def no_wait(delay: float) -> None:
        delays.append(delay)

    target = StatusTarget(host="bitbucket", api_url=fake_host.api, repo="w/r", sha=SHA)
    async with StatusReporter(attempts=2, timeout_seconds=0.05, sleep=no_wait) as r:
        outcome = await r.report(target, STATUS, credentials=Credentials(token=TOKEN))
    assert (outcome.ok, outcome.attempts, outcome.http_status) == (False, 2, None)
    assert outcome.error is not None and "timed out" in outcome.error
    assert len(fake_host.seen) == 2 and len(delays) == 1


async def test_a_closed_port_is_a_failed_outcome_not_an_exception(unused_tcp_port: int) -> None:
    """Connection refused is retried, then reported as the outcome."""
    async def no_wait(delay: float) -> None:
        pass

    target = StatusTarget(host="github", api_url=f"http://127.0.0.1:{unused_tcp_port}", repo="o/r", sha=SHA)
    async with StatusReporter(attempts=2, sleep=no_wait) as r:
        outcome = await r.report(target, STATUS, credentials=Credentials(token=TOKEN))
    assert (outcome.ok, outcome.attempts) == (False, 2)
    assert outcome.error is not None and "Connect" in outcome.error


async def test_report_push_targets_the_head_commit(
    fake_host: FakeHost, reporter: tuple[StatusReporter, list[float]]
) -> None:
    """A PushSummary names the repository (from its web URL) and the sha (``after``)."""
    r, _ = reporter
    push = summary(repo_url="https://github.com/octo/hello", after=SHA)
    done = CommitStatus(state=state_for_phase("Succeeded"), target_url="http://ci/x", description="ok")
    outcome = await r.report_push("github", push, done, credentials=Credentials(token=TOKEN), api_url=fake_host.api)
    assert outcome.ok
    [seen] = fake_host.seen
    assert seen.path == f"/repos/octo/hello/statuses/{SHA}"
    assert seen.body["state"] == "success" and seen.body["context"] == "gittrigger"
    assert outcome.as_detail() == {"ok": True, "attempts": 1, "httpStatus": 201, "error": None,
                                   "host": "github", "repo": "octo/hello", "sha": SHA, "state": "success"}


async def test_report_push_of_a_deleted_ref_posts_nothing(
    fake_host: FakeHost, reporter: tuple[StatusReporter, list[float]]
) -> None:
    """A branch deletion has no commit to report on."""
    r, _ = reporter
    push = summary(repo_url="https://github.com/octo/hello", after="0" * 40, deleted=True)
    outcome = await r.report_push("github", push, STATUS, credentials=Credentials(token=TOKEN), api_url=fake_host.api)
    assert not outcome.ok and outcome.attempts == 0 and fake_host.seen == []


@pytest.mark.parametrize(
    ("host", "repo_url", "api_url", "expected_api", "expected_repo"),
    [
        ("github", "https://github.com/octo/hello", None, "https://api.github.com", "octo/hello"),
        ("github", "https://ghe.example.com/octo/hello", None, "https://ghe.example.com/api/v3", "octo/hello"),
        ("gitlab", "https://gitlab.com/g/sub/proj", None, "https://gitlab.com/api/v4", "g/sub/proj"),
        ("gitlab", "https://ex.com/gitlab/g/proj", "https://ex.com/gitlab/api/v4/", "https://ex.com/gitlab/api/v4",
         "g/proj"),
        ("gitea", "https://try.gitea.io/o/r.git", None, "https://try.gitea.io/api/v1", "o/r"),
        ("bitbucket", "https://bitbucket.org/team/repo", None, "https://api.bitbucket.org/2.0", "team/repo"),
    ],
    ids=["github-com", "github-enterprise", "gitlab-nested", "gitlab-path-prefix", "gitea", "bitbucket"],
)
def test_target_for_push(host: str, repo_url: str, api_url: str | None, expected_api: str,
                         expected_repo: str) -> None:
    """The API root and repository path are derived from the push's web URL."""
    target = target_for_push(host, summary(repo_url=repo_url, after=SHA), api_url=api_url)
    assert (target.api_url, target.repo, target.sha) == (expected_api, expected_repo, SHA)


def test_bad_repository_is_a_failed_outcome_path() -> None:
    """owner/name is required where the host API wants it."""
    with pytest.raises(ValueError, match="owner/name"):
        build_request(StatusTarget(host="github", api_url="http://x", repo="lonely", sha=SHA), STATUS,
                      credentials=Credentials(token=TOKEN))
    with pytest.raises(ValueError, match="unknown host"):
        default_api_url("svn", "https://x/y/z")


async def test_unknown_host_is_an_outcome(reporter: tuple[StatusReporter, list[float]]) -> None:
    """Even a misconfigured host does not raise into the caller."""
    r, _ = reporter
    outcome = await r.report(StatusTarget(host="svn", api_url="http://x", repo="o/r", sha=SHA), STATUS,
                             credentials=Credentials(token=TOKEN))
    assert not outcome.ok and outcome.error is not None and "unknown host" in outcome.error


def test_credentials_from_a_secret_file_drop_the_newline() -> None:
    """Mounted secrets end with a newline that must not reach the Authorization header."""
    assert Credentials.from_secret(b"abc\n").token == "abc"


def summary(*, repo_url: str, after: str, deleted: bool = False) -> PushSummary:
    return PushSummary(repo_url=repo_url, clone_url=repo_url + ".git", ref="refs/heads/main", branch="main",
                       tag=None, before="1" * 40, after=after, commits=(), head_message="m", pusher="ada",
                       deleted=deleted, created=False)
