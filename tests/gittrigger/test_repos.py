"""
Tests of :mod:`gittrigger.repos` against real repositories made with the ``git`` CLI in ``tmp_path``,
served over ``file://``, ``git daemon`` (git://) and ``git http-backend`` behind an aiohttp CGI
handler on loopback (smart HTTP, optionally with basic auth). Servers live in fixtures and are
stopped at teardown.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from gittrigger.repos import (
    CommitInfo,
    FileSecrets,
    GitAuthFailed,
    GitError,
    GitRepos,
    UnknownRevision,
    _AuthRejected,
    _Callbacks,
    _Credentials,
    _key_file,
)
from workflows.engine import Engine
from workflows.errors import ErrorCode, NotFound
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.local import LocalExecutor
from workflows.model.spec import GitSource
from workflows.resolution import DictTemplateGetter
from workflows.store.memory import MemoryStore

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent",
}
HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
USER, PASSWORD = "alice", "s3cret-pa55"
# libgit2's GIT_CREDENTIAL_* bits, spelled out so that only gittrigger.repos imports pygit2.
USERPASS_PLAINTEXT, SSH_KEY = 1, 2


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd``; returns stdout stripped."""
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@dataclass(slots=True)
class Upstream:
    """A non-bare repository with known commits: main c1..c3, tags v1 (light) and v2 (annotated), feature."""

    path: Path
    shas: dict[str, str]

    def commit(self, name: str, *, files: dict[str, str], remove: tuple[str, ...] = ()) -> str:
        for rel, content in files.items():
            (self.path / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.path / rel).write_text(content)
            git(self.path, "add", rel)
        for rel in remove:
            git(self.path, "rm", "-q", rel)
        git(self.path, "commit", "-q", "-m", f"{name}\n\nbody of {name}")
        self.shas[name] = git(self.path, "rev-parse", "HEAD")
        return self.shas[name]


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    path = tmp_path / "served" / "project"
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    up = Upstream(path=path, shas={})
    up.commit("c1", files={"README": "one\n", "docs/a.txt": "a\n"})
    git(path, "tag", "v1")
    up.commit("c2", files={"README": "two\n", "run.sh": "#!/bin/sh\necho hi\n"})
    (path / "run.sh").chmod(0o755)
    git(path, "add", "run.sh")
    git(path, "commit", "-q", "-m", "exec bit")
    up.shas["c2x"] = git(path, "rev-parse", "HEAD")
    git(path, "checkout", "-q", "-b", "feature")
    up.commit("f1", files={"README": "feature\n"})
    git(path, "checkout", "-q", "main")
    up.commit("c3", files={"README": "three\n", "new.txt": "n\n"}, remove=("docs/a.txt",))
    os.symlink("README", path / "link")
    git(path, "add", "link")
    git(path, "commit", "-q", "-m", "link")
    up.shas["c3l"] = git(path, "rev-parse", "HEAD")
    git(path, "tag", "-a", "v2", "-m", "release two")
    return up


@pytest.fixture
def repos(tmp_path: Path) -> GitRepos:
    secrets = tmp_path / "secrets"
    (secrets / "git-creds").mkdir(parents=True)
    (secrets / "git-creds" / "username").write_text(USER)
    (secrets / "git-creds" / "password").write_text(PASSWORD + "\n")
    (secrets / "bad-creds").mkdir()
    (secrets / "bad-creds" / "username").write_text(USER)
    (secrets / "bad-creds" / "password").write_text("wrong-horse-battery")
    return GitRepos(cache_dir=tmp_path / "cache", secrets=FileSecrets(secrets))


def file_url(up: Upstream) -> str:
    return up.path.as_uri()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def git_daemon(upstream: Upstream) -> Iterator[str]:
    """``git daemon`` exporting the upstream's parent folder; yields ``git://127.0.0.1:<port>/project``."""
    base = upstream.path.parent
    port = free_port()
    proc = subprocess.Popen(
        ["git", "daemon", "--export-all", f"--base-path={base}", "--listen=127.0.0.1", f"--port={port}",
         "--reuseaddr", "--informative-errors", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **GIT_ENV},
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, "git daemon exited"
                subprocess.run(["sleep", "0.05"], check=True)
        yield f"git://127.0.0.1:{port}/project"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass(slots=True)
class Gate:
    """Holds the first request a server gets until ``opened`` is set; ``entered`` says it arrived."""

    entered: asyncio.Event
    opened: asyncio.Event
    used: bool = False


def http_backend_app(root: Path, *, auth: tuple[str, str] | None, gate: Gate | None = None) -> web.Application:
    """Smart HTTP through ``git http-backend`` as CGI; checks basic auth when ``auth`` is set."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if gate is not None and not gate.used:
            gate.used = True
            gate.entered.set()
            await gate.opened.wait()
        user = ""
        if auth is not None:
            expected = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            if request.headers.get("Authorization") != expected:
                return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="git"'})
            user = auth[0]
        body = await request.read()
        env = {
            "PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": request.path, "QUERY_STRING": request.query_string, "REQUEST_METHOD": request.method,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user, "REMOTE_ADDR": "127.0.0.1",
            "HTTP_GIT_PROTOCOL": request.headers.get("Git-Protocol", ""),
        }
        proc = await asyncio.create_subprocess_exec(
            HTTP_BACKEND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        out, _ = await proc.communicate(body)
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, {}
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers[name.strip()] = value.strip()
        return web.Response(status=status, body=payload, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


HttpServerFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def http_git(upstream: Upstream) -> AsyncIterator[HttpServerFactory]:
    """Start smart-HTTP servers: ``await http_git(auth=(user, password))`` -> repo URL; stopped at teardown."""
    servers: list[TestServer] = []

    async def start(*, auth: tuple[str, str] | None = None, gate: Gate | None = None) -> str:
        server = TestServer(http_backend_app(upstream.path.parent, auth=auth, gate=gate), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("/project"))

    yield start
    for server in servers:
        await server.close()


def count_objects(mirror: Path) -> int:
    """Objects stored in a bare repository (loose + packed), as ``git count-objects -v`` sums them."""
    stats = dict(line.split(": ") for line in git(mirror, "count-objects", "-v").splitlines())
    return int(stats["count"]) + int(stats["in-pack"])


# -- checkout over each transport --------------------------------------------------------------

@pytest.mark.parametrize(("revision", "expected_readme", "sha_key"), [
    ("main", "three\n", "c3l"),
    ("feature", "feature\n", "f1"),
    ("v1", "one\n", "c1"),
    ("v2", "three\n", "c3l"),
    (None, "three\n", "c3l"),
    ("HEAD", "three\n", "c3l"),
    ("refs/heads/feature", "feature\n", "f1"),
], ids=["branch", "other-branch", "light-tag", "annotated-tag", "default-head", "explicit-head", "full-ref"])
async def test_checkout_by_name_over_file(repos: GitRepos, upstream: Upstream, tmp_path: Path,
                                          revision: str | None, expected_readme: str, sha_key: str) -> None:
    """Branches, tags, refs and the remote HEAD resolve to the commit whose files land in dest."""
    dest = tmp_path / "out"
    dest.mkdir()  # may already exist, empty
    with capture_logs() as logs:
        await repos.fetch_git(GitSource(repo=file_url(upstream), revision=revision), dest=dest)
    assert expected_readme == (dest / "README").read_text()
    assert not (dest / ".git").exists()
    done = [e for e in logs if e["event"] == "git checked out"]
    assert upstream.shas[sha_key] == done[-1]["sha"]


@pytest.mark.parametrize("length", [40, 7], ids=["full-sha", "short-sha"])
async def test_checkout_by_sha(repos: GitRepos, upstream: Upstream, tmp_path: Path, length: int) -> None:
    """A full or abbreviated sha checks out that exact commit (here one only on a side branch)."""
    await repos.fetch_git(GitSource(repo=file_url(upstream), revision=upstream.shas["f1"][:length]),
                          dest=tmp_path / "out")
    assert (tmp_path / "out" / "README").read_text() == "feature\n"


async def test_checkout_writes_modes_symlinks_and_directories(repos: GitRepos, upstream: Upstream,
                                                              tmp_path: Path) -> None:
    """Executable bits, symlinks and nested directories come out as git would write them."""
    await repos.fetch_git(GitSource(repo=file_url(upstream), revision=upstream.shas["c3l"]),
                          dest=tmp_path / "out")
    out = tmp_path / "out"
    assert os.access(out / "run.sh", os.X_OK)
    assert not os.access(out / "README", os.X_OK)
    assert os.readlink(out / "link") == "README"
    assert not (out / "docs").exists()  # removed in c3
    await repos.fetch_git(GitSource(repo=file_url(upstream), revision="v1"), dest=tmp_path / "old")
    assert (tmp_path / "old" / "docs" / "a.txt").read_text() == "a\n"


async def test_checkout_over_git_daemon(repos: GitRepos, upstream: Upstream, git_daemon: str, tmp_path: Path) -> None:
    """The git:// protocol against a real ``git daemon``, by tag and by default HEAD."""
    await repos.fetch_git(GitSource(repo=git_daemon, revision="v1"), dest=tmp_path / "a")
    await repos.fetch_git(GitSource(repo=git_daemon), dest=tmp_path / "b")
    assert (tmp_path / "a" / "README").read_text() == "one\n"
    assert (tmp_path / "b" / "README").read_text() == "three\n"


async def test_checkout_over_smart_http(repos: GitRepos, upstream: Upstream, http_git: HttpServerFactory,
                                        tmp_path: Path) -> None:
    """Smart HTTP through ``git http-backend``, by branch."""
    url = await http_git()
    await repos.fetch_git(GitSource(repo=url, revision="feature"), dest=tmp_path / "out")
    assert (tmp_path / "out" / "README").read_text() == "feature\n"


async def test_checkout_over_http_with_basic_auth(repos: GitRepos, upstream: Upstream,
                                                  http_git: HttpServerFactory, tmp_path: Path) -> None:
    """usernameSecret/passwordSecret are sent as basic auth the server checks."""
    url = await http_git(auth=(USER, PASSWORD))
    source = GitSource(repo=url, revision="main", username_secret={"name": "git-creds", "key": "username"},
                       password_secret={"name": "git-creds", "key": "password"})
    await repos.fetch_git(source, dest=tmp_path / "out")
    assert (tmp_path / "out" / "README").read_text() == "three\n"


@pytest.mark.parametrize("secret", ["bad-creds", None], ids=["wrong-password", "no-credentials"])
async def test_auth_failure_names_repo_not_password(repos: GitRepos, upstream: Upstream,
                                                    http_git: HttpServerFactory, tmp_path: Path,
                                                    secret: str | None) -> None:
    """A refused login is GitAuthFailed naming repo and revision, and never the password."""
    url = await http_git(auth=(USER, PASSWORD))
    source = GitSource(repo=url, revision="main",
                       username_secret={"name": secret, "key": "username"} if secret else None,
                       password_secret={"name": secret, "key": "password"} if secret else None)
    with pytest.raises(GitAuthFailed) as info:
        await repos.fetch_git(source, dest=tmp_path / "out")
    message = str(info.value)
    assert url in message and "'main'" in message
    assert "wrong-horse-battery" not in message and PASSWORD not in message
    assert info.value.code == ErrorCode.UNAUTHENTICATED


async def test_password_in_url_is_used_and_redacted(repos: GitRepos, http_git: HttpServerFactory,
                                                    tmp_path: Path) -> None:
    """A password written into the repo URL is used to log in and never reaches an error message."""
    url = (await http_git(auth=(USER, PASSWORD))).replace("http://", "http://alice:hunter2-url@")
    with pytest.raises(GitAuthFailed) as info:
        await repos.fetch_git(GitSource(repo=url, revision="main"), dest=tmp_path / "out")
    assert "hunter2-url" not in str(info.value)
    assert "credentials rejected" in str(info.value)
    assert "alice:***@" in str(info.value)
    ok_url = url.replace("hunter2-url", PASSWORD)
    await repos.fetch_git(GitSource(repo=ok_url, revision="main"), dest=tmp_path / "out")
    assert (tmp_path / "out" / "README").read_text() == "three\n"


# -- errors --------------------------------------------------------------------------------------

async def test_unknown_revision_names_repo_and_revision(repos: GitRepos, upstream: Upstream, tmp_path: Path) -> None:
    """A revision naming nothing is UnknownRevision (NOT_FOUND) with repo and revision in the message."""
    with pytest.raises(UnknownRevision) as info:
        await repos.fetch_git(GitSource(repo=file_url(upstream), revision="v9.9"), dest=tmp_path / "out")
    assert file_url(upstream) in str(info.value) and "'v9.9'" in str(info.value)
    assert info.value.code == ErrorCode.NOT_FOUND


async def test_unreachable_repo_is_unavailable(repos: GitRepos, tmp_path: Path) -> None:
    """Nothing listening on the port: a GitError (UNAVAILABLE) naming the repo."""
    url = f"git://127.0.0.1:{free_port()}/nothing"
    with pytest.raises(GitError) as info:
        await repos.fetch_git(GitSource(repo=url, revision="main"), dest=tmp_path / "out")
    assert url in str(info.value)
    assert info.value.code == ErrorCode.UNAVAILABLE


@pytest.mark.parametrize(("name", "key"), [("git-creds", "token"), ("absent", "password")],
                         ids=["missing-key", "missing-secret"])
def test_file_secrets_missing_is_not_found(tmp_path: Path, repos: GitRepos, name: str, key: str) -> None:
    """A missing secret or key is NotFound naming ``name/key``."""
    with pytest.raises(NotFound) as info:
        FileSecrets(tmp_path / "secrets").resolve(name, key)
    assert f"{name}/{key}" in str(info.value)


async def test_missing_secret_fails_the_fetch(repos: GitRepos, upstream: Upstream, tmp_path: Path) -> None:
    """A git artifact naming an absent secret fails before any network, naming the secret."""
    source = GitSource(repo=file_url(upstream), password_secret={"name": "nope", "key": "password"})
    with pytest.raises(NotFound, match="nope/password"):
        await repos.fetch_git(source, dest=tmp_path / "out")


# -- the mirror ----------------------------------------------------------------------------------

async def test_second_fetch_reuses_mirror_and_fetches_only_new_objects(
        repos: GitRepos, upstream: Upstream, git_daemon: str, tmp_path: Path) -> None:
    """A later build fetches into the same mirror and receives only the new commit's objects."""
    await repos.fetch_git(GitSource(repo=git_daemon), dest=tmp_path / "one")
    mirror = repos.mirror_path(git_daemon)
    before = count_objects(mirror)
    upstream.commit("c4", files={"README": "four\n"})  # new commit, tree, blob: 3 objects
    with capture_logs() as logs:
        await repos.fetch_git(GitSource(repo=git_daemon), dest=tmp_path / "two")
    assert (tmp_path / "two" / "README").read_text() == "four\n"
    assert [mirror.name] == [p.name for p in mirror.parent.iterdir()]
    assert before + 3 == count_objects(mirror)
    assert next(e for e in logs if e["event"] == "git checked out")["received_objects"] == 3


async def test_known_sha_needs_no_network(repos: GitRepos, upstream: Upstream, tmp_path: Path) -> None:
    """A full sha already in the mirror is checked out even when the remote is gone."""
    sha = upstream.shas["c2"]
    await repos.fetch_git(GitSource(repo=file_url(upstream), revision=sha), dest=tmp_path / "one")
    shutil.rmtree(upstream.path)
    await repos.fetch_git(GitSource(repo=file_url(upstream), revision=sha), dest=tmp_path / "two")
    assert (tmp_path / "two" / "README").read_text() == "two\n"


async def test_depth_one_is_shallow_over_git_daemon(repos: GitRepos, upstream: Upstream, git_daemon: str,
                                                    tmp_path: Path) -> None:
    """depth: 1 makes a shallow mirror with just the tips; a later full fetch completes the history."""
    await repos.fetch_git(GitSource(repo=git_daemon, revision="main", depth=1, single_branch=True, branch="main"),
                          dest=tmp_path / "one")
    mirror = repos.mirror_path(git_daemon)
    assert (tmp_path / "one" / "README").read_text() == "three\n"
    assert git(mirror, "rev-parse", "--is-shallow-repository") == "true"
    assert int(git(mirror, "rev-list", "--count", "main")) == 1
    await repos.fetch_git(GitSource(repo=git_daemon, revision=upstream.shas["c1"]), dest=tmp_path / "two")
    assert (tmp_path / "two" / "README").read_text() == "one\n"
    assert git(mirror, "rev-parse", "--is-shallow-repository") == "false"


@pytest.fixture
def debug_logs() -> Iterator[None]:
    """structlog at its defaults (no level filter), restored afterwards, so debug lines are captured."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("debug_logs")
async def test_depth_over_file_falls_back_to_full_fetch(repos: GitRepos, upstream: Upstream, tmp_path: Path) -> None:
    """libgit2's local transport cannot fetch shallow: the fetch is full, and says so in a debug log."""
    with capture_logs() as logs:
        await repos.fetch_git(GitSource(repo=file_url(upstream), depth=1), dest=tmp_path / "out")
    assert (tmp_path / "out" / "README").read_text() == "three\n"
    assert any(e["event"] == "shallow fetch unsupported, fetching full history" for e in logs)


async def test_concurrent_fetches_of_one_repo(repos: GitRepos, upstream: Upstream, git_daemon: str,
                                              tmp_path: Path) -> None:
    """Steps of one repo fetching at once share the mirror without corrupting it."""
    revisions = ["main", "feature", "v1", "v2", None, upstream.shas["c2"]]
    await asyncio.gather(*(repos.fetch_git(GitSource(repo=git_daemon, revision=r), dest=tmp_path / f"out{i}")
                           for i, r in enumerate(revisions)))
    readmes = [(tmp_path / f"out{i}" / "README").read_text() for i in range(len(revisions))]
    assert readmes == ["three\n", "feature\n", "one\n", "three\n", "three\n", "two\n"]
    git(repos.mirror_path(git_daemon), "fsck", "--no-progress")


async def test_cancelled_fetch_holds_the_mirror_until_its_thread_ends(
        repos: GitRepos, upstream: Upstream, http_git: HttpServerFactory, tmp_path: Path) -> None:
    """Cancelling a step mid-fetch cannot stop libgit2: the next fetch waits for it, then succeeds."""
    gate = Gate(entered=asyncio.Event(), opened=asyncio.Event())
    url = await http_git(gate=gate)
    first = asyncio.create_task(repos.fetch_git(GitSource(repo=url), dest=tmp_path / "one"))
    await gate.entered.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert repos._locks[url].locked()  # the orphaned libgit2 call still owns the mirror
    second = asyncio.create_task(repos.fetch_git(GitSource(repo=url, revision="v1"), dest=tmp_path / "two"))
    gate.opened.set()
    await second
    assert (tmp_path / "two" / "README").read_text() == "one\n"
    assert not repos._locks[url].locked()
    git(repos.mirror_path(url), "fsck", "--no-progress")


# -- refs, files, commit ranges ------------------------------------------------------------------

async def test_list_remote_refs_and_resolve_ref(repos: GitRepos, upstream: Upstream, git_daemon: str) -> None:
    """The advertised refs with annotated tags peeled; resolve_ref takes short names too."""
    refs = await repos.list_remote_refs(git_daemon)
    assert {"HEAD": upstream.shas["c3l"], "refs/heads/main": upstream.shas["c3l"],
            "refs/heads/feature": upstream.shas["f1"], "refs/tags/v1": upstream.shas["c1"],
            "refs/tags/v2": upstream.shas["c3l"]} == refs
    assert upstream.shas["f1"] == await repos.resolve_ref(git_daemon, "feature")
    assert upstream.shas["c1"] == await repos.resolve_ref(git_daemon, "refs/tags/v1")
    with pytest.raises(UnknownRevision, match="nope"):
        await repos.resolve_ref(git_daemon, "nope")


async def test_read_file_at_sha(repos: GitRepos, upstream: Upstream) -> None:
    """read_file fetches when needed and reads a path at a commit; a missing path is NotFound."""
    url = file_url(upstream)
    assert await repos.read_file(url, upstream.shas["c1"], "docs/a.txt") == b"a\n"
    assert await repos.read_file(url, upstream.shas["f1"], "README") == b"feature\n"
    with pytest.raises(NotFound, match=r"docs/a\.txt"):
        await repos.read_file(url, upstream.shas["c3"], "docs/a.txt")


async def test_commits_between(repos: GitRepos, upstream: Upstream) -> None:
    """Push-shaped commits, oldest first, each with files added/modified/removed against its parent."""
    url = file_url(upstream)
    commits = await repos.commits_between(url, upstream.shas["c2x"], upstream.shas["c3l"])
    assert [upstream.shas["c3"], upstream.shas["c3l"]] == [c.sha for c in commits]
    c3 = commits[0]
    assert isinstance(c3, CommitInfo)
    assert (c3.added, c3.modified, c3.removed) == (("new.txt",), ("README",), ("docs/a.txt",))
    assert c3.message.startswith("c3\n") and (c3.author, c3.author_email) == ("Ada", "ada@example.com")
    assert await repos.commits_between(url, upstream.shas["c3l"], "0" * 40) == []
    created = await repos.commits_between(url, "0" * 40, upstream.shas["c1"])
    assert [(upstream.shas["c1"], ("README", "docs/a.txt"))] == [(c.sha, c.added) for c in created]


# -- end to end: a workflow's git input artifact through the engine and the local executor ---------

GIT_WORKFLOW = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: git-input-}
spec:
  entrypoint: main
  templates:
  - name: main
    inputs:
      artifacts:
      - name: source
        path: /src
        git:
          repo: REPO
          revision: REVISION
          usernameSecret: {name: git-creds, key: username}
          passwordSecret: {name: git-creds, key: password}
    container:
      image: alpine:3.19
      command: [cat, /src/README]
"""


@pytest.mark.parametrize(("revision", "expected", "phase"), [
    ("v1", "one", "Succeeded"),
    ("no-such-tag", None, "Error"),
], ids=["tag", "unknown-revision"])
async def test_workflow_with_git_input_artifact(repos: GitRepos, upstream: Upstream, http_git: HttpServerFactory,
                                                tmp_path: Path, revision: str, expected: str | None,
                                                phase: str) -> None:
    """The step sees the checked-out commit at /src; a bad revision is the node's Error message."""
    url = await http_git(auth=(USER, PASSWORD))
    data = tmp_path / "data"
    store = MemoryStore()
    executor = LocalExecutor(data_dir=data, artifacts=LocalArtifactStore(data / "artifacts"), logs=store,
                             fetcher=repos, grace_period=1.0)
    engine = Engine(store=store, executor=executor, templates=DictTemplateGetter())
    try:
        manifest = yaml.safe_load(GIT_WORKFLOW.replace("REPO", url).replace("REVISION", revision))
        stored = await engine.submit(manifest)
        meta = stored["metadata"]
        done = await engine.wait(meta["namespace"], meta["name"])
        await store.flush()
        lines = [ln.content for _, ln in await store.read(namespace=meta["namespace"], workflow=meta["name"])
                 if ln.container == "main"]
    finally:
        await engine.close()
    status = done["status"]
    assert status["phase"] == phase, status
    pod = next(n for n in status["nodes"].values() if n["type"] == "Pod")
    assert pod["phase"] == phase
    if expected is not None:
        assert lines == [expected]
    else:
        assert "'no-such-tag'" in pod["message"] and url in pod["message"]
        assert PASSWORD not in pod["message"]


# -- credentials callbacks and submodules ----------------------------------------------------------

def test_ssh_key_is_offered_from_a_private_temp_file_removed_afterwards(tmp_path: Path) -> None:
    """sshPrivateKeySecret becomes a Keypair on a 0600 file that is gone once the fetch is over.

    (No SSH server on the test machine: this checks the credentials callback libgit2 would call.)
    """
    creds = _Credentials(ssh_key=b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----")
    with _key_file(creds.ssh_key) as key_path:
        assert key_path is not None
        assert key_path.stat().st_mode & 0o777 == 0o600
        assert key_path.read_bytes().endswith(b"-----END OPENSSH PRIVATE KEY-----\n")
        offered = _Callbacks(creds, key_path=key_path).credentials(
            "ssh://git@example.com/x.git", "git", SSH_KEY | USERPASS_PLAINTEXT)
        assert type(offered).__name__ == "Keypair"
        assert offered.credential_tuple == ("git", None, str(key_path), "")
    assert not key_path.exists()


@pytest.mark.parametrize(("insecure", "valid", "accepted"), [
    (False, True, True),
    (False, False, False),
    (True, False, True),
], ids=["known-host", "unknown-host-rejected", "insecure-ignore-host-key"])
def test_host_key_check(insecure: bool, valid: bool, accepted: bool) -> None:
    """Host keys libgit2 could not verify are refused unless insecureIgnoreHostKey is set."""
    callbacks = _Callbacks(_Credentials(insecure_ignore_host_key=insecure), key_path=None)
    assert callbacks.certificate_check(None, valid, b"example.com") is accepted


def test_credentials_are_offered_once() -> None:
    """After the server refused the credentials, the callback stops libgit2 from retrying forever."""
    callbacks = _Callbacks(_Credentials(username=USER, password=PASSWORD), key_path=None)
    first = callbacks.credentials("https://example.com/x.git", None, USERPASS_PLAINTEXT)
    assert first.credential_tuple == (USER, PASSWORD)
    with pytest.raises(_AuthRejected):
        callbacks.credentials("https://example.com/x.git", None, USERPASS_PLAINTEXT)
    assert PASSWORD not in repr(_Credentials(password=PASSWORD))


async def test_submodules_are_left_as_empty_directories(repos: GitRepos, upstream: Upstream,
                                                        tmp_path: Path) -> None:
    """A gitlink entry is not fetched: its path is an empty directory, as after a plain ``git clone``."""
    git(upstream.path, "update-index", "--add", "--cacheinfo", f"160000,{upstream.shas['c1']},vendor/lib")
    git(upstream.path, "commit", "-q", "-m", "add submodule")
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "stale.txt").write_text("left by someone")  # an existing dest is written into, not replaced
    await repos.fetch_git(GitSource(repo=file_url(upstream), disable_submodules=False), dest=dest)
    assert (dest / "vendor" / "lib").is_dir()
    assert list((dest / "vendor" / "lib").iterdir()) == []
    assert (dest / "README").read_text() == "three\n"
