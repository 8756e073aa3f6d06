"""
Git access through pygit2: the ``git`` input artifact fetcher, remote ref listing, file reads
and commit ranges over local bare mirrors.

:class:`GitRepos` implements :class:`workflows.executors.base.ArtifactFetcher` structurally; the
local executor calls :meth:`GitRepos.fetch_git` while staging a pod's inputs, and the git poller
event source calls :meth:`~GitRepos.list_remote_refs` / :meth:`~GitRepos.commits_between`. This is
the only module importing ``pygit2`` (enforced by ``tests/test_architecture.py``); every pygit2
call blocks, so each runs in :func:`asyncio.to_thread`, on its own ``Repository`` handle.

Each repository URL gets one bare mirror under ``cache_dir/mirrors/<sha256 of url>.git``, so a
repeated build fetches only new objects. Fetches of one URL are serialised by an asyncio lock
(two steps of one repo would otherwise race on the mirror's refs); checkouts read immutable
objects and run outside it. A checkout writes the commit's tree straight into ``dest`` (no
worktree, no index, no second clone). Submodules are not fetched: their paths are left as empty
directories, as ``git clone`` without ``--recurse-submodules`` leaves them (``disableSubmodules``
is therefore always in effect). Secret values are never logged nor put in error messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar, Final, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pygit2
import structlog
from pygit2.enums import CredentialType, DeltaStatus, FileMode, Option, SortMode

from gittrigger.secretsources import check_secret_ref
from workflows.errors import ErrorCode, NotFound, WorkflowError
from workflows.model.spec import GitSource

logger = structlog.get_logger(__name__)

_HEADS_AND_TAGS: Final = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
_UNSHALLOW: Final = 2147483647  # libgit2's GIT_FETCH_DEPTH_UNSHALLOW
_FULL_SHA: Final = re.compile(r"[0-9a-f]{40}")
_ZERO_SHA: Final = "0" * 40
_P = ParamSpec("_P")
_T = TypeVar("_T")


class GitError(WorkflowError):
    """A Git operation on ``repo`` failed; the message names the repo and revision, never a secret."""

    code: ClassVar[ErrorCode] = ErrorCode.UNAVAILABLE

    def __init__(self, *, repo: str, revision: str | None, message: str) -> None:
        where = f"{redact(repo)}" + (f" at revision {revision!r}" if revision else "")
        super().__init__(f"git {where}: {message}")
        self.repo = redact(repo)
        self.revision = revision


class UnknownRevision(GitError):
    """The revision names no branch, tag, ref or commit of the repository."""

    code = ErrorCode.NOT_FOUND


class GitAuthFailed(GitError):
    """The server refused the credentials (or wanted some and none were configured)."""

    code = ErrorCode.UNAUTHENTICATED


class SecretResolver(Protocol):
    """Reads one key of a Kubernetes-style secret.

    Implementations may block (a file read, an API request): call :meth:`resolve` from a worker
    thread (:func:`asyncio.to_thread`), never on the event loop. :func:`gittrigger.secretsources.open_secrets`
    is the one way the process gets its resolver; :class:`gittrigger.secretsources.SecretSource`
    adds namespaces and cache expiry.
    """

    def resolve(self, name: str, key: str) -> bytes:
        """The value of ``key`` in secret ``name``; raises :class:`NotFound` naming ``name/key``."""
        ...


class FileSecrets:
    """Secrets laid out as a mounted Kubernetes Secret: ``<root>/<name>/<key>``.

    Files have no namespaces (one mounted folder per server) and nothing is cached: every
    :meth:`resolve` reads the file, so a rotated file is read at once.
    """

    def __init__(self, root: Path) -> None:
        self._root = root

    def __repr__(self) -> str:
        return f"FileSecrets({str(self._root)!r})"

    def resolve(self, name: str, key: str) -> bytes:
        """Read ``<root>/<name>/<key>``; NotFound("secret", "name/key") when absent."""
        check_secret_ref(name, key)
        try:
            return (self._root / name / key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound("secret", f"{name}/{key}") from None

    def in_namespace(self, namespace: str) -> SecretResolver:
        return self

    def expire(self) -> None:
        pass


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitInfo:
    """One commit of a push-shaped range, with the paths it changed against its first parent."""

    sha: str
    message: str
    author: str
    author_email: str
    timestamp: datetime
    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Credentials:
    """Resolved secret values for one fetch (``repr`` hides them, so a stray log cannot leak them)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssh_key: bytes | None = field(default=None, repr=False)
    insecure_ignore_host_key: bool = False


class _AuthRejected(Exception):
    """Raised from the credentials callback to stop libgit2 from asking again forever."""


class _Callbacks(pygit2.RemoteCallbacks):
    """Credentials and host-key policy for one remote operation."""

    def __init__(self, creds: _Credentials, *, key_path: Path | None) -> None:
        super().__init__()
        self._creds = creds
        self._key_path = key_path
        self._asked = 0

    def credentials(self, url: str, username_from_url: str | None, allowed_types: int) -> Any:
        # libgit2 calls again after the server refused what we gave: refuse to loop.
        self._asked += 1
        if self._asked > 1:
            raise _AuthRejected("authentication failed (credentials rejected)")
        if allowed_types & CredentialType.SSH_KEY and self._key_path is not None:
            user = username_from_url or self._creds.username or "git"
            return pygit2.Keypair(user, None, str(self._key_path), "")
        password = self._creds.password if self._creds.password is not None else urlsplit(url).password
        if allowed_types & CredentialType.USERPASS_PLAINTEXT and password is not None:
            return pygit2.UserPass(self._creds.username or username_from_url or "", password)
        raise _AuthRejected("authentication required but no usable credentials are configured")

    def certificate_check(self, certificate: Any, valid: bool, host: bytes) -> bool:
        # Not Passthrough: pygit2 turns that into "accept" for every SSH host key. libgit2 sets
        # ``valid`` from the TLS chain, or for SSH from ~/.ssh/known_hosts (strict host key checking).
        return self._creds.insecure_ignore_host_key or valid


def redact(url: str) -> str:
    """``url`` with any password in its userinfo replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class GitRepos:
    """Git access for gittrigger over per-URL bare mirrors; see the module docstring."""

    def __init__(self, *, cache_dir: Path, secrets: SecretResolver, timeout_seconds: float = 120.0) -> None:
        self._mirrors = cache_dir / "mirrors"
        # libgit2 waits forever on a silent server by default, and a thread cannot be cancelled.
        # These are process-wide libgit2 settings; this module is the only libgit2 user.
        pygit2.option(Option.SET_SERVER_CONNECT_TIMEOUT, int(timeout_seconds * 1000))
        pygit2.option(Option.SET_SERVER_TIMEOUT, int(timeout_seconds * 1000))
        self._secrets = secrets
        self._locks: dict[str, asyncio.Lock] = {}

    def mirror_path(self, repo_url: str) -> Path:
        """Where the bare mirror of ``repo_url`` lives."""
        return self._mirrors / (hashlib.sha256(repo_url.encode()).hexdigest()[:32] + ".git")

    async def fetch_git(self, source: GitSource, *, dest: Path) -> None:
        """Check out ``source.revision`` (default: the remote HEAD) of ``source.repo`` into ``dest``."""
        creds = await asyncio.to_thread(self._credentials, source)  # a secret read may block
        default = source.branch if source.single_branch and source.branch else None
        revision = source.revision or default
        refspecs = list(_HEADS_AND_TAGS)
        if source.single_branch and source.branch:
            refspecs = [f"+refs/heads/{source.branch}:refs/heads/{source.branch}"]
        refspecs += [_refspec(r) for r in source.fetch]
        if revision and revision.startswith("refs/") and not revision.startswith(("refs/heads/", "refs/tags/")):
            refspecs.append(_refspec(revision))
        sha, received = await self._locked(
            source.repo, self._fetch_and_resolve, source.repo, revision=revision, refspecs=refspecs,
            depth=source.depth or 0, creds=creds,
        )
        await asyncio.to_thread(self._checkout, source.repo, sha=sha, dest=dest)
        logger.info("git checked out", repo=redact(source.repo), revision=revision, sha=sha,
                    received_objects=received)

    async def list_remote_refs(self, repo_url: str, *, creds: GitSource | None = None) -> dict[str, str]:
        """The refs the remote advertises (``HEAD`` included), annotated tags peeled to their commit.

        ``creds`` optionally names the secrets to authenticate with (only its ``*Secret`` fields are used).
        """
        resolved = await asyncio.to_thread(self._credentials, creds) if creds is not None else _Credentials()
        return await self._locked(repo_url, self._ls_remote, repo_url, resolved)

    async def resolve_ref(self, repo_url: str, ref: str, *, creds: GitSource | None = None) -> str:
        """The sha the remote's ``ref`` points at: ``HEAD``, ``refs/...``, a branch or a tag name."""
        refs = await self.list_remote_refs(repo_url, creds=creds)
        for candidate in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if candidate in refs:
                return refs[candidate]
        raise UnknownRevision(repo=repo_url, revision=ref, message="no such ref on the remote")

    async def read_file(self, repo_url: str, sha: str, path: str, *, creds: GitSource | None = None) -> bytes:
        """The content of ``path`` in commit ``sha`` (fetched into the mirror when missing)."""
        await self._ensure(repo_url, (sha,), creds)
        return await asyncio.to_thread(self._read_blob, repo_url, sha=sha, path=path)

    async def commits_between(
        self, repo_url: str, old_sha: str | None, new_sha: str, *, creds: GitSource | None = None
    ) -> list[CommitInfo]:
        """Commits reachable from ``new_sha`` but not ``old_sha``, oldest first (a push's ``commits``).

        ``old_sha`` None or all zeros (a created branch) yields only the head commit; ``new_sha``
        all zeros (a deleted branch) yields nothing.
        """
        if new_sha == _ZERO_SHA:
            return []
        old = None if old_sha in (None, _ZERO_SHA) else old_sha
        await self._ensure(repo_url, (new_sha,) + ((old,) if old else ()), creds)
        return await asyncio.to_thread(self._walk, repo_url, old=old, new=new_sha)

    # -- internals -------------------------------------------------------------------------

    async def _locked(self, repo_url: str, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run ``fn`` in a thread under ``repo_url``'s lock, held until the thread ends.

        A cancelled caller cannot stop a libgit2 call: releasing the lock at once would let the
        next fetch write the mirror alongside the orphaned one, so the lock goes with the thread.
        """
        lock = self._locks.setdefault(repo_url, asyncio.Lock())
        await lock.acquire()
        try:
            call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
            future = asyncio.get_running_loop().run_in_executor(None, call)
        except BaseException:
            lock.release()
            raise

        def done(f: asyncio.Future[_T]) -> None:
            lock.release()
            if not f.cancelled():
                f.exception()  # retrieved here too, for when the caller was cancelled and never will

        future.add_done_callback(done)
        return await asyncio.shield(future)

    def _credentials(self, source: GitSource) -> _Credentials:
        def get(ref: Mapping[str, Any] | None) -> bytes | None:
            if not ref:
                return None
            return self._secrets.resolve(str(ref.get("name", "")), str(ref.get("key", "")))

        user, password, key = get(source.username_secret), get(source.password_secret), get(
            source.ssh_private_key_secret)
        return _Credentials(
            username=user.decode().strip() if user is not None else None,
            password=password.decode().rstrip("\n") if password is not None else None,
            ssh_key=key, insecure_ignore_host_key=source.insecure_ignore_host_key,
        )

    async def _ensure(self, repo_url: str, shas: tuple[str, ...], creds: GitSource | None) -> None:
        """Fetch heads and tags (full history) unless every sha in ``shas`` is already mirrored."""
        resolved = await asyncio.to_thread(self._credentials, creds) if creds is not None else _Credentials()
        await self._locked(repo_url, self._ensure_sync, repo_url, shas, resolved)

    def _ensure_sync(self, repo_url: str, shas: tuple[str, ...], creds: _Credentials) -> None:
        repo = self._open(repo_url)
        if all(_commit(repo, s) is not None for s in shas) and not repo.is_shallow:
            return
        self._fetch(repo, repo_url, refspecs=list(_HEADS_AND_TAGS), depth=0, creds=creds, revision=shas[0])

    def _open(self, repo_url: str) -> pygit2.Repository:
        path = self.mirror_path(repo_url)
        if path.exists():
            try:
                return pygit2.Repository(str(path))
            except pygit2.GitError:
                shutil.rmtree(path)  # a half-created mirror from a crash: start over
        path.parent.mkdir(parents=True, exist_ok=True)
        return pygit2.init_repository(str(path), bare=True)

    def _fetch_and_resolve(
        self, repo_url: str, *, revision: str | None, refspecs: list[str], depth: int, creds: _Credentials
    ) -> tuple[str, int]:
        """Fetch what ``revision`` needs; returns its commit sha and how many objects were received."""
        repo = self._open(repo_url)
        if revision and _FULL_SHA.fullmatch(revision) and _commit(repo, revision) is not None:
            return revision, 0  # an immutable commit we already have: no network at all
        head, received = self._fetch(repo, repo_url, refspecs=refspecs, depth=depth, creds=creds, revision=revision)
        if revision in (None, "HEAD"):  # the mirror's own HEAD is not the remote's: use what it advertised
            if head is None:
                raise UnknownRevision(repo=repo_url, revision=None, message="the remote advertises no HEAD")
            revision = head
        sha = _resolve(repo, revision)
        if sha is None and repo.is_shallow:
            # A sha below the shallow boundary: deepen once rather than fail a pinned build.
            received += self._fetch(repo, repo_url, refspecs=refspecs, depth=_UNSHALLOW, creds=creds,
                                    revision=revision)[1]
            sha = _resolve(repo, revision)
        if sha is None:
            raise UnknownRevision(repo=repo_url, revision=revision,
                                  message="no branch, tag, ref or commit of that name")
        return sha, received

    def _fetch(
        self, repo: pygit2.Repository, repo_url: str, *, refspecs: list[str], depth: int, creds: _Credentials,
        revision: str | None,
    ) -> tuple[str | None, int]:
        """Fetch ``refspecs`` into the mirror; returns the remote HEAD's sha (if any) and objects received."""
        if depth == 0 and repo.is_shallow:
            depth = _UNSHALLOW  # a full fetch asked of a shallow mirror: complete its history
        with _key_file(creds.ssh_key) as key_path, _git_errors(repo_url, revision, creds):
            remote = repo.remotes.create_anonymous(repo_url)
            heads = remote.list_heads(callbacks=_Callbacks(creds, key_path=key_path))
            try:
                stats = remote.fetch(refspecs, callbacks=_Callbacks(creds, key_path=key_path), depth=depth)
            except pygit2.GitError as e:
                if depth == 0 or "shallow" not in str(e):
                    raise
                logger.debug("shallow fetch unsupported, fetching full history", repo=redact(repo_url),
                             depth=depth, reason=str(e))
                stats = remote.fetch(refspecs, callbacks=_Callbacks(creds, key_path=key_path))
        logger.debug("git fetched", repo=redact(repo_url), received_objects=stats.received_objects,
                     received_bytes=stats.received_bytes, depth=depth)
        return next((str(h.oid) for h in heads if h.name == "HEAD"), None), int(stats.received_objects)

    def _ls_remote(self, repo_url: str, creds: _Credentials) -> dict[str, str]:
        repo = self._open(repo_url)
        with _key_file(creds.ssh_key) as key_path, _git_errors(repo_url, None, creds):
            heads = repo.remotes.create_anonymous(repo_url).list_heads(
                callbacks=_Callbacks(creds, key_path=key_path))
        refs = {h.name: str(h.oid) for h in heads if h.name and not h.name.endswith("^{}")}
        refs.update({h.name[:-3]: str(h.oid) for h in heads if h.name and h.name.endswith("^{}")})
        return refs

    def _checkout(self, repo_url: str, *, sha: str, dest: Path) -> None:
        repo = pygit2.Repository(str(self.mirror_path(repo_url)))
        dest.mkdir(parents=True, exist_ok=True)
        _write_tree(repo, repo[sha].peel(pygit2.Commit).tree, dest)

    def _read_blob(self, repo_url: str, *, sha: str, path: str) -> bytes:
        repo = pygit2.Repository(str(self.mirror_path(repo_url)))
        commit = _commit(repo, sha)
        if commit is None:
            raise UnknownRevision(repo=repo_url, revision=sha, message="no such commit")
        try:
            blob = commit.tree[path.strip("/")]
        except KeyError:
            raise NotFound("file", f"{path} at {sha[:12]} of {redact(repo_url)}") from None
        if not isinstance(blob, pygit2.Blob):
            raise NotFound("file", f"{path} at {sha[:12]} of {redact(repo_url)} (a directory)")
        return bytes(blob.data)

    def _walk(self, repo_url: str, *, old: str | None, new: str) -> list[CommitInfo]:
        repo = pygit2.Repository(str(self.mirror_path(repo_url)))
        head = _commit(repo, new)
        if head is None:
            raise UnknownRevision(repo=repo_url, revision=new, message="no such commit")
        if old is None:
            return [_info(repo, head)]
        if _commit(repo, old) is None:
            raise UnknownRevision(repo=repo_url, revision=old, message="no such commit")
        walker = repo.walk(head.id, SortMode.TOPOLOGICAL | SortMode.REVERSE)
        walker.hide(old)
        return [_info(repo, c) for c in walker]


def _refspec(ref: str) -> str:
    """A user refspec (``refs/meta/*``) made a forced mirror refspec (``+refs/meta/*:refs/meta/*``)."""
    if ":" in ref:
        return ref
    bare = ref.lstrip("+")
    return f"+{bare}:{bare}"


def _commit(repo: pygit2.Repository, rev: str) -> pygit2.Commit | None:
    try:
        return repo.revparse_single(rev).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        return None


def _resolve(repo: pygit2.Repository, revision: str) -> str | None:
    """Branch, then tag, then anything ``git rev-parse`` takes (full or short sha, ``refs/...``)."""
    if revision.startswith("-"):
        return None
    for candidate in (f"refs/heads/{revision}", f"refs/tags/{revision}", revision):
        if (commit := _commit(repo, candidate)) is not None:
            return str(commit.id)
    return None


def _write_tree(repo: pygit2.Repository, tree: pygit2.Tree, dest: Path) -> None:
    """Write ``tree`` under ``dest``: files with their mode, symlinks, directories; submodules empty."""
    for entry in tree:
        name = entry.name
        if not name or name in (".", "..", ".git") or "/" in name or "\0" in name:
            raise GitError(repo=str(repo.path), revision=None, message=f"unsafe path {name!r} in tree")
        target = dest / name
        mode = entry.filemode
        if mode == FileMode.TREE:
            target.mkdir(exist_ok=True)
            _write_tree(repo, repo[entry.id].peel(pygit2.Tree), target)
        elif mode == FileMode.COMMIT:
            target.mkdir(exist_ok=True)  # a submodule: not fetched (see the module docstring)
            logger.debug("submodule skipped", path=str(target))
        elif mode == FileMode.LINK:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            os.symlink(repo[entry.id].peel(pygit2.Blob).data, target)
        else:
            target.write_bytes(repo[entry.id].peel(pygit2.Blob).data)
            target.chmod(0o755 if mode == FileMode.BLOB_EXECUTABLE else 0o644)


def _info(repo: pygit2.Repository, commit: pygit2.Commit) -> CommitInfo:
    added: list[str] = []
    modified: list[str] = []
    removed: list[str] = []
    # Against the first parent, as GitHub lists a merge's files; a root commit adds everything.
    parent = commit.parents[0].tree if commit.parents else None
    diff = parent.diff_to_tree(commit.tree) if parent is not None else commit.tree.diff_to_tree(swap=True)
    for delta in diff.deltas:
        if delta.status == DeltaStatus.ADDED:
            added.append(delta.new_file.path)
        elif delta.status == DeltaStatus.DELETED:
            removed.append(delta.old_file.path)
        else:
            modified.append(delta.new_file.path)
    tz = timezone(timedelta(minutes=commit.author.offset))
    return CommitInfo(
        sha=str(commit.id), message=commit.message, author=commit.author.name, author_email=commit.author.email,
        timestamp=datetime.fromtimestamp(commit.author.time, tz), added=tuple(added), modified=tuple(modified),
        removed=tuple(removed),
    )


@contextlib.contextmanager
def _key_file(key: bytes | None) -> Iterator[Path | None]:
    """The ssh private key in a 0600 temp file for libssh2, removed afterwards."""
    if key is None:
        yield None
        return
    fd, name = tempfile.mkstemp(prefix="gittrigger-key-")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, key if key.endswith(b"\n") else key + b"\n")
        os.close(fd)
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


@contextlib.contextmanager
def _git_errors(repo_url: str, revision: str | None, creds: _Credentials) -> Iterator[None]:
    """pygit2 failures -> GitAuthFailed / GitError naming the repo, with secrets scrubbed."""
    try:
        yield
    except _AuthRejected as e:
        raise GitAuthFailed(repo=repo_url, revision=revision, message=str(e)) from None
    except (pygit2.GitError, OSError) as e:
        message = str(e)
        for secret in (creds.password, urlsplit(repo_url).password):
            if secret:
                message = message.replace(secret, "***")
        lowered = message.lower()
        if any(w in lowered for w in ("auth", "401", "403", "credential", "permission denied")):
            raise GitAuthFailed(repo=repo_url, revision=revision, message=message) from None
        raise GitError(repo=repo_url, revision=revision, message=f"cannot fetch: {message}") from None
