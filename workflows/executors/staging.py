"""
The workspace of one local pod: where each container path lives on the host, placing the
init work (files, input artifacts) and collecting outputs (parameters, artifacts).

Called by :mod:`workflows.executors.local`. With isolation every container gets a private
``/tmp`` (a workspace directory, so what main leaves there can be collected after it exits),
its volume mounts, and, for main containers, workspace directories bound over the paths it
must write (parents of outputs, input artifacts, files, ``workingDir``). Without isolation
absolute paths are the host's own: two pods writing ``/tmp/x`` then share (and collide on) it.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import shutil
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from workflows.errors import WorkflowError
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.base import ArtifactFetcher, Container, InputArtifact, PodRequest
from workflows.executors.isolation import Bind, host_path, is_under

_HTTP_TIMEOUT: Final = 60.0
STAGING_DIR: Final = "/argo/"  # where Argo's executor stages a script's source inside the container


class StagingError(Exception):
    """The init work or output saving failed; the pod ends in phase Error with this message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """Host locations of one pod's paths; ``binds`` is empty for unisolated containers."""

    workspace: Path
    isolated: bool
    binds: Mapping[str, tuple[Bind, ...]]
    tmp_dirs: Mapping[str, Path]
    root_files: frozenset[str] = frozenset()  # outputs directly under / bound as placeholder files
    # Unisolated only: our own staging files (a script's source under /argo/) kept in the workspace,
    # so parallel pods never share one host path; argv naming them is rewritten to match.
    relocated: Mapping[str, Path] = field(default_factory=dict)

    def locate(self, container: str, path: str) -> Path:
        """Where ``path`` as seen by ``container`` is on the host."""
        if not self.isolated:
            return self.relocated.get(path) or Path(path)
        found = host_path(path, self.binds[container])
        return Path(found if found is not None else path)

    def present_binds(self, container: str) -> tuple[Bind, ...]:
        """Binds whose source exists (an optional input artifact may not have been placed)."""
        return tuple(b for b in self.binds.get(container, ()) if os.path.lexists(b.source))


def plan(pod: PodRequest, *, workspace: Path, volumes_root: Path, isolated: bool, extra_path: Sequence[str]) -> Layout:
    """Decide each container's binds and create the directories they need (few, shallow)."""
    tmp_dirs: dict[str, Path] = {}
    binds: dict[str, tuple[Bind, ...]] = {}
    main_names = {c.name for c in pod.main}
    main_dirs, main_placed = _main_write_paths(pod)
    root_outputs = _root_files(pod)
    containers = (*pod.init_containers, *pod.sidecars, *pod.main)
    for c in containers:
        if not isolated and len(containers) == 1:
            tmp_dirs[c.name] = workspace  # the one container's HOME/TMPDIR: no directory more to create
            continue
        tmp = tmp_dirs[c.name] = workspace / f"tmp-{c.name}"  # flat: every mkdir counts at 1,000s of pods
        tmp.mkdir()
        if not isolated:
            continue
        bs = [Bind(source=str(tmp), target="/tmp")]
        bs += _volume_binds(pod, c, workspace=workspace, volumes_root=volumes_root)
        dirs = set(main_dirs) if c.name in main_names else set()
        if c.working_dir:
            dirs.add(posixpath.normpath(c.working_dir))
        placed = set(main_placed) - dirs if c.name in main_names else set()
        covered = [b.target for b in bs]
        for target in sorted(dirs | placed, key=len):
            if target == "/" or any(is_under(target, t) for t in covered):
                continue  # never shadow the root (workingDir: /) or re-bind inside a bind
            # Placed paths (files, inputs) are created by placement, as a file or a directory.
            source = workspace / "root" / target.lstrip("/")
            (source if target in dirs else source.parent).mkdir(parents=True, exist_ok=True)
            if target in root_outputs:
                source.touch()  # an empty placeholder to bind; left empty, the output counts as missing
            bs.append(Bind(source=str(source), target=target, keep_host_content=target in dirs))
            covered.append(target)
        # Tools on extra_path stay visible even if a bind (say /tmp) hides where they live.
        bs += [Bind(source=d, target=d, writable=False) for d in extra_path if host_path(d, bs) is not None]
        binds[c.name] = tuple(bs)
    relocated = {} if isolated else {f.path: workspace / f.path.lstrip("/") for f in pod.files
                                     if f.path.startswith(STAGING_DIR)}
    return Layout(workspace=workspace, isolated=isolated, binds=binds, tmp_dirs=tmp_dirs,
                  root_files=frozenset(root_outputs) if isolated else frozenset(), relocated=relocated)


def _writable_ancestor(path: str) -> str:
    """The directory to make writable for an output at ``path``: its nearest ancestor that exists on the
    host (so the step itself may create the directories below it, as in a fresh container), or the
    top-level directory when nothing below ``/`` exists."""
    parent = posixpath.dirname(path)
    anc = parent
    while anc != "/" and not os.path.isdir(anc):
        anc = posixpath.dirname(anc)
    if anc == "/" and parent != "/":
        return "/" + path.split("/")[1]
    return anc


def _root_files(pod: PodRequest) -> set[str]:
    """Outputs that are files directly under ``/`` (``/output``, ``/result.txt``): bound as files,
    since the root itself is never made a writable directory. Artifacts count when their name
    looks like a file (has an extension); ``/go`` stays a directory."""
    out = set()
    for path in [p.path for p in pod.output_parameters]:
        norm = posixpath.normpath(path)
        if posixpath.dirname(norm) == "/":
            out.add(norm)
    for art in pod.output_artifacts:
        norm = posixpath.normpath(art.path)
        if posixpath.dirname(norm) == "/" and "." in norm[1:]:
            out.add(norm)
    return out


def _main_write_paths(pod: PodRequest) -> tuple[list[str], list[str]]:
    """Sandbox paths main must write: directories to create (output parents), paths placed (inputs, files)."""
    dirs: list[str] = []
    placed: list[str] = []
    root_files = _root_files(pod)
    for out_path in [p.path for p in pod.output_parameters] + [a.path for a in pod.output_artifacts]:
        path = posixpath.normpath(out_path)
        parent = _writable_ancestor(path)
        if parent != "/":
            dirs.append(parent)
        elif path in root_files:
            placed.append(path)  # a file directly under / (e.g. /output): bound as a file, never the root
        else:
            dirs.append(path)  # never make the root writable
    placed += [posixpath.normpath(a.path) for a in pod.input_artifacts]
    placed += [posixpath.normpath(f.path) for f in pod.files]
    return dirs, placed


def _volume_binds(pod: PodRequest, c: Container, *, workspace: Path, volumes_root: Path) -> list[Bind]:
    volumes = {v.name: v for v in pod.volumes}
    out = []
    for m in c.volume_mounts:
        v = volumes.get(m.name)
        host_dir: Path
        if v is not None and v.scope == "workflow":
            host_dir = volumes_root / m.name
        elif v is not None and v.scope == "other" and isinstance(v.raw.get("hostPath"), Mapping):
            host_dir = Path(str(v.raw["hostPath"].get("path", "/")))
        else:  # emptyDir, and secret/configMap volumes we cannot fill locally: an empty pod dir
            host_dir = workspace / "volumes" / m.name
        source = host_dir / m.sub_path if m.sub_path else host_dir
        source.mkdir(parents=True, exist_ok=True)
        out.append(Bind(source=str(source), target=posixpath.normpath(m.mount_path), writable=not m.read_only))
    return out


def _main_locations(layout: Layout, pod: PodRequest, path: str) -> list[Path]:
    """Host locations of ``path`` for every main container (deduplicated, in order)."""
    return list(dict.fromkeys(layout.locate(c.name, path) for c in pod.main))


async def place_inputs(
    pod: PodRequest, layout: Layout, *, store: LocalArtifactStore, fetcher: ArtifactFetcher | None
) -> None:
    """Write ``files`` and input artifacts where main containers will see them."""
    for f in pod.files:
        for loc in _main_locations(layout, pod, f.path):
            loc.parent.mkdir(parents=True, exist_ok=True)
            loc.write_bytes(f.content)
            loc.chmod(f.mode)
    for art in pod.input_artifacts:
        locations = _main_locations(layout, pod, art.path)
        try:
            placed = await _place_artifact(art, locations[0], store=store, fetcher=fetcher)
        except (WorkflowError, OSError, ValueError) as e:
            raise StagingError(f"failed to load artifacts: artifact {art.name}: {e}") from e
        if not placed:
            continue
        for loc in locations[1:]:
            await asyncio.to_thread(_copy, locations[0], loc)


async def _place_artifact(
    art: InputArtifact, dest: Path, *, store: LocalArtifactStore, fetcher: ArtifactFetcher | None
) -> bool:
    """Place one artifact at ``dest``; False when an optional one is missing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if art.raw_data is not None:
        dest.write_text(art.raw_data)
    elif art.key is not None:
        if not store.exists(art.key):
            if art.optional:
                return False
            raise StagingError(f"failed to load artifacts: artifact {art.name}: key {art.key!r} not found")
        # Archived or not is read off the stored object (gzip magic): a key-only input may name either.
        await asyncio.to_thread(store.get_to, art.key, dest, sub_path=art.sub_path, archive_none=None)
    elif art.git is not None:
        if fetcher is None:
            raise StagingError(f"failed to load artifacts: artifact {art.name}: no git fetcher configured")
        await fetcher.fetch_git(art.git, dest=dest)
    elif art.http_url is not None:
        await asyncio.to_thread(_download, art.http_url, dest)
    elif art.optional:
        return False
    else:
        raise StagingError(f"failed to load artifacts: artifact {art.name}: no source set")
    if art.mode is not None:
        _chmod_tree(dest, art.mode)
    return True


def _download(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=_HTTP_TIMEOUT) as resp, open(dest, "wb") as out:
        shutil.copyfileobj(resp, out)


def _chmod_tree(path: Path, mode: int) -> None:
    paths: Iterable[Path] = [path, *path.rglob("*")] if path.is_dir() else [path]
    for p in paths:
        if p.is_file() and not p.is_symlink():
            p.chmod(mode)


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dest)


def read_parameters(pod: PodRequest, layout: Layout, *, container: str) -> dict[str, str]:
    """Output parameters whose file exists (one trailing newline trimmed); directories are skipped."""
    out: dict[str, str] = {}
    for p in pod.output_parameters:
        try:
            raw = layout.locate(container, p.path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            continue
        if not raw and posixpath.normpath(p.path) in layout.root_files:
            continue  # the untouched placeholder of a root-level output (see plan)
        text = raw.decode("utf-8", "replace")
        out[p.name] = text[:-1] if text.endswith("\n") else text
    return out


async def save_artifacts(
    pod: PodRequest, layout: Layout, *, container: str, store: LocalArtifactStore
) -> tuple[dict[str, str], list[str]]:
    """Save output artifacts; returns (saved name -> key, names of required ones missing)."""
    saved: dict[str, str] = {}
    missing: list[str] = []
    for art in pod.output_artifacts:
        src = layout.locate(container, art.path)
        untouched = posixpath.normpath(art.path) in layout.root_files and src.is_file() and not src.stat().st_size
        if untouched or not os.path.lexists(src):
            if not art.optional:
                missing.append(art.name)
            continue
        try:
            await asyncio.to_thread(
                store.put_path,
                art.key,
                src,
                archive_none=art.archive_none,
                compression_level=art.compression_level,
            )
        except (OSError, WorkflowError) as e:
            raise StagingError(f"failed to save outputs: artifact {art.name}: {e}") from e
        saved[art.name] = art.key
    return saved, missing
