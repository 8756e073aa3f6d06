"""
The streaming endpoints of Argo Server's ``WorkflowService``: workflow logs (``WorkflowLogs`` and
the older ``PodLogs`` route), the workflow watch (``WatchWorkflows``) and an idle Kubernetes-events
stream (``WatchEvents``).

Routes are added by :func:`gittrigger.http.app.make_app`. Framing is grpc-gateway's server
streaming: one JSON object per line, ``{"result": ...}`` (``{"error": {"code", "message"}}`` for a
failure after the stream began), or with ``Accept: text/event-stream`` server-sent events
``data: {...}\\n\\n``. Failures before the first byte are raised as :mod:`workflows.errors` and
mapped by :mod:`gittrigger.http.middlewares`.

Logs come from the store's LogStore (lines outlive pods); following polls it until the run is
finished and flushed. The watch reads the store's change feed (:mod:`workflows.store.watching`).
A client that goes away ends its stream quietly: writes that fail, or a transport found closed
while waiting, end the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiohttp import web

from gittrigger.http import keys
from gittrigger.http.argo import clean_fields
from gittrigger.http.middlewares import INTERNAL, STATUS, error_body
from workflows.errors import InvalidSpec, NotFound, Unavailable, WorkflowError
from workflows.executors.base import LogLine
from workflows.model.ids import pod_name as derive_pod_name
from workflows.store import objects
from workflows.store.base import ListOptions, RawObject
from workflows.store.watching import Subscription, WatchEvent, WatchingStore

routes = web.RouteTableDef()

FOLLOW_POLL_SECONDS: Final = 0.2  # how often a follow reads new lines (the SQLite flusher writes every 0.2 s)
IDLE_CHECK_SECONDS: Final = 0.5  # how often an idle stream looks whether its client is still there
FINISHED: Final = frozenset({"Succeeded", "Failed", "Error"})
WORKFLOW_LABEL: Final = "workflows.argoproj.io/workflow"
SSE: Final = "text/event-stream"


class _Gone(Exception):
    """The client went away: end the stream without an error."""


# -- query parsing (pure) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LogQuery:
    """A parsed ``WorkflowLogRequest``."""

    pod_name: str | None
    container: str
    follow: bool
    tail: int | None
    since: datetime | None
    timestamps: bool
    grep: re.Pattern[str] | None
    selector: ListOptions | None


def _flag(query: Mapping[str, str], key: str) -> bool:
    value = query.get(key, "").lower()
    if value not in ("", "true", "false", "1", "0"):
        raise InvalidSpec(key, f"must be true or false, got {value!r}")
    return value in ("true", "1")


def _count(query: Mapping[str, str], key: str) -> int | None:
    value = query.get(key, "")
    if not value:
        return None
    if not value.lstrip("-").isdigit():
        raise InvalidSpec(key, f"must be an integer, got {value!r}")
    return int(value)


_REQUIREMENT: Final = re.compile(r"([^\s=!(),]+)\s*(?:(!=|==|=)\s*([^\s=!(),]*))?")


def parse_selector(text: str, *, path: str) -> ListOptions | None:
    """A Kubernetes label selector of ``k=v``, ``k==v``, ``k!=v``, ``k`` requirements (comma = and)."""
    labels: dict[str, str] = {}
    unwanted: dict[str, str] = {}
    exists: list[str] = []
    for requirement in filter(None, (r.strip() for r in text.split(","))):
        match = _REQUIREMENT.fullmatch(requirement)
        if match is None:
            raise InvalidSpec(path, f"unsupported requirement {requirement!r}: use key=value, key!=value or key")
        key, op, value = match.group(1), match.group(2), match.group(3) or ""
        if op == "!=":
            unwanted[key] = value
        elif op:
            labels[key] = value
        else:
            exists.append(key)
    if not (labels or unwanted or exists):
        return None
    return ListOptions(labels=labels or None, label_not_equal=unwanted or None, label_exists=tuple(exists))


def parse_log_query(query: Mapping[str, str], *, pod_name: str | None, now: datetime) -> LogQuery:
    """Argo's ``WorkflowLogRequest`` query (``logOptions.*``, ``grep``, ``selector``); InvalidSpec names the key."""
    since: datetime | None = None
    if (seconds := _count(query, "logOptions.sinceSeconds")) is not None:
        try:
            since = now - timedelta(seconds=seconds)
        except OverflowError:  # further back than datetime.min: every line is newer
            since = datetime.min.replace(tzinfo=UTC)
    if raw_time := query.get("logOptions.sinceTime"):
        try:
            since = objects.parse_rfc3339(raw_time)
        except ValueError:
            raise InvalidSpec("logOptions.sinceTime", f"must be an RFC 3339 timestamp, got {raw_time!r}") from None
    elif (epoch := _count(query, "logOptions.sinceTime.seconds")) is not None:  # grpc-gateway's Time message
        try:
            since = datetime.fromtimestamp(epoch, UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidSpec("logOptions.sinceTime.seconds", f"out of range: {epoch}") from None
    tail = _count(query, "logOptions.tailLines")
    if tail is not None and tail < 0:
        raise InvalidSpec("logOptions.tailLines", f"must not be negative, got {tail}")
    grep: re.Pattern[str] | None = None
    if pattern := query.get("grep"):
        try:
            grep = re.compile(pattern)
        except re.error as e:
            raise InvalidSpec("grep", f"invalid regular expression {pattern!r}: {e}") from None
    return LogQuery(
        pod_name=pod_name or query.get("podName") or None,
        container=query.get("logOptions.container") or "main",
        follow=_flag(query, "logOptions.follow"),
        tail=tail,
        since=since,
        timestamps=_flag(query, "logOptions.timestamps"),
        grep=grep,
        selector=parse_selector(query.get("selector", ""), path="selector"),
    )


def rfc3339_nano(t: datetime) -> str:
    """Go's RFC3339Nano in UTC (trailing zeros of the fraction dropped), as kubelet timestamps lines."""
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    fraction = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


@dataclass(frozen=True, slots=True, kw_only=True)
class Pods:
    """The pods of a run as its status knows them: all pod names, and those a selector admits."""

    known: frozenset[str]
    admitted: frozenset[str]
    by_node_id: Mapping[str, str]


def pods_of(workflow: Mapping[str, Any], selector: ListOptions | None) -> Pods:
    """Pod names (Argo v2 naming) and labels of every Pod node: workflow label, podMetadata and template labels."""
    meta, spec = workflow.get("metadata") or {}, workflow.get("spec") or {}
    status = workflow.get("status") or {}
    name = str(meta.get("name") or "")
    stored = status.get("storedWorkflowTemplateSpec") or {}
    templates = {t.get("name"): t for t in [*(stored.get("templates") or ()), *(spec.get("templates") or ())]
                 if isinstance(t, Mapping)}
    base = {WORKFLOW_LABEL: name, **((spec.get("podMetadata") or {}).get("labels") or {})}
    known: set[str] = set()
    admitted: set[str] = set()
    by_node_id: dict[str, str] = {}
    for node_id, node in (status.get("nodes") or {}).items():
        if not isinstance(node, Mapping) or node.get("type") != "Pod":
            continue
        template = str(node.get("templateName") or (node.get("templateRef") or {}).get("template") or "")
        pod = derive_pod_name(name, str(node.get("name") or ""), template)
        known.add(pod)
        by_node_id[str(node_id)] = pod
        template_labels = ((templates.get(template) or {}).get("metadata") or {}).get("labels") or {}
        labels = {str(k): str(v) for k, v in {**base, **template_labels}.items()}
        if selector is None or objects.matches(name=pod, labels=labels, phase="", options=selector):
            admitted.add(pod)
    return Pods(known=frozenset(known), admitted=frozenset(admitted), by_node_id=by_node_id)


def tail_per_pod(lines: Sequence[tuple[int, LogLine]], tail: int) -> list[tuple[int, LogLine]]:
    """The last ``tail`` lines of each pod (kubelet tails each pod's stream), still in write order."""
    seen: dict[str, int] = {}
    kept: list[tuple[int, LogLine]] = []
    for item in reversed(lines):
        count = seen.get(item[1].pod_name, 0)
        if count < tail:
            seen[item[1].pod_name] = count + 1
            kept.append(item)
    kept.reverse()
    return kept


async def on_shutdown(app: web.Application) -> None:
    """End every open stream so a graceful stop does not wait for them (an ``on_shutdown`` hook).

    Watches end when the change feed closes; follows and idle streams notice it within
    IDLE_CHECK_SECONDS. aiohttp runs this hook before it waits for handlers in flight.
    """
    store = app[keys.STORE]
    if isinstance(store, WatchingStore):
        store.close_feed()


# -- framing -----------------------------------------------------------------------------------


class _Stream:
    """One streamed response: ndjson, or SSE when the client asks for it."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self.started = False
        self.sse = SSE in request.headers.get("Accept", "")
        self._response = web.StreamResponse(headers={
            "Content-Type": SSE if self.sse else "application/json",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # proxies must not hold the stream back
        })

    @property
    def gone(self) -> bool:
        """The client left, or the server is shutting down (see :func:`on_shutdown`)."""
        transport = self._request.transport
        store = self._request.app[keys.STORE]
        return (transport is None or transport.is_closing()
                or (isinstance(store, WatchingStore) and store.feed_closed))

    async def start(self) -> None:
        self.started = True
        await self._guard(self._response.prepare(self._request))

    async def send(self, payload: str) -> None:
        frame = f"data: {payload}\n\n" if self.sse else payload + "\n"
        await self._guard(self._response.write(frame.encode()))

    async def fail(self, error: WorkflowError) -> None:
        """The last frame of a stream that failed after it began (the status line is long sent)."""
        _, grpc_code = STATUS.get(error.code, INTERNAL)
        with contextlib.suppress(_Gone):
            await self.send(json.dumps({"error": error_body(grpc_code=grpc_code, message=str(error))}))

    async def finish(self) -> web.StreamResponse:
        with contextlib.suppress(_Gone):
            await self._guard(self._response.write_eof())
        return self._response

    async def _guard(self, write: Any) -> None:
        transport = self._request.transport
        if transport is None or transport.is_closing():
            write.close()
            raise _Gone
        try:
            await write
        except ConnectionResetError:
            raise _Gone from None

    async def idle(self, seconds: float) -> None:
        """Sleep; raise _Gone as soon as a check finds the client went away."""
        end = asyncio.get_running_loop().time() + seconds
        while (left := end - asyncio.get_running_loop().time()) > 0:
            await asyncio.sleep(min(left, IDLE_CHECK_SECONDS))
            if self.gone:
                raise _Gone


# -- logs --------------------------------------------------------------------------------------


def _log_frame(line: LogLine, query: LogQuery) -> str | None:
    content = f"{rfc3339_nano(line.time)} {line.content}" if query.timestamps else line.content
    if query.grep is not None and not query.grep.search(content):
        return None
    return json.dumps({"result": {"content": content, "podName": line.pod_name}}, ensure_ascii=False)


def _done(workflow: RawObject, running: Sequence[tuple[str, str]]) -> bool:
    """Finished and its worker gone (daemons and sidecars stopped): no line can follow."""
    meta = workflow.get("metadata") or {}
    return objects.phase_of(workflow) in FINISHED and (meta.get("namespace"), meta.get("name")) not in running


async def _logs(request: web.Request, *, pod_name: str | None) -> web.StreamResponse:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    query = parse_log_query(request.query, pod_name=pod_name, now=datetime.now(UTC))
    store, engine = request.app[keys.STORE], request.app[keys.ENGINE]
    workflow = await store.get(namespace, name)  # NotFound -> 404 before streaming
    pods = pods_of(workflow, query.selector)
    wanted_pod = pods.by_node_id.get(query.pod_name, query.pod_name) if query.pod_name else None
    # Finished before the flush below: every line is then stored and no follow is needed.
    final = not query.follow or _done(workflow, engine.running())
    stream = _Stream(request)
    try:
        await stream.start()
        await store.flush()  # lines of a just-finished pod may still be buffered
        lines = await store.read(namespace=namespace, workflow=name, pod_name=wanted_pod, container=query.container,
                                 since=query.since, tail=query.tail if wanted_pod else None)
        if query.tail is not None and not wanted_pod:
            lines = tail_per_pod(lines, query.tail)
        last_id = lines[-1][0] if lines else 0
        while True:
            for line_id, line in lines:
                if query.selector is not None and line.pod_name not in pods.admitted:
                    if line.pod_name not in pods.known and not final:
                        break  # a pod the stored status does not show yet: decide on the next round
                    last_id = line_id
                    continue
                last_id = line_id
                if (frame := _log_frame(line, query)) is not None:
                    await stream.send(frame)
            if final:
                break
            await stream.idle(FOLLOW_POLL_SECONDS)
            try:
                workflow = await store.get(namespace, name)
            except NotFound:
                break  # deleted while followed: Argo's follow ends on DELETED too
            pods = pods_of(workflow, query.selector)
            if _done(workflow, engine.running()):
                await store.flush()
                final = True
            lines = await store.read(namespace=namespace, workflow=name, pod_name=wanted_pod,
                                     container=query.container, since=query.since, after_id=last_id)
    except _Gone:
        pass
    except WorkflowError as e:
        await stream.fail(e)
    return await stream.finish()


@routes.get("/api/v1/workflows/{namespace}/{name}/log")
async def workflow_logs(request: web.Request) -> web.StreamResponse:
    """Argo's ``WorkflowLogs``: lines of every pod of the run (or ``podName``'s) as LogEntry results."""
    return await _logs(request, pod_name=None)


@routes.get("/api/v1/workflows/{namespace}/{name}/{podName}/log")
async def pod_logs(request: web.Request) -> web.StreamResponse:
    """Argo's older ``PodLogs`` route: the pod name in the path, otherwise as :func:`workflow_logs`."""
    return await _logs(request, pod_name=request.match_info["podName"])


# -- watch -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchQuery:
    """A parsed ``WatchWorkflowsRequest``: field/label selectors, start version and ``fields``."""

    names: frozenset[str] | None  # metadata.name=... (None: any)
    not_names: frozenset[str]
    namespace: str | None  # metadata.namespace=... on an all-namespaces watch
    labels: ListOptions
    resource_version: int | None
    fields: str


def parse_watch_query(query: Mapping[str, str]) -> WatchQuery:
    """``listOptions.fieldSelector`` (metadata.name / metadata.namespace), ``labelSelector``,
    ``resourceVersion`` ("" or "0": start with the current state) and ``fields``."""
    names: set[str] | None = None
    not_names: set[str] = set()
    namespace: str | None = None
    for requirement in filter(None, (r.strip() for r in query.get("listOptions.fieldSelector", "").split(","))):
        match = re.fullmatch(r"(metadata\.name|metadata\.namespace)\s*(!=|==|=)\s*(\S*)", requirement)
        if match is None:
            raise InvalidSpec("listOptions.fieldSelector", f"unsupported requirement {requirement!r}: "
                                                           "use metadata.name or metadata.namespace with = or !=")
        field, op, value = match.groups()
        if field == "metadata.namespace" and op != "!=":
            namespace = value
        elif field == "metadata.namespace":
            raise InvalidSpec("listOptions.fieldSelector", "metadata.namespace!= is not supported")
        elif op == "!=":
            not_names.add(value)
        else:
            names = {value} if names is None else names & {value}
    version = query.get("listOptions.resourceVersion", "")
    if version and not version.isdigit():
        raise InvalidSpec("listOptions.resourceVersion", f"must be a number, got {version!r}")
    return WatchQuery(
        names=frozenset(names) if names is not None else None,
        not_names=frozenset(not_names),
        namespace=namespace,
        labels=parse_selector(query.get("listOptions.labelSelector", ""), path="listOptions.labelSelector")
        or ListOptions(),
        resource_version=int(version) if version and version != "0" else None,
        fields=query.get("fields", ""),
    )


def _admits(query: WatchQuery, *, namespace: str, name: str, labels: Mapping[str, str]) -> bool:
    if query.names is not None and name not in query.names:
        return False
    if name in query.not_names or (query.namespace is not None and namespace != query.namespace):
        return False
    return objects.matches(name=name, labels=labels, phase="", options=query.labels)


def _version(obj: Mapping[str, Any]) -> int:
    text = str((obj.get("metadata") or {}).get("resourceVersion") or "0")
    return int(text) if text.isdigit() else 0


async def _current(store: WatchingStore, namespace: str | None, query: WatchQuery) -> list[RawObject]:
    """The runs a fresh watch starts with (oldest first, as a list-then-watch client would apply them)."""
    if query.names is not None and namespace is not None:
        found = []
        for name in sorted(query.names):
            with contextlib.suppress(NotFound):
                found.append(await store.get(namespace, name))
        return found
    items: list[RawObject] = []
    token: str | None = None
    while True:
        page = await store.list(namespace, ListOptions(labels=query.labels.labels, continue_token=token, limit=500))
        items.extend(page.items)
        if not (token := page.continue_token):
            break
    items.reverse()
    return items


def _watch_frame(type_: str, body: str, fields: str) -> str:
    if fields:
        body = json.dumps(clean_fields(json.loads(body), fields, prefix="result.object."), ensure_ascii=False)
    return f'{{"result":{{"type":"{type_}","object":{body}}}}}'


async def _watch(request: web.Request, namespace: str | None) -> web.StreamResponse:
    query = parse_watch_query(request.query)
    store = request.app[keys.STORE]
    if not isinstance(store, WatchingStore):
        raise Unavailable("the workflow watch needs the store's change feed (workflows.store.watching)")
    stream = _Stream(request)
    with store.subscribe(namespace) as events:  # before reading the current state: nothing falls between
        sent: dict[tuple[str, str], int] = {}
        try:
            current = await _current(store, namespace, query)
            await stream.start()
            for obj in current:
                meta = obj["metadata"]
                key, version = (meta["namespace"], meta["name"]), _version(obj)
                if not _admits(query, namespace=key[0], name=key[1], labels=objects.labels_of(obj)):
                    continue
                sent[key] = version
                if query.resource_version is None:
                    await stream.send(_watch_frame("ADDED", objects.dumps(obj), query.fields))
                elif version > query.resource_version:  # changed since the client's version (no history kept)
                    await stream.send(_watch_frame("MODIFIED", objects.dumps(obj), query.fields))
            while True:
                event = await _next_event(events, stream)
                if event is None:
                    break
                if event.type == "ERROR":
                    await stream.fail(Unavailable(f"watch ended: {event.object.get('message')}"))
                    break
                key = (event.namespace, event.name)
                if not _admits(query, namespace=key[0], name=key[1], labels=event.labels):
                    continue
                if event.type != "DELETED" and int(event.resource_version or 0) <= sent.get(key, -1):
                    continue  # already part of the state the watch started with
                sent.pop(key, None)
                await stream.send(_watch_frame(event.type, event.body, query.fields))
        except _Gone:
            pass
        except WorkflowError as e:
            if not stream.started:
                raise
            await stream.fail(e)
    return await stream.finish()


async def _next_event(events: Subscription, stream: _Stream) -> WatchEvent | None:
    """The next event, checking the client every IDLE_CHECK_SECONDS; None when the feed ended."""
    while True:
        try:
            async with asyncio.timeout(IDLE_CHECK_SECONDS):
                event: WatchEvent = await events.__anext__()
                return event
        except StopAsyncIteration:
            return None
        except TimeoutError:
            if stream.gone:
                raise _Gone from None


@routes.get("/api/v1/workflow-events/{namespace}")
async def watch_workflows(request: web.Request) -> web.StreamResponse:
    """Argo's ``WatchWorkflows``: ADDED for the current runs, then their live changes."""
    return await _watch(request, request.match_info["namespace"] or None)


@routes.get("/api/v1/workflow-events/")
async def watch_all_workflows(request: web.Request) -> web.StreamResponse:
    """The watch across namespaces (Argo's UI asks this way when no namespace is chosen)."""
    return await _watch(request, None)


@routes.get("/api/v1/stream/events/{namespace}")
async def watch_events(request: web.Request) -> web.StreamResponse:
    """Argo's ``WatchEvents`` (Kubernetes Events): there are none here, so an open, empty stream."""
    stream = _Stream(request)
    try:
        await stream.start()
        while True:
            await stream.idle(IDLE_CHECK_SECONDS)
    except _Gone:
        pass
    return await stream.finish()
