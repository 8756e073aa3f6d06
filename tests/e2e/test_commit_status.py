"""
A push-started run reports its commit status to a (fake, loopback) GitHub API: pending while it
runs, success when it succeeds, with the token from the EventSource's ``apiToken`` secret.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

import pytest

SHA = "0123456789abcdef0123456789abcdef01234567"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _FakeGitHub(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        self.send_response(201)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


MANIFESTS = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: gh}
spec:
  github:
    push:
      webhook: {endpoint: /hook, port: "12000", method: POST}
      events: [push]
      apiToken: {name: gh, key: token}
      statusApiURL: http://127.0.0.1:%(api)d
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: ci}
spec:
  dependencies: [{name: push, eventSourceName: gh, eventName: push}]
  triggers:
  - template:
      name: build
      argoWorkflow:
        operation: submit
        source:
          resource:
            apiVersion: argoproj.io/v1alpha1
            kind: Workflow
            metadata: {generateName: build-}
            spec:
              entrypoint: main
              templates:
              - name: main
                container: {image: busybox, command: [sh, -c, "sleep 0.5; echo built"]}
"""


@pytest.mark.timeout(90)
def test_push_run_reports_pending_then_success(tmp_path: Path) -> None:
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeGitHub)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    port = _free_port()
    data = tmp_path / "data"
    (data / "secrets" / "gh").mkdir(parents=True)
    (data / "secrets" / "gh" / "token").write_text("s3cret-token\n")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "ci.yaml").write_text(MANIFESTS % {"api": api.server_address[1]})
    server = subprocess.Popen(
        [sys.executable, "-m", "gittrigger", "serve", "--port", str(port), "--data-dir", str(data), str(manifests)],
        env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
                    resp.read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        body = json.dumps({
            "ref": "refs/heads/main", "before": "0" * 40, "after": SHA,
            "repository": {"full_name": "dev/demo", "html_url": "https://github.com/dev/demo",
                           "clone_url": "https://github.com/dev/demo.git"},
            "head_commit": {"id": SHA, "message": "m", "added": [], "modified": [], "removed": []},
            "commits": [], "pusher": {"name": "dev"}}).encode()
        req = urllib.request.Request(f"{base}/hook", data=body, method="POST", headers={
            "Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-42"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 202
        deadline = time.monotonic() + 40
        while len(_FakeGitHub.seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
        api.shutdown()
        api.server_close()
    states = [s["body"]["state"] for s in _FakeGitHub.seen]
    assert states == ["pending", "success"], (_FakeGitHub.seen, out[-3000:])
    first = _FakeGitHub.seen[0]
    assert first["path"] == f"/repos/dev/demo/statuses/{SHA}"
    assert first["auth"] == "Bearer s3cret-token"
    assert first["body"]["context"] == "gittrigger/ci"
    assert "s3cret-token" not in out
