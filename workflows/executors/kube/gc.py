"""
Pod garbage collection policy (pure): which strategy applies to a pod, and whether it goes now.

Called by :mod:`workflows.executors.kubernetes` when a pod finishes (pod-level strategies) and
when a workflow finishes (workflow-level ones). Argo's ``spec.podGC`` (``strategy``,
``deleteDelayDuration``) on the workflow wins over the executor's settings. ``Never`` keeps pods
(the ``workflows.argoproj.io/workflow`` label finds them). A pod's logs are in the log store
before it is deleted, so deleting loses nothing the UI shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from workflows.errors import InvalidSpec
from workflows.model.durations import parse_duration

STRATEGIES: Final = ("OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess", "Never")
_ARGO_ALIASES: Final = {"": "Never"}  # Argo: an empty strategy keeps pods


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """One pod GC strategy and how long a finished pod is kept before it is deleted."""

    strategy: str = "OnPodCompletion"
    delete_delay_seconds: float = 0.0


def policy_for(pod_gc: Mapping[str, Any] | None, *, default: Policy) -> Policy:
    """The workflow's ``spec.podGC`` over ``default``; raise InvalidSpec for an unknown strategy."""
    if not pod_gc:
        return default
    strategy = str(pod_gc.get("strategy") or "")
    strategy = _ARGO_ALIASES.get(strategy, strategy)
    if strategy not in STRATEGIES:
        raise InvalidSpec("spec.podGC.strategy", f"must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    delay = default.delete_delay_seconds
    if pod_gc.get("deleteDelayDuration") not in (None, ""):
        delay = parse_duration(pod_gc["deleteDelayDuration"], path="spec.podGC.deleteDelayDuration").total_seconds()
    return Policy(strategy=strategy, delete_delay_seconds=max(0.0, delay))


def delete_when_pod_done(policy: Policy, *, succeeded: bool) -> bool:
    """Whether a pod that just finished is deleted (after the delay) under ``policy``."""
    return policy.strategy == "OnPodCompletion" or (policy.strategy == "OnPodSuccess" and succeeded)


def delete_when_workflow_done(policy: Policy, *, succeeded: bool) -> bool:
    """Whether the pods of a workflow that just finished are deleted (after the delay)."""
    return policy.strategy == "OnWorkflowCompletion" or (policy.strategy == "OnWorkflowSuccess" and succeeded)
