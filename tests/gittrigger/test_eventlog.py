"""
The event log: SQLite (durable, real files, a SIGKILLed writer) and the in-memory twin, same contract.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gittrigger.eventlog import SqliteEventLog
from sensors.eventlog import AuditEntry, EventLog
from sensors.eventlog_memory import MemoryEventLog
from sensors.events import Event, EventContext
from workflows.errors import NotFound, Unavailable

T0 = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def event(event_id: str = "e1", *, source: str = "github", data: Any = None) -> Event:
    return Event(
        context=EventContext(id=event_id, source=source, type="push", subject="push", time=T0),
        data=data if data is not None else {"body": {"ref": "refs/heads/main", "msg": "fix \"it\"\n{{x}} $(rm)"}},
        event_source_name=source,
        event_name="push",
    )


@pytest.fixture(params=["sqlite", "memory"])
async def elog(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventLog]:
    if request.param == "memory":
        yield MemoryEventLog()
        return
    opened = await SqliteEventLog.open(tmp_path / "events.db", clock=lambda: T0)
    try:
        yield opened
    finally:
        await opened.close()


async def test_append_round_trips_the_event(elog: EventLog) -> None:
    """What comes back from get is the event that went in, data intact."""
    stored, created = await elog.append(event(), source_kind="github", delivery_id="d1", received_at=T0)
    assert created
    got = await elog.get("e1")
    assert got.seq == stored.seq
    assert got.event == event()
    assert (got.source_kind, got.delivery_id, got.received_at, got.dispatched) == ("github", "d1", T0, False)


async def test_redelivery_returns_the_original(elog: EventLog) -> None:
    """Same source and delivery id: no second record, the first one comes back."""
    first, _ = await elog.append(event("e1"), source_kind="github", delivery_id="d1", received_at=T0)
    again, created = await elog.append(event("e2"), source_kind="github", delivery_id="d1",
                                       received_at=T0 + timedelta(seconds=5))
    assert not created
    assert again.seq == first.seq
    assert again.event.context.id == "e1"
    assert [e.seq for e in await elog.pending()] == [first.seq]


async def test_dedupe_is_per_source_and_skips_missing_ids(elog: EventLog) -> None:
    """Another source may reuse a delivery id; events without one are never deduplicated."""
    _, a = await elog.append(event("e1", source="github"), source_kind="github", delivery_id="d1", received_at=T0)
    _, b = await elog.append(event("e2", source="gitea"), source_kind="gitea", delivery_id="d1", received_at=T0)
    _, c = await elog.append(event("e3"), source_kind="calendar", delivery_id=None, received_at=T0)
    _, d = await elog.append(event("e4"), source_kind="calendar", delivery_id=None, received_at=T0)
    assert (a, b, c, d) == (True, True, True, True)


async def test_pending_until_dispatched(elog: EventLog) -> None:
    """pending is oldest first, honours limit and forgets dispatched events."""
    seqs = [(await elog.append(event(f"e{i}"), source_kind="github", delivery_id=f"d{i}", received_at=T0))[0].seq
            for i in range(3)]
    assert [e.seq for e in await elog.pending()] == seqs
    assert [e.seq for e in await elog.pending(limit=2)] == seqs[:2]
    await elog.mark_dispatched(seqs[0])
    assert [e.seq for e in await elog.pending()] == seqs[1:]
    assert (await elog.get("e0")).dispatched


async def test_audit_entries_keep_their_order(elog: EventLog) -> None:
    """Audit facts come back in the order they were recorded, with their JSON detail."""
    stored, _ = await elog.append(event(), source_kind="github", delivery_id="d1", received_at=T0)
    kinds = ["received", "filter", "submitted", "status-reported", "filter"]
    for i, kind in enumerate(kinds):
        await elog.audit(stored.seq, AuditEntry(at=T0 + timedelta(seconds=i), kind=kind,
                                                detail={"i": i, "sensor": "ci", "reasons": ["a", "b"]}))
    got = await elog.get("e1")
    assert [a.kind for a in got.audit] == kinds
    assert [a.detail["i"] for a in got.audit] == list(range(5))
    assert got.audit[2].at == T0 + timedelta(seconds=2)
    assert got.audit[0].detail["reasons"] == ["a", "b"]
    assert [a.kind for a in (await elog.pending())[0].audit] == kinds


async def test_list_pages_newest_first(elog: EventLog) -> None:
    """before_seq = the last seq of a page gives the next page, until empty."""
    for i in range(5):
        await elog.append(event(f"e{i}"), source_kind="github", delivery_id=f"d{i}", received_at=T0)
    page1 = await elog.list(limit=2)
    page2 = await elog.list(limit=2, before_seq=page1[-1].seq)
    page3 = await elog.list(limit=2, before_seq=page2[-1].seq)
    page4 = await elog.list(limit=2, before_seq=page3[-1].seq)
    ids = [e.event.context.id for page in (page1, page2, page3) for e in page]
    assert ids == ["e4", "e3", "e2", "e1", "e0"]
    assert list(page4) == []


async def test_get_unknown_is_not_found(elog: EventLog) -> None:
    with pytest.raises(NotFound):
        await elog.get("nope")


async def test_get_finds_the_newest_of_a_reused_id(elog: EventLog) -> None:
    """A replay may store the same context id again; get returns the newest."""
    await elog.append(event("e1"), source_kind="github", delivery_id="d1", received_at=T0)
    replayed, _ = await elog.append(event("e1"), source_kind="replay", delivery_id=None, received_at=T0)
    assert (await elog.get("e1")).seq == replayed.seq


async def test_reject_is_recorded_and_never_raises(elog: EventLog) -> None:
    await elog.reject(source_kind="github", event_source_name="github", event_name="push", delivery_id="d9",
                      reason="signature mismatch", received_at=T0)
    if isinstance(elog, SqliteEventLog):
        rows = await elog.rejections()
        assert rows[0]["reason"] == "signature mismatch"
        await elog.close()  # a closed log cannot store: reject still does not raise
        await elog.reject(source_kind="github", event_source_name="github", event_name="push",
                          delivery_id="d9", reason="x", received_at=T0)
    else:
        assert isinstance(elog, MemoryEventLog)
        assert elog.rejected[0]["reason"] == "signature mismatch"


async def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    """Events, dispatch flags and audits are on disk: a new instance sees them."""
    path = tmp_path / "events.db"
    async with await SqliteEventLog.open(path) as first:
        a, _ = await first.append(event("e1"), source_kind="github", delivery_id="d1", received_at=T0)
        b, _ = await first.append(event("e2"), source_kind="github", delivery_id="d2", received_at=T0)
        await first.mark_dispatched(a.seq)
        await first.audit(b.seq, AuditEntry(at=T0, kind="filter", detail={"sensor": "ci"}))
    async with await SqliteEventLog.open(path) as second:
        assert [e.seq for e in await second.pending()] == [b.seq]
        assert (await second.pending())[0].audit[0].detail == {"sensor": "ci"}
        _, created = await second.append(event("e1"), source_kind="github", delivery_id="d1", received_at=T0)
        assert not created


async def test_sqlite_errors_become_unavailable(tmp_path: Path) -> None:
    """A path that cannot hold a database, and a closed log, both answer Unavailable (-> 503)."""
    with pytest.raises(Unavailable):
        await SqliteEventLog.open(tmp_path / "missing-dir" / "events.db")
    closed = await SqliteEventLog.open(tmp_path / "events.db")
    await closed.close()
    with pytest.raises(Unavailable):
        await closed.append(event(), source_kind="github", delivery_id="d1", received_at=T0)


def count_commits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the event log's transactions from now on (each write batch is one)."""
    from gittrigger import eventrows

    commits = [0]
    real = eventrows.transaction

    def counting(conn: Any, *, ops: Any) -> Any:
        commits[0] += 1
        return real(conn, ops=ops)

    monkeypatch.setattr(eventrows, "transaction", counting)
    return commits


async def test_concurrent_appends_share_transactions_and_each_gets_its_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit: appends made while a commit is in flight go into the next one together;
    each caller still gets its own event (or the original, for a redelivery in the same batch)."""
    log = await SqliteEventLog.open(tmp_path / "events.db")
    commits = count_commits(monkeypatch)
    try:
        answers = await asyncio.gather(*(
            log.append(event(f"e{i}"), source_kind="github", delivery_id=f"d{i % 40}", received_at=T0)
            for i in range(50)))
    finally:
        await log.close()
    created = [stored.event.context.id for stored, new in answers if new]
    assert created == [f"e{i}" for i in range(40)]  # d0..d9 arrive twice: the second is a redelivery
    for i, (stored, new) in enumerate(answers[40:], start=40):
        assert not new and stored.event.context.id == f"e{i - 40}" and stored.seq == answers[i - 40][0].seq
    assert len({stored.seq for stored, _ in answers}) == 40
    assert 1 <= commits[0] < 50  # not one transaction per delivery


async def test_audits_marks_and_rejections_share_the_group_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher's bookkeeping rides the same transactions as the deliveries: 120 writes of
    four kinds made at once take far fewer than 120 commits, and every one of them lands."""
    log = await SqliteEventLog.open(tmp_path / "events.db", clock=lambda: T0)
    stored = [s for s, _ in await asyncio.gather(*(
        log.append(event(f"e{i}"), source_kind="github", delivery_id=f"d{i}", received_at=T0) for i in range(30)))]
    commits = count_commits(monkeypatch)
    try:
        await asyncio.gather(
            *(log.audit(s.seq, AuditEntry(at=T0, kind="filter", detail={"sensor": "ci", "n": s.seq})) for s in stored),
            *(log.mark_dispatched(s.seq) for s in stored[:15]),
            *(log.append(event(f"x{i}"), source_kind="github", delivery_id=f"x{i}", received_at=T0)
              for i in range(30)),
            *(log.reject(source_kind="github", event_source_name="github", event_name="push", delivery_id=f"r{i}",
                         reason="bad signature", received_at=T0) for i in range(45)))
        assert 1 <= commits[0] <= 5  # one per write before: 90 of them
        monkeypatch.undo()
        pending = await log.pending(limit=1000)
    finally:
        await log.close()
    assert [p.seq for p in pending][:15] == [s.seq for s in stored[15:]]
    assert len(pending) == 15 + 30
    assert all(p.audit[0].detail == {"sensor": "ci", "n": p.seq} for p in pending[:15])
    async with await SqliteEventLog.open(tmp_path / "events.db") as reopened:
        assert len(await reopened.rejections(limit=100)) == 45


async def test_pending_hands_back_appended_events_equal_to_their_stored_json(tmp_path: Path) -> None:
    """pending() parses events from their stored JSON: equal to what the edge appended, in this
    process and in a restarted one."""
    path = tmp_path / "events.db"
    data = {"body": {"ref": "refs/heads/main", "n": 1.5, "ok": True, "none": None, "list": [1, "2", {"a": []}]},
            "headers": {"X-Github-Event": ["push"]}, "metadata": {"team": "ci"}}
    async with await SqliteEventLog.open(path) as first:
        await first.append(event("e1", data=data), source_kind="github", delivery_id="d1", received_at=T0)
        mine = await first.pending()
    async with await SqliteEventLog.open(path) as second:
        parsed = await second.pending()
    assert mine[0].event == parsed[0].event == event("e1", data=data)


async def test_a_failed_group_commit_fails_every_caller_in_it(tmp_path: Path) -> None:
    log = await SqliteEventLog.open(tmp_path / "events.db")
    await log.close()
    results = await asyncio.gather(*(
        log.append(event(f"e{i}"), source_kind="github", delivery_id=f"d{i}", received_at=T0) for i in range(5)),
        return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results)


CHILD = textwrap.dedent("""
    import asyncio, sys, time
    from datetime import UTC, datetime
    from gittrigger.eventlog import SqliteEventLog
    from sensors.events import Event

    async def main() -> None:
        log = await SqliteEventLog.open(sys.argv[1])
        text = sys.stdin.read()
        stored, created = await log.append(Event.from_json(text), source_kind="github",
                                           delivery_id="crash-1", received_at=datetime.now(UTC))
        print(stored.seq, created, flush=True)
        time.sleep(60)  # killed here: appended and acknowledged, never dispatched

    asyncio.run(main())
""")


async def test_sigkill_after_append_leaves_the_event_pending(tmp_path: Path) -> None:
    """A writer killed between append and mark_dispatched: after reopen the event is pending."""
    path = tmp_path / "events.db"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(event("crash").to_cloudevent_json())
        proc.stdin.close()
        line = proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert line.split() == ["1", "True"]
    assert proc.returncode == -signal.SIGKILL
    async with await SqliteEventLog.open(path) as reopened:
        pending = await reopened.pending()
        assert [(e.seq, e.event) for e in pending] == [(1, event("crash"))]
        _, created = await reopened.append(event("crash"), source_kind="github", delivery_id="crash-1",
                                           received_at=T0)
        assert not created


async def test_checkpoints_run_beside_the_writer_not_inside_a_commit(tmp_path: Path) -> None:
    """Automatic checkpoints are off on the writer; after CHECKPOINT_WRITES writes the log copies
    the WAL into the database on its own connection, so the file grows without a commit doing it."""
    from gittrigger import eventlog

    path = tmp_path / "events.db"
    log = await SqliteEventLog.open(path)
    try:
        def autocheckpoint(conn: Any) -> int:
            return int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

        assert await log._run(autocheckpoint) == 0
        before = path.stat().st_size
        for start in range(0, eventlog.CHECKPOINT_WRITES + 50, 50):
            await asyncio.gather(*(log.append(event(f"e{i}"), source_kind="github", delivery_id=f"d{i}",
                                              received_at=T0) for i in range(start, start + 50)))
        assert log._checkpointer is not None
        await log._checkpointer
        assert path.stat().st_size > before + 100_000  # the events' pages reached the database file
    finally:
        await log.close()
    async with await SqliteEventLog.open(path) as reopened:
        assert len(await reopened.pending(limit=5000)) == eventlog.CHECKPOINT_WRITES + 50


# One batch of appends (made in one turn of the loop: one transaction, one multi-row INSERT).
# Each item is (event id, source, delivery id); "stored" were appended in an earlier batch.
BATCHES = [
    pytest.param([], [("a", "gh", "d1"), ("b", "gh", "d2"), ("c", "gh", "d3")], id="all-new"),
    pytest.param([], [("a", "gh", None), ("b", "gh", None)], id="no-delivery-ids-never-collide"),
    pytest.param([("a", "gh", "d1")], [("b", "gh", "d2"), ("a2", "gh", "d1"), ("c", "gh", "d3")],
                 id="redelivery-of-a-stored-event"),
    pytest.param([], [("a", "gh", "d1"), ("b", "gh", "d2"), ("a2", "gh", "d1")], id="redelivery-in-the-same-batch"),
    pytest.param([], [("a", "gh", "d1"), ("b", "gl", "d1")], id="same-delivery-id-other-source"),
    pytest.param([("x", "gh", "d9")], [("a", "gh", None), ("x2", "gh", "d9"), ("b", "gh", None), ("a", "gh", None)],
                 id="null-ids-beside-a-duplicate"),
    pytest.param([("x", "gh", "d9")], [("a", "gh", "d1"), ("b", "gh", "d1"), ("c", "gh", "d1"), ("x2", "gh", "d9")],
                 id="three-of-one-delivery"),
]


@pytest.mark.parametrize("chunk", [500, 2])
@pytest.mark.parametrize(("before", "batch"), BATCHES)
async def test_a_batch_of_appends_answers_each_like_one_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, before: list[tuple[str, str, str | None]],
        batch: list[tuple[str, str, str | None]], chunk: int) -> None:
    """Every append of a batch gets what it would alone: created with the seq its row really has,
    or (a redelivery, also of one earlier in the same batch) the stored original. ``chunk`` 2
    splits the batch across several INSERT statements."""
    from gittrigger import eventrows

    monkeypatch.setattr(eventrows, "INSERT_CHUNK", chunk)
    log = await SqliteEventLog.open(tmp_path / "events.db")
    try:
        for event_id, source, delivery in before:
            await log.append(event(event_id, source=source), source_kind="github", delivery_id=delivery,
                             received_at=T0)
        commits = count_commits(monkeypatch)
        answers = await asyncio.gather(*(
            log.append(event(event_id, source=source), source_kind="github", delivery_id=delivery, received_at=T0)
            for event_id, source, delivery in batch))
        assert commits[0] == 1
        rows = {stored.seq: stored for stored in await log.list(limit=100)}
    finally:
        await log.close()
    first_of: dict[tuple[str, str], str] = {(s, d): e for e, s, d in before if d is not None}
    last_seq, created_count = len(before), 0
    for (event_id, source, delivery), (stored, created) in zip(batch, answers, strict=True):
        original = first_of.get((source, delivery)) if delivery is not None else None
        if original is None:  # new rows take rising seqs (an ignored duplicate may use one up)
            assert created and stored.seq > last_seq and stored.event.context.id == event_id
            last_seq, created_count = stored.seq, created_count + 1
            if delivery is not None:
                first_of[(source, delivery)] = event_id
        else:
            assert not created and stored.event.context.id == original
        assert rows[stored.seq].event == stored.event  # the seq answered is the row's own
    assert len(rows) == len(before) + created_count


async def test_a_locked_database_delays_the_batch_but_not_the_loop(tmp_path: Path) -> None:
    """Another connection holding the write lock (an operator's sqlite3 shell): the commit waits
    for it in a thread, the event loop keeps running, and the append lands once the lock is gone."""
    path = tmp_path / "events.db"
    log = await SqliteEventLog.open(path, busy_timeout_s=10)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        append = asyncio.create_task(log.append(event(), source_kind="github", delivery_id="d1", received_at=T0))
        started = asyncio.get_running_loop().time()
        for _ in range(10):
            await asyncio.sleep(0.02)
        assert asyncio.get_running_loop().time() - started < 2  # the loop was never held for the lock
        assert not append.done()
        other.execute("COMMIT")
        stored, created = await asyncio.wait_for(append, 10)
        assert created and (await log.get("e1")).seq == stored.seq
        # the writer is back to never waiting on the loop: the next append commits there
        _, created = await log.append(event("e2"), source_kind="github", delivery_id="d2", received_at=T0)
        assert created
    finally:
        other.close()
        await log.close()


async def test_a_lock_held_past_the_busy_timeout_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    log = await SqliteEventLog.open(path, busy_timeout_s=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(Unavailable, match=r"locked by another connection for 0\.2 s"):
            await log.append(event(), source_kind="github", delivery_id="d1", received_at=T0)
        other.execute("ROLLBACK")
        _, created = await log.append(event(), source_kind="github", delivery_id="d1", received_at=T0)
        assert created  # nothing of the failed batch was kept
    finally:
        other.close()
        await log.close()


async def test_an_append_is_answered_and_dispatchable_only_after_the_wal_fsync(tmp_path: Path) -> None:
    """The batch is committed on the loop, then fsynced by the helper: until that fsync returns the
    caller has no answer (no 2xx) and pending() does not offer the event to the dispatcher, though
    the audit API can already read its row."""
    log = await SqliteEventLog.open(tmp_path / "events.db")
    assert log._fsyncer is not None
    gate = asyncio.Event()
    synced: list[float] = []
    real_fsync = log._fsyncer.fsync

    async def held_fsync() -> float:
        await gate.wait()
        synced.append(await real_fsync())
        return synced[-1]

    log._fsyncer.fsync = held_fsync  # type: ignore[method-assign]
    try:
        append = asyncio.create_task(log.append(event(), source_kind="github", delivery_id="d1", received_at=T0))
        for _ in range(200):
            if await log.list():
                break
            await asyncio.sleep(0.01)
        assert [s.event.context.id for s in await log.list()] == ["e1"]  # committed
        assert not append.done() and await log.pending() == []  # not durable yet
        gate.set()
        stored, created = await asyncio.wait_for(append, 10)
        assert created and synced and synced[0] >= 0
        assert [p.seq for p in await log.pending()] == [stored.seq]
    finally:
        gate.set()
        await log.close()


async def test_a_failed_fsync_answers_unavailable_and_the_redelivery_finds_the_event(tmp_path: Path) -> None:
    """fsync fails: every caller of the batch gets Unavailable (503, the host retries). The rows
    were committed, so the retry is a redelivery answered with the original, and the event is
    dispatched once a later fsync succeeds."""
    log = await SqliteEventLog.open(tmp_path / "events.db")
    assert log._fsyncer is not None
    real_fsync = log._fsyncer.fsync
    failing = [True]

    async def flaky_fsync() -> float:
        if failing[0]:
            raise OSError(5, "Input/output error")
        return await real_fsync()

    log._fsyncer.fsync = flaky_fsync  # type: ignore[method-assign]
    try:
        with pytest.raises(Unavailable, match="fsync: Input/output error"):
            await log.append(event(), source_kind="github", delivery_id="d1", received_at=T0)
        assert await log.pending() == []
        failing[0] = False
        stored, created = await log.append(event("e1-again"), source_kind="github", delivery_id="d1", received_at=T0)
        assert not created and stored.event.context.id == "e1"
        assert [p.event.context.id for p in await log.pending()] == ["e1"]
    finally:
        await log.close()


async def test_a_killed_fsync_helper_is_replaced_and_the_batch_still_answered(tmp_path: Path) -> None:
    """SIGKILL the helper process: the next batch's fsync starts another one and retries, so the
    delivery is answered normally (fsync is idempotent); the old process is gone."""
    log = await SqliteEventLog.open(tmp_path / "events.db")
    assert log._fsyncer is not None
    try:
        await log.append(event("e0"), source_kind="github", delivery_id="d0", received_at=T0)
        first = log._fsyncer.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await asyncio.sleep(0.05)
        _, created = await log.append(event(), source_kind="github", delivery_id="d1", received_at=T0)
        assert created and log._fsyncer.pid not in (None, first)
        assert [p.event.context.id for p in await log.pending()] == ["e0", "e1"]
    finally:
        await log.close()


async def test_events_stored_before_a_restart_are_pending_at_once(tmp_path: Path) -> None:
    """What is in the file when the log opens is durable: pending() offers it before any new write."""
    path = tmp_path / "events.db"
    async with await SqliteEventLog.open(path) as first:
        for i in range(3):
            await first.append(event(f"e{i}"), source_kind="github", delivery_id=f"d{i}", received_at=T0)
    async with await SqliteEventLog.open(path) as second:
        assert [p.event.context.id for p in await second.pending()] == ["e0", "e1", "e2"]
