"""Manifest reload of a real ``gittrigger serve``: SIGHUP and ``--watch-config``, atomic on errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gittrigger.eventsources import EventSourceRegistry
from gittrigger.reload import Reloader, build_configuration, failing_file
from gittrigger.triggers import SourceLoops
from workflows.configmaps import ConfigMaps
from workflows.errors import InvalidSpec, NotFound
from workflows.resolution import DictTemplateGetter
from workflows.store.memory import MemoryStore

pytestmark = pytest.mark.timeout(60)

TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: say}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: busybox, command: ["true"]}
"""

HOOK = """\
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: hooks}
spec:
  webhook:
    build: {endpoint: /build, method: POST, port: "12000"}
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: builder}
spec:
  dependencies:
  - {name: dep, eventSourceName: hooks, eventName: build}
  triggers:
  - template:
      name: run
      argoWorkflow:
        operation: submit
        source:
          resource:
            apiVersion: argoproj.io/v1alpha1
            kind: Workflow
            metadata: {generateName: built-}
            spec:
              workflowTemplateRef: {name: say}
"""

OTHER_HOOK = """\
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: more}
spec:
  webhook:
    deploy: {endpoint: /deploy, method: POST, port: "12000"}
"""


def free_port() -> int:
    import socket

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
        return e.code, json.loads(e.read() or b"{}")


class Server:
    """A ``serve`` subprocess whose log lines (JSON) are collected by a thread."""

    def __init__(self, manifests: Path, data: Path, *, watch: bool) -> None:
        self.port = free_port()
        args = [sys.executable, "-m", "gittrigger", "serve", str(manifests), "--port", str(self.port),
                "--data-dir", str(data), "--isolation", "none"]
        self.process = subprocess.Popen(
            [*args, "--watch-config"] if watch else args, cwd=data.parent, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "GITTRIGGER_LOG_JSON": "true", "GITTRIGGER_GRACE_PERIOD_SECONDS": "2"})
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for(lambda: self.logged("server started"), what="server start")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                self.lines.append({"event": line.strip()})

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [line for line in list(self.lines) if line.get("event") == event]

    def wait_for(self, condition: Any, *, what: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while not (result := condition()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {what}; log: {self.lines[-20:]}")
            time.sleep(0.05)
        return result

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self._reader.join(timeout=5)
            assert self.process.stdout is not None
            self.process.stdout.close()


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "template.yaml").write_text(TEMPLATE)
    return folder


@pytest.fixture
def server(tmp_path: Path, manifests: Path) -> Iterator[Server]:
    running = Server(manifests, tmp_path / "data", watch=False)
    yield running
    running.stop()


@pytest.fixture
def watching(tmp_path: Path, manifests: Path) -> Iterator[Server]:
    running = Server(manifests, tmp_path / "data", watch=True)
    yield running
    running.stop()


def runs_of(port: int, sensor: str) -> list[dict[str, Any]]:
    status, body = call(port, "GET", "/api/v1/workflows/default")
    assert status == 200
    return [w for w in body.get("items") or []
            if (w["metadata"].get("labels") or {}).get("gittrigger.io/sensor") == sensor]


def test_sighup_adds_a_sensor_and_a_bad_file_is_refused(server: Server, manifests: Path) -> None:
    assert call(server.port, "POST", "/build", {"n": 1})[0] == 404
    (manifests / "hook.yaml").write_text(HOOK)
    server.process.send_signal(signal.SIGHUP)
    reloaded = server.wait_for(lambda: server.logged("manifests reloaded"), what="reload")
    assert reloaded[0]["endpoints"] == 1 and reloaded[0]["sensors"] == 1
    assert call(server.port, "POST", "/build", {"n": 1})[0] == 202
    runs = server.wait_for(lambda: runs_of(server.port, "builder"), what="run submitted by the sensor")
    assert runs[0]["metadata"]["name"].startswith("built-")

    broken = manifests / "broken.yaml"
    broken.write_text(OTHER_HOOK + "---\nkind: Sensor\nmetadata: {name: bad}\nspec: {dependencies: []}\n")
    server.process.send_signal(signal.SIGHUP)
    refused = server.wait_for(lambda: server.logged("reload refused"), what="refusal")
    assert refused[0]["file"] == str(broken)
    assert "bad" in refused[0]["reason"] or "dependencies" in refused[0]["reason"]
    assert len(server.logged("manifests reloaded")) == 1
    # The running configuration is untouched: the old endpoint serves, the new one does not exist.
    assert call(server.port, "POST", "/build", {"n": 2})[0] == 202
    assert call(server.port, "POST", "/deploy", {"n": 2})[0] == 404
    assert server.wait_for(lambda: len(runs_of(server.port, "builder")) == 2, what="second run")


def test_a_missing_secret_is_refused_without_dropping_endpoints(server: Server, manifests: Path) -> None:
    (manifests / "hook.yaml").write_text(HOOK)
    server.process.send_signal(signal.SIGHUP)
    server.wait_for(lambda: server.logged("manifests reloaded"), what="reload")
    (manifests / "hook.yaml").write_text(HOOK.replace(
        "port: \"12000\"}", "port: \"12000\", authSecret: {name: nowhere, key: token}}"))
    server.process.send_signal(signal.SIGHUP)
    refused = server.wait_for(lambda: server.logged("reload refused"), what="refusal")
    assert "nowhere/token" in refused[0]["reason"]
    assert refused[0]["file"] == str(manifests / "hook.yaml")
    assert call(server.port, "POST", "/build", {"n": 1})[0] == 202


def test_watch_config_reloads_on_change_without_a_signal(watching: Server, manifests: Path) -> None:
    assert call(watching.port, "POST", "/deploy", {})[0] == 404
    (manifests / "more.yaml").write_text(OTHER_HOOK)
    watching.wait_for(lambda: watching.logged("manifests reloaded"), what="reload on file change")
    assert call(watching.port, "POST", "/deploy", {})[0] == 202
    (manifests / "more.yaml").unlink()
    watching.wait_for(lambda: len(watching.logged("manifests reloaded")) == 2, what="reload on removal")
    assert call(watching.port, "POST", "/deploy", {})[0] == 404


class NoSecrets:
    def resolve(self, name: str, key: str) -> bytes:
        raise NotFound("secret", f"{name}/{key}")


@pytest.mark.parametrize(("text", "expect"), [
    (TEMPLATE.replace("entrypoint: main", "entrypoint: missing"), "entrypoint"),
    ("kind: Sensor\nmetadata: {name: bad}\nspec: {dependencies: []}\n", "dependencies"),
    (OTHER_HOOK.replace("/deploy", "deploy"), "endpoint"),
    (TEMPLATE.replace("metadata: {name: say}", "metadata: {}"), "metadata.name"),
    ("kind: [unclosed\n", ""),
    ("kind: ConfigMap\nmetadata: {}\ndata: {n: '2'}\n", "metadata.name"),
    ("kind: WorkflowEventBinding\nmetadata: {name: b}\nspec: {event: {}}\n", "spec.event.selector"),
], ids=["template-does-not-validate", "sensor-does-not-parse", "bad-eventsource", "nameless-template", "yaml-error",
        "nameless-configmap", "binding-without-selector"])
def test_build_configuration_names_the_file(tmp_path: Path, text: str, expect: str) -> None:
    (tmp_path / "t.yaml").write_text(TEMPLATE)
    bad = tmp_path / "z.yaml"
    bad.write_text(text if "kind: WorkflowTemplate" not in text else text.replace("name: say", "name: other"))
    with pytest.raises(InvalidSpec) as caught:
        build_configuration([tmp_path], namespace="default", secrets=NoSecrets())
    assert expect in str(caught.value)
    assert failing_file(caught.value, [tmp_path / "t.yaml", bad]) == str(bad)


def test_build_configuration_counts_what_it_found(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(TEMPLATE)
    (tmp_path / "h.yaml").write_text(HOOK + "---\n" + OTHER_HOOK)
    config = build_configuration([tmp_path], namespace="ns", secrets=NoSecrets())
    assert [e.path for e in config.registry.endpoints()] == ["/build", "/deploy"]
    assert [s.name for s in config.sensors] == ["builder"]
    assert [w.metadata.namespace for w in config.templates] == ["ns"]
    assert dict(config.counts) == {"EventSource": 2, "Sensor": 1, "WorkflowTemplate": 1}


async def test_a_reload_swaps_in_configmaps_and_stores_bindings(tmp_path: Path) -> None:
    """Semaphore sizes follow the ConfigMaps in the files; WorkflowEventBindings land in the store."""
    (tmp_path / "t.yaml").write_text(TEMPLATE)
    (tmp_path / "cm.yaml").write_text("kind: ConfigMap\nmetadata: {name: limits}\ndata: {builds: '3'}\n")
    (tmp_path / "b.yaml").write_text(
        "kind: WorkflowEventBinding\nmetadata: {name: on-event}\n"
        "spec: {event: {selector: 'true'}, submit: {workflowTemplateRef: {name: say}}}\n")
    (tmp_path / "h.yaml").write_text(HOOK)
    store, configmaps, statuses = MemoryStore(), ConfigMaps(), Statuses()
    reloader = Reloader(paths=[tmp_path], namespace="ns", secrets=NoSecrets(), store=store,
                        templates=DictTemplateGetter(),
                        registry=EventSourceRegistry.from_manifests([], secrets=NoSecrets()),
                        dispatcher=NoSensors(), configmaps=configmaps, statuses=statuses)
    assert await reloader.reload()
    assert configmaps.limit("ns", "limits", "builds") == 3
    assert [s["metadata"]["name"] for s in statuses.sources] == ["hooks"]  # commit statuses follow reloads
    assert [b["metadata"]["name"] for b in await store.list_objects("WorkflowEventBinding", "ns")] == ["on-event"]
    (tmp_path / "cm.yaml").write_text("kind: ConfigMap\nmetadata: {}\n")
    assert not await reloader.reload()  # refused: the running sizes stay
    assert configmaps.limit("ns", "limits", "builds") == 3


class Statuses:
    def __init__(self) -> None:
        self.sources: list[Any] = []

    def replace_sources(self, sources: Any) -> None:
        self.sources = list(sources)


class NoSensors:
    def replace_sensors(self, sensors: Any) -> None:
        pass


class IdleLoop:
    def __init__(self, label: str) -> None:
        self.label = label

    async def run(self) -> None:
        await asyncio.Event().wait()


def calendar(name: str, **events: str) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": {"name": name},
            "spec": {"calendar": {event: {"schedule": schedule} for event, schedule in events.items()}}}


async def test_source_loops_restart_only_what_changed() -> None:
    made: list[str] = []

    def make(source: str, event: str, spec: Any) -> tuple[str, Any]:
        made.append(f"{source}/{event}")
        return f"{source}/{event}", IdleLoop(f"{source}/{event}")

    loops = SourceLoops(make)
    try:
        assert loops.update([calendar("cron", nightly="0 3 * * *", hourly="0 * * * *")]) == 2
        assert loops.update([calendar("cron", nightly="0 3 * * *", hourly="0 * * * *")]) == 0
        assert loops.update([calendar("cron", nightly="0 4 * * *", hourly="0 * * * *")]) == 2  # stop + start
        assert made == ["cron/nightly", "cron/hourly", "cron/nightly"]
        assert loops.update([]) == 2
        assert loops.count(IdleLoop) == 0
    finally:
        for task in loops.stop_all():
            with contextlib.suppress(asyncio.CancelledError):
                await task
