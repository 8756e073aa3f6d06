"""
End to end: ``gittrigger serve`` killed with SIGKILL while 20 workflows (a few short steps each)
run, then started again on the same data dir. Over the Argo API, ``list`` and ``get`` show every
workflow, and each one reaches its own final phase: Succeeded, or Failed for those built to fail.
Real processes, real sockets on loopback; the kill lands wherever it lands.

The local executor cannot re-attach to a pod's processes after its server died: such a pod ends
Error ("its result was lost"). Argo's answer to lost pods is ``retryStrategy.retryPolicy:
OnError``, which the steps here use, so a lost step runs again while a step that fails by its own
exit code (Failed) is not retried: the run's final phase is decided by the steps alone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "restart-admin-token-0123456789"
NS = "default"
RUNS = 20
FINISHED = ("Succeeded", "Failed", "Error")

pytestmark = pytest.mark.timeout(90)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _start(tmp: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "GITTRIGGER_ADMIN_TOKEN": TOKEN, "GITTRIGGER_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gittrigger", "serve", str(tmp / "manifests"), "--port", str(port),
         "--data-dir", str(tmp / "data"), "--isolation", "none"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"server did not start: {process.communicate()[0][-3000:]}") from None
            time.sleep(0.1)


def workflow(i: int) -> dict[str, Any]:
    """Three sequential steps of ~0.3 s; every fourth run's last step exits 3."""
    last = "exit 3" if i % 4 == 0 else "echo done"
    steps = [["sleep 0.3; echo one"], ["sleep 0.3; echo two"], [f"sleep 0.3; {last}"]]
    return {"metadata": {"name": f"restart-{i:02d}", "labels": {"suite": "restart"}}, "spec": {
        "entrypoint": "main",
        "templates": [
            {"name": "main", "steps": [[{"name": f"s{n}", "template": f"t{n}"}] for n in range(len(steps))]},
            *({"name": f"t{n}", "retryStrategy": {"limit": 3, "retryPolicy": "OnError"},
               "container": {"image": "busybox", "command": ["sh", "-c", *cmd]}}
              for n, cmd in enumerate(steps)),
        ]}}


def expected_phase(i: int) -> str:
    return "Failed" if i % 4 == 0 else "Succeeded"


def test_sigkill_while_running_then_every_workflow_finishes_after_restart(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start(tmp_path, port)
    try:
        for i in range(RUNS):
            status, created = _call(base, "POST", f"/api/v1/workflows/{NS}", {"workflow": workflow(i)})
            assert status == 200, created
        # Kill once some step has started, while (almost surely) most are still running.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            items = _call(base, "GET", f"/api/v1/workflows/{NS}?listOptions.labelSelector=suite%3Drestart")[1]["items"]
            if any(len((w.get("status") or {}).get("nodes") or {}) > 2 for w in items):
                break
            time.sleep(0.05)
        unfinished_at_kill = sum(1 for w in items if (w.get("status") or {}).get("phase") not in FINISHED)
    finally:
        server.send_signal(signal.SIGKILL)
        server.communicate(timeout=30)
    assert unfinished_at_kill > 0, "every run finished before the kill: the test proved nothing"

    server = _start(tmp_path, port)
    try:
        deadline = time.monotonic() + 45
        while True:
            status, listed = _call(base, "GET", f"/api/v1/workflows/{NS}?listOptions.labelSelector=suite%3Drestart")
            assert status == 200, listed
            phases = {w["metadata"]["name"]: (w.get("status") or {}).get("phase") for w in listed["items"]}
            if all(p in FINISHED for p in phases.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert sorted(phases) == [f"restart-{i:02d}" for i in range(RUNS)]
        lost = 0
        for i in range(RUNS):
            status, got = _call(base, "GET", f"/api/v1/workflows/{NS}/restart-{i:02d}")
            assert status == 200, got
            nodes = got["status"]["nodes"].values()
            assert got["status"]["phase"] == expected_phase(i), (got["metadata"]["name"], got["status"])
            # Every step ran to its own end: the failing run fails at its last step, by its exit code.
            steps = {n["displayName"]: n["phase"] for n in nodes if n["type"] == "Retry"}
            assert steps == {"s0": "Succeeded", "s1": "Succeeded", "s2": expected_phase(i)}, nodes
            if i % 4 == 0:
                failed = [n for n in nodes if n["type"] == "Pod" and n["phase"] == "Failed"]
                assert [n["outputs"]["exitCode"] for n in failed] == ["3"], failed
            lost += sum(1 for n in nodes if n["type"] == "Pod" and "result was lost" in (n.get("message") or ""))
        print(f"unfinished at the kill: {unfinished_at_kill}, pods lost and retried: {lost}")
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
