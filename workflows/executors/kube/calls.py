"""
Every Kubernetes API request the executor makes: rate limited, retried when transient, mapped
to :mod:`workflows.errors`, answered as wire JSON.

Used by :mod:`workflows.executors.kubernetes` and :mod:`.watch` (through :class:`PodsApi`) and by
:mod:`.secrets`: all of them send through :class:`Requests`. Each executor request first takes a
token from one :class:`TokenBucket` per executor (client-go's ``qps``/``burst``), so a 1,000-pod
fan-out cannot flood the API server. Requests go out with ``_preload_content=False`` and the
bodies are parsed here as plain JSON: deserializing every Pod into ``V1Pod`` models would cost
more than the rest of the executor. ``ApiException`` never leaves this module: 5xx, 429 and
transport failures become :class:`~workflows.errors.Unavailable` (retried with backoff first
when ``retry`` is on; its message says "transient", so a node that ends with it is retried by
``retryPolicy: OnTransientError`` as Argo's IsTransientErr would), the others their domain
error, always with the Status's one-line message; a caller may name its own 403 error (the
permission RBAC must grant), as reading a Secret does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, Final, cast

import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from workflows.errors import AlreadyExists, Conflict, InvalidSpec, NotFound, TooLarge, Unavailable, WorkflowError

Raw = dict[str, Any]
REQUEST_TIMEOUT: Final = (10.0, 60.0)  # connect, then the longest silence of a plain request
# A log stream silent this long is re-opened (from where it was): containers may be quiet for long.
STREAM_TIMEOUT: Final = (10.0, 3600.0)
_RETRIES: Final = 5

logger = structlog.get_logger(__name__)


class TokenBucket:
    """``qps`` requests per second on average, bursts of up to ``burst``; callers wait their turn.

    A caller reserves a token at once (the balance may go negative) and sleeps until that
    token would have been earned, so waiters are served in arrival order without a lock.
    """

    def __init__(self, *, qps: float, burst: int, clock: Callable[[], float] | None = None) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be positive and burst at least 1")
        self._qps = qps
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._last: float | None = None

    def reserve(self) -> float:
        """Take a token; returns how long to wait before using it (0 when one was available)."""
        now = self._clock() if self._clock is not None else asyncio.get_running_loop().time()
        if self._last is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
        self._last = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self._qps

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


class Backoff:
    """Exponential delays for retries: ``first``, doubling, capped at ``cap``."""

    def __init__(self, *, first: float = 0.1, cap: float = 5.0) -> None:
        self._first, self._cap, self._next = first, cap, first

    def next(self) -> float:
        delay, self._next = self._next, min(self._cap, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self._first


def is_transport_error(e: BaseException) -> bool:
    """A connection-level failure (refused, reset, cut mid-body, timed out): worth retrying.

    aiohttp's errors are recognised by their module, since only the HTTP edge may import aiohttp.
    """
    return isinstance(e, OSError | TimeoutError) or any(c.__module__.startswith("aiohttp.") for c in type(e).__mro__)


def _status(e: ApiException) -> dict[str, Any]:
    body: Any = e.body
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if isinstance(text, str) and text:
        try:
            status = json.loads(text)
        except ValueError:
            return {}
        return status if isinstance(status, dict) else {}
    return {}


def status_message(e: ApiException) -> str:
    """The API server's one-line message (the Status body's ``message``), else the HTTP reason."""
    return str(_status(e).get("message") or e.reason or f"HTTP {e.status}")


Forbidden = Callable[[str], WorkflowError]  # the server's one-line message -> the error of a 403


def to_error(e: ApiException, *, kind: str, name: str, forbidden: Forbidden | None = None) -> WorkflowError:
    """The domain error for an API error about object ``name`` of ``kind``; ``forbidden`` makes a 403's."""
    code, message = int(e.status or 0), status_message(e)
    if code == 403 and forbidden is not None:
        return forbidden(message)
    if code == 404:
        return NotFound(kind, name)
    if code == 409:
        return Conflict(message) if _status(e).get("reason") == "Conflict" else AlreadyExists(kind, name)
    if code in (400, 422):
        return InvalidSpec(kind, message)
    if code == 413:
        return TooLarge(message)
    if code == 0 or code == 429 or code >= 500:
        return Unavailable(f"kubernetes API: {message} (transient)")
    return WorkflowError(f"kubernetes API: {message} (HTTP {code})")  # 401/403: the server's setup


def transient(e: WorkflowError) -> bool:
    return isinstance(e, Unavailable)


class Requests:
    """Sends raw requests: a token from the bucket (when there is one) before each, transient
    failures retried with backoff, ``ApiException`` turned into our errors by :func:`to_error`."""

    def __init__(self, *, bucket: TokenBucket | None = None, retries: int = _RETRIES) -> None:
        self._bucket = bucket
        self._retries = retries

    async def send(self, call: Callable[[], Awaitable[Any]], *, kind: str, name: str, retry: bool = True,
                   forbidden: Forbidden | None = None) -> Any:
        """Run ``call`` (a raw ``_preload_content=False`` request) and return its checked response."""
        backoff = Backoff()
        for attempt in range(self._retries + 1):
            if self._bucket is not None:
                await self._bucket.acquire()
            try:
                response = await call()
                if not 200 <= response.status <= 299:
                    body = await response.read()
                    response.release()
                    failure = ApiException(status=response.status, reason=response.reason)
                    failure.body = body
                    raise failure
                return response
            except ApiException as e:
                error = to_error(e, kind=kind, name=name, forbidden=forbidden)
            except Exception as e:
                if not is_transport_error(e):
                    raise
                error = Unavailable(f"kubernetes API: {type(e).__name__}: {e}".rstrip(": ") + " (transient)")
            if not (retry and transient(error)) or attempt == self._retries:
                raise error
            delay = backoff.next()
            logger.info("kubernetes request retried", kind=kind, name=name, error=str(error), delay_s=delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def json(self, call: Callable[[], Awaitable[Any]], *, kind: str, name: str, retry: bool = True,
                   forbidden: Forbidden | None = None) -> Raw:
        """:meth:`send`, then the body as a JSON object (a body cut mid-way is Unavailable, not retried)."""
        response = await self.send(call, kind=kind, name=name, retry=retry, forbidden=forbidden)
        try:
            body = await response.read()
        except Exception as e:
            if is_transport_error(e):
                raise Unavailable(f"kubernetes API: {type(e).__name__} (transient)") from None
            raise
        finally:
            response.release()
        value = json.loads(body) if body else {}
        return value if isinstance(value, dict) else {}


class PodsApi:
    """The few CoreV1 calls the executor needs, as wire JSON, behind the bucket and retries."""

    def __init__(self, api: client.ApiClient, *, bucket: TokenBucket, retries: int = _RETRIES) -> None:
        self._core = client.CoreV1Api(api)
        self._requests = Requests(bucket=bucket, retries=retries)

    async def create_pod(self, namespace: str, manifest: Raw) -> Raw:
        """POST the Pod; AlreadyExists when its name is taken (a retried create included)."""
        name = str(manifest["metadata"]["name"])
        return await self._requests.json(lambda: self._core.create_namespaced_pod(
            namespace, cast(Any, manifest), _preload_content=False, _request_timeout=REQUEST_TIMEOUT),
            kind="pod", name=name)

    async def delete_pod(self, namespace: str, name: str, *, grace_seconds: float | None = None) -> None:
        """DELETE the Pod (with a grace period when given); a Pod already gone is not an error."""
        kwargs: dict[str, Any] = {}
        if grace_seconds is not None:
            kwargs["grace_period_seconds"] = max(0, int(grace_seconds))
        with contextlib.suppress(NotFound):
            await self._requests.json(lambda: self._core.delete_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs),
                kind="pod", name=name)

    async def create_claim(self, namespace: str, manifest: Raw) -> Raw:
        """POST a PersistentVolumeClaim (a run's ``volumeClaimTemplates``); AlreadyExists when taken."""
        name = str(manifest["metadata"]["name"])
        return await self._requests.json(lambda: self._core.create_namespaced_persistent_volume_claim(
            namespace, cast(Any, manifest), _preload_content=False, _request_timeout=REQUEST_TIMEOUT),
            kind="persistentvolumeclaim", name=name)

    async def delete_claims(self, namespace: str, *, selector: str) -> int:
        """Delete the PersistentVolumeClaims matching ``selector``; returns how many there were."""
        listing = await self._requests.json(lambda: self._core.list_namespaced_persistent_volume_claim(
            namespace, label_selector=selector, _preload_content=False, _request_timeout=REQUEST_TIMEOUT),
            kind="persistentvolumeclaims", name=namespace)
        names = [str(c["metadata"]["name"]) for c in listing.get("items") or ()
                 if (c.get("metadata") or {}).get("name")]
        for name in names:
            with contextlib.suppress(NotFound):
                await self._requests.json(
                    partial(self._core.delete_namespaced_persistent_volume_claim, name, namespace,
                            _preload_content=False, _request_timeout=REQUEST_TIMEOUT),
                    kind="persistentvolumeclaim", name=name)
        return len(names)

    async def list_pods(self, namespace: str, *, selector: str) -> Raw:
        """A PodList of ``namespace`` matching ``selector`` (its ``metadata.resourceVersion`` included)."""
        return await self._requests.json(lambda: self._core.list_namespaced_pod(
            namespace, label_selector=selector, _preload_content=False, _request_timeout=REQUEST_TIMEOUT),
            kind="pods", name=namespace)

    async def read_log(self, namespace: str, name: str, *, container: str) -> str:
        """The whole log of one container, as text."""
        response = await self._requests.send(lambda: self._core.read_namespaced_pod_log(
            name, namespace, container=container, _preload_content=False, _request_timeout=REQUEST_TIMEOUT),
            kind="pod", name=name)
        try:
            data: bytes = await response.read()
            return data.decode("utf-8", "replace")
        except Exception as e:
            if is_transport_error(e):
                raise Unavailable(f"kubernetes API: {type(e).__name__} (transient)") from None
            raise
        finally:
            response.release()

    async def watch_pods(self, namespace: str, *, selector: str, resource_version: str,
                         timeout_seconds: int) -> AsyncIterator[tuple[str, Raw]]:
        """Watch events ``(type, object)`` from ``resource_version`` until the server ends the stream.

        An ``ERROR`` event (410 Expired after compaction) is yielded like any other; a stream
        cut mid-way raises Unavailable.
        """
        response = await self._requests.send(lambda: self._core.list_namespaced_pod(
            namespace, label_selector=selector, watch=True, resource_version=resource_version,
            allow_watch_bookmarks=True, timeout_seconds=timeout_seconds, _preload_content=False,
            _request_timeout=(REQUEST_TIMEOUT[0], timeout_seconds + 30.0)), kind="pods", name=namespace, retry=False)
        try:
            async for kind, obj in _events(response):
                yield kind, obj
        finally:
            response.release()

    async def follow_log(self, namespace: str, name: str, *, container: str,
                         since_seconds: int | None = None) -> AsyncIterator[str]:
        """Lines (``timestamps=true``: each starts with its RFC 3339 time) as the container writes them;
        ends when the container has ended. A stream cut mid-way raises Unavailable."""
        kwargs: dict[str, Any] = {"since_seconds": since_seconds} if since_seconds else {}
        response = await self._requests.send(lambda: self._core.read_namespaced_pod_log(
            name, namespace, container=container, follow=True, timestamps=True, _preload_content=False,
            _request_timeout=STREAM_TIMEOUT, **kwargs), kind="pod", name=name, retry=False)
        try:
            while True:
                try:
                    line = await response.content.readline()
                except Exception as e:
                    if is_transport_error(e):
                        raise Unavailable(f"log stream of {name}/{container} broken") from None
                    raise
                if not line:
                    return
                yield line.decode("utf-8", "replace").rstrip("\n")
        finally:
            response.release()


async def _events(response: Any) -> AsyncIterator[tuple[str, Raw]]:
    while True:
        try:
            line = await response.content.readline()
        except Exception as e:
            if is_transport_error(e):
                raise Unavailable("pod watch broken") from None
            raise
        if not line:
            return
        try:
            event = json.loads(line)
        except ValueError:
            raise Unavailable("pod watch: malformed event") from None
        if isinstance(event, dict) and isinstance(event.get("object"), dict):
            yield str(event.get("type", "")), event["object"]
