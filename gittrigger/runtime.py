"""
``gittrigger serve``: the long-running process. Builds the parts, loads the manifests, resumes
unfinished runs, serves HTTP, and stops gracefully on SIGTERM/SIGINT.

Called by :mod:`gittrigger.cli` once settings are loaded and logging is configured. Shutdown
order matters: stop accepting requests (finishing those in flight), then close the engine
(which kills running pods; runs stay Running in the store and are resumed on the next start),
flush logs, close the store — the last three are :func:`gittrigger.assembly.assemble`'s exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import structlog
from aiohttp import web

from gittrigger.assembly import Parts, assemble
from gittrigger.cronworkflows import run_cron_workflows
from gittrigger.http.app import make_app
from gittrigger.http.auth import access_for
from gittrigger.http.templates import CRON_SCHEDULER
from gittrigger.reload import Configuration, Reloader, build_configuration, store_manifest
from gittrigger.repos import SecretResolver
from gittrigger.settings import Settings
from gittrigger.triggers import start_triggers
from workflows.errors import InvalidSpec, NotFound
from workflows.loading import MAX_BYTES, parse_sourced
from workflows.model.spec import ObjectKind

log = structlog.get_logger("gittrigger.runtime")

STORED_KINDS: Final = (
    ObjectKind.WORKFLOW_TEMPLATE.value, ObjectKind.CLUSTER_WORKFLOW_TEMPLATE.value, ObjectKind.CRON_WORKFLOW.value,
)
TEMPLATE_KINDS: Final = STORED_KINDS[:2]
PROJECT_EXAMPLES: Final = Path(__file__).resolve().parent.parent / "examples"


def manifest_paths(settings: Settings) -> list[Path]:
    """The configured manifest paths, or the project's ``examples/`` folder when none are."""
    if settings.sources.manifest_paths:
        return list(settings.sources.manifest_paths)
    return [PROJECT_EXAMPLES] if PROJECT_EXAMPLES.is_dir() else []


def check_host(settings: Settings) -> None:
    """Load the API tokens (a bad token file raises); without any, refuse a non-loopback bind address."""
    if access_for(settings.auth).enabled:
        return
    host = settings.server.host
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InvalidSpec("server.host", f"refusing to listen on {host!r}: no API tokens are configured, so only "
                                         "loopback addresses (127.0.0.1, ::1, localhost) are allowed; configure "
                                         "tokens with auth.tokens_file (GITTRIGGER_TOKENS_FILE: a YAML list of "
                                         "{name, token | tokenFile, role: read|write|admin, namespaces}) or "
                                         "auth.admin_token (GITTRIGGER_ADMIN_TOKEN)")


async def load_manifests(parts: Parts, paths: Sequence[Path], *, namespace: str,
                         max_bytes: int = MAX_BYTES, secrets: SecretResolver | None = None) -> Configuration:
    """Validate every manifest as a reload does (:func:`gittrigger.reload.build_configuration`), then
    store the (Cluster)WorkflowTemplates, CronWorkflows and WorkflowEventBindings, make the templates
    resolvable and the ConfigMaps size semaphores. Returns the configuration (kinds counted, the
    Sensors and EventSources for the triggers).

    Invalid documents raise (InvalidSpec naming the file): a server must not start half-configured.
    """
    config = await asyncio.to_thread(
        build_configuration, paths, namespace=namespace, secrets=secrets or _NoSecrets(), known=parts.templates,
        max_bytes=max_bytes)
    for source, kind, raw in config.stored:
        stored = await store_manifest(parts.store, kind, raw)
        if kind in TEMPLATE_KINDS:
            parts.templates.add(parse_sourced(source, stored))
    parts.configmaps.replace(config.configmaps)
    return config


class _NoSecrets:
    """For loading without a secrets dir (tests): every reference is missing."""

    def resolve(self, name: str, key: str) -> bytes:
        raise NotFound("secret", f"{name}/{key}")


async def serve(settings: Settings, *, watch_config: bool = False) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully; see the module docstring.

    SIGHUP (and, with ``watch_config``, a changed manifest file) reloads the manifests atomically
    (:class:`gittrigger.reload.Reloader`): a bad file leaves the running configuration in place.
    """
    check_host(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        async with assemble(settings) as parts:
            paths = manifest_paths(settings)
            # Templates first: resumed runs may reference them.
            config = await load_manifests(parts, paths, namespace=settings.engine.namespace,
                                          max_bytes=settings.sources.max_manifest_bytes,
                                          secrets=parts.secrets)
            resumed = await parts.engine.resume_all()
            log.info("manifests loaded", paths=[str(p) for p in paths], resumed=resumed,
                     **{kind: config.counts[kind] for kind in sorted(config.counts)})
            limit = settings.sources.max_manifest_bytes
            app = make_app(settings, engine=parts.engine, store=parts.store, templates=parts.templates)
            async with start_triggers(settings, app=app, engine=parts.engine, store=parts.store,
                                      documents=config.event_documents, secrets=parts.secrets) as triggers, \
                    run_cron_workflows(store=parts.store, engine=parts.engine, collector=parts.collector) as crons:
                app[CRON_SCHEDULER] = crons  # API writes to CronWorkflows take effect at once
                reloader = Reloader(
                    paths=paths, namespace=settings.engine.namespace, secrets=triggers.secrets,
                    store=parts.store, templates=parts.templates, registry=triggers.registry,
                    dispatcher=triggers.dispatcher, loops=triggers.loops, configmaps=parts.configmaps,
                    statuses=triggers.statuses,
                    max_bytes=limit)
                background: set[asyncio.Task[Any]] = set()

                def spawn(coro: Any, name: str) -> None:
                    task = asyncio.create_task(coro, name=name)
                    background.add(task)
                    task.add_done_callback(background.discard)

                loop.add_signal_handler(signal.SIGHUP, lambda: spawn(reloader.reload(), "manifest reload"))
                if watch_config:
                    spawn(reloader.watch(), "manifest watcher")
                runner = web.AppRunner(app, handle_signals=False)
                await runner.setup()
                try:
                    site = web.TCPSite(runner, settings.server.host, settings.server.port)
                    await site.start()
                    log.info("server started", host=settings.server.host, port=settings.server.port,
                             data_dir=str(settings.store.data_dir), executor=settings.executor.kind,
                             isolation=settings.executor.isolation, webhook_endpoints=triggers.endpoints,
                             sensors=triggers.sensors, calendars=triggers.calendars, git_pollers=triggers.pollers,
                             watch_config=watch_config, auth=access_for(settings.auth).describe())
                    await stopping.wait()
                    log.info("server stopping")
                finally:
                    loop.remove_signal_handler(signal.SIGHUP)
                    for task in list(background):
                        task.cancel()
                    for task in list(background):
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await task
                    await runner.cleanup()  # stop accepting, let requests in flight finish
        log.info("server stopped")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
