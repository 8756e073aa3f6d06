"""
End to end: ``gittrigger serve`` killed with SIGKILL while signed GitHub deliveries arrive, then
restarted on the same data dir: every delivery that was acknowledged (2xx) has produced exactly
one run, and no delivery produced two. Runs are matched to deliveries through the events API
(``deliveryId`` -> event ``id``) and the runs' ``gittrigger.io/event-id`` label. Real processes,
real sockets on loopback; the kill lands wherever it lands, and the assertions hold for any spot.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sensors.dispatcher import LABEL_EVENT, label_value

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = Path(__file__).parent / "fixtures" / "restart-deliveries.yaml"
SECRET = "restart-secret"
ACKED_BEFORE_KILL = 25


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _deliver(base: str, delivery: str, n: int) -> tuple[int, Any]:
    """POST one signed push; (status, JSON answer). Raises OSError when the server is gone."""
    sha = hashlib.sha1(delivery.encode()).hexdigest()
    body = json.dumps({"ref": "refs/heads/main", "before": "0" * 40, "after": sha,
                       "repository": {"name": "demo", "full_name": "dev/demo"},
                       "head_commit": {"id": sha, "message": f"commit {n}"}, "commits": []}).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{base}/push", data=body, method="POST", headers={
        "Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sig})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, None


class _Sender(threading.Thread):
    """Sends deliveries ``d-0``, ``d-1``, ... one after another until stopped; records the 2xx ones."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.acked: dict[str, str] = {}  # delivery id -> event id from the answer
        self.failed: list[str] = []  # no answer (connection refused/reset): may or may not be stored
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            delivery = f"d-{n}"
            try:
                status, answer = _deliver(self.base, delivery, n)
            except OSError:
                self.failed.append(delivery)
                time.sleep(0.01)
            else:
                if 200 <= status < 300:
                    with self.lock:
                        self.acked[delivery] = answer["id"]
            n += 1


def _start(data: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "GITTRIGGER_LOG_LEVEL": "warning"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gittrigger", "serve", "--port", str(port), "--data-dir", str(data),
         "--isolation", "none", str(MANIFESTS)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, cwd=ROOT)
    deadline = time.monotonic() + 30
    while True:
        try:
            if _get(f"http://127.0.0.1:{port}/readyz") is not None:
                return proc
        except (OSError, ValueError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"server did not start: {proc.communicate()[0][-2000:]}") from None
            time.sleep(0.1)


def _events(base: str) -> list[dict[str, Any]]:
    """Every stored event (all pages of the audit API)."""
    items: list[dict[str, Any]] = []
    before = ""
    while True:
        page = _get(f"{base}/api/v1/gittrigger/events?limit=500{before}")
        items += page["items"]
        if page["nextBefore"] is None:
            return items
        before = f"&before={page['nextBefore']}"


def _runs_per_event(base: str) -> Counter[str]:
    runs = _get(f"{base}/api/v1/workflows/default")["items"] or []
    return Counter(run["metadata"]["labels"][LABEL_EVENT] for run in runs)


@pytest.mark.timeout(90)
def test_acknowledged_deliveries_run_exactly_once_across_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "secrets" / "github").mkdir(parents=True)
    (data / "secrets" / "github" / "secret").write_text(SECRET)
    port = _free_port()
    first = _start(data, port)
    sender = _Sender(f"http://127.0.0.1:{port}")
    try:
        sender.start()
        deadline = time.monotonic() + 30
        while len(sender.acked) < ACKED_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)  # while the sender is mid-stream
        first.wait(timeout=10)
        while not sender.failed and sender.is_alive():  # at least one delivery hit the dead server
            time.sleep(0.01)
        sender.stop.set()
        sender.join(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    acked = dict(sender.acked)
    assert len(acked) >= ACKED_BEFORE_KILL and sender.failed

    port = _free_port()
    second = _start(data, port)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            events = _events(base)
            runs = _runs_per_event(base)
            pending = [e for e in events if not e["dispatched"] or runs[label_value(e["id"])] == 0]
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert not pending, pending[:5]
        by_delivery = {e["deliveryId"]: e["id"] for e in events}
        assert len(by_delivery) == len(events)  # one event per delivery id
        for delivery, event_id in acked.items():
            assert by_delivery.get(delivery) == event_id, (delivery, event_id)
            assert runs[label_value(event_id)] == 1, (delivery, runs[label_value(event_id)])
        assert max(runs.values()) == 1, runs.most_common(3)
        assert set(runs) == {label_value(e["id"]) for e in events}  # no run without its event

        # the host redelivers an acknowledged delivery after the restart: same event, no second run
        redelivered = sorted(acked)[:3]
        for n, delivery in enumerate(redelivered):
            status, answer = _deliver(base, delivery, n)
            assert (status, answer) == (200, {"id": acked[delivery], "duplicate": True})
        assert _runs_per_event(base) == runs
    finally:
        second.terminate()
        out, _ = second.communicate(timeout=30)
    assert second.returncode == 0, out[-2000:]
