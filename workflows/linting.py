"""
``gittrigger lint``: every problem in a set of manifest files, one printable line each.

Called by :mod:`gittrigger.cli` (and usable from CI). Loads files and directories with
:mod:`workflows.loading`, makes the WorkflowTemplates and ClusterWorkflowTemplates found among
them available to the others' ``templateRef``/``workflowTemplateRef``, and validates every
Argo object with :mod:`workflows.validation`. A file that does not load is one line and does
not stop the others. Documents of other kinds (Sensors, ConfigMaps, ...) are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from workflows.errors import InvalidSpec, WorkflowError
from workflows.loading import MAX_BYTES, load_paths, manifest_files, parse_sourced
from workflows.model.spec import ObjectKind, Workflow
from workflows.resolution import DictTemplateGetter
from workflows.validation import validate

_KINDS: Final = frozenset(kind.value for kind in ObjectKind)


def lint_paths(
    paths: Sequence[Path], *, getter_extra: Iterable[Workflow] = (), max_bytes: int = MAX_BYTES
) -> list[str]:
    """``<file>: <field path>: <message>`` for every problem; empty when everything is valid.

    ``getter_extra`` are further (Cluster)WorkflowTemplates that references may name, e.g. from
    the server's store or a shared templates folder.
    """
    lines: list[str] = []
    objects: list[tuple[str, Workflow]] = []
    for file in manifest_files(paths):
        try:
            documents = load_paths([file], max_bytes=max_bytes)
        except WorkflowError as e:
            lines.append(str(e) if str(e).startswith(str(file)) else f"{file}: {e}")
            continue
        for source, raw in documents:
            if raw.get("kind") not in _KINDS:
                continue
            try:
                objects.append((source, parse_sourced(source, raw)))
            except InvalidSpec as e:
                lines.append(str(e))
    getter = DictTemplateGetter([*getter_extra, *(obj for _, obj in objects)])
    for source, obj in objects:
        lines.extend(f"{source}: {problem}" for problem in validate(obj, getter=getter))
    return lines
