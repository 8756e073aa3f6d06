"""
The fake API server's pure rules: label and field selectors, Pod validation, node choice.

Used by :mod:`tests.kube.fakeapi` (list/watch filtering, 422 on create, its scheduler).
Messages follow apimachinery's wording, since a client may show them to users.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

HOSTNAME: Final = "kubernetes.io/hostname"
_DNS1123_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE: Final = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_SET_REQ: Final = re.compile(
    r"\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\)|(==|=|!=)\s*([A-Za-z0-9_.-]*))?\s*"
)
_FIELDS: Final = {
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.podIP",
    "status.nominatedNodeName",
}
Problem = tuple[str, str, str]  # (cause reason, field path, message)


class SelectorError(ValueError):
    """A selector the API server refuses (400 BadRequest)."""


@dataclass(frozen=True, slots=True)
class _Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!":
            return self.key not in labels
        if self.op in ("=", "in"):
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values  # "!=" and "notin" match a missing key


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """``a=b,c!=d,e in (x,y),f notin (z),g,!h``: every requirement must hold."""

    requirements: tuple[_Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        reqs = []
        for part in _split_outside_parens(text):
            m = _SET_REQ.fullmatch(part)
            if m is None or (m.group(1) and (m.group(3) or m.group(5))):
                raise SelectorError(f"unable to parse requirement: {part!r}")
            neg, key, set_op, set_values, op, value = m.groups()
            if set_op:
                reqs.append(_Requirement(key, set_op, frozenset(v.strip() for v in set_values.split(",") if v.strip())))
            elif op:
                reqs.append(_Requirement(key, "!=" if op == "!=" else "=", frozenset({value})))
            else:
                reqs.append(_Requirement(key, "!" if neg else "exists", frozenset()))
        return cls(tuple(reqs))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """``metadata.name=x,spec.nodeName!=y,status.phase=Running`` over the Pod fields the API indexes."""

    terms: tuple[tuple[str, bool, str], ...] = ()  # (field, equal, value)

    @classmethod
    def parse(cls, text: str) -> FieldSelector:
        terms = []
        for part in (p.strip() for p in text.split(",") if p.strip()):
            m = re.fullmatch(r"([A-Za-z.]+)\s*(==|=|!=)\s*(.*)", part)
            if m is None:
                raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
            if m.group(1) not in _FIELDS:
                raise SelectorError(f"field label not supported: {m.group(1)}")
            terms.append((m.group(1), m.group(2) != "!=", m.group(3)))
        return cls(tuple(terms))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for path, equal, value in self.terms:
            node: Any = obj
            for key in path.split("."):
                node = node.get(key) if isinstance(node, Mapping) else None
            if (str(node or "") == value) != equal:
                return False
        return True


def _split_outside_parens(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in parts if p.strip()]


def node_fits(spec: Mapping[str, Any], node: str) -> bool:
    """Whether ``spec``'s nodeSelector and required node affinity allow ``node``."""
    labels = {HOSTNAME: node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    return not terms or any(_term_fits(t, labels) for t in terms)  # terms are ORed


def _term_fits(term: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    exprs = term.get("matchExpressions") or []
    if not exprs and not term.get("matchFields"):
        return False  # an empty term matches nothing
    for e in exprs:
        key, op, values = e.get("key"), e.get("operator"), set(e.get("values") or [])
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(op, False)
        if not ok:
            return False
    for f in term.get("matchFields") or []:  # only metadata.name exists for nodes
        name_in = labels[HOSTNAME] in set(f.get("values") or [])
        if (f.get("operator") == "In") != name_in:
            return False
    return True


def pick_node(spec: Mapping[str, Any], *, nodes: Iterable[str], load: Mapping[Any, int]) -> tuple[str | None, str]:
    """The least loaded node ``spec`` fits on (ties: the first), or None and the scheduler's message."""
    nodes = list(nodes)
    if spec.get("nodeName"):
        return str(spec["nodeName"]), ""
    fitting = [n for n in nodes if node_fits(spec, n)]
    if not fitting:
        n = len(nodes)
        return None, (
            f"0/{n} nodes are available: {n} node(s) didn't match Pod's node affinity/selector. "
            f"preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling."
        )
    return min(fitting, key=lambda name: (load.get(name, 0), nodes.index(name))), ""


K8S_SCHEMA_VERSION = "1.33.0"


def schema_problems(body: Mapping[str, Any], *, kind: str) -> list[Problem]:
    """What kubernetes-validate (strict: unknown fields are errors) finds wrong with a manifest."""
    import kubernetes_validate  # type: ignore[import-untyped]

    manifest = {"apiVersion": "v1", "kind": kind, **{k: v for k, v in body.items() if k != "status"}}
    try:
        kubernetes_validate.validate(manifest, K8S_SCHEMA_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in getattr(e, "path", ())) or "spec"
        return [("FieldValueInvalid", path, f"schema {K8S_SCHEMA_VERSION}: {e.message}")]
    return []


def validate_pod(body: Mapping[str, Any], *, name: str | None) -> list[Problem]:
    """The checks of the API server's Pod validation that a broken manifest of ours would hit."""
    problems: list[Problem] = []
    meta = body.get("metadata") or {}
    if not name:
        problems.append(("FieldValueRequired", "metadata.name", "Required value: name or generateName is required"))
    elif len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name):
        problems.append(
            (
                "FieldValueInvalid",
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        )
    for _key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
            problems.append(
                (
                    "FieldValueInvalid",
                    "metadata.labels",
                    f'Invalid value: "{value}": a valid label must be an empty string or consist of '
                    "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                    "character (must be no more than 63 characters)",
                )
            )
    spec = body.get("spec")
    if not isinstance(spec, Mapping):
        return [*problems, ("FieldValueRequired", "spec.containers", "Required value")]
    if spec.get("restartPolicy", "Always") not in ("Always", "OnFailure", "Never"):
        problems.append(
            (
                "FieldValueNotSupported",
                "spec.restartPolicy",
                f'Unsupported value: "{spec["restartPolicy"]}": supported values: "Always", "OnFailure", "Never"',
            )
        )
    volumes: set[str] = set()
    for i, v in enumerate(spec.get("volumes") or []):
        if v.get("name") in volumes:
            problems.append(("FieldValueDuplicate", f"spec.volumes[{i}].name", f'Duplicate value: "{v.get("name")}"'))
        volumes.add(str(v.get("name")))
    if not spec.get("containers"):
        problems.append(("FieldValueRequired", "spec.containers", "Required value"))
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            path = f"spec.{group}[{i}]"
            cname = c.get("name") if isinstance(c, Mapping) else None
            if not cname:
                problems.append(("FieldValueRequired", f"{path}.name", "Required value"))
            elif not _DNS1123_LABEL.fullmatch(str(cname)) or len(str(cname)) > 63:
                problems.append(
                    (
                        "FieldValueInvalid",
                        f"{path}.name",
                        f'Invalid value: "{cname}": a lowercase RFC 1123 label must consist of lower case '
                        "alphanumeric characters or '-'",
                    )
                )
            elif cname in seen:
                problems.append(("FieldValueDuplicate", f"{path}.name", f'Duplicate value: "{cname}"'))
            seen.add(str(cname))
            if not isinstance(c, Mapping):
                continue
            if not c.get("image"):
                problems.append(("FieldValueRequired", f"{path}.image", "Required value"))
            for j, m in enumerate(c.get("volumeMounts") or []):
                if m.get("name") not in volumes:
                    problems.append(
                        ("FieldValueNotFound", f"{path}.volumeMounts[{j}].name", f'Not found: "{m.get("name")}"')
                    )
                if not str(m.get("mountPath", "")).startswith("/"):
                    problems.append(("FieldValueRequired", f"{path}.volumeMounts[{j}].mountPath", "Required value"))
                if str(m.get("subPath", "")).startswith("/") or ".." in str(m.get("subPath", "")).split("/"):
                    problems.append(
                        (
                            "FieldValueInvalid",
                            f"{path}.volumeMounts[{j}].subPath",
                            f"Invalid value: \"{m.get('subPath')}\": must be a relative path without '..'",
                        )
                    )
    return problems
