"""
End to end: a real ``git push`` to a local bare repository whose post-receive hook POSTs a
signed GitHub push -> the example EventSource and Sensor -> a workflow that checks out that exact
commit with pygit2 and runs a command on its files -> Succeeded. Real processes, real sockets.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "it's a secret"
HOOK = r"""#!/usr/bin/env python3
import hashlib, hmac, json, os, subprocess, sys, urllib.request, uuid
repo = os.path.abspath(os.getcwd())
for line in sys.stdin:
    old, new, ref = line.split()
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    message = git("log", "-1", "--format=%B", new)
    body = json.dumps({
        "ref": ref, "before": old, "after": new,
        "repository": {"name": "demo", "full_name": "dev/demo", "clone_url": "file://" + repo},
        "head_commit": {"id": new, "message": message, "added": [], "modified": [], "removed": []},
        "commits": [{"id": new, "message": message, "added": [], "modified": [], "removed": []}],
        "pusher": {"name": "dev"},
    }).encode()
    sig = "sha256=" + hmac.new(os.environ["HOOK_SECRET"].encode(), body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(os.environ["HOOK_URL"], data=body, method="POST", headers={
        "Content-Type": "application/json", "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": sig})
    print("webhook:", urllib.request.urlopen(req, timeout=10).status)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


@pytest.mark.timeout(120)
def test_git_push_runs_the_pushed_commit(tmp_path: Path) -> None:
    """Push -> signed webhook -> sensor -> checkout of that commit -> Succeeded, message intact."""
    port = _free_port()
    data = tmp_path / "data"
    (data / "secrets" / "github").mkdir(parents=True)
    (data / "secrets" / "github" / "secret").write_text(SECRET)
    origin = tmp_path / "origin.git"
    _git("init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    hook = origin / "hooks" / "post-receive"
    hook.write_text(HOOK)
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    work = tmp_path / "work"
    _git("clone", "-q", str(origin), str(work), cwd=tmp_path)
    (work / "hello.txt").write_text("hello from the pushed commit\n")
    message = 'ship it: "quotes" $(id) {{workflow.name}}'
    _git("add", ".", cwd=work)
    _git("-c", "user.email=dev@example.com", "-c", "user.name=dev", "commit", "-qm", message, cwd=work)
    sha = _git("rev-parse", "HEAD", cwd=work).strip()

    env = {**os.environ, "GITTRIGGER_LOG_LEVEL": "info"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gittrigger", "serve", "--port", str(port), "--data-dir", str(data),
         str(ROOT / "examples")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(f"{base}/healthz")["status"] == "ok":
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        push_env = {**os.environ, "HOOK_URL": f"{base}/push", "HOOK_SECRET": SECRET}
        pushed = subprocess.run(["git", "push", "-q", "origin", "main"], cwd=work, env=push_env,
                                capture_output=True, text=True, check=True)
        assert "webhook: 202" in pushed.stderr + pushed.stdout
        deadline = time.monotonic() + 60
        while True:
            items = _get(f"{base}/api/v1/workflows/default")["items"]
            done = [w for w in items if (w.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Error")]
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert len(done) == 1, items
        run = done[0]
        assert run["status"]["phase"] == "Succeeded", run["status"]
        assert run["metadata"]["labels"]["gittrigger.io/sensor"] == "ci"
        params = {p["name"]: p["value"] for p in run["spec"]["arguments"]["parameters"]}
        assert params["revision"] == sha
        pods = [n for n in run["status"]["nodes"].values() if n["type"] == "Pod"]
        result = pods[0]["outputs"]["result"]
        assert "hello.txt" in result  # the pushed commit's files were checked out
        assert f"commit: {message}" in result  # the message is data: not run, not expanded
        events = _get(f"{base}/api/v1/gittrigger/events")["items"]
        assert [e["sourceKind"] for e in events] == ["github"]
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0, out[-2000:]
