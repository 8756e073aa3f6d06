"""
The local executor's pod journal: who started which pod's process groups, and each pod's
result, so a restarted server re-attaches instead of running a pod twice.

Owned by :class:`workflows.executors.local.LocalExecutor`. One append-only file,
``<data dir>/pods/journal.jsonl``, one JSON line per event (a pod's process group started, a
pod finished), written through one descriptor kept open: a per-pod state file cost a file
creation per pod, which dominated the executor's overhead at thousands of pods. No fsync:
after a machine crash the boot id differs and running pods are reported lost anyway.

On open, the entries left by earlier servers are read (merged per pod) and kept as
:attr:`PodJournal.previous`; the file is rewritten with just those, then appended to. It is
rotated when it grows: the rewrite keeps the unconsumed earlier entries and this server's
entries of the last :data:`KEEP_SECONDS` (a finished pod's result only matters until the engine
has stored it, which takes milliseconds).
"""

from __future__ import annotations

import contextlib
import os
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from workflows import jsontext

FILE: Final = "journal.jsonl"
ROTATE_LINES: Final = 50_000
KEEP_SECONDS: Final = 600.0


class PodJournal:
    """Append-only record of pod starts and results; see the module docstring."""

    def __init__(self, directory: Path, *, instance: str, boot_id: str) -> None:
        self._path = directory / FILE
        self._head = {"i": instance, "b": boot_id, "p": os.getpid()}
        self.previous: dict[str, dict[str, Any]] = {}
        self._recent: dict[str, tuple[float, dict[str, Any]]] = {}
        self._fd: int | None = None
        self._lines = 0

    def open(self) -> None:
        """Read what earlier servers left, rewrite the file with it, keep it open for appending."""
        if self._fd is not None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError), self._path.open("rb") as f:
            for raw in f:
                try:
                    line = jsontext.loads(raw, lenient=True)
                except ValueError:
                    continue  # a torn last line from a crash
                if isinstance(line, dict) and isinstance(line.get("k"), str):
                    _merge(self.previous, line)
        self._rewrite()

    def started(self, key: str, *, attempt: int, groups: Mapping[int, int]) -> None:
        """Record the process groups (pgid -> leader start time) a pod has started so far."""
        self._append(key, {"a": attempt, "g": {str(k): v for k, v in groups.items()}})

    def finished(self, key: str, *, attempt: int, result: Mapping[str, Any]) -> None:
        """Record a pod's result."""
        self._append(key, {"a": attempt, "r": dict(result)})

    def consume(self, key: str) -> dict[str, Any] | None:
        """An earlier server's entry for ``key``, removed (each is acted on once)."""
        entry = self.previous.pop(key, None)
        if entry is not None:
            self._recent.pop(key, None)
        return entry

    def close(self) -> None:
        if self._fd is not None:
            self._finalizer.detach()
            os.close(self._fd)
            self._fd = None

    # -- internals ----------------------------------------------------------------------------

    def _append(self, key: str, fields: dict[str, Any]) -> None:
        if self._fd is None:
            self.open()
        line = {"k": key, **self._head, **fields}
        merged = _merge_one(self._recent.get(key, (0.0, {}))[1], line)
        self._recent[key] = (time.monotonic(), merged)
        self._write((jsontext.dumps(line) + "\n").encode())
        if self._lines >= ROTATE_LINES:
            self._rewrite()

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        os.write(self._fd, data)
        self._lines += 1

    def _rewrite(self) -> None:
        """Replace the file with the earlier servers' entries and this one's recent ones."""
        horizon = time.monotonic() - KEEP_SECONDS
        self._recent = {k: v for k, v in self._recent.items() if v[0] >= horizon}
        keep = {**self.previous, **{k: v for k, (_, v) in self._recent.items()}}
        tmp = self._path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            for key, entry in keep.items():
                f.write((jsontext.dumps({**entry, "k": key}) + "\n").encode())
        os.replace(tmp, self._path)
        self.close()
        fd = self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._lines = len(keep)
        self._finalizer = weakref.finalize(self, _close_quietly, fd)  # an executor dropped unclosed


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _merge(entries: dict[str, dict[str, Any]], line: dict[str, Any]) -> None:
    key = line["k"]
    entries[key] = _merge_one(entries.get(key, {}), line)


def _merge_one(entry: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    """The pod's state after ``line``: a line of another server or attempt starts afresh."""
    same = entry.get("i") == line.get("i") and entry.get("a") == line.get("a")
    merged = dict(entry) if same else {}
    for name, value in line.items():
        if name == "g":
            merged["g"] = {**merged.get("g", {}), **value}
        elif name != "k":
            merged[name] = value
    return merged
