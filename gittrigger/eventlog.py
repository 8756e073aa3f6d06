"""
The SQLite event log: every accepted delivery, its dispatch state and its audit trail, in one file.

Implements :class:`sensors.eventlog.EventLog`. Opened by the process runtime
(``log = await SqliteEventLog.open(path)`` ... ``await log.close()``); written by the webhook edge
and the event sources (``append`` before the 2xx, ``reject``), read by
:class:`sensors.dispatcher.Dispatcher` and the audit API.

Durability: WAL with ``synchronous=FULL``, because a 2xx tells the host it need not retry: once
``append`` returns, the event survives SIGKILL and power loss. Every write (appends, audit facts,
dispatch marks, rejections) goes through one queue: writes that arrive while a commit is in
flight share the next transaction (group commit: one WAL fsync for all of them, each caller
answered only after it), so throughput grows with concurrency instead of being one fsync each,
and the dispatcher's bookkeeping never queues ahead of a delivery waiting for its 2xx (one
writer task, one worker thread at a time, instead of a thread per audit line blocked on the lock).
One connection, used from ``asyncio.to_thread`` under a lock
(SQLite serializes writers anyway; the to_thread keeps the fsync off the event loop).
:meth:`pending` parses events from their stored JSON (through :mod:`workflows.jsontext`). Keeping
the edge's parsed events for the dispatcher instead saved that parse but cost more: during a
flood thousands of them stayed alive, and a young-generation collection walking them stalled the
loop for ~100 ms (the answer p99 of every delivery in flight).
Redeliveries hit the unique index on ``(source_name, delivery_id)`` (NULL delivery ids never
collide, so events without one are never deduplicated). ``sqlite3`` errors never leave this
module: each becomes :class:`~workflows.errors.Unavailable` (the edge answers 503).
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, Generic, Self, TypeVar

import structlog

from sensors.eventlog import AuditEntry, StoredEvent
from sensors.events import Event
from workflows import jsontext
from workflows.errors import NotFound, Unavailable, WorkflowError

T = TypeVar("T")
log = structlog.get_logger(__name__)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, source_name TEXT NOT NULL,
    event_name TEXT NOT NULL, source_kind TEXT NOT NULL, delivery_id TEXT, received_at TEXT NOT NULL,
    dispatched INTEGER NOT NULL DEFAULT 0, dispatched_at TEXT, body TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS events_delivery ON events (source_name, delivery_id);
CREATE INDEX IF NOT EXISTS events_by_id ON events (event_id, seq);
CREATE INDEX IF NOT EXISTS events_pending ON events (seq) WHERE dispatched = 0;
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
    detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_event ON audit (seq, id);
CREATE TABLE IF NOT EXISTS rejections (
    id INTEGER PRIMARY KEY AUTOINCREMENT, source_kind TEXT NOT NULL, source_name TEXT NOT NULL,
    event_name TEXT NOT NULL, delivery_id TEXT, reason TEXT NOT NULL, received_at TEXT NOT NULL);
"""
_COLUMNS: Final = "seq, source_kind, delivery_id, received_at, dispatched, body"
CHECKPOINT_WRITES: Final = 1000  # writes between WAL checkpoints (~SQLite's own 1000-page default)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SqliteEventLog:
    """The durable event log. Build it with :meth:`open`; end it with :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], datetime] = _utcnow,
                 busy_timeout_s: float = 5.0) -> None:
        self.path = os.fspath(path)
        self._clock = clock
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._writes: list[_Write[Any]] = []
        self._committer: asyncio.Task[None] | None = None
        self._unchecked = 0  # writes committed since the last checkpoint began
        self._checkpointer: asyncio.Task[None] | None = None
        self._ckpt_lock = threading.Lock()
        self._ckpt_conn: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, clock: Callable[[], datetime] = _utcnow,
                   busy_timeout_s: float = 5.0) -> SqliteEventLog:
        """Open (creating if needed) the log at ``path``; raises Unavailable when it cannot."""
        self = cls(path, clock=clock, busy_timeout_s=busy_timeout_s)
        await asyncio.to_thread(self._connect)
        return self

    async def close(self) -> None:
        """Close the connection; call once no other call is in flight. Idempotent."""
        if self._checkpointer is not None:
            await asyncio.gather(self._checkpointer, return_exceptions=True)
        await asyncio.to_thread(self._disconnect)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- EventLog ---------------------------------------------------------------------------

    async def append(self, event: Event, *, source_kind: str, delivery_id: str | None,
                     received_at: datetime) -> tuple[StoredEvent, bool]:
        """Store ``event`` unless its delivery id is known already; returns once it is durable.

        Writes arriving while a commit is in flight are committed together in the next
        transaction (group commit): one fsync for many deliveries, each answered only after it.
        """
        return await self._write(functools.partial(
            _insert, event=event, source_kind=source_kind, delivery_id=delivery_id, received_at=received_at,
            body=event.to_cloudevent_json()))

    async def reject(self, *, source_kind: str, event_source_name: str, event_name: str,
                     delivery_id: str | None, reason: str, received_at: datetime) -> None:
        """Record a refused delivery; a failure to record is logged, never raised."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO rejections (source_kind, source_name, event_name, delivery_id, reason,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?)",
                (source_kind, event_source_name, event_name, delivery_id, reason, _iso(received_at)))

        try:
            await self._write(write)
        except WorkflowError as exc:
            log.warning("rejection not recorded", source=event_source_name, delivery=delivery_id,
                        error=str(exc))

    async def pending(self, *, limit: int = 100, after_seq: int = 0) -> Sequence[StoredEvent]:
        """Undispatched events after ``after_seq``, oldest first, with their audit trails (what was
        done before a crash)."""

        def read(conn: sqlite3.Connection) -> list[StoredEvent]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE dispatched = 0 AND seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit)).fetchall()
            return _with_audits(conn, [_stored(r) for r in rows])

        return await self._run(read)

    async def mark_dispatched(self, seq: int) -> None:
        """Flag ``seq`` dispatched, at the clock's time (a no-op for an unknown seq)."""
        at = _iso(self._clock())

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE events SET dispatched = 1, dispatched_at = ? WHERE seq = ?", (at, seq))

        await self._write(write)

    async def audit(self, seq: int, entry: AuditEntry) -> None:
        """Append one audit fact to event ``seq``."""
        detail = jsontext.dumps(dict(entry.detail), default=str)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO audit (seq, at, kind, detail) VALUES (?, ?, ?, ?)",
                         (seq, _iso(entry.at), entry.kind, detail))

        await self._write(write)

    async def get(self, event_id: str) -> StoredEvent:
        """The newest event with context id ``event_id`` (a replay may reuse it), with its audit trail."""

        def read(conn: sqlite3.Connection) -> StoredEvent | None:
            row = conn.execute(f"SELECT {_COLUMNS} FROM events WHERE event_id = ? ORDER BY seq DESC LIMIT 1",
                               (event_id,)).fetchone()
            return None if row is None else _with_audit(conn, _stored(row))

        found = await self._run(read)
        if found is None:
            raise NotFound("event", event_id)
        return found

    async def list(self, *, limit: int = 50, before_seq: int | None = None) -> Sequence[StoredEvent]:
        """Newest first, with audit trails; page with ``before_seq``."""

        def read(conn: sqlite3.Connection) -> list[StoredEvent]:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM events WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                                (before_seq if before_seq is not None else 2**63 - 1, limit)).fetchall()
            return _with_audits(conn, [_stored(r) for r in rows])

        return await self._run(read)

    async def rejections(self, *, limit: int = 50) -> Sequence[dict[str, Any]]:
        """The newest refused deliveries (not part of the EventLog seam; for the audit API)."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT source_kind, source_name, event_name, delivery_id, reason, received_at"
                " FROM rejections ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            keys = ("source_kind", "event_source_name", "event_name", "delivery_id", "reason", "received_at")
            return [dict(zip(keys, row, strict=True)) for row in rows]

        return await self._run(read)

    # -- plumbing -------------------------------------------------------------------------

    def _connect(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, check_same_thread=False)
        except sqlite3.Error as exc:
            raise Unavailable(f"event log {self.path}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            # Checkpoints run beside the writer (see _checkpoint), never inside a delivery's commit.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            conn.close()
            raise Unavailable(f"event log {self.path}: {exc}") from exc
        self._conn = conn

    def _disconnect(self) -> None:
        with self._ckpt_lock:
            if self._ckpt_conn is not None:
                self._ckpt_conn.close()
                self._ckpt_conn = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()  # the last connection to close checkpoints what is left
                self._conn = None

    def _maybe_checkpoint(self, writes: int) -> None:
        """Start a WAL checkpoint once enough was written since the last one (one at a time)."""
        self._unchecked += writes
        if self._unchecked < CHECKPOINT_WRITES or (self._checkpointer is not None and not self._checkpointer.done()):
            return
        self._unchecked = 0
        self._checkpointer = asyncio.create_task(asyncio.to_thread(self._checkpoint), name="event log checkpoint")

    def _checkpoint(self) -> None:
        """Copy the WAL into the database on a connection of its own (PASSIVE: it waits for no one).

        SQLite's automatic checkpoint would run inside whichever commit crossed the threshold, with
        the writer's lock held: every delivery waiting for that group commit (and every one queued
        behind it) then waited for megabytes of copying and an fsync of the database file too.
        """
        with self._ckpt_lock:
            try:
                if self._ckpt_conn is None:
                    self._ckpt_conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s,
                                                      check_same_thread=False)
                    self._ckpt_conn.execute("PRAGMA synchronous=FULL")
                self._ckpt_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # the next one will try again; the WAL only grows meanwhile
                log.warning("event log checkpoint failed", path=self.path, error=str(exc))

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                if self._conn is None:
                    raise Unavailable(f"event log {self.path} is closed")
                return fn(self._conn)
            except sqlite3.Error as exc:
                raise Unavailable(f"event log {self.path}: {exc}") from exc
            except OSError as exc:
                raise Unavailable(f"event log {self.path}: {exc.strerror}") from exc

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` in the next group-commit transaction; returns its result once committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._writes.append(_Write(op=op, future=future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_writes(), name="event log group commit")
        return await future

    async def _commit_writes(self) -> None:
        while self._writes:
            batch, self._writes = self._writes, []
            try:
                results = await self._run(functools.partial(_transaction, batch=batch))
            except WorkflowError as exc:
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():  # its request may have gone away
                    item.future.set_result(result)
            self._maybe_checkpoint(len(batch))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Write(Generic[T]):
    op: Callable[[sqlite3.Connection], T]
    future: asyncio.Future[T]


def _transaction(conn: sqlite3.Connection, *, batch: Sequence[_Write[Any]]) -> list[Any]:
    """Every write of a batch in one transaction (one fsync); all of them or none."""
    with conn:
        return [item.op(conn) for item in batch]


def _insert(conn: sqlite3.Connection, *, event: Event, source_kind: str, delivery_id: str | None,
            received_at: datetime, body: str) -> tuple[StoredEvent, bool]:
    """Insert one event; a known delivery id yields the stored original instead."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO events (event_id, source_name, event_name, source_kind,"
        " delivery_id, received_at, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (event.context.id, event.event_source_name, event.event_name, source_kind,
         delivery_id, _iso(received_at), body))
    if cur.rowcount == 1:
        assert cur.lastrowid is not None
        return StoredEvent(seq=cur.lastrowid, event=event, source_kind=source_kind, delivery_id=delivery_id,
                           received_at=received_at), True
    row = conn.execute(f"SELECT {_COLUMNS} FROM events WHERE source_name = ? AND delivery_id = ?",
                       (event.event_source_name, delivery_id)).fetchone()
    return _with_audit(conn, _stored(row)), False


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _stored(row: tuple[Any, ...]) -> StoredEvent:
    seq, source_kind, delivery_id, received_at, dispatched, body = row
    event = Event.from_json(body)
    return StoredEvent(seq=seq, event=event, source_kind=source_kind, delivery_id=delivery_id,
                       received_at=datetime.fromisoformat(received_at), dispatched=bool(dispatched))


def _entries(conn: sqlite3.Connection, seqs: Sequence[int]) -> dict[int, list[AuditEntry]]:
    out: dict[int, list[AuditEntry]] = {}
    if not seqs:
        return out
    marks = ",".join("?" * len(seqs))
    for seq, at, kind, detail in conn.execute(
            f"SELECT seq, at, kind, detail FROM audit WHERE seq IN ({marks}) ORDER BY seq, id", tuple(seqs)):
        out.setdefault(seq, []).append(AuditEntry(at=datetime.fromisoformat(at), kind=kind,
                                                  detail=jsontext.loads(detail, lenient=True)))
    return out


def _with_audits(conn: sqlite3.Connection, events: list[StoredEvent]) -> list[StoredEvent]:
    entries = _entries(conn, [e.seq for e in events])
    return [replace(e, audit=tuple(entries.get(e.seq, ()))) for e in events]


def _with_audit(conn: sqlite3.Connection, event: StoredEvent) -> StoredEvent:
    return _with_audits(conn, [event])[0]

