"""Tests of the pure bubblewrap command building, against a fake host filesystem."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

import pytest

from workflows.executors.isolation import Bind, Kind, Sandbox, bwrap_argv, host_path

# A small host: / with bin -> usr/bin, etc/, mnt/ (empty), usr/bin/, tmp/, proc, dev, sys.
HOST: dict[str, Kind] = {
    "/bin": "symlink",
    "/etc": "dir",
    "/etc/passwd": "file",
    "/mnt": "dir",
    "/usr": "dir",
    "/usr/bin": "dir",
    "/tmp": "dir",
    "/proc": "dir",
    "/dev": "dir",
    "/sys": "dir",
    "/work": "dir",
    "/work/data": "dir",
}
LINKS = {"/bin": "usr/bin"}


class FakeHost:
    def kind(self, path: str) -> Kind:
        if path == "/":
            return "dir"
        return "dir" if path in LINKS else HOST.get(path, "missing")

    def children(self, path: str) -> Sequence[tuple[str, Kind]]:
        return sorted((posixpath.basename(p), k) for p, k in HOST.items() if posixpath.dirname(p) == path)

    def readlink(self, path: str) -> str:
        return LINKS[path]


def mounts(argv: list[str]) -> list[tuple[str, ...]]:
    """The mount operations of an argv, as tuples, in order."""
    out, i = [], 0
    arity = {"--bind": 2, "--ro-bind": 2, "--ro-bind-try": 2, "--symlink": 2, "--tmpfs": 1, "--dev": 1, "--proc": 1}
    while i < len(argv) and argv[i] != "--":
        if argv[i] in arity:
            n = arity[argv[i]]
            out.append((argv[i], *argv[i + 1 : i + 1 + n]))
            i += n + 1
        else:
            i += 1
    return out


TMP = Bind(source="/ws/tmp/main", target="/tmp")


def run(*binds: Bind, **kw: object) -> list[str]:
    return bwrap_argv(Sandbox(binds=(TMP, *binds), **kw), ["echo", "hi"], host=FakeHost())  # type: ignore[arg-type]


def test_plain_binds_over_a_read_only_host() -> None:
    """Existing targets need nothing special: ro root, dev, proc, then binds parents first."""
    argv = run(Bind(source="/ws/vol", target="/mnt"), Bind(source="/ws/etc", target="/etc", writable=False))
    assert mounts(argv) == [
        ("--ro-bind", "/", "/"),
        ("--dev", "/dev"),
        ("--proc", "/proc"),
        ("--ro-bind", "/ws/etc", "/etc"),
        ("--bind", "/ws/vol", "/mnt"),
        ("--bind", "/ws/tmp/main", "/tmp"),
    ]
    assert argv[-3:] == ["--", "echo", "hi"]
    assert {"--die-with-parent", "--unshare-pid"} <= set(argv) and "--new-session" not in argv


def test_missing_target_under_an_existing_dir_gets_a_tmpfs_with_rebinds() -> None:
    """/work/vol/x cannot be created under read-only /work: tmpfs /work, re-bind its children."""
    m = mounts(run(Bind(source="/ws/v", target="/work/vol/x")))
    assert m.index(("--tmpfs", "/work")) < m.index(("--ro-bind-try", "/work/data", "/work/data"))
    assert m.index(("--ro-bind-try", "/work/data", "/work/data")) < m.index(("--bind", "/ws/v", "/work/vol/x"))
    assert ("--ro-bind", "/", "/") in m


def test_missing_top_level_target_rebuilds_the_root() -> None:
    """/src under / : the root is bwrap's tmpfs with each host entry re-bound, never /proc /dev /tmp."""
    m = mounts(run(Bind(source="/ws/src", target="/src")))
    assert ("--ro-bind", "/", "/") not in m
    assert ("--symlink", "usr/bin", "/bin") in m
    assert {("--ro-bind-try", f"/{d}", f"/{d}") for d in ("etc", "mnt", "usr", "work")} <= set(m)
    assert ("--ro-bind", "/sys", "/sys") in m
    assert not any(op[0] == "--ro-bind-try" and op[1] in ("/proc", "/dev", "/tmp") for op in m)
    assert m.index(("--bind", "/ws/tmp/main", "/tmp")) < len(m) and ("--bind", "/ws/src", "/src") in m


def test_target_inside_another_bind_needs_no_tmpfs() -> None:
    """Mount points under a writable bind are created in its source, so no tmpfs is needed."""
    m = mounts(run(Bind(source="/ws/in", target="/tmp/in/art")))
    assert not any(op[0] == "--tmpfs" for op in m)
    assert m.index(("--bind", "/ws/tmp/main", "/tmp")) < m.index(("--bind", "/ws/in", "/tmp/in/art"))


def test_existing_child_target_is_not_rebound_twice() -> None:
    """When /mnt is tmpfs'd for /mnt/new, an explicitly bound /mnt child is bound once, writable."""
    HOST["/mnt/old"] = "dir"
    try:
        m = mounts(run(Bind(source="/ws/new", target="/mnt/new"), Bind(source="/ws/old", target="/mnt/old")))
    finally:
        del HOST["/mnt/old"]
    assert ("--tmpfs", "/mnt") in m and ("--bind", "/ws/old", "/mnt/old") in m
    assert ("--ro-bind-try", "/mnt/old", "/mnt/old") not in m


def test_keep_host_content_rebinds_existing_entries_over_the_writable_dir() -> None:
    """A writable dir over existing /work keeps /work/data visible (read-only) on top of it."""
    m = mounts(run(Bind(source="/ws/root/work", target="/work", keep_host_content=True)))
    assert m.index(("--bind", "/ws/root/work", "/work")) < m.index(("--ro-bind-try", "/work/data", "/work/data"))
    m = mounts(run(Bind(source="/ws/root/work", target="/work")))
    assert ("--ro-bind-try", "/work/data", "/work/data") not in m


@pytest.mark.parametrize(
    ("network", "hostname", "present", "absent"),
    [
        ("host", None, [], ["--unshare-net", "--hostname"]),
        ("none", "pod-1", ["--unshare-net", "--unshare-uts", "--hostname", "pod-1"], []),
    ],
    ids=["host-network", "no-network-with-hostname"],
)
def test_network_and_hostname(network: str, hostname: str | None, present: list[str], absent: list[str]) -> None:
    """network: none unshares the network namespace; a hostname gets its own UTS namespace."""
    argv = run(network=network, hostname=hostname, chdir="/src")
    assert set(present) <= set(argv) and not set(absent) & set(argv)
    assert argv[argv.index("--chdir") + 1] == "/src"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/tmp/out.txt", "/ws/tmp/main/out.txt"),
        ("/tmp", "/ws/tmp/main"),
        ("/mnt/vol/a/b", "/ws/v/a/b"),
        ("/mnt/volume", None),
        ("/etc/passwd", None),
        ("/mnt/vol/../../tmp/x", "/ws/tmp/main/x"),
    ],
    ids=["in-tmp", "tmp-itself", "nested", "prefix-is-not-parent", "unbound", "normalized"],
)
def test_host_path_maps_through_the_innermost_bind(path: str, expected: str | None) -> None:
    """Outputs are read from the host directory bound where the container wrote them."""
    binds = [TMP, Bind(source="/ws/v", target="/mnt/vol")]
    assert host_path(path, binds) == expected


def test_a_new_mount_point_under_a_symlinked_directory_is_made_in_the_link_target() -> None:
    """/bin links to usr/bin here (as /var/run links to /run on Debian): bwrap cannot put a tmpfs
    on a symlink inside the new root, so the mount point goes where the link leads."""
    ops = mounts(run(Bind(source="/ws/helper", target="/bin/helper/dir")))
    assert ("--tmpfs", "/usr/bin") in ops
    assert ("--bind", "/ws/helper", "/usr/bin/helper/dir") in ops
    assert not any(op[-1].startswith("/bin") for op in ops)
