"""
Ingest benchmarks: signed GitHub push deliveries into a real ``gittrigger serve`` process. Run by
hand (see bench/README.md) and, with ``--quick``, by ``tests/test_bench_ingest_smoke.py``.

Prints one JSON object on stdout. Each figure is measured ``--repeat`` times (default 3; a fresh
server and data dir each time) and reported as ``{"median", "spread" (max - min), "values"}``,
with its target next to it. The server is a subprocess (``python -m gittrigger serve``) on a
free loopback port, data dir under ``.gittrigger/bench/`` (removed afterwards unless ``--keep``),
its log (level ``--log-level``, default info, as deployed) to a file in that dir.

- ``throughput``: one GitHub EventSource with a webhook secret, one Sensor with a ``log`` trigger
  (so the engine is not what is measured). ``--clients`` concurrent clients, each on its own
  keep-alive connection, POST signed pushes, each with its own ``X-GitHub-Delivery``, for
  ``--seconds``: deliveries/s over the window, p50/p99 answer latency (from before the request is
  written to after the whole answer is read), and the count of non-202 answers. The client runs
  in this process and shares the 2 cores with the server, so it is a lean one (:class:`Connection`,
  raw HTTP/1.1 on asyncio streams, ~0.1 ms of CPU per request where aiohttp's client took ~0.2 ms);
  its CPU is reported as ``client_cpu_per_s``. ``event_log_fsync``: the window's WAL fsyncs, read
  from the server's ``/metrics`` histogram before and after (count, mean, the bucket holding the
  99th percentile, how many over 16 ms): every 2xx waits for one, so on a shared disk whose fsync
  stalls now and then this is where the answer p99 goes. Dispatch is reported
  beside it: ``dispatched_in_window`` (events dispatched by the window's end / stored) and
  ``dispatch_catch_up_s`` (from the window's end until every stored event was dispatched): while
  deliveries keep arriving the dispatcher yields to them (see ``sensors.dispatcher``).
- ``to_process``: a Sensor submitting a one-step workflow whose container runs ``date +%s%N``
  directly (isolation none); sequential deliveries; for each, the step's ``outputs.result`` (the
  process's own CLOCK_REALTIME reading at start) minus the client's ``time.time_ns()`` just
  before the POST: webhook sent -> first step process running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".gittrigger" / "bench"
SECRET = "bench-secret"
TARGETS = {"deliveries_per_s": ">= 2000", "answer_p99_ms": "< 20", "to_process_p50_ms": "< 50"}

SOURCE = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: bench}
spec:
  github:
    push:
      webhook: {endpoint: /push, port: "12000", method: POST}
      events: ["push"]
      webhookSecret: {name: github, key: secret}
"""
LOG_SENSOR = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: ingest}
spec:
  dependencies: [{name: push, eventSourceName: bench, eventName: push}]
  triggers:
  - template:
      name: note
      log: {intervalSeconds: 0}
"""
RUN_SENSOR = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: stamp}
spec:
  dependencies: [{name: push, eventSourceName: bench, eventName: push}]
  triggers:
  - template:
      name: stamp
      argoWorkflow:
        operation: submit
        source:
          resource:
            apiVersion: argoproj.io/v1alpha1
            kind: Workflow
            metadata: {generateName: stamp-}
            spec:
              entrypoint: stamp
              templates:
              - name: stamp
                container: {image: busybox, command: [date, "+%s%N"]}
"""


LAST_SERVER_PID = [0]
LAST_DATA_DIR: list[Path] = []


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux ``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def push_body(n: int) -> bytes:
    sha = hashlib.sha1(str(n).encode()).hexdigest()
    return json.dumps({
        "ref": "refs/heads/main", "before": "0" * 40, "after": sha,
        "repository": {"name": "demo", "full_name": "dev/demo", "clone_url": "file:///nowhere/demo.git"},
        "head_commit": {"id": sha, "message": f"commit {n}", "added": [], "modified": ["a.txt"], "removed": []},
        "commits": [{"id": sha, "message": f"commit {n}", "added": [], "modified": ["a.txt"], "removed": []}],
        "pusher": {"name": "dev"},
    }).encode()


def signed_headers(body: bytes, delivery: str) -> dict[str, str]:
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sig}


def summary(values: Sequence[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 3), "spread": round(max(values) - min(values), 3),
            "values": [round(v, 3) for v in values]}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


FSYNC_METRIC = "gittrigger_event_log_fsync_duration_seconds"


async def fsync_histogram(base: str) -> dict[str, float]:
    """The server's event-log fsync histogram from ``/metrics``: cumulative count per bucket bound
    (``"+Inf"`` included), plus ``"sum"``."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as resp:
        text = await resp.text()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(f"{FSYNC_METRIC}_bucket"):
            out[line.split('le="', 1)[1].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{FSYNC_METRIC}_sum "):
            out["sum"] = float(line.rsplit(" ", 1)[1])
    return out


def fsync_figures(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """The window's WAL fsyncs (every 2xx waits for one): count, mean, the bucket bound holding
    the 99th percentile, and how many took over 16 ms. The disk's share of the answer latency."""
    count = after["+Inf"] - before["+Inf"]
    bounds = [b for b in after if b not in ("+Inf", "sum")]
    p99_le = None
    for bound in bounds:
        if count and after[bound] - before[bound] >= 0.99 * count:
            p99_le = float(bound) * 1e3
            break
    over_16 = count - (after["0.016"] - before["0.016"])
    return {"count": int(count), "mean_ms": (after["sum"] - before["sum"]) / count * 1e3 if count else None,
            "p99_le_ms": p99_le, "over_16ms": int(over_16)}


@asynccontextmanager
async def server(manifests: str, *, log_level: str, keep: bool,
                 profile: Path | None = None) -> AsyncIterator[str]:
    """A ``gittrigger serve`` subprocess with ``manifests``; yields its base URL (and, through
    :data:`LAST_SERVER_PID`, its pid, for :func:`cpu_seconds`). ``profile``: run it under cProfile."""
    data = BENCH_DIR / f"ingest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    (data / "secrets" / "github").mkdir(parents=True)
    (data / "secrets" / "github" / "secret").write_text(SECRET)
    (data / "manifests").mkdir()
    (data / "manifests" / "bench.yaml").write_text(manifests)
    port = free_port()
    env = {**os.environ, "GITTRIGGER_LOG_LEVEL": log_level}
    wrap = ["-m", "cProfile", "-o", str(profile)] if profile else []
    with (data / "server.log").open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, *wrap, "-m", "gittrigger", "serve", "--port", str(port), "--data-dir", str(data),
             "--isolation", "none", str(data / "manifests")], env=env, stdout=out, stderr=subprocess.STDOUT,
            cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with session.get(f"{base}/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {(data / 'server.log').read_text()[-2000:]}")
                await asyncio.sleep(0.1)
        LAST_SERVER_PID[0] = proc.pid
        LAST_DATA_DIR[:] = [data]
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if not keep:
            shutil.rmtree(data, ignore_errors=True)


class Connection:
    """One keep-alive HTTP/1.1 connection doing as little client work per request as it can.

    The load generator shares the 2 cores with the server: aiohttp's client spent ~0.2 ms of CPU
    per request (half a core at 2,500/s), CPU the server's answers then queued behind. A Git
    host's deliveries come from other machines; a lean client keeps the measure about the server.
    Latency is still counted from before the request is written to after its whole answer is read.
    """

    def __init__(self, base: str) -> None:
        host_port = base.removeprefix("http://")
        self._host, _, port = host_port.partition(":")
        self._port = int(port)
        self._authority = host_port.encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST ``body``; returns (status, answer body)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        head = b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
        self._writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + self._authority
                           + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + head + b"\r\n" + body)
        answer_head = await self._reader.readuntil(b"\r\n\r\n")
        lines = answer_head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise RuntimeError(f"unexpected Transfer-Encoding {value.strip()!r} (the server answers with a length)")
            elif name == b"connection" and b"close" in value.lower():
                close = True
        answer = await self._reader.readexactly(length)
        if close:
            await self.close()
        return status, answer

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._reader = self._writer = None


async def throughput(base: str, *, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` tasks posting for ``seconds``; rate, latency percentiles, non-202 answers."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(10**9))
    connections = [Connection(base) for _ in range(clients)]
    fsyncs = await fsync_histogram(base)
    server_cpu = cpu_seconds(LAST_SERVER_PID[0])
    client_cpu = time.process_time()
    start = time.perf_counter()
    stop = start + seconds

    async def client(conn: Connection) -> None:
        while time.perf_counter() < stop:
            n = next(counter)
            body = push_body(n)
            headers = signed_headers(body, f"bench-{n}-{uuid.uuid4()}")
            sent = time.perf_counter()
            status, _ = await conn.post("/push", body, headers)
            latencies.append(time.perf_counter() - sent)
            statuses[status] = statuses.get(status, 0) + 1

    try:
        await asyncio.gather(*(client(conn) for conn in connections))
    finally:
        for conn in connections:
            await conn.close()
    elapsed = time.perf_counter() - start
    server_cpu = cpu_seconds(LAST_SERVER_PID[0]) - server_cpu
    client_cpu = time.process_time() - client_cpu
    fsync = fsync_figures(fsyncs, await fsync_histogram(base))
    stored, in_window = dispatch_counts(LAST_DATA_DIR[0])
    catch_up = await dispatch_catch_up(LAST_DATA_DIR[0])
    ordered = sorted(latencies)
    return {"deliveries": len(latencies), "seconds": elapsed, "per_s": len(latencies) / elapsed,
            "p50_ms": percentile(ordered, 0.50) * 1e3, "p99_ms": percentile(ordered, 0.99) * 1e3,
            "non_202": sum(c for s, c in statuses.items() if s != 202), "statuses": statuses,
            "server_cpu_per_s": server_cpu / elapsed, "client_cpu_per_s": client_cpu / elapsed,
            "event_log_fsync": fsync, "stored": stored, "dispatched_in_window": in_window,
            "dispatch_catch_up_s": catch_up}


async def at_rate(base: str, *, rate: float, seconds: float, connections: int) -> dict[str, Any]:
    """Open loop: deliveries sent on a fixed schedule of ``rate`` a second for ``seconds``, each one's
    latency counted from the moment it was due (so a stalled server, or client, cannot hide its
    queue: no coordinated omission); at most ``connections`` keep-alive connections."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(Connection(base))
    fsyncs = await fsync_histogram(base)
    server_cpu = cpu_seconds(LAST_SERVER_PID[0])

    async def one(n: int, due: float) -> None:
        body = push_body(n)
        headers = signed_headers(body, f"rate-{n}-{uuid.uuid4()}")
        conn = await idle.get()
        try:
            status, _ = await conn.post("/push", body, headers)
        finally:
            idle.put_nowait(conn)
        latencies.append(time.perf_counter() - due)
        statuses[status] = statuses.get(status, 0) + 1

    # Only the deliveries in flight are kept: holding all 20,000 finished tasks to the end made the
    # client's own full collections take 40-50 ms, counted as answer latency of the server.
    running: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []

    def finished(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            failures.append(error)

    start = time.perf_counter()
    total = int(rate * seconds)
    try:
        for n in range(total):
            due = start + n / rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            task = asyncio.create_task(one(n, due))
            running.add(task)
            task.add_done_callback(finished)
        await asyncio.gather(*running)
        if failures:
            raise failures[0]
    finally:
        while not idle.empty():
            await idle.get_nowait().close()
    elapsed = time.perf_counter() - start
    server_cpu = cpu_seconds(LAST_SERVER_PID[0]) - server_cpu
    fsync = fsync_figures(fsyncs, await fsync_histogram(base))
    ordered = sorted(latencies)
    return {"deliveries": len(latencies), "achieved_per_s": len(latencies) / elapsed, "event_log_fsync": fsync,
            "p50_ms": percentile(ordered, 0.50) * 1e3, "p99_ms": percentile(ordered, 0.99) * 1e3,
            "max_ms": ordered[-1] * 1e3, "non_202": sum(c for s, c in statuses.items() if s != 202),
            "server_cpu_per_s": server_cpu / elapsed}


def dispatch_counts(data: Path) -> tuple[int, int]:
    """(events stored, events dispatched) in the server's event log, read beside it (WAL)."""
    with contextlib.closing(sqlite3.connect(data / "events.db", timeout=10)) as conn:
        total, done = conn.execute("SELECT count(*), coalesce(sum(dispatched), 0) FROM events").fetchone()
    return int(total), int(done)


async def dispatch_catch_up(data: Path, *, timeout: float = 300.0) -> float | None:
    """Seconds from now until every stored event is dispatched (None: not within ``timeout``)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        total, done = dispatch_counts(data)
        if done >= total:
            return round(time.perf_counter() - start, 3)
        await asyncio.sleep(0.05)
    return None


async def to_process(base: str, *, deliveries: int) -> dict[str, Any]:
    """Sequential deliveries; per delivery, client send -> ``date +%s%N`` of the run's step."""
    delays: list[float] = []
    async with aiohttp.ClientSession() as session:
        for n in range(deliveries):
            body = push_body(n)
            headers = signed_headers(body, f"stamp-{n}-{uuid.uuid4()}")
            sent_ns = time.time_ns()
            async with session.post(f"{base}/push", data=body, headers=headers) as resp:
                answer = await resp.json()
                if resp.status != 202:
                    raise RuntimeError(f"delivery answered {resp.status}: {answer}")
            selector = f"gittrigger.io/event-id={answer['id']}"
            deadline = time.monotonic() + 30
            while True:
                async with session.get(f"{base}/api/v1/workflows/default",
                                       params={"listOptions.labelSelector": selector}) as resp:
                    items = (await resp.json()).get("items") or []
                phase = items[0].get("status", {}).get("phase") if items else None
                if phase in ("Succeeded", "Failed", "Error"):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no finished run for event {answer['id']}")
                await asyncio.sleep(0.05)
            if phase != "Succeeded":
                raise RuntimeError(f"run {items[0]['metadata']['name']} {phase}: {items[0]['status']}")
            pods = [node for node in items[0]["status"]["nodes"].values() if node["type"] == "Pod"]
            started_ns = int(pods[0]["outputs"]["result"].strip())
            delays.append((started_ns - sent_ns) / 1e6)
    ordered = sorted(delays)
    return {"deliveries": deliveries, "p50_ms": statistics.median(delays), "p90_ms": percentile(ordered, 0.9),
            "max_ms": ordered[-1]}


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions (default 3, 1 with --quick)")
    parser.add_argument("--clients", type=int, default=None, help="concurrent clients (default 32)")
    parser.add_argument("--seconds", type=float, default=None, help="throughput window (default 10)")
    parser.add_argument("--deliveries", type=int, default=None, help="sequential runs for to_process (default 50)")
    parser.add_argument("--rate", type=float, default=None,
                        help="deliveries/s of the open-loop latency run (default 2000, the target)")
    parser.add_argument("--only", choices=("throughput", "latency", "to_process"), default=None)
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--profile", type=Path, default=None,
                        help="write the throughput server's cProfile stats here (first repetition)")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs under .gittrigger/bench/")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    clients = args.clients or (4 if args.quick else 32)
    seconds = args.seconds or (0.5 if args.quick else 10.0)
    deliveries = args.deliveries or (3 if args.quick else 50)
    rate = args.rate or (200.0 if args.quick else 2000.0)
    report: dict[str, Any] = {"targets": TARGETS, "repeat": repeat, "cpus": os.cpu_count(),
                              "log_level": args.log_level}
    if args.only in (None, "throughput"):
        runs = []
        for i in range(repeat):
            profile = args.profile.resolve() if args.profile and i == 0 else None
            async with server(SOURCE + "---" + LOG_SENSOR, log_level=args.log_level, keep=args.keep,
                              profile=profile) as base:
                runs.append(await throughput(base, clients=clients, seconds=seconds))
        report["throughput"] = {
            "clients": clients, "seconds": seconds,
            "deliveries_per_s": {**summary([r["per_s"] for r in runs]), "target": TARGETS["deliveries_per_s"]},
            "answer_p50_ms": summary([r["p50_ms"] for r in runs]),
            "answer_p99_ms": {**summary([r["p99_ms"] for r in runs]), "target": TARGETS["answer_p99_ms"]},
            "deliveries": [r["deliveries"] for r in runs],
            "server_cpu_per_s": summary([r["server_cpu_per_s"] for r in runs]),
            "client_cpu_per_s": summary([r["client_cpu_per_s"] for r in runs]),
            "event_log_fsync": [r["event_log_fsync"] for r in runs],
            "non_202": sum(r["non_202"] for r in runs),
            "statuses": [r["statuses"] for r in runs],
            "dispatched_in_window": [f"{r['dispatched_in_window']}/{r['stored']}" for r in runs],
            "dispatch_catch_up_s": [r["dispatch_catch_up_s"] for r in runs],
        }
    if args.only in (None, "latency"):
        runs = []
        for _ in range(repeat):
            async with server(SOURCE + "---" + LOG_SENSOR, log_level=args.log_level, keep=args.keep) as base:
                runs.append(await at_rate(base, rate=rate, seconds=seconds, connections=64))
        report["latency"] = {
            "rate_per_s": rate, "seconds": seconds, "connections": 64,
            "achieved_per_s": summary([r["achieved_per_s"] for r in runs]),
            "answer_p50_ms": summary([r["p50_ms"] for r in runs]),
            "answer_p99_ms": {**summary([r["p99_ms"] for r in runs]), "target": TARGETS["answer_p99_ms"]},
            "answer_max_ms": summary([r["max_ms"] for r in runs]),
            "server_cpu_per_s": summary([r["server_cpu_per_s"] for r in runs]),
            "event_log_fsync": [r["event_log_fsync"] for r in runs],
            "non_202": sum(r["non_202"] for r in runs),
        }
    if args.only in (None, "to_process"):
        runs = []
        for _ in range(repeat):
            async with server(SOURCE + "---" + RUN_SENSOR, log_level=args.log_level, keep=args.keep) as base:
                runs.append(await to_process(base, deliveries=deliveries))
        report["to_process"] = {
            "deliveries": deliveries,
            "p50_ms": {**summary([r["p50_ms"] for r in runs]), "target": TARGETS["to_process_p50_ms"]},
            "p90_ms": summary([r["p90_ms"] for r in runs]),
            "max_ms": summary([r["max_ms"] for r in runs]),
        }
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=2, default=str))
