"""
YAML/JSON manifests on disk or in memory -> plain documents -> :class:`~workflows.model.spec.Workflow`.

Called by ``gittrigger lint``/``run``, the HTTP API (submitted YAML) and the sensor trigger layer.
Manifests come from users and Git pushes, so the loader is bounded: file size, nesting depth, alias
uses and the size the document would have once aliases are expanded ("billion laughs") are all
capped, and each refusal names the file and, where the parser knows it, the line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from workflows.errors import InvalidSpec, TooLarge
from workflows.model.spec import Workflow
from workflows.model.wire import parse_object

MAX_BYTES: Final = 2 * 1024 * 1024
MAX_DEPTH: Final = 100
MAX_ALIASES: Final = 100
MAX_NODES: Final = 1_000_000  # expanded node count of one document; a 2 MiB file has far fewer
SUFFIXES: Final = frozenset({".yaml", ".yml", ".json"})


class _Refused(Exception):
    """Raised inside the loader; turned into TooLarge with the source name outside it."""

    def __init__(self, message: str, mark: yaml.Mark | None) -> None:
        super().__init__(f"line {mark.line + 1}: {message}" if mark is not None else message)


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses deep nesting, many aliases and documents that explode when expanded."""

    max_depth = MAX_DEPTH
    max_aliases = MAX_ALIASES
    max_nodes = MAX_NODES

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > self.max_aliases:
                raise _Refused(f"more than {self.max_aliases} alias uses", self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        # Checked while composing, before PyYAML's own recursion could hit Python's limit.
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise _Refused(f"nesting deeper than {self.max_depth} levels", self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: yaml.Node) -> Any:
        self._check_expansion(node)
        return super().construct_document(node)

    def _check_expansion(self, root: yaml.Node) -> None:
        """Expanded size and depth of the node graph, shared (aliased) nodes counted each time used."""
        sizes: dict[int, tuple[int, int]] = {}
        active: set[int] = set()

        def measure(node: yaml.Node) -> tuple[int, int]:
            key = id(node)
            if key in sizes:
                return sizes[key]
            if key in active:
                raise _Refused("recursive alias", node.start_mark)
            active.add(key)
            size, depth = 1, 0
            children: list[yaml.Node] = []
            if isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            elif isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            for child in children:
                child_size, child_depth = measure(child)
                size, depth = size + child_size, max(depth, child_depth)
            active.discard(key)
            depth += 1
            if size > self.max_nodes:
                raise _Refused(f"expands to more than {self.max_nodes} nodes (alias bomb?)", node.start_mark)
            if depth > self.max_depth:
                raise _Refused(f"nesting deeper than {self.max_depth} levels once aliases expand",
                               node.start_mark)
            sizes[key] = (size, depth)
            return size, depth

        measure(root)


def load_documents(
    text: str | bytes,
    *,
    source: str,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_aliases: int = MAX_ALIASES,
    max_nodes: int = MAX_NODES,
) -> list[dict[str, Any]]:
    """The non-empty documents of a multi-document YAML (or JSON) text; each must be a mapping."""
    return [doc for _, doc in _documents(
        text, source=source, max_bytes=max_bytes, max_depth=max_depth, max_aliases=max_aliases,
        max_nodes=max_nodes,
    )]


def _documents(
    text: str | bytes, *, source: str, max_bytes: int, max_depth: int, max_aliases: int, max_nodes: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(document index in the file, document) for each non-empty document."""
    size = len(text) if isinstance(text, bytes) else len(text.encode())
    if size > max_bytes:
        raise TooLarge(f"{source}: {size} bytes is over the limit of {max_bytes} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise InvalidSpec(source, f"not UTF-8 text: {e}") from None
    loader_class = type("_Loader", (_BoundedLoader,), {
        "max_depth": max_depth, "max_aliases": max_aliases, "max_nodes": max_nodes,
    })
    loader = loader_class(text)
    try:
        index = 0
        while loader.check_data():
            doc = loader.get_data()
            if doc is not None:
                if not isinstance(doc, dict):
                    kind = type(doc).__name__
                    raise InvalidSpec(source, f"document {index + 1} must be a mapping, got {kind}")
                yield index, doc
            index += 1
    except _Refused as e:
        raise TooLarge(f"{source}: {e}") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise InvalidSpec(source, f"{where}{e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise InvalidSpec(source, str(e)) from None
    finally:
        loader.dispose()


def manifest_files(paths: Sequence[Path]) -> list[Path]:
    """The files named, and the ``*.yaml|*.yml|*.json`` files under directories named, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES))
        else:
            files.append(path)
    return files


def load_paths(paths: Sequence[Path], *, max_bytes: int = MAX_BYTES) -> list[tuple[str, dict[str, Any]]]:
    """(source, document) for each non-empty document of the given files and directories.

    ``source`` is the file name, with ``#<n>`` (1-based document number) appended when the
    file holds several documents, so messages point at the right one.
    """
    out: list[tuple[str, dict[str, Any]]] = []
    for file in manifest_files(paths):
        try:
            size = file.stat().st_size
            if size > max_bytes:
                raise TooLarge(f"{file}: {size} bytes is over the limit of {max_bytes} bytes")
            text = file.read_bytes()
        except OSError as e:
            raise InvalidSpec(str(file), f"cannot read: {e.strerror}") from None
        docs = list(_documents(
            text, source=str(file), max_bytes=max_bytes, max_depth=MAX_DEPTH, max_aliases=MAX_ALIASES,
            max_nodes=MAX_NODES,
        ))
        multi = len(docs) > 1 or any(index > 0 for index, _ in docs)
        out.extend((f"{file}#{index + 1}" if multi else str(file), doc) for index, doc in docs)
    return out


def parse_sourced(source: str, raw: Mapping[str, Any]) -> Workflow:
    """parse_object, with errors prefixed by the source (``ci.yaml: spec.templates[0].name: ...``)."""
    try:
        return parse_object(raw)
    except InvalidSpec as e:
        raise InvalidSpec(f"{source}: {e.path}" if e.path else source, e.message) from None


def load_objects(paths: Sequence[Path], *, max_bytes: int = MAX_BYTES) -> list[Workflow]:
    """Every Argo object in the given files and directories, parsed; the first error is raised."""
    return [parse_sourced(source, doc) for source, doc in load_paths(paths, max_bytes=max_bytes)]
