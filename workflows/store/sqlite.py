"""
The SQLite store (the default): runs, objects, logs, the memo cache and the artifact index in one
WAL file.

Implements :class:`~workflows.store.base.WorkflowStore`, ``ObjectStore``, ``LogStore``,
``MemoCache`` and ``ArtifactIndex`` with the semantics of :mod:`.memory` (both use :mod:`.objects`). Opened by the
process runtime (``await SqliteStore.open(path)`` ... ``await store.close()``, or ``async with``).

Threads: every call runs in ``asyncio.to_thread`` on a connection owned by that worker thread
(one per thread, made on first use, all closed by :meth:`SqliteStore.close`). WAL lets those
readers run beside a writer; writers take the lock up front (``BEGIN IMMEDIATE``), so a
compare-and-swap never has to upgrade a read lock (which SQLite answers with an immediate
"database is locked" instead of waiting). Other processes may open the same file; waits for the
lock are bounded by ``busy_timeout_s``, after which :class:`Unavailable` is raised. sqlite3
exceptions never leave this module: each becomes :class:`Unavailable`.

Durability: WAL with ``synchronous=NORMAL`` (the default here) keeps every committed transaction
across a crash of the process (SIGKILL included) but not across power loss or an OS crash,
where the last commits may roll back. Pass ``synchronous="FULL"`` where an acknowledged write
must survive power loss too (event deliveries).

Layout: a run's head (the object without ``status.nodes``) is one ``workflows`` row; each node
is one ``nodes`` row, so :meth:`update` writes only the nodes named in ``changed_nodes`` and a
pass that changed 2 of 10,000 nodes writes 2 rows. Log lines are buffered by :meth:`append` and
written in one transaction by :meth:`flush`, which a background task owned by the store also
calls every ``flush_interval_s`` or ``flush_lines`` lines. The ``artifacts`` table indexes the
output artifacts of Pod nodes (:func:`~workflows.store.base.node_artifacts`), written in the same
transaction as the nodes that name them, so it never disagrees with ``status.nodes``.

Schema changes are additive: every statement of :data:`_SCHEMA` is ``IF NOT EXISTS``, so a database
made by an older version opens and gains the new tables; a table that needs filling from existing
rows is backfilled once, when it is created (the artifact index, from the stored nodes).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final, Self, TypeVar

import structlog

from workflows.errors import AlreadyExists, Conflict, InvalidSpec, NotFound, Unavailable, WorkflowError
from workflows.executors.base import LogLine
from workflows.store import objects
from workflows.store.base import Artifact, IndexedArtifact, ListOptions, Page, RawObject, node_artifacts

T = TypeVar("T")
log = structlog.get_logger(__name__)

SYNCHRONOUS_LEVELS: Final = ("OFF", "NORMAL", "FULL", "EXTRA")
_CHUNK: Final = 500  # host parameters per IN (...) query, below every SQLite build's limit
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('version', 0);
CREATE TABLE IF NOT EXISTS workflows (
    namespace TEXT NOT NULL, name TEXT NOT NULL, uid TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL, seq INTEGER NOT NULL, version INTEGER NOT NULL,
    phase TEXT NOT NULL, labels TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (namespace, name));
CREATE INDEX IF NOT EXISTS workflows_order ON workflows (created DESC, seq DESC);
CREATE INDEX IF NOT EXISTS workflows_ns_order ON workflows (namespace, created DESC, seq DESC);
CREATE TABLE IF NOT EXISTS nodes (
    workflow_uid TEXT NOT NULL, node_id TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (workflow_uid, node_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name));
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL, workflow TEXT NOT NULL,
    pod_name TEXT NOT NULL, container TEXT NOT NULL, time TEXT NOT NULL, time_us INTEGER NOT NULL,
    content TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS logs_by_run ON logs (namespace, workflow, id);
CREATE TABLE IF NOT EXISTS memo (
    cache TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (cache, key));
CREATE TABLE IF NOT EXISTS artifacts (
    workflow_uid TEXT NOT NULL, node_id TEXT NOT NULL, name TEXT NOT NULL, namespace TEXT NOT NULL,
    workflow TEXT NOT NULL, key TEXT NOT NULL, size INTEGER, created TEXT NOT NULL,
    PRIMARY KEY (workflow_uid, node_id, name)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS artifacts_by_key ON artifacts (key, workflow_uid);
"""
_INDEX_COLUMNS: Final = "namespace, workflow, workflow_uid, node_id, name, key, size, created"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _bump(conn: sqlite3.Connection) -> int:
    """Increment the store-wide version inside the caller's write transaction."""
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
    return int(conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])


@contextmanager
def _transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[None]:
    """A transaction; a write one takes the write lock at BEGIN (see the module docstring)."""
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _load_nodes(conn: sqlite3.Connection, uids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Nodes of several runs, by workflow uid, in as few queries as the parameter limit allows."""
    out: dict[str, dict[str, Any]] = {uid: {} for uid in uids}
    for i in range(0, len(uids), _CHUNK):
        chunk = uids[i : i + _CHUNK]
        rows = conn.execute(
            "SELECT workflow_uid, node_id, body FROM nodes"
            f" WHERE workflow_uid IN ({','.join('?' * len(chunk))}) ORDER BY workflow_uid, node_id",
            chunk,
        )
        for uid, node_id, body in rows:
            out[uid][node_id] = objects.loads(body)
    return out


def _index_artifacts(conn: sqlite3.Connection, *, uid: str, namespace: str, name: str,
                     artifacts: Sequence[Artifact], nodes: Collection[str], created: str) -> None:
    """Replace the index rows of ``nodes`` of one run by ``artifacts`` (inside the caller's transaction)."""
    if nodes:
        conn.executemany("DELETE FROM artifacts WHERE workflow_uid = ? AND node_id = ?", [(uid, n) for n in nodes])
    if artifacts:
        conn.executemany(
            f"INSERT OR REPLACE INTO artifacts ({_INDEX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
            [(namespace, name, uid, node_id, art, key, created) for node_id, art, key in artifacts],
        )


def _backfill_artifacts(conn: sqlite3.Connection, *, created: str) -> None:
    """Index the artifacts of runs stored before the index existed (once, when the table is made)."""
    runs = {uid: (ns, name) for uid, ns, name in conn.execute("SELECT uid, namespace, name FROM workflows")}
    rows = conn.execute("SELECT workflow_uid, node_id, body FROM nodes WHERE body LIKE '%\"artifacts\"%'")
    for uid, node_id, body in rows.fetchall():
        if uid in runs:
            found = node_artifacts(node_id, objects.loads(body))
            _index_artifacts(conn, uid=uid, namespace=runs[uid][0], name=runs[uid][1], artifacts=found, nodes=(),
                             created=created)


def _indexed(row: Sequence[Any]) -> IndexedArtifact:
    ns, wf, uid, node_id, name, key, size, created = row
    return IndexedArtifact(namespace=ns, workflow=wf, workflow_uid=uid, node_id=node_id, name=name, key=key,
                           size=size, created=datetime.fromisoformat(created))


class SqliteStore:
    """The SQLite-backed store. Build it with :meth:`open`; end it with :meth:`close`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "NORMAL",
        busy_timeout_s: float = 5.0,
        flush_interval_s: float = 0.2,
        flush_lines: int = 500,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if synchronous.upper() not in SYNCHRONOUS_LEVELS:
            raise InvalidSpec("synchronous", f"must be one of {', '.join(SYNCHRONOUS_LEVELS)}")
        for option, value in (("busy_timeout_s", busy_timeout_s), ("flush_interval_s", flush_interval_s),
                              ("flush_lines", flush_lines)):
            if not value > 0:
                raise InvalidSpec(option, f"must be positive, got {value}")
        self.path = os.fspath(path)
        self._synchronous = synchronous.upper()
        self._busy_timeout_s = busy_timeout_s
        self._flush_interval_s = flush_interval_s
        self._flush_lines = flush_lines
        self._clock = clock
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        self._closing = False  # close() began: the flusher ends, append() refuses lines
        self._buffer: list[LogLine] = []
        self._flush_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "NORMAL",
        busy_timeout_s: float = 5.0,
        flush_interval_s: float = 0.2,
        flush_lines: int = 500,
        clock: Callable[[], datetime] = _utcnow,
    ) -> SqliteStore:
        """Open (creating if needed) the database at ``path`` and start the log flusher.

        Raises Unavailable when the file cannot be opened or written.
        """
        store = cls(
            path, synchronous=synchronous, busy_timeout_s=busy_timeout_s,
            flush_interval_s=flush_interval_s, flush_lines=flush_lines, clock=clock,
        )
        try:
            await store._run(store._init_schema)
        except BaseException:
            store._close_connections()
            raise
        store._flusher = asyncio.create_task(store._flush_loop(), name=f"log flusher for {store.path}")
        return store

    async def close(self) -> None:
        """Stop the flusher, write the buffered log lines and close every connection.

        Call it once no other call on the store is in flight. Idempotent.
        """
        if self._closed:
            return
        try:
            if self._flusher is not None:
                self._closing = True
                self._wake.set()
                await self._flusher
            await self.flush()
        finally:
            self._closed = True
            self._close_connections()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- connections -----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")  # per connection in SQLite
        except BaseException:
            conn.close()
            raise
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            with self._conns_lock:
                if self._closed:
                    conn.close()
                    raise Unavailable(f"sqlite store {self.path} is closed")
                self._conns.append(conn)
            self._local.conn = conn
        return conn

    def _close_connections(self) -> None:
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error as e:
                log.warning("sqlite close failed", error=str(e))

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._conn())
        except sqlite3.Error as e:
            raise Unavailable(f"sqlite store {self.path}: {e}") from e

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise Unavailable(f"sqlite store {self.path} is closed")
        return await asyncio.to_thread(self._call, fn)

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise Unavailable(f"sqlite store {self.path}: cannot switch to WAL (journal_mode={mode})")
        with _transaction(conn, write=True):
            indexed = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'artifacts'").fetchone()
            # statement by statement: executescript() would COMMIT our transaction first
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if not indexed:
                _backfill_artifacts(conn, created=self._clock().isoformat())

    # -- WorkflowStore ---------------------------------------------------------------------

    async def create(self, workflow: RawObject) -> RawObject:
        """Store a new run; see :meth:`WorkflowStore.create`."""
        ident = objects.identity(workflow)
        ns = ident.namespace
        assert ns is not None
        head, nodes = objects.split_nodes(workflow)
        head = objects.copy_json(head)
        rows = sorted((node_id, objects.dumps(node)) for node_id, node in (nodes or {}).items())
        arts = [a for node_id, node in (nodes or {}).items() for a in node_artifacts(node_id, node)]
        now = self._clock()

        def insert(conn: sqlite3.Connection) -> str:
            with _transaction(conn, write=True):
                for _ in range(objects.GENERATE_ATTEMPTS):
                    name = objects.candidate_name(ident)
                    taken = conn.execute(
                        "SELECT 1 FROM workflows WHERE namespace = ? AND name = ?", (ns, name)
                    ).fetchone()
                    if not taken:
                        break
                    if ident.name is not None:
                        raise AlreadyExists("workflow", name)
                else:
                    raise AlreadyExists("workflow", f"{ns}/{ident.generate_name}*")
                version = _bump(conn)
                meta = objects.stamp(head, namespace=ns, name=name, version=version, now=now)["metadata"]
                body = objects.dumps(head)
                conn.execute(
                    "INSERT INTO workflows (namespace, name, uid, created, seq, version, phase, labels, body)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (ns, name, meta["uid"], meta["creationTimestamp"], version, version,
                     objects.phase_of(head), objects.dumps(objects.labels_of(head)), body),
                )
                conn.executemany(
                    "INSERT INTO nodes (workflow_uid, node_id, body) VALUES (?, ?, ?)",
                    [(meta["uid"], node_id, node) for node_id, node in rows],
                )
                _index_artifacts(conn, uid=meta["uid"], namespace=ns, name=name, artifacts=arts, nodes=(),
                                 created=now.isoformat())
                return body

        body = await self._run(insert)
        return objects.join_nodes(objects.loads(body), {node_id: objects.loads(node) for node_id, node in rows})

    async def get(self, namespace: str, name: str) -> RawObject:
        """The stored run with its nodes; raises NotFound."""

        def select(conn: sqlite3.Connection) -> RawObject:
            with _transaction(conn, write=False):
                row = conn.execute(
                    "SELECT uid, body FROM workflows WHERE namespace = ? AND name = ?", (namespace, name)
                ).fetchone()
                if row is None:
                    raise NotFound("workflow", f"{namespace}/{name}")
                nodes = conn.execute(
                    "SELECT node_id, body FROM nodes WHERE workflow_uid = ? ORDER BY node_id", (row[0],)
                )
                return objects.join_nodes(objects.loads(row[1]), {n: objects.loads(b) for n, b in nodes})

        return await self._run(select)

    async def phase_counts(self) -> Mapping[str, int]:
        """One indexed GROUP BY, not a load of every run."""

        def count(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute("SELECT phase, count(*) FROM workflows GROUP BY phase").fetchall()
            return {str(p): int(n) for p, n in rows}

        return await self._run(count)

    async def list(self, namespace: str | None, options: ListOptions | None = None) -> Page:
        """Runs newest first, filtered and paged as :class:`ListOptions` says.

        Namespace, phase, name prefix and the cursor are filtered in SQL; labels in Python on
        the labels column, so only the heads of matching runs are parsed, and their nodes are
        fetched in one query per 500 runs.
        """
        options = options or ListOptions()
        limit = objects.check_options(options)
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if namespace is not None:
            where.append("namespace = ?")
            params.append(namespace)
        if options.continue_token:
            created, seq = objects.decode_continue(options.continue_token)
            where.append("(created < ? OR (created = ? AND seq < ?))")
            params += [created, created, seq]
        if options.phases is not None:
            phases = list(options.phases)
            where.append(f"phase IN ({','.join('?' * len(phases))})" if phases else "0")
            params += phases
        if options.name_prefix:
            where.append("substr(name, 1, ?) = ?")  # not LIKE: names may hold % and _
            params += [len(options.name_prefix), options.name_prefix]
        sql = (
            f"SELECT name, uid, created, seq, phase, labels, body FROM workflows WHERE {' AND '.join(where)}"
            " ORDER BY created DESC, seq DESC"
        )

        def select(conn: sqlite3.Connection) -> Page:
            with _transaction(conn, write=False):
                version = _version(conn)
                picked: list[tuple[str, str, int, str]] = []
                more = False
                for name, uid, created, seq, phase, labels, body in conn.execute(sql, params):
                    labels = objects.loads(labels)
                    if not objects.matches(name=name, labels=labels, phase=phase, options=options):
                        continue
                    if limit is not None and len(picked) == limit:
                        more = True
                        break
                    picked.append((uid, created, seq, body))
                nodes = _load_nodes(conn, [uid for uid, _, _, _ in picked])
            items = [objects.join_nodes(objects.loads(body), nodes[uid]) for uid, _, _, body in picked]
            token = objects.encode_continue(picked[-1][1], picked[-1][2]) if more else None
            return Page(items=items, continue_token=token, resource_version=str(version))

        return await self._run(select)

    async def update(
        self,
        workflow: RawObject,
        *,
        expected_version: str,
        changed_nodes: Collection[str] | None = None,
    ) -> RawObject:
        """Compare-and-swap on resourceVersion, writing only ``changed_nodes`` (all when None).

        The returned run shares the caller's spec, status and node dicts (the store keeps none of
        them), so a pass that changed 2 of 10,000 nodes stays O(changed) and nothing written is
        parsed back.
        """
        ident = objects.identity(workflow)
        if ident.name is None:
            raise InvalidSpec("metadata.name", "is required to update a run")
        ns, name = ident.namespace, ident.name
        assert ns is not None
        given_head, given = objects.split_nodes(workflow)
        # Only metadata is written to here (stamp), so a shallow copy keeps the caller's object
        # untouched without a JSON round trip of the whole spec on every status write.
        head = {**given_head, "metadata": dict(given_head.get("metadata") or {})}
        given = given or {}
        ids = list(given) if changed_nodes is None else list(dict.fromkeys(changed_nodes))
        rows = []
        arts: list[Artifact] = []
        removed = []
        for node_id in ids:
            node = given.get(node_id)
            if node is None:
                removed.append(node_id)
                continue
            rows.append((node_id, objects.dumps(node)))
            if "outputs" in node:  # the index: nodes without outputs cost this one lookup
                arts += node_artifacts(node_id, node)
        now = self._clock()

        def write(conn: sqlite3.Connection) -> str:
            with _transaction(conn, write=True):
                row = conn.execute(
                    "SELECT uid, created, version FROM workflows WHERE namespace = ? AND name = ?", (ns, name)
                ).fetchone()
                if row is None:
                    raise NotFound("workflow", f"{ns}/{name}")
                uid, created, stored = row
                if str(stored) != expected_version:
                    raise Conflict(
                        f"workflow {ns}/{name}: resourceVersion is {stored}, not {expected_version}"
                    )
                version = _bump(conn)
                objects.stamp(
                    head, namespace=ns, name=name, version=version, uid=uid, created=created, now=now
                )
                body = objects.dumps(head)
                conn.execute(
                    "UPDATE workflows SET version = ?, phase = ?, labels = ?, body = ? WHERE uid = ?",
                    (version, objects.phase_of(head), objects.dumps(objects.labels_of(head)), body, uid),
                )
                if changed_nodes is None:
                    conn.execute("DELETE FROM nodes WHERE workflow_uid = ?", (uid,))
                    conn.execute("DELETE FROM artifacts WHERE workflow_uid = ?", (uid,))
                else:
                    conn.executemany(
                        "DELETE FROM nodes WHERE workflow_uid = ? AND node_id = ?",
                        [(uid, n) for n in removed],
                    )
                conn.executemany(
                    "INSERT OR REPLACE INTO nodes (workflow_uid, node_id, body) VALUES (?, ?, ?)",
                    [(uid, node_id, node) for node_id, node in rows],
                )
                if arts or removed:
                    # A node's rows are replaced as a whole: an artifact it no longer names goes.
                    touched = removed + list(dict.fromkeys(n for n, _, _ in arts)) if changed_nodes is not None else ()
                    _index_artifacts(conn, uid=uid, namespace=ns, name=name, artifacts=arts, nodes=touched,
                                     created=now.isoformat())
                return body

        await self._run(write)
        return objects.join_nodes(head, given)

    async def delete(self, namespace: str, name: str) -> None:
        """Delete a run with its nodes and logs; raises NotFound."""
        await self.flush()  # else buffered lines of this run would land after the delete

        def remove(conn: sqlite3.Connection) -> None:
            with _transaction(conn, write=True):
                row = conn.execute(
                    "SELECT uid FROM workflows WHERE namespace = ? AND name = ?", (namespace, name)
                ).fetchone()
                if row is None:
                    raise NotFound("workflow", f"{namespace}/{name}")
                conn.execute("DELETE FROM nodes WHERE workflow_uid = ?", row)
                conn.execute("DELETE FROM artifacts WHERE workflow_uid = ?", row)
                conn.execute("DELETE FROM workflows WHERE uid = ?", row)
                conn.execute("DELETE FROM logs WHERE namespace = ? AND workflow = ?", (namespace, name))
                _bump(conn)

        await self._run(remove)

    # -- ObjectStore -----------------------------------------------------------------------

    async def put_object(self, kind: str, obj: RawObject, *, create: bool = False) -> RawObject:
        """Create or replace an object; with ``create`` an existing name raises AlreadyExists."""
        ident = objects.identity(obj, cluster_scoped=objects.is_cluster_scoped(kind))
        if ident.name is None and not create:
            raise InvalidSpec("metadata.name", "is required to replace an object")
        ns = ident.namespace or ""
        copy = objects.copy_json(obj)
        now = self._clock()

        def put(conn: sqlite3.Connection) -> str:
            with _transaction(conn, write=True):
                for _ in range(objects.GENERATE_ATTEMPTS):
                    name = objects.candidate_name(ident)
                    old = conn.execute(
                        "SELECT body FROM objects WHERE kind = ? AND namespace = ? AND name = ?",
                        (kind, ns, name),
                    ).fetchone()
                    if old is None or ident.name is not None:
                        break
                else:
                    raise AlreadyExists(kind, f"{ns}/{ident.generate_name}*")
                if old is not None and create:
                    raise AlreadyExists(kind, f"{ns}/{name}" if ns else name)
                meta = objects.loads(old[0])["metadata"] if old is not None else {}
                objects.stamp(
                    copy, namespace=ident.namespace, name=name, version=_bump(conn),
                    uid=meta.get("uid"), created=meta.get("creationTimestamp"), now=now,
                )
                body = objects.dumps(copy)
                conn.execute(
                    "INSERT OR REPLACE INTO objects (kind, namespace, name, body) VALUES (?, ?, ?, ?)",
                    (kind, ns, name, body),
                )
                return body

        return objects.loads(await self._run(put))  # type: ignore[no-any-return]

    async def get_object(self, kind: str, namespace: str | None, name: str) -> RawObject:
        """The stored object; raises NotFound."""

        def select(conn: sqlite3.Connection) -> str:
            row = conn.execute(
                "SELECT body FROM objects WHERE kind = ? AND namespace = ? AND name = ?",
                (kind, namespace or "", name),
            ).fetchone()
            if row is None:
                raise NotFound(kind, f"{namespace}/{name}" if namespace else name)
            return str(row[0])

        return objects.loads(await self._run(select))  # type: ignore[no-any-return]

    async def list_objects(self, kind: str, namespace: str | None) -> Sequence[RawObject]:
        """Objects of ``kind`` (in ``namespace``, or all), sorted by name then namespace."""
        sql = "SELECT body FROM objects WHERE kind = ?" + ("" if namespace is None else " AND namespace = ?")
        params = (kind,) if namespace is None else (kind, namespace)

        def select(conn: sqlite3.Connection) -> list[str]:
            return [body for (body,) in conn.execute(sql + " ORDER BY name, namespace", params)]

        return [objects.loads(body) for body in await self._run(select)]

    async def delete_object(self, kind: str, namespace: str | None, name: str) -> None:
        """Delete an object; raises NotFound."""

        def remove(conn: sqlite3.Connection) -> None:
            with _transaction(conn, write=True):
                gone = conn.execute(
                    "DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?",
                    (kind, namespace or "", name),
                ).rowcount
                if not gone:
                    raise NotFound(kind, f"{namespace}/{name}" if namespace else name)
                _bump(conn)

        await self._run(remove)

    # -- LogStore --------------------------------------------------------------------------

    def append(self, line: LogLine) -> None:
        """Buffer a line (call on the event loop thread); the flusher or :meth:`flush` writes it."""
        if self._closed or self._closing:
            raise Unavailable(f"sqlite store {self.path} is closed")
        self._buffer.append(line)
        if len(self._buffer) >= self._flush_lines:
            self._wake.set()

    async def flush(self) -> None:
        """Write every buffered line in one transaction; on failure the lines stay buffered."""
        async with self._flush_lock:  # one batch at a time, so ids follow append order
            batch, self._buffer = self._buffer, []
            if not batch:
                return
            rows = [
                (ln.namespace, ln.workflow, ln.pod_name, ln.container, ln.time.isoformat(),
                 objects.epoch_us(ln.time), ln.content)
                for ln in batch
            ]

            def insert(conn: sqlite3.Connection) -> None:
                with _transaction(conn, write=True):
                    conn.executemany(
                        "INSERT INTO logs (namespace, workflow, pod_name, container, time, time_us, content)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        rows,
                    )

            try:
                await self._run(insert)
            except WorkflowError:
                self._buffer[:0] = batch
                raise

    async def _flush_loop(self) -> None:
        """The owned background flusher: every interval, or sooner when the buffer is full."""
        while not self._closing:
            try:
                async with asyncio.timeout(self._flush_interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except WorkflowError as e:
                log.warning("log flush failed", error=str(e), lines=len(self._buffer))

    async def read(
        self,
        *,
        namespace: str,
        workflow: str,
        pod_name: str | None = None,
        container: str | None = None,
        since: datetime | None = None,
        tail: int | None = None,
        after_id: int | None = None,
    ) -> Sequence[tuple[int, LogLine]]:
        """Lines of one run in write order, filtered; ``tail`` keeps the last N. Flushes first."""
        await self.flush()
        where = ["namespace = ?", "workflow = ?"]
        params: list[Any] = [namespace, workflow]
        for column, value in (("pod_name", pod_name), ("container", container)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("time_us >= ?")
            params.append(objects.epoch_us(since))
        if after_id is not None:
            where.append("id > ?")
            params.append(after_id)
        sql = f"SELECT id, pod_name, container, time, content FROM logs WHERE {' AND '.join(where)}"
        if tail is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT ?) ORDER BY id"
            params.append(max(tail, 0))
        else:
            sql += " ORDER BY id"

        def select(conn: sqlite3.Connection) -> list[tuple[int, str, str, str, str]]:
            return conn.execute(sql, params).fetchall()

        return [
            (i, LogLine(namespace=namespace, workflow=workflow, pod_name=pod, container=ctr,
                        time=datetime.fromisoformat(t), content=content))
            for i, pod, ctr, t, content in await self._run(select)
        ]

    # -- MemoCache -------------------------------------------------------------------------

    async def memo_get(
        self, cache: str, key: str, *, max_age_seconds: float | None, now: datetime
    ) -> Mapping[str, Any] | None:
        """The entry if present and younger than ``max_age_seconds``."""

        def select(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT body FROM memo WHERE cache = ? AND key = ?", (cache, key)).fetchone()
            return None if row is None else str(row[0])

        body = await self._run(select)
        if body is None:
            return None
        entry: dict[str, Any] = objects.loads(body)
        return entry if objects.memo_fresh(entry, max_age_seconds=max_age_seconds, now=now) else None

    async def memo_put(self, cache: str, key: str, entry: Mapping[str, Any]) -> None:
        """Store or replace an entry; stamps ``creationTimestamp`` when the entry has none."""
        stored = objects.copy_json(dict(entry))
        stored.setdefault("creationTimestamp", objects.rfc3339(self._clock()))
        body = objects.dumps(stored)

        def put(conn: sqlite3.Connection) -> None:
            with _transaction(conn, write=True):
                conn.execute(
                    "INSERT OR REPLACE INTO memo (cache, key, body) VALUES (?, ?, ?)", (cache, key, body)
                )

        await self._run(put)

    # -- ArtifactIndex ---------------------------------------------------------------------

    async def indexed_artifacts(self, *, uid: str) -> Sequence[IndexedArtifact]:
        """The run's indexed artifacts, by node id then name."""

        def select(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                f"SELECT {_INDEX_COLUMNS} FROM artifacts WHERE workflow_uid = ? ORDER BY node_id, name", (uid,)
            ).fetchall()

        return [_indexed(row) for row in await self._run(select)]

    async def referenced_keys(self, keys: Collection[str], *, excluding_uid: str | None = None) -> frozenset[str]:
        """Which of ``keys`` another indexed run names (the ``artifacts_by_key`` index)."""
        wanted = sorted(set(keys))
        other = "" if excluding_uid is None else " AND workflow_uid != ?"

        def select(conn: sqlite3.Connection) -> frozenset[str]:
            found: set[str] = set()
            for i in range(0, len(wanted), _CHUNK):
                chunk = wanted[i : i + _CHUNK]
                params: list[str] = [*chunk] + ([] if excluding_uid is None else [excluding_uid])
                found.update(key for (key,) in conn.execute(
                    f"SELECT DISTINCT key FROM artifacts WHERE key IN ({','.join('?' * len(chunk))}){other}", params))
            return frozenset(found)

        return await self._run(select) if wanted else frozenset()

    async def forget_artifacts(self, *, uid: str, keys: Collection[str]) -> None:
        """Drop the run's rows naming ``keys``."""
        gone = sorted(set(keys))

        def remove(conn: sqlite3.Connection) -> None:
            with _transaction(conn, write=True):
                conn.executemany("DELETE FROM artifacts WHERE workflow_uid = ? AND key = ?", [(uid, k) for k in gone])

        if gone:
            await self._run(remove)
