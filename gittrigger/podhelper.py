"""
The helper commands inside a gittrigger pod on Kubernetes: ``gittrigger pod-init`` and ``pod-wait``.

Registered by :mod:`gittrigger.cli`; run by the ``init`` and ``wait`` containers that
:mod:`workflows.executors.podspec` adds to every pod (contract: ``docs/kubernetes-pods.md``).
Both read their instructions from ``GITTRIGGER_POD`` (:class:`~workflows.executors.podplan.PodPlan`)
and work in the shared volume ``/var/run/gittrigger`` (``GITTRIGGER_RUN_DIR`` overrides it, as
for the emissary, so tests need no root paths):

- ``pod-init`` copies the emissary (``/usr/local/bin/gittrigger-emissary``, overridable by
  ``GITTRIGGER_EMISSARY``) to ``emissary``, writes ``files[i]`` to ``inputs/<i>`` and places input
  artifact ``i`` at ``artifacts/<i>``: raw data, a key of the server's artifact store (over HTTP
  with ``GITTRIGGER_ARTIFACT_TOKEN``, unpacked by Argo's rule through the same
  :class:`~workflows.executors.artifacts.LocalArtifactStore` code the local executor uses), a git
  checkout (:mod:`gittrigger.repos`, pygit2), or an HTTP download.
- ``pod-wait`` waits for every main container's ``<name>.exitcode`` (written last by the
  emissary), reads output parameters, archives and uploads output artifacts, takes the result
  container's stdout tail as ``result``, and prints ``GITTRIGGER_RESULT {json}`` as its last line.

Plain blocking code (urllib, one thread): each runs alone in its container. Either command's own
failure is a one-line reason on stderr and a non-zero exit; a missing required output artifact is
not the helper's failure but the node's, so it is reported in the result line's ``error``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import tarfile
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import Any, Final

from gittrigger.repos import FileSecrets, GitRepos
from workflows.errors import InvalidSpec, NotFound, WorkflowError
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.podplan import ARTIFACTS_PATH, TRANSFER_HEADER, PlanInput, PodPlan
from workflows.executors.pods import RESULT_CAP
from workflows.model.spec import GitSource

RUN_DIR: Final = "/var/run/gittrigger"
EMISSARY: Final = "/usr/local/bin/gittrigger-emissary"
RESULT_PREFIX: Final = "GITTRIGGER_RESULT "
POLL_SECONDS: Final = 0.2
HTTP_TIMEOUT: Final = 300.0
_CHUNK: Final = 1 << 16


class HelperError(Exception):
    """The helper itself failed; the message is the one line printed on stderr."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What both commands read from their environment."""

    plan: PodPlan
    run_dir: Path
    token: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Context:
        text = env.get("GITTRIGGER_POD")
        if not text:
            raise HelperError("GITTRIGGER_POD is not set: this command runs inside a gittrigger pod")
        try:
            plan = PodPlan.from_env(text)
        except InvalidSpec as e:
            raise HelperError(str(e)) from None
        return cls(plan=plan, run_dir=Path(env.get("GITTRIGGER_RUN_DIR") or RUN_DIR),
                   token=env.get("GITTRIGGER_ARTIFACT_TOKEN", ""))


def main(command: str, env: Mapping[str, str] | None = None) -> int:
    """Run ``pod-init`` or ``pod-wait``; the process exit code (reasons go to stderr)."""
    env = os.environ if env is None else env
    try:
        if command == "pod-init":
            pod_init(Context.from_env(env), emissary=Path(env.get("GITTRIGGER_EMISSARY") or EMISSARY))
            return 0
        if command == "pod-wait":
            return pod_wait(Context.from_env(env))
        raise HelperError(f"unknown helper command {command!r}")
    except HelperError as e:
        print(f"{command}: {e}", file=sys.stderr, flush=True)
        return 1


# -- pod-init ------------------------------------------------------------------------------


def pod_init(ctx: Context, *, emissary: Path) -> None:
    """Stage the emissary, the files and the input artifacts into the run dir."""
    run_dir = ctx.run_dir
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        # The main containers may run as other users than this helper: let them write outputs.
        _shared_dir(run_dir / "outputs")
    except OSError as e:
        raise HelperError(f"cannot prepare {run_dir}: {e.strerror or e}") from None
    try:
        target = run_dir / "emissary"
        partial = run_dir / ".emissary.partial"
        shutil.copyfile(emissary, partial)
        partial.chmod(0o755)
        os.replace(partial, target)
    except OSError as e:
        raise HelperError(f"cannot stage the emissary from {emissary}: {e.strerror or e}") from None
    for i, f in enumerate(ctx.plan.files):
        dest = run_dir / "inputs" / str(i)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(f.content)
            dest.chmod(f.mode)
        except OSError as e:
            raise HelperError(f"cannot write {f.path}: {e.strerror or e}") from None
    staging = Path(tempfile.mkdtemp(prefix=".init-", dir=run_dir))
    try:
        for i, art in enumerate(ctx.plan.inputs):
            try:
                _place(art, run_dir / "artifacts" / str(i), ctx=ctx, staging=staging / str(i))
            except (HelperError, WorkflowError, OSError, ValueError, tarfile.TarError) as e:
                raise HelperError(f"failed to load artifacts: artifact {art.name}: {_reason(e)}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _place(art: PlanInput, dest: Path, *, ctx: Context, staging: Path) -> None:
    """Place one input artifact at ``dest`` (nothing for a missing optional one)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging.mkdir(parents=True)
    if art.raw_data is not None:
        dest.write_text(art.raw_data)
    elif art.key is not None:
        store = LocalArtifactStore(staging / "store")
        if not _download_key(art.key, store=store, ctx=ctx):
            if art.optional:
                return
            raise NotFound("artifact key", art.key)
        # Archived or not is read off the object (gzip magic), as the local executor does.
        store.get_to(art.key, dest, sub_path=art.sub_path, archive_none=None)
    elif art.git is not None:
        g = art.git
        source = GitSource(repo=g.repo, revision=g.revision, depth=g.depth, branch=g.branch,
                           single_branch=g.single_branch, fetch=g.fetch, disable_submodules=g.disable_submodules,
                           insecure_ignore_host_key=g.insecure_ignore_host_key)
        # No secrets reach the pod: private repositories need credentials in the URL's host config.
        repos = GitRepos(cache_dir=staging / "git", secrets=FileSecrets(staging / "no-secrets"))
        asyncio.run(repos.fetch_git(source, dest=dest))
    elif art.http_url is not None:
        with urllib.request.urlopen(art.http_url, timeout=HTTP_TIMEOUT) as resp, open(dest, "wb") as out:
            shutil.copyfileobj(resp, out, _CHUNK)
    elif art.optional:
        return
    else:
        raise InvalidSpec("artifact", "no source set")
    if art.mode is not None:
        _chmod_tree(dest, art.mode)


def _download_key(key: str, *, store: LocalArtifactStore, ctx: Context) -> bool:
    """Fetch ``key`` from the server into ``store`` (same layout); False when it does not exist."""
    request = urllib.request.Request(_url(ctx, key), headers=_auth(ctx))
    local = store.root / key
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as resp:
            directory = resp.headers.get(TRANSFER_HEADER, "").lower() == "tar"
            body = local.with_name(local.name + ".download")
            with open(body, "wb") as out:
                shutil.copyfileobj(resp, out, _CHUNK)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise HelperError(f"GET {ARTIFACTS_PATH}{key}: {_http_reason(e)}") from None
    except (urllib.error.URLError, TimeoutError) as e:
        raise HelperError(f"cannot reach the server at {ctx.plan.server_url}: {_reason(e)}") from None
    if directory:
        with tarfile.open(body, mode="r:") as tar:
            tar.extractall(local, filter="data")
        local.mkdir(exist_ok=True)
        body.unlink()
    else:
        os.replace(body, local)
    return True


# -- pod-wait ------------------------------------------------------------------------------


class _Stop:
    """Set by SIGTERM/SIGINT: the pod is going away, stop waiting."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal = 0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum
        self.event.set()


def pod_wait(ctx: Context) -> int:
    """Wait for the main containers, save outputs, print the result line; 0 unless this helper failed."""
    stop = _Stop()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        codes = _wait_for_exit_codes(ctx.run_dir, ctx.plan.main_containers, stop=stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if codes is None:
        print(f"pod-wait: stopped by signal {stop.signal} before the main containers finished",
              file=sys.stderr, flush=True)
        return 128 + stop.signal
    plan = ctx.plan
    exit_code = codes.get(plan.result_container, codes[plan.main_containers[0]])
    report: dict[str, Any] = {
        "result": _result(ctx.run_dir / f"{plan.result_container}.stdout"),
        "exitCode": exit_code,
        "outputParameters": _parameters(ctx),
    }
    saved, missing = _save_artifacts(ctx)
    report["outputArtifacts"] = saved
    if missing and all(code == 0 for code in codes.values()):
        report["error"] = f"failed to save outputs: no such file or directory for artifact(s) {', '.join(missing)}"
    print(RESULT_PREFIX + json.dumps(report, sort_keys=True, separators=(",", ":")), flush=True)
    return 0


def _wait_for_exit_codes(run_dir: Path, containers: Iterable[str], *, stop: _Stop) -> dict[str, int] | None:
    """Each container's exit code once all are written; None if a signal came first."""
    pending = list(containers)
    codes: dict[str, int] = {}
    while pending:
        for name in list(pending):
            try:
                text = (run_dir / f"{name}.exitcode").read_text()
            except FileNotFoundError:
                continue
            except OSError as e:
                raise HelperError(f"cannot read {name}.exitcode: {e.strerror or e}") from None
            try:
                codes[name] = int(text.strip())
            except ValueError:
                raise HelperError(f"{name}.exitcode holds {text.strip()!r}, not an exit code") from None
            pending.remove(name)
        if pending and stop.event.wait(POLL_SECONDS):
            return None
    return codes


def _result(path: Path) -> str | None:
    """The stdout tail as the local executor takes it: one trailing newline trimmed, 256 KiB kept."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - RESULT_CAP - 1))
            tail = f.read()
    except FileNotFoundError:
        return None
    text = tail.decode("utf-8", "replace")
    return (text[:-1] if text.endswith("\n") else text)[-RESULT_CAP:]


def _parameters(ctx: Context) -> dict[str, str]:
    """Output parameters whose file was saved (a directory is skipped), one trailing newline trimmed."""
    out: dict[str, str] = {}
    for i, p in enumerate(ctx.plan.parameters):
        try:
            raw = (ctx.run_dir / "outputs" / str(i)).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
        except OSError as e:
            raise HelperError(f"cannot read output parameter {p.name}: {e.strerror or e}") from None
        text = raw.decode("utf-8", "replace")
        out[p.name] = text[:-1] if text.endswith("\n") else text
    return out


def _save_artifacts(ctx: Context) -> tuple[dict[str, str], list[str]]:
    """Archive and upload each saved output artifact; (name -> key, names of required ones missing)."""
    saved: dict[str, str] = {}
    missing: list[str] = []
    if not ctx.plan.artifacts:
        return saved, missing
    staging = Path(tempfile.mkdtemp(prefix=".wait-", dir=ctx.run_dir))
    try:
        for j, art in enumerate(ctx.plan.artifacts):
            src = ctx.run_dir / "outputs" / str(ctx.plan.output_index(j))
            if not os.path.lexists(src):
                if not art.optional:
                    missing.append(art.name)
                continue
            # Argo's archive holds one top entry named like the saved path, so give it that name.
            named = staging / str(j) / (PurePosixPath(art.path).name or "artifact")
            named.parent.mkdir(parents=True)
            os.replace(src, named)
            try:
                _upload(art.key, named, archive_none=art.archive_none, level=art.compression_level,
                        ctx=ctx, staging=staging / f"{j}.store")
            except (HelperError, OSError, WorkflowError, tarfile.TarError) as e:
                raise HelperError(f"failed to save outputs: artifact {art.name}: {_reason(e)}") from None
            saved[art.name] = art.key
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return saved, missing


def _upload(key: str, src: Path, *, archive_none: bool, level: int | None, ctx: Context, staging: Path) -> None:
    """PUT the object the local executor would store for ``src`` (tar+gzip, a file, or a directory)."""
    headers = {**_auth(ctx), "Content-Type": "application/octet-stream"}
    if not archive_none:
        store = LocalArtifactStore(staging)  # the one tar+gzip implementation, Argo's layout
        store.put_path(key, src, compression_level=level)
        body = store.root / key
    elif src.is_dir() and not src.is_symlink():
        body = staging.with_suffix(".tar")
        with tarfile.open(body, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry in sorted(src.iterdir()):
                tar.add(entry, arcname=entry.name)
        headers[TRANSFER_HEADER] = "tar"
    else:
        body = src.resolve()  # a symlink is saved as what it points to, as copy2 does locally
    headers["Content-Length"] = str(body.stat().st_size)
    with open(body, "rb") as data:
        request = urllib.request.Request(_url(ctx, key), data=data, method="PUT", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as resp:
                resp.read()
        except urllib.error.HTTPError as e:
            raise HelperError(f"PUT {ARTIFACTS_PATH}{key}: {_http_reason(e)}") from None
        except (urllib.error.URLError, TimeoutError) as e:
            raise HelperError(f"cannot reach the server at {ctx.plan.server_url}: {_reason(e)}") from None


# -- shared --------------------------------------------------------------------------------


def _url(ctx: Context, key: str) -> str:
    return ctx.plan.server_url.rstrip("/") + ARTIFACTS_PATH + urllib.parse.quote(key, safe="/")


def _auth(ctx: Context) -> dict[str, str]:
    return {"Authorization": f"Bearer {ctx.token}"} if ctx.token else {}


def _http_reason(e: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(e.read()).get("message")
    except (ValueError, AttributeError, OSError):
        message = None
    return f"{e.code} {message or e.reason}"


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        return str(e.reason)
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return str(e)


def _shared_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)


def _chmod_tree(path: Path, mode: int) -> None:
    paths: Iterable[Path] = [path, *path.rglob("*")] if path.is_dir() else [path]
    for p in paths:
        if p.is_file() and not p.is_symlink():
            p.chmod(mode)
