"""
The event log's tables and the statements over them: a connection in, rows and events out.

Used by :mod:`gittrigger.eventlog`, which owns the connections, the group-commit queue and the
fsync; nothing here knows of threads, the event loop or durability. :func:`transaction` runs one
batch of writes; an :class:`Insert` is the write of one event, and the inserts of a batch become
one multi-row ``INSERT OR IGNORE`` (:func:`insert_all`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from sensors.eventlog import AuditEntry, StoredEvent
from sensors.events import Event
from workflows import jsontext

SCHEMA: Final = """
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
COLUMNS: Final = "seq, source_kind, delivery_id, received_at, dispatched, body"


def transaction(conn: sqlite3.Connection, *, ops: Sequence[Callable[[sqlite3.Connection], Any]]) -> list[Any]:
    """Every write of a batch in one transaction; all of them or none. Returns each op's result.

    The batch's :class:`Insert` ops go first, as one multi-row statement per :data:`INSERT_CHUNK`
    rather than one each: a statement's cost is mostly the trip into SQLite.
    """
    results: list[Any] = [None] * len(ops)
    inserts = [(i, op) for i, op in enumerate(ops) if isinstance(op, Insert)]
    with conn:
        for start in range(0, len(inserts), INSERT_CHUNK):
            chunk = inserts[start:start + INSERT_CHUNK]
            for (i, _), result in zip(chunk, insert_all(conn, [op for _, op in chunk]), strict=True):
                results[i] = result
        for i, op in enumerate(ops):
            if not isinstance(op, Insert):
                results[i] = op(conn)
    return results


INSERT_CHUNK: Final = 500  # rows per INSERT: 7 parameters each, well under SQLite's 32766
_INSERT_SQL: Final = ("INSERT OR IGNORE INTO events (event_id, source_name, event_name, source_kind,"
                      " delivery_id, received_at, body) VALUES ")


@dataclass(frozen=True, slots=True, kw_only=True)
class Insert:
    """One event to store; a known ``(source_name, delivery_id)`` yields the stored original."""

    event: Event
    source_kind: str
    delivery_id: str | None
    received_at: datetime
    body: str

    def params(self) -> tuple[Any, ...]:
        return (self.event.context.id, self.event.event_source_name, self.event.event_name, self.source_kind,
                self.delivery_id, iso(self.received_at), self.body)

    def created(self, seq: int) -> tuple[StoredEvent, bool]:
        return StoredEvent(seq=seq, event=self.event, source_kind=self.source_kind, delivery_id=self.delivery_id,
                           received_at=self.received_at), True

    def original(self, conn: sqlite3.Connection) -> tuple[StoredEvent, bool]:
        row = conn.execute(f"SELECT {COLUMNS} FROM events WHERE source_name = ? AND delivery_id = ?",
                           (self.event.event_source_name, self.delivery_id)).fetchone()
        return with_audit(conn, stored(row)), False

    def __call__(self, conn: sqlite3.Connection) -> tuple[StoredEvent, bool]:
        return insert_all(conn, [self])[0]


def insert_all(conn: sqlite3.Connection, inserts: Sequence[Insert]) -> list[tuple[StoredEvent, bool]]:
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


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def stored(row: tuple[Any, ...]) -> StoredEvent:
    seq, source_kind, delivery_id, received_at, dispatched, body = row
    event = Event.from_json(body)
    return StoredEvent(seq=seq, event=event, source_kind=source_kind, delivery_id=delivery_id,
                       received_at=datetime.fromisoformat(received_at), dispatched=bool(dispatched))


def entries(conn: sqlite3.Connection, seqs: Sequence[int]) -> dict[int, list[AuditEntry]]:
    out: dict[int, list[AuditEntry]] = {}
    if not seqs:
        return out
    marks = ",".join("?" * len(seqs))
    for seq, at, kind, detail in conn.execute(
            f"SELECT seq, at, kind, detail FROM audit WHERE seq IN ({marks}) ORDER BY seq, id", tuple(seqs)):
        out.setdefault(seq, []).append(AuditEntry(at=datetime.fromisoformat(at), kind=kind,
                                                  detail=jsontext.loads(detail, lenient=True)))
    return out


def with_audits(conn: sqlite3.Connection, events: list[StoredEvent]) -> list[StoredEvent]:
    found = entries(conn, [e.seq for e in events])
    return [replace(e, audit=tuple(found.get(e.seq, ()))) for e in events]


def with_audit(conn: sqlite3.Connection, event: StoredEvent) -> StoredEvent:
    return with_audits(conn, [event])[0]
