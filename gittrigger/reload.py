"""
Atomic manifest reload for ``serve``: on SIGHUP, and with ``--watch-config`` when a file changes.

Owned by :func:`gittrigger.runtime.serve`, which builds one :class:`Reloader` over the running
parts (store, template getter, webhook registry, dispatcher, calendar/git source loops). A
reload reads every manifest path again and validates ALL of it before touching anything:
(Cluster)WorkflowTemplates and CronWorkflows parse and validate clean (references may name the
new templates or those already known), WorkflowEventBindings and ConfigMaps (semaphore sizes)
parse, Sensors parse, and the EventSource registry builds with its secrets. Only then is it
swapped in: templates and bindings into the store, templates into the template getter, the
ConfigMaps into the engine's registry,
``registry.replace``, ``dispatcher.replace_sensors``, and the source loops restarted for the
EventSources whose calendar/git events changed. On any error the running configuration stays
and one ``reload refused`` line names the file and the reason.

Templates removed from the files stay stored and resolvable, as at start-up (the store keeps
what was loaded; Argo does not delete cluster objects when a file goes away either).
:meth:`Reloader.watch` polls the files' mtimes (no inotify dependency) and reloads on change.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog

from gittrigger.eventsources import EventSourceRegistry
from gittrigger.secretsources import expire_secrets
from sensors.loading import sensors_from_documents
from sensors.model import Sensor
from workflows import eventbindings
from workflows.configmaps import KIND as CONFIG_MAP
from workflows.configmaps import ConfigMaps, check_manifest
from workflows.errors import InvalidSpec, NotFound, WorkflowError
from workflows.loading import MAX_BYTES, load_paths, manifest_files, parse_sourced
from workflows.model.spec import ObjectKind, Workflow
from workflows.resolution import DictTemplateGetter, TemplateGetter
from workflows.store.base import ObjectStore, RawObject
from workflows.validation import validate

if TYPE_CHECKING:  # gittrigger.repos imports pygit2; only the Protocol is needed here
    from gittrigger.repos import SecretResolver

log = structlog.get_logger("gittrigger.reload")

STORED_KINDS: Final = (
    ObjectKind.WORKFLOW_TEMPLATE.value, ObjectKind.CLUSTER_WORKFLOW_TEMPLATE.value, ObjectKind.CRON_WORKFLOW.value,
)
TEMPLATE_KINDS: Final = STORED_KINDS[:2]
_SOURCE: Final = re.compile(r"^(?P<file>[^:#]+?)(?:#\d+)?:")


class SensorSink(Protocol):
    def replace_sensors(self, sensors: Sequence[Sensor]) -> None: ...


EVENT_KINDS: Final = ("Sensor", "EventSource")


class StatusSink(Protocol):
    def replace_sources(self, sources: Sequence[Mapping[str, Any]]) -> None: ...


class SourceLoops(Protocol):
    """The calendar tickers and git pollers: restart those whose EventSource changed."""

    def update(self, sources: Sequence[Mapping[str, Any]]) -> int:
        """Run the loops of ``sources`` from now on; returns how many were (re)started or stopped."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Configuration:
    """A validated configuration, ready to be swapped in."""

    stored: tuple[tuple[str, str, RawObject], ...]  # (source, kind, raw) of STORED_KINDS and bindings
    configmaps: tuple[Mapping[str, Any], ...]
    event_documents: tuple[tuple[str, Mapping[str, Any]], ...]  # (source, raw) of Sensors and EventSources
    templates: tuple[Workflow, ...]
    event_sources: tuple[Mapping[str, Any], ...]
    sensors: tuple[Sensor, ...]
    registry: EventSourceRegistry
    counts: Mapping[str, int]


class _Chain:
    """A TemplateGetter: the new templates first, then those the server already knows."""

    def __init__(self, first: TemplateGetter, then: TemplateGetter | None) -> None:
        self._first, self._then = first, then

    def get(self, kind: str, namespace: str | None, name: str) -> Workflow:
        try:
            return self._first.get(kind, namespace, name)
        except NotFound:
            if self._then is None:
                raise
            return self._then.get(kind, namespace, name)


def build_configuration(
    paths: Sequence[Path],
    *,
    namespace: str,
    secrets: SecretResolver,
    known: TemplateGetter | None = None,
    max_bytes: int = MAX_BYTES,
) -> Configuration:
    """Read and validate everything; raises :class:`WorkflowError` (naming the file) on the first problem."""
    documents = load_paths(paths, max_bytes=max_bytes)
    counts: Counter[str] = Counter()
    stored: list[tuple[str, str, RawObject]] = []
    parsed: list[tuple[str, Workflow]] = []
    configmaps: list[Mapping[str, Any]] = []
    for source, raw in documents:
        kind = str(raw.get("kind") or "")
        counts[kind or "(no kind)"] += 1
        if kind == CONFIG_MAP:
            configmaps.append(check_manifest(raw, source=source))
            continue
        if kind == eventbindings.KIND:
            try:
                binding = eventbindings.parse_binding(raw, namespace=namespace)
            except InvalidSpec as e:
                raise InvalidSpec(f"{source}: {e.path}", e.message) from None
            stored.append((source, kind, {**raw, "metadata": {**raw["metadata"], "namespace": binding.namespace}}))
            continue
        if kind not in STORED_KINDS:
            continue
        workflow = parse_sourced(source, raw)
        if not workflow.metadata.name:
            raise InvalidSpec(f"{source}: metadata.name", f"is required for a {kind} loaded by the server")
        if kind != ObjectKind.CLUSTER_WORKFLOW_TEMPLATE.value:
            raw = {**raw, "metadata": {"namespace": namespace, **raw["metadata"]}}
            workflow = parse_sourced(source, raw)
        stored.append((source, kind, raw))
        parsed.append((source, workflow))
    templates = tuple(w for _, w in parsed if w.kind.value in TEMPLATE_KINDS)
    getter = _Chain(DictTemplateGetter(templates), known)
    for source, workflow in parsed:
        problems = validate(workflow, getter=getter)
        if problems:
            first = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise InvalidSpec(f"{source}: {first.path}", f"{first.message}{more}")
    sensors = sensors_from_documents(documents)
    event_sources = tuple(raw for _, raw in documents if raw.get("kind") == "EventSource")
    try:
        registry = EventSourceRegistry.from_manifests(event_sources, secrets=secrets)
    except InvalidSpec as e:
        origin = _origin(documents, e.path)
        raise InvalidSpec(f"{origin}: {e.path}" if origin else e.path, e.message) from None
    return Configuration(stored=tuple(stored), configmaps=tuple(configmaps),
                         event_documents=tuple((src, raw) for src, raw in documents
                                               if raw.get("kind") in EVENT_KINDS),
                         templates=templates,
                         event_sources=event_sources,
                         sensors=tuple(sensors), registry=registry, counts=dict(counts))


def _origin(documents: Sequence[tuple[str, Mapping[str, Any]]], path: str) -> str | None:
    """The source of the EventSource an error path starts with (``<name>.spec...``)."""
    name = path.split(".", 1)[0]
    for source, raw in documents:
        meta = raw.get("metadata")
        if raw.get("kind") == "EventSource" and isinstance(meta, Mapping) and meta.get("name") == name:
            return source
    return None


def failing_file(error: WorkflowError, files: Sequence[Path]) -> str | None:
    """The manifest file an error message starts with, if any."""
    match = _SOURCE.match(str(error))
    if match is None:
        return None
    named = match.group("file").strip()
    return named if any(str(f) == named for f in files) else None


async def store_manifest(store: ObjectStore, kind: str, raw: RawObject) -> RawObject:
    """Store a loaded manifest; a CronWorkflow keeps the status its scheduler wrote (last run,
    active runs, counts), which the file does not carry."""
    if kind == ObjectKind.CRON_WORKFLOW.value and "status" not in raw:
        meta = raw.get("metadata") or {}
        try:
            existing = await store.get_object(kind, meta.get("namespace"), str(meta.get("name") or ""))
        except NotFound:
            existing = {}
        if existing.get("status"):
            raw = {**raw, "status": existing["status"]}
    return await store.put_object(kind, raw)


class Reloader:
    """Swaps a freshly validated configuration into the running parts; see the module docstring."""

    def __init__(
        self,
        *,
        paths: Sequence[Path],
        namespace: str,
        secrets: SecretResolver,
        store: ObjectStore,
        templates: DictTemplateGetter,
        registry: EventSourceRegistry,
        dispatcher: SensorSink,
        loops: SourceLoops | None = None,
        configmaps: ConfigMaps | None = None,
        statuses: StatusSink | None = None,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._configmaps = configmaps
        self._statuses = statuses
        self._paths = list(paths)
        self._namespace = namespace
        self._secrets = secrets
        self._store = store
        self._templates = templates
        self._registry = registry
        self._dispatcher = dispatcher
        self._loops = loops
        self._max_bytes = max_bytes
        self._lock = asyncio.Lock()

    async def reload(self) -> bool:
        """Reload once (serialised); True when the new configuration is in place."""
        async with self._lock:
            expire_secrets(self._secrets)  # a rotated Secret is read again now, not after its cache TTL
            try:
                config = await asyncio.to_thread(
                    build_configuration, self._paths, namespace=self._namespace, secrets=self._secrets,
                    known=self._templates, max_bytes=self._max_bytes)
            except WorkflowError as e:
                log.warning("reload refused", file=failing_file(e, manifest_files(self._paths)), reason=str(e))
                return False
            try:
                for _, kind, raw in config.stored:  # idempotent puts: a failure midway is redone next time
                    await store_manifest(self._store, kind, raw)
            except WorkflowError as e:
                log.warning("reload refused", file=None, reason=f"storing templates failed: {e}")
                return False
            for template in config.templates:
                self._templates.add(template)
            if self._configmaps is not None:
                self._configmaps.replace(config.configmaps)
            self._registry.replace(config.registry)
            if self._statuses is not None:
                self._statuses.replace_sources(config.event_sources)
            self._dispatcher.replace_sensors(config.sensors)
            restarted = self._loops.update(config.event_sources) if self._loops is not None else 0
            log.info("manifests reloaded", paths=[str(p) for p in self._paths], endpoints=len(config.registry),
                     sensors=len(config.sensors), templates=len(config.templates), loops_restarted=restarted,
                     **{kind: config.counts[kind] for kind in sorted(config.counts)})
            return True

    def snapshot(self) -> dict[str, float]:
        """Every manifest file with its mtime (a new, removed or touched file changes it)."""
        seen: dict[str, float] = {}
        for file in manifest_files(self._paths):
            try:
                seen[str(file)] = file.stat().st_mtime_ns
            except OSError:
                seen[str(file)] = -1
        return seen

    async def watch(self, *, interval: float = 1.0, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        """Poll the files every ``interval`` seconds and reload when the snapshot changes (until cancelled)."""
        last = await asyncio.to_thread(self.snapshot)
        while True:
            await sleep(interval)
            current = await asyncio.to_thread(self.snapshot)
            if current != last:
                last = current
                log.info("manifest change seen", files=len(current))
                await self.reload()


__all__ = ["Configuration", "Reloader", "SensorSink", "SourceLoops", "build_configuration", "failing_file"]
