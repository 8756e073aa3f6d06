"""
Argo's camelCase wire format (JSON/YAML) <-> the frozen model of :mod:`.spec` and :mod:`.status`.

The one place in the engine that knows Argo's field names. ``parse_*`` turns a manifest into a
:class:`~workflows.model.spec.Workflow` (called by :mod:`workflows.loading`, the HTTP API and the
scheduler when it re-parses a substituted template); ``dump_*``/``parse_status`` convert run state
for :mod:`workflows.store` and the API. Every field error is an :class:`InvalidSpec` whose path
names the field (``spec.templates[2].dag.tasks[1].dependencies``). Unknown fields are ignored, as
Argo has many we do not read; templates, steps and specs keep their ``raw`` mapping (read-only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, Literal, TypedDict, TypeVar

from workflows.errors import InvalidSpec
from workflows.model.ids import NodeId
from workflows.model.spec import (
    Arguments,
    Artifact,
    Backoff,
    ContinueOn,
    CronSpec,
    DagSpec,
    GitSource,
    Inputs,
    LifecycleHook,
    Memoize,
    ObjectKind,
    ObjectMeta,
    Outputs,
    Parameter,
    RetryPolicy,
    RetryStrategy,
    SequenceSpec,
    Step,
    Synchronization,
    Template,
    TemplateKind,
    TemplateRef,
    ValueFrom,
    Workflow,
    WorkflowSpec,
    WorkflowTemplateRef,
)
from workflows.model.status import (
    ArtifactRef,
    NodeIO,
    NodePhase,
    NodeStatus,
    NodeType,
    WorkflowPhase,
    WorkflowStatus,
)

API_VERSION: Final = "argoproj.io/v1alpha1"

# Template fields that only the pod honours; podspec reads them from Template.pod_fields.
_TEMPLATE_POD_FIELDS: Final = frozenset({
    "nodeSelector", "tolerations", "affinity", "securityContext", "podSpecPatch", "serviceAccountName",
    "priorityClassName", "priority", "hostAliases", "schedulerName", "automountServiceAccountToken",
    "executor",
})
_SPEC_POD_FIELDS: Final = _TEMPLATE_POD_FIELDS | frozenset({
    "podGC", "imagePullSecrets", "dnsPolicy", "dnsConfig", "podMetadata", "podPriorityClassName",
    "podPriority", "podDisruptionBudget", "hostNetwork", "runtimeClassName",
})
_KEY_LOCATIONS: Final = (("s3", "key"), ("gcs", "key"), ("oss", "key"), ("azure", "blob"), ("hdfs", "path"))
_BODIES: Final = tuple(kind.value for kind in TemplateKind)


class RawMetadata(TypedDict, total=False):
    name: str
    generateName: str
    namespace: str
    uid: str
    resourceVersion: str
    creationTimestamp: str
    labels: dict[str, str]
    annotations: dict[str, str]


class RawRetryStrategy(TypedDict, total=False):
    limit: int | str
    retryPolicy: Literal["Always", "OnFailure", "OnError", "OnTransientError"]
    backoff: dict[str, int | str]
    expression: str
    affinity: dict[str, Any]


class RawParameter(TypedDict, total=False):
    name: str
    value: str | int | float | bool
    default: str | int | float | bool
    enum: list[str | int | float | bool]
    valueFrom: dict[str, Any]
    globalName: str
    description: str


class RawArtifact(TypedDict, total=False):
    name: str
    path: str
    archive: dict[str, Any]
    s3: dict[str, Any]
    git: dict[str, Any]
    http: dict[str, Any]
    raw: dict[str, str]


class RawNodeIO(TypedDict, total=False):
    parameters: list[dict[str, str]]
    artifacts: list[RawArtifact]
    result: str
    exitCode: str


class RawNodeStatus(TypedDict, total=False):
    id: str
    name: str
    displayName: str
    type: str
    templateName: str
    templateRef: dict[str, Any]
    templateScope: str
    phase: str
    boundaryID: str
    children: list[str]
    outboundNodes: list[str]
    inputs: RawNodeIO
    outputs: RawNodeIO
    startedAt: str | None
    finishedAt: str | None
    message: str
    podIP: str
    daemoned: bool
    nodeFlag: dict[str, bool]
    memoizationStatus: dict[str, Any]
    hostNodeName: str


class RawWorkflowStatus(TypedDict, total=False):
    phase: str
    startedAt: str | None
    finishedAt: str | None
    message: str
    progress: str
    nodes: dict[str, RawNodeStatus]
    outputs: RawNodeIO
    storedTemplates: dict[str, Any]
    storedWorkflowTemplateSpec: dict[str, Any]
    conditions: list[dict[str, Any]]
    synchronization: dict[str, Any]


# --- typed field access -------------------------------------------------------------------------

_T = TypeVar("_T")
Raw = Mapping[str, Any]


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _map(raw: Raw, key: str, path: str) -> Raw | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidSpec(_at(path, key), f"must be an object, got {type(value).__name__}")
    return value


def _list(raw: Raw, key: str, path: str) -> Sequence[Any]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InvalidSpec(_at(path, key), f"must be a list, got {type(value).__name__}")
    return value


def _items(raw: Raw, key: str, path: str, parse: Callable[..., _T]) -> tuple[_T, ...]:
    """Parse each mapping of list ``raw[key]`` with ``parse(item, path=...)``."""
    out = []
    for i, item in enumerate(_list(raw, key, path)):
        where = f"{_at(path, key)}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidSpec(where, f"must be an object, got {type(item).__name__}")
        out.append(parse(item, path=where))
    return tuple(out)


def _str(raw: Raw, key: str, path: str) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InvalidSpec(_at(path, key), f"must be a string, got {type(value).__name__}")


def _required_str(raw: Raw, key: str, path: str) -> str:
    value = _str(raw, key, path)
    if not value:
        raise InvalidSpec(_at(path, key), "is required")
    return value


def _bool(raw: Raw, key: str, path: str) -> bool | None:
    value = raw.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise InvalidSpec(_at(path, key), f"must be a boolean, got {type(value).__name__}")


def _int(raw: Raw, key: str, path: str) -> int | None:
    value = raw.get(key)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise InvalidSpec(_at(path, key), f"must be an integer, got {value!r}")


def _int_or_str(raw: Raw, key: str, path: str) -> str | None:
    """An IntOrString (or a number where a string may hold a variable), kept as a string."""
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return any_string(value)
    raise InvalidSpec(_at(path, key), f"must be an integer or string, got {type(value).__name__}")


def _frozen(raw: Raw | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(raw or {}))


def any_string(value: Any, *, path: str = "") -> str:
    """A scalar as Argo's AnyString keeps it: ``1`` -> "1", ``True`` -> "true", ``1.5`` -> "1.5"."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Go: strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent.
        text = format(Decimal(repr(value)), "f")
        return text[:-2] if text.endswith(".0") else text
    raise InvalidSpec(path, f"must be a string, number or boolean, got {type(value).__name__}")


def _any_str(raw: Raw, key: str, path: str) -> str | None:
    value = raw.get(key)
    return None if value is None else any_string(value, path=_at(path, key))


# --- objects ----------------------------------------------------------------------------------


def parse_object(raw: Raw, *, path: str = "") -> Workflow:
    """A Workflow, WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow manifest."""
    if not isinstance(raw, Mapping):
        raise InvalidSpec(path, f"must be an object, got {type(raw).__name__}")
    api_version = raw.get("apiVersion")
    if api_version != API_VERSION:
        raise InvalidSpec(_at(path, "apiVersion"), f"must be {API_VERSION!r}, got {api_version!r}")
    try:
        kind = ObjectKind(raw.get("kind"))
    except ValueError:
        names = ", ".join(k.value for k in ObjectKind)
        raise InvalidSpec(_at(path, "kind"), f"must be one of {names}, got {raw.get('kind')!r}") from None
    metadata = parse_metadata(_map(raw, "metadata", path) or {}, path=_at(path, "metadata"))
    spec_path = _at(path, "spec")
    spec_raw = _map(raw, "spec", path)
    if spec_raw is None:
        raise InvalidSpec(spec_path, "is required")
    cron = None
    if kind is ObjectKind.CRON_WORKFLOW:
        cron = parse_cron(spec_raw, path=spec_path)
        workflow_metadata = _map(spec_raw, "workflowMetadata", spec_path)
        wf_path = _at(spec_path, "workflowSpec")
        spec_raw = _map(spec_raw, "workflowSpec", spec_path)
        if spec_raw is None:
            raise InvalidSpec(wf_path, "is required")
        spec_path = wf_path
    else:
        workflow_metadata = _map(spec_raw, "workflowMetadata", spec_path)
    return Workflow(
        kind=kind,
        metadata=metadata,
        spec=parse_workflow_spec(spec_raw, path=spec_path),
        cron=cron,
        workflow_metadata=workflow_metadata,
    )


def parse_metadata(raw: Raw, *, path: str) -> ObjectMeta:
    """``metadata`` of any object."""
    created = _str(raw, "creationTimestamp", path)
    return ObjectMeta(
        name=_str(raw, "name", path),
        generate_name=_str(raw, "generateName", path),
        namespace=_str(raw, "namespace", path),
        uid=_str(raw, "uid", path),
        resource_version=_str(raw, "resourceVersion", path),
        creation_timestamp=parse_time(created, path=_at(path, "creationTimestamp")) if created else None,
        labels=_frozen(_map(raw, "labels", path)),
        annotations=_frozen(_map(raw, "annotations", path)),
    )


def dump_metadata(meta: ObjectMeta) -> dict[str, Any]:
    """Inverse of :func:`parse_metadata` (unset fields omitted)."""
    out: dict[str, Any] = {}
    for key, value in (("name", meta.name), ("generateName", meta.generate_name),
                       ("namespace", meta.namespace), ("uid", meta.uid),
                       ("resourceVersion", meta.resource_version)):
        if value is not None:
            out[key] = value
    if meta.creation_timestamp is not None:
        out["creationTimestamp"] = format_time(meta.creation_timestamp)
    if meta.labels:
        out["labels"] = dict(meta.labels)
    if meta.annotations:
        out["annotations"] = dict(meta.annotations)
    return out


def dump_object(workflow: Workflow) -> dict[str, Any]:
    """The manifest of an object (no status): metadata dumped, the spec as its raw wire form."""
    spec: dict[str, Any] = dict(workflow.spec.raw)
    if workflow.cron is not None:
        cron = workflow.cron
        spec = {"schedules": list(cron.schedules), "concurrencyPolicy": cron.concurrency_policy,
                "workflowSpec": spec}
        for key, value in (("timezone", cron.timezone),
                           ("startingDeadlineSeconds", cron.starting_deadline_seconds),
                           ("successfulJobsHistoryLimit", cron.successful_jobs_history_limit),
                           ("failedJobsHistoryLimit", cron.failed_jobs_history_limit), ("when", cron.when)):
            if value is not None:
                spec[key] = value
        if cron.suspend:
            spec["suspend"] = True
    if workflow.workflow_metadata is not None:
        spec["workflowMetadata"] = dict(workflow.workflow_metadata)
    metadata = dump_metadata(workflow.metadata)
    return {"apiVersion": API_VERSION, "kind": workflow.kind.value, "metadata": metadata, "spec": spec}


def parse_cron(raw: Raw, *, path: str) -> CronSpec:
    """A CronWorkflow's schedule fields; ``schedule`` and ``schedules`` are combined."""
    schedules = [s for s in (_str(raw, "schedule", path),) if s]
    for i, item in enumerate(_list(raw, "schedules", path)):
        if not isinstance(item, str):
            raise InvalidSpec(f"{_at(path, 'schedules')}[{i}]", "must be a string")
        schedules.append(item)
    if not schedules:
        raise InvalidSpec(_at(path, "schedule"), "a schedule or schedules is required")
    return CronSpec(
        schedules=tuple(schedules),
        timezone=_str(raw, "timezone", path) or None,
        concurrency_policy=_str(raw, "concurrencyPolicy", path) or "Allow",
        starting_deadline_seconds=_int(raw, "startingDeadlineSeconds", path),
        successful_jobs_history_limit=_int(raw, "successfulJobsHistoryLimit", path),
        failed_jobs_history_limit=_int(raw, "failedJobsHistoryLimit", path),
        suspend=bool(_bool(raw, "suspend", path)),
        when=_str(raw, "when", path),
    )


def parse_workflow_spec(raw: Raw, *, path: str) -> WorkflowSpec:
    """A Workflow's (or WorkflowTemplate's) ``spec``."""
    ref_raw = _map(raw, "workflowTemplateRef", path)
    ref = None
    if ref_raw is not None:
        ref_path = _at(path, "workflowTemplateRef")
        ref = WorkflowTemplateRef(
            name=_required_str(ref_raw, "name", ref_path),
            cluster_scope=bool(_bool(ref_raw, "clusterScope", ref_path)),
        )
    return WorkflowSpec(
        entrypoint=_str(raw, "entrypoint", path),
        arguments=parse_arguments(_map(raw, "arguments", path) or {}, path=_at(path, "arguments")),
        templates=_items(raw, "templates", path, parse_template),
        on_exit=_str(raw, "onExit", path),
        hooks=parse_lifecycle_hooks(_map(raw, "hooks", path) or {}, path=_at(path, "hooks")),
        parallelism=_int(raw, "parallelism", path),
        active_deadline_seconds=_int(raw, "activeDeadlineSeconds", path),
        workflow_template_ref=ref,
        template_defaults=_map(raw, "templateDefaults", path),
        volume_claim_templates=tuple(_list(raw, "volumeClaimTemplates", path)),
        volumes=tuple(_list(raw, "volumes", path)),
        synchronization=_sync(raw, path),
        suspend=bool(_bool(raw, "suspend", path)),
        shutdown=_str(raw, "shutdown", path) or None,
        fail_fast=_bool(raw, "failFast", path),
        pod_fields=MappingProxyType({k: v for k, v in raw.items() if k in _SPEC_POD_FIELDS}),
        raw=raw,
    )


# --- templates, steps, tasks ------------------------------------------------------------------


def parse_template(raw: Raw, *, path: str, require_name: bool = True) -> Template:
    """One template; exactly one body. Inline templates (``require_name=False``) may be nameless."""
    name = _required_str(raw, "name", path) if require_name else (_str(raw, "name", path) or "")
    bodies = [b for b in _BODIES if raw.get(b) is not None]
    if not bodies:
        raise InvalidSpec(path, f"template {name!r} has no body: one of {', '.join(_BODIES)} is required")
    if len(bodies) > 1:
        raise InvalidSpec(path, f"template {name!r} has several bodies ({', '.join(bodies)}); one is allowed")
    kind = TemplateKind(bodies[0])
    container = None
    if kind in (TemplateKind.CONTAINER, TemplateKind.SCRIPT):
        container = _map(raw, kind.value, path)
    steps: tuple[tuple[Step, ...], ...] = ()
    if kind is TemplateKind.STEPS:
        steps = _step_groups(raw, path)
    dag = None
    if kind is TemplateKind.DAG:
        dag_path = _at(path, "dag")
        dag_raw = _map(raw, "dag", path) or {}
        dag = DagSpec(
            tasks=_items(dag_raw, "tasks", dag_path, parse_step),
            target=_str(dag_raw, "target", dag_path),
            fail_fast=_bool(dag_raw, "failFast", dag_path),
        )
    suspend = _map(raw, "suspend", path) if kind is TemplateKind.SUSPEND else None
    retry = _map(raw, "retryStrategy", path)
    memoize = _map(raw, "memoize", path)
    return Template(
        name=name,
        kind=kind,
        inputs=_inputs(_map(raw, "inputs", path) or {}, path=_at(path, "inputs")),
        outputs=_outputs(_map(raw, "outputs", path) or {}, path=_at(path, "outputs")),
        container=container,
        container_set=_map(raw, "containerSet", path),
        steps=steps,
        dag=dag,
        suspend_duration=_int_or_str(suspend, "duration", _at(path, "suspend")) if suspend else None,
        sidecars=tuple(_list(raw, "sidecars", path)),
        init_containers=tuple(_list(raw, "initContainers", path)),
        volumes=tuple(_list(raw, "volumes", path)),
        daemon=bool(_bool(raw, "daemon", path)),
        retry_strategy=None if retry is None else parse_retry_strategy(
            retry, path=_at(path, "retryStrategy")
        ),
        timeout=_int_or_str(raw, "timeout", path),
        active_deadline_seconds=_int_or_str(raw, "activeDeadlineSeconds", path),
        parallelism=_int_or_str(raw, "parallelism", path),
        fail_fast=_bool(raw, "failFast", path),
        memoize=None if memoize is None else _memoize(memoize, path=_at(path, "memoize")),
        synchronization=_sync(raw, path),
        hooks=parse_lifecycle_hooks(_map(raw, "hooks", path) or {}, path=_at(path, "hooks")),
        metadata=_frozen(_map(raw, "metadata", path)),
        pod_fields=MappingProxyType({k: v for k, v in raw.items() if k in _TEMPLATE_POD_FIELDS}),
        raw=raw,
    )


def _step_groups(raw: Raw, path: str) -> tuple[tuple[Step, ...], ...]:
    groups = []
    for i, group in enumerate(_list(raw, "steps", path)):
        where = f"{_at(path, 'steps')}[{i}]"
        if not isinstance(group, list | tuple):
            raise InvalidSpec(where, f"must be a list of steps, got {type(group).__name__}")
        steps = []
        for j, step in enumerate(group):
            if not isinstance(step, Mapping):
                raise InvalidSpec(f"{where}[{j}]", f"must be an object, got {type(step).__name__}")
            steps.append(parse_step(step, path=f"{where}[{j}]"))
        groups.append(tuple(steps))
    return tuple(groups)


def parse_step(raw: Raw, *, path: str) -> Step:
    """A step of a ``steps`` template, or a task of a ``dag`` template."""
    inline = _map(raw, "inline", path)
    seq = _map(raw, "withSequence", path)
    seq_path = _at(path, "withSequence")
    cont = _map(raw, "continueOn", path)
    with_items = raw.get("withItems")
    if with_items is not None and not isinstance(with_items, list | tuple):
        raise InvalidSpec(_at(path, "withItems"), f"must be a list, got {type(with_items).__name__}")
    dependencies = _list(raw, "dependencies", path)
    for i, dep in enumerate(dependencies):
        if not isinstance(dep, str):
            raise InvalidSpec(f"{_at(path, 'dependencies')}[{i}]", "must be a string")
    return Step(
        name=_required_str(raw, "name", path),
        template=_str(raw, "template", path),
        template_ref=_template_ref(raw, path),
        inline=None if inline is None else parse_template(
            inline, path=_at(path, "inline"), require_name=False
        ),
        arguments=parse_arguments(_map(raw, "arguments", path) or {}, path=_at(path, "arguments")),
        when=_any_str(raw, "when", path),
        with_items=None if with_items is None else tuple(with_items),
        with_param=_str(raw, "withParam", path),
        with_sequence=None if seq is None else SequenceSpec(
            count=_int_or_str(seq, "count", seq_path),
            start=_int_or_str(seq, "start", seq_path),
            end=_int_or_str(seq, "end", seq_path),
            format=_str(seq, "format", seq_path),
        ),
        continue_on=None if cont is None else ContinueOn(
            failed=bool(_bool(cont, "failed", _at(path, "continueOn"))),
            error=bool(_bool(cont, "error", _at(path, "continueOn"))),
        ),
        on_exit=_str(raw, "onExit", path),
        hooks=parse_lifecycle_hooks(_map(raw, "hooks", path) or {}, path=_at(path, "hooks")),
        dependencies=tuple(dependencies),
        depends=_str(raw, "depends", path),
        raw=raw,
    )


def _template_ref(raw: Raw, path: str) -> TemplateRef | None:
    ref = _map(raw, "templateRef", path)
    if ref is None:
        return None
    ref_path = _at(path, "templateRef")
    return TemplateRef(
        name=_required_str(ref, "name", ref_path),
        template=_required_str(ref, "template", ref_path),
        cluster_scope=bool(_bool(ref, "clusterScope", ref_path)),
    )


def parse_lifecycle_hooks(raw: Raw, *, path: str) -> Mapping[str, LifecycleHook]:
    """``hooks``: hook name (``exit`` or any other) -> hook."""
    hooks = {}
    for name, hook in raw.items():
        where = f"{path}.{name}"
        if not isinstance(hook, Mapping):
            raise InvalidSpec(where, f"must be an object, got {type(hook).__name__}")
        hooks[str(name)] = LifecycleHook(
            template=_str(hook, "template", where),
            template_ref=_template_ref(hook, where),
            arguments=parse_arguments(_map(hook, "arguments", where) or {}, path=_at(where, "arguments")),
            expression=_str(hook, "expression", where),
        )
    return MappingProxyType(hooks)


def parse_retry_strategy(raw: Raw, *, path: str) -> RetryStrategy:
    """``retryStrategy``; ``limit`` stays a string (int, numeric string or expression); ``{}`` = unlimited."""
    policy = _str(raw, "retryPolicy", path)
    try:
        retry_policy = None if not policy else RetryPolicy(policy)
    except ValueError:
        names = ", ".join(p.value for p in RetryPolicy)
        raise InvalidSpec(_at(path, "retryPolicy"), f"must be one of {names}, got {policy!r}") from None
    backoff = _map(raw, "backoff", path)
    b_path = _at(path, "backoff")
    return RetryStrategy(
        limit=_int_or_str(raw, "limit", path),
        policy=retry_policy,
        backoff=None if backoff is None else Backoff(
            duration=_int_or_str(backoff, "duration", b_path),
            factor=_int_or_str(backoff, "factor", b_path),
            max_duration=_int_or_str(backoff, "maxDuration", b_path),
            cap=_int_or_str(backoff, "cap", b_path),
        ),
        expression=_str(raw, "expression", path),
        affinity=_map(raw, "affinity", path),
    )


def _memoize(raw: Raw, *, path: str) -> Memoize:
    cache = _map(raw, "cache", path) or {}
    config_map = _map(cache, "configMap", _at(path, "cache")) or {}
    return Memoize(
        key=_required_str(raw, "key", path),
        cache_name=_required_str(config_map, "name", _at(path, "cache.configMap")),
        max_age=_int_or_str(raw, "maxAge", path),
    )


def _sync(raw: Raw, path: str) -> Synchronization | None:
    """Both Argo forms: ``mutex``/``semaphore`` (one) and ``mutexes``/``semaphores`` (lists)."""
    sync = _map(raw, "synchronization", path)
    if sync is None:
        return None
    where = _at(path, "synchronization")
    mutexes = [m for m in (_map(sync, "mutex", where),) if m] + list(_list(sync, "mutexes", where))
    semaphores = [s for s in (_map(sync, "semaphore", where),) if s] + list(_list(sync, "semaphores", where))
    names = []
    for i, mutex in enumerate(mutexes):
        names.append(_required_str(mutex, "name", f"{where}.mutexes[{i}]"))
    keys = []
    for i, semaphore in enumerate(semaphores):
        ref_path = f"{where}.semaphores[{i}].configMapKeyRef"
        ref = _map(semaphore, "configMapKeyRef", f"{where}.semaphores[{i}]") or {}
        keys.append(f"{_required_str(ref, 'name', ref_path)}/{_required_str(ref, 'key', ref_path)}")
    return Synchronization(mutexes=tuple(names), semaphores=tuple(keys))


# --- parameters and artifacts -------------------------------------------------------------------


def parse_arguments(raw: Raw, *, path: str) -> Arguments:
    """``arguments`` of a workflow, step, task or hook."""
    return Arguments(
        parameters=_items(raw, "parameters", path, parse_parameter),
        artifacts=_items(raw, "artifacts", path, parse_artifact),
    )


def _inputs(raw: Raw, *, path: str) -> Inputs:
    return Inputs(
        parameters=_items(raw, "parameters", path, parse_parameter),
        artifacts=_items(raw, "artifacts", path, parse_artifact),
    )


def _outputs(raw: Raw, *, path: str) -> Outputs:
    return Outputs(
        parameters=_items(raw, "parameters", path, parse_parameter),
        artifacts=_items(raw, "artifacts", path, parse_artifact),
        result=_any_str(raw, "result", path),
        exit_code=_any_str(raw, "exitCode", path),
    )


def parse_parameter(raw: Raw, *, path: str) -> Parameter:
    """A parameter; scalar values become strings the way Argo's AnyString does."""
    enum = _list(raw, "enum", path)
    value_from = _map(raw, "valueFrom", path)
    vf_path = _at(path, "valueFrom")
    return Parameter(
        name=_required_str(raw, "name", path),
        value=_any_str(raw, "value", path),
        default=_any_str(raw, "default", path),
        enum=tuple(any_string(v, path=f"{_at(path, 'enum')}[{i}]") for i, v in enumerate(enum)),
        value_from=None if value_from is None else ValueFrom(
            path=_str(value_from, "path", vf_path),
            expression=_str(value_from, "expression", vf_path),
            parameter=_str(value_from, "parameter", vf_path),
            json_path=_str(value_from, "jsonPath", vf_path),
            default=_any_str(value_from, "default", vf_path),
            supplied=value_from.get("supplied") is not None,
            event=_str(value_from, "event", vf_path),
            config_map_key_ref=_map(value_from, "configMapKeyRef", vf_path),
        ),
        global_name=_str(raw, "globalName", path),
        description=_str(raw, "description", path),
    )


def _location_key(raw: Raw, path: str) -> str | None:
    """The key of a key-only artifact location (s3/gcs/oss ``key``, azure ``blob``, hdfs ``path``)."""
    for location, field in _KEY_LOCATIONS:
        loc = _map(raw, location, path)
        if loc is not None and loc.get(field) is not None:
            return _str(loc, field, _at(path, location))
    return None


def parse_artifact(raw: Raw, *, path: str) -> Artifact:
    """An artifact of inputs, outputs or arguments."""
    archive = _map(raw, "archive", path) or {}
    tar = _map(archive, "tar", _at(path, "archive"))
    git = _map(raw, "git", path)
    g_path = _at(path, "git")
    http = _map(raw, "http", path)
    raw_data = _map(raw, "raw", path)
    fetch = _list(git, "fetch", g_path) if git else ()
    return Artifact(
        name=_required_str(raw, "name", path),
        path=_str(raw, "path", path),
        from_=_str(raw, "from", path),
        from_expression=_str(raw, "fromExpression", path),
        global_name=_str(raw, "globalName", path),
        optional=bool(_bool(raw, "optional", path)),
        mode=_int(raw, "mode", path),
        sub_path=_str(raw, "subPath", path),
        archive_none="none" in archive,
        compression_level=_int(tar, "compressionLevel", _at(path, "archive.tar")) if tar else None,
        raw_data=None if raw_data is None else (_str(raw_data, "data", _at(path, "raw")) or ""),
        git=None if git is None else GitSource(
            repo=_required_str(git, "repo", g_path),
            revision=_any_str(git, "revision", g_path),
            depth=_int(git, "depth", g_path),
            branch=_str(git, "branch", g_path),
            single_branch=bool(_bool(git, "singleBranch", g_path)),
            fetch=tuple(str(f) for f in fetch),
            disable_submodules=bool(_bool(git, "disableSubmodules", g_path)),
            insecure_ignore_host_key=bool(_bool(git, "insecureIgnoreHostKey", g_path)),
            username_secret=_map(git, "usernameSecret", g_path),
            password_secret=_map(git, "passwordSecret", g_path),
            ssh_private_key_secret=_map(git, "sshPrivateKeySecret", g_path),
        ),
        http_url=None if http is None else _required_str(http, "url", _at(path, "http")),
        key=_location_key(raw, path),
        recurse_mode=bool(_bool(raw, "recurseMode", path)),
        raw=raw,
    )


# --- status -----------------------------------------------------------------------------------


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with whole seconds, as Kubernetes' metav1.Time marshals (naive = UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, *, path: str) -> datetime:
    """An RFC 3339 timestamp -> aware UTC datetime."""
    if not isinstance(value, str):
        raise InvalidSpec(path, f"must be an RFC 3339 timestamp, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidSpec(path, f"must be an RFC 3339 timestamp, got {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _opt_time(raw: Raw, key: str, path: str) -> datetime | None:
    value = raw.get(key)
    return None if value is None else parse_time(value, path=_at(path, key))


def dump_artifact_ref(art: ArtifactRef) -> dict[str, Any]:
    """``{name, path, s3: {key}}`` (+ ``archive: {none: {}}``), other location fields from ``raw``."""
    out: dict[str, Any] = {"name": art.name}
    if art.path is not None:
        out["path"] = art.path
    out.update(art.raw)
    if art.key is not None:
        out["s3"] = {**art.raw.get("s3", {}), "key": art.key}
    if art.archive_none:
        out["archive"] = {"none": {}}
    return out


def parse_artifact_ref(raw: Raw, *, path: str) -> ArtifactRef:
    """Inverse of :func:`dump_artifact_ref`."""
    rest = {k: v for k, v in raw.items() if k not in ("name", "path", "s3", "archive")}
    s3 = _map(raw, "s3", path)
    key = None
    if s3 is not None:
        key = _str(s3, "key", _at(path, "s3"))
        if other := {k: v for k, v in s3.items() if k != "key"}:
            rest["s3"] = other
    archive = _map(raw, "archive", path)
    archive_none = archive is not None and dict(archive) == {"none": {}}
    if archive is not None and not archive_none:
        rest["archive"] = archive
    return ArtifactRef(
        name=_required_str(raw, "name", path), path=_str(raw, "path", path), key=key,
        archive_none=archive_none, raw=MappingProxyType(rest),
    )


def dump_io(io: NodeIO) -> dict[str, Any]:
    """A node's (or the workflow's) ``inputs``/``outputs``."""
    out: dict[str, Any] = {}
    if io.parameters:
        out["parameters"] = [{"name": n, "value": v} for n, v in io.parameters]
    if io.artifacts:
        out["artifacts"] = [dump_artifact_ref(a) for a in io.artifacts]
    if io.result is not None:
        out["result"] = io.result
    if io.exit_code is not None:
        out["exitCode"] = io.exit_code
    return out


def parse_io(raw: Raw, *, path: str) -> NodeIO:
    """Inverse of :func:`dump_io`."""
    params = []
    for i, p in enumerate(_list(raw, "parameters", path)):
        where = f"{_at(path, 'parameters')}[{i}]"
        if not isinstance(p, Mapping):
            raise InvalidSpec(where, "must be an object")
        params.append((_required_str(p, "name", where), _any_str(p, "value", where) or ""))
    return NodeIO(
        parameters=tuple(params),
        artifacts=_items(raw, "artifacts", path, parse_artifact_ref),
        result=_any_str(raw, "result", path),
        exit_code=_any_str(raw, "exitCode", path),
    )


def dump_node(node: NodeStatus) -> dict[str, Any]:
    """One ``status.nodes[id]`` entry; empty fields omitted (Go omitempty), times always present."""
    out: dict[str, Any] = {
        "id": node.id, "name": node.name, "displayName": node.display_name, "type": node.type.value,
    }
    if node.template_name is not None:
        out["templateName"] = node.template_name
    if node.template_ref is not None:
        out["templateRef"] = dict(node.template_ref)
    if node.template_scope is not None:
        out["templateScope"] = node.template_scope
    out["phase"] = node.phase.value
    if node.boundary_id is not None:
        out["boundaryID"] = node.boundary_id
    if node.message is not None:
        out["message"] = node.message
    # metav1.Time is a struct, so omitempty never drops it: Argo writes `finishedAt: null`.
    out["startedAt"] = None if node.started_at is None else format_time(node.started_at)
    out["finishedAt"] = None if node.finished_at is None else format_time(node.finished_at)
    if node.pod_ip is not None:
        out["podIP"] = node.pod_ip
    if node.daemoned:
        out["daemoned"] = True
    if node.hooked or node.retried:
        out["nodeFlag"] = {k: True for k, v in (("hooked", node.hooked), ("retried", node.retried)) if v}
    if node.inputs is not None:
        out["inputs"] = dump_io(node.inputs)
    if node.outputs is not None:
        out["outputs"] = dump_io(node.outputs)
    if node.children:
        out["children"] = list(node.children)
    if node.outbound_nodes:
        out["outboundNodes"] = list(node.outbound_nodes)
    if node.host_node_name is not None:
        out["hostNodeName"] = node.host_node_name
    if node.memoization is not None:
        out["memoizationStatus"] = dict(node.memoization)
    return out


def _ids(raw: Raw, key: str, path: str) -> tuple[NodeId, ...]:
    values = _list(raw, key, path)
    if not all(isinstance(v, str) for v in values):
        raise InvalidSpec(_at(path, key), "must be a list of node ids")
    return tuple(NodeId(v) for v in values)


def parse_node(raw: Raw, *, path: str) -> NodeStatus:
    """Inverse of :func:`dump_node`."""
    try:
        node_type = NodeType(raw.get("type"))
    except ValueError:
        raise InvalidSpec(_at(path, "type"), f"unknown node type {raw.get('type')!r}") from None
    try:
        phase = NodePhase(raw.get("phase") or "Pending")
    except ValueError:
        raise InvalidSpec(_at(path, "phase"), f"unknown node phase {raw.get('phase')!r}") from None
    flags = _map(raw, "nodeFlag", path) or {}
    inputs, outputs = _map(raw, "inputs", path), _map(raw, "outputs", path)
    template_ref, memo = _map(raw, "templateRef", path), _map(raw, "memoizationStatus", path)
    boundary = _str(raw, "boundaryID", path)
    name = _required_str(raw, "name", path)
    return NodeStatus(
        id=NodeId(_required_str(raw, "id", path)),
        name=name,
        display_name=_str(raw, "displayName", path) or name,
        type=node_type,
        phase=phase,
        template_name=_str(raw, "templateName", path),
        template_ref=None if template_ref is None else _frozen(template_ref),
        template_scope=_str(raw, "templateScope", path),
        boundary_id=None if boundary is None else NodeId(boundary),
        children=_ids(raw, "children", path),
        outbound_nodes=_ids(raw, "outboundNodes", path),
        inputs=None if inputs is None else parse_io(inputs, path=_at(path, "inputs")),
        outputs=None if outputs is None else parse_io(outputs, path=_at(path, "outputs")),
        started_at=_opt_time(raw, "startedAt", path),
        finished_at=_opt_time(raw, "finishedAt", path),
        message=_str(raw, "message", path),
        pod_ip=_str(raw, "podIP", path),
        daemoned=bool(_bool(raw, "daemoned", path)),
        hooked=bool(_bool(flags, "hooked", _at(path, "nodeFlag"))),
        retried=bool(_bool(flags, "retried", _at(path, "nodeFlag"))),
        memoization=None if memo is None else _frozen(memo),
        host_node_name=_str(raw, "hostNodeName", path),
    )


def dump_status(status: WorkflowStatus) -> dict[str, Any]:
    """A run's ``status`` in Argo's shape (times always present, null until set, like Argo)."""
    out: dict[str, Any] = {}
    if status.phase is not WorkflowPhase.UNKNOWN:
        out["phase"] = status.phase.value
    out["startedAt"] = None if status.started_at is None else format_time(status.started_at)
    out["finishedAt"] = None if status.finished_at is None else format_time(status.finished_at)
    if status.progress is not None:
        out["progress"] = status.progress
    if status.message is not None:
        out["message"] = status.message
    if status.nodes:
        out["nodes"] = {node_id: dump_node(node) for node_id, node in status.nodes.items()}
    if status.stored_templates:
        out["storedTemplates"] = dict(status.stored_templates)
    if status.conditions:
        out["conditions"] = [dict(c) for c in status.conditions]
    if status.outputs is not None:
        out["outputs"] = dump_io(status.outputs)
    if status.stored_spec is not None:
        out["storedWorkflowTemplateSpec"] = dict(status.stored_spec)
    if status.synchronization is not None:
        out["synchronization"] = dict(status.synchronization)
    return out


def parse_status(raw: Raw, *, path: str = "status") -> WorkflowStatus:
    """Inverse of :func:`dump_status`."""
    try:
        phase = WorkflowPhase(raw.get("phase") or "")
    except ValueError:
        raise InvalidSpec(_at(path, "phase"), f"unknown workflow phase {raw.get('phase')!r}") from None
    nodes_path = _at(path, "nodes")
    nodes = {}
    for node_id, node in (_map(raw, "nodes", path) or {}).items():
        if not isinstance(node, Mapping):
            raise InvalidSpec(f"{nodes_path}.{node_id}", "must be an object")
        nodes[NodeId(node_id)] = parse_node(node, path=f"{nodes_path}.{node_id}")
    outputs, stored_spec, sync = _map(raw, "outputs", path), _map(raw, "storedWorkflowTemplateSpec", path), \
        _map(raw, "synchronization", path)
    conditions = _list(raw, "conditions", path)
    return WorkflowStatus(
        phase=phase,
        started_at=_opt_time(raw, "startedAt", path),
        finished_at=_opt_time(raw, "finishedAt", path),
        message=_str(raw, "message", path),
        progress=_str(raw, "progress", path),
        nodes=MappingProxyType(nodes),
        outputs=None if outputs is None else parse_io(outputs, path=_at(path, "outputs")),
        stored_templates=_frozen(_map(raw, "storedTemplates", path)),
        stored_spec=None if stored_spec is None else _frozen(stored_spec),
        conditions=tuple(_frozen(c) for c in conditions),
        synchronization=None if sync is None else _frozen(sync),
    )
