"""
Identifiers of runs, nodes and pods, derived deterministically from names.

Node ids and pod names are hashes of node names (Argo's FNV-1a scheme), so the same workflow
always yields the same ids: after a restart the engine finds its nodes and pods again instead
of starting them twice. Used by the scheduling core and by both executors.
"""

from __future__ import annotations

from typing import Final, NewType

Namespace = NewType("Namespace", str)
WorkflowName = NewType("WorkflowName", str)
NodeId = NewType("NodeId", str)

_MAX_POD_NAME: Final = 63  # a pod name must be a DNS label
_FNV_OFFSET: Final = 0x811C9DC5
_FNV_PRIME: Final = 0x01000193


def fnv32a(text: str) -> int:
    """FNV-1a 32-bit hash, as Go's ``hash/fnv`` New32a computes it."""
    h = _FNV_OFFSET
    for byte in text.encode():
        h ^= byte
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
    return h


def node_id(workflow: str, node_name: str) -> NodeId:
    """The id of node ``node_name``: the workflow name for the root node, else ``<wf>-<fnv32a>``."""
    if node_name == workflow:
        return NodeId(workflow)
    return NodeId(f"{workflow}-{fnv32a(node_name)}")


def pod_name(workflow: str, node_name: str, template_name: str) -> str:
    """The pod name of a node, Argo's v2 naming: ``<wf>-<template>-<fnv32a(node name)>``."""
    if workflow == node_name:
        return workflow
    suffix = f"-{fnv32a(node_name)}"
    prefix = f"{workflow}-{template_name}" if template_name else workflow
    prefix = prefix[: _MAX_POD_NAME - len(suffix)].rstrip("-.")
    return prefix + suffix
