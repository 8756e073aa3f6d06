"""
Bubblewrap command lines for one container of a local pod, built purely.

Called by :mod:`workflows.executors.local`, which decides *what* a container sees (its
private ``/tmp``, volume mounts, writable output/input directories) as a list of
:class:`Bind`; this module decides *how* bwrap must be told so. The host filesystem is
read-only; binds are applied parents first. bwrap cannot create a mount point inside a
read-only host directory, so for a target whose nearest existing host ancestor ``A`` is not the
target itself we mount a tmpfs on ``A`` and re-bind ``A``'s host children read-only into it;
when ``A`` is ``/`` the root is built from bwrap's own tmpfs with every top-level entry
re-bound. The host is only looked at through :class:`HostView`, so tests use a dict.

Process control: ``--unshare-pid --die-with-parent`` make killing bwrap kill everything
inside; there is no ``--new-session``, because the executor signals the whole process group
(bwrap and the sandboxed tree share it) and a new session inside would escape that.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import posixpath
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

Kind = Literal["dir", "file", "symlink", "missing"]

# Never re-bound from the host when the root is rebuilt: bwrap gives fresh /proc and /dev,
# /tmp is always private, /sys is bound read-only explicitly.
_ROOT_SKIPPED: Final = frozenset({"proc", "dev", "tmp", "sys"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Bind:
    """Host path ``source`` shown at ``target`` inside the sandbox.

    ``keep_host_content``: when ``target`` is an existing host directory, its entries stay
    visible (re-bound read-only over ``source``), so making ``/root`` writable for an output
    does not hide what lives there; new files land in ``source``.
    """

    source: str
    target: str
    writable: bool = True
    keep_host_content: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Sandbox:
    """What one container sees: binds over a read-only host, its cwd, network and hostname."""

    binds: tuple[Bind, ...]
    chdir: str = "/"
    network: Literal["host", "none"] = "host"
    hostname: str | None = None


class HostView(Protocol):
    """The few facts about the host filesystem the command line depends on."""

    def kind(self, path: str) -> Kind:
        """``path``'s type following symlinks, except ``symlink`` for a dangling one."""
        ...

    def children(self, path: str) -> Sequence[tuple[str, Kind]]:
        """Entries of directory ``path`` with their own type (``symlink`` not followed)."""
        ...

    def readlink(self, path: str) -> str:
        """The target of symlink ``path``."""
        ...


class OsHost:
    """:class:`HostView` of the real filesystem."""

    def kind(self, path: str) -> Kind:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return "symlink" if os.path.islink(path) else "missing"
        except OSError:
            return "missing"
        return "dir" if stat.S_ISDIR(st.st_mode) else "file"

    def children(self, path: str) -> Sequence[tuple[str, Kind]]:
        out: list[tuple[str, Kind]] = []
        with os.scandir(path) as it:
            for entry in it:
                kind: Kind = (
                    "symlink" if entry.is_symlink() else "dir" if entry.is_dir(follow_symlinks=False) else "file"
                )
                out.append((entry.name, kind))
        return sorted(out)

    def readlink(self, path: str) -> str:
        return os.readlink(path)


@functools.cache
def bwrap_path() -> str:
    """Where ``bwrap`` is (looked up once per process)."""
    return shutil.which("bwrap") or "bwrap"


def is_under(path: str, ancestor: str) -> bool:
    """Whether ``path`` is ``ancestor`` or lies below it (both normalized absolute paths)."""
    return path == ancestor or ancestor == "/" or path.startswith(ancestor + "/")


def host_path(path: str, binds: Sequence[Bind]) -> str | None:
    """Where sandbox path ``path`` lives on the host: under the innermost bind covering it.

    ``None`` when no bind covers it (it is then the read-only host path itself).
    """
    path = posixpath.normpath(path)
    best: Bind | None = None
    for b in binds:
        if is_under(path, b.target) and (best is None or len(b.target) > len(best.target)):
            best = b
    if best is None:
        return None
    rest = path[len(best.target) :].lstrip("/")
    return posixpath.join(best.source, rest) if rest else best.source


def bwrap_argv(sandbox: Sandbox, command: Sequence[str], *, host: HostView, bwrap: str = "bwrap") -> list[str]:
    """The full argv running ``command`` inside ``sandbox``."""
    binds = [dataclasses.replace(b, target=_through_links(posixpath.normpath(b.target), host))
             for b in sandbox.binds]
    targets = {b.target for b in binds}
    tmpfs_dirs: set[str] = set()
    rebuild_root = False
    for b in binds:
        if any(t != b.target and is_under(b.target, t) for t in targets):
            continue  # its mount point is created inside another bind, which is fine
        anchor = _nearest_existing(b.target, host)
        if anchor == b.target:
            continue
        if anchor == "/":
            rebuild_root = True
        else:
            tmpfs_dirs.add(anchor)

    # (path, rank, args): applied by depth so parents come first; at one path a read-only
    # re-bind (0) precedes a tmpfs over it (1), which precedes the requested bind (2).
    ops: list[tuple[str, int, list[str]]] = []
    if rebuild_root:
        ops.extend(_rebinds("/", host, skip=targets, skip_names=_ROOT_SKIPPED))
        ops.append(("/sys", 0, ["--ro-bind", "/sys", "/sys"]))
    for anchor in tmpfs_dirs:
        ops.append((anchor, 1, ["--tmpfs", anchor]))
        ops.extend(_rebinds(anchor, host, skip=targets, skip_names=frozenset()))
    for b in binds:
        ops.append((b.target, 2, ["--bind" if b.writable else "--ro-bind", b.source, b.target]))
        if b.keep_host_content and host.kind(b.target) == "dir":
            ops.extend(_rebinds(b.target, host, skip=targets, skip_names=frozenset()))
    ops.sort(key=lambda op: (_depth(op[0]), op[0], op[1]))

    argv = [bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc"]
    if sandbox.network == "none":
        argv.append("--unshare-net")
    if sandbox.hostname:
        argv += ["--unshare-uts", "--hostname", sandbox.hostname]
    if not rebuild_root:
        argv += ["--ro-bind", "/", "/"]
    argv += ["--dev", "/dev", "--proc", "/proc"]
    for _, _, args in ops:
        argv += args
    argv += ["--chdir", sandbox.chdir, "--", *command]
    return argv


def _through_links(path: str, host: HostView) -> str:
    """``path`` with its existing symlinked ancestors resolved (``/var/run/x`` -> ``/run/x`` where
    /var/run links to /run): bwrap cannot mount over a symlink inside the new root."""
    anchor = _nearest_existing(path, host)
    if anchor == path or anchor == "/":
        return path  # a bind onto an existing path binds what it resolves to anyway
    real = _resolve(anchor, host, depth=0)
    return path if real == anchor else posixpath.join(real, posixpath.relpath(path, anchor))


def _resolve(path: str, host: HostView, *, depth: int) -> str:
    current = "/"
    for part in path.strip("/").split("/"):
        if not part:
            continue
        following = posixpath.join(current, part)
        if depth < 40 and dict(host.children(current)).get(part) == "symlink":
            target = host.readlink(following)
            following = _resolve(posixpath.normpath(posixpath.join(current, target)), host, depth=depth + 1)
        current = following
    return current


def _nearest_existing(path: str, host: HostView) -> str:
    while path != "/" and host.kind(path) == "missing":
        path = posixpath.dirname(path)
    return path


def _rebinds(
    parent: str, host: HostView, *, skip: set[str], skip_names: frozenset[str]
) -> list[tuple[str, int, list[str]]]:
    ops: list[tuple[str, int, list[str]]] = []
    for name, kind in host.children(parent):
        path = posixpath.join(parent, name)
        if name in skip_names or path in skip:
            continue
        if kind == "symlink":
            ops.append((path, 0, ["--symlink", host.readlink(path), path]))
        else:
            # -try: an entry may vanish between listing and bwrap starting.
            ops.append((path, 0, ["--ro-bind-try", path, path]))
    return ops


def _depth(path: str) -> int:
    return 0 if path == "/" else path.count("/")
