"""
Retry decisions: given a Retry node's attempts, succeed, give up, wait, or start another attempt.

Pure (Argo's processNodeRetries): called by :mod:`.operator` each pass for every Retry node
that is not finished. Backoff, maxDuration, retryPolicy, expression and limit follow Argo.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from workflows.errors import InvalidSpec, WorkflowError
from workflows.expressions import evaluate
from workflows.model.durations import parse_duration
from workflows.model.spec import RetryPolicy, RetryStrategy
from workflows.model.status import NodePhase, NodeStatus

# Argo's errors.IsTransientErr, plus our own "lost with the server" error.
_TRANSIENT: Final = re.compile(
    r"exceeded quota|connection reset by peer|connection refused|i/o timeout|TLS handshake timeout"
    r"|etcdserver|pod deleted|was running when the server stopped|transient|Evicted|NodeLost",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Succeed:
    """The last attempt succeeded: the Retry node succeeds with its outputs."""


@dataclass(frozen=True, slots=True)
class GiveUp:
    """No more attempts: the Retry node ends in ``phase`` with ``message``."""

    phase: NodePhase
    message: str | None


@dataclass(frozen=True, slots=True)
class Wait:
    """The last attempt is still running, or the backoff has not elapsed (wake at ``until``)."""

    until: datetime | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """Start attempt number ``index`` (0-based) now."""

    index: int


Verdict = Succeed | GiveUp | Wait | Attempt


def policy_of(strategy: RetryStrategy) -> RetryPolicy:
    """Argo's RetryPolicyActual: OnFailure by default, Always when only an expression is set."""
    if strategy.policy is not None:
        return strategy.policy
    return RetryPolicy.ALWAYS if strategy.expression else RetryPolicy.ON_FAILURE


def covers(policy: RetryPolicy, last: NodeStatus) -> bool:
    """Does ``policy`` retry an attempt that ended like ``last``?"""
    if policy is RetryPolicy.ALWAYS:
        return last.phase.failed
    if policy is RetryPolicy.ON_FAILURE:
        return last.phase is NodePhase.FAILED
    if policy is RetryPolicy.ON_ERROR:
        return last.phase is NodePhase.ERROR
    return last.phase.failed and bool(_TRANSIENT.search(last.message or ""))


def limit_of(strategy: RetryStrategy, *, path: str) -> int | None:
    """The retry limit as an int (None = unlimited); its variables are already substituted."""
    if strategy.limit is None or str(strategy.limit).strip() == "":
        return None
    try:
        return int(str(strategy.limit).strip())
    except ValueError:
        raise InvalidSpec(f"{path}.limit", f"must be an integer, got {strategy.limit!r}") from None


def backoff_delay(strategy: RetryStrategy, *, attempts_done: int, path: str) -> timedelta:
    """Argo's formula: duration * factor^(attempts-1), capped at ``cap``."""
    backoff = strategy.backoff
    if backoff is None or backoff.duration is None:
        return timedelta(0)
    delay = parse_duration(backoff.duration, path=f"{path}.backoff.duration")
    if backoff.factor is not None:
        try:
            factor = float(str(backoff.factor))
        except ValueError:
            raise InvalidSpec(f"{path}.backoff.factor", f"must be a number, got {backoff.factor!r}") from None
        if factor > 0:
            delay = delay * (factor ** max(attempts_done - 1, 0))
    if backoff.cap is not None:
        delay = min(delay, parse_duration(backoff.cap, path=f"{path}.backoff.cap"))
    return delay


def last_retry_env(last: NodeStatus) -> dict[str, str]:
    """``lastRetry.*`` variables for ``retryStrategy.expression`` (flat scope keys)."""
    duration = 0.0
    if last.started_at and last.finished_at:
        duration = (last.finished_at - last.started_at).total_seconds()
    exit_code = last.outputs.exit_code if last.outputs and last.outputs.exit_code is not None else "-1"
    return {
        "lastRetry.exitCode": exit_code,
        "lastRetry.status": last.phase.value,
        "lastRetry.duration": str(int(duration)),
        "lastRetry.message": last.message or "",
    }


def decide(
    strategy: RetryStrategy,
    *,
    attempts: list[NodeStatus],
    now: datetime,
    env: Mapping[str, object],
    path: str,
) -> Verdict:
    """Decide what a Retry node does next, given its attempts so far (oldest first)."""
    if not attempts:
        return Attempt(index=0)
    last = attempts[-1]
    if not last.phase.completed:
        return Wait()
    if not last.phase.failed:
        return Succeed()
    max_deadline: datetime | None = None
    if strategy.backoff is not None and strategy.backoff.max_duration is not None:
        max_duration = parse_duration(strategy.backoff.max_duration, path=f"{path}.backoff.maxDuration")
        first_start = attempts[0].started_at or now
        max_deadline = first_start + max_duration
        if now > max_deadline:
            return GiveUp(last.phase, "Max duration limit exceeded")
    if not covers(policy_of(strategy), last):
        return GiveUp(last.phase, last.message)
    if strategy.expression:
        try:
            keep_going = evaluate(strategy.expression, env)
        except WorkflowError as e:
            return GiveUp(NodePhase.ERROR, f"retryStrategy.expression: {e}")
        if keep_going is not True:
            return GiveUp(last.phase, "retryStrategy.expression evaluated to false")
    limit = limit_of(strategy, path=path)
    if limit is not None and len(attempts) > limit:
        return GiveUp(last.phase, "No more retries left")
    delay = backoff_delay(strategy, attempts_done=len(attempts), path=path)
    if delay > timedelta(0):
        ready_at = (last.finished_at or now) + delay
        if max_deadline is not None and ready_at > max_deadline:
            return GiveUp(last.phase, "Backoff would exceed max duration limit")
        if now < ready_at:
            return Wait(until=ready_at, message=f"Backoff for {_human(delay)}")
    return Attempt(index=len(attempts))


def _human(delay: timedelta) -> str:
    seconds = delay.total_seconds()
    return f"{seconds:g} seconds" if seconds < 60 else f"{seconds / 60:g} minutes"
