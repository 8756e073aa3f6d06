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
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, Generic, Self, TypeVar

import structlog

from gittrigger.fsyncer import Fsyncer, HelperGone
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
        return await self._write(_Insert(event=event, source_kind=source_kind, delivery_id=delivery_id,
                                         received_at=received_at, body=event.to_cloudevent_json()))

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
        done before a crash). Only durable ones: an event committed but not yet fsynced waits."""

        durable = self._durable_seq

        def read(conn: sqlite3.Connection) -> list[StoredEvent]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE dispatched = 0 AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (after_seq, durable, limit)).fetchall()
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
        writer = self._open_connection()
        reader: sqlite3.Connection | None = None
        try:
            writer.execute("PRAGMA journal_mode=WAL")
            writer.executescript(_SCHEMA)
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
        transaction = functools.partial(_transaction, batch=batch)
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
                if isinstance(item.op, _Insert) and result[1]), default=0)


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


def _transaction(conn: sqlite3.Connection, *, batch: Sequence[_Write[Any]]) -> list[Any]:
    """Every write of a batch in one transaction (one fsync); all of them or none.

    The batch's event inserts go first, as one multi-row statement per :data:`INSERT_CHUNK` rather
    than one each: a statement's cost is mostly the trip into SQLite, and this runs on the loop.
    """
    results: list[Any] = [None] * len(batch)
    inserts = [(i, item.op) for i, item in enumerate(batch) if isinstance(item.op, _Insert)]
    with conn:
        for start in range(0, len(inserts), INSERT_CHUNK):
            chunk = inserts[start:start + INSERT_CHUNK]
            for (i, _), result in zip(chunk, _insert_all(conn, [op for _, op in chunk]), strict=True):
                results[i] = result
        for i, item in enumerate(batch):
            if not isinstance(item.op, _Insert):
                results[i] = item.op(conn)
    return results


INSERT_CHUNK: Final = 500  # rows per INSERT: 7 parameters each, well under SQLite's 32766
_INSERT_SQL: Final = ("INSERT OR IGNORE INTO events (event_id, source_name, event_name, source_kind,"
                      " delivery_id, received_at, body) VALUES ")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Insert:
    """One event to store; a known ``(source_name, delivery_id)`` yields the stored original."""

    event: Event
    source_kind: str
    delivery_id: str | None
    received_at: datetime
    body: str

    def params(self) -> tuple[Any, ...]:
        return (self.event.context.id, self.event.event_source_name, self.event.event_name, self.source_kind,
                self.delivery_id, _iso(self.received_at), self.body)

    def created(self, seq: int) -> tuple[StoredEvent, bool]:
        return StoredEvent(seq=seq, event=self.event, source_kind=self.source_kind, delivery_id=self.delivery_id,
                           received_at=self.received_at), True

    def original(self, conn: sqlite3.Connection) -> tuple[StoredEvent, bool]:
        row = conn.execute(f"SELECT {_COLUMNS} FROM events WHERE source_name = ? AND delivery_id = ?",
                           (self.event.event_source_name, self.delivery_id)).fetchone()
        return _with_audit(conn, _stored(row)), False

    def __call__(self, conn: sqlite3.Connection) -> tuple[StoredEvent, bool]:
        return _insert_all(conn, [self])[0]


def _insert_all(conn: sqlite3.Connection, inserts: Sequence[_Insert]) -> list[tuple[StoredEvent, bool]]:
    """Insert ``inserts`` with one statement; each is (stored, created), in order.

    When every row went in (the common case) their seqs are the ``len(inserts)`` consecutive ones
    ending at the last rowid: one statement under the write lock, each new row one past the
    largest. Otherwise (a redelivery, perhaps of a delivery in this same batch) the new rows are
    the ``rowcount`` newest; an insert claims the first unclaimed new row with its keys, and the
    rest are duplicates, answered with the stored original.
    """
    cur = conn.execute(_INSERT_SQL + ",".join(["(?,?,?,?,?,?,?)"] * len(inserts)),
                       [value for insert in inserts for value in insert.params()])
    inserted = cur.rowcount
    if inserted == len(inserts):
        assert cur.lastrowid is not None
        first = cur.lastrowid - inserted + 1
        return [insert.created(first + i) for i, insert in enumerate(inserts)]
    new: dict[tuple[str, str, str | None], list[int]] = {}
    for seq, event_id, source_name, delivery_id in conn.execute(
            "SELECT seq, event_id, source_name, delivery_id FROM events ORDER BY seq DESC LIMIT ?", (inserted,)):
        new.setdefault((event_id, source_name, delivery_id), []).insert(0, seq)
    out = []
    for insert in inserts:
        seqs = new.get((insert.event.context.id, insert.event.event_source_name, insert.delivery_id))
        out.append(insert.created(seqs.pop(0)) if seqs else insert.original(conn))
    return out


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

