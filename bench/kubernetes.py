"""
Kubernetes executor benchmark: a 1,000-pod ``withItems`` with ``parallelism: 50`` through the
engine and :class:`~workflows.executors.kubernetes.KubernetesExecutor` against the fake API
(``tests/kube/fakeapi.py``) answering every request after ``--latency`` (5 ms).

The fake runs in a child process (``--serve-fake``), with its kubelet off: a scheduled pod is
marked Running at once and Succeeded ``--pod-seconds`` later, with one main log line and the
wait container's ``GITTRIGGER_RESULT`` line (what the real helpers print). The child reports the
requests it served by verb when its stdin closes. The parent is "the server": engine,
MemoryStore and the executor with the real kubernetes-asyncio client. Prints one JSON object:
requests per pod, wall time against the bound parallelism sets (``ceil(pods / parallelism) *
pod_seconds``) and against the bound the token bucket sets (``requests / qps``), peak RSS of
the server process. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fake lives in tests/kube

T = "2026-01-01T00:00:00Z"


# -- the child: the fake API with pods that complete themselves --------------------------------


def _status(phase: str, state: dict[str, Any]) -> dict[str, Any]:
    return {"phase": phase, "podIP": "10.0.0.1", "startTime": T,
            "conditions": [{"type": "Ready", "status": "False"}],
            "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 0, "finishedAt": T}}}],
            "containerStatuses": [{"name": "main", "state": state}, {"name": "wait", "state": state}]}


async def serve_fake(*, latency: float, pod_seconds: float) -> None:
    from tests.kube.fakeapi import FakeKube

    class AutoKube(FakeKube):
        """Pods finish by themselves: Running at once, Succeeded after ``pod_seconds``."""

        def _schedule(self, pod: dict[str, Any]) -> None:
            super()._schedule(pod)
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            self.set_pod_status(ns, name, _status("Running", {"running": {"startedAt": T}}))
            asyncio.get_running_loop().call_later(pod_seconds, self._complete, ns, name)

        def _complete(self, ns: str, name: str) -> None:
            if self.pod(ns, name) is None:
                return
            self.add_log(ns, name, "main", [name])
            self.add_log(ns, name, "wait", ["GITTRIGGER_RESULT " + json.dumps({"result": name, "exitCode": 0})])
            done = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": T, "finishedAt": T}}
            self.set_pod_status(ns, name, _status("Succeeded", done))

    fake = AutoKube(kubelet=False, latency_seconds=latency, schema_check=False)  # the tests check schemas
    print(await fake.start(), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes it
    counts = {f"{verb} {resource}": n for (verb, resource), n in sorted(fake.requests.items())}
    await fake.close()
    print(json.dumps(counts), flush=True)


# -- the parent: the server ---------------------------------------------------------------------


def manifest(pods: int, parallelism: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "fanout", "namespace": "default"},
        "spec": {
            "entrypoint": "main",
            "parallelism": parallelism,
            "templates": [
                {"name": "main", "steps": [[{"name": "item", "template": "echo", "withItems": list(range(pods)),
                                             "arguments": {"parameters": [{"name": "i", "value": "{{item}}"}]}}]]},
                {"name": "echo", "inputs": {"parameters": [{"name": "i"}]},
                 "container": {"image": "alpine", "command": ["echo", "{{inputs.parameters.i}}"]}},
            ],
        },
    }


async def run_server(url: str, *, pods: int, parallelism: int, qps: float, burst: int) -> dict[str, Any]:
    from kubernetes_asyncio import client

    from gittrigger.logs import configure_logging
    from workflows.engine import Engine
    from workflows.executors.kube.gc import Policy
    from workflows.executors.kubernetes import KubeOptions, KubernetesExecutor
    from workflows.resolution import DictTemplateGetter
    from workflows.store.memory import MemoryStore

    configure_logging(json=True, level="warning")
    configuration = client.Configuration(host=url)
    configuration.connection_pool_maxsize = 0
    store = MemoryStore()
    options = KubeOptions(helper_image="gittrigger:bench", server_url="http://127.0.0.1:1", qps=qps, burst=burst,
                          pod_gc=Policy(strategy="OnPodCompletion"))
    executor = KubernetesExecutor(client.ApiClient(configuration=configuration), options=options, logs=store,
                                  close_api=True)
    engine = Engine(store=store, executor=executor, templates=DictTemplateGetter())
    try:
        started = time.perf_counter()
        submitted = await engine.submit(manifest(pods, parallelism))
        wf = await engine.wait("default", submitted["metadata"]["name"])
        seconds = time.perf_counter() - started
        await executor.close()  # lets the last deletions go out before the counts are read
    finally:
        await engine.close()
        await executor.close()
    return {"phase": wf["status"]["phase"], "seconds": round(seconds, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--parallelism", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.005, help="seconds the fake waits per request")
    parser.add_argument("--pod-seconds", type=float, default=0.5, help="how long each pod runs")
    parser.add_argument("--qps", type=float, default=500.0)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="40 pods, parallelism 10 (a smoke run)")
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        asyncio.run(serve_fake(latency=args.latency, pod_seconds=args.pod_seconds))
        return
    if args.quick:
        args.pods, args.parallelism, args.pod_seconds = 40, 10, 0.1
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-fake", f"--latency={args.latency}", f"--pod-seconds={args.pod_seconds}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdin is not None and child.stdout is not None
    try:
        url = child.stdout.readline().strip()
        run = asyncio.run(run_server(url, pods=args.pods, parallelism=args.parallelism, qps=args.qps,
                                     burst=args.burst))
    finally:
        child.stdin.close()
        counts = json.loads(child.stdout.readline() or "{}")
        child.wait(timeout=30)
    per_pod = {k: v for k, v in counts.items() if not k.startswith(("list ", "watch "))}
    parallel_bound = math.ceil(args.pods / args.parallelism) * args.pod_seconds
    requests = sum(counts.values())
    report = {
        "pods": args.pods,
        "parallelism": args.parallelism,
        "latency_ms": args.latency * 1000,
        "pod_seconds": args.pod_seconds,
        "qps": args.qps,
        "burst": args.burst,
        "phase": run["phase"],
        "seconds": run["seconds"],
        "parallelism_bound_seconds": round(parallel_bound, 3),
        "ratio_to_parallelism_bound": round(run["seconds"] / parallel_bound, 3),
        "qps_bound_seconds": round(max(0.0, requests - args.burst) / args.qps, 3),
        "requests": counts,
        "requests_per_pod": round(sum(per_pod.values()) / args.pods, 3),
        "shared_requests": {k: v for k, v in counts.items() if k not in per_pod},
        "server_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
