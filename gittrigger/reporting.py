"""
Commit status reporting: tell the Git host how the run for a pushed commit is doing.

:class:`StatusReporter` posts one commit status through the host's REST API (GitHub, GitLab,
Gitea/Forgejo, Bitbucket Cloud) with one ``aiohttp.ClientSession`` per reporter. Called by the
process wiring when a run a push created starts and when it ends (see :func:`state_for_phase`);
the target comes from a :class:`~gittrigger.sources.pushes.PushSummary` (:func:`target_for_push`)
or is given explicitly (:class:`StatusTarget`).

A reporting failure must never stop the CI server (GitHub being down is not our outage), so
:meth:`StatusReporter.report` never raises: 5xx, 429, timeouts and connection errors are retried
with exponential backoff for a bounded number of attempts, other 4xx answers are not retried,
and whatever happened is logged and returned as a :class:`ReportOutcome` (ready for the audit
trail). Tokens live in :class:`Credentials`, whose ``repr`` hides them; they are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import quote, urlsplit

import aiohttp
import structlog

from gittrigger.sources.pushes import PushSummary

logger = structlog.get_logger(__name__)

HOSTS: Final = ("github", "gitlab", "gitea", "forgejo", "bitbucket")
_RETRIED_4XX: Final = frozenset({408, 429})  # "try again later" answers, not a bad request
_REASON_CHARS: Final = 200


class StatusState(enum.Enum):
    """A commit state independent of the host; each host spells (and coarsens) it its own way."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"
    CANCELED = "canceled"


# Per host: our state -> the host's ``state`` value. GitHub and Gitea know no "running" or
# "canceled"; GitLab has no "error" (a broken run is "failed"); Bitbucket has four states.
_HOST_STATES: Final[Mapping[str, Mapping[StatusState, str]]] = {
    "github": {
        StatusState.PENDING: "pending", StatusState.RUNNING: "pending", StatusState.SUCCESS: "success",
        StatusState.FAILURE: "failure", StatusState.ERROR: "error", StatusState.CANCELED: "error",
    },
    "gitlab": {
        StatusState.PENDING: "pending", StatusState.RUNNING: "running", StatusState.SUCCESS: "success",
        StatusState.FAILURE: "failed", StatusState.ERROR: "failed", StatusState.CANCELED: "canceled",
    },
    "bitbucket": {
        StatusState.PENDING: "INPROGRESS", StatusState.RUNNING: "INPROGRESS", StatusState.SUCCESS: "SUCCESSFUL",
        StatusState.FAILURE: "FAILED", StatusState.ERROR: "FAILED", StatusState.CANCELED: "STOPPED",
    },
}
_HOST_STATES_GITEA: Final = _HOST_STATES["github"]

_PHASES: Final[Mapping[str, StatusState]] = {
    "": StatusState.PENDING,
    "Pending": StatusState.PENDING,
    "Running": StatusState.RUNNING,
    "Succeeded": StatusState.SUCCESS,
    "Failed": StatusState.FAILURE,
    "Error": StatusState.ERROR,
}


def state_for_phase(phase: str | enum.Enum) -> StatusState:
    """The status for an Argo workflow phase (``Running`` -> running, shown as pending on GitHub)."""
    value = phase.value if isinstance(phase, enum.Enum) else phase
    try:
        return _PHASES[str(value)]
    except KeyError:
        raise ValueError(f"unknown workflow phase {value!r}") from None


def host_state(host: str, state: StatusState) -> str:
    """How ``host`` spells ``state`` in its status API."""
    return _states(host)[state]


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusTarget:
    """Which commit of which repository, on which host API.

    ``repo`` is ``owner/name`` (GitHub, Gitea), the full project path ``group/sub/project``
    (GitLab) or ``workspace/repo_slug`` (Bitbucket). ``api_url`` is the API root, e.g.
    ``https://api.github.com``, ``https://gitlab.example.com/api/v4``,
    ``https://gitea.example.com/api/v1``, ``https://api.bitbucket.org/2.0``.
    """

    host: str
    api_url: str
    repo: str
    sha: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitStatus:
    """What to say about the commit: a state, the run's link, a one-line description, a context name."""

    state: StatusState
    target_url: str = ""
    description: str = ""
    context: str = "gittrigger"


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """The API token (from a secret); with ``username`` Bitbucket uses basic auth (app password)."""

    token: str = field(repr=False)
    username: str | None = None

    @classmethod
    def from_secret(cls, value: bytes | str, *, username: str | None = None) -> Credentials:
        """From a mounted secret's bytes; the trailing newline such files often carry is dropped."""
        text = value.decode() if isinstance(value, bytes) else value
        return cls(token=text.strip(), username=username)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportOutcome:
    """How a report ended: ``ok``, the attempts made, the last HTTP status (if any) and why not."""

    ok: bool
    attempts: int
    http_status: int | None = None
    error: str | None = None
    host: str = ""
    repo: str = ""
    sha: str = ""
    state: str = ""

    def as_detail(self) -> dict[str, Any]:
        """A JSON-able dict for the audit entry ``status-reported``."""
        return {
            "ok": self.ok, "attempts": self.attempts, "httpStatus": self.http_status, "error": self.error,
            "host": self.host, "repo": self.repo, "sha": self.sha, "state": self.state,
        }


def default_api_url(host: str, repo_url: str) -> str:
    """The API root for a repository's web URL (github.com, GitHub Enterprise, GitLab, Gitea, Bitbucket)."""
    parts = urlsplit(repo_url)
    origin = f"{parts.scheme or 'https'}://{parts.netloc}"
    if host == "github":
        return "https://api.github.com" if parts.hostname == "github.com" else f"{origin}/api/v3"
    if host == "gitlab":
        return f"{origin}/api/v4"
    if host in ("gitea", "forgejo"):
        return f"{origin}/api/v1"
    if host == "bitbucket":
        return "https://api.bitbucket.org/2.0"
    raise ValueError(f"unknown host {host!r}; expected one of {', '.join(HOSTS)}")


def target_for_push(host: str, push: PushSummary, *, api_url: str | None = None) -> StatusTarget:
    """The status target of a push's head commit (``push.after``), repository taken from its web URL.

    GitLab projects may be nested (``group/sub/project``), so the whole path is the project; the
    other hosts name ``owner/repo``, the last two path segments.
    """
    path = urlsplit(push.repo_url).path.strip("/").removesuffix(".git")
    segments = [s for s in path.split("/") if s]
    if host == "gitlab":
        # A GitLab under a path prefix (https://example.com/gitlab/group/project): drop the
        # prefix the API URL carries before /api/v4.
        prefix = urlsplit(api_url).path.rsplit("/api/", 1)[0].strip("/") if api_url else ""
        if prefix and path.startswith(prefix + "/"):
            path = path.removeprefix(prefix + "/")
        repo = path
    else:
        repo = "/".join(segments[-2:])
    if not repo or (host != "gitlab" and len(segments) < 2):
        raise ValueError(f"cannot tell the repository from {push.repo_url!r}")
    return StatusTarget(
        host=host, api_url=(api_url or default_api_url(host, push.repo_url)).rstrip("/"), repo=repo, sha=push.after
    )


def build_request(
    target: StatusTarget, status: CommitStatus, *, credentials: Credentials
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The ``(url, headers, json body)`` of one status POST; pure, so each host's shape is testable."""
    host, api, sha = target.host, target.api_url.rstrip("/"), quote(target.sha, safe="")
    state = host_state(host, status.state)
    headers = {"Accept": "application/json", "User-Agent": "gittrigger"}
    body: dict[str, Any]
    if host in ("github", "gitea", "forgejo"):
        owner, name = _owner_repo(target.repo)
        url = f"{api}/repos/{owner}/{name}/statuses/{sha}"
        body = {"state": state, "target_url": status.target_url, "description": _short(status.description, 140),
                "context": status.context}
        if host == "github":
            headers["Accept"] = "application/vnd.github+json"
            headers["X-GitHub-Api-Version"] = "2022-11-28"
            headers["Authorization"] = f"Bearer {credentials.token}"
        else:
            headers["Authorization"] = f"token {credentials.token}"
    elif host == "gitlab":
        url = f"{api}/projects/{quote(target.repo, safe='')}/statuses/{sha}"
        body = {"state": state, "name": status.context, "target_url": status.target_url,
                "description": _short(status.description, 255)}
        headers["PRIVATE-TOKEN"] = credentials.token
    elif host == "bitbucket":
        workspace, slug = _owner_repo(target.repo)
        url = f"{api}/repositories/{workspace}/{slug}/commit/{sha}/statuses/build"
        # Bitbucket requires ``url``; ``key`` identifies the status (40 characters at most).
        body = {"state": state, "key": status.context[:40], "name": status.context,
                "url": status.target_url, "description": _short(status.description, 255)}
        if credentials.username is not None:
            basic = base64.b64encode(f"{credentials.username}:{credentials.token}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        else:
            headers["Authorization"] = f"Bearer {credentials.token}"
    else:
        raise ValueError(f"unknown host {host!r}; expected one of {', '.join(HOSTS)}")
    return url, headers, body


class StatusReporter:
    """Posts commit statuses; owns one HTTP session (created on first use, closed by :meth:`close`)."""

    def __init__(
        self,
        *,
        timeout_seconds: float = 10.0,
        attempts: int = 4,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> StatusReporter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session; a later report opens a new one."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def report_push(
        self, host: str, push: PushSummary, status: CommitStatus, *, credentials: Credentials,
        api_url: str | None = None,
    ) -> ReportOutcome:
        """Report ``status`` on a push's head commit; see :func:`target_for_push`. Never raises."""
        if push.deleted:
            return ReportOutcome(ok=False, attempts=0, error="the push deleted its ref: no commit to report on",
                                 host=host, sha=push.after, state=status.state.value)
        try:
            target = target_for_push(host, push, api_url=api_url)
        except ValueError as e:
            logger.warning("status report failed", host=host, sha=push.after, reason=str(e))
            return ReportOutcome(ok=False, attempts=0, error=str(e), host=host, sha=push.after,
                                 state=status.state.value)
        return await self.report(target, status, credentials=credentials)

    async def report(self, target: StatusTarget, status: CommitStatus, *, credentials: Credentials) -> ReportOutcome:
        """POST ``status`` for ``target``, retrying transient failures; the outcome, never an exception."""
        log = logger.bind(host=target.host, repo=target.repo, sha=target.sha, state=status.state.value)
        base = ReportOutcome(ok=False, attempts=0, host=target.host, repo=target.repo, sha=target.sha,
                             state=status.state.value)
        try:
            url, headers, body = build_request(target, status, credentials=credentials)
        except ValueError as e:
            log.warning("status report failed", attempts=0, reason=str(e))
            return replace(base, error=str(e))
        attempt, http_status, error = 0, None, None
        while attempt < self._attempts:
            attempt += 1
            http_status, error, transient = await self._post(url, headers=headers, body=body)
            if error is None:
                log.info("status reported", attempts=attempt, http_status=http_status)
                return replace(base, ok=True, attempts=attempt, http_status=http_status)
            if not transient or attempt == self._attempts:
                break
            delay = min(self._backoff * 2 ** (attempt - 1), self._max_backoff)
            log.info("status report retried", attempt=attempt, http_status=http_status, reason=error,
                     delay_s=delay)
            await self._sleep(delay)
        log.warning("status report failed", attempts=attempt, http_status=http_status, reason=error)
        return replace(base, attempts=attempt, http_status=http_status, error=error)

    async def _post(
        self, url: str, *, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int | None, str | None, bool]:
        """One attempt: (HTTP status, error or None, whether a retry may help)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(url, json=body, headers=headers, allow_redirects=False) as resp:
                text = await resp.text(errors="replace")
                if 200 <= resp.status < 300:
                    return resp.status, None, False
                transient = resp.status >= 500 or resp.status in _RETRIED_4XX
                return resp.status, f"HTTP {resp.status}: {_short(text.strip(), _REASON_CHARS)}", transient
        except TimeoutError:
            return None, f"timed out after {self._timeout.total}s", True
        except aiohttp.ClientError as e:
            return None, f"{type(e).__name__}: {e}", True


def _states(host: str) -> Mapping[StatusState, str]:
    if host in ("gitea", "forgejo"):
        return _HOST_STATES_GITEA
    if host not in _HOST_STATES:
        raise ValueError(f"unknown host {host!r}; expected one of {', '.join(HOSTS)}")
    return _HOST_STATES[host]


def _owner_repo(repo: str) -> tuple[str, str]:
    owner, sep, name = repo.strip("/").partition("/")
    if not sep or not owner or not name or "/" in name:
        raise ValueError(f"repository {repo!r} must be owner/name")
    return quote(owner, safe=""), quote(name, safe="")


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
