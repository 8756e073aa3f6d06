"""
The ``kubernetes`` executor: runs each pod as a real Pod through kubernetes-asyncio.

Called by :mod:`workflows.engine` through the :class:`~workflows.executors.base.Executor`
Protocol; built by :mod:`gittrigger.assembly` when ``executor.kind`` is ``kubernetes``. The Pod
is built by :func:`workflows.executors.podspec.build_pod` (``docs/kubernetes-pods.md``); this
module creates it, follows it through the namespace's one :class:`~.kube.watch.PodWatch`,
streams the main container's log into the log store, reads the ``wait`` container's
``GITTRIGGER_RESULT`` line once the Pod ended, and deletes the Pod by the GC policy. That is at
most four requests per pod (create, log follow, wait-log read, delete) plus the shared watch.

Idempotent and restart-safe: the Pod name is the request's deterministic ``pod_name``, a
create answered ``409`` adopts the existing Pod, and a pod the watch already knows is
re-attached, never created again. Cancelling ``run()`` deletes the Pod with the grace period
and re-raises, unless the executor was :meth:`~KubernetesExecutor.detach`-ed for a server
shutdown: then pods keep running for the next server to re-attach.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import structlog
from kubernetes_asyncio import client, config

from workflows.errors import AlreadyExists, InvalidSpec, Unavailable, WorkflowError
from workflows.executors.base import LogSink, PodRequest, PodResult
from workflows.executors.kube import gc, status
from workflows.executors.kube.calls import PodsApi, TokenBucket
from workflows.executors.kube.logs import follow_log
from workflows.executors.kube.watch import PodWatch
from workflows.executors.podspec import (
    LABEL_MANAGED_BY,
    LABEL_WORKFLOW,
    MANAGED_BY,
    ImageCommand,
    PodConfig,
    build_pod,
    claims_for,
    label_value,
)
from workflows.model.status import NodePhase

SELECTOR: Final = f"{LABEL_MANAGED_BY}={MANAGED_BY}"

logger = structlog.get_logger(__name__)


def _no_images() -> Mapping[str, ImageCommand]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class KubeOptions:
    """How pods are made and handled (from ``KubernetesSettings``; see :mod:`gittrigger.settings`).

    ``namespace`` None runs each pod in its workflow's namespace. ``image_pull_bound_seconds``
    is how long a container may wait on ``ErrImagePull``/``ImagePullBackOff`` before its node
    is an Error; ``log_drain_seconds`` how long log streams may lag behind the Pod's end.
    """

    helper_image: str
    server_url: str
    namespace: str | None = None
    service_account: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    pod_gc: gc.Policy = field(default_factory=gc.Policy)
    grace_period_seconds: float = 10.0
    image_pull_bound_seconds: float = 60.0
    log_drain_seconds: float = 10.0
    sync_timeout_seconds: float = 60.0
    qps: float = 20.0
    burst: int = 40
    images: Mapping[str, ImageCommand] = field(default_factory=_no_images)
    default_resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    pod_gc_floor_seconds: float = 5.0  # a finished pod outlives the engine's write of its result


async def api_client(*, kubeconfig: Path | None = None, context: str | None = None) -> client.ApiClient:
    """An API client from ``kubeconfig`` (else in-cluster config inside a Pod, else
    ``$KUBECONFIG`` / ``~/.kube/config``); the caller closes it."""
    configuration = client.Configuration()
    try:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await config.load_kube_config(config_file=str(kubeconfig) if kubeconfig else None, context=context,
                                          client_configuration=configuration)
    except (config.ConfigException, OSError) as e:
        raise InvalidSpec("kubernetes.kubeconfig", f"no usable Kubernetes configuration: {e}") from None
    # One connection per running pod's log stream: the token bucket, not the pool, bounds requests.
    configuration.connection_pool_maxsize = 0
    return client.ApiClient(configuration=configuration)


def _now() -> datetime:
    return datetime.now(UTC)


class KubernetesExecutor:
    """Runs pods on a cluster; see the module docstring."""

    def __init__(self, api: client.ApiClient, *, options: KubeOptions, logs: LogSink,
                 artifact_token: Callable[[PodRequest], str] = lambda pod: "", close_api: bool = False) -> None:
        self._client = api if close_api else None
        self._options = options
        self._logs = logs
        self._artifact_token = artifact_token
        self.api = PodsApi(api, bucket=TokenBucket(qps=options.qps, burst=options.burst))
        self._watches: dict[str, PodWatch] = {}
        self._running: dict[tuple[str, str], asyncio.Future[PodResult]] = {}
        self._deletions: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._delayed: set[tuple[str, str]] = set()  # deletions still waiting for their GC delay
        self._claims: set[tuple[str, str]] = set()  # PVCs this server created or found (namespace, name)
        self._detached = False

    @classmethod
    async def connect(cls, *, options: KubeOptions, logs: LogSink, kubeconfig: Path | None = None,
                      context: str | None = None,
                      artifact_token: Callable[[PodRequest], str] = lambda pod: "") -> KubernetesExecutor:
        """An executor with its own API client (see :func:`api_client`), closed by :meth:`close`."""
        api = await api_client(kubeconfig=kubeconfig, context=context)
        return cls(api, options=options, logs=logs, artifact_token=artifact_token, close_api=True)

    # -- lifecycle -----------------------------------------------------------------------------

    def detach(self) -> None:
        """From now on a cancelled ``run()`` leaves its Pod running (server shutdown: the next
        server re-attaches). Call before closing the engine."""
        self._detached = True

    async def close(self) -> None:
        """Stop the watches and pending deletions (pods whose GC delay had not passed are kept)."""
        self._detached = True
        due = [t for k, t in self._deletions.items() if k not in self._delayed]
        if due:  # deletions already on their way are let through (briefly); delayed ones are dropped
            await asyncio.wait(due, timeout=5.0)
        for task in list(self._deletions.values()):
            task.cancel()
        for task in list(self._deletions.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for watch in self._watches.values():
            await watch.close()
        self._watches.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None

    def watch(self, namespace: str) -> PodWatch | None:
        """The namespace's pod watch, once started (tests and the bench read its counters)."""
        return self._watches.get(namespace)

    async def watch_namespace(self, namespace: str) -> PodWatch:
        """The namespace's pod watch, started (and its first list done) if it was not yet; Unavailable
        when the API server cannot be listed within ``sync_timeout_seconds`` (the watch keeps trying)."""
        watch = self._watches.get(namespace)
        if watch is None:
            watch = self._watches[namespace] = PodWatch(self.api, namespace=namespace, selector=SELECTOR)
        try:
            await asyncio.wait_for(watch.start(), self._options.sync_timeout_seconds)
        except TimeoutError:
            raise Unavailable(f"kubernetes API: cannot list the pods of namespace {namespace!r} (transient)") from None
        return watch

    # -- workflow-level GC ---------------------------------------------------------------------

    async def on_workflow_phase(self, namespace: str, name: str, phase: str, workflow: Mapping[str, Any]) -> None:
        """An engine phase listener (:meth:`workflows.engine.Engine.add_phase_listener`): applies the
        workflow-level pod GC strategies when a run finishes."""
        if phase not in ("Succeeded", "Failed", "Error"):
            return
        try:
            policy = gc.policy_for((workflow.get("spec") or {}).get("podGC"), default=self._options.pod_gc)
        except InvalidSpec:
            policy = self._options.pod_gc
        if gc.delete_when_workflow_done(policy, succeeded=phase == "Succeeded"):
            uid = str((workflow.get("metadata") or {}).get("uid") or "")
            await self.forget_workflow(namespace=namespace, workflow=name, workflow_uid=uid,
                                       delay_seconds=policy.delete_delay_seconds)
        if (workflow.get("spec") or {}).get("volumeClaimTemplates"):
            await self._delete_claims(namespace, workflow=name)

    async def _delete_claims(self, namespace: str, *, workflow: str) -> None:
        """Delete a finished run's ``volumeClaimTemplates`` claims (found by label, so also those an
        earlier server created)."""
        ns = self._options.namespace or namespace
        selector = f"{SELECTOR},{LABEL_WORKFLOW}={label_value(workflow)}"
        try:
            await self.api.delete_claims(ns, selector=selector)
        except WorkflowError as e:
            logger.warning("volume claims not deleted", namespace=ns, workflow=workflow, error=str(e))
        self._claims = {c for c in self._claims if c[0] != ns or not c[1].startswith(f"{workflow}-")}

    async def forget_workflow(self, *, namespace: str, workflow: str, workflow_uid: str,
                              delay_seconds: float = 0.0) -> None:
        """Delete every Pod of a finished (or deleted) workflow run, after ``delay_seconds``
        (the LocalExecutor's method of the same name removes its workspaces)."""
        ns = self._options.namespace or namespace
        watch = await self.watch_namespace(ns)
        label = label_value(workflow)
        for pod in watch.pods():
            meta = pod.get("metadata") or {}
            if (meta.get("labels") or {}).get(LABEL_WORKFLOW) == label:
                self._delete_later((ns, str(meta["name"])), delay=delay_seconds)

    async def forget_pods(self, namespace: str, workflow: str, pod_names: Sequence[str]) -> None:
        """Delete the finished Pods a retry runs again under the same names (Argo's podsToDelete),
        and wait until they are gone, so the re-run creates new ones instead of adopting them.
        Called by :meth:`workflows.engine.Engine.retry`."""
        ns = self._options.namespace or namespace
        watch = await self.watch_namespace(ns)
        for name in pod_names:
            pending = self._deletions.pop((ns, name), None)
            if pending is not None:
                pending.cancel()
            if watch.get(name) is not None:
                await self._replace(watch, namespace=ns, name=name)

    def _delete_later(self, key: tuple[str, str], *, delay: float) -> None:
        if key in self._deletions:
            return

        async def delete() -> None:
            try:
                if delay > 0:
                    self._delayed.add(key)
                    await asyncio.sleep(delay)
                    self._delayed.discard(key)
                await self.api.delete_pod(*key)
            except WorkflowError as e:
                logger.warning("pod not deleted", namespace=key[0], pod=key[1], error=str(e))
            finally:
                if self._deletions.get(key) is task:
                    del self._deletions[key]
                    self._delayed.discard(key)

        task = asyncio.create_task(delete(), name=f"delete pod {key[0]}/{key[1]}")
        self._deletions[key] = task

    # -- running a pod -------------------------------------------------------------------------

    async def run(self, pod: PodRequest, *, on_ready: Callable[[str], None]) -> PodResult:
        """Run ``pod`` (or re-attach to it); see :class:`workflows.executors.base.Executor`."""
        namespace = self._options.namespace or pod.namespace
        key = (namespace, pod.pod_name)
        if (joined := self._running.get(key)) is not None:
            return await asyncio.shield(joined)  # a second caller waits; only the first owns the pod
        future: asyncio.Future[PodResult] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        log = logger.bind(namespace=pod.namespace, workflow=pod.workflow_name, node=pod.node_id, pod=pod.pod_name)
        try:
            result = await self._attempt(pod, namespace=namespace, on_ready=on_ready, log=log)
            future.set_result(result)
            return result
        except asyncio.CancelledError:
            if not self._detached:
                await self._delete_now(key, grace=self._options.grace_period_seconds, log=log)
            raise
        finally:
            if not future.done():
                future.cancel()
            del self._running[key]

    async def _delete_now(self, key: tuple[str, str], *, grace: float, log: Any) -> None:
        """Delete a cancelled run's Pod; a second cancellation cannot stop the request once sent."""
        task = asyncio.create_task(self.api.delete_pod(*key, grace_seconds=grace), name=f"delete pod {key[1]}")
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        except WorkflowError as e:
            log.warning("pod not deleted", error=str(e))

    def _pod_config(self, pod: PodRequest, namespace: str) -> PodConfig:
        o = self._options
        return PodConfig(helper_image=o.helper_image, server_url=o.server_url, artifact_token=self._artifact_token(pod),
                         namespace=namespace, service_account=o.service_account,
                         image_pull_secrets=o.image_pull_secrets, images=o.images,
                         default_resources=o.default_resources)

    async def _attempt(self, pod: PodRequest, *, namespace: str, on_ready: Callable[[str], None],
                       log: Any) -> PodResult:
        try:
            manifest = build_pod(pod, config=self._pod_config(pod, namespace))
            policy = gc.policy_for(pod.pod_fields.get("podGC"), default=self._options.pod_gc)
        except InvalidSpec as e:
            return PodResult(phase=NodePhase.ERROR, message=str(e), finished_at=_now())
        try:
            result = await self._track(pod, manifest, namespace=namespace, on_ready=on_ready, log=log)
        except WorkflowError as e:
            log.warning("pod lost to the kubernetes API", error=str(e))
            return PodResult(phase=NodePhase.ERROR, message=f"kubernetes: {e}", finished_at=_now())
        if gc.delete_when_pod_done(policy, succeeded=result.phase is NodePhase.SUCCEEDED):
            # Not before the engine has surely stored the node's result: a pod deleted first and a
            # crash in between would make a restarted server create (and run) it again.
            delay = max(policy.delete_delay_seconds, self._options.pod_gc_floor_seconds)
            self._delete_later((namespace, pod.pod_name), delay=delay)
        log.debug("pod finished", phase=result.phase.value, exit_code=result.exit_code)
        return result

    async def _track(self, pod: PodRequest, manifest: dict[str, Any], *, namespace: str,
                     on_ready: Callable[[str], None], log: Any) -> PodResult:
        name = pod.pod_name
        watch = await self.watch_namespace(namespace)
        earlier = self._deletions.pop((namespace, name), None)
        if earlier is not None:  # this server ran the pod and keeps it for its GC delay: a rerun
            earlier.cancel()
            await self._replace(watch, namespace=namespace, name=name)
        if watch.get(name) is None:
            await self._ensure_claims(pod, manifest, namespace=namespace)
            try:
                watch.seed(await self.api.create_pod(namespace, manifest))
            except AlreadyExists:
                log.info("pod exists, adopted")
        else:
            log.info("pod re-attached", phase=status.phase(watch.get(name) or {}))
        mains = [pod.result_container, *(c.name for c in pod.main if c.name != pod.result_container)]
        follows: dict[str, asyncio.Task[None]] = {}
        loop = asyncio.get_running_loop()
        seen, ready_sent, stuck_since = False, False, None
        try:
            while True:
                changed = watch.changed(name)
                raw = watch.get(name)
                timeout = None
                if raw is None or (seen and status.deleting(raw) and not status.terminal(raw)):
                    if seen:  # deleted by someone else: an Error, so OnError retries apply
                        log.warning("pod deleted while running")
                        return PodResult(phase=NodePhase.ERROR, message=status.DELETED_MESSAGE, finished_at=_now(),
                                         host_node_name=status.host(raw or {}))
                else:
                    seen = True
                    for c in mains:
                        if c not in follows and status.started(raw, c):
                            follows[c] = asyncio.create_task(
                                follow_log(self.api, self._logs, pod, namespace=namespace, container=c),
                                name=f"log {name}/{c}")
                    if pod.daemon and not ready_sent and status.ready(raw) and not status.terminal(raw):
                        ready_sent = True
                        on_ready(status.pod_ip(raw) or "")
                    if status.terminal(raw):
                        return await self._finish(raw, namespace=namespace, mains=mains, follows=follows, log=log)
                    stuck = status.stuck(raw)
                    stuck_since = None if stuck is None else stuck_since or loop.time()
                    if stuck is not None and stuck_since is not None:
                        timeout = self._options.image_pull_bound_seconds - (loop.time() - stuck_since)
                        if stuck.fatal or timeout <= 0:
                            log.warning("pod cannot start", reason=stuck.reason, container=stuck.container)
                            await self.api.delete_pod(namespace, name, grace_seconds=0)
                            return PodResult(phase=NodePhase.ERROR, message=stuck.describe(), finished_at=_now(),
                                             host_node_name=status.host(raw))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), timeout)
        finally:
            for task in follows.values():
                task.cancel()
            await asyncio.gather(*follows.values(), return_exceptions=True)

    async def _ensure_claims(self, pod: PodRequest, manifest: Mapping[str, Any], *, namespace: str) -> None:
        """Create the run's PersistentVolumeClaims this Pod mounts, once per run (a 409 is fine)."""
        templates = [v.raw for v in pod.volumes if v.scope == "workflow"]
        if not templates:
            return
        used = {(v.get("persistentVolumeClaim") or {}).get("claimName") for v in manifest["spec"].get("volumes") or ()}
        run = {"metadata": {"name": pod.workflow_name}, "spec": {"volumeClaimTemplates": templates}}
        for claim in claims_for(run, namespace=namespace):
            key = (namespace, str(claim["metadata"]["name"]))
            if key[1] not in used or key in self._claims:
                continue
            with contextlib.suppress(AlreadyExists):
                await self.api.create_claim(namespace, claim)
            self._claims.add(key)

    async def _replace(self, watch: PodWatch, *, namespace: str, name: str) -> None:
        """Delete the finished Pod of an earlier run of this node and wait until it is gone."""
        await self.api.delete_pod(namespace, name, grace_seconds=0)
        while watch.get(name) is not None:
            await watch.changed(name).wait()

    async def _finish(self, raw: Mapping[str, Any], *, namespace: str, mains: list[str],
                      follows: Mapping[str, asyncio.Task[None]], log: Any) -> PodResult:
        name = str(raw["metadata"]["name"])
        report, wait_log, init_log = None, "", ""
        try:
            if status.failed(raw, status.INIT):  # main never ran: the init helper's log says why
                init_log = await self.api.read_log(namespace, name, container=status.INIT)
            elif status.started(raw, status.WAIT):
                wait_log = await self.api.read_log(namespace, name, container=status.WAIT)
                report = status.parse_report(wait_log)
        except WorkflowError as e:
            log.warning("helper log not read", error=str(e))
        if follows:  # the streams end with their containers; let them catch up, within a bound
            await asyncio.wait(list(follows.values()), timeout=self._options.log_drain_seconds)
        result = status.outcome(raw, mains=mains, report=report, wait_log=wait_log, init_log=init_log)
        return result if result.finished_at else replace(result, finished_at=_now())
