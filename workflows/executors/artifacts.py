"""
The local artifact store: output artifacts saved by one pod, read back as inputs by another.

Used by :mod:`workflows.executors.local` (save outputs after main exits, place inputs before
any container starts) and by whoever garbage-collects runs (:meth:`delete_prefix`). Objects
live under ``root/<key>``; keys are relative POSIX paths chosen by the core. Archived artifacts
use Argo's layout: a tar+gzip whose single top entry is the basename of the saved path, so a
directory and a file round-trip to the same shape. Every method blocks (file I/O): async
callers wrap them in :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import uuid
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Final

from workflows.errors import InvalidSpec, NotFound

_GZIP_MAGIC: Final = b"\x1f\x8b"
_GZIP_DEFAULT_LEVEL: Final = 6  # Argo uses Go's DefaultCompression, the same trade-off


class LocalArtifactStore:
    """Artifacts as files under ``root``; safe for concurrent writers of distinct keys."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()

    def _path(self, key: str) -> Path:
        return self.root / _checked(key, field="key")

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds an artifact."""
        return os.path.lexists(self._path(key))

    def put_path(
        self, key: str, src: Path, *, archive_none: bool = False, compression_level: int | None = None
    ) -> None:
        """Save the file or directory ``src`` under ``key`` (tar+gzip unless ``archive_none``).

        Raises :class:`FileNotFoundError` when ``src`` is missing. The object appears atomically
        (written beside, then renamed), so a reader never sees half an artifact.
        """
        dest = self._path(key)
        if not os.path.lexists(src):
            raise FileNotFoundError(f"no such file or directory: {src}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.partial")
        try:
            if archive_none:
                if src.is_dir():
                    shutil.copytree(src, partial, symlinks=True)
                else:
                    shutil.copy2(src, partial, follow_symlinks=True)
            else:
                level = _GZIP_DEFAULT_LEVEL if compression_level is None else compression_level
                level = level if 0 <= level <= 9 else _GZIP_DEFAULT_LEVEL
                with (
                    open(partial, "wb") as raw,
                    gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level, mtime=0) as gz,
                    tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
                ):
                    tar.add(src, arcname=src.name)
            _remove(dest)
            os.replace(partial, dest)
        finally:
            _remove(partial)

    def get_to(self, key: str, dest: Path, *, sub_path: str | None = None, archive_none: bool | None = None) -> None:
        """Place artifact ``key`` at ``dest`` (file or directory), replacing what is there.

        Archived artifacts are unpacked with Argo's rule: a single top entry becomes ``dest``
        itself (a file stays a file, a directory's contents land in ``dest``); several top
        entries make ``dest`` a directory holding them. ``archive_none=None`` sniffs the gzip
        magic. ``sub_path`` picks a file or directory inside a stored directory artifact.
        Raises :class:`workflows.errors.NotFound` if the key or sub-path is missing.
        """
        src = self._path(key)
        if not os.path.lexists(src):
            raise NotFound("artifact", key)
        sub = _checked(sub_path, field="subPath") if sub_path else None
        archived = (not src.is_dir() and _is_gzip(src)) if archive_none is None else not archive_none
        dest.parent.mkdir(parents=True, exist_ok=True)
        _remove(dest)
        if not archived:
            picked = src / sub if sub else src
            if not os.path.lexists(picked):
                raise NotFound("artifact path", f"{key}/{sub}")
            if picked.is_dir():
                shutil.copytree(picked, dest, symlinks=True)
            else:
                shutil.copy2(picked, dest)
            return
        scratch = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmpdir")
        try:
            with tarfile.open(src, mode="r:*") as tar:
                tar.extractall(scratch, filter="data")
            entries = sorted(scratch.iterdir())
            top = entries[0] if len(entries) == 1 else scratch
            picked = top / sub if sub else top
            if sub and not os.path.lexists(picked):
                raise NotFound("artifact path", f"{key}/{sub}")
            os.replace(picked, dest)
        finally:
            _remove(scratch)

    def open_bytes(self, key: str) -> BinaryIO:
        """Open the stored object (the archive itself when archived) for reading."""
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound("artifact", key) from None

    def read_bytes(self, key: str) -> bytes:
        """The stored object's bytes (the archive itself when archived)."""
        with self.open_bytes(key) as f:
            return f.read()

    def delete_prefix(self, prefix: str) -> None:
        """Delete every artifact whose key is ``prefix`` or lies under it (a run's artifacts)."""
        _remove(self._path(prefix))


def _checked(key: str, *, field: str) -> PurePosixPath:
    """Reject keys that could escape the store root."""
    path = PurePosixPath(key)
    if not key or path.is_absolute() or "\\" in key or any(p in ("..", ".") for p in key.split("/")):
        raise InvalidSpec(field, f"{key!r} must be a relative path without '.' or '..' components")
    return path


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
