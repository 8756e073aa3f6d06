"""
From a resolved leaf template to a :class:`PodRequest` (pure).

Called by :mod:`.operator` when it creates a Pod node. The template has every ``{{...}}``
substituted; this module maps Argo's container/script/containerSet, sidecars, init containers,
volumes, artifacts and output specs onto the executor seam. Pod-level fields that only
Kubernetes honours are passed through untouched in ``pod_fields``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from workflows.errors import InvalidSpec
from workflows.executors.base import (
    Container,
    File,
    InputArtifact,
    OutputArtifact,
    OutputParameter,
    PodRequest,
    Probe,
    Volume,
    VolumeMount,
)
from workflows.model.ids import NodeId
from workflows.model.spec import Artifact, Template, TemplateKind, WorkflowSpec
from workflows.templating import substitute

SCRIPT_PATH: Final = "/argo/staging/script"
_QUANTITY: Final = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX: Final = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "m": 1e-3,
}


def memory_bytes(quantity: object, *, path: str) -> int:
    """A Kubernetes quantity (``64Mi``, ``1G``, ``500000``) in bytes."""
    m = _QUANTITY.match(str(quantity).strip())
    if not m or m.group(2) not in _SUFFIX:
        raise InvalidSpec(path, f"invalid quantity {quantity!r}")
    return int(float(m.group(1)) * _SUFFIX[m.group(2)])


def _strs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in value)


def _probe(raw: Mapping[str, Any] | None) -> Probe | None:
    if not raw:
        return None
    common: dict[str, Any] = {
        "initial_delay_seconds": float(raw.get("initialDelaySeconds", 0)),
        "period_seconds": float(raw.get("periodSeconds", 10)),
        "timeout_seconds": float(raw.get("timeoutSeconds", 1)),
        "failure_threshold": int(raw.get("failureThreshold", 3)),
    }
    if "exec" in raw:
        return Probe(exec_command=_strs(raw["exec"].get("command")), **common)
    if "httpGet" in raw:
        http = raw["httpGet"]
        return Probe(
            http_path=str(http.get("path", "/")),
            http_port=int(http.get("port", 80)),
            http_scheme=str(http.get("scheme", "HTTP")),
            **common,
        )
    if "tcpSocket" in raw:
        return Probe(tcp_port=int(raw["tcpSocket"].get("port", 0)), **common)
    return None


def _mounts(raw: Sequence[Mapping[str, Any]] | None) -> tuple[VolumeMount, ...]:
    return tuple(
        VolumeMount(
            name=str(m.get("name", "")),
            mount_path=str(m.get("mountPath", "")),
            sub_path=m.get("subPath"),
            read_only=bool(m.get("readOnly", False)),
        )
        for m in raw or ()
    )


def _env(raw: Sequence[Mapping[str, Any]] | None) -> tuple[tuple[str, str], ...]:
    # valueFrom (secretKeyRef, fieldRef, ...) needs a cluster; it stays in `raw` for Kubernetes.
    return tuple((str(e["name"]), str(e.get("value", ""))) for e in raw or () if "name" in e and "valueFrom" not in e)


def container(raw: Mapping[str, Any], *, name: str, path: str, extra_args: tuple[str, ...] = (),
              extra_mounts: tuple[VolumeMount, ...] = ()) -> Container:
    """One container from its wire form."""
    limits = (raw.get("resources") or {}).get("limits") or {}
    memory = memory_bytes(limits["memory"], path=f"{path}.resources.limits.memory") if "memory" in limits else None
    return Container(
        name=str(raw.get("name") or name),
        image=str(raw.get("image", "")),
        command=_strs(raw.get("command")),
        args=_strs(raw.get("args")) + extra_args,
        env=_env(raw.get("env")),
        working_dir=raw.get("workingDir"),
        volume_mounts=_mounts(raw.get("volumeMounts")) + extra_mounts,
        readiness_probe=_probe(raw.get("readinessProbe")),
        dependencies=_strs(raw.get("dependencies")),
        memory_limit_bytes=memory,
        raw=raw,
    )


def _volumes(template: Template, spec: WorkflowSpec) -> tuple[Volume, ...]:
    out: dict[str, Volume] = {}
    for raw in (*spec.volumes, *template.volumes):
        scope = "pod" if "emptyDir" in raw else "other"
        out[str(raw.get("name"))] = Volume(name=str(raw.get("name")), scope=scope, raw=raw)
    for claim in spec.volume_claim_templates:
        name = str((claim.get("metadata") or {}).get("name", ""))
        out[name] = Volume(name=name, scope="workflow", raw=claim)
    return tuple(out.values())


def output_key(*, namespace: str, workflow: str, pod_name: str, artifact: Artifact) -> str:
    """Where an output artifact goes in the artifact store: its own key, or one per pod."""
    if artifact.key:
        return artifact.key.lstrip("/")
    suffix = "" if artifact.archive_none else ".tgz"
    return f"{namespace}/{workflow}/{pod_name}/{artifact.name}{suffix}"


def input_artifact(art: Artifact) -> InputArtifact:
    """An input artifact whose location is known (raw, stored key, git, http)."""
    return InputArtifact(
        name=art.name,
        path=art.path or "",
        raw_data=art.raw_data,
        key=art.key,
        archive_none=art.archive_none,
        git=art.git,
        http_url=art.http_url,
        sub_path=art.sub_path,
        mode=art.mode,
        optional=art.optional,
    )


def build_pod(
    template: Template,
    *,
    spec: WorkflowSpec,
    node_id: NodeId,
    pod_name: str,
    namespace: str,
    workflow_name: str,
    workflow_uid: str,
    attempt: int,
    input_artifacts: Sequence[Artifact],
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    path: str,
    global_params: Mapping[str, str] | None = None,
) -> PodRequest:
    """The pod of a container, script or containerSet template.

    ``global_params`` are substituted into the workflow-level pod fields (the template's own
    were substituted with the template), as Argo substitutes its global variables into the spec.
    """
    files: list[File] = []
    if template.kind is TemplateKind.CONTAINER_SET:
        cs = template.container_set or {}
        shared = _mounts(cs.get("volumeMounts"))
        mains = tuple(
            container(c, name=f"c{i}", path=f"{path}.containerSet.containers[{i}]", extra_mounts=shared)
            for i, c in enumerate(cs.get("containers") or ())
        )
        result_container = "main"
    else:
        raw = template.container or {}
        extra: tuple[str, ...] = ()
        if template.kind is TemplateKind.SCRIPT:
            files.append(File(path=SCRIPT_PATH, content=str(raw.get("source", "")).encode(), mode=0o755))
            extra = (SCRIPT_PATH,)
        key = "script" if template.kind is TemplateKind.SCRIPT else "container"
        mains = (container(raw, name="main", path=f"{path}.{key}", extra_args=extra),)
        mains = (_renamed(mains[0], "main"),)
        result_container = "main"
    main_mounts = mains[0].volume_mounts if mains else ()
    sidecars = tuple(
        container(
            s, name=f"sidecar-{i}", path=f"{path}.sidecars[{i}]",
            extra_mounts=main_mounts if s.get("mirrorVolumeMounts") else (),
        )
        for i, s in enumerate(template.sidecars)
    )
    inits = tuple(
        container(
            c, name=f"init-{i}", path=f"{path}.initContainers[{i}]",
            extra_mounts=main_mounts if c.get("mirrorVolumeMounts") else (),
        )
        for i, c in enumerate(template.init_containers)
    )
    outputs_params = tuple(
        OutputParameter(name=p.name, path=p.value_from.path)
        for p in template.outputs.parameters
        if p.value_from is not None and p.value_from.path
    )
    outputs_arts = tuple(
        OutputArtifact(
            name=a.name,
            path=a.path,
            key=output_key(namespace=namespace, workflow=workflow_name, pod_name=pod_name, artifact=a),
            archive_none=a.archive_none,
            compression_level=a.compression_level,
            optional=a.optional,
        )
        for a in template.outputs.artifacts
        if a.path
    )
    workflow_fields = spec.pod_fields
    if workflow_fields and global_params:
        workflow_fields = substitute(dict(workflow_fields), {**global_params, "pod.name": pod_name},
                                     allow_unresolved=True)
    pod_fields = {**workflow_fields, **template.pod_fields}
    patches = tuple(f["podSpecPatch"] for f in (workflow_fields, template.pod_fields) if f.get("podSpecPatch"))
    if len(patches) > 1:
        pod_fields["podSpecPatch"] = patches  # Argo applies both: the workflow's, then the template's
    if template.active_deadline_seconds is not None:
        pod_fields["activeDeadlineSeconds"] = template.active_deadline_seconds
    return PodRequest(
        node_id=node_id,
        pod_name=pod_name,
        namespace=namespace,
        workflow_name=workflow_name,
        workflow_uid=workflow_uid,
        template_name=template.name,
        main=mains,
        result_container=result_container,
        init_containers=inits,
        sidecars=sidecars,
        volumes=_volumes(template, spec),
        files=tuple(files),
        input_artifacts=tuple(input_artifact(a) for a in input_artifacts if a.path),
        output_parameters=outputs_params,
        output_artifacts=outputs_arts,
        daemon=template.daemon,
        attempt=attempt,
        labels=labels,
        annotations=annotations,
        pod_fields=pod_fields,
    )


def _renamed(c: Container, name: str) -> Container:
    return dataclasses.replace(c, name=name)
