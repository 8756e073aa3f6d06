"""
Argo's own example workflows, run on the local executor, must reach Argo's final phase.

Opt-in: runs when ``GITTRIGGER_CONFORMANCE_DIR`` names the ``conformance`` folder (or its
``argo-examples`` folder) of our shared data; ``.ci/run`` sets it when the folder exists. The
rows come from its MANIFEST.tsv; every row whose portability the engine issue names is run, all
at once in one event loop (most examples just sleep), then each row is one test: Argo's final
phase, then the row's entry in ``CHECKS`` (the output its MANIFEST note names). Rows that bind the
same fixed port (pods share the host network) run one after another. Stand-ins for image
entrypoints and commands missing on the host (argosay, cowsay, python, nginx, influxd, nc, busybox
sh) come from ``tests/conformance/bin``. ``GITTRIGGER_CONFORMANCE_DUMP=<file>`` writes every row's
node tree and logs as JSON, for triage.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from workflows.engine import Engine
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.local import LocalExecutor
from workflows.loading import load_documents
from workflows.model import wire
from workflows.resolution import DictTemplateGetter
from workflows.store.memory import MemoryStore

HERE = Path(__file__).parent
_ENV = os.environ.get("GITTRIGGER_CONFORMANCE_DIR")
ALLOWED = {"portable", "k8s-noop", "templates", "artifact-repo", "pod-network", "shared-netns", "memoize-cache"}
TEMPLATE_FILES = (
    "workflow-template/templates.yaml",
    "cluster-workflow-template/clustertemplates.yaml",
    "dag-inline-workflowtemplate.yaml",
    "dag-inline-clusterworkflowtemplate.yaml",
)
# Rows that only wait (sleep) for a long time run with a time-dilated `sleep` (1/50).
DILATED = {"forever.yaml", "colored-logs.yaml", "synchronization-mutex-tmpl-level.yaml"}
# Rows whose pods listen on a fixed port: those sharing a port run one after another.
PORTS = {
    "daemon-step.yaml": 8086,
    "dag-daemon-task.yaml": 8086,
    "daemon-nginx.yaml": 80,
    "sidecar-nginx.yaml": 80,
    "steps-daemon-retry-strategy.yaml": 80,
    "dag-daemon-retry-strategy.yaml": 80,
    "variables-showcase.yaml": 9999,
}
TIMEOUT_S = 420.0


def _examples_dir() -> Path | None:
    if not _ENV:
        return None
    base = Path(_ENV)
    return base / "argo-examples" if (base / "argo-examples").is_dir() else base


@dataclass(frozen=True)
class Row:
    file: str
    portability: str
    expected: str
    note: str


def _rows() -> list[Row]:
    base = _examples_dir()
    if base is None:
        return []
    with (base / "MANIFEST.tsv").open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    out = []
    for r in rows:
        parts = {re.sub(r"\(.*\)", "", p).strip() for p in r["portability"].split(" ")[0].split("+")}
        expected = r["expected_phase"].split()[0]
        if parts <= ALLOWED and expected in ("Succeeded", "Failed", "random"):
            out.append(Row(r["file"], r["portability"], expected, r["note"]))
    return out


ROWS = _rows()
pytestmark = pytest.mark.skipif(_examples_dir() is None, reason="GITTRIGGER_CONFORMANCE_DIR is not set")


@dataclass
class Outcome:
    workflow: dict[str, Any] | None
    logs: str
    error: str | None = None
    pod_logs: dict[str, list[str]] = field(default_factory=dict)  # pod name -> its lines

    @property
    def phase(self) -> str:
        return "" if self.workflow is None else str((self.workflow.get("status") or {}).get("phase", ""))

    def nodes(self) -> list[dict[str, Any]]:
        return list(((self.workflow or {}).get("status") or {}).get("nodes", {}).values())

    def results(self) -> list[str]:
        return [str((n.get("outputs") or {}).get("result", "")) for n in self.nodes() if n.get("type") == "Pod"]


async def _run_all(base: Path, rows: list[Row], work: Path) -> dict[str, Outcome]:
    getter = DictTemplateGetter()
    for name in TEMPLATE_FILES:
        for doc in load_documents((base / name).read_text(), source=name):
            getter.add(wire.parse_object(doc))
    store = MemoryStore()
    engines = {}
    for kind, path in (("plain", [str(HERE / "bin")]), ("dilated", [str(HERE / "fastbin"), str(HERE / "bin")])):
        executor = LocalExecutor(data_dir=work / kind, artifacts=LocalArtifactStore(work / "artifacts"), logs=store,
                                 extra_path=path, grace_period=2)
        engines[kind] = Engine(store=store, executor=executor, templates=getter, memo_cache=store)

    locks = {port: asyncio.Lock() for port in set(PORTS.values())}

    async def one(row: Row) -> Outcome:
        port = PORTS.get(row.file)
        if port is None:
            return await run(row)
        async with locks[port]:
            return await run(row)

    async def run(row: Row) -> Outcome:
        engine = engines["dilated" if row.file in DILATED else "plain"]
        docs = load_documents((base / row.file).read_text(), source=row.file)
        manifest = next(d for d in docs if d.get("kind") == "Workflow")
        try:
            created = await engine.submit(manifest)
        except Exception as e:
            return Outcome(None, "", error=f"{type(e).__name__}: {e}")
        ns, name = created["metadata"]["namespace"], created["metadata"]["name"]
        try:
            final = await asyncio.wait_for(engine.wait(ns, name), TIMEOUT_S)
        except TimeoutError:
            await engine.stop(ns, name, strategy="Terminate")
            final = await engine.wait(ns, name)
            return Outcome(final, "", error="timed out")
        await store.flush()
        lines = await store.read(namespace=ns, workflow=name)
        pod_logs: dict[str, list[str]] = {}
        for _, line in lines:
            pod_logs.setdefault(line.pod_name, []).append(line.content)
        return Outcome(final, "\n".join(line.content for _, line in lines), pod_logs=pod_logs)

    try:
        results = await asyncio.gather(*(one(r) for r in rows))
    finally:
        for engine in engines.values():
            await engine.close()
    return {r.file: o for r, o in zip(rows, results, strict=True)}


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    base = _examples_dir()
    assert base is not None
    with tempfile.TemporaryDirectory(prefix="gittrigger-conformance-") as tmp:
        results = asyncio.run(_run_all(base, ROWS, Path(tmp)))
    dump = os.environ.get("GITTRIGGER_CONFORMANCE_DUMP")
    if dump:
        Path(dump).write_text(json.dumps({k: {"workflow": o.workflow, "error": o.error, "pod_logs": o.pod_logs}
                                          for k, o in results.items()}, indent=1, default=str))
    return results


def _contains(*needles: str) -> Callable[[Outcome], None]:
    def check(o: Outcome) -> None:
        for needle in needles:
            assert needle in o.logs, f"{needle!r} not in the logs"
    return check


CHECKS: dict[str, Callable[[Outcome], None]] = {
    "hello-world.yaml": lambda o: o.results() == ["hello world"] or pytest.fail(str(o.results())),
    "steps.yaml": _contains("hello1", "hello2a", "hello2b"),
    "dag-diamond.yaml": _contains("A", "B", "C", "D"),
    "scripts-bash.yaml": lambda o: _check_result_was(o),
    "scripts-python.yaml": lambda o: _check_result_was(o),
    "scripts-javascript.yaml": lambda o: _check_result_was(o),
    "loops.yaml": _contains("hello world", "goodbye world"),
    "loops-sequence.yaml": _contains("testuser00", "testuser04", "200", "202", "105"),
    "output-parameter.yaml": _contains("hello world"),
    "global-parameters.yaml": _contains("hello world"),
    "global-outputs.yaml": _contains("hello world"),
    "exit-code-output-variable.yaml": _contains("Exit code was: 123"),
    "status-reference.yaml": _contains("the flakey container failed"),
    "exit-handlers.yaml": _contains("boohoo!"),
    "exit-handler-step-level.yaml": _contains("step cleanup"),
    "exit-handler-dag-level.yaml": _contains("task cleanup"),
    "exit-handler-with-param.yaml": _contains("hello world"),
    "template-on-exit.yaml": _contains("goodbye world"),
    "artifact-passing.yaml": _contains("hello world"),
    "input-artifact-raw.yaml": _contains("this is", "the raw file", "contents"),
    "dag-nested.yaml": _contains("AA", "DD"),
    "parameter-aggregation.yaml": _contains('["odd","even","odd","even"]'),
    "expression-destructure-json.yaml": _contains("123"),
    "expression-reusing-verbose-snippets.yaml": _contains(
        "The week's average temperature was 35.8 with a minimum of 15 and a maximum of 57."),
    "steps-inline-workflow.yaml": _contains("hello argo"),
    "dag-inline-workflow.yaml": _contains("hello argo"),
    "init-container.yaml": _contains("hello", "bye"),
    "fibonacci-seq-conditional-param.yaml": _contains("5"),
    "skipped-output-defaults/consumer-input-default.yaml": _contains("consumer got: [fallback-from-input]"),
    "skipped-output-defaults/producer-output-default.yaml": _contains("consumer got: [hello-from-producer]"),
    "key-only-artifact.yaml": _contains("hello"),
    "nested-workflow.yaml": _contains("input parameter value: my-output-parameter", "hello world"),
    "map-reduce.yaml": lambda o: _check_total(o),
    "workflow-template/hello-world.yaml": _contains("hello world"),
    "workflow-template/workflow-template-ref.yaml": _contains("hello world"),
    "cluster-workflow-template/workflow-template-ref.yaml": _contains("hello world"),
    "container-set-template/outputs-result-workflow.yaml": _contains("hi"),
    "daemon-nginx.yaml": _contains("Welcome to nginx"),
    "sidecar-nginx.yaml": _contains("Welcome to nginx"),
}


def _check_result_was(o: Outcome) -> None:
    results = o.results()
    assert len(results) == 2, results
    generated = next(r for r in results if not r.startswith("result was"))
    assert f"result was: {generated}" in results, results


def _check_total(o: Outcome) -> None:
    assert '"total": 20' in o.logs or '"total":20' in o.logs or "20" in o.logs, o.logs[-500:]


@pytest.mark.parametrize("row", ROWS, ids=[r.file for r in ROWS])
def test_example_reaches_argos_phase(row: Row, outcomes: dict[str, Outcome]) -> None:
    """Each portable example ends in the phase Argo reaches, with the output its note names."""
    outcome = outcomes[row.file]
    assert outcome.error is None, outcome.error
    message = ((outcome.workflow or {}).get("status") or {}).get("message")
    if row.expected == "random":
        assert outcome.phase in ("Succeeded", "Failed", "Error"), (outcome.phase, message)
    else:
        assert outcome.phase == row.expected, (outcome.phase, message)
    check = CHECKS.get(row.file)
    if check is not None:
        check(outcome)
