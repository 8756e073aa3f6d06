"""The pass's node tree: links between nodes stay in order, once each, across passes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from workflows.model.ids import NodeId
from workflows.model.status import NodeIO, NodePhase, NodeStatus, NodeType
from workflows.scheduling.tree import Tree

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _tree(memo: dict[Any, Any], nodes: dict[NodeId, NodeStatus] | None = None) -> Tree:
    return Tree("wf", nodes or {}, now=NOW, memo=memo)


def _kids(n: int, start: int = 0) -> list[NodeId]:
    return [NodeId(f"k{i}") for i in range(start, start + n)]


@pytest.mark.parametrize(
    ("already", "added", "expected"),
    [
        ([], ["a", "b", "a"], ["a", "b"]),
        (["a"], ["a", "b"], ["a", "b"]),
        (_kids(10), ["k3", "x", "x", "k9", "y"], [*_kids(10), "x", "y"]),
        (_kids(10), _kids(5), _kids(10)),
    ],
    ids=["duplicates-in-call", "small-known", "large-known-and-duplicates", "large-nothing-new"],
)
def test_add_children_links_each_once_in_order(already: list[str], added: list[str], expected: list[str]) -> None:
    memo: dict[Any, Any] = {}
    tree = _tree(memo)
    root = tree.create("wf", NodeType.DAG, display_name="wf", boundary_id=None)
    tree.update(root, children=tuple(NodeId(c) for c in already))
    tree.add_children(root.id, [NodeId(c) for c in added])
    assert list(tree.by_id(root.id).children) == expected


def test_links_added_one_per_pass_stay_unique_across_passes() -> None:
    """The set of linked children is remembered between passes; a node whose children were
    replaced some other way (a restart reloading them) is not judged by the stale set."""
    memo: dict[Any, Any] = {}
    tree = _tree(memo)
    root = tree.create("wf", NodeType.DAG, display_name="wf", boundary_id=None)
    nodes = tree.seal()
    for i in range(20):  # one pass per link, as a DAG connects a task per finished pod
        tree = _tree(memo, dict(nodes))
        tree.add_child(root.id, NodeId(f"k{i}"))
        tree.add_child(root.id, NodeId(f"k{max(i - 3, 0)}"))  # already linked: no second copy
        nodes = tree.seal()
    assert list(nodes[root.id].children) == _kids(20)

    tree = _tree(memo, dict(nodes))
    tree.update(tree.by_id(root.id), children=tuple(_kids(10, start=30)))  # replaced wholesale
    tree.add_children(root.id, [NodeId("k5"), NodeId("k31"), *_kids(2, start=20)])
    assert list(tree.by_id(root.id).children) == [*_kids(10, start=30), "k5", "k20", "k21"]


@pytest.mark.parametrize(
    "changes",
    [{}, {"phase": NodePhase.RUNNING}, {"message": "m", "finished_at": NOW, "children": (NodeId("c"),)},
     {"outputs": NodeIO(parameters=(("p", "v"),)), "daemoned": True, "pod_ip": "127.0.0.1"}],
    ids=["nothing", "phase", "several", "outputs-and-flags"],
)
def test_update_changes_exactly_the_fields_given(changes: dict[str, Any]) -> None:
    tree = _tree({})
    node = tree.create("wf.a", NodeType.POD, display_name="a", boundary_id=NodeId("wf"), message="old")
    updated = tree.update(node, **changes)
    assert updated == dataclasses.replace(node, **changes)
    assert tree.by_id(node.id) is updated


def test_update_refuses_an_unknown_field() -> None:
    tree = _tree({})
    node = tree.create("wf.a", NodeType.POD, display_name="a", boundary_id=None)
    with pytest.raises(TypeError, match="phaze"):
        tree.update(node, phaze=NodePhase.RUNNING)
