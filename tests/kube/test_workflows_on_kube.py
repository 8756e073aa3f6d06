"""
Whole workflows through the engine and the Kubernetes executor, against the fake API with the
real kubernetes-asyncio client.

Two kinds of cluster:

- **scripted** (``kubelet=False``): :class:`ScriptedKubelet` plays each created Pod from its main
  command (``echo WORDS`` succeeds printing them, ``fail N`` exits N, ``vanish`` is deleted once
  running the first time, ``serve`` is a Ready daemon). It needs nothing but the fake, and drives
  the engine paths: steps, withItems, retries on Error, a daemon's ``{{steps.x.ip}}``, exit
  handlers, a server restart mid-run (no pod runs twice), faults, requests per pod.
- **kubelet** (``kubelet=True``): pods really run, with the helper commands and the emissary;
  each workflow must end exactly as it does on the local executor. Skipped until
  ``gittrigger/podhelper.py`` and ``images/emissary/emissary.c`` exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from gittrigger.artifacttokens import ArtifactTokens
from gittrigger.assembly import assemble
from gittrigger.settings import load_settings
from tests.kube.conftest import MakeFakeKube, api_client_for
from tests.kube.fakeapi import FakeKube
from workflows.engine import Engine
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.kube.gc import Policy
from workflows.executors.kubernetes import KubeOptions, KubernetesExecutor
from workflows.executors.local import LocalExecutor
from workflows.loading import load_documents
from workflows.resolution import DictTemplateGetter
from workflows.store.memory import MemoryStore

NS = "default"
T = "2026-01-01T00:00:00Z"


def term(code: int) -> dict[str, Any]:
    return {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                           "startedAt": T, "finishedAt": T}}


def status(phase: str, main: dict[str, Any], *, ready: bool = False, wait: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    return {"phase": phase, "podIP": "10.1.2.3", "startTime": T,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "initContainerStatuses": [{"name": "init", "state": term(0)}],
            "containerStatuses": [{"name": "main", "state": main}, {"name": "wait", "state": wait or main}]}


class ScriptedKubelet:
    """Plays every Pod the fake schedules from its main command (see the module docstring)."""

    def __init__(self, fake: FakeKube) -> None:
        self.fake = fake
        self.gate = asyncio.Event()  # pods finish only while it is set
        self.gate.set()
        self.played: list[str] = []
        self._vanished = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ScriptedKubelet:
        self._loop = asyncio.create_task(self._scan())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in [self._loop, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in [self._loop, *self._tasks] if t is not None), return_exceptions=True)

    async def _scan(self) -> None:
        while True:
            for pod in self.fake.pods():
                name = pod["metadata"]["name"]
                if pod["spec"].get("nodeName") and name not in self.played:
                    self.played.append(name)
                    task = asyncio.create_task(self._play(pod))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            await asyncio.sleep(0.005)

    async def _play(self, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        command = pod["spec"]["containers"][0]["command"]
        argv = command[command.index("--") + 1:]
        running = {"running": {"startedAt": T}}
        self.fake.set_pod_status(NS, name, status("Running", running, ready=argv[0] == "serve"))
        if argv[0] == "serve":
            return  # a daemon runs until deleted
        await self.gate.wait()
        await asyncio.sleep(0.01)
        if argv[0] == "vanish" and not self._vanished:
            self._vanished = True
            self.fake.delete_pod(NS, name)
            return
        code = int(argv[1]) if argv[0] == "fail" else 0
        words = " ".join(argv[1:]) if argv[0] == "echo" else ""
        self.fake.add_log(NS, name, "main", [words] if words else [])
        report = {"result": words, "exitCode": code}
        self.fake.add_log(NS, name, "wait", ["GITTRIGGER_RESULT " + json.dumps(report)])
        self.fake.set_pod_status(NS, name, status("Succeeded" if code == 0 else "Failed", term(code), wait=term(0)))


@dataclass(slots=True)
class Cluster:
    fake: FakeKube
    kubelet: ScriptedKubelet
    store: MemoryStore
    engines: list[tuple[Engine, KubernetesExecutor]] = field(default_factory=list)

    async def start_engine(self) -> Engine:
        api = api_client_for(self.fake)
        options = KubeOptions(helper_image="gittrigger:test", server_url="http://127.0.0.1:1",
                              pod_gc=Policy(strategy="Never"), grace_period_seconds=0)
        executor = KubernetesExecutor(api, options=options, logs=self.store, close_api=True)
        engine = Engine(store=self.store, executor=executor, templates=DictTemplateGetter())
        engine.add_phase_listener(executor.on_workflow_phase)
        self.engines.append((engine, executor))
        return engine

    async def stop_engine(self, engine: Engine) -> None:
        """A server going down: pods keep running."""
        for e, executor in list(self.engines):
            if e is engine:
                executor.detach()
                await engine.close()
                await executor.close()
                self.engines.remove((e, executor))


@pytest.fixture
async def cluster(make_fake_kube: MakeFakeKube) -> AsyncIterator[Cluster]:
    fake = await make_fake_kube(kubelet=False)
    async with ScriptedKubelet(fake) as kubelet:
        c = Cluster(fake=fake, kubelet=kubelet, store=MemoryStore())
        yield c
        for engine, _ in list(c.engines):
            await c.stop_engine(engine)


async def run_yaml(engine: Engine, text: str) -> dict[str, Any]:
    [manifest] = load_documents(text, source="test")
    submitted = await engine.submit(manifest)
    return dict(await asyncio.wait_for(engine.wait(NS, submitted["metadata"]["name"]), 30))


def results(wf: dict[str, Any]) -> dict[str, str | None]:
    """displayName -> outputs.result of every pod node."""
    return {n["displayName"]: (n.get("outputs") or {}).get("result") for n in wf["status"]["nodes"].values()
            if n["type"] == "Pod"}


STEPS_AND_ITEMS = """
metadata: {name: items}
spec:
  entrypoint: main
  onExit: bye
  templates:
  - name: main
    steps:
    - - {name: hello, template: echo, arguments: {parameters: [{name: w, value: hello}]}}
    - - name: each
        template: echo
        arguments: {parameters: [{name: w, value: "{{item}}"}]}
        withItems: [a, b, c]
    - - name: last
        template: echo
        arguments: {parameters: [{name: w, value: "got {{steps.hello.outputs.result}}"}]}
  - name: echo
    inputs: {parameters: [{name: w}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.w}}"]}
  - name: bye
    container: {image: alpine, command: [echo, "bye {{workflow.status}}"]}
"""


async def test_steps_items_and_exit_handler(cluster: Cluster) -> None:
    """Steps, withItems and an exit handler run through the Kubernetes path, four requests a pod at most."""
    wf = await run_yaml(await cluster.start_engine(), STEPS_AND_ITEMS)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    got = results(wf)
    assert got["hello"] == "hello" and got["last"] == "got hello"
    assert sorted(str(v) for k, v in got.items() if k.startswith("each(")) == ["a", "b", "c"]
    assert got["items.onExit"] == "bye Succeeded"
    pods = len(cluster.kubelet.played)
    assert pods == 6 and cluster.fake.requests[("create", "pods")] == pods
    per_pod = sum(v for (verb, _), v in cluster.fake.requests.items() if verb not in ("list", "watch"))
    assert per_pod <= 4 * pods


async def test_deleted_pod_is_retried_on_error(cluster: Cluster) -> None:
    """A pod deleted under a running node is an Error, so retryPolicy OnError runs a new attempt."""
    wf = await run_yaml(await cluster.start_engine(), """
metadata: {name: flaky}
spec:
  entrypoint: main
  templates:
  - name: main
    retryStrategy: {limit: 2, retryPolicy: OnError}
    container: {image: alpine, command: [vanish]}
""")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    messages = [n.get("message") for n in wf["status"]["nodes"].values() if n["type"] == "Pod"]
    assert "pod deleted" in messages and len(cluster.kubelet.played) == 2


async def test_failed_pod_fails_the_workflow_with_its_exit_code(cluster: Cluster) -> None:
    wf = await run_yaml(await cluster.start_engine(), """
metadata: {name: failing}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine, command: [fail, "3"]}
""")
    assert wf["status"]["phase"] == "Failed"
    [pod] = [n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"]
    assert pod["message"] == "Error (exit code 3)"


async def test_daemon_ip_reaches_the_next_step_and_the_daemon_is_deleted(cluster: Cluster) -> None:
    wf = await run_yaml(await cluster.start_engine(), """
metadata: {name: daemon}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: server, template: server}
    - - name: client
        template: echo
        arguments: {parameters: [{name: w, value: "{{steps.server.ip}}"}]}
  - name: server
    daemon: true
    container: {image: alpine, command: [serve]}
  - name: echo
    inputs: {parameters: [{name: w}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.w}}"]}
""")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert results(wf)["client"] == "10.1.2.3"
    for _ in range(100):
        if not any(p["metadata"]["name"].startswith("daemon-server") for p in cluster.fake.pods()):
            break
        await asyncio.sleep(0.01)
    assert not any(p["metadata"]["name"].startswith("daemon-server") for p in cluster.fake.pods())


async def test_server_restart_mid_run_runs_no_pod_twice(cluster: Cluster) -> None:
    """The engine stops while a pod runs; a new engine re-attaches to it and finishes the run."""
    cluster.kubelet.gate.clear()
    first = await cluster.start_engine()
    [manifest] = load_documents(STEPS_AND_ITEMS, source="test")
    await first.submit(manifest)
    for _ in range(500):
        if cluster.kubelet.played:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # the run's state (hello Running) is persisted
    await cluster.stop_engine(first)
    assert cluster.fake.pods(), "the running pod must outlive the server"
    second = await cluster.start_engine()
    assert await second.resume_all() == 1
    cluster.kubelet.gate.set()
    wf = dict(await asyncio.wait_for(second.wait(NS, "items"), 30))
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert len(cluster.kubelet.played) == len(set(cluster.kubelet.played)) == 6
    assert cluster.fake.requests[("create", "pods")] == 6


async def test_volume_claim_templates_are_created_and_deleted_with_the_run(cluster: Cluster) -> None:
    """A run's claim exists before its pods are scheduled (the fake refuses them otherwise) and
    is deleted when the run ends."""
    wf = await run_yaml(await cluster.start_engine(), """
metadata: {name: claims}
spec:
  entrypoint: main
  volumeClaimTemplates:
  - metadata: {name: work}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Mi}}}
  templates:
  - name: main
    steps:
    - - {name: one, template: use}
    - - {name: two, template: use}
  - name: use
    container:
      image: alpine
      command: [echo, ok]
      volumeMounts: [{name: work, mountPath: /work}]
""")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert cluster.fake.requests[("create", "persistentvolumeclaims")] == 1
    async with api_client_for(cluster.fake) as api:
        for _ in range(100):
            claims = await client.CoreV1Api(api).list_namespaced_persistent_volume_claim(NS)
            if not claims.items:
                break
            await asyncio.sleep(0.01)
    assert claims.items == []


async def test_faults_mid_run(cluster: Cluster) -> None:
    """Dropped watches, a compacted history (410) and API 500s while a workflow runs."""
    engine = await cluster.start_engine()
    [manifest] = load_documents(STEPS_AND_ITEMS, source="test")
    await engine.submit(manifest)

    async def chaos() -> None:
        for i in range(6):
            await asyncio.sleep(0.03)
            cluster.fake.drop_watches()
            if i % 2:
                cluster.fake.compact()
            else:
                cluster.fake.fail_next(2, status=500)

    await chaos()
    wf = dict(await asyncio.wait_for(engine.wait(NS, "items"), 30))
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert len(cluster.kubelet.played) == 6


# -- kubelet mode: parity with the local executor ----------------------------------------------

# Kubelet mode needs the helper commands and podspec writing podplan's plan for them.
HELPERS = (importlib.util.find_spec("gittrigger.podhelper") is not None
           and "executors.podplan import" in (Path(__file__).parents[2] / "workflows/executors/podspec.py").read_text())
PARITY = {
    "script-result": """
metadata: {name: script}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: gen, template: gen}
    - - name: show
        template: show
        arguments: {parameters: [{name: v, value: "{{steps.gen.outputs.result}}"},
                                 {name: p, value: "{{steps.gen.outputs.parameters.p}}"}]}
  - name: gen
    script:
      image: python
      command: [python3]
      source: |
        open("/tmp/p.txt", "w").write("param")
        print(6 * 7)
    outputs:
      parameters: [{name: p, valueFrom: {path: /tmp/p.txt}}]
  - name: show
    inputs: {parameters: [{name: v}, {name: p}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.v}} {{inputs.parameters.p}}"]}
""",
    "dag-fail": """
metadata: {name: dag}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: a, template: ok}
      - {name: b, template: bad, dependencies: [a]}
  - name: ok
    container: {image: alpine, command: [sh, -c, "echo fine"]}
  - name: bad
    container: {image: alpine, command: [sh, -c, "exit 3"]}
""",
    "items-exit-handler": """
metadata: {name: items}
spec:
  entrypoint: main
  onExit: bye
  templates:
  - name: main
    steps:
    - - name: each
        template: echo
        arguments: {parameters: [{name: w, value: "{{item}}"}]}
        withItems: [a, b, c]
  - name: echo
    inputs: {parameters: [{name: w}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.w}}"]}
  - name: bye
    container: {image: alpine, command: [sh, -c, "echo bye {{workflow.status}}"]}
""",
    "retries": """
metadata: {name: retries}
spec:
  entrypoint: main
  templates:
  - name: main
    retryStrategy: {limit: 2, retryPolicy: OnFailure}
    container: {image: alpine, command: [sh, -c, "echo try; exit 1"]}
""",
    "sidecar-daemon": """
metadata: {name: services}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: server, template: server}
    - - name: client
        template: client
        arguments: {parameters: [{name: ip, value: "{{steps.server.ip}}"}]}
  - name: server
    daemon: true
    container:
      image: python
      command: [python3, -m, http.server, "18431"]
      readinessProbe: {httpGet: {path: /, port: 18431}, periodSeconds: 1}
  - name: client
    inputs: {parameters: [{name: ip}]}
    sidecars:
    - {name: side, image: alpine, command: [sh, -c, "sleep 30"]}
    script:
      image: python
      command: [python3]
      source: |
        import urllib.request
        print(urllib.request.urlopen("http://{{inputs.parameters.ip}}:18431/").status)
""",
}


def summary(wf: dict[str, Any]) -> tuple[str, dict[str, tuple[str, Any, Any]]]:
    nodes = {n["displayName"]: (n["phase"], (n.get("outputs") or {}).get("result"),
                                (n.get("outputs") or {}).get("parameters"))
             for n in wf["status"]["nodes"].values() if n["type"] == "Pod"}
    return wf["status"]["phase"], nodes


@contextlib.asynccontextmanager
async def local_engine(tmp: Path) -> AsyncIterator[Engine]:
    store = MemoryStore()
    executor = LocalExecutor(data_dir=tmp, artifacts=LocalArtifactStore(tmp / "artifacts"), logs=store,
                             isolation="none", grace_period=1.0)
    engine = Engine(store=store, executor=executor, templates=DictTemplateGetter())
    try:
        yield engine
    finally:
        await engine.close()
        executor.close()


@pytest.mark.skipif(not HELPERS, reason="needs gittrigger/podhelper.py and podspec writing podplan's plan")
@pytest.mark.parametrize("name", sorted(PARITY))
async def test_kubelet_runs_workflows_as_the_local_executor_does(
        name: str, make_fake_kube: MakeFakeKube, emissary: Path | None, tmp_path: Path) -> None:
    """Same workflow, same phases, results and output parameters on both executors."""
    if emissary is None:
        pytest.skip("needs images/emissary/emissary.c")
    fake = await make_fake_kube()
    store = MemoryStore()
    options = KubeOptions(helper_image="gittrigger:test", server_url="http://127.0.0.1:1",
                          pod_gc=Policy(strategy="OnPodCompletion"), grace_period_seconds=1)
    executor = KubernetesExecutor(api_client_for(fake), options=options, logs=store, close_api=True)
    engine = Engine(store=store, executor=executor, templates=DictTemplateGetter())
    try:
        on_kube = await run_yaml(engine, PARITY[name])
    finally:
        await engine.close()
        await executor.close()
    async with local_engine(tmp_path / "local") as local:
        on_local = await run_yaml(local, PARITY[name])
    assert summary(on_kube) == summary(on_local)




async def test_assembly_builds_the_kubernetes_executor_from_settings(
        make_fake_kube: MakeFakeKube, tmp_path: Path) -> None:
    """``executor.kind: kubernetes`` with a kubeconfig: the run's pods are Pods of the cluster, and
    they outlive the server's teardown (a later server re-attaches)."""
    fake = await make_fake_kube(kubelet=False)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": fake.url}}],
        "users": [{"name": "me", "user": {}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "me"}}],
    }))
    settings = load_settings(overrides={"executor.kind": "kubernetes", "kubernetes.kubeconfig": str(kubeconfig),
                                        "kubernetes.pod_gc": "Never", "store.data_dir": str(tmp_path / "data")})
    async with ScriptedKubelet(fake) as kubelet, assemble(settings, memory=True) as parts:
        assert isinstance(parts.executor, KubernetesExecutor)
        wf = await run_yaml(parts.engine, STEPS_AND_ITEMS)
        assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert len(fake.pods()) == len(kubelet.played) == 6
    wait = next(c for c in fake.pods()[0]["spec"]["containers"] if c["name"] == "wait")
    token = next(e["value"] for e in wait["env"] if e["name"] == "GITTRIGGER_ARTIFACT_TOKEN")
    assert ArtifactTokens.in_data_dir(tmp_path / "data").verify(token) == wf["metadata"]["uid"]


@pytest.mark.skipif(not HELPERS, reason="needs gittrigger/podhelper.py and podspec writing podplan's plan")
async def test_kubelet_restart_mid_run_runs_no_pod_twice(make_fake_kube: MakeFakeKube, emissary: Path | None) -> None:
    """Real pods: the server stops while a pod sleeps; the next one re-attaches and collects its result."""
    if emissary is None:
        pytest.skip("needs images/emissary/emissary.c")
    fake = await make_fake_kube()
    store = MemoryStore()

    def server() -> tuple[Engine, KubernetesExecutor]:
        options = KubeOptions(helper_image="gittrigger:test", server_url="http://127.0.0.1:1",
                              pod_gc=Policy(strategy="Never"), grace_period_seconds=1)
        executor = KubernetesExecutor(api_client_for(fake), options=options, logs=store, close_api=True)
        return Engine(store=store, executor=executor, templates=DictTemplateGetter()), executor

    engine, executor = server()
    [manifest] = load_documents("""
metadata: {name: slow}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: sleep, template: sleep}
    - - {name: after, template: sleep}
  - name: sleep
    container: {image: alpine, command: [sh, -c, "sleep 1; echo done"]}
""", source="test")
    await engine.submit(manifest)
    for _ in range(500):
        if any(status.get("phase") == "Running" for p in fake.pods() if (status := p.get("status"))):
            break
        await asyncio.sleep(0.01)
    executor.detach()
    await engine.close()
    await executor.close()
    engine, executor = server()
    try:
        assert await engine.resume_all() == 1
        wf = dict(await asyncio.wait_for(engine.wait(NS, "slow"), 60))
    finally:
        await engine.close()
        await executor.close()
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert results(wf) == {"sleep": "done", "after": "done"}
    assert fake.requests[("create", "pods")] == 2
