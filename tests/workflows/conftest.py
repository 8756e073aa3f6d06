"""
Fixtures for the engine feature tests: a real :class:`~workflows.engine.Engine` over a
:class:`~workflows.executors.local.LocalExecutor` in ``tmp_path`` (real processes), with helpers to
run Argo YAML and read what the pods wrote.

Used by ``tests/workflows/test_engine_*.py``. Every test also checks (autouse) that it left no
asyncio task pending behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.engine import Engine
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.local import LocalExecutor
from workflows.loading import load_documents
from workflows.model import wire
from workflows.resolution import DictTemplateGetter
from workflows.store.base import WorkflowStore
from workflows.store.memory import MemoryStore

RawWorkflow = dict[str, Any]


@dataclass(slots=True, kw_only=True)
class Harness:
    """One running engine, its store, its template getter and its data directory."""

    engine: Engine
    store: Any  # MemoryStore or SqliteStore: both are WorkflowStore and LogStore
    templates: DictTemplateGetter
    data_dir: Path
    executor: LocalExecutor
    submitted: list[tuple[str, str]] = field(default_factory=list)

    def add_templates(self, text: str) -> None:
        """Register WorkflowTemplates / ClusterWorkflowTemplates given as YAML (one or more documents)."""
        for doc in load_documents(text, source="<test>"):
            self.templates.add(wire.parse_object(doc))

    async def submit_yaml(self, text: str, **submit_kwargs: Any) -> RawWorkflow:
        """Submit the Workflow in ``text``; returns the stored object (not waited for)."""
        docs = [d for d in yaml.safe_load_all(text) if d]
        workflow = next(d for d in docs if d.get("kind", "Workflow") == "Workflow")
        stored = await self.engine.submit(workflow, **submit_kwargs)
        meta = stored["metadata"]
        self.submitted.append((meta["namespace"], meta["name"]))
        return stored

    async def wait(self, stored: RawWorkflow) -> RawWorkflow:
        meta = stored["metadata"]
        return await self.engine.wait(meta["namespace"], meta["name"])

    async def run_yaml(self, text: str, **submit_kwargs: Any) -> RawWorkflow:
        """Submit the Workflow in ``text`` and return it once finished (status included)."""
        return await self.wait(await self.submit_yaml(text, **submit_kwargs))

    async def logs_of(self, wf: RawWorkflow, display_name: str | None = None, *,
                      container: str | None = "main") -> list[str]:
        """Lines written by the run's pods (all, or those of the nodes with ``display_name``), in order."""
        meta = wf["metadata"]
        await self.store.flush()
        lines = await self.store.read(namespace=meta["namespace"], workflow=meta["name"])
        suffixes: set[str] | None = None
        if display_name is not None:
            suffixes = {n["id"].rsplit("-", 1)[-1] for n in nodes(wf).values()
                        if n.get("displayName") == display_name}
        return [ln.content for _, ln in lines
                if (container is None or ln.container == container)
                and (suffixes is None or ln.pod_name.rsplit("-", 1)[-1] in suffixes)]


def nodes(wf: RawWorkflow) -> dict[str, dict[str, Any]]:
    """The run's nodes keyed by id."""
    return dict((wf.get("status") or {}).get("nodes") or {})


def node(wf: RawWorkflow, display_name: str) -> dict[str, Any]:
    """The single node with ``display_name`` (fails the test if none or several)."""
    found = [n for n in nodes(wf).values() if n.get("displayName") == display_name]
    names = sorted(n["displayName"] for n in nodes(wf).values())
    assert len(found) == 1, f"{len(found)} nodes named {display_name!r}: {names}"
    return found[0]


def by_name(wf: RawWorkflow, name: str) -> dict[str, Any]:
    """The node with the full ``name`` (e.g. ``wf.a(0)``)."""
    found = [n for n in nodes(wf).values() if n.get("name") == name]
    assert len(found) == 1, f"{len(found)} nodes with name {name!r}: {sorted(n['name'] for n in nodes(wf).values())}"
    return found[0]


def children(wf: RawWorkflow, parent: dict[str, Any]) -> list[dict[str, Any]]:
    """The nodes listed in ``parent.children``, in order."""
    all_nodes = nodes(wf)
    return [all_nodes[c] for c in parent.get("children") or []]


def phases(wf: RawWorkflow) -> dict[str, str]:
    """displayName -> phase (for nodes with unique display names; useful in assertion messages)."""
    return {n["displayName"]: n["phase"] for n in nodes(wf).values()}


def param(n: dict[str, Any], name: str) -> str | None:
    """An output parameter's value of a node."""
    for p in (n.get("outputs") or {}).get("parameters") or []:
        if p["name"] == name:
            value = p.get("value")
            return None if value is None else str(value)
    return None


EngineFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_engine(tmp_path: Path) -> AsyncIterator[EngineFactory]:
    """Build engines: ``await make_engine(store=..., data_dir=...)``; all are closed at teardown."""
    made: list[Harness] = []

    async def make(*, store: WorkflowStore | None = None, data_dir: Path | None = None,
                   templates: DictTemplateGetter | None = None, grace_period: float = 1.0) -> Harness:
        data = data_dir or tmp_path / "data"
        the_store: Any = store if store is not None else MemoryStore()
        getter = templates or DictTemplateGetter()
        executor = LocalExecutor(data_dir=data, artifacts=LocalArtifactStore(data / "artifacts"),
                                 logs=the_store, isolation="auto", grace_period=grace_period)
        engine = Engine(store=the_store, executor=executor, templates=getter)
        harness = Harness(engine=engine, store=the_store, templates=getter, data_dir=data, executor=executor)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.engine.close()


@pytest.fixture
async def engine(make_engine: EngineFactory) -> Harness:
    """A running engine over a MemoryStore and a LocalExecutor in ``tmp_path``."""
    return await make_engine()


@pytest.fixture
def run_yaml(engine: Harness) -> Callable[..., Awaitable[RawWorkflow]]:
    return engine.run_yaml


@pytest.fixture
def logs_of(engine: Harness) -> Callable[..., Awaitable[list[str]]]:
    return engine.logs_of


@pytest.fixture(autouse=True)
async def no_pending_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running (after its engines are closed)."""
    before = set(asyncio.all_tasks())
    yield
    for _ in range(20):  # let just-cancelled tasks finish unwinding
        left = {t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()}
        if not left:
            return
        await asyncio.sleep(0.01)
    assert not left, f"tasks left pending: {sorted(t.get_name() for t in left)}"


async def wait_until(harness: Harness, stored: RawWorkflow, predicate: Callable[[RawWorkflow], bool], *,
                     what: str = "condition", timeout: float = 60.0) -> RawWorkflow:
    """Poll the store until ``predicate(run)`` holds (the run as persisted); returns that run."""
    meta = stored["metadata"]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        raw: RawWorkflow = dict(await harness.store.get(meta["namespace"], meta["name"]))
        if predicate(raw):
            return raw
        assert loop.time() < end, f"timed out waiting for {what}: {phases_of(raw)}"
        await asyncio.sleep(0.05)


def phases_of(wf: RawWorkflow) -> dict[str, str]:
    return {n.get("displayName", ""): n.get("phase", "") for n in nodes(wf).values()}


def node_phase_is(display_name: str, phase: str) -> Callable[[RawWorkflow], bool]:
    """A predicate for :func:`wait_until`: some node with ``display_name`` has ``phase``."""
    return lambda wf: any(n.get("displayName") == display_name and n.get("phase") == phase
                          for n in nodes(wf).values())


def processes_with(token: str) -> list[int]:
    """Pids of live processes whose command line contains ``token`` (to prove nothing survived)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next((ln for ln in (entry / "status").read_text().splitlines() if ln.startswith("State:")), "")
        except OSError:
            continue
        if token in cmdline and "zombie" not in state:
            found.append(int(entry.name))
    return found
