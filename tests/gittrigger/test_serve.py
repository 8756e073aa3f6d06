"""``gittrigger serve`` as a real subprocess: health, submit over HTTP, SIGTERM, nothing left behind."""

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "workflows"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def processes_with(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:
            pass
    return found


def workflow(command: list[str]) -> dict[str, Any]:
    return {"metadata": {"generateName": "served-"}, "spec": {"entrypoint": "main", "templates": [
        {"name": "main", "container": {"image": "busybox", "command": command}}]}}


def start_server(tmp_path: Path, *, port: int) -> subprocess.Popen[str]:
    """A serve subprocess on ``port`` with its data in ``tmp_path/data``, once /healthz answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gittrigger", "serve", str(FIXTURES / "with-template.yaml"), "--port", str(port),
         "--data-dir", str(tmp_path / "data"), "--isolation", "none"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "GITTRIGGER_LOG_JSON": "true", "GITTRIGGER_GRACE_PERIOD_SECONDS": "2"},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if call(port, "GET", "/healthz")[0] == 200:
                return process
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"server did not become healthy: {process.communicate()[1]}")
        time.sleep(0.1)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = start_server(tmp_path, port=port)
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def wait_for_phase(port: int, name: str, phases: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        status, body = call(port, "GET", f"/api/v1/workflows/default/{name}")
        assert status == 200, body
        if body.get("status", {}).get("phase") in phases:
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def test_submit_over_http_then_sigterm(server: tuple[subprocess.Popen[str], int]) -> None:
    """A workflow submitted over HTTP succeeds (templateRef served from the loaded file); SIGTERM exits 0."""
    process, port = server
    submitted = {"metadata": {"generateName": "uses-"}, "spec": {"entrypoint": "main", "templates": [
        {"name": "main", "steps": [[{"name": "echo", "templateRef": {"name": "shared-echo", "template": "echo"},
                                     "arguments": {"parameters": [{"name": "text", "value": "served"}]}}]]}]}}
    status, created = call(port, "POST", "/api/v1/workflows/default", {"workflow": submitted})
    assert status == 200, created
    final = wait_for_phase(port, created["metadata"]["name"], {"Succeeded", "Failed", "Error"})
    assert final["status"]["phase"] == "Succeeded"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert "server started" in events
    assert events[-1] == "server stopped"


def test_sigterm_kills_running_pods(server: tuple[subprocess.Popen[str], int]) -> None:
    """A graceful stop kills the pods of unfinished runs; nothing is left running."""
    process, port = server
    marker = "298.456"
    status, created = call(port, "POST", "/api/v1/workflows/default", {"workflow": workflow(["sleep", marker])})
    assert status == 200, created
    deadline = time.monotonic() + 30
    while not processes_with(f"sleep\x00{marker}"):
        assert time.monotonic() < deadline, "the pod never started"
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert processes_with(f"sleep\x00{marker}") == []


def test_restart_keeps_runs_and_settles_lost_pods(server: tuple[subprocess.Popen[str], int], tmp_path: Path) -> None:
    """Runs survive a restart in SQLite; a pod killed by the stop is reported lost, ending the run in Error."""
    process, port = server
    status, created = call(port, "POST", "/api/v1/workflows/default", {"workflow": workflow(["sleep", "299.789"])})
    assert status == 200, created
    name = created["metadata"]["name"]
    deadline = time.monotonic() + 30
    while not processes_with("sleep\x00299.789"):
        assert time.monotonic() < deadline, "the pod never started"
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    restarted = start_server(tmp_path, port=port)
    try:
        final = wait_for_phase(port, name, {"Succeeded", "Failed", "Error"})
        assert final["status"]["phase"] == "Error"
        assert "lost" in final["status"]["message"]
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.communicate(timeout=30)
    assert restarted.returncode == 0


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--host", "0.0.0.0", "--check"], 2, "server.host: refusing to listen on '0.0.0.0'"),
    (["--port", "abc", "--check"], 2, "server.port: must be an integer 1-65535, got 'abc'"),
    ([str(FIXTURES / "invalid.yaml"), "--check"], 2, "invalid.yaml: spec.templates[0].steps[0][0].template"),
    ([str(FIXTURES / "with-template.yaml"), "--check"], 0, ""),
], ids=["non-loopback", "bad-port", "invalid-manifest", "valid"])
def test_check(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    """--check validates settings and manifests without serving; mistakes are one line, no traceback."""
    result = subprocess.run([sys.executable, "-m", "gittrigger", "serve", *args, "--data-dir", str(tmp_path)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_file_is_one_line(tmp_path: Path) -> None:
    """A typo in the settings file stops the server before it starts, naming the key."""
    (tmp_path / "settings.yaml").write_text("server:\n  prot: 1234\n")
    result = subprocess.run([sys.executable, "-m", "gittrigger", "serve", "--config", "settings.yaml"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "gittrigger serve: settings.yaml: server.prot: unknown setting " \
                                    "(known: host, port, max_body_bytes)"
