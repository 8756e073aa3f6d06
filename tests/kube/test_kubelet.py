"""
Pods really running through the fake API's kubelet (:mod:`tests.kube.kubelet`), observed with
the real kubernetes-asyncio client: statuses as the kubelet reports them, init containers,
native sidecars, shared volumes and subPath binds, logs followed live, deletion with a grace
period, eviction, scheduling constraints, readiness probes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, watch

from tests.kube.conftest import MakeFakeKube, api_client_for
from tests.kube.fakeapi import FakeKube
from tests.kube.kubelet import HELPER_EMISSARY, compile_emissary

NS = "argo"
Raw = dict[str, Any]


def pod(name: str, *containers: Raw, **spec: Any) -> Any:
    """A restartPolicy Never Pod manifest (Any: the client's stubs want V1Pod, the wire takes a dict)."""
    return {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "gittrigger"}},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 5, "containers": list(containers), **spec},
    }


def sh(name: str, script: str, **extra: Any) -> Raw:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **extra}


def state(raw: Raw, container: str) -> Raw:
    """The state of a (init) container in a raw Pod."""
    status = raw.get("status") or {}
    for s in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if s["name"] == container:
            return dict(s["state"])
    return {}


def condition(raw: Raw, kind: str) -> Raw:
    return next((c for c in (raw.get("status") or {}).get("conditions") or [] if c["type"] == kind), {})


def phase(raw: Raw) -> str:
    return str((raw.get("status") or {}).get("phase"))


def finished(_: str, raw: Raw) -> bool:
    return phase(raw) in ("Succeeded", "Failed")


def marker_processes(marker: str) -> list[int]:
    """Pids of live processes whose command line mentions ``marker``."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.fixture
async def v1(kube_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_client)


async def until(
    v1: client.CoreV1Api, name: str, predicate: Callable[[str, Raw], bool], *, seen: list[Raw] | None = None
) -> Raw:
    """Watch pod ``name`` until ``predicate(type, pod)`` holds; every object seen goes to ``seen``."""
    async with watch.Watch() as w:
        stream = w.stream(v1.list_namespaced_pod, NS, field_selector=f"metadata.name={name}", timeout_seconds=20)
        async for e in stream:
            if seen is not None:
                seen.append(e["raw_object"])
            if predicate(e["type"], e["raw_object"]):
                return dict(e["raw_object"])
    raise AssertionError(f"pod {name} never reached the expected state")


async def run_to_end(v1: client.CoreV1Api, body: Any, *, seen: list[Raw] | None = None) -> Raw:
    rv = (await v1.list_namespaced_pod(NS)).metadata.resource_version
    await v1.create_namespaced_pod(NS, body)
    name = body["metadata"]["name"]
    async with watch.Watch() as w:
        stream = w.stream(
            v1.list_namespaced_pod, NS, field_selector=f"metadata.name={name}", resource_version=rv, timeout_seconds=20
        )
        async for e in stream:
            if seen is not None:
                seen.append(e["raw_object"])
            if finished(e["type"], e["raw_object"]):
                return dict(e["raw_object"])
    raise AssertionError(f"pod {name} did not finish")


async def test_pod_reports_statuses_as_the_kubelet_does(v1: client.CoreV1Api) -> None:
    """Pending/ContainerCreating -> running -> terminated Completed, node, IPs, conditions, logs."""
    seen: list[Raw] = []
    done = await run_to_end(v1, pod("ok", sh("main", "echo hello; echo to-stderr >&2")), seen=seen)
    assert phase(done) == "Succeeded"
    assert done["spec"]["nodeName"] in ("node-a", "node-b")
    assert done["status"]["podIP"] == "127.0.0.1" and done["status"]["hostIP"] == "127.0.0.1"
    states = [next(iter(state(p, "main")), None) for p in seen]
    assert states[0] is None and "waiting" in states and "running" in states and states[-1] == "terminated"
    assert {"waiting": {"reason": "ContainerCreating"}} in [state(p, "main") for p in seen]
    terminated = state(done, "main")["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    assert terminated["startedAt"] <= terminated["finishedAt"] and terminated["containerID"].startswith("containerd://")
    assert condition(done, "PodScheduled")["status"] == "True"
    assert condition(done, "Initialized")["status"] == "True"
    assert condition(done, "Ready") == {**condition(done, "Ready"), "status": "False", "reason": "PodCompleted"}
    running = next(p for p in seen if phase(p) == "Running")
    assert condition(running, "Ready")["status"] == "True" and condition(running, "ContainersReady")["status"] == "True"
    assert await v1.read_namespaced_pod_log("ok", NS) == "hello\nto-stderr\n"


async def test_failing_main_fails_the_pod(v1: client.CoreV1Api) -> None:
    """A non-zero exit: phase Failed, terminated with the exit code and reason Error."""
    done = await run_to_end(v1, pod("bad", sh("main", "echo oops; exit 3")))
    assert phase(done) == "Failed"
    assert state(done, "main")["terminated"]["exitCode"] == 3 and state(done, "main")["terminated"]["reason"] == "Error"


async def test_start_errors(v1: client.CoreV1Api) -> None:
    """A missing executable or no command at all: terminated exit 128, reason StartError."""
    missing = await run_to_end(v1, pod("nobin", {"name": "main", "image": "busybox", "command": ["no-such-tool-x"]}))
    assert state(missing, "main")["terminated"]["reason"] == "StartError" and phase(missing) == "Failed"
    assert "executable file not found in $PATH" in state(missing, "main")["terminated"]["message"]
    nothing = await run_to_end(v1, pod("nocmd", {"name": "main", "image": "example.com/unknown:1"}))
    assert "no command specified" in state(nothing, "main")["terminated"]["message"]
    assert state(nothing, "main")["terminated"]["exitCode"] == 128


async def test_log_follow_streams_while_running(v1: client.CoreV1Api, tmp_path: Path) -> None:
    """follow=True streams lines as they are written and ends when the container terminates."""
    script = "echo first; while [ ! -f /signal/go ]; do sleep 0.02; done; echo second"
    body = pod(
        "talker",
        sh("main", script, volumeMounts=[{"name": "signal", "mountPath": "/signal"}]),
        volumes=[{"name": "signal", "hostPath": {"path": str(tmp_path)}}],
    )
    await v1.create_namespaced_pod(NS, body)
    await until(v1, "talker", lambda _, p: "running" in state(p, "main"))
    resp: Any = await v1.read_namespaced_pod_log("talker", NS, container="main", follow=True, _preload_content=False)
    try:
        assert await resp.content.readline() == b"first\n"
        assert "running" in state(await until(v1, "talker", lambda _, p: True), "main")
        (tmp_path / "go").touch()
        assert await resp.content.readline() == b"second\n"
        assert await resp.content.readline() == b""  # the container ended: so does the stream
    finally:
        resp.release()
    done = await until(v1, "talker", finished)
    assert phase(done) == "Succeeded"


async def test_init_sidecar_and_main_share_an_empty_dir(v1: client.CoreV1Api) -> None:
    """Init writes, a native sidecar runs alongside, main reads through mounts and subPaths; the
    sidecar is stopped once main ended and the pod still succeeds."""
    shared = {"name": "shared", "mountPath": "/shared"}
    body = pod(
        "trio",
        sh(
            "main",
            "cat /etc/app.conf; cat /data/x; while [ ! -f /work/side ]; do sleep 0.02; done; cat /work/side; pwd",
            workingDir="/work",
            volumeMounts=[
                {"name": "shared", "mountPath": "/work"},
                {"name": "shared", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
                {"name": "shared", "mountPath": "/data", "subPath": "data", "readOnly": True},
            ],
        ),
        initContainers=[
            sh(
                "setup",
                "echo config-value > /shared/app.conf; mkdir /shared/data; echo from-init > /shared/data/x",
                volumeMounts=[shared],
            ),
            sh(
                "side",
                "echo side-up > /shared/side; while true; do sleep 0.05; done",
                restartPolicy="Always",
                volumeMounts=[shared],
            ),
        ],
        volumes=[{"name": "shared", "emptyDir": {}}],
    )
    seen: list[Raw] = []
    done = await run_to_end(v1, body, seen=seen)
    assert phase(done) == "Succeeded", done["status"]
    assert await v1.read_namespaced_pod_log("trio", NS, container="main") == "config-value\nfrom-init\nside-up\n/work\n"
    assert state(done, "setup")["terminated"]["reason"] == "Completed"
    assert "terminated" in state(done, "side")  # stopped by the kubelet, its exit ignored
    # The sidecar ran while main did, and main waited for init: PodInitializing before that.
    assert any("running" in state(p, "side") and "running" in state(p, "main") for p in seen)
    assert {"waiting": {"reason": "PodInitializing"}} in [state(p, "main") for p in seen]


async def test_failing_init_container_fails_the_pod(v1: client.CoreV1Api) -> None:
    """Init:Error: main never starts, the pod is Failed and main's log is refused as waiting."""
    body = pod("initfail", sh("main", "echo never"), initContainers=[sh("init", "exit 2")])
    done = await run_to_end(v1, body)
    assert phase(done) == "Failed"
    assert state(done, "init")["terminated"] == {**state(done, "init")["terminated"], "exitCode": 2, "reason": "Error"}
    assert state(done, "main") == {"waiting": {"reason": "PodInitializing"}}
    assert condition(done, "Initialized")["status"] == "False"
    with pytest.raises(client.ApiException) as e:
        await v1.read_namespaced_pod_log("initfail", NS, container="main")
    assert e.value.status == 400 and "is waiting to start: PodInitializing" in str(e.value.body)


async def test_delete_mid_run_stops_processes_then_removes_the_pod(v1: client.CoreV1Api) -> None:
    """Graceful delete: deletionTimestamp, SIGTERM (trapped), SIGKILL after the grace for a
    container ignoring it, then DELETED, with no process left."""
    marker = f"marker-{uuid.uuid4().hex}"
    polite = sh("polite", f"trap 'echo got-term; exit 0' TERM; while true; do sleep 0.02; done # {marker}")
    stubborn = sh("stubborn", f"trap '' TERM; while true; do sleep 0.02; done # {marker}")
    await v1.create_namespaced_pod(NS, pod("doomed", polite, stubborn, terminationGracePeriodSeconds=1))
    await until(v1, "doomed", lambda _, p: phase(p) == "Running")
    assert marker_processes(marker)
    deleted = await v1.delete_namespaced_pod("doomed", NS)
    assert deleted.metadata.deletion_timestamp is not None and deleted.metadata.deletion_grace_period_seconds == 1
    seen: list[Raw] = []
    await until(v1, "doomed", lambda t, _: t == "DELETED", seen=seen)
    last = seen[-1]
    assert state(last, "polite")["terminated"]["exitCode"] == 0
    assert state(last, "stubborn")["terminated"]["exitCode"] == 137
    assert marker_processes(marker) == []
    with pytest.raises(client.ApiException) as gone:
        await v1.read_namespaced_pod("doomed", NS)
    assert gone.value.status == 404


async def test_eviction_kills_and_keeps_the_pod(fake_kube: FakeKube, v1: client.CoreV1Api) -> None:
    """evict(): Failed, reason Evicted with the kubelet's message, a DisruptionTarget condition."""
    marker = f"marker-{uuid.uuid4().hex}"
    await v1.create_namespaced_pod(NS, pod("victim", sh("main", f"while true; do sleep 0.02; done # {marker}")))
    await until(v1, "victim", lambda _, p: phase(p) == "Running")
    fake_kube.evict(NS, "victim")
    done = await until(v1, "victim", lambda _, p: "terminated" in state(p, "main"))
    assert phase(done) == "Failed" and done["status"]["reason"] == "Evicted"
    assert done["status"]["message"].startswith("The node was low on resource: memory.")
    assert condition(done, "DisruptionTarget")["reason"] == "TerminationByKubelet"
    assert marker_processes(marker) == []


async def test_active_deadline_fails_the_pod(v1: client.CoreV1Api) -> None:
    """activeDeadlineSeconds: the kubelet kills the pod: Failed, reason DeadlineExceeded."""
    marker = f"marker-{uuid.uuid4().hex}"
    body = pod("late", sh("main", f"while true; do sleep 0.02; done # {marker}"), activeDeadlineSeconds=1)
    done = await run_to_end(v1, body)
    assert phase(done) == "Failed" and done["status"]["reason"] == "DeadlineExceeded"
    assert done["status"]["message"] == "Pod was active on the node longer than the specified deadline"
    await until(v1, "late", lambda _, p: "terminated" in state(p, "main"))
    assert marker_processes(marker) == []


async def test_node_affinity_and_selector(fake_kube: FakeKube, v1: client.CoreV1Api) -> None:
    """Required affinity NotIn picks the other node; nodeSelector pins; no fit leaves it Pending."""

    def not_in(*nodes: str) -> Raw:
        term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "NotIn", "values": list(nodes)}]}
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}

    avoid = await run_to_end(v1, pod("avoid", sh("main", "true"), affinity=not_in("node-a")))
    assert avoid["spec"]["nodeName"] == "node-b"
    pinned = await run_to_end(v1, pod("pinned", sh("main", "true"), nodeSelector={"kubernetes.io/hostname": "node-b"}))
    assert pinned["spec"]["nodeName"] == "node-b"
    await v1.create_namespaced_pod(NS, pod("nowhere", sh("main", "true"), affinity=not_in("node-a", "node-b")))
    stuck = await until(v1, "nowhere", lambda _, p: bool(condition(p, "PodScheduled")))
    assert phase(stuck) == "Pending" and "nodeName" not in stuck["spec"]
    assert condition(stuck, "PodScheduled")["reason"] == "Unschedulable"
    assert "0/2 nodes are available" in condition(stuck, "PodScheduled")["message"]


async def test_readiness_probe_sets_ready(v1: client.CoreV1Api) -> None:
    """An exec readinessProbe (run in the container's sandbox) turns Ready True once it passes."""
    probe = {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1}  # an integer, as the schema says
    main = sh("main", "sleep 0.2; touch /tmp/ready; while true; do sleep 0.05; done", readinessProbe=probe)
    seen: list[Raw] = []
    await v1.create_namespaced_pod(NS, pod("daemon", main))
    ready = await until(v1, "daemon", lambda _, p: condition(p, "Ready").get("status") == "True", seen=seen)
    assert "running" in state(ready, "main") and ready["status"]["containerStatuses"][0]["ready"] is True
    assert any(phase(p) == "Running" and condition(p, "Ready").get("status") == "False" for p in seen)
    await v1.delete_namespaced_pod("daemon", NS, grace_period_seconds=0)


async def test_claims_are_shared_between_pods(v1: client.CoreV1Api) -> None:
    """Two pods mounting one claim see the same directory."""
    claim: Any = {"metadata": {"name": "wf-work"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
    await v1.create_namespaced_persistent_volume_claim(NS, claim)
    volumes = [{"name": "work", "persistentVolumeClaim": {"claimName": "wf-work"}}]
    mounts = [{"name": "work", "mountPath": "/mnt/work"}]
    writer = await run_to_end(
        v1, pod("writer", sh("main", "echo shared > /mnt/work/f", volumeMounts=mounts), volumes=volumes)
    )
    assert phase(writer) == "Succeeded"
    reader = await run_to_end(v1, pod("reader", sh("main", "cat /mnt/work/f", volumeMounts=mounts), volumes=volumes))
    assert phase(reader) == "Succeeded"
    assert await v1.read_namespaced_pod_log("reader", NS) == "shared\n"


async def test_environment(v1: client.CoreV1Api) -> None:
    """env values with $(VAR) expansion, fieldRefs to the pod's name and IP, hostname, workingDir."""
    env = [
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "GREETING", "value": "hello $(POD) $$(POD)"},
    ]
    main = sh("main", 'echo "$GREETING $IP $(hostname)"; pwd', env=env, workingDir="/no/such/dir")
    done = await run_to_end(v1, pod("envy", main))
    assert phase(done) == "Succeeded"
    assert await v1.read_namespaced_pod_log("envy", NS) == "hello envy $(POD) 127.0.0.1 envy\n/no/such/dir\n"


async def test_helper_image_runs_gittrigger_with_this_interpreter(v1: client.CoreV1Api, emissary: Path | None) -> None:
    """A gittrigger image's `gittrigger` command is this venv's `python -m gittrigger`."""
    script = "gittrigger --help | head -1; if test -x /usr/local/bin/gittrigger-emissary; then echo emissary; fi"
    main = {"name": "main", "image": "ghcr.io/example/gittrigger:dev", "command": ["sh", "-c", script]}
    done = await run_to_end(v1, pod("helper", main))
    assert phase(done) == "Succeeded"
    lines = (await v1.read_namespaced_pod_log("helper", NS)).splitlines()
    assert lines[0].startswith("usage: gittrigger")
    assert ("emissary" in lines) == (emissary is not None)


async def test_close_leaves_no_process(make_fake_kube: MakeFakeKube) -> None:
    """Closing the fake kills every pod's processes."""
    fake = await make_fake_kube()
    marker = f"marker-{uuid.uuid4().hex}"
    async with api_client_for(fake) as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_pod(NS, pod("forever", sh("main", f"while true; do sleep 0.02; done # {marker}")))
        await until(v1, "forever", lambda _, p: phase(p) == "Running")
    assert marker_processes(marker)
    await fake.close()
    assert marker_processes(marker) == []


async def test_emissary_is_compiled_once_and_bound_in_helper_images(
    make_fake_kube: MakeFakeKube, tmp_path: Path
) -> None:
    """compile_emissary caches by source content; helper images see it at /usr/local/bin/gittrigger-emissary."""
    source = tmp_path / "emissary.c"
    source.write_text('#include <stdio.h>\nint main(void) { puts("emissary here"); return 0; }\n')
    binary = compile_emissary(source, cache_dir=tmp_path / "cache")
    assert binary is not None and compile_emissary(source, cache_dir=tmp_path / "cache") == binary
    assert compile_emissary(tmp_path / "absent.c", cache_dir=tmp_path / "cache") is None
    fake = await make_fake_kube(emissary=binary)
    helper = {"name": "main", "image": "ghcr.io/gittrigger/gittrigger:test", "command": [HELPER_EMISSARY]}
    plain = {"name": "main", "image": "busybox", "command": [HELPER_EMISSARY]}
    async with api_client_for(fake) as api:
        v1 = client.CoreV1Api(api)
        assert phase(await run_to_end(v1, pod("helper", helper))) == "Succeeded"
        assert await v1.read_namespaced_pod_log("helper", NS) == "emissary here\n"
        other = await run_to_end(v1, pod("plain", plain))  # only the helper image has it
        assert state(other, "main")["terminated"]["reason"] == "StartError"
