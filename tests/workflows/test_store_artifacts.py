"""The artifact index of both stores: rows follow the nodes written, go with the run, answer which
keys other runs still name; a database made before the index existed opens and is backfilled."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from workflows.store.base import RawObject, node_artifacts
from workflows.store.memory import MemoryStore
from workflows.store.sqlite import SqliteStore

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
Store = MemoryStore | SqliteStore


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore(clock=lambda: T0)
        return
    async with await SqliteStore.open(tmp_path / "store.db", clock=lambda: T0) as sqlite_store:
        yield sqlite_store


def pod(node_id: str, *arts: tuple[str, str], type_: str = "Pod") -> dict[str, Any]:
    node: dict[str, Any] = {"id": node_id, "name": node_id, "type": type_, "phase": "Succeeded"}
    if arts:
        node["outputs"] = {"artifacts": [{"name": n, "path": f"/tmp/{n}", "s3": {"key": k}} for n, k in arts]}
    return node


def run(name: str, nodes: dict[str, Any] | None = None) -> RawObject:
    obj: RawObject = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                      "metadata": {"name": name, "namespace": "ci"}, "spec": {"entrypoint": "main"}}
    if nodes is not None:
        obj["status"] = {"phase": "Running", "nodes": nodes}
    return obj


async def write(store: Store, stored: RawObject, nodes: dict[str, Any], changed: list[str] | None) -> RawObject:
    obj = {**stored, "status": {"phase": "Running", "nodes": nodes}}
    return await store.update(obj, expected_version=stored["metadata"]["resourceVersion"], changed_nodes=changed)


def keys(rows: Any) -> list[tuple[str, str, str]]:
    return [(a.node_id, a.name, a.key) for a in rows]


# -- pure: what a node contributes ---------------------------------------------------------------


@pytest.mark.parametrize(("node", "expected"), [
    (pod("n1"), []),
    ({"id": "n1", "type": "Pod", "outputs": {"parameters": [{"name": "p", "value": "1"}]}}, []),
    (pod("n1", ("out", "ci/w/p/out.tgz")), [("n1", "out", "ci/w/p/out.tgz")]),
    (pod("n1", ("a", "k1"), ("b", "k2")), [("n1", "a", "k1"), ("n1", "b", "k2")]),
    (pod("n1", ("out", "k1"), type_="DAG"), []),
    ({"id": "n1", "type": "Pod", "outputs": {"artifacts": [{"name": "g", "git": {"repo": "r"}}]}}, []),
    ({"id": "n1", "type": "Pod", "outputs": {"artifacts": None}}, []),
], ids=["no-outputs", "parameters-only", "one", "two", "dag-node-re-exports", "no-key", "null-artifacts"])
def test_node_artifacts(node: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    """Only Pod nodes' output artifacts with a key become index rows (Argo GCs Pod nodes' artifacts)."""
    assert expected == list(node_artifacts("n1", node))


# -- both stores ---------------------------------------------------------------------------------


async def test_update_indexes_changed_nodes(store: Store) -> None:
    stored = await store.create(run("w", {}))
    uid = stored["metadata"]["uid"]
    stored = await write(store, stored, {"a": pod("a", ("out", "ci/w/a/out.tgz")), "b": pod("b")}, ["a", "b"])
    rows = await store.indexed_artifacts(uid=uid)
    assert keys(rows) == [("a", "out", "ci/w/a/out.tgz")]
    assert (rows[0].namespace, rows[0].workflow, rows[0].workflow_uid, rows[0].size, rows[0].created) == \
        ("ci", "w", uid, None, T0)
    stored = await write(store, stored, {"a": pod("a", ("out", "ci/w/a/out.tgz")),
                                         "b": pod("b", ("log", "ci/w/b/log.tgz"))}, ["b"])
    expected = [("a", "out", "ci/w/a/out.tgz"), ("b", "log", "ci/w/b/log.tgz")]
    assert keys(await store.indexed_artifacts(uid=uid)) == expected


async def test_create_indexes_given_nodes(store: Store) -> None:
    stored = await store.create(run("w", {"a": pod("a", ("out", "k"))}))
    assert keys(await store.indexed_artifacts(uid=stored["metadata"]["uid"])) == [("a", "out", "k")]


async def test_removed_and_rewritten_nodes_leave_the_index(store: Store) -> None:
    stored = await store.create(run("w", {}))
    uid = stored["metadata"]["uid"]
    stored = await write(store, stored, {"a": pod("a", ("x", "k1")), "b": pod("b", ("y", "k2"))}, ["a", "b"])
    stored = await write(store, stored, {"b": pod("b", ("y", "k2"))}, ["a"])  # a removed (a retry drops it)
    assert keys(await store.indexed_artifacts(uid=uid)) == [("b", "y", "k2")]
    stored = await write(store, stored, {"c": pod("c", ("z", "k3"))}, None)  # a full rewrite
    assert keys(await store.indexed_artifacts(uid=uid)) == [("c", "z", "k3")]
    await write(store, stored, {"c": pod("c", ("w", "k4"))}, ["c"])  # a node's rows are replaced as a whole
    assert keys(await store.indexed_artifacts(uid=uid)) == [("c", "w", "k4")]


async def test_delete_drops_the_runs_rows(store: Store) -> None:
    stored = await store.create(run("w", {"a": pod("a", ("out", "k"))}))
    await store.delete("ci", "w")
    assert list(await store.indexed_artifacts(uid=stored["metadata"]["uid"])) == []
    assert frozenset() == await store.referenced_keys(["k"])


async def test_referenced_keys_sees_other_runs_only_when_asked(store: Store) -> None:
    """A key-only artifact (``s3.key: my-file``) written by two runs is referenced by each."""
    one = await store.create(run("one", {"a": pod("a", ("file", "my-file"), ("own", "ci/one/a/own.tgz"))}))
    await store.create(run("two", {"a": pod("a", ("file", "my-file"))}))
    asked = ["my-file", "ci/one/a/own.tgz", "unknown"]
    assert {"my-file", "ci/one/a/own.tgz"} == await store.referenced_keys(asked)
    assert {"my-file"} == await store.referenced_keys(asked, excluding_uid=one["metadata"]["uid"])
    assert frozenset() == await store.referenced_keys([])


async def test_forget_artifacts_drops_only_those_keys(store: Store) -> None:
    stored = await store.create(run("w", {"a": pod("a", ("x", "k1"), ("y", "k2")), "b": pod("b", ("z", "k1"))}))
    uid = stored["metadata"]["uid"]
    await store.forget_artifacts(uid=uid, keys=["k1", "nope"])
    assert keys(await store.indexed_artifacts(uid=uid)) == [("a", "y", "k2")]


# -- SQLite only: a database made before the index --------------------------------------------------


async def test_pre_index_database_opens_and_is_backfilled(tmp_path: Path) -> None:
    """An existing database without the ``artifacts`` table gains it, filled from the stored nodes."""
    path = tmp_path / "old.db"
    async with await SqliteStore.open(path, clock=lambda: T0) as old:
        stored = await old.create(run("w", {"a": pod("a", ("out", "ci/w/a/out.tgz")), "b": pod("b")}))
    with sqlite3.connect(path) as conn:  # what a database of the version before looks like
        conn.execute("DROP INDEX artifacts_by_key")
        conn.execute("DROP TABLE artifacts")
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'artifacts'").fetchone()
    conn.close()
    async with await SqliteStore.open(path, clock=lambda: T0) as reopened:
        uid = stored["metadata"]["uid"]
        assert keys(await reopened.indexed_artifacts(uid=uid)) == [("a", "out", "ci/w/a/out.tgz")]
        assert (await reopened.get("ci", "w"))["status"]["nodes"].keys() == {"a", "b"}
    async with await SqliteStore.open(path, clock=lambda: T0) as again:  # no second backfill, no duplicates
        assert len(await again.indexed_artifacts(uid=uid)) == 1
