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
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.argo_checks import CHECKS, Outcome
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
TIMEOUT_S = 240.0  # the slowest row (parallelism-nested-workflow) takes ~120 s


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
        return Outcome(final, "\n".join(line.content for _, line in lines), pod_logs=pod_logs,
                       artifacts=_artifact_texts(work / "artifacts", final))

    try:
        results = await asyncio.gather(*(one(r) for r in rows))
    finally:
        for engine in engines.values():
            await engine.close()
    return {r.file: o for r, o in zip(rows, results, strict=True)}


def _artifact_texts(root: Path, workflow: dict[str, Any]) -> dict[str, str]:
    """The stored text of every node's output artifacts (tarballs: their files' texts, joined)."""
    out = {}
    for node in ((workflow.get("status") or {}).get("nodes") or {}).values():
        for art in (node.get("outputs") or {}).get("artifacts") or []:
            keys = [v["key"] for v in art.values() if isinstance(v, dict) and isinstance(v.get("key"), str)]
            path = root / keys[0] if keys else None
            if path is None or not path.is_file():
                continue
            try:
                with tarfile.open(path) as tar:
                    members = [m for m in tar.getmembers() if m.isfile()]
                    text = "".join(tar.extractfile(m).read().decode(errors="replace") for m in members)  # type: ignore[union-attr]
            except tarfile.TarError:
                text = path.read_text(errors="replace")
            out[f"{node.get('displayName')}/{art.get('name')}"] = text
    return out


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    base = _examples_dir()
    assert base is not None
    with tempfile.TemporaryDirectory(prefix="gittrigger-conformance-") as tmp:
        results = asyncio.run(_run_all(base, ROWS, Path(tmp)))
    dump = os.environ.get("GITTRIGGER_CONFORMANCE_DUMP")
    if dump:
        Path(dump).write_text(json.dumps({k: {"workflow": o.workflow, "error": o.error, "pod_logs": o.pod_logs,
                                              "artifacts": o.artifacts}
                                          for k, o in results.items()}, indent=1, default=str))
    return results


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
