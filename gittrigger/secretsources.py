"""
Where Kubernetes secret references (``webhookSecret: {name, key}``, ``apiToken``, git credentials)
are read from: the files of a mounted Secret, or the Secret itself through the Kubernetes API.

:func:`open_secrets` is the one way the process gets its :class:`~gittrigger.repos.SecretResolver`;
:func:`gittrigger.assembly.assemble` opens it (``serve`` and ``run``) and ``serve --check`` opens
its own. ``sources.secrets_from`` chooses (:func:`secrets_source`): ``files`` reads
``<secrets_dir>/<name>/<key>`` (:class:`~gittrigger.repos.FileSecrets`); ``kubernetes`` reads the
``v1 Secret`` in the configured namespace (``kubernetes.namespace``, else this pod's own namespace,
else ``engine.namespace``) with the executor's client configuration
(:func:`workflows.executors.kubernetes.api_client`); ``auto`` picks kubernetes inside a cluster or
with ``executor.kind: kubernetes``, files otherwise. So the same manifests work in both places.

:class:`KubeSecrets` is synchronous to its callers, as the Protocol is, and they call it from worker
threads (the configuration build, the registry build, commit-status tokens, git credentials): a
call from a worker thread that finds nothing fresh in the cache runs the GET on the resolver's own
event loop thread (:func:`kube_secrets` says why) and waits for it. On a thread running an event
loop it never blocks: it answers from the cache (even stale), else raises Unavailable;
:meth:`KubeSecrets.get` is the awaitable form. Each Secret is cached for ``ttl_seconds`` (one GET serves
all its keys); :meth:`KubeSecrets.expire` (each reload) and :meth:`KubeSecrets.prefetch` read
again at once, so a rotated Secret is used from the next reload on. Values never appear in a
``repr``, an error or a log line.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeVar, runtime_checkable

import structlog

from gittrigger.settings import Settings
from workflows.errors import InvalidSpec, NotFound, Unavailable

if TYPE_CHECKING:  # gittrigger.repos imports pygit2: reload and the webhook edge import this module
    from gittrigger.repos import SecretResolver

log = structlog.get_logger("gittrigger.secretsources")

SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_TTL_SECONDS: Final = 10.0
WAIT_SECONDS: Final = 60.0  # a worker thread waits this long for the loop's GET (retries included)
_T = TypeVar("_T")


@runtime_checkable
class SecretSource(Protocol):
    """A :class:`~gittrigger.repos.SecretResolver` that knows namespaces and caches (``FileSecrets``
    and :class:`KubeSecrets`). Callers go through :func:`secrets_in` and :func:`expire_secrets`, so
    plain resolvers (test fakes) keep working."""

    def resolve(self, name: str, key: str) -> bytes: ...

    def in_namespace(self, namespace: str) -> SecretResolver:
        """The same secrets, read from ``namespace`` ("" = the configured one)."""
        ...

    def expire(self) -> None:
        """Forget what is cached: the next resolve reads the secret again (a reload)."""
        ...


def secrets_in(secrets: SecretResolver, namespace: str) -> SecretResolver:
    """``secrets`` reading from ``namespace`` (a manifest's ``metadata.namespace``; "" = configured),
    as Argo Events reads an EventSource's secrets from its own namespace."""
    return secrets.in_namespace(namespace) if namespace and isinstance(secrets, SecretSource) else secrets


def expire_secrets(secrets: SecretResolver) -> None:
    """Make ``secrets`` read every secret again (called before a reload builds its configuration)."""
    if isinstance(secrets, SecretSource):
        secrets.expire()


def check_secret_ref(name: str, key: str) -> None:
    """InvalidSpec unless ``name`` and ``key`` are plain names (no ``/``, no leading dot, not empty)."""
    for part, what in ((name, "name"), (key, "key")):
        if not part or "/" in part or part.startswith("."):
            raise InvalidSpec(f"secret.{what}", f"{part!r} is not a valid secret {what}")


class SecretReader(Protocol):
    """Reads one whole Secret (:class:`workflows.executors.kube.secrets.SecretsApi` structurally)."""

    def read(self, namespace: str, name: str) -> Awaitable[Mapping[str, bytes]]:
        """Every key of the Secret, decoded; NotFound when it does not exist."""
        ...

    def close(self) -> Awaitable[None]:
        """Release the client (called once, on the reads' loop)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class _Entry:
    """One Secret as last read (``data`` None: it did not exist); ``repr`` hides the values."""

    generation: int
    at: float
    data: Mapping[str, bytes] | None = field(repr=False)


def in_cluster(environ: Mapping[str, str] | None = None, *, account_dir: Path = SERVICE_ACCOUNT_DIR) -> bool:
    """Running in a pod: ``KUBERNETES_SERVICE_HOST`` is set and the service-account token is mounted."""
    env = os.environ if environ is None else environ
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and (account_dir / "token").is_file()


def secrets_source(settings: Settings, *, environ: Mapping[str, str] | None = None,
                   account_dir: Path = SERVICE_ACCOUNT_DIR) -> Literal["files", "kubernetes"]:
    """What ``sources.secrets_from`` means here: ``auto`` is kubernetes in a cluster or with the
    Kubernetes executor, files otherwise (a laptop)."""
    chosen = settings.sources.secrets_from
    if chosen == "files":
        return "files"
    if chosen == "kubernetes" or settings.executor.kind == "kubernetes":
        return "kubernetes"
    return "kubernetes" if in_cluster(environ, account_dir=account_dir) else "files"


def secrets_namespace(settings: Settings, *, account_dir: Path = SERVICE_ACCOUNT_DIR) -> str:
    """``kubernetes.namespace``, else the pod's own namespace (service-account file), else ``engine.namespace``."""
    if settings.kubernetes.namespace:
        return settings.kubernetes.namespace
    with contextlib.suppress(OSError):
        if own := (account_dir / "namespace").read_text().strip():
            return own
    return settings.engine.namespace


@contextlib.asynccontextmanager
async def open_secrets(settings: Settings, *, environ: Mapping[str, str] | None = None,
                       account_dir: Path = SERVICE_ACCOUNT_DIR) -> AsyncIterator[SecretResolver]:
    """The process's secret resolver (see the module docstring); its API client closes on exit.

    Raises InvalidSpec (``kubernetes.kubeconfig``) when kubernetes is chosen and no client
    configuration is usable.
    """
    if secrets_source(settings, environ=environ, account_dir=account_dir) == "files":
        from gittrigger.repos import FileSecrets

        yield FileSecrets(settings.sources.secrets_dir)
        return
    # Only a Kubernetes source needs the client: `gittrigger run`/`lint` on a laptop never import it.
    from workflows.executors.kube.secrets import SecretsApi
    from workflows.executors.kubernetes import api_client

    kube = settings.kubernetes

    async def connect() -> SecretsApi:
        return SecretsApi(await api_client(kubeconfig=kube.kubeconfig, context=kube.context), owns_client=True)

    namespace = secrets_namespace(settings, account_dir=account_dir)
    async with kube_secrets(connect, namespace=namespace) as secrets:
        log.info("secrets from kubernetes", namespace=namespace)
        yield secrets


@contextlib.asynccontextmanager
async def kube_secrets(connect: Callable[[], Awaitable[SecretReader]], *, namespace: str,
                       ttl_seconds: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic,
                       wait_seconds: float = WAIT_SECONDS) -> AsyncIterator[KubeSecrets]:
    """A :class:`KubeSecrets` whose reads run on its own event loop thread, with the reader
    ``connect`` returns (built, and closed at exit, on that loop).

    Why a loop of its own: a worker thread waiting for a read must not wait on the caller's loop,
    whose aiohttp requests need that loop's default executor (netrc and proxy lookups) — the very
    executor the waiting worker threads fill. Reads on their own loop use that loop's executor.
    """
    runner = asyncio.new_event_loop()
    thread = threading.Thread(target=runner.run_forever, name="kubernetes secrets", daemon=True)
    thread.start()
    try:
        reader: SecretReader = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_await(connect()), runner))
        try:
            yield KubeSecrets(reader, namespace=namespace, loop=runner, ttl_seconds=ttl_seconds, clock=clock,
                              wait_seconds=wait_seconds)
        finally:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_await(reader.close()), runner))
    finally:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(runner.shutdown_default_executor(), runner))
        runner.call_soon_threadsafe(runner.stop)
        await asyncio.to_thread(thread.join)
        runner.close()


class KubeSecrets:
    """Secret references read from ``v1 Secret`` objects, cached; see the module docstring.

    Built by :func:`kube_secrets`: every read runs on ``loop`` (its own thread), where ``reader``
    was built.
    """

    def __init__(self, reader: SecretReader, *, namespace: str, loop: asyncio.AbstractEventLoop,
                 ttl_seconds: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic,
                 wait_seconds: float = WAIT_SECONDS) -> None:
        self._reader = reader
        self._namespace = namespace
        self._ttl = ttl_seconds
        self._clock = clock
        self._wait = wait_seconds
        self._loop = loop
        self._cache: dict[tuple[str, str], _Entry] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}  # used on self._loop only
        self._generations = itertools.count(1)
        self._expired = 0  # entries of this generation or older are stale

    def __repr__(self) -> str:
        return f"KubeSecrets(namespace={self._namespace!r}, cached={len(self._cache)})"

    @property
    def namespace(self) -> str:
        return self._namespace

    # -- SecretSource --------------------------------------------------------------------------

    def resolve(self, name: str, key: str) -> bytes:
        """Key ``key`` of Secret ``name`` in the configured namespace (see :meth:`resolve_in`)."""
        return self.resolve_in(self._namespace, name, key)

    def in_namespace(self, namespace: str) -> SecretResolver:
        """A resolver of ``namespace``'s Secrets sharing this cache ("" = the configured namespace)."""
        return self if not namespace or namespace == self._namespace else _Scoped(self, namespace)

    def expire(self) -> None:
        """Everything cached is stale from now on: the next resolve of each Secret reads it again."""
        self._expired = next(self._generations)

    def resolve_in(self, namespace: str, name: str, key: str) -> bytes:
        """The value of ``key``; NotFound("secret", "name/key") when the Secret or the key is absent,
        SecretForbidden (RBAC) or Unavailable when the API refuses or cannot be reached."""
        check_secret_ref(name, key)
        entry = self._cache.get((namespace, name))
        if entry is None or not self._fresh(entry):
            if _on_a_loop():
                if entry is None:  # blocking here would stall every request the loop serves
                    raise Unavailable(f"secret {name}/{key}: not read from the Kubernetes API yet (resolve it "
                                      "from a worker thread, or prefetch it)")
            else:
                entry = self._wait_for(self._refresh(namespace, name, force=False))
        return _pick(entry, name, key)

    async def get(self, name: str, key: str, *, namespace: str = "") -> bytes:
        """:meth:`resolve_in` for callers on an event loop: reads the Secret first when not fresh."""
        check_secret_ref(name, key)
        entry = await self._on_runner(self._refresh(namespace or self._namespace, name, force=False))
        return _pick(entry, name, key)

    async def prefetch(self, refs: Iterable[tuple[str, str]]) -> None:
        """Read the Secrets named by ``(namespace, name)`` pairs now, concurrently ("" = configured),
        whatever the cache holds. A failure is left for :meth:`resolve`, which reports it with the
        reference that needed the Secret."""
        wanted = sorted({(ns or self._namespace, name) for ns, name in refs})

        async def read_all() -> None:
            await asyncio.gather(*(self._refresh(ns, name, force=True) for ns, name in wanted),
                                 return_exceptions=True)

        await self._on_runner(read_all())

    # -- internals -----------------------------------------------------------------------------

    def _fresh(self, entry: _Entry) -> bool:
        return entry.generation > self._expired and self._clock() - entry.at < self._ttl

    async def _on_runner(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def _wait_for(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the reads' loop and wait for it (threads without a running loop only)."""
        if self._loop.is_closed() or not self._loop.is_running():
            coro.close()
            raise Unavailable("secrets: the Kubernetes secret reader is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout=self._wait)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise Unavailable(f"kubernetes API: no answer within {self._wait:g}s reading a secret (transient)") \
                from None

    async def _refresh(self, namespace: str, name: str, *, force: bool) -> _Entry:
        """The cached entry when fresh (and not ``force``), else one GET (one at a time per Secret:
        concurrent askers share it)."""
        key = (namespace, name)
        asked = next(self._generations)
        async with self._locks.setdefault(key, asyncio.Lock()):
            entry = self._cache.get(key)
            if entry is not None and (entry.generation > asked if force else self._fresh(entry)):
                return entry
            try:
                data: Mapping[str, bytes] | None = await self._reader.read(namespace, name)
            except NotFound:
                data = None
            entry = _Entry(generation=next(self._generations), at=self._clock(), data=data)
            self._cache[key] = entry
            log.debug("secret read", namespace=namespace, secret=name, found=data is not None,
                      keys=len(data) if data is not None else 0)
            return entry


async def _await(awaitable: Awaitable[_T]) -> _T:
    return await awaitable


def _on_a_loop() -> bool:
    """True on a thread running an event loop: such a thread must never block."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Scoped:
    """:class:`KubeSecrets` bound to another namespace (an EventSource's own)."""

    def __init__(self, secrets: KubeSecrets, namespace: str) -> None:
        self._secrets = secrets
        self._namespace = namespace

    def __repr__(self) -> str:
        return f"KubeSecrets(namespace={self._namespace!r})"

    def resolve(self, name: str, key: str) -> bytes:
        return self._secrets.resolve_in(self._namespace, name, key)


def _pick(entry: _Entry, name: str, key: str) -> bytes:
    if entry.data is None or key not in entry.data:
        raise NotFound("secret", f"{name}/{key}")
    return entry.data[key]


__all__ = ["KubeSecrets", "SecretReader", "SecretSource", "check_secret_ref", "expire_secrets", "in_cluster",
           "kube_secrets", "open_secrets", "secrets_in", "secrets_namespace", "secrets_source"]
