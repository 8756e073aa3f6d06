"""
Outputs of finished nodes: from a pod's result, or from a steps/DAG scope (pure).

Called by :mod:`.operator` when a pod finishes (Argo's executor + controller output handling)
and when a steps or DAG node completes (Argo's getTemplateOutputsFromScope). Also collects
``globalName`` outputs into the workflow's global outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from workflows.errors import WorkflowError
from workflows.executors.base import PodResult
from workflows.expressions import evaluate
from workflows.model.spec import Artifact, Template
from workflows.model.status import ArtifactRef, NodeIO, NodePhase
from workflows.scheduling.scope import Scope, go_json
from workflows.templating import expression_env

_RESULT_LIMIT = 256 * 1024


class OutputError(WorkflowError):
    """An output could not be resolved; the node becomes Error with this message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Collected:
    """Outputs of a node and, when collection failed, why (the node's phase becomes Error)."""

    outputs: NodeIO
    error: str | None = None


def _tag_name(reference: str) -> str:
    ref = reference.strip()
    if ref.startswith("{{") and ref.endswith("}}"):
        ref = ref[2:-2]
    return ref.strip()


def _artifact_env(scope: Scope) -> dict[str, object]:
    env = expression_env(scope.params)
    for name, ref in scope.artifacts.items():
        cursor: dict[str, object] = env
        *parents, leaf = name.split(".")
        for part in parents:
            nxt = cursor.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                cursor[part] = nxt
            cursor = nxt
        cursor[leaf] = {"name": ref.name, "key": ref.key, "__artifact__": name}
    return env


_LOCATION_KEYS = ("raw", "git", "http", "artifactory", "hdfs", "oss", "gcs", "azure")


def ref_of(art: Artifact, *, name: str | None = None) -> ArtifactRef:
    """An artifact with a known location as a node-status reference (keeps raw/git/http locations)."""
    raw = {k: v for k, v in art.raw.items() if k in _LOCATION_KEYS}
    if art.raw_data is not None:
        raw["raw"] = {"data": art.raw_data}
    return ArtifactRef(name=name or art.name, path=art.path, key=art.key, archive_none=art.archive_none, raw=raw)


def artifact_from_ref(art: Artifact, ref: ArtifactRef) -> Artifact:
    """An argument artifact whose ``from`` named ``ref``: it takes the referenced location."""
    from workflows.model import wire

    located = None
    if ref.raw:
        located = wire.parse_artifact({"name": art.name, **dict(ref.raw)}, path=f"artifacts.{art.name}")
    return replace(
        art, key=ref.key, archive_none=ref.archive_none, from_=None, from_expression=None,
        raw_data=located.raw_data if located else None, git=located.git if located else None,
        http_url=located.http_url if located else None,
    )


def resolve_artifact(art: Artifact, scope: Scope) -> ArtifactRef | None:
    """The artifact ``from`` / ``fromExpression`` names in ``scope`` (None when not found)."""
    if art.from_expression:
        value = evaluate(art.from_expression, _artifact_env(scope))
        if isinstance(value, dict) and "__artifact__" in value:
            return scope.artifacts.get(str(value["__artifact__"]))
        return None
    if art.from_:
        return scope.artifacts.get(_tag_name(art.from_))
    return None


def resolve_parameter_from_scope(name: str, value_from_parameter: str | None, expression: str | None,
                                 scope: Scope) -> str | None:
    """A ``valueFrom.parameter`` or ``valueFrom.expression`` in a scope (None when unresolvable)."""
    if expression:
        value = evaluate(expression, expression_env(scope.params))
        if value is None:
            return None
        return value if isinstance(value, str) else go_json(value)
    if value_from_parameter:
        return scope.params.get(_tag_name(value_from_parameter))
    return None


def from_scope(template: Template, scope: Scope, *, supplied: Mapping[str, str] | None = None) -> Collected:
    """Outputs of a steps, DAG or suspend template, resolved in its scope."""
    params: list[tuple[str, str]] = []
    for p in template.outputs.parameters:
        vf = p.value_from
        value: str | None = None
        try:
            if vf is not None and vf.supplied:
                value = (supplied or {}).get(p.name)
            elif vf is not None:
                value = resolve_parameter_from_scope(p.name, vf.parameter, vf.expression, scope)
            elif p.value is not None:
                value = p.value
        except WorkflowError as e:
            if vf is None or vf.default is None:
                return Collected(outputs=NodeIO(parameters=tuple(params)), error=f"outputs.parameters.{p.name}: {e}")
        if value is None and vf is not None and vf.default is not None:
            value = vf.default
        if value is None:
            return Collected(
                outputs=NodeIO(parameters=tuple(params)),
                error=f"unable to resolve outputs.parameters.{p.name}",
            )
        params.append((p.name, value))
    arts: list[ArtifactRef] = []
    for a in template.outputs.artifacts:
        try:
            ref = resolve_artifact(a, scope)
        except WorkflowError as e:
            return Collected(outputs=NodeIO(parameters=tuple(params)), error=f"outputs.artifacts.{a.name}: {e}")
        if ref is None:
            if a.optional:
                continue
            return Collected(
                outputs=NodeIO(parameters=tuple(params), artifacts=tuple(arts)),
                error=f"Unable to resolve outputs.artifacts.{a.name}",
            )
        arts.append(replace(ref, name=a.name))
    return Collected(outputs=NodeIO(parameters=tuple(params), artifacts=tuple(arts)))


def from_pod(template: Template, result: PodResult, *, scope: Scope) -> Collected:
    """Outputs of a pod: result, exit code, parameters from files (or defaults), artifacts saved."""
    stdout = result.result
    if stdout is not None and len(stdout) > _RESULT_LIMIT:
        stdout = stdout[-_RESULT_LIMIT:]
    exit_code = None if result.exit_code is None else str(result.exit_code)
    local = scope.copy()
    if stdout is not None:
        local.params["outputs.result"] = stdout
    if exit_code is not None:
        local.params["outputs.exitCode"] = exit_code
    params: list[tuple[str, str]] = []
    error: str | None = None
    for p in template.outputs.parameters:
        vf = p.value_from
        value: str | None = None
        if vf is not None and vf.path:
            value = result.output_parameters.get(p.name)
        elif vf is not None and (vf.expression or vf.parameter):
            try:
                value = resolve_parameter_from_scope(p.name, vf.parameter, vf.expression, local)
            except WorkflowError as e:
                error = error or f"outputs.parameters.{p.name}: {e}"
        elif p.value is not None:
            value = p.value
        if value is None and vf is not None and vf.default is not None:
            value = vf.default
        if value is None:
            if vf is not None and vf.path:
                error = error or f"failed to read outputs.parameters.{p.name} from {vf.path}: no such file"
            else:
                error = error or f"unable to resolve outputs.parameters.{p.name}"
            continue
        params.append((p.name, value))
        local.params[f"outputs.parameters.{p.name}"] = value
    arts = tuple(
        ArtifactRef(name=a.name, path=a.path, key=result.output_artifacts[a.name], archive_none=a.archive_none)
        for a in template.outputs.artifacts
        if a.name in result.output_artifacts
    )
    outputs = NodeIO(parameters=tuple(params), artifacts=arts, result=stdout, exit_code=exit_code)
    return Collected(outputs=outputs, error=error if result.phase is NodePhase.SUCCEEDED else None)


def global_outputs(template: Template, outputs: NodeIO) -> tuple[dict[str, str], dict[str, ArtifactRef]]:
    """Parameters and artifacts with a ``globalName``, keyed by that name."""
    params = {
        p.global_name: value
        for p in template.outputs.parameters
        if p.global_name and (value := outputs.parameter(p.name)) is not None
    }
    arts = {
        a.global_name: replace(ref, name=a.global_name)
        for a in template.outputs.artifacts
        if a.global_name and (ref := outputs.artifact(a.name)) is not None
    }
    return params, arts
