"""
The fake Kubernetes API (:mod:`tests.kube.fakeapi`) as the real kubernetes-asyncio client sees it.

Pods are driven by hand here (``kubelet=False``, statuses set through ``set_pod_status``), so
these tests cover the API server alone: CRUD and its Status errors, selectors, watch resume and
410, bookmarks, faults, logs. ``test_kubelet.py`` covers pods that really run.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, watch

from tests.kube.conftest import MakeFakeKube, api_client_for
from tests.kube.fakeapi import FakeKube
from tests.kube.selectors import FieldSelector, LabelSelector, SelectorError, node_fits, validate_pod
from workflows.executors.podspec import PodConfig, build_pod, claims_for
from workflows.loading import load_documents
from workflows.model import wire
from workflows.model.status import WorkflowStatus
from workflows.resolution import DictTemplateGetter
from workflows.scheduling.commands import Run, StartPod
from workflows.scheduling.operator import operate

NS = "argo"


def pod(name: str, *, labels: dict[str, str] | None = None, **spec: Any) -> Any:
    """A Pod manifest (Any: the client's stubs want V1Pod, the wire accepts a dict)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}], **spec},
    }


@pytest.fixture
async def fake(make_fake_kube: MakeFakeKube) -> FakeKube:
    return await make_fake_kube(kubelet=False)


@pytest.fixture
async def v1(fake: FakeKube) -> AsyncIterator[client.CoreV1Api]:
    async with api_client_for(fake) as api:
        yield client.CoreV1Api(api)


async def events(v1: client.CoreV1Api, *, timeout: int = 1, **kwargs: Any) -> list[tuple[str, str, str]]:
    """(type, name, resourceVersion) of every event of a watch that ends after ``timeout`` seconds."""
    out = []
    async with watch.Watch() as w:
        async for e in w.stream(v1.list_namespaced_pod, NS, timeout_seconds=timeout, **kwargs):
            meta = e["raw_object"]["metadata"]
            out.append((e["type"], meta.get("name", ""), meta["resourceVersion"]))
    return out


async def test_create_get_list_delete(fake: FakeKube, v1: client.CoreV1Api) -> None:
    """The basic verbs answer with Pods; rvs grow; delete without a kubelet removes at once."""
    created = await v1.create_namespaced_pod(NS, pod("a", labels={"app": "x"}))
    await v1.create_namespaced_pod(NS, pod("b"))
    assert created.metadata.namespace == NS and created.metadata.uid and created.status.phase == "Pending"
    got = await v1.read_namespaced_pod("a", NS)
    assert got.metadata.uid == created.metadata.uid
    assert int(got.metadata.resource_version) > int(created.metadata.resource_version)  # scheduled since
    assert got.spec.node_name == "node-a"
    assert (await v1.read_namespaced_pod("b", NS)).spec.node_name == "node-b"  # spread over the nodes
    listed = await v1.list_namespaced_pod(NS)
    assert [p.metadata.name for p in listed.items] == ["a", "b"]
    assert int(listed.metadata.resource_version) == fake.resource_version
    assert [p.metadata.name for p in (await v1.list_namespaced_pod(NS, label_selector="app=x")).items] == ["a"]
    assert (await v1.list_namespaced_pod("other")).items == []
    deleted = await v1.delete_namespaced_pod("a", NS, grace_period_seconds=5)
    assert deleted.metadata.name == "a"
    assert [p.metadata.name for p in (await v1.list_pod_for_all_namespaces()).items] == ["b"]
    assert fake.requests[("create", "pods")] == 2 and fake.requests[("delete", "pods")] == 1


async def test_errors_are_status_objects(v1: client.CoreV1Api) -> None:
    """409 on an existing name, 404 on a missing pod, with Kubernetes Status bodies."""
    await v1.create_namespaced_pod(NS, pod("a"))
    with pytest.raises(client.ApiException) as conflict:
        await v1.create_namespaced_pod(NS, pod("a"))
    assert conflict.value.status == 409
    assert '"reason": "AlreadyExists"' in str(conflict.value.body) and 'pods \\"a\\" already exists' in str(
        conflict.value.body
    )
    for call in (v1.read_namespaced_pod("zz", NS), v1.delete_namespaced_pod("zz", NS)):
        with pytest.raises(client.ApiException) as missing:
            await call
        assert missing.value.status == 404 and '"reason": "NotFound"' in str(missing.value.body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (pod("a", containers=[]), "spec.containers"),
        (pod("a", containers=[{"name": "main"}]), "spec.containers[0].image"),
        (pod("Bad_Name"), "metadata.name"),
        (pod("a", labels={"x": "y" * 64}), "metadata.labels"),
        (pod("a", containers=[{"name": "m", "image": "i"}, {"name": "m", "image": "i"}]), "spec.containers[1].name"),
        (
            pod("a", containers=[{"name": "m", "image": "i", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}]),
            "spec.containers[0].volumeMounts[0].name",
        ),
        (pod("a", restartPolicy="Sometimes"), "spec.restartPolicy"),
    ],
    ids=["no-containers", "no-image", "bad-name", "long-label", "duplicate-container", "unknown-volume", "policy"],
)
async def test_invalid_pods_get_422(v1: client.CoreV1Api, body: Any, field: str) -> None:
    """Broken manifests are refused with reason Invalid naming the field, as the API server does."""
    with pytest.raises(client.ApiException) as e:
        await v1.create_namespaced_pod(NS, body)
    assert e.value.status == 422
    assert '"reason": "Invalid"' in str(e.value.body) and f'"field": "{field}"' in str(e.value.body)


def test_validation_accepts_a_full_pod() -> None:
    """A pod with init containers, volumes and subPaths has no problems."""
    body = pod(
        "wf-step-123",
        initContainers=[{"name": "init", "image": "gittrigger", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
        containers=[
            {"name": "main", "image": "b", "volumeMounts": [{"name": "v", "mountPath": "/x", "subPath": "a/b"}]}
        ],
        volumes=[{"name": "v", "emptyDir": {}}],
    )
    assert validate_pod(body, name="wf-step-123") == []


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=x", {"app": "x"}, True),
        ("app==x", {"app": "y"}, False),
        ("app!=x", {}, True),
        ("app in (x, y),tier", {"app": "y", "tier": "1"}, True),
        ("app notin (x)", {"app": "x"}, False),
        ("!app", {"app": "x"}, False),
        ("app", {}, False),
        ("", {"a": "b"}, True),
    ],
    ids=["eq", "double-eq", "neq-missing", "in-and-exists", "notin", "not-exists", "exists-missing", "empty"],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    """Label selector requirements as apimachinery evaluates them."""
    assert expected == LabelSelector.parse(selector).matches(labels)


def test_bad_selectors_raise() -> None:
    """Unknown field labels and unparsable requirements are refused."""
    with pytest.raises(SelectorError, match="field label not supported"):
        FieldSelector.parse("spec.image=x")
    with pytest.raises(SelectorError):
        LabelSelector.parse("a in x")


@pytest.mark.parametrize(
    ("spec", "node", "expected"),
    [
        ({"nodeSelector": {"kubernetes.io/hostname": "node-a"}}, "node-b", False),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["node-a"]}
                                    ]
                                }
                            ]
                        }
                    }
                }
            },
            "node-a",
            False,
        ),
        ({}, "node-a", True),
    ],
    ids=["selector", "affinity-notin", "free"],
)
def test_node_fits(spec: dict[str, Any], node: str, expected: bool) -> None:
    """nodeSelector and required node affinity decide where a pod may go."""
    assert expected == node_fits(spec, node)


async def test_field_selectors_and_bad_selector(fake: FakeKube, v1: client.CoreV1Api) -> None:
    """Pods are found by name and phase; an unsupported field is a 400."""
    await v1.create_namespaced_pod(NS, pod("a"))
    await v1.create_namespaced_pod(NS, pod("b"))
    fake.set_pod_status(NS, "b", {"phase": "Running"})
    by_phase = await v1.list_namespaced_pod(NS, field_selector="status.phase=Running")
    assert [p.metadata.name for p in by_phase.items] == ["b"]
    by_name = await v1.list_pod_for_all_namespaces(field_selector="metadata.name=a,status.phase!=Running")
    assert [p.metadata.name for p in by_name.items] == ["a"]
    with pytest.raises(client.ApiException) as e:
        await v1.list_namespaced_pod(NS, field_selector="spec.image=x")
    assert e.value.status == 400
    with pytest.raises(client.ApiException) as bad_rv:
        await v1.list_namespaced_pod(NS, resource_version="abc", watch=True)
    assert bad_rv.value.status == 400


async def test_watch_resumes_from_a_resource_version(fake: FakeKube, v1: client.CoreV1Api) -> None:
    """A watch from rv N replays exactly the changes after N, in order, with growing rvs."""
    await v1.create_namespaced_pod(NS, pod("a"))
    await asyncio.sleep(0)  # let the scheduler bind it
    rv = (await v1.list_namespaced_pod(NS)).metadata.resource_version
    await v1.create_namespaced_pod(NS, pod("b"))
    fake.set_pod_status(NS, "a", {"phase": "Running"})
    seen = await events(v1, resource_version=rv)
    assert [(t, n) for t, n, _ in seen] == [("ADDED", "b"), ("MODIFIED", "b"), ("MODIFIED", "a")]
    rvs = [int(r) for _, _, r in seen]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    initial = await events(v1)  # no resourceVersion: the current state as ADDED events
    assert [(t, n) for t, n, _ in initial] == [("ADDED", "a"), ("ADDED", "b")]


async def test_watch_selector_transitions(fake: FakeKube, v1: client.CoreV1Api) -> None:
    """A pod entering a field selector is ADDED for that watch; leaving it is DELETED."""
    await v1.create_namespaced_pod(NS, pod("a"))
    rv = (await v1.list_namespaced_pod(NS)).metadata.resource_version
    fake.set_pod_status(NS, "a", {"phase": "Running"})
    fake.set_pod_status(NS, "a", {"phase": "Succeeded"})
    seen = await events(v1, resource_version=rv, field_selector="status.phase=Running")
    assert [(t, n) for t, n, _ in seen] == [("ADDED", "a"), ("DELETED", "a")]


async def test_compact_makes_old_resource_versions_expire(fake: FakeKube, v1: client.CoreV1Api) -> None:
    """After compaction a watch resume gets an ERROR event with a 410 Status, an exact list a 410."""
    await v1.create_namespaced_pod(NS, pod("a"))
    old = (await v1.list_namespaced_pod(NS)).metadata.resource_version
    await v1.create_namespaced_pod(NS, pod("b"))
    fake.compact()
    with pytest.raises(client.ApiException) as e:
        await events(v1, resource_version=old)
    assert e.value.status == 410 and "Expired" in str(e.value.reason)
    with pytest.raises(client.ApiException) as listed:
        await v1.list_namespaced_pod(NS, resource_version=old, resource_version_match="Exact")
    assert listed.value.status == 410
    assert len((await v1.list_namespaced_pod(NS, resource_version=old)).items) == 2  # NotOlderThan: served
    current = str(fake.resource_version)
    await v1.create_namespaced_pod(NS, pod("c"))
    assert [(t, n) for t, n, _ in await events(v1, resource_version=current)] == [("ADDED", "c"), ("MODIFIED", "c")]


async def test_watch_sends_bookmarks(make_fake_kube: MakeFakeKube) -> None:
    """With allowWatchBookmarks, idle watches get BOOKMARK events carrying the current rv."""
    fake = await make_fake_kube(kubelet=False, bookmark_seconds=0.2)
    async with api_client_for(fake) as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_pod(NS, pod("a"))
        rv = (await v1.list_namespaced_pod(NS)).metadata.resource_version
        seen = await events(v1, resource_version=rv, allow_watch_bookmarks=True)
    assert seen and {"BOOKMARK"} == {t for t, _, _ in seen}
    assert {rv} == {r for _, _, r in seen}


async def test_injected_failures_and_counters(fake: FakeKube, v1: client.CoreV1Api) -> None:
    """fail_next(n) fails exactly the next n requests with the given status, counted as requests."""
    fake.fail_next(2)
    for _ in range(2):
        with pytest.raises(client.ApiException) as e:
            await v1.list_namespaced_pod(NS)
        assert e.value.status == 500 and '"reason": "InternalError"' in str(e.value.body)
    fake.fail_next(1, status=503)
    with pytest.raises(client.ApiException) as unavailable:
        await v1.read_namespaced_pod("a", NS)
    assert unavailable.value.status == 503
    assert (await v1.list_namespaced_pod(NS)).items == []
    assert fake.requests[("list", "pods")] == 3 and fake.requests[("get", "pods")] == 1


async def test_drop_watches_breaks_open_streams(fake: FakeKube, v1: client.CoreV1Api) -> None:
    """drop_watches() cuts every open watch mid-stream: the client sees a broken response."""
    await v1.create_namespaced_pod(NS, pod("a"))
    got_first = asyncio.Event()

    async def watch_long() -> None:
        async with watch.Watch() as w:
            async for _ in w.stream(v1.list_namespaced_pod, NS, timeout_seconds=30):
                got_first.set()

    task = asyncio.create_task(watch_long())
    await got_first.wait()
    fake.drop_watches()
    with pytest.raises(aiohttp.ClientPayloadError):
        await task
    assert fake.requests[("watch", "pods")] == 1


async def test_restart_keeps_state_and_port(fake: FakeKube, v1: client.CoreV1Api) -> None:
    """stop()/start() is a server restart: connections fail meanwhile, objects and rvs survive."""
    await v1.create_namespaced_pod(NS, pod("a"))
    url, rv = fake.url, fake.resource_version
    await fake.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        await v1.read_namespaced_pod("a", NS)
    assert url == await fake.start()
    assert (await v1.read_namespaced_pod("a", NS)).metadata.name == "a"
    assert rv == fake.resource_version


async def test_logs_without_kubelet(fake: FakeKube, v1: client.CoreV1Api) -> None:
    """Log reads: tail, timestamps, and the 400s for a waiting, unknown or unnamed container."""
    body = pod("a", containers=[{"name": "main", "image": "b"}, {"name": "wait", "image": "b"}])
    await v1.create_namespaced_pod(NS, body)
    with pytest.raises(client.ApiException) as waiting:
        await v1.read_namespaced_pod_log("a", NS, container="main")
    assert waiting.value.status == 400
    assert 'container \\"main\\" in pod \\"a\\" is waiting to start: ContainerCreating' in str(waiting.value.body)
    terminated = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    fake.set_pod_status(
        NS,
        "a",
        {
            "phase": "Succeeded",
            "containerStatuses": [{"name": n, "state": terminated} for n in ("main", "wait")],
        },
    )
    fake.add_log(NS, "a", "main", ["one", "two", "three"])
    assert await v1.read_namespaced_pod_log("a", NS, container="main") == "one\ntwo\nthree\n"
    assert await v1.read_namespaced_pod_log("a", NS, container="main", tail_lines=1) == "three\n"
    stamped = await v1.read_namespaced_pod_log("a", NS, container="main", timestamps=True, tail_lines=1)
    assert stamped.endswith("Z three\n") and stamped[:4].isdigit()
    assert await v1.read_namespaced_pod_log("a", NS, container="wait") == ""
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "a container name must be specified"),
        ({"container": "x"}, "is not valid for pod"),
    ]
    for kwargs, message in cases:
        with pytest.raises(client.ApiException) as e:
            await v1.read_namespaced_pod_log("a", NS, **kwargs)
        assert e.value.status == 400 and message in str(e.value.body)
    assert fake.requests[("get", "pods/log")] == 7


async def test_generate_name_and_namespace_mismatch(v1: client.CoreV1Api) -> None:
    """generateName gets a random suffix; a body naming another namespace is a 400."""
    body = pod("")
    body["metadata"] = {"generateName": "wf-"}
    created = await v1.create_namespaced_pod(NS, body)
    assert created.metadata.name.startswith("wf-") and len(created.metadata.name) == 8
    other = pod("x")
    other["metadata"]["namespace"] = "elsewhere"
    with pytest.raises(client.ApiException) as e:
        await v1.create_namespaced_pod(NS, other)
    assert e.value.status == 400


async def test_persistent_volume_claims(fake: FakeKube, v1: client.CoreV1Api) -> None:
    """Claims: create (Bound), 409, get, list, delete, 404; a pod waits unscheduled for its claim."""
    await v1.create_namespaced_pod(
        NS,
        pod(
            "p",
            containers=[{"name": "main", "image": "b", "volumeMounts": [{"name": "w", "mountPath": "/w"}]}],
            volumes=[{"name": "w", "persistentVolumeClaim": {"claimName": "wf-work"}}],
        ),
    )
    await asyncio.sleep(0)
    waiting = await v1.read_namespaced_pod("p", NS)
    assert waiting.spec.node_name is None
    assert waiting.status.conditions[0].message == 'persistentvolumeclaim "wf-work" not found'
    claim = {
        "metadata": {"name": "wf-work"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    created = await v1.create_namespaced_persistent_volume_claim(NS, claim)
    assert created.status.phase == "Bound"
    with pytest.raises(client.ApiException) as conflict:
        await v1.create_namespaced_persistent_volume_claim(NS, claim)
    assert conflict.value.status == 409
    await asyncio.sleep(0)
    assert (await v1.read_namespaced_pod("p", NS)).spec.node_name in fake.nodes
    assert (await v1.read_namespaced_persistent_volume_claim("wf-work", NS)).metadata.name == "wf-work"
    assert [c.metadata.name for c in (await v1.list_namespaced_persistent_volume_claim(NS)).items] == ["wf-work"]
    await v1.delete_namespaced_persistent_volume_claim("wf-work", NS)
    with pytest.raises(client.ApiException) as gone:
        await v1.read_namespaced_persistent_volume_claim("wf-work", NS)
    assert gone.value.status == 404
    assert fake.requests[("create", "persistentvolumeclaims")] == 2


async def test_unknown_paths_are_404_status(fake: FakeKube) -> None:
    """Paths the fake does not serve answer like an API server without that resource."""
    async with aiohttp.ClientSession() as session, session.get(fake.url + "/apis/batch/v1/jobs") as resp:
        assert resp.status == 404
        assert (await resp.json())["kind"] == "Status"


WORKFLOW = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: wf-1, namespace: argo, uid: uid-1}
spec:
  entrypoint: main
  volumeClaimTemplates:
    - metadata: {name: work}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  templates:
    - name: main
      retryStrategy: {limit: 2, affinity: {nodeAntiAffinity: {}}}
      script:
        image: python:3.12
        command: [python]
        source: print("hi")
        volumeMounts: [{name: work, mountPath: /work}]
      sidecars:
        - {name: db, image: busybox, command: [sh, -c, "sleep 5"]}
"""


async def test_our_podspec_pods_are_accepted_and_honour_avoid_hosts(fake: FakeKube, v1: client.CoreV1Api) -> None:
    """Pods built by workflows.executors.podspec pass the fake's validation; a retry's anti-affinity
    for the node of the failed attempt puts it on the other node."""
    doc = load_documents(WORKFLOW, source="<test>")[0]
    run = Run(workflow=wire.parse_object(doc), status=WorkflowStatus())
    decision = operate(run, [], now=datetime(2024, 5, 1, tzinfo=UTC), templates=DictTemplateGetter())
    request = next(c.pod for c in decision.commands if isinstance(c, StartPod))
    config = PodConfig(helper_image="ghcr.io/gittrigger/gittrigger:test", server_url="http://x", artifact_token="t")
    claim: Any
    for claim in claims_for(doc):
        await v1.create_namespaced_persistent_volume_claim(NS, claim)
    manifest: Any = build_pod(dataclasses.replace(request, avoid_hosts=("node-a",)), config=config)
    await v1.create_namespaced_pod(NS, manifest)
    await asyncio.sleep(0)
    assert (await v1.read_namespaced_pod(manifest["metadata"]["name"], NS)).spec.node_name == "node-b"


async def test_created_objects_are_checked_against_the_kubernetes_schema(kube_client: Any) -> None:
    """Every Pod the tests create passes kubernetes-validate (strict): an unknown field is a 422."""
    v1 = client.CoreV1Api(kube_client)
    body: Any = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "typo"},
            "spec": {"containers": [{"name": "main", "image": "busybox", "comand": ["true"]}]}}
    with pytest.raises(client.ApiException) as caught:
        await v1.create_namespaced_pod("default", body)
    assert caught.value.status == 422 and "comand" in str(caught.value.body)


async def test_secrets_are_read_base64_and_refused_as_rbac_does(fake: FakeKube, v1: client.CoreV1Api) -> None:
    """A seeded Secret comes back as the API returns it (base64 ``data``, no ``stringData``);
    absent is a 404 Status; ``forbid`` answers 403 Forbidden naming the verb, resource and namespace."""
    fake.add_secret(NS, "hook", {"token": "s3cret", "raw": b"\x00\xff"})
    secret = await v1.read_namespaced_secret("hook", NS)
    assert secret.data == {"token": "czNjcmV0", "raw": "AP8="} and secret.string_data is None
    assert fake.requests[("get", "secrets")] == 1
    rotated = fake.add_secret(NS, "hook", {"token": "new"})
    assert (await v1.read_namespaced_secret("hook", NS)).metadata.resource_version == rotated["metadata"][
        "resourceVersion"]
    with pytest.raises(client.ApiException) as missing:
        await v1.read_namespaced_secret("nope", NS)
    assert missing.value.status == 404 and 'secrets \\"nope\\" not found' in str(missing.value.body)
    fake.forbid("get", "secrets", namespace="other")
    fake.add_secret("other", "hook", {"token": "x"})
    with pytest.raises(client.ApiException) as refused:
        await v1.read_namespaced_secret("hook", "other")
    assert refused.value.status == 403 and '"reason": "Forbidden"' in str(refused.value.body)
    assert 'cannot get resource \\"secrets\\"' in str(refused.value.body)
    assert (await v1.read_namespaced_secret("hook", NS)).data == {"token": "bmV3"}  # other namespaces still allowed
    fake.forbid("get", "secrets")
    with pytest.raises(client.ApiException) as everywhere:
        await v1.read_namespaced_secret("hook", NS)
    assert everywhere.value.status == 403
