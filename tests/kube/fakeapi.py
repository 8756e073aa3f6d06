"""
A fake Kubernetes API server on loopback: Pods (with logs), PersistentVolumeClaims, and Secrets
(GET only, seeded by tests with :meth:`FakeKube.add_secret`).

Used by the Kubernetes executor's tests (through ``tests/kube/conftest.py``) and by
``bench/kubernetes.py``, always with the real kubernetes-asyncio client pointed at
:meth:`FakeKube.start`'s URL. It answers as the real API server does where our client can
tell: Status bodies for errors (409 AlreadyExists, 404 NotFound, 422 Invalid, 410 Expired),
one resourceVersion counter across all objects, watches as newline-delimited events (with
resume by resourceVersion, selector transitions as ADDED/DELETED, bookmarks, ``timeoutSeconds``
and an ERROR event with a 410 Status once history is compacted), graceful Pod deletion
(``deletionTimestamp``, then DELETED once the kubelet stopped the containers).

With ``kubelet=True`` a built-in scheduler gives each Pod a node (honouring ``nodeSelector``
and required node affinity on ``kubernetes.io/hostname``) and :mod:`tests.kube.kubelet` runs
it as local processes. Faults for tests: :meth:`FakeKube.drop_watches`, :meth:`FakeKube.compact`,
:meth:`FakeKube.fail_next`, :meth:`FakeKube.delete_pod`, :meth:`FakeKube.evict`,
:meth:`FakeKube.stop` / :meth:`FakeKube.start` (state kept), ``latency_seconds``, and
:meth:`FakeKube.forbid` (403 Forbidden as RBAC answers, per verb and resource).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import secrets
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from tests.kube.kubelet import ContainerLog, Kubelet, now_rfc3339
from tests.kube.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    pick_node,
    schema_problems,
    validate_pod,
)

Obj = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Key = tuple[str, str, str]  # (resource, namespace, name)

PODS: Final = "pods"
CLAIMS: Final = "persistentvolumeclaims"
SECRETS: Final = "secrets"
_KINDS: Final = {PODS: "Pod", CLAIMS: "PersistentVolumeClaim", SECRETS: "Secret"}
SERVICE_ACCOUNT: Final = "system:serviceaccount:default:gittrigger"  # who a 403 says was refused
_DROP: Final = "drop"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Change:
    rv: int
    type: str
    resource: str
    obj: Obj
    old: Obj | None


@dataclass(slots=True, kw_only=True, eq=False)
class _Watcher:
    resource: str
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    queue: asyncio.Queue[_Change | str] = field(default_factory=asyncio.Queue)

    def event(self, change: _Change) -> tuple[str, Obj] | None:
        """The event this watcher sees for ``change`` (selector transitions included), if any."""
        if change.resource != self.resource:
            return None
        if self.namespace is not None and change.obj["metadata"].get("namespace") != self.namespace:
            return None
        now = self.matches(change.obj)
        before = change.old is not None and self.matches(change.old)
        if change.type == "DELETED":
            return ("DELETED", change.obj) if now else None
        if now and before:
            return "MODIFIED", change.obj
        if now:
            return "ADDED", change.obj
        return ("DELETED", change.obj) if before else None

    def matches(self, obj: Obj) -> bool:
        return self.labels.matches(obj["metadata"].get("labels") or {}) and self.fields.matches(obj)


class FakeKube:
    """The fake API server (and, with ``kubelet=True``, its nodes). See the module docstring."""

    def __init__(
        self,
        *,
        latency_seconds: float = 0.0,
        kubelet: bool = True,
        nodes: Iterable[str] = ("node-a", "node-b"),
        data_dir: Path | None = None,
        emissary: Path | None = None,
        isolate: bool | None = None,
        history_limit: int = 100_000,
        bookmark_seconds: float = 60.0,
        schema_check: bool = True,
    ) -> None:
        self.latency_seconds = latency_seconds
        # Every object created is checked against the real Kubernetes schema (kubernetes-validate,
        # strict), as the issue asks of every manifest the tests produce; a bench may turn it off.
        self.schema_check = schema_check
        self.nodes = tuple(nodes)
        self.requests: Counter[tuple[str, str]] = Counter()  # (verb, resource), e.g. ("watch", "pods")
        self.bookmark_seconds = bookmark_seconds
        self._own_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="fakekube-")) if data_dir is None else data_dir
        self._objects: dict[Key, Obj] = {}
        self._rv = 100  # like etcd's revision, never 0: a list's rv "0" would mean "any" to a watch
        self._history: list[_Change] = []
        self._history_limit = history_limit
        self._compacted = self._rv  # changes at or below this resourceVersion are forgotten
        self._watchers: set[_Watcher] = set()
        self._load: Counter[str] = Counter()  # pods per node, for the scheduler's spreading
        self._failures: list[int] = []
        self._forbidden: set[tuple[str, str, str | None]] = set()  # (verb, resource, namespace or None = all)
        self._manual_logs: dict[tuple[str, str, str], ContainerLog] = {}
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self.kubelet = (
            Kubelet(store=self, data_dir=self.data_dir, emissary=emissary, isolate=isolate) if kubelet else None
        )

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> str:
        """Serve (again, on the same port after :meth:`stop`); returns the base URL."""
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(self._app(), handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, reuse_address=True)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self.url

    async def stop(self) -> None:
        """Stop serving, as an API server restart does: open watches and log streams break.
        Objects, history and running pods are kept."""
        self._stopping.set()
        self.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def close(self) -> None:
        """Stop serving, kill every pod's processes, delete the data directory."""
        await self.stop()
        if self.kubelet is not None:
            await self.kubelet.close()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- faults and admin actions --------------------------------------------------------------

    def drop_watches(self) -> None:
        """Close every open watch stream abruptly (the client sees a broken chunked body)."""
        for w in self._watchers:
            w.queue.put_nowait(_DROP)

    def compact(self) -> None:
        """Forget all history: a watch or exact list from any earlier resourceVersion gets 410."""
        self._history.clear()
        self._compacted = self._rv

    def fail_next(self, n: int = 1, *, status: int = 500) -> None:
        """The next ``n`` requests fail with ``status`` (a Status body, reason InternalError for 500)."""
        self._failures.extend([status] * n)

    def forbid(self, verb: str, resource: str, *, namespace: str | None = None) -> None:
        """From now on ``verb`` (get, list, watch, create, delete) on ``resource`` is refused with 403
        Forbidden, as RBAC does when the service account lacks the permission (``namespace`` None:
        in every namespace)."""
        self._forbidden.add((verb, resource, namespace))

    def add_secret(self, namespace: str, name: str, data: Mapping[str, str | bytes], *,
                   secret_type: str = "Opaque") -> Obj:
        """Create or replace a Secret as ``kubectl create secret generic --from-literal`` would:
        values are stored base64-encoded under ``data`` (the API never returns ``stringData``)."""
        encoded = {k: base64.b64encode(v.encode() if isinstance(v, str) else v).decode() for k, v in data.items()}
        old = self._objects.get((SECRETS, namespace, name))
        meta = dict(old["metadata"]) if old is not None else {
            "name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "creationTimestamp": now_rfc3339()}
        obj: Obj = {"kind": "Secret", "apiVersion": "v1", "metadata": meta, "type": secret_type, "data": encoded}
        return copy.deepcopy(self._put(SECRETS, obj, "ADDED" if old is None else "MODIFIED", old=old))

    def delete_pod(self, namespace: str, name: str, *, grace_seconds: float | None = None) -> bool:
        """Delete a Pod as an admin would (graceful unless ``grace_seconds=0``); False if absent."""
        pod = self._objects.get((PODS, namespace, name))
        if pod is None:
            return False
        self._delete_pod(pod, grace_seconds)
        return True

    def evict(self, namespace: str, name: str) -> None:
        """Node-pressure eviction: the kubelet kills the Pod; it stays as Failed, reason Evicted."""
        if self.kubelet is not None:
            self.kubelet.evict(namespace, name)
            return
        pod = self._objects[(PODS, namespace, name)]
        status = {
            **pod.get("status", {}),
            "phase": "Failed",
            "reason": "Evicted",
            "message": "The node was low on resource: memory. ",
        }
        self.set_pod_status(namespace, name, status)

    def add_log(self, namespace: str, pod: str, container: str, lines: Iterable[str], *, done: bool = True) -> None:
        """Without a kubelet: lines the log endpoint serves for a container (``done``: it ended)."""
        log = self._manual_logs.setdefault((namespace, pod, container), ContainerLog())
        for line in lines:
            log.append(line)
        if done:
            log.close()

    def pod(self, namespace: str, name: str) -> Obj | None:
        """A copy of the stored Pod, if any."""
        pod = self._objects.get((PODS, namespace, name))
        return copy.deepcopy(pod) if pod is not None else None

    def pods(self) -> list[Obj]:
        """Copies of all stored Pods."""
        return [copy.deepcopy(o) for (r, _, _), o in sorted(self._objects.items()) if r == PODS]

    @property
    def resource_version(self) -> int:
        return self._rv

    # -- PodStore (the kubelet's side) ---------------------------------------------------------

    def set_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Replace a Pod's status (MODIFIED); tests drive pods with it when ``kubelet=False``."""
        pod = self._objects.get((PODS, namespace, name))
        if pod is None:
            return
        old = pod
        pod = {**pod, "status": copy.deepcopy(status)}
        self._put(PODS, pod, "MODIFIED", old=old)

    def remove_pod(self, namespace: str, name: str) -> None:
        pod = self._objects.pop((PODS, namespace, name), None)
        if pod is not None:
            if node := pod["spec"].get("nodeName"):
                self._load[node] -= 1
            self._record(PODS, copy.deepcopy(pod), "DELETED", old=pod)

    # -- state ---------------------------------------------------------------------------------

    def _put(self, resource: str, obj: Obj, kind: str, *, old: Obj | None) -> Obj:
        meta = obj["metadata"]
        self._objects[(resource, meta["namespace"], meta["name"])] = obj
        return self._record(resource, obj, kind, old=old)

    def _record(self, resource: str, obj: Obj, kind: str, *, old: Obj | None) -> Obj:
        self._rv += 1
        obj["metadata"] = {**obj["metadata"], "resourceVersion": str(self._rv)}
        change = _Change(rv=self._rv, type=kind, resource=resource, obj=obj, old=old)
        self._history.append(change)
        if len(self._history) > self._history_limit:
            dropped = self._history[: len(self._history) // 10]
            del self._history[: len(dropped)]
            self._compacted = dropped[-1].rv
        for w in self._watchers:
            w.queue.put_nowait(change)
        return obj

    def _schedule(self, pod: Obj) -> None:
        """Bind a new Pod to a node (or mark it unschedulable), then hand it to the kubelet."""
        meta, spec = pod["metadata"], pod["spec"]
        node, why = pick_node(spec, nodes=self.nodes, load=self._load)
        claims = [
            v["persistentVolumeClaim"].get("claimName")
            for v in spec.get("volumes") or []
            if isinstance(v.get("persistentVolumeClaim"), Mapping)
        ]
        missing = [c for c in claims if (CLAIMS, meta["namespace"], c) not in self._objects]
        if missing:
            node, why = None, f'persistentvolumeclaim "{missing[0]}" not found'
        condition = {
            "type": "PodScheduled",
            "status": "True" if node else "False",
            "lastProbeTime": None,
            "lastTransitionTime": now_rfc3339(),
        }
        if node is None:
            condition.update(reason="Unschedulable", message=why)
            self.set_pod_status(meta["namespace"], meta["name"], {**pod["status"], "conditions": [condition]})
            return
        bound = {**pod, "spec": {**spec, "nodeName": node}, "status": {**pod["status"], "conditions": [condition]}}
        bound = self._put(PODS, bound, "MODIFIED", old=pod)
        self._load[node] += 1
        if self.kubelet is not None:
            self.kubelet.admit(copy.deepcopy(bound))

    def _schedule_pending(self, namespace: str) -> None:
        for (r, ns, _), pod in list(self._objects.items()):
            if (
                r == PODS
                and ns == namespace
                and not pod["spec"].get("nodeName")
                and not pod["metadata"].get("deletionTimestamp")
            ):
                self._schedule(pod)

    def _delete_pod(self, pod: Obj, grace: float | None) -> Obj:
        meta, spec = pod["metadata"], pod["spec"]
        ns, name = meta["namespace"], meta["name"]
        if grace is None:
            grace = float(spec.get("terminationGracePeriodSeconds", 30))
        running_here = (
            self.kubelet is not None
            and spec.get("nodeName")
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        )
        if grace <= 0 or not running_here:
            self.remove_pod(ns, name)
            if self.kubelet is not None:
                self.kubelet.forget(ns, name)
            return pod
        if meta.get("deletionTimestamp"):
            return pod  # already terminating: a second delete changes nothing here
        when = (datetime.now(UTC) + timedelta(seconds=grace)).strftime("%Y-%m-%dT%H:%M:%SZ")
        marked = {**pod, "metadata": {**meta, "deletionTimestamp": when, "deletionGracePeriodSeconds": int(grace)}}
        marked = self._put(PODS, marked, "MODIFIED", old=pod)
        assert self.kubelet is not None
        self.kubelet.terminate(ns, name, grace=grace)
        return marked

    # -- HTTP ----------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        ns_pods, ns_claims = (
            "/api/v1/namespaces/{namespace}/pods",
            "/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        )
        for resource, collection, cluster in (
            (PODS, ns_pods, "/api/v1/pods"),
            (CLAIMS, ns_claims, "/api/v1/persistentvolumeclaims"),
        ):
            app.router.add_get(collection, self._list, name=f"list:{resource}")
            app.router.add_get(cluster, self._list, name=f"list:{resource}:all")
            app.router.add_post(collection, self._create, name=f"create:{resource}")
            app.router.add_get(collection + "/{name}", self._get, name=f"get:{resource}")
            app.router.add_delete(collection + "/{name}", self._delete, name=f"delete:{resource}")
        app.router.add_get(ns_pods + "/{name}/log", self._log, name="get:pods.log")
        app.router.add_get("/api/v1/namespaces/{namespace}/secrets/{name}", self._get, name=f"get:{SECRETS}")
        app.router.add_get("/version", self._version, name="get:version")
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        name = request.match_info.route.name or ""
        verb, _, resource = name.partition(":")
        resource = resource.removesuffix(":all").replace(".", "/")
        if verb == "list" and request.query.get("watch", "").lower() in ("true", "1"):
            verb = "watch"
        if name:
            self.requests[(verb, resource)] += 1
        if self.latency_seconds:
            await asyncio.sleep(self.latency_seconds)
        if self._failures:
            code = self._failures.pop(0)
            reason = {500: "InternalError", 503: "ServiceUnavailable", 429: "TooManyRequests"}.get(code, "Unknown")
            return status_response(
                code, reason, 'an error on the server ("injected failure") has prevented the request from succeeding'
            )
        if not name:
            return status_response(404, "NotFound", "the server could not find the requested resource")
        ns = request.match_info.get("namespace")
        if (verb, resource, None) in self._forbidden or (ns and (verb, resource, ns) in self._forbidden):
            target = f'{resource} "{request.match_info["name"]}"' if "name" in request.match_info else resource
            where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
            return status_response(
                403, "Forbidden",
                f'{target} is forbidden: User "{SERVICE_ACCOUNT}" cannot {verb} resource "{resource}" in API group ""'
                f"{where}",
                details={"name": request.match_info.get("name", ""), "kind": resource},
            )
        try:
            return await handler(request)
        except SelectorError as e:
            return status_response(400, "BadRequest", str(e))

    async def _version(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "platform": "linux/amd64"})

    @staticmethod
    def _resource(request: web.Request) -> str:
        return (request.match_info.route.name or "").split(":")[1]

    async def _create(self, request: web.Request) -> web.StreamResponse:
        resource, ns = self._resource(request), request.match_info["namespace"]
        try:
            body = await request.json()
        except ValueError as e:
            return status_response(400, "BadRequest", f"json: cannot unmarshal request body: {e}")
        if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
            return status_response(400, "BadRequest", "the object provided is unrecognized")
        meta = dict(body.get("metadata") or {})
        if meta.get("namespace", ns) != ns:
            return status_response(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5)
            )
        kind = _KINDS[resource]
        problems = validate_pod(body, name=meta.get("name")) if resource == PODS else validate_meta(meta)
        if not problems and self.schema_check:
            problems = schema_problems(body, kind=kind)
        if problems:
            return invalid_response(kind, str(meta.get("name", "")), problems)
        if (resource, ns, meta["name"]) in self._objects:
            return status_response(
                409,
                "AlreadyExists",
                f'{resource} "{meta["name"]}" already exists',
                details={"name": meta["name"], "kind": resource},
            )
        meta.update(namespace=ns, uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339())
        obj: Obj = {"kind": kind, "apiVersion": "v1", "metadata": meta, "spec": copy.deepcopy(body.get("spec") or {})}
        if resource == PODS:
            obj["spec"].setdefault("restartPolicy", "Always")
            obj["spec"].setdefault("terminationGracePeriodSeconds", 30)
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        else:
            obj["status"] = {
                "phase": "Bound",
                "accessModes": obj["spec"].get("accessModes") or [],
                "capacity": (obj["spec"].get("resources") or {}).get("requests") or {},
            }
            if self.kubelet is not None:
                self.kubelet.claim_dir(ns, meta["name"]).mkdir(parents=True, exist_ok=True)
        obj = self._put(resource, obj, "ADDED", old=None)
        response = web.json_response(obj, status=201)
        if resource == PODS:
            asyncio.get_running_loop().call_soon(self._schedule_if_present, ns, meta["name"])
        else:
            asyncio.get_running_loop().call_soon(self._schedule_pending, ns)
        return response

    def _schedule_if_present(self, namespace: str, name: str) -> None:
        pod = self._objects.get((PODS, namespace, name))
        if pod is not None and not pod["spec"].get("nodeName"):
            self._schedule(pod)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        resource, ns, name = self._resource(request), request.match_info["namespace"], request.match_info["name"]
        obj = self._objects.get((resource, ns, name))
        if obj is None:
            return not_found(resource, name)
        return web.json_response(obj)

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        resource, ns, name = self._resource(request), request.match_info["namespace"], request.match_info["name"]
        obj = self._objects.get((resource, ns, name))
        if obj is None:
            return not_found(resource, name)
        grace: float | None = None
        if "gracePeriodSeconds" in request.query:
            grace = float(request.query["gracePeriodSeconds"])
        if request.can_read_body:
            try:
                options = await request.json()
            except ValueError:
                options = {}
            if isinstance(options, dict) and options.get("gracePeriodSeconds") is not None:
                grace = float(options["gracePeriodSeconds"])
        if resource == PODS:
            return web.json_response(self._delete_pod(obj, grace))
        del self._objects[(resource, ns, name)]
        return web.json_response(self._record(resource, copy.deepcopy(obj), "DELETED", old=obj))

    async def _list(self, request: web.Request) -> web.StreamResponse:
        resource, q = self._resource(request), request.query
        ns = request.match_info.get("namespace")
        labels, fields = (
            LabelSelector.parse(q.get("labelSelector", "")),
            FieldSelector.parse(q.get("fieldSelector", "")),
        )
        if q.get("resourceVersion", "").strip("0123456789"):
            return status_response(400, "BadRequest", f"invalid resource version: {q['resourceVersion']!r}")
        if q.get("watch", "").lower() in ("true", "1"):
            return await self._watch(request, _Watcher(resource=resource, namespace=ns, labels=labels, fields=fields))
        rv = q.get("resourceVersion", "")
        exact = q.get("resourceVersionMatch") == "Exact" or (
            bool(q.get("limit")) and rv not in ("", "0") and not q.get("resourceVersionMatch")
        )
        if exact and rv.isdigit() and int(rv) < self._compacted:
            return status_response(410, "Expired", "The resourceVersion for the provided list is too old.")
        w = _Watcher(resource=resource, namespace=ns, labels=labels, fields=fields)
        items = [
            o
            for (r, n, _), o in sorted(self._objects.items())
            if r == resource and (ns is None or n == ns) and w.matches(o)
        ]
        items = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in items]
        return web.json_response(
            {
                "kind": _KINDS[resource] + "List",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self._rv)},
                "items": items,
            }
        )

    async def _watch(self, request: web.Request, w: _Watcher) -> web.StreamResponse:
        q = request.query
        rv = q.get("resourceVersion", "")
        backlog: list[tuple[str, Obj]] = []
        if rv.isdigit() and int(rv) < self._compacted:
            expired = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {rv} ({self._compacted + 1})",
                "reason": "Expired",
                "code": 410,
            }
            backlog.append(("ERROR", expired))
        elif rv in ("", "0"):
            backlog = [
                ("ADDED", o)
                for (r, n, _), o in sorted(self._objects.items())
                if r == w.resource and (w.namespace is None or n == w.namespace) and w.matches(o)
            ]
        else:
            backlog = [e for c in self._history if c.rv > int(rv) and (e := w.event(c)) is not None]
        self._watchers.add(w)  # no await since the backlog was taken: no change can fall in between
        try:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for kind, obj in backlog:
                await _send(response, kind, obj)
            if backlog and backlog[0][0] == "ERROR":
                return response
            loop = asyncio.get_running_loop()
            deadline = loop.time() + float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
            bookmarks = q.get("allowWatchBookmarks", "").lower() == "true"
            while True:
                wait = self.bookmark_seconds if bookmarks else None
                if deadline is not None:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    wait = left if wait is None else min(wait, left)
                try:
                    item = await asyncio.wait_for(w.queue.get(), wait)
                except TimeoutError:
                    if bookmarks:
                        await _send(
                            response,
                            "BOOKMARK",
                            {
                                "kind": _KINDS[w.resource],
                                "apiVersion": "v1",
                                "metadata": {"resourceVersion": str(self._rv)},
                            },
                        )
                    continue
                if item == _DROP:
                    if request.transport is not None:
                        request.transport.abort()
                    raise asyncio.CancelledError  # nothing more can be written; end the handler now
                assert isinstance(item, _Change)
                if (event := w.event(item)) is not None:
                    await _send(response, *event)
            await response.write_eof()
            return response
        finally:
            self._watchers.discard(w)

    async def _log(self, request: web.Request) -> web.StreamResponse:
        ns, name, q = request.match_info["namespace"], request.match_info["name"], request.query
        pod = self._objects.get((PODS, ns, name))
        if pod is None:
            return not_found(PODS, name)
        mains = [c.get("name") for c in pod["spec"].get("containers") or []]
        inits = [c.get("name") for c in pod["spec"].get("initContainers") or []]
        container = q.get("container") or (mains[0] if len(mains) == 1 else "")
        if not container:
            message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(mains)}]"
            if inits:
                message += f" or one of the init containers: [{' '.join(inits)}]"
            return status_response(400, "BadRequest", message)
        if container not in mains + inits:
            return status_response(400, "BadRequest", f"container {container} is not valid for pod {name}")
        status = pod.get("status") or {}
        states = {
            s["name"]: s.get("state") or {}
            for s in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
        }
        state = states.get(container, {"waiting": {"reason": "ContainerCreating"}})
        if "waiting" in state:
            reason = state["waiting"].get("reason", "ContainerCreating")
            return status_response(
                400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: {reason}'
            )
        found = self.kubelet.logs(ns, name, container) if self.kubelet is not None else None
        log = found[0] if found is not None else self._manual_logs.get((ns, name, container))
        if log is None:
            log = ContainerLog()
            log.close()
        return await self._stream_log(request, log)

    async def _stream_log(self, request: web.Request, log: ContainerLog) -> web.StreamResponse:
        q = request.query
        follow, stamps = q.get("follow", "").lower() == "true", q.get("timestamps", "").lower() == "true"
        start = 0
        if q.get("sinceSeconds"):
            since = datetime.now(UTC) - timedelta(seconds=int(q["sinceSeconds"]))
            start = next((i for i, (t, _) in enumerate(log.lines) if t >= since), len(log.lines))
        if q.get("tailLines"):
            start = max(start, len(log.lines) - int(q["tailLines"]))

        def render(lines: list[tuple[datetime, str]]) -> bytes:
            return "".join((_nano(t) + " " if stamps else "") + text + "\n" for t, text in lines).encode()

        if not follow:
            return web.Response(body=render(log.lines[start:]), content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        stopping = self._stopping
        try:
            while True:
                changed = log.changed()
                end = len(log.lines)
                if end > start:
                    await response.write(render(log.lines[start:end]))
                    start = end
                if log.closed:
                    break
                if stopping.is_set():  # a server going down cuts the stream
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                waiter = asyncio.ensure_future(changed.wait())
                stop = asyncio.ensure_future(stopping.wait())
                await asyncio.wait([waiter, stop], return_when=asyncio.FIRST_COMPLETED)
                for t in (waiter, stop):
                    t.cancel()
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away (or the server stopped) mid-stream
        return response


async def _send(response: web.StreamResponse, kind: str, obj: Obj) -> None:
    await response.write(json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n")


def _nano(t: datetime) -> str:
    """RFC3339Nano as the kubelet writes log timestamps (trailing zeros of the fraction trimmed)."""
    fraction = f"{t.microsecond:06d}000".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def status_response(code: int, reason: str, message: str, *, details: Mapping[str, Any] | None = None) -> web.Response:
    """An error answered as a Kubernetes ``Status`` object."""
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = dict(details)
    return web.json_response(body, status=code)


def not_found(resource: str, name: str) -> web.Response:
    return status_response(404, "NotFound", f'{resource} "{name}" not found', details={"name": name, "kind": resource})


def invalid_response(kind: str, name: str, problems: list[tuple[str, str, str]]) -> web.Response:
    """422 Invalid; ``problems`` are (cause reason, field, message) as apimachinery's field errors."""
    texts = [f"{f}: {m}" for _, f, m in problems]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return status_response(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: {joined}',
        details={
            "name": name,
            "kind": kind,
            "causes": [{"reason": r, "message": m, "field": f} for r, f, m in problems],
        },
    )


def validate_meta(meta: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Problems of an object's name (PersistentVolumeClaims have nothing else checked here)."""
    if not meta.get("name"):
        return [("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")]
    return []
