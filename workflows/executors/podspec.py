"""
From a resolved :class:`~workflows.executors.base.PodRequest` to the Kubernetes Pod (pure).

Called by :mod:`workflows.executors.kubernetes` before it creates a Pod, and for the
``volumeClaimTemplates`` claims it creates per run. The Pod follows ``docs/kubernetes-pods.md``:
an ``init`` helper stages files and input artifacts into the shared ``var-run-gittrigger``
volume, every main container runs under the ``emissary`` (which saves outputs there), sidecars
are native sidecars, and a ``wait`` helper reports the result. This module and
:mod:`workflows.model.wire` are the only ones that know Pod wire names. Same request, same dict:
nothing here reads a clock or randomness, so a re-created Pod is identical.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from workflows.errors import InvalidSpec
from workflows.executors.base import Container, PodRequest, VolumeMount
from workflows.executors.podplan import outputs_env, plan_for
from workflows.loading import load_documents
from workflows.model.durations import parse_duration
from workflows.model.ids import fnv32a

HELPER_VOLUME: Final = "var-run-gittrigger"
HELPER_DIR: Final = "/var/run/gittrigger"
EMISSARY: Final = f"{HELPER_DIR}/emissary"
LABEL_WORKFLOW: Final = "workflows.argoproj.io/workflow"
LABEL_COMPLETED: Final = "workflows.argoproj.io/completed"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "gittrigger"
ANNOTATION_NODE_ID: Final = "workflows.argoproj.io/node-id"
ANNOTATION_NODE_NAME: Final = "workflows.argoproj.io/node-name"
HOSTNAME_LABEL: Final = "kubernetes.io/hostname"
HELPER_NAMES: Final = frozenset({"init", "wait"})

_MAX_LABEL: Final = 63
_MAX_NAME: Final = 253
_LABEL_VALUE: Final = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
# V1Container's fields: Argo's own keys (script `source`, containerSet `dependencies`,
# `mirrorVolumeMounts`) must not reach the API server, which rejects unknown fields.
_CONTAINER_FIELDS: Final = frozenset({
    "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources", "resizePolicy",
    "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe",
    "lifecycle", "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext",
    "stdin", "stdinOnce", "tty",
})
# Pod-level fields copied from PodRequest.pod_fields as they are (workflow or template level).
_POD_SPEC_FIELDS: Final = (
    "nodeSelector", "tolerations", "affinity", "securityContext", "serviceAccountName", "schedulerName",
    "automountServiceAccountToken", "hostAliases", "dnsPolicy", "dnsConfig", "hostNetwork", "runtimeClassName",
)
# Strategic merge patch: list fields merged by key (from the Kubernetes OpenAPI
# x-kubernetes-patch-merge-key); every other list is replaced whole, every map merged.
_MERGE_KEYS: Final[Mapping[str, Mapping[str, str]]] = {
    "PodSpec": {
        "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "volumes": "name",
        "imagePullSecrets": "name", "resourceClaims": "name", "schedulingGates": "name", "hostAliases": "ip",
        "topologySpreadConstraints": "topologyKey",
    },
    "Container": {"env": "name", "ports": "containerPort", "volumeMounts": "mountPath", "volumeDevices": "devicePath"},
}
_ITEM_KIND: Final = {"containers": "Container", "initContainers": "Container", "ephemeralContainers": "Container"}


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


def _helper_resources() -> Mapping[str, Any]:
    return MappingProxyType({"requests": {"cpu": "10m", "memory": "64Mi"}})


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageCommand:
    """An image's ENTRYPOINT and CMD, for containers that give no ``command`` (Argo's ``images`` config)."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PodConfig:
    """What the executor adds to every Pod (filled from ``KubernetesSettings``).

    ``default_resources`` (``{"requests": {...}, "limits": {...}}``) applies to main containers
    per resource, the container's own values winning; ``artifact_token`` is the run's token for
    the artifact API; ``images`` names the command of images used without one.
    """

    helper_image: str
    server_url: str
    artifact_token: str
    namespace: str | None = None  # None: the workflow's namespace
    service_account: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    default_resources: Mapping[str, Mapping[str, str]] = field(default_factory=_empty)
    helper_resources: Mapping[str, Mapping[str, str]] = field(default_factory=_helper_resources)
    labels: Mapping[str, str] = field(default_factory=_empty)
    images: Mapping[str, ImageCommand] = field(default_factory=_empty)


def build_pod(pod: PodRequest, *, config: PodConfig) -> dict[str, Any]:
    """The V1Pod (wire JSON) that runs ``pod``; raise InvalidSpec for what no Pod can express."""
    _check_names(pod)
    outputs = _outputs_env(pod)
    mains = [_main(c, pod=pod, config=config, outputs=outputs) for c in pod.main]
    mirror = [m for m in (mains[0]["volumeMounts"] if mains else ()) if m["mountPath"] != HELPER_DIR]
    plan = _plan_env(pod, server_url=config.server_url)
    init_containers = [_helper("init", plan=plan, config=config)]
    init_containers += [_user(c, mirror=mirror) for c in pod.init_containers]
    init_containers += [{**_user(c, mirror=mirror), "restartPolicy": "Always"} for c in pod.sidecars]
    containers = [*mains, _helper("wait", plan=plan, config=config)]
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "initContainers": init_containers,
        "containers": containers,
        "volumes": _volumes(pod, [*init_containers, *containers]),
    }
    fields = pod.pod_fields
    spec.update((k, copy.deepcopy(fields[k])) for k in _POD_SPEC_FIELDS if fields.get(k) is not None)
    if "serviceAccountName" not in spec and config.service_account:
        spec["serviceAccountName"] = config.service_account
    priority_class = fields.get("priorityClassName") or fields.get("podPriorityClassName")
    if priority_class:
        spec["priorityClassName"] = str(priority_class)
    secrets = [*(fields.get("imagePullSecrets") or ()), *({"name": s} for s in config.image_pull_secrets)]
    if secrets:
        spec["imagePullSecrets"] = _unique(secrets, key="name")
    if fields.get("activeDeadlineSeconds") is not None:
        deadline = parse_duration(fields["activeDeadlineSeconds"], path="activeDeadlineSeconds")
        spec["activeDeadlineSeconds"] = max(1, math.ceil(deadline.total_seconds()))
    for patch in _patches(fields.get("podSpecPatch")):
        spec = strategic_merge(spec, patch)
    if pod.avoid_hosts:  # after the patches, so a patched affinity cannot drop it
        spec["affinity"] = avoid_hosts(spec.get("affinity"), pod.avoid_hosts)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _metadata(pod, config), "spec": spec}


def claim_name(workflow: str, claim: str) -> str:
    """The PVC of a ``volumeClaimTemplates`` claim in one run: ``<workflow>-<claim>`` (Argo's name)."""
    name = f"{workflow}-{claim}"
    return name if len(name) <= _MAX_NAME else _hashed(name, _MAX_NAME, source=name)


def claims_for(workflow_raw: Mapping[str, Any], *, namespace: str | None = None) -> list[dict[str, Any]]:
    """The PersistentVolumeClaims of a run's ``spec.volumeClaimTemplates``, for the executor to create."""
    meta = workflow_raw.get("metadata") or {}
    workflow = str(meta.get("name", ""))
    out: list[dict[str, Any]] = []
    for i, claim in enumerate((workflow_raw.get("spec") or {}).get("volumeClaimTemplates") or ()):
        claim_meta = claim.get("metadata") or {}
        if not claim_meta.get("name"):
            raise InvalidSpec(f"spec.volumeClaimTemplates[{i}].metadata.name", "is required")
        labels = {str(k): label_value(str(v)) for k, v in (claim_meta.get("labels") or {}).items()}
        labels.update({LABEL_WORKFLOW: label_value(workflow), LABEL_MANAGED_BY: MANAGED_BY})
        metadata: dict[str, Any] = {"name": claim_name(workflow, str(claim_meta["name"])), "labels": labels}
        if namespace or meta.get("namespace"):
            metadata["namespace"] = namespace or str(meta["namespace"])
        if claim_meta.get("annotations"):
            metadata["annotations"] = {str(k): str(v) for k, v in claim_meta["annotations"].items()}
        out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata,
                    "spec": copy.deepcopy(dict(claim.get("spec") or {}))})
    return out


def label_value(text: str) -> str:
    """``text`` if it is a valid label value, else a valid one: cleaned, cut and suffixed with its hash."""
    if len(text) <= _MAX_LABEL and _LABEL_VALUE.match(text):
        return text
    return _hashed(re.sub(r"[^-A-Za-z0-9_.]", "-", text), _MAX_LABEL, source=text)


def images_without_command(pod: PodRequest) -> tuple[str, ...]:
    """Images of main containers that give no command: their entrypoint must be in ``PodConfig.images``."""
    return tuple(dict.fromkeys(c.image for c in pod.main if not c.command))


def avoid_hosts(affinity: Mapping[str, Any] | None, hosts: Sequence[str]) -> dict[str, Any]:
    """``affinity`` with a required ``kubernetes.io/hostname NotIn hosts`` (retry anti-affinity).

    Node selector terms are ORed, so the requirement joins every term (Argo adds it to the
    first only, which lets a retry land on a failed host through any other term); an existing
    hostname NotIn in a term is widened instead.
    """
    out = copy.deepcopy(dict(affinity or {}))
    node = out.setdefault("nodeAffinity", {})
    required = node.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    terms = required.get("nodeSelectorTerms") or [{}]
    for term in terms:
        expressions = term.setdefault("matchExpressions", [])
        existing = next((e for e in expressions if e.get("key") == HOSTNAME_LABEL and e.get("operator") == "NotIn"),
                        None)
        if existing is None:
            expressions.append({"key": HOSTNAME_LABEL, "operator": "NotIn", "values": list(dict.fromkeys(hosts))})
        else:
            existing["values"] = list(dict.fromkeys([*existing.get("values", ()), *hosts]))
    required["nodeSelectorTerms"] = terms
    return out


def strategic_merge(original: Mapping[str, Any], patch: Mapping[str, Any], *, kind: str = "PodSpec") -> dict[str, Any]:
    """Kubernetes' strategic merge patch of a PodSpec (or a Container), as Argo applies ``podSpecPatch``.

    Maps merge recursively and ``null`` deletes a key; lists with a merge key (containers by
    name, env by name, volumeMounts by mountPath, ...) merge item by item, new items appended;
    other lists are replaced. Directives: ``$patch: replace`` / ``delete`` on a map or list
    item, ``{"$patch": "replace"}`` as a list item, ``$retainKeys``; other ``$`` keys are ignored.
    """
    merged = _merge_map(original, patch, kind)
    return merged if merged is not None else {}


def _merge_map(original: Any, patch: Mapping[str, Any], kind: str | None) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    body = {k: v for k, v in patch.items() if not str(k).startswith("$")}
    if directive == "replace":
        return copy.deepcopy(body)
    out = copy.deepcopy(dict(original)) if isinstance(original, Mapping) else {}
    keys = _MERGE_KEYS.get(kind or "", {})
    for key, value in body.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list) and key in keys:
            out[key] = _merge_list(out.get(key), value, merge_key=keys[key], kind=_ITEM_KIND.get(key))
        elif isinstance(value, Mapping):
            merged = _merge_map(out.get(key), value, None)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        else:
            out[key] = copy.deepcopy(value)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(original: Any, patch: list[Any], *, merge_key: str, kind: str | None) -> list[Any]:
    if any(isinstance(p, Mapping) and p.get("$patch") == "replace" and len(p) == 1 for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, Mapping) and "$patch" in p)]
    out: list[Any] = copy.deepcopy(list(original)) if isinstance(original, list) else []
    for item in patch:
        if not isinstance(item, Mapping) or merge_key not in item:
            out.append(copy.deepcopy(item))
            continue
        at = next((i for i, o in enumerate(out) if isinstance(o, Mapping) and o.get(merge_key) == item[merge_key]),
                  None)
        merged = _merge_map(out[at] if at is not None else None, item, kind)
        if at is None:
            if merged is not None:
                out.append(merged)
        elif merged is None:
            del out[at]
        else:
            out[at] = merged
    return out


def parse_patch(text: Any) -> dict[str, Any]:
    """A ``podSpecPatch`` (JSON or YAML text, or already a map) as a map."""
    if isinstance(text, Mapping):
        return dict(text)
    try:
        docs = load_documents(str(text), source="podSpecPatch")
    except InvalidSpec as e:
        raise InvalidSpec("podSpecPatch", f"is not JSON or YAML: {e}") from None
    if len(docs) != 1:
        raise InvalidSpec("podSpecPatch", f"must be one map, got {len(docs)} documents")
    return docs[0]


def _patches(value: Any) -> list[dict[str, Any]]:
    if not value:
        return []
    if isinstance(value, list | tuple):
        return [parse_patch(v) for v in value if v]
    return [parse_patch(value)]


# -- containers ----------------------------------------------------------------------------


def _check_names(pod: PodRequest) -> None:
    seen: set[str] = set()
    for c in (*pod.main, *pod.init_containers, *pod.sidecars):
        if c.name in HELPER_NAMES:
            raise InvalidSpec(c.name, f"container name {c.name!r} is reserved for gittrigger's helper")
        if c.name in seen:
            raise InvalidSpec(c.name, f"container name {c.name!r} is used twice in one pod")
        seen.add(c.name)
    if any(v.name == HELPER_VOLUME for v in pod.volumes):
        raise InvalidSpec("volumes", f"volume name {HELPER_VOLUME!r} is reserved for gittrigger's helper")


def _mount(m: VolumeMount) -> dict[str, Any]:
    out: dict[str, Any] = {"name": m.name, "mountPath": m.mount_path}
    if m.sub_path:
        out["subPath"] = m.sub_path
    if m.read_only:
        out["readOnly"] = True
    return out


def _user(c: Container, *, mirror: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A container as the user wrote it, with the mounts the request adds (containerSet, mirrored)."""
    body: dict[str, Any] = {"name": c.name}
    body.update((k, copy.deepcopy(v)) for k, v in c.raw.items() if k in _CONTAINER_FIELDS and k != "name")
    if c.image:
        body["image"] = c.image
    if c.command:
        body["command"] = list(c.command)
    if c.args:
        body["args"] = list(c.args)
    mounts = [*(body.get("volumeMounts") or ()), *(_mount(m) for m in c.volume_mounts)]
    if c.raw.get("mirrorVolumeMounts"):
        mounts += mirror
    if mounts:
        body["volumeMounts"] = _unique(mounts, key="mountPath")
    return body


def _main(c: Container, *, pod: PodRequest, config: PodConfig, outputs: str) -> dict[str, Any]:
    """A main container: the user's command run by the emissary, staged files and artifacts mounted."""
    body = _user(c)
    command, args = list(c.command), list(c.args)
    if not command:
        image = config.images.get(c.image)
        if image is None:
            raise InvalidSpec(f"{c.name}.command", f"image {c.image!r} is used without a command: give the "
                              "container a command, or list the image's entrypoint in the executor's images")
        command, args = list(image.entrypoint), args or list(image.cmd)
    body["command"] = [EMISSARY, "--", *command, *args]
    body.pop("args", None)
    ours = {"GITTRIGGER_CONTAINER": c.name, "GITTRIGGER_OUTPUTS": outputs}
    env = [e for e in body.get("env") or () if e.get("name") not in ours]
    body["env"] = env + [{"name": k, "value": v} for k, v in ours.items()]
    mounts = [*(body.get("volumeMounts") or ()), {"name": HELPER_VOLUME, "mountPath": HELPER_DIR}]
    mounts += [{"name": HELPER_VOLUME, "mountPath": f.path, "subPath": f"inputs/{i}"} for i, f in enumerate(pod.files)]
    mounts += [{"name": HELPER_VOLUME, "mountPath": a.path, "subPath": f"artifacts/{i}"}
               for i, a in enumerate(pod.input_artifacts) if a.path]
    body["volumeMounts"] = _unique(mounts, key="mountPath")
    resources = _resources(body.get("resources") or {}, config.default_resources)
    body.pop("resources", None)
    if resources:
        body["resources"] = resources
    return body


def _resources(own: Mapping[str, Any], defaults: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """The container's resources over the defaults, per resource name. A default request is left
    out where the container sets that resource's limit (it could exceed it; Kubernetes then
    defaults the request to the limit)."""
    out = copy.deepcopy(dict(own))
    own_limits = own.get("limits") or {}
    for section in ("requests", "limits"):
        given = defaults.get(section) or {}
        merged = {k: v for k, v in given.items() if not (section == "requests" and k in own_limits)}
        merged.update(own.get(section) or {})
        if merged:
            out[section] = merged
    return out


def _helper(name: str, *, plan: str, config: PodConfig) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "image": config.helper_image,
        "command": ["gittrigger", f"pod-{name}"],
        "env": [{"name": "GITTRIGGER_POD", "value": plan},
                {"name": "GITTRIGGER_ARTIFACT_TOKEN", "value": config.artifact_token}],
        "volumeMounts": [{"name": HELPER_VOLUME, "mountPath": HELPER_DIR}],
    }
    if config.helper_resources:
        body["resources"] = copy.deepcopy(dict(config.helper_resources))
    return body


def _outputs_env(pod: PodRequest) -> str:
    """``GITTRIGGER_OUTPUTS`` for the emissary: the plan's output indexes and paths (podplan escapes)."""
    return outputs_env(plan_for(pod, server_url=""))


def _plan_env(pod: PodRequest, *, server_url: str) -> str:
    """``GITTRIGGER_POD``: what the init and wait helpers do (shape owned by podplan)."""
    return plan_for(pod, server_url=server_url).to_env()


# -- pod level -----------------------------------------------------------------------------


def _volumes(pod: PodRequest, containers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The helper volume, then the request's volumes that some container mounts (Argo adds only
    referenced ones: an unmounted ReadWriteOnce claim would still pin the pod to its node)."""
    used = {m["name"] for c in containers for m in c.get("volumeMounts") or ()}
    out: list[dict[str, Any]] = [{"name": HELPER_VOLUME, "emptyDir": {}}]
    for v in pod.volumes:
        if v.name not in used:
            continue
        if v.scope == "workflow":
            out.append({"name": v.name, "persistentVolumeClaim": {"claimName": claim_name(pod.workflow_name, v.name)}})
        else:
            out.append({**copy.deepcopy(dict(v.raw)), "name": v.name})
    return out


def _metadata(pod: PodRequest, config: PodConfig) -> dict[str, Any]:
    """Labels, lowest precedence first: executor, workflow podMetadata, request, then the contract's
    own (so no template can hide a pod from the executor's selector)."""
    pod_meta = pod.pod_fields.get("podMetadata") or {}
    labels = {**config.labels, **(pod_meta.get("labels") or {}), **pod.labels,
              LABEL_WORKFLOW: pod.workflow_name, LABEL_MANAGED_BY: MANAGED_BY, LABEL_COMPLETED: "false"}
    annotations = {ANNOTATION_NODE_NAME: str(pod.node_id), **(pod_meta.get("annotations") or {}), **pod.annotations,
                   ANNOTATION_NODE_ID: str(pod.node_id)}
    return {
        "name": pod.pod_name,
        "namespace": config.namespace or pod.namespace,
        "labels": {str(k): label_value(str(v)) for k, v in labels.items()},
        "annotations": {str(k): str(v) for k, v in annotations.items()},
    }


def _hashed(text: str, limit: int, *, source: str) -> str:
    """``text`` cut to fit ``limit`` with ``-<fnv32a(source)>`` appended, so distinct sources stay
    distinct; starts and ends alphanumeric, as Kubernetes names and label values must."""
    suffix = f"{fnv32a(source):08x}"
    head = text[: limit - len(suffix) - 1].strip("-_.")
    return f"{head}-{suffix}" if head else suffix


def _unique(items: Sequence[Mapping[str, Any]], *, key: str) -> list[dict[str, Any]]:
    """Items with distinct ``key`` values, the first kept (Kubernetes rejects duplicates)."""
    seen: set[Any] = set()
    out: list[dict[str, Any]] = []
    for item in items:
        if item.get(key) not in seen:
            seen.add(item.get(key))
            out.append(dict(item))
    return out
