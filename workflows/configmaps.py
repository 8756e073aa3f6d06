"""
ConfigMaps the engine reads: the sizes of ``synchronization`` semaphores.

Argo sizes a semaphore by a ConfigMap key (``configMapKeyRef: {name, key}``, the value an
integer). Outside a cluster the ConfigMaps come from the manifests the server loads (kind
``ConfigMap``, ``data``); :class:`ConfigMaps` holds them and answers the engine's
:meth:`limit` calls. Filled by :mod:`gittrigger.runtime` (start and reload); read by
:class:`workflows.engine.Engine`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from workflows.errors import InvalidSpec

Key = tuple[str, str]  # (namespace, name)


KIND = "ConfigMap"


def check_manifest(raw: Mapping[str, Any], *, source: str) -> Mapping[str, Any]:
    """``raw`` if it is a usable ConfigMap; InvalidSpec naming ``source`` and the field otherwise."""
    try:
        ConfigMaps([raw])
    except InvalidSpec as e:
        raise InvalidSpec(f"{source}: {e.path.removeprefix('ConfigMap[0].')}", e.message) from None
    return raw


class ConfigMaps:
    """ConfigMap ``data`` by (namespace, name); one without a namespace serves every namespace."""

    def __init__(self, manifests: Iterable[Mapping[str, Any]] = ()) -> None:
        self._data: dict[tuple[str | None, str], dict[str, str]] = {}
        self.replace(manifests)

    def replace(self, manifests: Iterable[Mapping[str, Any]]) -> None:
        """Swap in these ConfigMaps (all or nothing); raises InvalidSpec naming the bad field."""
        data: dict[tuple[str | None, str], dict[str, str]] = {}
        for i, manifest in enumerate(manifests):
            where = f"ConfigMap[{i}]"
            meta = manifest.get("metadata")
            if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str) or not meta["name"]:
                raise InvalidSpec(f"{where}.metadata.name", "is required")
            namespace = meta.get("namespace")
            if namespace is not None and not isinstance(namespace, str):
                raise InvalidSpec(f"{where}.metadata.namespace", "must be a string")
            values = manifest.get("data") or {}
            if not isinstance(values, Mapping):
                raise InvalidSpec(f"{where}.data", "must be a mapping of strings")
            data[(namespace, meta["name"])] = {str(k): str(v) for k, v in values.items()}
        self._data = data

    def get(self, namespace: str, name: str, key: str) -> str | None:
        found = self._data.get((namespace, name))
        if found is None:
            found = self._data.get((None, name))
        return None if found is None else found.get(key)

    def limit(self, namespace: str, name: str, key: str) -> int | None:
        """A semaphore's size: the key's value as a positive integer; None when absent or not one."""
        value = self.get(namespace, name, key)
        if value is None:
            return None
        try:
            number = int(value.strip())
        except ValueError:
            return None
        return number if number > 0 else None
