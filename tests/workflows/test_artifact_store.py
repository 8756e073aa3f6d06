"""Tests of the local artifact store: round trips in Argo's archive layout, key validation."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from workflows.errors import InvalidSpec, NotFound
from workflows.executors.artifacts import LocalArtifactStore


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "store")


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("archive_none", [False, True], ids=["tgz", "none"])
def test_file_round_trips_as_a_file(store: LocalArtifactStore, tmp_path: Path, archive_none: bool) -> None:
    """A saved file comes back as a file at the destination, whatever its stored name."""
    (src := tmp_path / "hello.txt").write_text("hi\n")
    store.put_path("wf/n1/out.tgz", src, archive_none=archive_none)
    store.get_to("wf/n1/out.tgz", dest := tmp_path / "in" / "x.txt", archive_none=archive_none)
    assert dest.read_text() == "hi\n"


@pytest.mark.parametrize("archive_none", [False, True, None], ids=["tgz", "none", "sniffed"])
def test_directory_round_trips_as_the_destination(
    store: LocalArtifactStore, tmp_path: Path, archive_none: bool | None
) -> None:
    """A saved directory's contents land in the destination directory."""
    src = tmp_path / "build"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    store.put_path("k", src, archive_none=bool(archive_none))
    store.get_to("k", dest := tmp_path / "dest", archive_none=archive_none)
    assert _tree(dest) == {"a.txt": "a", "sub/b.txt": "b"}


def test_archive_holds_the_basename_as_single_top_entry(store: LocalArtifactStore, tmp_path: Path) -> None:
    """Argo's layout: the tgz's one top entry is the basename of the saved path."""
    (src := tmp_path / "out").mkdir()
    (src / "f").write_text("x")
    store.put_path("k.tgz", src, compression_level=1)
    with store.open_bytes("k.tgz") as raw, tarfile.open(fileobj=raw, mode="r:gz") as tar:
        assert {"out", "out/f"} == set(tar.getnames())


@pytest.mark.parametrize("archive_none", [False, True], ids=["tgz", "none"])
def test_sub_path_picks_inside_a_directory(store: LocalArtifactStore, tmp_path: Path, archive_none: bool) -> None:
    """``subPath`` selects one file (or directory) of a stored directory artifact."""
    (src := tmp_path / "d" / "inner").mkdir(parents=True)
    (src / "f.txt").write_text("deep")
    store.put_path("k", tmp_path / "d", archive_none=archive_none)
    store.get_to("k", dest := tmp_path / "f", sub_path="inner/f.txt", archive_none=archive_none)
    assert dest.read_text() == "deep"
    with pytest.raises(NotFound):
        store.get_to("k", tmp_path / "g", sub_path="nope", archive_none=archive_none)


def test_put_replaces_and_delete_prefix_removes(store: LocalArtifactStore, tmp_path: Path) -> None:
    """A key can be overwritten; deleting a run's prefix removes its artifacts only."""
    (src := tmp_path / "f").write_text("1")
    store.put_path("run1/a", src)
    src.write_text("2")
    store.put_path("run1/a", src)
    store.put_path("run2/a", src)
    store.get_to("run1/a", dest := tmp_path / "got")
    assert dest.read_text() == "2"
    store.delete_prefix("run1")
    assert (store.exists("run1/a"), store.exists("run2/a")) == (False, True)
    assert store.read_bytes("run2/a").startswith(b"\x1f\x8b")


def test_missing_source_and_missing_key(store: LocalArtifactStore, tmp_path: Path) -> None:
    """Saving a missing path and reading a missing key fail with distinct errors."""
    with pytest.raises(FileNotFoundError):
        store.put_path("k", tmp_path / "absent")
    with pytest.raises(NotFound):
        store.get_to("k", tmp_path / "x")
    with pytest.raises(NotFound):
        store.read_bytes("k")


@pytest.mark.parametrize(
    "key",
    ["", "/abs", "a/../b", "..", "a\\b", "./a"],
    ids=["empty", "absolute", "dotdot-inside", "dotdot", "backslash", "dot"],
)
def test_rejects_keys_escaping_the_root(store: LocalArtifactStore, key: str) -> None:
    """Keys are relative posix paths that cannot leave the store root."""
    with pytest.raises(InvalidSpec):
        store.exists(key)
