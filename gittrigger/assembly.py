"""
Assembly of the engine's parts from :class:`~gittrigger.settings.Settings`: store, secret
resolver (:func:`gittrigger.secretsources.open_secrets`), executor, template getter, engine — and
their teardown in reverse order.

Called by :mod:`gittrigger.cli` (``gittrigger run``) and :mod:`gittrigger.runtime` (``serve``),
so both build the same thing the same way. Layout of the data dir: ``gittrigger.db`` (SQLite),
``artifacts/`` (the local artifact store), ``pods/`` (workspaces, owned by the executor).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, cast

from gittrigger.artifactcollector import ArtifactCollector
from gittrigger.artifacttokens import ArtifactTokens
from gittrigger.repos import GitRepos, SecretResolver
from gittrigger.secretsources import open_secrets
from gittrigger.settings import Settings
from workflows.configmaps import ConfigMaps
from workflows.engine import Engine
from workflows.errors import NotFound
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.base import LogSink
from workflows.executors.kube.gc import Policy
from workflows.executors.kubernetes import KubeOptions, KubernetesExecutor
from workflows.executors.local import LocalExecutor
from workflows.executors.podspec import ImageCommand
from workflows.loading import MAX_BYTES, load_paths, parse_sourced
from workflows.model import wire
from workflows.model.spec import ObjectKind, Workflow
from workflows.resolution import DictTemplateGetter
from workflows.store.memory import MemoryStore
from workflows.store.sqlite import SqliteStore
from workflows.store.watching import WatchingStore

DATABASE: Final = "gittrigger.db"
TEMPLATE_KINDS: Final = (ObjectKind.WORKFLOW_TEMPLATE.value, ObjectKind.CLUSTER_WORKFLOW_TEMPLATE.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Parts:
    """What :func:`assemble` built; valid inside its ``async with`` block only."""

    store: WatchingStore  # the backend wrapped in the change feed the workflow watch API reads
    engine: Engine
    executor: LocalExecutor | KubernetesExecutor
    templates: DictTemplateGetter
    configmaps: ConfigMaps
    secrets: SecretResolver  # secret references in manifests (gittrigger.secretsources.open_secrets)
    collector: ArtifactCollector  # artifactGC: deletes runs with their artifacts; collects on completion


def templates_in(paths: Sequence[Path], *, max_bytes: int = MAX_BYTES) -> list[Workflow]:
    """The WorkflowTemplates and ClusterWorkflowTemplates in the given files/folders, parsed.

    Raises the loader's InvalidSpec/TooLarge (naming the file) on the first bad one.
    """
    return [parse_sourced(source, raw) for source, raw in load_paths(paths, max_bytes=max_bytes)
            if raw.get("kind") in TEMPLATE_KINDS]


async def kubernetes_executor(settings: Settings, *, logs: LogSink) -> KubernetesExecutor:
    """The Kubernetes executor from ``settings.kubernetes`` (kubeconfig, else in-cluster config).

    Pods reach this server (artifacts) at ``kubernetes.server_url``, else at ``$POD_IP`` (the
    downward API in the chart) or the listen host, on the listen port, with their workflow's
    artifact token (:mod:`gittrigger.artifacttokens`, the secret in the data dir).
    """
    kube = settings.kubernetes
    server_url = kube.server_url or f"http://{os.environ.get('POD_IP') or settings.server.host}:{settings.server.port}"
    options = KubeOptions(
        helper_image=kube.helper_image,
        server_url=server_url,
        namespace=kube.namespace,
        service_account=kube.service_account,
        image_pull_secrets=kube.image_pull_secrets,
        pod_gc=Policy(strategy=kube.pod_gc, delete_delay_seconds=kube.pod_gc_delete_delay_seconds),
        grace_period_seconds=settings.executor.grace_period_seconds,
        qps=kube.qps,
        burst=kube.burst,
        images={image: ImageCommand(entrypoint=entrypoint, cmd=cmd) for image, entrypoint, cmd in kube.images},
        default_resources={kind: dict(pairs) for kind, pairs in
                           (("requests", kube.default_requests), ("limits", kube.default_limits)) if pairs},
    )
    tokens = ArtifactTokens.in_data_dir(settings.store.data_dir)
    return await KubernetesExecutor.connect(
        options=options, logs=logs, kubeconfig=kube.kubeconfig, context=kube.context,
        artifact_token=lambda pod: tokens.token_for(pod.workflow_uid) if pod.workflow_uid else "")


@contextlib.asynccontextmanager
async def assemble(
    settings: Settings, *, templates_from: Sequence[Path] = (), memory: bool = False
) -> AsyncIterator[Parts]:
    """Build the parts, yield them, then close engine (pods killed), flush logs and close the store.

    ``templates_from`` are files or folders whose (Cluster)WorkflowTemplates serve ``templateRef``s,
    on top of those already in the store's objects. ``memory=True`` keeps state in memory only.
    """
    # Bad files fail before anything is opened.
    templates = DictTemplateGetter(templates_in(templates_from, max_bytes=settings.sources.max_manifest_bytes))
    data_dir = settings.store.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    backend: SqliteStore | MemoryStore
    if memory:
        backend = MemoryStore()
    else:
        backend = await SqliteStore.open(data_dir / DATABASE, synchronous=settings.store.synchronous)
    # Every write (engine and API alike) goes through the feed, so watchers see all changes.
    store = WatchingStore(backend)
    closing = contextlib.AsyncExitStack()  # the secrets' API client, closed after the engine
    try:
        secrets = await closing.enter_async_context(open_secrets(settings))
        for kind in TEMPLATE_KINDS:
            for raw in await store.list_objects(kind, None):
                stored = wire.parse_object(raw)
                if not stored.metadata.name:
                    continue
                try:  # a file's template wins over a stored one of the same name
                    templates.get(kind, stored.metadata.namespace, stored.metadata.name)
                except NotFound:
                    templates.add(stored)
        executor: LocalExecutor | KubernetesExecutor
        if settings.executor.kind == "kubernetes":
            executor = await kubernetes_executor(settings, logs=store)
        else:
            executor = LocalExecutor(
                data_dir=data_dir,
                artifacts=LocalArtifactStore(data_dir / "artifacts"),
                logs=store,
                isolation=cast(Literal["auto", "bwrap", "none"], settings.executor.isolation),
                network=cast(Literal["host", "none"], settings.executor.network),
                grace_period=settings.executor.grace_period_seconds,
                extra_path=settings.executor.extra_path,
                # `git` input artifacts: pygit2 with one bare mirror per repository under the data dir,
                # credentials from the secrets dir laid out like a mounted Secret, or from the Secret.
                fetcher=GitRepos(cache_dir=data_dir / "git", secrets=secrets),
            )
        configmaps = ConfigMaps()  # semaphore sizes; filled from the manifests by serve
        engine = Engine(store=store, executor=executor, templates=templates, memo_cache=store, semaphores=configmaps)
        if isinstance(executor, KubernetesExecutor):
            engine.add_phase_listener(executor.on_workflow_phase)  # workflow-level pod GC
        # OnWorkflowCompletion artifactGC: local pods and Kubernetes pods' uploads share this store.
        collector = ArtifactCollector(store=store, artifacts=LocalArtifactStore(data_dir / "artifacts"), engine=engine)
        engine.add_phase_listener(collector.on_workflow_phase)
        try:
            yield Parts(store=store, engine=engine, executor=executor, templates=templates, configmaps=configmaps,
                        secrets=secrets, collector=collector)
        finally:
            if isinstance(executor, KubernetesExecutor):
                executor.detach()  # pods outlive this server: the next one re-attaches to them
                await engine.close()
                await executor.close()
            else:
                await engine.close()
                executor.close()
            await store.flush()
            store.close_feed()  # open watches end instead of waiting for changes that cannot come
    finally:
        await closing.aclose()
        if isinstance(backend, SqliteStore):
            await backend.close()
