"""
The workflow spec as frozen dataclasses: Workflow, templates, steps, DAG tasks, parameters.

Built only by :mod:`workflows.model.wire` from Argo's camelCase JSON. Templates, steps and tasks
keep their ``raw`` wire form as well: Argo substitutes ``{{...}}`` variables into a template's
JSON before running it, and :mod:`workflows.scheduling` does the same (substitute the raw form,
parse again), so a value from a parameter lands in exactly the field where Argo puts it.
Pod-level fields that only Kubernetes honours stay raw mappings for :mod:`workflows.executors.podspec`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


class TemplateKind(enum.Enum):
    """Which one of a template's mutually exclusive bodies it has."""

    CONTAINER = "container"
    SCRIPT = "script"
    CONTAINER_SET = "containerSet"
    STEPS = "steps"
    DAG = "dag"
    SUSPEND = "suspend"
    RESOURCE = "resource"
    HTTP = "http"
    DATA = "data"
    PLUGIN = "plugin"


class RetryPolicy(enum.Enum):
    """Which failures a retryStrategy retries (Argo's RetryPolicy)."""

    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    ON_ERROR = "OnError"
    ON_TRANSIENT_ERROR = "OnTransientError"


@dataclass(frozen=True, slots=True, kw_only=True)
class ValueFrom:
    """Where a parameter's value comes from, when it is not given literally."""

    path: str | None = None
    expression: str | None = None
    parameter: str | None = None
    json_path: str | None = None
    default: str | None = None
    supplied: bool = False
    event: str | None = None
    config_map_key_ref: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Parameter:
    """An input, output or argument parameter."""

    name: str
    value: str | None = None
    default: str | None = None
    enum: tuple[str, ...] = ()
    value_from: ValueFrom | None = None
    global_name: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GitSource:
    """A ``git`` artifact location; credentials are secret references resolved by the fetcher."""

    repo: str
    revision: str | None = None
    depth: int | None = None
    branch: str | None = None
    single_branch: bool = False
    fetch: tuple[str, ...] = ()
    disable_submodules: bool = False
    insecure_ignore_host_key: bool = False
    username_secret: Mapping[str, Any] | None = None
    password_secret: Mapping[str, Any] | None = None
    ssh_private_key_secret: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    """An input, output or argument artifact."""

    name: str
    path: str | None = None
    from_: str | None = None
    from_expression: str | None = None
    global_name: str | None = None
    optional: bool = False
    mode: int | None = None
    sub_path: str | None = None
    archive_none: bool = False  # archive: {none: {}}; tar+gzip otherwise
    compression_level: int | None = None
    raw_data: str | None = None  # raw: {data}
    git: GitSource | None = None
    http_url: str | None = None
    key: str | None = None  # s3/gcs/... key in the default (local) artifact repository
    recurse_mode: bool = False
    raw: Mapping[str, Any] = field(default_factory=_empty)

    @property
    def has_location(self) -> bool:
        return any(x is not None for x in (self.raw_data, self.git, self.http_url, self.key, self.from_))


@dataclass(frozen=True, slots=True, kw_only=True)
class Inputs:
    """A template's ``inputs``."""

    parameters: tuple[Parameter, ...] = ()
    artifacts: tuple[Artifact, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Outputs:
    """A template's ``outputs``."""

    parameters: tuple[Parameter, ...] = ()
    artifacts: tuple[Artifact, ...] = ()
    result: str | None = None
    exit_code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Arguments:
    """``arguments`` of a workflow, step or task."""

    parameters: tuple[Parameter, ...] = ()
    artifacts: tuple[Artifact, ...] = ()

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Retry backoff; durations are Argo duration strings or seconds, resolved at use."""

    duration: str | None = None
    factor: str | None = None
    max_duration: str | None = None
    cap: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryStrategy:
    """A template's ``retryStrategy``; ``limit`` may be an expression string, resolved at use."""

    limit: str | None = None
    policy: RetryPolicy | None = None  # None: OnFailure unless only `expression` is set (Argo: Always)
    backoff: Backoff | None = None
    expression: str | None = None
    affinity: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContinueOn:
    """``continueOn``: keep going although this step failed or errored."""

    failed: bool = False
    error: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SequenceSpec:
    """``withSequence``; strings because each field may hold a variable."""

    count: str | None = None
    start: str | None = None
    end: str | None = None
    format: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateRef:
    """``templateRef``: a template of a WorkflowTemplate or ClusterWorkflowTemplate."""

    name: str
    template: str
    cluster_scope: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleHook:
    """A ``hooks`` entry: ``exit``, or a named hook that fires when ``expression`` holds."""

    template: str | None = None
    template_ref: TemplateRef | None = None
    arguments: Arguments = field(default_factory=Arguments)
    expression: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """A step of a ``steps`` template or a task of a ``dag`` template (tasks add dependencies)."""

    name: str
    template: str | None = None
    template_ref: TemplateRef | None = None
    inline: Template | None = None
    arguments: Arguments = field(default_factory=Arguments)
    when: str | None = None
    with_items: tuple[Any, ...] | None = None
    with_param: str | None = None
    with_sequence: SequenceSpec | None = None
    continue_on: ContinueOn | None = None
    on_exit: str | None = None
    hooks: Mapping[str, LifecycleHook] = field(default_factory=_empty)
    dependencies: tuple[str, ...] = ()
    depends: str | None = None
    raw: Mapping[str, Any] = field(default_factory=_empty)

    @property
    def expands(self) -> bool:
        return self.with_items is not None or self.with_param is not None or self.with_sequence is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class DagSpec:
    """The body of a ``dag`` template."""

    tasks: tuple[Step, ...]
    target: str | None = None
    fail_fast: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Memoize:
    """``memoize``: cache outputs under ``key`` in cache ``cache_name`` for ``max_age``."""

    key: str
    cache_name: str
    max_age: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Synchronization:
    """``synchronization``: mutex names and semaphore keys (``<configmap>/<key>``) held while running."""

    mutexes: tuple[str, ...] = ()
    semaphores: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    """One template; exactly one body (``kind``) is set. ``raw`` is the template's wire JSON."""

    name: str
    kind: TemplateKind
    inputs: Inputs = field(default_factory=Inputs)
    outputs: Outputs = field(default_factory=Outputs)
    container: Mapping[str, Any] | None = None  # container, or script (with `source`), wire form
    container_set: Mapping[str, Any] | None = None
    steps: tuple[tuple[Step, ...], ...] = ()
    dag: DagSpec | None = None
    suspend_duration: str | None = None
    sidecars: tuple[Mapping[str, Any], ...] = ()
    init_containers: tuple[Mapping[str, Any], ...] = ()
    volumes: tuple[Mapping[str, Any], ...] = ()
    daemon: bool = False
    retry_strategy: RetryStrategy | None = None
    timeout: str | None = None
    active_deadline_seconds: str | None = None
    parallelism: str | None = None
    fail_fast: bool | None = None
    memoize: Memoize | None = None
    synchronization: Synchronization | None = None
    hooks: Mapping[str, LifecycleHook] = field(default_factory=_empty)
    metadata: Mapping[str, Any] = field(default_factory=_empty)  # pod labels/annotations
    pod_fields: Mapping[str, Any] = field(default_factory=_empty)  # nodeSelector, tolerations, podSpecPatch, ...
    raw: Mapping[str, Any] = field(default_factory=_empty)

    @property
    def is_leaf(self) -> bool:
        """Runs as a pod (or an in-process action), not as a tree of children."""
        return self.kind not in (TemplateKind.STEPS, TemplateKind.DAG)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTemplateRef:
    """``spec.workflowTemplateRef``."""

    name: str
    cluster_scope: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowSpec:
    """A Workflow's (or WorkflowTemplate's) ``spec``."""

    entrypoint: str | None = None
    arguments: Arguments = field(default_factory=Arguments)
    templates: tuple[Template, ...] = ()
    on_exit: str | None = None
    hooks: Mapping[str, LifecycleHook] = field(default_factory=_empty)
    parallelism: int | None = None
    active_deadline_seconds: int | None = None
    workflow_template_ref: WorkflowTemplateRef | None = None
    template_defaults: Mapping[str, Any] | None = None
    volume_claim_templates: tuple[Mapping[str, Any], ...] = ()
    volumes: tuple[Mapping[str, Any], ...] = ()
    synchronization: Synchronization | None = None
    suspend: bool = False
    shutdown: str | None = None  # "Stop" | "Terminate": Argo's way of stopping a run
    fail_fast: bool | None = None
    pod_fields: Mapping[str, Any] = field(default_factory=_empty)  # podSpecPatch, nodeSelector, podGC, ...
    raw: Mapping[str, Any] = field(default_factory=_empty)

    def template(self, name: str) -> Template | None:
        return next((t for t in self.templates if t.name == name), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectMeta:
    """The ``metadata`` of any object."""

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    creation_timestamp: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=_empty)
    annotations: Mapping[str, str] = field(default_factory=_empty)


class ObjectKind(enum.Enum):
    """The Argo kinds gittrigger reads from manifests."""

    WORKFLOW = "Workflow"
    WORKFLOW_TEMPLATE = "WorkflowTemplate"
    CLUSTER_WORKFLOW_TEMPLATE = "ClusterWorkflowTemplate"
    CRON_WORKFLOW = "CronWorkflow"


@dataclass(frozen=True, slots=True, kw_only=True)
class CronSpec:
    """A CronWorkflow's schedule fields (scheduling itself belongs to the trigger layer)."""

    schedules: tuple[str, ...]
    timezone: str | None = None
    concurrency_policy: str = "Allow"
    starting_deadline_seconds: int | None = None
    successful_jobs_history_limit: int | None = None
    failed_jobs_history_limit: int | None = None
    suspend: bool = False
    when: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Workflow:
    """A Workflow, WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow (``spec`` = its workflowSpec)."""

    kind: ObjectKind
    metadata: ObjectMeta
    spec: WorkflowSpec
    cron: CronSpec | None = None
    workflow_metadata: Mapping[str, Any] | None = None  # spec.workflowMetadata / cron workflowMetadata
