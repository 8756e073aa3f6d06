"""
Pure helpers shared by the stores: identity and metadata stamping, label/phase matching,
continue tokens, and the split of a run into its head and its ``status.nodes``.

Called by :mod:`.memory` and :mod:`.sqlite` so both stores do these things one way. Nothing
here touches I/O, a clock or a lock: callers pass ``now`` and the store-wide ``version``.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from workflows import jsontext
from workflows.errors import InvalidSpec
from workflows.store.base import ListOptions, RawObject

DEFAULT_NAMESPACE: Final = "default"
# Kubernetes' generateName alphabet (apimachinery utilrand): lowercase alphanumerics without
# vowels or look-alikes, so generated names never spell words or confuse 0/o, 1/l.
_SUFFIX_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"
SUFFIX_LENGTH: Final = 5
_MAX_NAME: Final = 63
GENERATE_ATTEMPTS: Final = 16  # collisions need 27**5 (14M) names per prefix to be likely


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Where an object goes: its namespace (None when cluster-scoped) and name or name prefix."""

    namespace: str | None
    name: str | None
    generate_name: str | None


def copy_json(value: Any) -> Any:
    """A deep copy through JSON, so both stores copy, and reject non-JSON values, the same way."""
    try:
        return jsontext.loads(jsontext.dumps(value), lenient=True)
    except (TypeError, ValueError) as e:
        raise InvalidSpec("", f"object is not JSON-serializable: {e}") from e


def loads(text: str | bytes) -> Any:
    """A value from its stored JSON text (what :func:`dumps` wrote, or an earlier version's
    encoder: ``NaN`` and ``Infinity`` included)."""
    return jsontext.loads(text, lenient=True)


def dumps(value: Any) -> str:
    """Compact JSON for storage; non-JSON values raise InvalidSpec."""
    try:
        return jsontext.dumps(value)
    except (TypeError, ValueError) as e:
        raise InvalidSpec("", f"object is not JSON-serializable: {e}") from e


def rfc3339(t: datetime) -> str:
    """RFC3339 in UTC with seconds (``2024-05-01T12:00:00Z``), as Kubernetes metadata times."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    """Parse a metadata timestamp (``Z`` or an offset) into an aware datetime."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def epoch_us(t: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken as UTC (log times, memo ages)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    delta = t - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def random_suffix() -> str:
    """Five random characters appended to ``generateName``. Stores call it through the module,
    so a test can replace it to force collisions."""
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(SUFFIX_LENGTH))


def identity(obj: Any, *, cluster_scoped: bool = False) -> Identity:
    """Read namespace/name/generateName; raise InvalidSpec naming ``metadata.name`` if neither."""
    if not isinstance(obj, Mapping):
        raise InvalidSpec("", "object must be a mapping")
    meta = obj.get("metadata")
    if meta is None:
        meta = {}
    if not isinstance(meta, Mapping):
        raise InvalidSpec("metadata", "must be a mapping")
    name, prefix = meta.get("name") or None, meta.get("generateName") or None
    if name is None and prefix is None:
        raise InvalidSpec("metadata.name", "name or generateName is required")
    for path, value in (("metadata.name", name), ("metadata.generateName", prefix)):
        if value is not None and not isinstance(value, str):
            raise InvalidSpec(path, f"must be a string, got {type(value).__name__}")
    namespace = None if cluster_scoped else (meta.get("namespace") or DEFAULT_NAMESPACE)
    if namespace is not None and not isinstance(namespace, str):
        raise InvalidSpec("metadata.namespace", "must be a string")
    return Identity(namespace=namespace, name=name, generate_name=prefix)


def candidate_name(ident: Identity) -> str:
    """The name to try: the given name, else generateName plus a fresh random suffix."""
    if ident.name is not None:
        return ident.name
    assert ident.generate_name is not None
    # Kubernetes keeps generated names within a DNS label: the prefix is cut to 63 - 5 characters.
    return ident.generate_name[: _MAX_NAME - SUFFIX_LENGTH] + random_suffix()


def stamp(
    obj: RawObject,
    *,
    namespace: str | None,
    name: str,
    version: int,
    uid: str | None = None,
    created: str | None = None,
    now: datetime,
) -> RawObject:
    """Set identity and server-owned metadata on ``obj`` (a copy the store owns) in place.

    ``uid``/``created`` are the stored values on replace (immutable, as in Kubernetes) and None
    on create, when they are minted. Returns ``obj``.
    """
    meta = obj.setdefault("metadata", {})
    meta["name"] = name
    if namespace is None:
        meta.pop("namespace", None)
    else:
        meta["namespace"] = namespace
    meta["uid"] = uid or str(uuid.uuid4())
    meta["creationTimestamp"] = created or rfc3339(now)
    meta["resourceVersion"] = str(version)
    return obj


def split_nodes(obj: RawObject) -> tuple[RawObject, dict[str, Any] | None]:
    """Split a run into its head (``status.nodes`` emptied) and its nodes, without copying them.

    The head keeps ``status.nodes: {}`` as a marker when the run had nodes, so joining gives back
    the same shape (no ``nodes`` key appears on a run that never had one).
    """
    status = obj.get("status")
    if not isinstance(status, Mapping) or "nodes" not in status:
        return dict(obj), None
    nodes = status["nodes"]
    if nodes is None:
        nodes = {}
    if not isinstance(nodes, Mapping):
        raise InvalidSpec("status.nodes", "must be a mapping of node id to node status")
    return {**obj, "status": {**status, "nodes": {}}}, dict(nodes)


def join_nodes(head: RawObject, nodes: Mapping[str, Any]) -> RawObject:
    """Put nodes back into a head made by :func:`split_nodes` (in place; returns ``head``)."""
    status = head.get("status")
    if isinstance(status, dict) and "nodes" in status:
        status["nodes"] = dict(nodes)
    return head


def phase_of(obj: Mapping[str, Any]) -> str:
    """``status.phase``, "" for a run not yet operated."""
    status = obj.get("status")
    phase = status.get("phase") if isinstance(status, Mapping) else None
    return phase if isinstance(phase, str) else ""


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """``metadata.labels`` as a plain dict (empty when absent)."""
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}


def matches(*, name: str, labels: Mapping[str, str], phase: str, options: ListOptions) -> bool:
    """Whether a run passes the list filters (Kubernetes selector semantics).

    ``label_not_equal`` matches runs without the label too, as the ``!=`` selector does.
    """
    if options.name_prefix and not name.startswith(options.name_prefix):
        return False
    if options.phases is not None and phase not in options.phases:
        return False
    if options.labels and any(labels.get(k) != v for k, v in options.labels.items()):
        return False
    if any(k not in labels for k in options.label_exists):
        return False
    unwanted = options.label_not_equal or {}
    return not any(labels.get(k) == v for k, v in unwanted.items())


def sort_key(created: str, seq: int) -> tuple[str, int]:
    """Order of lists: newest first by creationTimestamp, then by creation sequence.

    ``seq`` is the store version at creation, unique and increasing, so runs created in the same
    second keep a stable order, and a cursor on (created, seq) is stable under later inserts.
    """
    return (created, seq)


def encode_continue(created: str, seq: int) -> str:
    """An opaque token for the page after the run keyed (``created``, ``seq``)."""
    raw = json.dumps({"c": created, "s": seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[str, int]:
    """The cursor in a token from :func:`encode_continue`; InvalidSpec names ``continue``."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        created, seq = data["c"], data["s"]
    except (binascii.Error, ValueError, TypeError, KeyError) as e:
        raise InvalidSpec("continue", "malformed continue token") from e
    if not isinstance(created, str) or not isinstance(seq, int):
        raise InvalidSpec("continue", "malformed continue token")
    return created, seq


def check_options(options: ListOptions) -> int | None:
    """Validate list options; returns the page size (None or 0 means no limit, as in Kubernetes)."""
    if isinstance(options.phases, str):  # a bare "Running" would match by substring/characters
        raise InvalidSpec("phases", "must be a collection of phases, not a string")
    limit = options.limit
    if limit is not None and limit < 0:
        raise InvalidSpec("limit", f"must not be negative, got {limit}")
    return limit or None


def is_cluster_scoped(kind: str) -> bool:
    """Cluster-scoped kinds are the ``Cluster*`` ones (ClusterWorkflowTemplate); others are namespaced."""
    return kind.startswith("Cluster")


def memo_fresh(entry: Mapping[str, Any], *, max_age_seconds: float | None, now: datetime) -> bool:
    """Whether a memo entry is younger than ``max_age_seconds`` at ``now`` (always, without a max)."""
    if max_age_seconds is None:
        return True
    created = entry.get("creationTimestamp")
    if not isinstance(created, str):
        return False
    try:
        age_us = epoch_us(now) - epoch_us(parse_rfc3339(created))
    except ValueError:
        return False
    return age_us < max_age_seconds * 1_000_000
