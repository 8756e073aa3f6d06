"""Engine feature tests: daemon steps with readiness probes, sidecars, shared emptyDir and claim volumes."""

# ruff: noqa: E501  (workflow YAML lines)
from __future__ import annotations

import socket

from tests.workflows.conftest import Harness, node, phases, processes_with

FETCH = """import sys, time, urllib.request
for _ in range(100):
    try:
        print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit(1)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_daemon_step_reachable_and_stopped_with_scope(engine: Harness) -> None:
    port = free_port()
    wf = await engine.run_yaml(f"""
metadata: {{name: daemon}}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {{name: srv, template: srv}}
    - - name: client
        template: client
        arguments: {{parameters: [{{name: url, value: "http://{{{{steps.srv.ip}}}}:{port}/"}}]}}
  - name: srv
    daemon: true
    container:
      image: python
      command: [python3, -m, http.server, "{port}"]
      readinessProbe:
        httpGet: {{path: /, port: {port}}}
        periodSeconds: 1
  - name: client
    inputs: {{parameters: [{{name: url}}]}}
    container:
      image: python
      command: [python3, -c, "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).status)", "{{{{inputs.parameters.url}}}}"]
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    srv = node(wf, "srv")
    assert srv["daemoned"] is True
    assert srv["phase"] == "Succeeded"
    assert await engine.logs_of(wf, "client") == ["200"]
    assert processes_with(f"http.server {port}") == []


async def test_sidecar_reachable_and_killed_after_main(engine: Harness) -> None:
    port = free_port()
    wf = await engine.run_yaml(f"""
metadata: {{name: sidecar}}
spec:
  entrypoint: main
  templates:
  - name: main
    sidecars:
    - name: web
      image: python
      command: [sh, -c, "python3 -m http.server {port}; exit 7"]
    script:
      image: python
      command: [python3]
      source: |
{"".join("        " + line + chr(10) for line in FETCH.replace("sys.argv[1]", repr(f"http://127.0.0.1:{port}/")).splitlines())}
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert node(wf, "sidecar")["outputs"]["result"] == "200"
    assert processes_with(f"http.server {port}") == []


async def test_empty_dir_shared_by_init_sidecar_and_main(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: emptydir}
spec:
  entrypoint: main
  templates:
  - name: main
    volumes:
    - {name: shared, emptyDir: {}}
    initContainers:
    - name: init
      image: alpine
      command: [sh, -c, "echo from-init > /shared/init.txt"]
      volumeMounts: [{name: shared, mountPath: /shared}]
    sidecars:
    - name: side
      image: alpine
      command: [sh, -c, "echo from-side > /data/side.txt; sleep 30"]
      volumeMounts: [{name: shared, mountPath: /data}]
    container:
      image: alpine
      command: [sh, -c, "while [ ! -f /mnt/side.txt ]; do sleep 0.1; done; cat /mnt/init.txt /mnt/side.txt"]
      volumeMounts: [{name: shared, mountPath: /mnt}]
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert await engine.logs_of(wf) == ["from-init", "from-side"]


async def test_volume_claim_templates_shared_between_pods(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: claims}
spec:
  entrypoint: main
  volumeClaimTemplates:
  - metadata: {name: workdir}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Mi}}
  templates:
  - name: main
    steps:
    - - {name: write, template: write}
    - - {name: read, template: read}
  - name: write
    container:
      image: alpine
      command: [sh, -c, "echo persisted > /mnt/vol/f.txt"]
      volumeMounts: [{name: workdir, mountPath: /mnt/vol}]
  - name: read
    container:
      image: alpine
      command: [cat, /work/f.txt]
      volumeMounts: [{name: workdir, mountPath: /work}]
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert await engine.logs_of(wf, "read") == ["persisted"]


async def test_daemon_killed_when_its_scope_ends(engine: Harness) -> None:
    port = free_port()
    wf = await engine.run_yaml(f"""
metadata: {{name: daemon-scope}}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {{name: inner, template: inner}}
    - - {{name: check, template: closed}}
  - name: inner
    dag:
      tasks:
      - {{name: srv, template: srv}}
      - {{name: use, template: use, depends: srv}}
  - name: srv
    daemon: true
    container:
      image: python
      command: [python3, -m, http.server, "{port}"]
      readinessProbe:
        httpGet: {{path: /, port: {port}}}
        periodSeconds: 1
  - name: use
    container:
      image: python
      command: [python3, -c, "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=5).status)"]
  - name: closed
    container:
      image: python
      command: [python3, -c, "import socket; s = socket.socket(); print(s.connect_ex(('127.0.0.1', {port})) != 0)"]
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert await engine.logs_of(wf, "use") == ["200"]
    assert await engine.logs_of(wf, "check") == ["True"]
    assert node(wf, "srv")["phase"] == "Succeeded"
    assert node(wf, "check")["startedAt"] >= node(wf, "srv")["finishedAt"]
    assert processes_with(f"http.server {port}") == []


async def test_sidecar_exit_code_ignored_and_main_failure_counts(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: sidecar-exit}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: ok, template: ok}
      - {name: bad, template: bad}
  - name: ok
    sidecars:
    - {name: quitter, image: alpine, command: [sh, -c, "exit 3"]}
    container: {image: alpine, command: [sh, -c, "sleep 0.5; echo main-ok"]}
  - name: bad
    sidecars:
    - {name: sleeper, image: alpine, command: [sleep, "30"]}
    container: {image: alpine, command: [sh, -c, "exit 4"]}
""")
    assert node(wf, "ok")["phase"] == "Succeeded", phases(wf)
    assert node(wf, "bad")["phase"] == "Failed"
    assert node(wf, "bad")["outputs"]["exitCode"] == "4"
    assert wf["status"]["phase"] == "Failed"
