"""
Engine benchmarks: what the engine costs on top of the processes it runs. Run by hand (see
bench/README.md) and, with ``--quick``, by ``tests/test_bench_smoke.py`` so the script can't rot.

Prints one JSON object on stdout with every figure. The machine is noisy (2 shared cores), so
every figure is measured ``--repeat`` times (default 3) and reported as median and spread
(max - min), and engine times are compared with a bare baseline measured in the same
repetition, right before it.

Benchmarks (``--only NAME`` runs one):

- ``dag``: 1,000 ``true`` pods with ``spec.parallelism: 2`` on the local executor with state in
  SQLite (as ``serve`` runs it), in two shapes (``flat``: independent tasks; ``layered``: 10
  layers of 100 joined by one join task each), for isolation ``none`` and ``bwrap``; ratio to a
  bare asyncio subprocess pool of width 2 running the same commands in the same shape (for
  bwrap, also to a pool running the very bwrap argv the executor used).
- ``items``: ``withItems`` over 10,000 and 20,000 items with a no-op executor, MemoryStore and
  SqliteStore; each run in a child process that reports its wall time and peak RSS.
- ``latency``: 200 sequential steps on the local executor (isolation none); delay from the
  previous pod's ``run()`` returning to the next ``run()`` call (engine only), and to the next
  process's own first instruction (``date +%s%N`` run directly, no shell).

``--profile DIR`` also writes one cProfile file per benchmark (first repetition) into DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from gittrigger.logs import configure_logging
from gittrigger.process import tune_gc
from workflows.engine import Engine
from workflows.executors import processes
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.base import Executor, PodRequest, PodResult
from workflows.executors.local import LocalExecutor, bwrap_works
from workflows.model.status import NodePhase
from workflows.resolution import DictTemplateGetter
from workflows.store.memory import MemoryStore
from workflows.store.sqlite import SqliteStore

FULL = {"dag_tasks": 1000, "layers": 10, "items": (10_000, 20_000), "steps": 200}
QUICK = {"dag_tasks": 12, "layers": 3, "items": (40, 80), "steps": 6}
WIDTH = 2
TRUE = shutil.which("true") or "/bin/true"
DATE = shutil.which("date") or "/bin/date"



def _scratch() -> str:
    """Data dirs go where the server keeps its own (``./.gittrigger``), not in /tmp: on these
    machines /tmp is a crowded directory where one mkdir costs ~10x more, which would measure
    the disk, not the engine. ``BENCH_DIR`` overrides."""
    root = Path(os.environ.get("BENCH_DIR", ".gittrigger/bench"))
    root.mkdir(parents=True, exist_ok=True)
    return str(root)

def summary(values: Sequence[float]) -> dict[str, Any]:
    """Median and spread of repeated measurements (rounded for reading)."""
    return {"median": round(statistics.median(values), 4), "spread": round(max(values) - min(values), 4),
            "values": [round(v, 4) for v in values]}


# -- workflows -------------------------------------------------------------------------------------

def _container(command: Sequence[str]) -> dict[str, Any]:
    return {"image": "debian:12", "command": list(command)}


def dag_manifest(shape: str, *, tasks: int, layers: int) -> dict[str, Any]:
    """``flat``: ``tasks`` independent tasks. ``layered``: ``layers`` layers of tasks/layers, each
    layer after a join task depending on the whole previous layer. ``chains``: tasks/layers
    independent chains, ``layers`` long (task i of layer k depends on task i of layer k-1)."""
    dag: list[dict[str, Any]] = []
    if shape == "flat":
        dag = [{"name": f"t{i}", "template": "noop"} for i in range(tasks)]
    elif shape == "chains":
        per = tasks // layers
        for layer in range(layers):
            for i in range(per):
                task: dict[str, Any] = {"name": f"l{layer}t{i}", "template": "noop"}
                if layer:
                    task["dependencies"] = [f"l{layer - 1}t{i}"]
                dag.append(task)
    else:
        per = tasks // layers
        for layer in range(layers):
            deps = [f"j{layer - 1}"] if layer else []
            names = [f"l{layer}t{i}" for i in range(per)]
            dag += [{"name": n, "template": "noop", **({"dependencies": deps} if deps else {})} for n in names]
            if layer < layers - 1:
                dag.append({"name": f"j{layer}", "template": "noop", "dependencies": names})
    return {
        "metadata": {"generateName": f"bench-{shape}-"},
        "spec": {
            "entrypoint": "main",
            "parallelism": WIDTH,
            "templates": [
                {"name": "main", "dag": {"tasks": dag}},
                {"name": "noop", "container": _container([TRUE])},
            ],
        },
    }


def dag_shape(shape: str, *, tasks: int, layers: int) -> list[int]:
    """The number of pods per barrier-separated group, for the bare pool to run the same shape."""
    if shape == "flat":
        return [tasks]
    if shape == "chains":  # tasks/layers chains: a width-2 pool never waits, as with flat
        return [tasks // layers * layers]
    per = tasks // layers
    groups: list[int] = []
    for layer in range(layers):
        groups.append(per)
        if layer < layers - 1:
            groups.append(1)
    return groups


def items_manifest(n: int) -> dict[str, Any]:
    return {
        "metadata": {"generateName": "bench-items-"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "steps": [[{"name": "each", "template": "noop", "withItems": list(range(n))}]]},
                {"name": "noop", "container": _container([TRUE])},
            ],
        },
    }


def chain_manifest(steps: int) -> dict[str, Any]:
    return {
        "metadata": {"generateName": "bench-chain-"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "steps": [[{"name": f"s{i}", "template": "stamp"}] for i in range(steps)]},
                {"name": "stamp", "container": _container([DATE, "+%s%N"])},
            ],
        },
    }


# -- harness ---------------------------------------------------------------------------------------

class WorkflowFailed(RuntimeError):
    """A benchmark run did not succeed (the figures would be meaningless)."""


class NoopExecutor:
    """Every pod succeeds at once, no process: measures the engine and the store alone."""

    async def run(self, pod: PodRequest, *, on_ready: Callable[[str], None]) -> PodResult:
        return PodResult(phase=NodePhase.SUCCEEDED, exit_code=0, result="")


class Recording:
    """Wraps an executor; records (called, returned) ``time.time_ns()`` per pod, in call order."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.calls: list[tuple[str, int, int, PodResult]] = []

    async def run(self, pod: PodRequest, *, on_ready: Callable[[str], None]) -> PodResult:
        called = time.time_ns()
        result = await self.inner.run(pod, on_ready=on_ready)
        self.calls.append((pod.node_id, called, time.time_ns(), result))
        return result


@asynccontextmanager
async def engine_with(executor_for: Callable[[Any], Executor], *, store_kind: str,
                      tmp: Path) -> AsyncIterator[Engine]:
    store: Any = MemoryStore() if store_kind == "memory" else await SqliteStore.open(tmp / "bench.db")
    engine = Engine(store=store, executor=executor_for(store), templates=DictTemplateGetter())
    try:
        yield engine
    finally:
        await engine.close()
        await store.flush()
        if isinstance(store, SqliteStore):
            await store.close()


async def run_workflow(engine: Engine, manifest: dict[str, Any], *, profile: Path | None = None) -> float:
    """Submit and wait; returns seconds from submit to the persisted final state. Fails loudly."""
    prof = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if prof:
        prof.enable()
    sub = await engine.submit(manifest)
    done = await engine.wait(sub["metadata"]["namespace"], sub["metadata"]["name"])
    if prof:
        prof.disable()
        prof.dump_stats(str(profile))
    elapsed = time.perf_counter() - started
    phase = done["status"].get("phase")
    if phase != "Succeeded":
        raise WorkflowFailed(f"{sub['metadata']['name']} ended {phase}: {done['status'].get('message')}")
    return elapsed


def local_executor(tmp: Path, isolation: str) -> Callable[[Any], Executor]:
    def build(store: Any) -> Executor:
        return LocalExecutor(data_dir=tmp, artifacts=LocalArtifactStore(tmp / "artifacts"), logs=store,
                             isolation=isolation, grace_period=2)  # type: ignore[arg-type]
    return build


async def bare_pool(argv: Sequence[str], groups: Sequence[int]) -> float:
    """Seconds for a width-2 asyncio subprocess pool to run ``argv`` sum(groups) times, group by group."""
    async def one() -> None:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL, start_new_session=True)
        if await proc.wait() != 0:
            raise RuntimeError(f"bare pool: {argv} failed")

    async def worker(counter: list[int]) -> None:
        while counter[0] > 0:
            counter[0] -= 1
            await one()

    started = time.perf_counter()
    for n in groups:
        counter = [n]
        await asyncio.gather(*(worker(counter) for _ in range(WIDTH)))
    return time.perf_counter() - started


# -- benchmarks ------------------------------------------------------------------------------------

async def bench_dag(sizes: dict[str, Any], *, repeat: int, profile: Path | None) -> dict[str, Any]:
    isolations = ["none"]
    out: dict[str, Any] = {}
    if await bwrap_works():
        isolations.append("bwrap")
    else:
        out["bwrap"] = "unavailable (bwrap cannot build a sandbox here)"
    captured: list[tuple[str, ...]] = []
    real_start = processes.start

    async def capturing_start(launch: processes.Launch, **kw: Any) -> processes.Running:
        if not captured:
            captured.append(tuple(launch.argv))
        return await real_start(launch, **kw)

    processes.start = capturing_start  # to print and replay the bwrap argv
    try:
        for isolation in isolations:
            for shape in ("flat", "layered", "chains"):
                manifest = dag_manifest(shape, tasks=sizes["dag_tasks"], layers=sizes["layers"])
                groups = dag_shape(shape, tasks=sizes["dag_tasks"], layers=sizes["layers"])
                rows: dict[str, list[float]] = {"engine_s": [], "bare_s": [], "ratio": []}
                if isolation == "bwrap":
                    rows |= {"bare_bwrap_s": [], "ratio_vs_bare_bwrap": []}
                failed = None
                for i in range(repeat):
                    tmp = Path(tempfile.mkdtemp(prefix="bench-dag-", dir=_scratch()))
                    try:
                        captured.clear()
                        async with engine_with(local_executor(tmp, isolation), store_kind="sqlite", tmp=tmp) as eng:
                            bare = await bare_pool([TRUE], groups)
                            prof = profile / f"dag-{isolation}-{shape}.pstats" if profile and i == 0 else None
                            try:
                                took = await run_workflow(eng, manifest, profile=prof)
                            except WorkflowFailed as e:  # an engine bug: report it, measure the rest
                                failed = str(e)[:300]
                                break
                            rows["engine_s"].append(took)
                            rows["bare_s"].append(bare)
                            rows["ratio"].append(took / bare)
                            if isolation == "bwrap":
                                argv = captured[0]
                                out["bwrap_argv"] = list(argv)
                                bare_bw = await bare_pool(argv, groups)  # the sandbox's own start-up cost
                                rows["bare_bwrap_s"].append(bare_bw)
                                rows["ratio_vs_bare_bwrap"].append(took / bare_bw)
                    finally:
                        shutil.rmtree(tmp, ignore_errors=True)
                pods = sum(groups)
                if failed is not None:
                    out[f"{isolation}_{shape}"] = {"pods": pods, "error": failed}
                    continue
                per_pod_ms = round(statistics.median(rows["engine_s"]) / pods * 1e3, 3)
                out[f"{isolation}_{shape}"] = {"pods": pods, **{k: summary(v) for k, v in rows.items()},
                                               "engine_ms_per_pod": per_pod_ms}
    finally:
        processes.start = real_start
    out["target_ratio_max"] = 1.5
    return out


def gc_timer() -> list[float]:
    """Accumulates the seconds the cyclic garbage collector runs (index 0) from now on."""
    total = [0.0, 0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            total[1] = time.perf_counter()
        else:
            total[0] += time.perf_counter() - total[1]

    gc.callbacks.append(on_gc)
    return total


async def items_child(n: int, store_kind: str, profile: Path | None) -> dict[str, Any]:
    gc_seconds = gc_timer()
    tmp = Path(tempfile.mkdtemp(prefix="bench-items-", dir=_scratch()))
    try:
        async with engine_with(lambda store: NoopExecutor(), store_kind=store_kind, tmp=tmp) as eng:
            took = await run_workflow(eng, items_manifest(n), profile=profile)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"seconds": took, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "gc_seconds": gc_seconds[0]}


def run_child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed: {proc.stderr[-2000:]}")
    parsed: dict[str, Any] = json.loads(proc.stdout)
    return parsed


async def bench_items(sizes: dict[str, Any], *, repeat: int, profile: Path | None) -> dict[str, Any]:
    small, large = sizes["items"]
    out: dict[str, Any] = {"target_seconds_max": 3.0, "target_rss_mb_max": 300, "target_scaling_max": 2.2}
    for store_kind in ("memory", "sqlite"):
        secs: dict[int, list[float]] = {small: [], large: []}
        rss: dict[int, list[float]] = {small: [], large: []}
        gcs: dict[int, list[float]] = {small: [], large: []}
        scaling: list[float] = []
        for i in range(repeat):
            for n in (small, large):
                args = ["--child-items", str(n), "--store", store_kind]
                if profile and i == 0:
                    args += ["--profile", str(profile / f"items-{store_kind}-{n}.pstats")]
                r = await asyncio.to_thread(run_child, args)
                secs[n].append(r["seconds"])
                rss[n].append(r["maxrss_mb"])
                gcs[n].append(r["gc_seconds"])
            scaling.append(secs[large][-1] / secs[small][-1])
        out[store_kind] = {
            **{f"n{n}": {"seconds": summary(secs[n]), "peak_rss_mb": summary(rss[n]), "gc_seconds": summary(gcs[n])}
               for n in (small, large)},
            f"ratio_{large}_to_{small}": summary(scaling),
        }
    return out


async def bench_latency(sizes: dict[str, Any], *, repeat: int, profile: Path | None) -> dict[str, Any]:
    steps = sizes["steps"]
    engine_ms: list[float] = []
    process_ms: list[float] = []
    bare_ms: list[float] = []
    p90: list[float] = []
    for i in range(repeat):
        tmp = Path(tempfile.mkdtemp(prefix="bench-lat-", dir=_scratch()))
        rec: Recording | None = None

        def build(store: Any, tmp: Path = tmp) -> Executor:
            nonlocal rec
            rec = Recording(local_executor(tmp, "none")(store))
            return rec

        try:
            async with engine_with(build, store_kind="sqlite", tmp=tmp) as eng:
                prof = profile / "latency.pstats" if profile and i == 0 else None
                await run_workflow(eng, chain_manifest(steps), profile=prof)
            assert rec is not None
            calls = sorted(rec.calls, key=lambda c: c[1])
            to_call = [(b[1] - a[2]) / 1e6 for a, b in itertools.pairwise(calls)]
            to_exec = [(int((b[3].result or "0").strip()) - a[2]) / 1e6 for a, b in itertools.pairwise(calls)]
            engine_ms.append(statistics.median(to_call))
            p90.append(statistics.quantiles(to_call, n=10)[-1] if len(to_call) > 1 else to_call[0])
            process_ms.append(statistics.median(to_exec))
            bare_ms.append(await bare_spawn_ms(steps))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return {
        "steps": steps,
        "ready_to_run_call_ms": summary(engine_ms),
        "ready_to_run_call_p90_ms": summary(p90),
        "ready_to_process_ms": summary(process_ms),
        "bare_spawn_to_process_ms": summary(bare_ms),
        "target_ms_max": 10.0,
    }


async def bare_spawn_ms(n: int) -> float:
    """Median ms from asking asyncio for a process to ``date +%s%N`` reading the clock in it."""
    delays = []
    for _ in range(n):
        before = time.time_ns()
        proc = await asyncio.create_subprocess_exec(DATE, "+%s%N", stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        delays.append((int(out.strip()) - before) / 1e6)
    return statistics.median(delays)


BENCHMARKS: dict[str, Callable[..., Coroutine[Any, Any, dict[str, Any]]]] = {
    "dag": bench_dag, "items": bench_items, "latency": bench_latency,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append", help="run only this benchmark")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="write cProfile stats (first repetition) into this dir")
    parser.add_argument("--child-items", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--store", default="memory", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configure_logging(json=True, level="info", stream=sys.stderr)  # as the server logs; stdout is the report
    tune_gc()  # as the server process tunes its collector
    if args.child_items is not None:
        result = asyncio.run(items_child(args.child_items, args.store, args.profile))
        print(json.dumps(result))
        return 0
    sizes = QUICK if args.quick else FULL
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"quick": args.quick, "repeat": args.repeat, "cpus": os.cpu_count(),
                              "python": sys.version.split()[0]}
    for name in args.only or list(BENCHMARKS):
        started = time.perf_counter()
        report[name] = asyncio.run(BENCHMARKS[name](sizes, repeat=args.repeat, profile=args.profile))
        report[name]["bench_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
