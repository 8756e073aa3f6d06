"""
The SQLite event log: every accepted delivery, its dispatch state and its audit trail, in one file.

Implements :class:`sensors.eventlog.EventLog`. Opened by the process runtime
(``log = await SqliteEventLog.open(path)`` ... ``await log.close()``); written by the webhook edge
and the event sources (``append`` before the 2xx, ``reject``), read by
:class:`sensors.dispatcher.Dispatcher` and the audit API.

Durability: a 2xx tells the host it need not retry, so once ``append`` returns the event
survives SIGKILL and power loss. Every write (appends, audit facts, dispatch marks, rejections)
goes through one queue: the writes made while the previous batch was being made durable share
one transaction and one fsync (group commit), each caller answered only after it; throughput
grows with concurrency instead of being one fsync each, and the dispatcher's bookkeeping never
queues ahead of a delivery waiting for its 2xx.

A batch is committed on the event loop (one multi-row INSERT, its other writes, WAL with
``synchronous=NORMAL``: written to the OS, no fsync) and then made durable by an ``fsync`` of
the WAL file (``fdatasync``, by a helper process: :mod:`gittrigger.fsyncer`) while the loop goes on
reading the next deliveries. That is what ``synchronous=FULL`` would do inside the commit, moved
out of it: the WAL on disk then holds the batch's frames and commit record, which is what
recovery replays. Measured under a flood (see bench/README.md): the commit in a worker thread
took 3-4 ms of wall time for 0.9 ms of CPU, because each statement gives up the GIL and then
waits to win it back from the busy loop, and every delivery of the batch waited with it; on the
loop it takes ~0.4 ms. An fsync in a worker thread had the same trouble (a 1.7 ms hand-off at
the median, 8-10 ms at p99); the helper has its own interpreter. The dispatcher sees an event
only once it is durable (:meth:`pending` reads up to the last fsynced seq), so nothing runs for
an event a power loss could still take back.

The writer never waits for a lock on the loop (busy timeout 0): while another connection holds
the write lock (an operator's ``sqlite3`` session) a batch is committed in a thread instead,
waiting up to ``busy_timeout_s``. Reads (:meth:`pending`, the audit API) run in threads on a
connection of their own, which WAL lets read beside the writer; WAL checkpoints in a thread on a
third (see :meth:`_checkpoint`).

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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Generic, Self, TypeVar

import structlog

from gittrigger import eventrows
from gittrigger.fsyncer import Fsyncer, HelperGone
from sensors.eventlog import AuditEntry, StoredEvent
from sensors.events import Event
from workflows import jsontext
from workflows.errors import NotFound, Unavailable, WorkflowError

T = TypeVar("T")
log = structlog.get_logger(__name__)

CHECKPOINT_WRITES: Final = 1000  # writes between WAL checkpoints (~SQLite's own 1000-page default)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SqliteEventLog:
    """The durable event log. Build it with :meth:`open`; end it with :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], datetime] = _utcnow,
                 busy_timeout_s: float = 5.0, observe_sync: Callable[[float], None] | None = None) -> None:
        self.path = os.fspath(path)
        self._clock = clock
        self._observe_sync = observe_sync
        self._busy_timeout_s = busy_timeout_s
        self._writer = _Connection()
        self._reader = _Connection()
        self._writes: list[_Write[Any]] = []
        self._committer: asyncio.Task[None] | None = None
        self._unchecked = 0  # writes committed since the last checkpoint began
        self._checkpointer: asyncio.Task[None] | None = None
        self._checkpoints = _Connection()
        self._wal_fd: int | None = None  # the writer's WAL file, for the fsync that makes a batch durable
        self._fsyncer: Fsyncer | None = None
        self._committed_seq = 0  # the newest event committed ...
        self._durable_seq = 0  # ... and the newest known to be on disk (what the dispatcher may see)

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, clock: Callable[[], datetime] = _utcnow,
                   busy_timeout_s: float = 5.0, observe_sync: Callable[[float], None] | None = None) -> SqliteEventLog:
        """Open (creating if needed) the log at ``path``; raises Unavailable when it cannot.

        ``observe_sync`` is given the seconds of every WAL fsync (the metrics' histogram)."""
        self = cls(path, clock=clock, busy_timeout_s=busy_timeout_s, observe_sync=observe_sync)
        await asyncio.to_thread(self._connect)
        assert self._wal_fd is not None
        try:
            self._fsyncer = await Fsyncer.start(self._wal_fd, name=self.path + "-wal")
        except HelperGone as exc:
            await asyncio.to_thread(self._disconnect)
            raise Unavailable(f"event log {self.path}: fsync helper: {exc}") from exc
        return self

    async def close(self) -> None:
        """Close the connections; call once no other call is in flight. Idempotent."""
        if self._checkpointer is not None:
            await asyncio.gather(self._checkpointer, return_exceptions=True)
        if self._fsyncer is not None:
            await self._fsyncer.close()
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
        return await self._write(eventrows.Insert(event=event, source_kind=source_kind, delivery_id=delivery_id,
                                                  received_at=received_at, body=event.to_cloudevent_json()))

    async def reject(self, *, source_kind: str, event_source_name: str, event_name: str,
                     delivery_id: str | None, reason: str, received_at: datetime) -> None:
        """Record a refused delivery; a failure to record is logged, never raised."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO rejections (source_kind, source_name, event_name, delivery_id, reason,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?)",
                (source_kind, event_source_name, event_name, delivery_id, reason, eventrows.iso(received_at)))

        try:
            await self._write(write)
        except WorkflowError as exc:
            log.warning("rejection not recorded", source=event_source_name, delivery=delivery_id,
                        error=str(exc))

    async def pending(self, *, limit: int = 100, after_seq: int = 0) -> Sequence[StoredEvent]:
        """Undispatched events after ``after_seq``, oldest first, with their audit trails (what was
        done before a crash). Only durable ones: an event committed but not yet fsynced waits."""
        durable = self._durable_seq

        def read(conn: sqlite3.Connection) -> list[StoredEvent]:
            rows = conn.execute(
                f"SELECT {eventrows.COLUMNS} FROM events WHERE dispatched = 0 AND seq > ? AND seq <= ?"
                " ORDER BY seq LIMIT ?", (after_seq, durable, limit)).fetchall()
            return eventrows.with_audits(conn, [eventrows.stored(r) for r in rows])

        return await self._run(read)

    async def mark_dispatched(self, seq: int) -> None:
        """Flag ``seq`` dispatched, at the clock's time (a no-op for an unknown seq)."""
        at = eventrows.iso(self._clock())

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE events SET dispatched = 1, dispatched_at = ? WHERE seq = ?", (at, seq))

        await self._write(write)

    async def audit(self, seq: int, entry: AuditEntry) -> None:
        """Append one audit fact to event ``seq``."""
        detail = jsontext.dumps(dict(entry.detail), default=str)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO audit (seq, at, kind, detail) VALUES (?, ?, ?, ?)",
                         (seq, eventrows.iso(entry.at), entry.kind, detail))

        await self._write(write)

    async def get(self, event_id: str) -> StoredEvent:
        """The newest event with context id ``event_id`` (a replay may reuse it), with its audit trail."""

        def read(conn: sqlite3.Connection) -> StoredEvent | None:
            row = conn.execute(f"SELECT {eventrows.COLUMNS} FROM events WHERE event_id = ? ORDER BY seq DESC LIMIT 1",
                               (event_id,)).fetchone()
            return None if row is None else eventrows.with_audit(conn, eventrows.stored(row))

        found = await self._run(read)
        if found is None:
            raise NotFound("event", event_id)
        return found

    async def list(self, *, limit: int = 50, before_seq: int | None = None) -> Sequence[StoredEvent]:
        """Newest first, with audit trails; page with ``before_seq``."""

        def read(conn: sqlite3.Connection) -> list[StoredEvent]:
            rows = conn.execute(f"SELECT {eventrows.COLUMNS} FROM events WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                                (before_seq if before_seq is not None else 2**63 - 1, limit)).fetchall()
            return eventrows.with_audits(conn, [eventrows.stored(r) for r in rows])

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
        writer = self._open_connection()
        reader: sqlite3.Connection | None = None
        try:
            writer.execute("PRAGMA journal_mode=WAL")
            writer.executescript(eventrows.SCHEMA)
            writer.execute("PRAGMA busy_timeout=0")  # on the loop: never wait for a lock (see _commit)
            writer.execute("PRAGMA synchronous=NORMAL")  # the batch's fsync is _sync's, off the loop
            newest = writer.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            reader = self._open_connection()
            reader.execute("PRAGMA query_only=1")
            wal_fd = os.open(self.path + "-wal", os.O_RDONLY | os.O_CLOEXEC)
        except (sqlite3.Error, OSError, Unavailable) as exc:
            for conn in (reader, writer):
                if conn is not None:
                    conn.close()
            if isinstance(exc, Unavailable):
                raise
            raise Unavailable(f"event log {self.path}: {exc}") from exc
        self._writer.conn, self._reader.conn, self._wal_fd = writer, reader, wal_fd
        self._committed_seq = self._durable_seq = newest
        try:
            _fsync_dir(os.path.dirname(os.path.abspath(self.path)))  # the WAL's own directory entry
        except OSError as exc:
            self._disconnect()
            raise Unavailable(f"event log {self.path}: {exc}") from exc

    def _open_connection(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, check_same_thread=False)
            conn.execute("PRAGMA synchronous=FULL")
            # Checkpoints run beside the writer (see _checkpoint), never inside a delivery's commit.
            conn.execute("PRAGMA wal_autocheckpoint=0")
        except sqlite3.Error as exc:
            raise Unavailable(f"event log {self.path}: {exc}") from exc
        return conn

    def _disconnect(self) -> None:
        self._checkpoints.close()
        self._reader.close()
        with self._writer.lock:
            if self._wal_fd is not None:
                os.close(self._wal_fd)
                self._wal_fd = None
        self._writer.close()  # the last connection to close checkpoints what is left

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
        with self._checkpoints.lock:
            try:
                if self._checkpoints.conn is None:
                    self._checkpoints.conn = self._open_connection()
                self._checkpoints.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except (sqlite3.Error, Unavailable) as exc:  # the next one will try again; the WAL only grows meanwhile
                log.warning("event log checkpoint failed", path=self.path, error=str(exc))

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A read, in a thread, on the reader connection."""
        return await asyncio.to_thread(self._reader.call, fn, self.path)

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` in the next group-commit transaction; returns its result once committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._writes.append(_Write(op=op, future=future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_writes(), name="event log group commit")
        return await future

    async def _commit_writes(self) -> None:
        """Commit what was queued and make it durable, then do the same for what was queued
        meanwhile, until nothing is left."""
        while self._writes:
            batch, self._writes = self._writes, []
            try:
                results = await self._commit(batch)
                self._committed_seq = max(self._committed_seq, _newest_created(batch, results))
                await self._sync()
            except WorkflowError as exc:
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():  # its request may have gone away
                    item.future.set_result(result)
            self._maybe_checkpoint(len(batch))

    async def _commit(self, batch: Sequence[_Write[Any]]) -> Sequence[Any]:
        """One transaction for ``batch``: here on the loop, or in a thread if the database is locked."""
        transaction = functools.partial(eventrows.transaction, ops=[item.op for item in batch])
        try:
            return self._writer.call(transaction, self.path)
        except _Locked:
            log.info("event log locked by another connection; committing in a thread", path=self.path)
        return await asyncio.to_thread(self._writer.call, functools.partial(
            _waiting, transaction, timeout_ms=int(self._busy_timeout_s * 1000)), self.path)

    async def _sync(self) -> None:
        """fsync the WAL (by the helper process): everything committed before this call is then durable."""
        committed, fsyncer = self._committed_seq, self._fsyncer
        if fsyncer is None:
            raise Unavailable(f"event log {self.path} is closed")
        try:
            seconds = await fsyncer.fsync()
        except OSError as exc:
            log.error("event log fsync failed; the batch is answered 503", path=self.path, error=exc.strerror)
            raise Unavailable(f"event log {self.path}: fsync: {exc.strerror}") from exc
        except HelperGone as exc:
            log.error("event log fsync helper unavailable; the batch is answered 503", path=self.path,
                      error=str(exc))
            raise Unavailable(f"event log {self.path}: fsync helper: {exc}") from exc
        self._durable_seq = max(self._durable_seq, committed)
        if self._observe_sync is not None:
            self._observe_sync(seconds)


def _newest_created(batch: Sequence[_Write[Any]], results: Sequence[Any]) -> int:
    """The highest seq of an event the batch created (0 when it created none)."""
    return max((result[0].seq for item, result in zip(batch, results, strict=True)
                if isinstance(item.op, eventrows.Insert) and result[1]), default=0)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Locked(Exception):
    """The write lock is held by another connection (SQLITE_BUSY with busy timeout 0)."""


class _Connection:
    """One sqlite3 connection and the lock that keeps it to one thread at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conn: sqlite3.Connection | None = None

    def call(self, fn: Callable[[sqlite3.Connection], T], path: str) -> T:
        """``fn(conn)``; sqlite3 and OS errors become Unavailable, SQLITE_BUSY becomes _Locked."""
        with self.lock:
            try:
                if self.conn is None:
                    raise Unavailable(f"event log {path} is closed")
                return fn(self.conn)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                    raise _Locked() from exc
                raise Unavailable(f"event log {path}: {exc}") from exc
            except sqlite3.Error as exc:
                raise Unavailable(f"event log {path}: {exc}") from exc
            except OSError as exc:
                raise Unavailable(f"event log {path}: {exc.strerror}") from exc

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None


def _waiting(fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection, *, timeout_ms: int) -> T:
    """``fn(conn)`` with the connection waiting up to ``timeout_ms`` for locks (in a thread only)."""
    conn.execute(f"PRAGMA busy_timeout={timeout_ms}")
    try:
        return fn(conn)
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode == sqlite3.SQLITE_BUSY:  # waited the whole timeout: not _Locked again
            raise Unavailable(f"locked by another connection for {timeout_ms / 1000:g} s") from exc
        raise
    finally:
        conn.execute("PRAGMA busy_timeout=0")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Write(Generic[T]):
    op: Callable[[sqlite3.Connection], T]
    future: asyncio.Future[T]
