"""
Sensor manifests on disk or in memory -> :class:`~sensors.model.Sensor` values.

Called by the server runtime at start and on reload (``gittrigger serve``, ``--check``) and by
tests. Reading and YAML parsing are :mod:`workflows.loading`'s (bounded: size, depth, aliases);
this module keeps the documents of kind ``Sensor``, parses each with :func:`parse_sensor` and
prefixes every error with its source (``ci.yaml#2: spec.triggers[0].template.name: ...``), so a
bad file names itself. Other kinds (EventSource, WorkflowTemplate, ...) are skipped: one folder
holds a whole configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sensors.model import Sensor, parse_sensor
from workflows.errors import InvalidSpec
from workflows.loading import MAX_BYTES, load_documents, load_paths


def load_sensors(paths: Sequence[Path], *, max_bytes: int = MAX_BYTES) -> list[Sensor]:
    """Every Sensor in the given files and folders, in file order; the first error is raised."""
    return sensors_from_documents(load_paths(paths, max_bytes=max_bytes))


def load_sensors_text(text: str | bytes, *, source: str = "<text>") -> list[Sensor]:
    """Every Sensor in one YAML/JSON text (several documents allowed)."""
    docs = load_documents(text, source=source)
    if len(docs) == 1:
        return sensors_from_documents([(source, docs[0])])
    return sensors_from_documents((f"{source}#{i + 1}", doc) for i, doc in enumerate(docs))


def sensors_from_documents(documents: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Sensor]:
    """Parse the ``kind: Sensor`` documents of already loaded ``(source, document)`` pairs.

    Two sensors with the same namespace and name are refused: the second would silently shadow
    the first in the dispatcher's per-sensor state.
    """
    sensors: list[Sensor] = []
    seen: dict[tuple[str, str], str] = {}
    for source, doc in documents:
        if doc.get("kind") != "Sensor":
            continue
        try:
            sensor = parse_sensor(doc)
        except InvalidSpec as e:
            raise InvalidSpec(f"{source}: {e.path}" if e.path else source, e.message) from None
        key = (sensor.namespace, sensor.name)
        if key in seen:
            raise InvalidSpec(f"{source}: metadata.name",
                              f"sensor {sensor.name!r} is defined twice (first in {seen[key]})")
        seen[key] = source
        sensors.append(sensor)
    return sensors
