"""
The Kubernetes executor (:mod:`workflows.executors.kubernetes` and ``kube/``).

Pure parts as tables (status reading, the result line, GC policy, token bucket, watch
bookkeeping, API error mapping); then the executor against the fake API with the real
kubernetes-asyncio client and the kubelet off, the tests playing the kubelet by hand
(``set_pod_status`` / ``add_log``), so every state a cluster can report is reachable:
success with outputs, adoption, re-attach after a restart, deletion, eviction, image pull
errors, daemons, cancellation, API 500s, dropped watches, 410, requests per pod, GC.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.kube.conftest import MakeFakeKube, api_client_for
from tests.kube.fakeapi import FakeKube
from workflows.errors import AlreadyExists, Conflict, InvalidSpec, NotFound, Unavailable, WorkflowError
from workflows.executors.base import Container, LogLine, PodRequest, PodResult
from workflows.executors.kube import gc, status
from workflows.executors.kube.calls import TokenBucket, is_transport_error, to_error
from workflows.executors.kube.watch import PodWatch
from workflows.executors.kubernetes import KubeOptions, KubernetesExecutor
from workflows.executors.podspec import PodConfig, build_pod
from workflows.model.ids import NodeId
from workflows.model.spec import RetryPolicy
from workflows.model.status import NodePhase, NodeStatus, NodeType
from workflows.scheduling import retries

NS = "argo"
T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:00:05Z"


# -- wire helpers ------------------------------------------------------------------------------


def term(code: int, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"terminated": {"exitCode": code, "reason": reason or ("Completed" if code == 0 else "Error"),
                           "startedAt": T0, "finishedAt": T1, **extra}}


RUNNING: dict[str, Any] = {"running": {"startedAt": T0}}


def pod_status(phase: str, *, main: dict[str, Any] | None = None, wait: dict[str, Any] | None = None,
               init: dict[str, Any] | None = None, ready: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "phase": phase, "podIP": "10.0.0.7", "startTime": T0,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "initContainerStatuses": [{"name": "init", "state": init or term(0)}],
        "containerStatuses": [{"name": "main", "state": main or {"waiting": {"reason": "PodInitializing"}}},
                              {"name": "wait", "state": wait or {"waiting": {"reason": "PodInitializing"}}}],
        **extra,
    }


def wire_pod(st: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", **meta}, "spec": {"nodeName": "node-a"}, "status": st}


REPORT = 'GITTRIGGER_RESULT {"result":"hi","exitCode":0,"outputParameters":{"out":"v"},"outputArtifacts":{"a":"k"}}'


# -- pure: status ------------------------------------------------------------------------------


@pytest.mark.parametrize(("st", "report", "phase", "message", "exit_code"), [
    (pod_status("Succeeded", main=term(0), wait=term(0)), REPORT, NodePhase.SUCCEEDED, None, 0),
    (pod_status("Failed", main=term(3), wait=term(0)), REPORT, NodePhase.FAILED, "Error (exit code 3)", 3),
    (pod_status("Failed", main=term(137, "OOMKilled"), wait=term(0)), None, NodePhase.FAILED,
     "OOMKilled (exit code 137)", 137),
    (pod_status("Failed", main=term(128, "StartError", message="exec: no such file"), wait=term(0)), None,
     NodePhase.ERROR, "exec: no such file", 128),
    (pod_status("Failed", init=term(1, message="input artifact missing")), None, NodePhase.ERROR,
     "init container init failed: input artifact missing", None),
    (pod_status("Succeeded", main=term(0), wait=term(0)), None, NodePhase.ERROR,
     "the wait container reported no result", 0),
    (pod_status("Failed", main=term(0), wait=term(2)), "upload failed: 503", NodePhase.ERROR,
     "upload failed: 503", 0),
    (pod_status("Failed", main=term(0), wait=term(2)), None, NodePhase.ERROR,
     "wait container failed: Error (exit code 2)", 0),
    (pod_status("Succeeded", main=term(0), wait=term(0)),
     'GITTRIGGER_RESULT {"exitCode":0,"error":"failed to save outputs: no such file or directory for artifact(s) a"}',
     NodePhase.ERROR, "failed to save outputs: no such file or directory for artifact(s) a", 0),
    (pod_status("Failed", main=term(137), reason="Evicted", message="The node was low on resource: memory. "), None,
     NodePhase.ERROR, "Evicted: The node was low on resource: memory.", 137),
    (pod_status("Failed", main=term(143), reason="DeadlineExceeded",
                message="Pod was active on the node longer than the specified deadline"), None,
     NodePhase.FAILED, "Pod was active on the node longer than the specified deadline", 143),
], ids=["succeeded", "main-failed", "oom", "start-error", "init-helper-failed", "no-report", "wait-failed",
        "wait-failed-silently",
        "report-error", "evicted", "deadline"])
def test_outcome(st: dict[str, Any], report: str | None, phase: NodePhase, message: str | None,
                 exit_code: int | None) -> None:
    """A finished Pod reads as Argo would report the node: the user's failures Failed, ours Error."""
    parsed = status.parse_report(report) if report else None
    result = status.outcome(wire_pod(st), mains=["main"], report=parsed, wait_log=report or "")
    assert (phase, message, exit_code) == (result.phase, result.message, result.exit_code)
    assert result.host_node_name == "node-a" and result.pod_ip == "10.0.0.7"
    assert result.finished_at == (datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC) if st["containerStatuses"][0]["state"]
                                  .get("terminated") else result.finished_at)


@pytest.mark.parametrize(("log", "expected"), [
    ("", None),
    ("noise\n" + REPORT + "\n", status.Report(result="hi", exit_code=0, output_parameters={"out": "v"},
                                                output_artifacts={"a": "k"})),
    ('GITTRIGGER_RESULT {"result":"old"}\nGITTRIGGER_RESULT {"result":"new"}', status.Report(result="new")),
    ('GITTRIGGER_RESULT {"outputParameters":[{"name":"x","value":"1"}],"outputArtifacts":[{"name":"a","key":"k"}]}',
     status.Report(output_parameters={"x": "1"}, output_artifacts={"a": "k"})),
    ("GITTRIGGER_RESULT {not json", None),
    ('GITTRIGGER_RESULT ["a list"]', None),
], ids=["empty", "full", "last-wins", "argo-lists", "bad-json", "not-a-map"])
def test_parse_report(log: str, expected: status.Report | None) -> None:
    """The wait helper's last result line is the pod's outputs; anything malformed is no report."""
    assert expected == status.parse_report(log)


@pytest.mark.parametrize(("waiting", "expected"), [
    ({"reason": "ContainerCreating"}, None),
    ({"reason": "ImagePullBackOff", "message": 'Back-off pulling image "nope"'},
     status.Stuck(container="main", reason="ImagePullBackOff", message='Back-off pulling image "nope"', fatal=False)),
    ({"reason": "InvalidImageName", "message": "bad"},
     status.Stuck(container="main", reason="InvalidImageName", message="bad", fatal=True)),
], ids=["creating", "backoff-bounded", "invalid-fatal"])
def test_stuck(waiting: dict[str, Any], expected: status.Stuck | None) -> None:
    """Only waiting reasons that will not pass by themselves count as stuck."""
    assert expected == status.stuck(wire_pod(pod_status("Pending", main={"waiting": waiting})))


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-01T00:00:05Z", datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)),
    ("2026-01-01T00:00:05.123456789Z", datetime(2026, 1, 1, 0, 0, 5, 123456, tzinfo=UTC)),
    ("2026-01-01T00:00:05.5Z", datetime(2026, 1, 1, 0, 0, 5, 500000, tzinfo=UTC)),
    ("yesterday", None),
    (None, None),
], ids=["seconds", "nanos", "short-fraction", "garbage", "none"])
def test_parse_time(text: Any, expected: datetime | None) -> None:
    """Object times and log stamps (nanoseconds) both parse, to UTC."""
    assert expected == status.parse_time(text)


# -- pure: GC, rate limit, errors -------------------------------------------------------------


DEFAULT = gc.Policy(strategy="OnPodCompletion", delete_delay_seconds=5)


@pytest.mark.parametrize(("pod_gc", "expected"), [
    (None, DEFAULT),
    ({"strategy": "OnPodSuccess"}, gc.Policy(strategy="OnPodSuccess", delete_delay_seconds=5)),
    ({"strategy": "OnWorkflowCompletion", "deleteDelayDuration": "1m"},
     gc.Policy(strategy="OnWorkflowCompletion", delete_delay_seconds=60)),
    ({"strategy": ""}, gc.Policy(strategy="Never", delete_delay_seconds=5)),
], ids=["default", "workflow-wins", "delay", "argo-empty-is-never"])
def test_gc_policy(pod_gc: dict[str, Any] | None, expected: gc.Policy) -> None:
    """The workflow's podGC wins over the executor's settings."""
    assert expected == gc.policy_for(pod_gc, default=DEFAULT)


def test_gc_policy_rejects_unknown_strategy() -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.podGC\.strategy"):
        gc.policy_for({"strategy": "Sometimes"}, default=DEFAULT)


@pytest.mark.parametrize(("strategy", "pod_ok", "pod_failed", "wf_ok", "wf_failed"), [
    ("OnPodCompletion", True, True, False, False),
    ("OnPodSuccess", True, False, False, False),
    ("OnWorkflowCompletion", False, False, True, True),
    ("OnWorkflowSuccess", False, False, True, False),
    ("Never", False, False, False, False),
], ids=lambda v: v if isinstance(v, str) else None)
def test_gc_decisions(strategy: str, pod_ok: bool, pod_failed: bool, wf_ok: bool, wf_failed: bool) -> None:
    """Each strategy deletes at its moment only."""
    p = gc.Policy(strategy=strategy)
    assert (pod_ok, pod_failed, wf_ok, wf_failed) == (
        gc.delete_when_pod_done(p, succeeded=True), gc.delete_when_pod_done(p, succeeded=False),
        gc.delete_when_workflow_done(p, succeeded=True), gc.delete_when_workflow_done(p, succeeded=False))


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    """``burst`` requests go at once, then one per 1/qps, waiters served in arrival order."""
    now = [0.0]
    bucket = TokenBucket(qps=10, burst=3, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(5)] == pytest.approx([0, 0, 0, 0.1, 0.2])
    now[0] = 1.0  # tokens refill, but never beyond the burst
    assert [bucket.reserve() for _ in range(4)] == pytest.approx([0, 0, 0, 0.1])


def api_error(code: int, message: str) -> ApiException:
    e = ApiException(status=code, reason="reason")
    reason = "Conflict" if "modified" in message else "Other"
    e.body = json.dumps({"kind": "Status", "message": message, "reason": reason}).encode()
    return e


@pytest.mark.parametrize(("code", "message", "kind"), [
    (404, "pods p not found", NotFound),
    (409, "pods p already exists", AlreadyExists),
    (409, "the object has been modified", Conflict),
    (422, "Pod p is invalid: spec.containers[0].image: Required value", InvalidSpec),
    (500, "etcdserver: request timed out", Unavailable),
    (429, "too many requests", Unavailable),
    (403, "pods is forbidden: User cannot create", WorkflowError),
], ids=["404", "409-exists", "409-conflict", "422", "500", "429", "403"])
def test_api_errors_map_to_domain_errors(code: int, message: str, kind: type[WorkflowError]) -> None:
    """Status codes become our errors with the Status message, never a traceback."""
    error = to_error(api_error(code, message), kind="pod", name="p")
    assert type(error) is kind
    assert "Traceback" not in str(error)
    if kind in (Unavailable, WorkflowError, InvalidSpec, Conflict):
        assert message in str(error)


class Refused(WorkflowError):
    """A caller's own 403 error."""


@pytest.mark.parametrize(("code", "kind"), [(403, Refused), (404, NotFound), (500, Unavailable)],
                         ids=["403-the-callers", "404-as-always", "500-as-always"])
def test_a_caller_names_its_own_403(code: int, kind: type[WorkflowError]) -> None:
    """``forbidden`` turns a 403 (only) into the caller's error, given the server's one-line message."""
    error = to_error(api_error(code, "secrets is forbidden"), kind="secret", name="ci/s",
                     forbidden=lambda detail: Refused(f"refused ({detail})"))
    assert type(error) is kind
    if code == 403:
        assert str(error) == "refused (secrets is forbidden)"


def test_transport_errors_are_recognised() -> None:
    assert is_transport_error(ConnectionResetError()) and is_transport_error(TimeoutError())
    assert not is_transport_error(ValueError("bug"))


# -- pure: watch bookkeeping -------------------------------------------------------------------


def rv_pod(name: str, rv: int, phase: str = "Running") -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": str(rv)}, "status": {"phase": phase}}


async def test_watch_bookkeeping() -> None:
    """Events update the cache and wake waiters; stale events and seeds never go back in time;
    a relist tells pods that vanished or changed across the gap."""
    w = PodWatch(source=None, namespace=NS, selector="x")  # type: ignore[arg-type]
    w.replace([rv_pod("a", 1), rv_pod("b", 2)], resource_version="2")
    changed = w.changed("a")
    w.apply("MODIFIED", rv_pod("a", 3, "Succeeded"))
    assert changed.is_set() and status.phase(w.get("a") or {}) == "Succeeded"
    w.apply("MODIFIED", rv_pod("a", 1, "Running"))  # an old state replayed
    assert status.phase(w.get("a") or {}) == "Succeeded"
    w.apply("DELETED", rv_pod("c", 5))
    w.seed(rv_pod("c", 4))  # created before the deletion the watch saw: stays deleted
    assert w.get("c") is None
    w.seed(rv_pod("c", 6))
    assert w.get("c") is not None
    gone, same = w.changed("b"), w.changed("a")
    w.replace([rv_pod("a", 3, "Succeeded"), rv_pod("c", 6)], resource_version="9")
    assert gone.is_set() and w.get("b") is None
    assert not same.is_set()


# -- the executor against the fake API (kubelet off: the test plays the kubelet) ---------------


class Sink:
    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def append(self, line: LogLine) -> None:
        self.lines.append(line)


def request(name: str = "wf-main-1", *, daemon: bool = False, **fields: Any) -> PodRequest:
    return PodRequest(node_id=NodeId(name), pod_name=name, namespace=NS, workflow_name="wf", workflow_uid="uid-1",
                      template_name="main", main=(Container(name="main", image="alpine", command=("echo", "hi")),),
                      daemon=daemon, **fields)


Make = Callable[..., Awaitable[tuple[FakeKube, KubernetesExecutor, Sink]]]


@pytest.fixture
async def make(make_fake_kube: MakeFakeKube) -> AsyncIterator[Make]:
    """Start a fake (kubelet off) and an executor on it; everything closed at teardown."""
    closers: list[Callable[[], Awaitable[None]]] = []

    async def go(fake: FakeKube | None = None, **options: Any) -> tuple[FakeKube, KubernetesExecutor, Sink]:
        if fake is None:
            fake = await make_fake_kube(kubelet=False)
        api = api_client_for(fake)
        options.setdefault("pod_gc", gc.Policy(strategy="Never"))
        options.setdefault("pod_gc_floor_seconds", 0.0)  # tests watch deletions happen; the floor has its own
        sink = Sink()
        executor = KubernetesExecutor(api, options=KubeOptions(helper_image="gittrigger:test",
                                                               server_url="http://127.0.0.1:1", **options), logs=sink)
        closers.append(api.close)
        closers.append(executor.close)
        return fake, executor, sink

    yield go
    for close in reversed(closers):
        await close()


async def appears(fake: FakeKube, name: str, *, where: Callable[[dict[str, Any]], bool] = lambda p: True) -> dict[
        str, Any]:
    for _ in range(500):
        pod = fake.pod(NS, name)
        if pod is not None and where(pod):
            return pod
        await asyncio.sleep(0.01)
    raise AssertionError(f"pod {name} never appeared")


async def play_success(fake: FakeKube, name: str = "wf-main-1", *, report: str = REPORT) -> None:
    """What a kubelet reports for a pod whose main prints two lines and succeeds."""
    await appears(fake, name)
    fake.set_pod_status(NS, name, pod_status("Running", main=RUNNING, wait=RUNNING))
    fake.add_log(NS, name, "main", ["hello", "world"])
    fake.add_log(NS, name, "wait", [report])
    fake.set_pod_status(NS, name, pod_status("Succeeded", main=term(0), wait=term(0)))


async def watching(fake: FakeKube, ex: KubernetesExecutor) -> None:
    """The executor's watch of NS is open (so an injected failure hits the next pod's request)."""
    await ex.watch_namespace(NS)
    for _ in range(200):
        if fake.requests[("watch", "pods")]:
            return
        await asyncio.sleep(0.01)


def run_soon(ex: KubernetesExecutor, pod: PodRequest, ready: list[str] | None = None) -> asyncio.Task[PodResult]:
    return asyncio.create_task(ex.run(pod, on_ready=(ready if ready is not None else []).append))


async def test_runs_a_pod_and_collects_outputs_and_logs(make: Make) -> None:
    """create -> watch -> log follow -> wait-log read: the result, outputs, host and log lines."""
    fake, ex, sink = await make()
    task = run_soon(ex, request())
    await play_success(fake)
    result = await task
    assert (result.phase, result.result, result.exit_code) == (NodePhase.SUCCEEDED, "hi", 0)
    assert (dict(result.output_parameters), dict(result.output_artifacts)) == ({"out": "v"}, {"a": "k"})
    assert result.host_node_name == "node-a"
    assert [(ln.container, ln.content) for ln in sink.lines] == [("main", "hello"), ("main", "world")]
    assert fake.pod(NS, "wf-main-1")["metadata"]["labels"]["workflows.argoproj.io/workflow"] == "wf"  # type: ignore[index]


async def test_requests_per_pod_stay_within_four(make: Make) -> None:
    """Ten pods: create, log follow, wait-log read, delete each, plus one list and one watch."""
    fake, ex, _ = await make(pod_gc=gc.Policy(strategy="OnPodCompletion"))
    names = [f"wf-main-{i}" for i in range(10)]
    tasks = [run_soon(ex, request(n)) for n in names]
    await asyncio.gather(*(play_success(fake, n) for n in names))
    assert all(r.phase is NodePhase.SUCCEEDED for r in await asyncio.gather(*tasks))
    await ex.close()  # lets the deletions finish
    for _ in range(100):
        if not fake.pods():
            break
        await asyncio.sleep(0.01)
    per_pod = {k: v for k, v in fake.requests.items() if k[0] not in ("list", "watch")}
    assert sum(per_pod.values()) <= 4 * len(names), fake.requests
    assert fake.requests[("create", "pods")] == len(names)
    assert (fake.requests[("list", "pods")], fake.requests[("watch", "pods")]) == (1, 1)


async def test_existing_pod_is_adopted_not_created_twice(make: Make) -> None:
    """After a server restart run() re-attaches to the pod the earlier server created."""
    fake, first, _ = await make()
    task = run_soon(first, request())
    await appears(fake, "wf-main-1")
    fake.set_pod_status(NS, "wf-main-1", pod_status("Running", main=RUNNING, wait=RUNNING))
    first.detach()  # the server goes down: its pod keeps running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fake.pod(NS, "wf-main-1") is not None
    _, second, sink = await make(fake)
    task = run_soon(second, request())
    fake.add_log(NS, "wf-main-1", "main", ["late"])
    fake.add_log(NS, "wf-main-1", "wait", [REPORT])
    fake.set_pod_status(NS, "wf-main-1", pod_status("Succeeded", main=term(0), wait=term(0)))
    assert (await task).phase is NodePhase.SUCCEEDED
    assert fake.requests[("create", "pods")] == 1
    assert [ln.content for ln in sink.lines] == ["late"]


async def test_create_conflict_adopts(make: Make) -> None:
    """A 409 on create (say, a retried create whose first answer was lost) adopts the pod."""
    fake, ex, _ = await make()
    await watching(fake, ex)
    fake.fail_next(1, status=409)
    task = run_soon(ex, request())
    for _ in range(200):
        if fake.requests[("create", "pods")]:
            break
        await asyncio.sleep(0.01)
    async with api_client_for(fake) as api:  # the pod the lost answer was about
        manifest = build_pod(request(), config=PodConfig(helper_image="h", server_url="u", artifact_token=""))
        await client.CoreV1Api(api).create_namespaced_pod(NS, cast(Any, manifest))
    await play_success(fake)
    assert (await task).phase is NodePhase.SUCCEEDED


async def test_pod_deleted_while_running_is_an_error(make: Make) -> None:
    fake, ex, _ = await make()
    task = run_soon(ex, request())
    await appears(fake, "wf-main-1")
    fake.set_pod_status(NS, "wf-main-1", pod_status("Running", main=RUNNING, wait=RUNNING))
    await asyncio.sleep(0.05)
    fake.delete_pod(NS, "wf-main-1")
    result = await task
    assert (result.phase, result.message) == (NodePhase.ERROR, "pod deleted")


async def test_evicted_pod_is_an_error(make: Make) -> None:
    fake, ex, _ = await make()
    task = run_soon(ex, request())
    await appears(fake, "wf-main-1")
    fake.evict(NS, "wf-main-1")
    result = await task
    assert result.phase is NodePhase.ERROR and result.message is not None and result.message.startswith("Evicted")


async def test_image_pull_error_fails_after_the_bound(make: Make) -> None:
    """ImagePullBackOff is given a bound of time, then the node is an Error with the reason and
    the pod is deleted."""
    fake, ex, _ = await make(image_pull_bound_seconds=0.3)
    task = run_soon(ex, request())
    await appears(fake, "wf-main-1")
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "nope:1"'}}
    fake.set_pod_status(NS, "wf-main-1", pod_status("Pending", main=waiting))
    result = await task
    assert (result.phase, result.message) == (NodePhase.ERROR, 'ImagePullBackOff: Back-off pulling image "nope:1"')
    assert fake.pod(NS, "wf-main-1") is None


async def test_daemon_reports_ready_and_is_deleted_when_cancelled(make: Make) -> None:
    """A daemon is Running with its IP once Ready; cancelling deletes its pod with the grace period."""
    fake, ex, _ = await make(grace_period_seconds=0)
    ready: list[str] = []
    task = run_soon(ex, request(daemon=True), ready)
    await appears(fake, "wf-main-1")
    fake.set_pod_status(NS, "wf-main-1", pod_status("Running", main=RUNNING, wait=RUNNING, ready=True))
    for _ in range(200):
        if ready:
            break
        await asyncio.sleep(0.01)
    assert ready == ["10.0.0.7"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fake.pod(NS, "wf-main-1") is None
    assert fake.requests[("delete", "pods")] == 1


async def test_api_500s_are_retried(make: Make) -> None:
    """Transient failures (the watch's list, the create, the log reads) are retried with backoff."""
    fake, ex, _ = await make()
    fake.fail_next(3, status=500)
    task = run_soon(ex, request())
    await play_success(fake)
    assert (await task).phase is NodePhase.SUCCEEDED


async def test_a_persistent_api_failure_is_a_node_error_without_traceback(make: Make) -> None:
    fake, ex, _ = await make()
    await watching(fake, ex)
    fake.fail_next(1, status=403)
    result = await ex.run(request(), on_ready=lambda ip: None)
    assert result.phase is NodePhase.ERROR
    assert result.message is not None and "Traceback" not in result.message and "HTTP 403" in result.message


async def test_invalid_pod_is_a_node_error(make: Make) -> None:
    _, ex, _ = await make()
    bad = replace(request(), main=(Container(name="wait", image="alpine", command=("true",)),), result_container="wait")
    result = await ex.run(bad, on_ready=lambda ip: None)
    assert result.phase is NodePhase.ERROR and "reserved" in (result.message or "")


async def test_dropped_watch_and_410_are_survived(make: Make) -> None:
    """The watch resumes from its resourceVersion after a drop, and lists again after 410."""
    fake, ex, _ = await make()
    task = run_soon(ex, request())
    await appears(fake, "wf-main-1")
    fake.drop_watches()
    fake.set_pod_status(NS, "wf-main-1", pod_status("Running", main=RUNNING, wait=RUNNING))
    await asyncio.sleep(0.3)
    fake.drop_watches()
    fake.add_log(NS, "wf-main-1", "main", ["x"])
    fake.add_log(NS, "wf-main-1", "wait", [REPORT])
    fake.set_pod_status(NS, "wf-main-1", pod_status("Succeeded", main=term(0), wait=term(0)))
    fake.compact()  # the watch missed the last change and cannot resume from before it
    assert (await task).phase is NodePhase.SUCCEEDED
    watch = ex.watch(NS)
    assert watch is not None and watch.relists == 1
    assert fake.requests[("create", "pods")] == 1


async def test_pod_gc_on_success_keeps_failed_pods(make: Make) -> None:
    fake, ex, _ = await make(pod_gc=gc.Policy(strategy="OnPodSuccess"))
    ok, bad = run_soon(ex, request("ok")), run_soon(ex, request("bad"))
    await play_success(fake, "ok")
    await appears(fake, "bad")
    fake.set_pod_status(NS, "bad", pod_status("Failed", main=term(1), wait=term(0)))
    fake.add_log(NS, "bad", "wait", [REPORT])
    assert (await ok).phase is NodePhase.SUCCEEDED and (await bad).phase is NodePhase.FAILED
    for _ in range(100):
        if fake.pod(NS, "ok") is None:
            break
        await asyncio.sleep(0.01)
    assert fake.pod(NS, "ok") is None and fake.pod(NS, "bad") is not None


async def test_a_finished_pod_outlives_the_gc_floor(make: Make) -> None:
    """OnPodCompletion deletes a pod only after the floor: the engine stores the node first, so a
    crash in between can never make a restarted server run the pod again."""
    fake, ex, _ = await make(pod_gc=gc.Policy(strategy="OnPodCompletion"), pod_gc_floor_seconds=0.3)
    task = run_soon(ex, request("ok"))
    await play_success(fake, "ok")
    assert (await task).phase is NodePhase.SUCCEEDED
    await asyncio.sleep(0.1)
    assert fake.pod(NS, "ok") is not None
    for _ in range(100):
        if fake.pod(NS, "ok") is None:
            break
        await asyncio.sleep(0.02)
    assert fake.pod(NS, "ok") is None


async def test_workflow_gc_deletes_the_workflows_pods_when_it_finishes(make: Make) -> None:
    """OnWorkflowSuccess: the engine's phase listener deletes every pod of the finished workflow."""
    fake, ex, _ = await make(pod_gc=gc.Policy(strategy="OnWorkflowSuccess"))
    task = run_soon(ex, request())
    await play_success(fake)
    await task
    assert fake.pod(NS, "wf-main-1") is not None
    await ex.on_workflow_phase(NS, "wf", "Failed", {"metadata": {"uid": "uid-1"}, "spec": {}})
    await asyncio.sleep(0.05)
    assert fake.pod(NS, "wf-main-1") is not None
    await ex.on_workflow_phase(NS, "wf", "Succeeded", {"metadata": {"uid": "uid-1"}, "spec": {}})
    for _ in range(100):
        if fake.pod(NS, "wf-main-1") is None:
            break
        await asyncio.sleep(0.01)
    assert fake.pod(NS, "wf-main-1") is None


async def test_log_stream_resumes_without_duplicates(make: Make) -> None:
    """An API server restart cuts the log stream; it resumes from the last line's time."""
    fake, ex, sink = await make()
    task = run_soon(ex, request())
    await appears(fake, "wf-main-1")
    fake.set_pod_status(NS, "wf-main-1", pod_status("Running", main=RUNNING, wait=RUNNING))
    fake.add_log(NS, "wf-main-1", "main", ["one", "two"], done=False)
    for _ in range(200):
        if len(sink.lines) == 2:
            break
        await asyncio.sleep(0.01)
    await fake.stop()
    await fake.start()
    fake.add_log(NS, "wf-main-1", "main", ["three"])
    fake.add_log(NS, "wf-main-1", "wait", [REPORT])
    fake.set_pod_status(NS, "wf-main-1", pod_status("Succeeded", main=term(0), wait=term(0)))
    assert (await task).phase is NodePhase.SUCCEEDED
    assert [ln.content for ln in sink.lines] == ["one", "two", "three"]


async def test_forget_pods_makes_a_retry_run_the_pod_again(make: Make) -> None:
    """The engine's retry asks to forget a finished pod: it is deleted, and the re-run creates it anew."""
    fake, ex, _ = await make()
    task = run_soon(ex, request())
    await appears(fake, "wf-main-1")
    fake.set_pod_status(NS, "wf-main-1", pod_status("Failed", main=term(1), wait=term(0)))
    fake.add_log(NS, "wf-main-1", "wait", [REPORT])
    assert (await task).phase is NodePhase.FAILED
    await ex.forget_pods(NS, "wf", ["wf-main-1", "never-ran"])
    assert fake.pod(NS, "wf-main-1") is None
    task = run_soon(ex, request())
    await play_success(fake)
    assert (await task).phase is NodePhase.SUCCEEDED
    assert fake.requests[("create", "pods")] == 2


async def test_unreachable_api_is_a_node_error_not_a_hang(make: Make) -> None:
    """When the pods cannot even be listed, run() ends with an Error instead of waiting forever."""
    fake, ex, _ = await make(sync_timeout_seconds=0.3)
    await fake.stop()
    result = await ex.run(request(), on_ready=lambda ip: None)
    assert result.phase is NodePhase.ERROR and "cannot list the pods" in (result.message or "")


@pytest.mark.parametrize("message", [
    status.DELETED_MESSAGE,
    "Evicted: The node was low on resource: memory.",
    str(to_error(api_error(500, "etcd leader changed"), kind="pod", name="p")),
    str(to_error(api_error(429, "too many requests"), kind="pod", name="p")),
], ids=["deleted", "evicted", "500", "429"])
def test_executor_errors_are_transient_for_retry_policies(message: str) -> None:
    """Nodes ended by what the cluster did are retried by ``retryPolicy: OnTransientError``."""
    node = NodeStatus(id=NodeId("n"), name="n", display_name="n", type=NodeType.POD, phase=NodePhase.ERROR,
                      message=message)
    assert retries.covers(RetryPolicy.ON_TRANSIENT_ERROR, node)


async def test_failed_init_helper_reports_its_reason(make: Make) -> None:
    """Staging inputs failed: the node is an Error with the init helper's last line, as on the local executor."""
    fake, ex, _ = await make()
    task = run_soon(ex, request())
    await appears(fake, "wf-main-1")
    fake.add_log(NS, "wf-main-1", "init", ["fetching inputs", "input artifact 'data' not found: key x/y"])
    fake.set_pod_status(NS, "wf-main-1", pod_status("Failed", init=term(1)))
    result = await task
    assert (result.phase, result.message) == (NodePhase.ERROR, "input artifact 'data' not found: key x/y")
