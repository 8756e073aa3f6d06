"""
The executor seam: what a pod is, what running one reports, and the Protocols around it.

:mod:`workflows.scheduling` builds a fully resolved :class:`PodRequest` (no ``{{...}}`` left);
:mod:`workflows.engine` hands it to an :class:`Executor` and feeds the :class:`PodResult` back
into the core. Executors only report what happened; whether to retry is decided by the core.
Both executors (``local`` and ``kubernetes``) honour the same request, so a workflow behaves
the same on both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from workflows.model.ids import NodeId
from workflows.model.spec import GitSource
from workflows.model.status import NodePhase


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeMount:
    """A volume mounted into a container at ``mount_path``."""

    name: str
    mount_path: str
    sub_path: str | None = None
    read_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Volume:
    """A pod volume. ``scope`` says who shares it on the local executor.

    ``pod``: an ``emptyDir``, one directory per pod shared by its containers;
    ``workflow``: a ``volumeClaimTemplates`` claim, one directory per workflow run;
    ``other``: anything else (secret, configMap, hostPath, existing PVC) kept for Kubernetes.
    """

    name: str
    scope: str  # "pod" | "workflow" | "other"
    raw: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """A readiness probe (exactly one of exec / http_get / tcp_socket)."""

    exec_command: tuple[str, ...] | None = None
    http_path: str | None = None
    http_port: int | None = None
    http_scheme: str = "HTTP"
    tcp_port: int | None = None
    initial_delay_seconds: float = 0
    period_seconds: float = 10
    timeout_seconds: float = 1
    failure_threshold: int = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    """One container of a pod, resolved: ``command`` + ``args`` is what runs."""

    name: str
    image: str = ""
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str | None = None
    volume_mounts: tuple[VolumeMount, ...] = ()
    readiness_probe: Probe | None = None
    dependencies: tuple[str, ...] = ()  # containerSet: names that must succeed first
    memory_limit_bytes: int | None = None
    raw: Mapping[str, Any] = field(default_factory=_empty)  # the container's wire spec, for Kubernetes


@dataclass(frozen=True, slots=True, kw_only=True)
class File:
    """A file placed before the containers start (script source, raw artifact)."""

    path: str
    content: bytes
    mode: int = 0o644


@dataclass(frozen=True, slots=True, kw_only=True)
class InputArtifact:
    """An input artifact to place at ``path`` before main starts; one source is set."""

    name: str
    path: str
    raw_data: str | None = None
    key: str | None = None  # in the artifact store (passed from an earlier step, or key-only)
    archive_none: bool = False  # stored as a plain file/dir rather than tar+gzip
    git: GitSource | None = None
    http_url: str | None = None
    sub_path: str | None = None
    mode: int | None = None
    optional: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputParameter:
    """An output parameter read from ``path`` after main exits (one trailing newline trimmed)."""

    name: str
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputArtifact:
    """An output artifact saved from ``path`` to ``key`` in the artifact store after main exits."""

    name: str
    path: str
    key: str
    archive_none: bool = False
    compression_level: int | None = None
    optional: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PodRequest:
    """Everything needed to run one node's pod. Built purely by the scheduling core.

    ``main`` has one container for container/script templates and several for containerSet
    (ordered by their ``dependencies``); ``result_container`` is the one whose stdout becomes
    ``outputs.result``.
    """

    node_id: NodeId
    pod_name: str
    namespace: str
    workflow_name: str
    workflow_uid: str
    template_name: str
    main: tuple[Container, ...]
    result_container: str = "main"
    init_containers: tuple[Container, ...] = ()
    sidecars: tuple[Container, ...] = ()
    volumes: tuple[Volume, ...] = ()
    files: tuple[File, ...] = ()
    input_artifacts: tuple[InputArtifact, ...] = ()
    output_parameters: tuple[OutputParameter, ...] = ()
    output_artifacts: tuple[OutputArtifact, ...] = ()
    daemon: bool = False
    attempt: int = 0
    labels: Mapping[str, str] = field(default_factory=_empty)
    annotations: Mapping[str, str] = field(default_factory=_empty)
    pod_fields: Mapping[str, Any] = field(default_factory=_empty)  # nodeSelector, tolerations, podSpecPatch...
    # retryStrategy.affinity.nodeAntiAffinity: the machines where earlier attempts failed.
    avoid_hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PodResult:
    """What happened to a pod. ``phase`` is Succeeded, Failed or Error.

    ``output_parameters`` holds only the parameters whose file existed; the core applies
    defaults. ``output_artifacts`` maps names to store keys of artifacts actually saved.
    """

    phase: NodePhase
    exit_code: int | None = None
    message: str | None = None
    result: str | None = None
    output_parameters: Mapping[str, str] = field(default_factory=_empty)
    output_artifacts: Mapping[str, str] = field(default_factory=_empty)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    pod_ip: str | None = None
    host_node_name: str | None = None  # the machine (Kubernetes node) the pod ran on


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLine:
    """One line a container wrote (without its newline)."""

    namespace: str
    workflow: str
    pod_name: str
    container: str
    time: datetime
    content: str


class LogSink(Protocol):
    """Receives container log lines as they are written; must not block (buffer and flush)."""

    def append(self, line: LogLine) -> None:
        """Queue one line for storage."""
        ...


class ArtifactFetcher(Protocol):
    """Fetches ``git`` input artifacts; implemented with pygit2 in :mod:`gittrigger.repos`."""

    async def fetch_git(self, source: GitSource, *, dest: Path) -> None:
        """Check out ``source.revision`` of ``source.repo`` into ``dest`` (created); raise WorkflowError."""
        ...


class Executor(Protocol):
    """Runs one fully resolved pod (init work, main, sidecars) to completion; cancelling stops it."""

    async def run(self, pod: PodRequest, *, on_ready: Callable[[str], None]) -> PodResult:
        """Run ``pod`` and report its result; never raises for a failing pod (that is a PodResult).

        Idempotent per ``pod.node_id``: a second call for a pod started before (for example
        by a previous server process) re-attaches to it, or reports it lost as an Error where
        the backend cannot re-attach. A daemon calls ``on_ready(ip)`` once its readiness probe
        passes and runs until cancelled. Cancelling the call stops every process of the pod
        (SIGTERM, then SIGKILL after the grace period) and then re-raises CancelledError: the
        core, not the executor, decides the phase of a node it stopped.
        """
        ...
