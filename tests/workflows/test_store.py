"""Tests of the stores: one suite run against both MemoryStore and SqliteStore, the pure helpers
of :mod:`workflows.store.objects`, and SQLite-only durability and concurrency checks."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from workflows.errors import AlreadyExists, Conflict, InvalidSpec, NotFound, Unavailable
from workflows.executors.base import LogLine
from workflows.store import objects
from workflows.store.base import ListOptions, RawObject
from workflows.store.memory import MemoryStore
from workflows.store.sqlite import SqliteStore

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
Store = MemoryStore | SqliteStore


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore(clock=clock)
        return
    async with await SqliteStore.open(tmp_path / "store.db", clock=clock) as sqlite_store:
        yield sqlite_store


def run(name: str, *, ns: str | None = None, labels: dict[str, str] | None = None,
        phase: str | None = None, nodes: dict[str, Any] | None = None) -> RawObject:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    if labels:
        meta["labels"] = labels
    obj: RawObject = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": meta,
                      "spec": {"entrypoint": "main"}}
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if nodes is not None:
        status["nodes"] = nodes
    if status:
        obj["status"] = status
    return obj


def node(node_id: str, phase: str = "Pending") -> dict[str, Any]:
    return {"id": node_id, "name": node_id, "type": "Pod", "phase": phase, "children": []}


def line(content: str, *, pod: str = "p1", container: str = "main", at: float = 0, wf: str = "w") -> LogLine:
    return LogLine(namespace="default", workflow=wf, pod_name=pod, container=container,
                   time=T0 + timedelta(seconds=at), content=content)


# -- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "expected"), [
    (ListOptions(), True),
    (ListOptions(labels={"app": "ci"}), True),
    (ListOptions(labels={"app": "cd"}), False),
    (ListOptions(label_exists=["team"]), True),
    (ListOptions(label_exists=["owner"]), False),
    (ListOptions(label_not_equal={"app": "ci"}), False),
    (ListOptions(label_not_equal={"owner": "x"}), True),
    (ListOptions(phases=["Running"]), True),
    (ListOptions(phases=["", "Failed"]), False),
    (ListOptions(name_prefix="build-"), True),
    (ListOptions(name_prefix="deploy-"), False),
], ids=["no-filter", "label-eq", "label-eq-miss", "exists", "exists-miss", "neq-miss",
        "neq-absent-label", "phase", "phase-miss", "prefix", "prefix-miss"])
def test_matches_follows_selector_semantics(options: ListOptions, expected: bool) -> None:
    """Label equality/existence/inequality, phase and name prefix filter as Kubernetes selectors do."""
    labels = {"app": "ci", "team": "core"}
    assert expected == objects.matches(name="build-1", labels=labels, phase="Running", options=options)


@pytest.mark.parametrize(
    "token", ["!!!", "e30", "eyJjIjoxLCJzIjoieCJ9"], ids=["not-b64", "empty-obj", "bad-types"]
)
def test_malformed_continue_token_names_continue(token: str) -> None:
    """A token we did not make is an InvalidSpec on ``continue``, not a crash."""
    with pytest.raises(InvalidSpec) as e:
        objects.decode_continue(token)
    assert e.value.path == "continue"


@pytest.mark.parametrize(("meta", "expected"), [
    ({"name": "given", "generateName": "gen-"}, r"given"),
    ({"generateName": "gen-"}, r"gen-[a-z0-9]{5}"),
    ({"generateName": "x" * 70}, r"x{58}[a-z0-9]{5}"),
], ids=["name-wins", "generated", "long-prefix-cut"])
def test_candidate_name(meta: dict[str, str], expected: str) -> None:
    """A given name wins over generateName; generated names stay within 63 characters."""
    assert re.fullmatch(expected, objects.candidate_name(objects.identity({"metadata": meta})))


def test_continue_token_round_trips() -> None:
    """The token is opaque but carries the cursor."""
    token = objects.encode_continue("2024-05-01T12:00:00Z", 42)
    assert objects.decode_continue(token) == ("2024-05-01T12:00:00Z", 42)


@pytest.mark.parametrize(("age", "max_age", "fresh"), [
    (10, None, True), (10, 60, True), (60, 60, False), (61, 60, False),
], ids=["no-max", "younger", "exactly-max", "older"])
def test_memo_fresh_honours_max_age(age: float, max_age: float | None, fresh: bool) -> None:
    """An entry is a hit only while younger than maxAge."""
    entry = {"creationTimestamp": objects.rfc3339(T0)}
    assert fresh == objects.memo_fresh(entry, max_age_seconds=max_age, now=T0 + timedelta(seconds=age))


# -- WorkflowStore, both backends -----------------------------------------------------------------


async def test_create_stamps_metadata(store: Store) -> None:
    """create sets uid, creationTimestamp (RFC3339 Z), a numeric resourceVersion and the default namespace."""
    created = await store.create(run("hello"))
    meta = created["metadata"]
    assert meta["namespace"] == "default"
    assert uuid.UUID(meta["uid"]).version == 4
    assert meta["creationTimestamp"] == "2024-05-01T12:00:00Z"
    assert meta["resourceVersion"].isdigit()
    assert created == await store.get("default", "hello")


async def test_create_overrides_caller_uid_and_timestamp(store: Store) -> None:
    """Server-owned metadata is minted by the store, whatever the caller sent."""
    obj = run("w")
    obj["metadata"].update(uid="mine", creationTimestamp="1999-01-01T00:00:00Z", resourceVersion="77")
    meta = (await store.create(obj))["metadata"]
    assert (meta["uid"], meta["creationTimestamp"]) != ("mine", "1999-01-01T00:00:00Z")


@pytest.mark.parametrize("obj", [
    {"spec": {}}, {"metadata": {}}, {"metadata": {"name": ""}}, {"metadata": {"labels": {"a": "b"}}},
], ids=["no-metadata", "empty-metadata", "empty-name", "labels-only"])
async def test_create_requires_a_name(store: Store, obj: RawObject) -> None:
    """Neither name nor generateName: InvalidSpec naming metadata.name."""
    with pytest.raises(InvalidSpec) as e:
        await store.create(obj)
    assert e.value.path == "metadata.name"


async def test_generate_name_appends_five_characters(store: Store) -> None:
    """generateName gets five random lowercase alphanumerics, Kubernetes style."""
    created = await store.create({"metadata": {"generateName": "ci-"}})
    assert re.fullmatch(r"ci-[a-z0-9]{5}", created["metadata"]["name"])
    assert created["metadata"]["generateName"] == "ci-"


async def test_generate_name_retries_on_collision(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A generated name already taken is drawn again."""
    suffixes = iter(["aaaaa", "aaaaa", "aaaaa", "bbbbb"])
    monkeypatch.setattr(objects, "random_suffix", lambda: next(suffixes))
    first = await store.create({"metadata": {"generateName": "ci-"}})
    second = await store.create({"metadata": {"generateName": "ci-"}})
    assert [first["metadata"]["name"], second["metadata"]["name"]] == ["ci-aaaaa", "ci-bbbbb"]


async def test_create_taken_name_raises_already_exists(store: Store) -> None:
    """(namespace, name) is unique; the same name in another namespace is fine."""
    await store.create(run("w"))
    with pytest.raises(AlreadyExists) as e:
        await store.create(run("w"))
    assert (e.value.kind, e.value.name) == ("workflow", "w")
    await store.create(run("w", ns="other"))


async def test_get_missing_raises_not_found(store: Store) -> None:
    """NotFound names the kind and ns/name."""
    with pytest.raises(NotFound) as e:
        await store.get("default", "nope")
    assert (e.value.kind, e.value.name) == ("workflow", "default/nope")


async def test_store_never_aliases_caller_data(store: Store) -> None:
    """Mutating the argument or a returned object never changes what is stored."""
    obj = run("w", nodes={"a": node("a")})
    created = await store.create(obj)
    obj["spec"]["entrypoint"] = "changed"
    obj["status"]["nodes"]["a"]["phase"] = "changed"
    created["status"]["nodes"]["a"]["phase"] = "changed too"
    fetched = await store.get("default", "w")
    fetched["metadata"]["labels"] = {"x": "y"}
    again = await store.get("default", "w")
    assert again["spec"]["entrypoint"] == "main"
    assert again["status"]["nodes"]["a"]["phase"] == "Pending"
    assert "labels" not in again["metadata"]
    updated = await store.update(again, expected_version=again["metadata"]["resourceVersion"])
    updated["status"]["nodes"]["a"]["phase"] = "changed"
    assert (await store.get("default", "w"))["status"]["nodes"]["a"]["phase"] == "Pending"


async def test_resource_version_is_store_wide_and_increasing(store: Store) -> None:
    """Every write takes the next version of one store-wide counter."""
    a = await store.create(run("a"))
    t = await store.put_object("WorkflowTemplate", {"metadata": {"name": "t"}})
    b = await store.create(run("b"))
    a2 = await store.update(a, expected_version=a["metadata"]["resourceVersion"])
    versions = [int(o["metadata"]["resourceVersion"]) for o in (a, t, b, a2)]
    assert versions == sorted(versions) and len(set(versions)) == 4
    assert str(versions[-1]) == (await store.list(None)).resource_version


async def test_update_compare_and_swap(store: Store) -> None:
    """A stale expected_version is a Conflict; a fresh one bumps resourceVersion."""
    created = await store.create(run("w"))
    old = created["metadata"]["resourceVersion"]
    created["status"] = {"phase": "Running"}
    updated = await store.update(created, expected_version=old)
    assert int(updated["metadata"]["resourceVersion"]) > int(old)
    with pytest.raises(Conflict):
        await store.update(created, expected_version=old)
    assert (await store.get("default", "w"))["status"]["phase"] == "Running"


async def test_update_missing_raises_not_found(store: Store) -> None:
    """Updating a run that is gone is NotFound, not Conflict."""
    with pytest.raises(NotFound):
        await store.update(run("ghost"), expected_version="1")


async def test_update_keeps_uid_and_creation_timestamp(store: Store, clock: FakeClock) -> None:
    """uid and creationTimestamp are immutable: the stored values win."""
    created = await store.create(run("w"))
    clock.advance(60)
    meta = {**created["metadata"], "uid": "x", "creationTimestamp": "2000-01-01T00:00:00Z"}
    changed = {**created, "metadata": meta}
    updated = await store.update(changed, expected_version=created["metadata"]["resourceVersion"])
    for key in ("uid", "creationTimestamp"):
        assert created["metadata"][key] == updated["metadata"][key]


async def test_update_writes_only_changed_nodes(store: Store) -> None:
    """With changed_nodes only those ids are written (or removed); the others keep their stored value."""
    created = await store.create(run("w", nodes={i: node(i) for i in ("a", "b", "c")}))
    nodes = created["status"]["nodes"]
    nodes["a"]["phase"] = "Running"   # named: written
    nodes["b"]["phase"] = "Running"   # not named: the caller promised it did not change
    del nodes["c"]                    # named and absent: removed
    nodes["d"] = node("d")            # named: added
    updated = await store.update(created, expected_version=created["metadata"]["resourceVersion"],
                                 changed_nodes=["a", "c", "d"])
    assert {"a", "b", "d"} == set(updated["status"]["nodes"])
    stored = (await store.get("default", "w"))["status"]["nodes"]
    assert {k: v["phase"] for k, v in stored.items()} == {"a": "Running", "b": "Pending", "d": "Pending"}


async def test_update_without_changed_nodes_rewrites_all(store: Store) -> None:
    """changed_nodes=None replaces the whole node map, deleting removed nodes."""
    created = await store.create(run("w", nodes={"a": node("a"), "b": node("b")}))
    created["status"]["nodes"] = {"b": node("b", "Succeeded"), "c": node("c")}
    await store.update(created, expected_version=created["metadata"]["resourceVersion"])
    stored = (await store.get("default", "w"))["status"]["nodes"]
    assert {k: v["phase"] for k, v in stored.items()} == {"b": "Succeeded", "c": "Pending"}


async def test_get_keeps_the_shape_without_nodes(store: Store) -> None:
    """A run without status.nodes comes back without it; an empty map stays an empty map."""
    await store.create(run("bare"))
    await store.create(run("empty", nodes={}))
    assert "status" not in await store.get("default", "bare")
    assert (await store.get("default", "empty"))["status"]["nodes"] == {}


async def test_nodes_come_back_ordered_by_id(store: Store) -> None:
    """Reads return status.nodes ordered by node id (as Argo's JSON map), whatever the write order."""
    await store.create(run("w", nodes={i: node(i) for i in ("w-3", "w-1", "w-2")}))
    assert list((await store.get("default", "w"))["status"]["nodes"]) == ["w-1", "w-2", "w-3"]
    assert list((await store.list(None)).items[0]["status"]["nodes"]) == ["w-1", "w-2", "w-3"]


async def test_list_is_newest_first(store: Store, clock: FakeClock) -> None:
    """Ordered by creationTimestamp, newest first; runs of the same second by creation order."""
    await store.create(run("old"))
    clock.advance(10)
    await store.create(run("mid-1"))
    await store.create(run("mid-2"))
    clock.advance(10)
    await store.create(run("new", ns="other"))
    page = await store.list(None)
    assert [w["metadata"]["name"] for w in page.items] == ["new", "mid-2", "mid-1", "old"]
    assert page.continue_token is None
    assert [w["metadata"]["name"] for w in (await store.list("default")).items] == ["mid-2", "mid-1", "old"]


@pytest.mark.parametrize(("options", "expected"), [
    (ListOptions(labels={"app": "ci"}), ["ci-run", "ci-new"]),
    (ListOptions(label_exists=["team"]), ["cd-run"]),
    (ListOptions(label_not_equal={"app": "ci"}), ["plain", "cd-run"]),
    (ListOptions(phases=[""]), ["plain", "ci-new"]),
    (ListOptions(phases=["Running", "Failed"]), ["cd-run", "ci-run"]),
    (ListOptions(phases=[]), []),
    (ListOptions(name_prefix="ci-"), ["ci-run", "ci-new"]),
    (ListOptions(labels={"app": "ci"}, phases=["Running"]), ["ci-run"]),
], ids=["label-eq", "label-exists", "label-neq", "phase-new", "phases", "no-phases", "prefix", "combined"])
async def test_list_filters(store: Store, options: ListOptions, expected: list[str]) -> None:
    """Label, phase and name-prefix filters as Argo's listOptions apply them (newest first)."""
    await store.create(run("ci-new", labels={"app": "ci"}))
    await store.create(run("ci-run", labels={"app": "ci"}, phase="Running"))
    await store.create(run("cd-run", labels={"app": "cd", "team": "ops"}, phase="Failed"))
    await store.create(run("plain"))
    assert sorted(expected) == sorted(w["metadata"]["name"] for w in (await store.list(None, options)).items)


async def test_list_pages_stably_under_inserts(store: Store, clock: FakeClock) -> None:
    """limit + continue walk every run once, even when runs are created between pages."""
    for i in range(7):
        await store.create(run(f"w{i}", nodes={"n": node("n")}))
        clock.advance(i % 2)  # some share a second: the tiebreak must hold across pages
    seen: list[str] = []
    token: str | None = None
    while True:
        page = await store.list("default", ListOptions(limit=3, continue_token=token))
        assert len(page.items) <= 3
        assert all("n" in w["status"]["nodes"] for w in page.items)
        seen += [w["metadata"]["name"] for w in page.items]
        await store.create(run(f"late{len(seen)}"))
        if (token := page.continue_token) is None:
            break
    assert [f"w{i}" for i in reversed(range(7))] == seen


@pytest.mark.parametrize("options", [
    ListOptions(continue_token="garbage!"), ListOptions(limit=-1), ListOptions(phases="Running"),
], ids=["foreign-token", "negative-limit", "phases-as-string"])
async def test_list_rejects_bad_options(store: Store, options: ListOptions) -> None:
    """Options that cannot mean anything are an InvalidSpec, not a silently odd page."""
    with pytest.raises(InvalidSpec):
        await store.list(None, options)


async def test_delete_removes_run_nodes_and_logs(store: Store) -> None:
    """delete takes the run, its nodes and its logs; a new run of the same name starts clean."""
    await store.create(run("w", nodes={"a": node("a")}))
    store.append(line("hello", wf="w"))
    store.append(line("other run", wf="keep"))
    await store.flush()
    await store.delete("default", "w")
    with pytest.raises(NotFound):
        await store.get("default", "w")
    with pytest.raises(NotFound):
        await store.delete("default", "w")
    assert list(await store.read(namespace="default", workflow="w")) == []
    assert len(await store.read(namespace="default", workflow="keep")) == 1
    assert (await store.create(run("w", nodes={})))["status"]["nodes"] == {}
    assert (await store.get("default", "w"))["status"]["nodes"] == {}


# -- ObjectStore -----------------------------------------------------------------------------------


async def test_objects_create_replace_get(store: Store, clock: FakeClock) -> None:
    """put creates, create=True refuses an existing name, replace keeps uid/creationTimestamp."""
    tmpl: RawObject = {"metadata": {"name": "t", "namespace": "ci"}, "spec": {"templates": []}}
    first = await store.put_object("WorkflowTemplate", tmpl, create=True)
    with pytest.raises(AlreadyExists):
        await store.put_object("WorkflowTemplate", tmpl, create=True)
    clock.advance(30)
    tmpl["spec"]["templates"] = [{"name": "main"}]
    second = await store.put_object("WorkflowTemplate", tmpl)
    for key in ("uid", "creationTimestamp"):
        assert first["metadata"][key] == second["metadata"][key]
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert second == await store.get_object("WorkflowTemplate", "ci", "t")
    with pytest.raises(NotFound):
        await store.get_object("WorkflowTemplate", "default", "t")
    with pytest.raises(NotFound):
        await store.get_object("CronWorkflow", "ci", "t")


async def test_cluster_scoped_objects_have_no_namespace(store: Store) -> None:
    """Cluster* kinds drop metadata.namespace and are addressed with namespace None."""
    stored = await store.put_object("ClusterWorkflowTemplate", {"metadata": {"name": "c", "namespace": "x"}})
    assert "namespace" not in stored["metadata"]
    assert stored == await store.get_object("ClusterWorkflowTemplate", None, "c")
    await store.delete_object("ClusterWorkflowTemplate", None, "c")
    with pytest.raises(NotFound):
        await store.delete_object("ClusterWorkflowTemplate", None, "c")


async def test_list_objects_sorted_by_name(store: Store) -> None:
    """list_objects filters by kind and namespace and sorts by name."""
    for ns, name in (("a", "zeta"), ("b", "alpha"), ("a", "mid")):
        await store.put_object("WorkflowTemplate", {"metadata": {"name": name, "namespace": ns}})
    await store.put_object("CronWorkflow", {"metadata": {"name": "cron", "namespace": "a"}})
    names = [o["metadata"]["name"] for o in await store.list_objects("WorkflowTemplate", None)]
    assert names == ["alpha", "mid", "zeta"]
    names = [o["metadata"]["name"] for o in await store.list_objects("WorkflowTemplate", "a")]
    assert names == ["mid", "zeta"]
    with pytest.raises(InvalidSpec):
        await store.put_object("WorkflowTemplate", {"spec": {}})


# -- LogStore and MemoCache ------------------------------------------------------------------------


async def test_logs_read_filters_and_follow(store: Store) -> None:
    """read filters by pod, container, since and after_id, in write order with increasing ids."""
    for i, (pod, ctr) in enumerate([("p1", "main"), ("p1", "wait"), ("p2", "main"), ("p1", "main")]):
        store.append(line(f"l{i}", pod=pod, container=ctr, at=i))
    await store.flush()
    every = await store.read(namespace="default", workflow="w")
    assert [ln.content for _, ln in every] == ["l0", "l1", "l2", "l3"]
    ids = [i for i, _ in every]
    assert ids == sorted(set(ids))
    assert every[0][1] == line("l0", at=0)

    async def contents(**kw: Any) -> list[str]:
        return [ln.content for _, ln in await store.read(namespace="default", workflow="w", **kw)]

    assert await contents(pod_name="p1", container="main") == ["l0", "l3"]
    assert await contents(since=T0 + timedelta(seconds=2)) == ["l2", "l3"]
    assert await contents(after_id=ids[1]) == ["l2", "l3"]
    assert await contents(pod_name="p1", tail=2) == ["l1", "l3"]
    assert [ln for _, ln in await store.read(namespace="other", workflow="w")] == []


async def test_memo_cache(store: Store, clock: FakeClock) -> None:
    """memo_put stamps creationTimestamp; memo_get honours max age and misses unknown keys."""
    outputs = {"parameters": [{"name": "p", "value": "1"}]}
    await store.memo_put("cache", "k", {"nodeID": "n1", "outputs": outputs})
    now = T0 + timedelta(seconds=30)
    hit = await store.memo_get("cache", "k", max_age_seconds=60, now=now)
    assert hit is not None and hit["nodeID"] == "n1" and objects.rfc3339(T0) == hit["creationTimestamp"]
    assert await store.memo_get("cache", "k", max_age_seconds=10, now=now) is None
    assert await store.memo_get("cache", "other", max_age_seconds=None, now=now) is None
    await store.memo_put("cache", "k", {"nodeID": "n2", "outputs": {}})
    replaced = await store.memo_get("cache", "k", max_age_seconds=None, now=now)
    assert replaced is not None and replaced["nodeID"] == "n2"


# -- SQLite only -----------------------------------------------------------------------------------


def raw_rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the database file directly, as another process would."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    """Runs, nodes, objects, logs, memo entries and the version counter persist across reopen."""
    path = tmp_path / "s.db"
    async with await SqliteStore.open(path) as first:
        created = await first.create(run("w", nodes={"a": node("a")}))
        await first.put_object("WorkflowTemplate", {"metadata": {"name": "t"}})
        await first.memo_put("c", "k", {"nodeID": "a"})
        first.append(line("kept"))  # not flushed explicitly: close() drains the buffer
    async with await SqliteStore.open(path) as second:
        assert created == await second.get("default", "w")
        assert (await second.get_object("WorkflowTemplate", "default", "t"))["metadata"]["name"] == "t"
        assert await second.memo_get("c", "k", max_age_seconds=None, now=datetime.now(UTC)) is not None
        assert [ln.content for _, ln in await second.read(namespace="default", workflow="w")] == ["kept"]
        later = await second.create(run("later"))
        assert int(later["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


async def test_sqlite_stores_nodes_apart_from_the_run(tmp_path: Path) -> None:
    """The workflows row holds the object without status.nodes; each node is its own row."""
    path = tmp_path / "s.db"
    async with await SqliteStore.open(path) as store:
        nodes = {"a": node("a"), "b": node("b")}
        await store.create(run("w", labels={"app": "ci"}, phase="Running", nodes=nodes))
    [(body, phase, labels)] = raw_rows(path, "SELECT body, phase, labels FROM workflows")
    assert json.loads(body)["status"]["nodes"] == {}
    assert (phase, json.loads(labels)) == ("Running", {"app": "ci"})
    assert raw_rows(path, "SELECT node_id FROM nodes ORDER BY node_id") == [("a",), ("b",)]


async def test_sqlite_update_writes_only_changed_rows(tmp_path: Path) -> None:
    """Changing 2 of 1,000 nodes inserts 2 node rows (counted by a trigger on the table)."""
    path = tmp_path / "s.db"
    async with await SqliteStore.open(path) as store:
        created = await store.create(run("w", nodes={f"n{i}": node(f"n{i}") for i in range(1000)}))
        conn = sqlite3.connect(path)
        conn.executescript(
            "CREATE TABLE writes (node_id TEXT);"
            "CREATE TRIGGER count_writes AFTER INSERT ON nodes"
            " BEGIN INSERT INTO writes VALUES (NEW.node_id); END;"
        )
        conn.close()
        for i in (3, 500):
            created["status"]["nodes"][f"n{i}"]["phase"] = "Running"
        await store.update(created, expected_version=created["metadata"]["resourceVersion"],
                           changed_nodes=["n3", "n500"])
    assert raw_rows(path, "SELECT node_id FROM writes ORDER BY node_id") == [("n3",), ("n500",)]


async def test_sqlite_concurrent_writers(tmp_path: Path) -> None:
    """Two stores on one file write at once: nothing is lost, versions stay unique, CAS holds."""
    path = tmp_path / "s.db"
    async with await SqliteStore.open(path) as a, await SqliteStore.open(path) as b:
        stores = (("a", a), ("b", b))
        made = await asyncio.gather(*(s.create(run(f"{n}-{i}")) for i in range(15) for n, s in stores))
        versions = [w["metadata"]["resourceVersion"] for w in made]
        assert len(set(versions)) == 30
        assert len((await a.list(None)).items) == 30
        w = made[0]
        results = await asyncio.gather(
            *(s.update(w, expected_version=w["metadata"]["resourceVersion"]) for s in (a, b) * 4),
            return_exceptions=True,
        )
        assert sum(not isinstance(r, BaseException) for r in results) == 1
        assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))


async def test_sqlite_locked_database_is_unavailable(tmp_path: Path) -> None:
    """A write blocked past the busy timeout raises Unavailable, never a sqlite3 error."""
    path = tmp_path / "s.db"
    async with await SqliteStore.open(path, busy_timeout_s=0.05) as store:
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(Unavailable):
                await store.create(run("w"))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await store.create(run("w"))


@pytest.mark.parametrize("where", ["missing-dir/s.db", ".", "garbage.db"],
                         ids=["missing-dir", "a-directory", "not-a-database"])
async def test_sqlite_unopenable_path_is_unavailable(tmp_path: Path, where: str) -> None:
    """A path that cannot hold a database fails open() with Unavailable, not a sqlite3 error."""
    (tmp_path / "garbage.db").write_bytes(b"this is not an SQLite database, just bytes" * 100)
    with pytest.raises(Unavailable):
        await SqliteStore.open(tmp_path / where)


@pytest.mark.parametrize(("level", "code"), [("NORMAL", 1), ("full", 2)], ids=["normal", "full"])
async def test_sqlite_synchronous_level_is_an_option(tmp_path: Path, level: str, code: int) -> None:
    """The synchronous pragma is set on every connection from the constructor option."""
    async with await SqliteStore.open(tmp_path / "s.db", synchronous=level) as store:
        assert code == await store._run(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])
        assert await store._run(lambda conn: conn.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
    with pytest.raises(InvalidSpec):
        SqliteStore(tmp_path / "s.db", synchronous="SOMETIMES")
    with pytest.raises(InvalidSpec):
        SqliteStore(tmp_path / "s.db", flush_lines=0)


async def test_sqlite_background_flusher_and_close(tmp_path: Path) -> None:
    """Appended lines reach the file without flush(); close() leaves no task and refuses new lines."""
    path = tmp_path / "s.db"
    store = await SqliteStore.open(path, flush_interval_s=0.01)
    store.append(line("by the flusher"))
    for _ in range(1000):  # a bound, not a timing assertion: the flusher runs every 10 ms
        if raw_rows(path, "SELECT content FROM logs"):
            break
        await asyncio.sleep(0.01)
    assert raw_rows(path, "SELECT content FROM logs") == [("by the flusher",)]
    await store.close()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("log flusher")]
    with pytest.raises(Unavailable):
        store.append(line("too late"))
    with pytest.raises(Unavailable):
        await store.get("default", "w")
    await store.close()  # idempotent


async def test_sqlite_flushes_when_the_buffer_fills(tmp_path: Path) -> None:
    """flush_lines buffered lines wake the flusher before its interval ends."""
    path = tmp_path / "s.db"
    async with await SqliteStore.open(path, flush_interval_s=3600, flush_lines=5) as store:
        for i in range(5):
            store.append(line(f"l{i}"))
        for _ in range(1000):
            if len(raw_rows(path, "SELECT id FROM logs")) == 5:
                break
            await asyncio.sleep(0.01)
        assert len(raw_rows(path, "SELECT id FROM logs")) == 5


CHILD = """
import asyncio, sys
from workflows.store.sqlite import SqliteStore

async def main():
    store = await SqliteStore.open(sys.argv[1])
    i = 0
    while True:
        nodes = {f"n{j}": {"id": f"n{j}", "phase": "Pending"} for j in range(50)}
        await store.create({"metadata": {"name": f"run-{i}"}, "status": {"nodes": nodes}})
        print(i, flush=True)
        i += 1

asyncio.run(main())
"""


@pytest.fixture
def child_writer(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    path = tmp_path / "crash.db"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        yield proc, path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


async def test_sqlite_survives_sigkill_mid_write(child_writer: tuple[subprocess.Popen[str], Path]) -> None:
    """A writer killed with SIGKILL leaves a readable database holding every committed run."""
    proc, path = child_writer
    assert proc.stdout is not None
    committed: list[int] = []
    while len(committed) < 40:
        text = await asyncio.to_thread(proc.stdout.readline)
        assert text, "child writer exited early"
        committed.append(int(text))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed += [int(text) for text in proc.stdout.read().split()]
    assert raw_rows(path, "PRAGMA integrity_check") == [("ok",)]
    async with await SqliteStore.open(path) as store:
        for i in committed:
            assert len((await store.get("default", f"run-{i}"))["status"]["nodes"]) == 50


async def test_phase_counts_count_every_namespace(store: Any) -> None:
    for i, (ns, phase) in enumerate([("a", "Running"), ("a", "Succeeded"), ("b", "Running"), ("b", "")]):
        created = await store.create({"metadata": {"name": f"w{i}", "namespace": ns}, "spec": {},
                                      "status": {"phase": phase} if phase else {}})
        assert created["metadata"]["name"] == f"w{i}"
    assert dict(await store.phase_counts()) == {"Running": 2, "Succeeded": 1, "": 1}
