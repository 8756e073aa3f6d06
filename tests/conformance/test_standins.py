"""
The image stand-ins of ``tests/conformance/bin`` behave like the programs they stand in for.

The Argo-examples suite trusts them to answer as nginx, InfluxDB 1.x, busybox nc and ash do; these
tests run each one as a real process on a free loopback port (``NGINX_PORT``/``INFLUXD_PORT``) and
talk to it over HTTP/TCP, so a broken stand-in fails here rather than as a confusing example row.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BIN = Path(__file__).parent / "bin"
FASTBIN = Path(__file__).parent / "fastbin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode  # died
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"nothing listens on {port}")


@contextmanager
def _serving(argv: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_listening(port, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _http(url: str, data: bytes | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_nginx_serves_the_welcome_page_and_stops_cleanly_on_term() -> None:
    port = _free_port()
    with _serving([str(BIN / "nginx"), "-g", "daemon off;"], {"NGINX_PORT": str(port)}, port) as proc:
        status, body = _http(f"http://127.0.0.1:{port}/")
        assert status == 200 and "<title>Welcome to nginx!</title>" in body
        assert _http(f"http://127.0.0.1:{port}/missing")[0] == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None and '"GET / HTTP/1.1" 200 612' in proc.stdout.read().decode()


def test_influxd_creates_writes_and_selects_in_influxdbs_json_shape() -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with _serving([str(BIN / "influxd")], {"INFLUXD_PORT": str(port)}, port) as proc:
        assert _http(f"{base}/ping")[0] == 204
        assert _http(f"{base}/write?db=nodb", b"cpu load=1")[0] == 404
        form = urllib.parse.urlencode({"q": "CREATE DATABASE mydb"}).encode()
        assert json.loads(_http(f"{base}/query", form)[1]) == {"results": [{"statement_id": 0}]}
        lines = b"cpu,host=server01,region=uswest load=2 1000000000\ncpu,host=server03,region=useast load=15.4"
        assert _http(f"{base}/write?db=mydb", lines)[0] == 204
        query = urllib.parse.urlencode({"db": "mydb", "q": "SELECT * FROM cpu", "pretty": "true"})
        status, body = _http(f"{base}/query?{query}")
        assert status == 200 and '\n    "results": [' in body
        series = json.loads(body)["results"][0]["series"]
        assert series[0]["name"] == "cpu" and series[0]["columns"] == ["time", "host", "load", "region"]
        assert series[0]["values"][0] == ["1970-01-01T00:00:01Z", "server01", 2, "uswest"]
        assert series[0]["values"][1][1:] == ["server03", 15.4, "useast"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_nc_keeps_listening_and_a_second_listener_leaves_the_port_to_the_first() -> None:
    port = _free_port()
    argv = [str(BIN / "nc"), "-lk", "-p", str(port), "-e", "/bin/true"]
    with _serving(argv, {}, port) as first:
        for _ in range(3):  # -k: still accepting after a connection
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            _wait_listening(port, first)
        second = subprocess.Popen(argv, stderr=subprocess.PIPE)
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                second.wait(timeout=1)  # stays up like a daemon instead of failing to bind
        finally:
            second.kill()
            second.wait()
            assert second.stderr is not None
            assert b"already listened on" in second.stderr.read()
            second.stderr.close()


def test_sh_is_busybox_ash() -> None:
    """Images' sh accepts bash's `>& file` and has $RANDOM (Debian's dash does neither)."""
    out = subprocess.run([str(BIN / "sh"), "-c", 'echo hi >& /dev/stdout; echo "${RANDOM:-none}"'],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "hi" and out[1].isdigit()


@pytest.mark.parametrize("args", [["0.5"], ["1s"], ["1m", "0.5"], ["0"]], ids=["plain", "unit", "sum", "zero"])
def test_dilated_sleep_accepts_gnu_durations(args: list[str]) -> None:
    assert subprocess.run([str(FASTBIN / "sleep"), *args], timeout=30).returncode == 0
