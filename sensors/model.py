"""
The Sensor model (Argo Events ``argoproj.io/v1alpha1`` Sensor, the subset we run) and its parser.

:func:`parse_sensor` turns a decoded manifest into frozen dataclasses, raising
:class:`~workflows.errors.InvalidSpec` that names the field path (``spec.triggers[1].template.k8s``).
Called by :mod:`sensors.loading` (YAML files) and by tests; everything else in :mod:`sensors`
works on these values. The parsers (here, :mod:`sensors.filterspec`, :mod:`sensors.policies`)
and :mod:`sensors.params` (user ``dest`` paths) are the only ones here that know camelCase
wire names.

Filters live in :mod:`sensors.filterspec` and trigger policies (retry, rate limit, conditions
reset, concurrency) in :mod:`sensors.policies`; this module holds dependencies and triggers.

gittrigger extensions (Argo Events ignores fields it does not know, so a manifest stays valid):

- on a dependency, ``filters.git`` (see :class:`sensors.filterspec.GitFilter`):
  ``branches``/``branchesIgnore``/``tags``/``tagsIgnore``/``paths``/``pathsIgnore`` glob lists,
  evaluated by :mod:`sensors.gitfilters` against push and pull-request payloads;
- on a dependency, ``skipCI`` (default ``true``): drop pushes whose head commit message holds
  ``[skip ci]`` or ``[ci skip]``;
- on a trigger (beside ``template``), ``concurrency: {group, cancelInProgress}``: ``group`` is a
  template over ``{{repo}}``, ``{{branch}}``, ``{{tag}}``, ``{{ref}}``, ``{{sha}}``, ``{{pr}}``,
  ``{{sensor}}``, ``{{trigger}}`` and ``{{eventSource}}``/``{{event}}`` (see
  :func:`sensors.gitfilters.render_group`);
  runs in one group are serialized, and ``cancelInProgress`` cancels the older run.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sensors import conditions
from sensors.filterspec import (
    EventDependencyFilter,
    LogicalOperator,
    as_list,
    as_mapping,
    opt_str,
    parse_filters,
    parse_operator,
    req_str,
)
from sensors.policies import (
    Backoff,
    Concurrency,
    ConditionsReset,
    RateLimit,
    parse_backoff,
    parse_concurrency,
    parse_rate_limit,
    parse_reset,
)
from workflows.errors import InvalidSpec


class ArgoWorkflowOperation(enum.Enum):
    """What an ``argoWorkflow`` trigger does with its workflow."""

    SUBMIT = "submit"
    SUBMIT_FROM = "submit-from"
    RESUBMIT = "resubmit"
    RETRY = "retry"
    RESUME = "resume"
    SUSPEND = "suspend"
    STOP = "stop"
    TERMINATE = "terminate"


class K8sOperation(enum.Enum):
    """What a ``k8s`` trigger does with its resource."""

    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"


class ParameterOperation(enum.Enum):
    """How a parameter value combines with what is already at ``dest``."""

    OVERWRITE = "overwrite"
    APPEND = "append"
    PREPEND = "prepend"


@dataclass(frozen=True, slots=True, kw_only=True)
class Transform:
    """``transform`` (jq or Lua); parsed and reported, never applied."""

    jq: str = ""
    script: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventDependency:
    """One event a sensor waits for, with the filters it must pass."""

    name: str
    event_source_name: str
    event_name: str
    filters: EventDependencyFilter | None = None
    filters_logical_operator: LogicalOperator = LogicalOperator.AND
    transform: Transform | None = None
    skip_ci: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ParameterSource:
    """``src`` of a trigger parameter: where in which dependency's event the value comes from."""

    dependency_name: str
    data_key: str = ""
    data_template: str = ""
    context_key: str = ""
    context_template: str = ""
    value: str | None = None
    use_raw_data: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerParameter:
    """One value copied from an event into the trigger's resource at ``dest``."""

    src: ParameterSource
    dest: str
    operation: ParameterOperation = ParameterOperation.OVERWRITE


@dataclass(frozen=True, slots=True, kw_only=True)
class ArgoWorkflowTrigger:
    """``argoWorkflow``: an operation on an inline Workflow resource."""

    operation: ArgoWorkflowOperation
    resource: Mapping[str, Any]
    parameters: tuple[TriggerParameter, ...] = ()
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class K8sTrigger:
    """``k8s``: a Kubernetes operation on an inline resource (create of a Workflow = submit)."""

    operation: K8sOperation
    resource: Mapping[str, Any]
    parameters: tuple[TriggerParameter, ...] = ()
    patch_strategy: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogTrigger:
    """``log``: record the event; nothing is submitted."""

    interval_seconds: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsupportedTrigger:
    """A trigger type we parse but cannot run (``http``); matching reports it instead of firing."""

    kind: str
    raw: Mapping[str, Any]


TriggerAction = ArgoWorkflowTrigger | K8sTrigger | LogTrigger | UnsupportedTrigger


@dataclass(frozen=True, slots=True, kw_only=True)
class Trigger:
    """One trigger: when its ``conditions`` hold, apply parameters and run ``action``."""

    name: str
    action: TriggerAction
    conditions: str = ""
    conditions_reset: tuple[ConditionsReset, ...] = ()
    parameters: tuple[TriggerParameter, ...] = ()
    retry_strategy: Backoff | None = None
    rate_limit: RateLimit | None = None
    at_least_once: bool = False
    concurrency: Concurrency | None = None
    # The wire ``template``: trigger-level parameters rewrite it and it is parsed again.
    raw_template: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sensor:
    """A parsed Sensor manifest."""

    name: str
    namespace: str = ""
    dependencies: tuple[EventDependency, ...]
    triggers: tuple[Trigger, ...]
    logging_fields: Mapping[str, str] | None = None

    def dependency(self, name: str) -> EventDependency | None:
        """The dependency called ``name``, if any."""
        return next((d for d in self.dependencies if d.name == name), None)


_TRIGGER_KINDS = ("argoWorkflow", "k8s", "log", "http")
_UNSUPPORTED_KINDS = (
    "awsLambda",
    "custom",
    "kafka",
    "nats",
    "slack",
    "openWhisk",
    "azureEventHubs",
    "pulsar",
    "azureServiceBus",
    "email",
)


def parse_sensor(raw: Mapping[str, Any], *, path: str = "") -> Sensor:
    """Parse a Sensor manifest; raises InvalidSpec naming the first wrong field."""

    def at(field: str) -> str:
        return f"{path}.{field}" if path else field

    raw = as_mapping(raw, path=path)
    kind = raw.get("kind", "Sensor")
    if kind != "Sensor":
        raise InvalidSpec(at("kind"), f"expected Sensor, got {kind!r}")
    metadata = as_mapping(raw.get("metadata"), path=at("metadata"))
    name = req_str(metadata, "name", path=at("metadata"))
    spec = as_mapping(raw.get("spec"), path=at("spec"))
    deps = tuple(
        parse_dependency(item, path=f"{at('spec.dependencies')}[{i}]")
        for i, item in enumerate(as_list(spec.get("dependencies"), path=at("spec.dependencies")))
    )
    if not deps:
        raise InvalidSpec(at("spec.dependencies"), "at least one dependency is required")
    seen: set[str] = set()
    for i, dep in enumerate(deps):
        if dep.name in seen:
            raise InvalidSpec(f"{at('spec.dependencies')}[{i}].name", f"duplicate dependency {dep.name!r}")
        seen.add(dep.name)
    triggers = tuple(
        parse_trigger(item, path=f"{at('spec.triggers')}[{i}]", dependencies=seen)
        for i, item in enumerate(as_list(spec.get("triggers"), path=at("spec.triggers")))
    )
    if not triggers:
        raise InvalidSpec(at("spec.triggers"), "at least one trigger is required")
    names = [t.name for t in triggers]
    for i, trigger_name in enumerate(names):
        if names.index(trigger_name) != i:
            raise InvalidSpec(
                f"{at('spec.triggers')}[{i}].template.name", f"duplicate trigger {trigger_name!r}"
            )
    fields = spec.get("loggingFields")
    return Sensor(
        name=name,
        namespace=opt_str(metadata, "namespace", path=at("metadata")),
        dependencies=deps,
        triggers=triggers,
        logging_fields=None
        if fields is None
        else {str(k): str(v) for k, v in as_mapping(fields, path=at("spec.loggingFields")).items()},
    )


def parse_dependency(raw: Any, *, path: str) -> EventDependency:
    """One ``spec.dependencies[i]``."""
    raw = as_mapping(raw, path=path)
    transform = None
    if "transform" in raw:
        t = as_mapping(raw["transform"], path=f"{path}.transform")
        transform = Transform(
            jq=opt_str(t, "jq", path=f"{path}.transform"),
            script=opt_str(t, "script", path=f"{path}.transform"),
        )
    skip_ci = raw.get("skipCI", True)
    if not isinstance(skip_ci, bool):
        raise InvalidSpec(f"{path}.skipCI", f"must be true or false, got {skip_ci!r}")
    return EventDependency(
        name=req_str(raw, "name", path=path),
        event_source_name=req_str(raw, "eventSourceName", path=path),
        event_name=req_str(raw, "eventName", path=path),
        filters=parse_filters(raw["filters"], path=f"{path}.filters") if raw.get("filters") else None,
        filters_logical_operator=parse_operator(
            raw.get("filtersLogicalOperator"), path=f"{path}.filtersLogicalOperator"
        ),
        transform=transform,
        skip_ci=skip_ci,
    )


def parse_trigger(raw: Any, *, path: str, dependencies: Sequence[str] | set[str]) -> Trigger:
    """One ``spec.triggers[i]``; ``dependencies`` are the sensor's names, for ``conditions``."""
    raw = as_mapping(raw, path=path)
    tpath = f"{path}.template"
    template = as_mapping(raw.get("template"), path=tpath)
    name = req_str(template, "name", path=tpath)
    kinds = [k for k in (*_TRIGGER_KINDS, *_UNSUPPORTED_KINDS) if k in template]
    if not kinds:
        unknown = sorted(set(template) - {"name", "conditions", "conditionsReset"})
        raise InvalidSpec(
            tpath,
            f"no trigger type given; unknown fields {unknown}"
            if unknown
            else "no trigger type given (expected one of argoWorkflow, k8s, log)",
        )
    if len(kinds) > 1:
        raise InvalidSpec(tpath, f"exactly one trigger type allowed, got {kinds}")
    kind = kinds[0]
    if kind in _UNSUPPORTED_KINDS:
        raise InvalidSpec(
            f"{tpath}.{kind}",
            f"trigger type {kind!r} is not supported "
            "(supported: argoWorkflow, k8s, log; http is parsed but not run)",
        )
    action = _parse_action(kind, template[kind], path=f"{tpath}.{kind}")
    cond = opt_str(template, "conditions", path=tpath)
    if cond:
        conditions.parse(cond, known=dependencies, path=f"{tpath}.conditions")
    resets = tuple(
        parse_reset(item, path=f"{tpath}.conditionsReset[{i}]")
        for i, item in enumerate(as_list(template.get("conditionsReset"), path=f"{tpath}.conditionsReset"))
    )
    return Trigger(
        name=name,
        action=action,
        conditions=cond,
        conditions_reset=resets,
        parameters=_parse_params(raw.get("parameters"), path=f"{path}.parameters"),
        retry_strategy=parse_backoff(raw["retryStrategy"], path=f"{path}.retryStrategy")
        if raw.get("retryStrategy")
        else None,
        rate_limit=parse_rate_limit(raw["rateLimit"], path=f"{path}.rateLimit")
        if raw.get("rateLimit")
        else None,
        at_least_once=_bool(raw, "atLeastOnce", path=path),
        concurrency=parse_concurrency(raw["concurrency"], path=f"{path}.concurrency")
        if raw.get("concurrency")
        else None,
        raw_template=template,
    )


def _parse_action(kind: str, raw: Any, *, path: str) -> TriggerAction:
    raw = as_mapping(raw, path=path)
    if kind == "log":
        interval = raw.get("intervalSeconds", 0)
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 0:
            raise InvalidSpec(f"{path}.intervalSeconds", f"must be a non-negative integer, got {interval!r}")
        return LogTrigger(interval_seconds=interval)
    if kind == "http":
        return UnsupportedTrigger(kind=kind, raw=raw)
    resource = _parse_source(raw.get("source"), path=f"{path}.source")
    params = _parse_params(raw.get("parameters"), path=f"{path}.parameters")
    op_path = f"{path}.operation"
    if kind == "argoWorkflow":
        args = as_list(raw.get("args"), path=f"{path}.args")
        return ArgoWorkflowTrigger(
            operation=_enum(ArgoWorkflowOperation, raw.get("operation", "submit"), path=op_path),
            resource=resource,
            parameters=params,
            args=tuple(str(a) for a in args),
        )
    return K8sTrigger(
        operation=_enum(K8sOperation, raw.get("operation", "create"), path=op_path),
        resource=resource,
        parameters=params,
        patch_strategy=opt_str(raw, "patchStrategy", path=path),
    )


def _parse_source(raw: Any, *, path: str) -> Mapping[str, Any]:
    source = as_mapping(raw, path=path)
    if "resource" not in source:
        others = sorted(source) or ["nothing"]
        raise InvalidSpec(path, f"only an inline 'resource' source is supported, got {others}")
    resource = as_mapping(source["resource"], path=f"{path}.resource")
    if not resource:
        raise InvalidSpec(f"{path}.resource", "must not be empty")
    return resource


def _parse_params(raw: Any, *, path: str) -> tuple[TriggerParameter, ...]:
    out = []
    for i, item in enumerate(as_list(raw, path=path)):
        ipath = f"{path}[{i}]"
        item = as_mapping(item, path=ipath)
        src = as_mapping(item.get("src"), path=f"{ipath}.src")
        value = src.get("value")
        out.append(
            TriggerParameter(
                src=ParameterSource(
                    dependency_name=req_str(src, "dependencyName", path=f"{ipath}.src"),
                    data_key=opt_str(src, "dataKey", path=f"{ipath}.src"),
                    data_template=opt_str(src, "dataTemplate", path=f"{ipath}.src"),
                    context_key=opt_str(src, "contextKey", path=f"{ipath}.src"),
                    context_template=opt_str(src, "contextTemplate", path=f"{ipath}.src"),
                    value=None if value is None else str(value),
                    use_raw_data=_bool(src, "useRawData", path=f"{ipath}.src"),
                ),
                dest=req_str(item, "dest", path=ipath),
                operation=_enum(
                    ParameterOperation, item.get("operation") or "overwrite", path=f"{ipath}.operation"
                ),
            )
        )
    return tuple(out)


def _bool(raw: Mapping[str, Any], key: str, *, path: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise InvalidSpec(f"{path}.{key}", f"must be true or false, got {value!r}")
    return value


_E = TypeVar("_E", bound=enum.Enum)


def _enum(cls: type[_E], value: Any, *, path: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in cls)
        raise InvalidSpec(path, f"must be one of {allowed}, got {value!r}") from None
