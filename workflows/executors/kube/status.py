"""
A Pod's wire status read as what the engine needs (pure): running, ready, stuck, finished, and
the node result of a finished Pod together with the ``wait`` helper's ``GITTRIGGER_RESULT`` line.

Called by :mod:`workflows.executors.kubernetes` on every watch event of a tracked Pod and once
when it ends. The Pod contract is ``docs/kubernetes-pods.md``; phases follow Argo: a main
container that exits non-zero makes the node Failed, anything the user did not cause (our
helpers failing, eviction, a deleted Pod, an image that cannot be pulled) makes it Error, so
``retryStrategy.retryPolicy: OnError`` / ``OnTransientError`` retries it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from workflows.executors.base import PodResult
from workflows.model.status import NodePhase

Raw = Mapping[str, Any]

RESULT_PREFIX: Final = "GITTRIGGER_RESULT "
WAIT: Final = "wait"
INIT: Final = "init"
DELETED_MESSAGE: Final = "pod deleted"
# Waiting reasons that resolve themselves or never: the first are given a bound of time
# (a registry can come back, a Secret can appear), the second fail at once.
BOUNDED_WAITING: Final = frozenset({"ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError"})
FATAL_WAITING: Final = frozenset({"InvalidImageName", "ErrImageNeverPull"})


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class Stuck:
    """A container that cannot start: ``fatal`` ones fail the node at once, the others after a bound."""

    container: str
    reason: str
    message: str
    fatal: bool

    def describe(self) -> str:
        return f"{self.reason}: {self.message}" if self.message else self.reason


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """What the ``wait`` helper printed after main exited (``error``: it could not save outputs)."""

    result: str | None = None
    exit_code: int | None = None
    output_parameters: Mapping[str, str] = field(default_factory=_empty)
    output_artifacts: Mapping[str, str] = field(default_factory=_empty)
    error: str | None = None


def phase(pod: Raw) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def terminal(pod: Raw) -> bool:
    """The Pod ended (Succeeded or Failed); nothing in it runs any more."""
    return phase(pod) in ("Succeeded", "Failed")


def deleting(pod: Raw) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def ready(pod: Raw) -> bool:
    """The Pod's ``Ready`` condition is true (every container up and passing its readiness probe)."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def pod_ip(pod: Raw) -> str | None:
    return (pod.get("status") or {}).get("podIP") or None


def host(pod: Raw) -> str | None:
    """The node the Pod was bound to (``{{steps.x.hostNodeName}}``, retry anti-affinity)."""
    return (pod.get("spec") or {}).get("nodeName") or None


def _statuses(pod: Raw) -> Iterator[Raw]:
    status = pod.get("status") or {}
    yield from status.get("initContainerStatuses") or ()
    yield from status.get("containerStatuses") or ()


def container_state(pod: Raw, name: str) -> Raw:
    """The ``state`` of container ``name`` (``{}`` when the kubelet has not reported it)."""
    return next((s.get("state") or {} for s in _statuses(pod) if s.get("name") == name), {})


def failed(pod: Raw, name: str) -> bool:
    """Container ``name`` ended with a non-zero exit code."""
    return (container_state(pod, name).get("terminated") or {}).get("exitCode") not in (0, None)


def started(pod: Raw, name: str) -> bool:
    """Container ``name`` runs or ran, so its log can be read."""
    state = container_state(pod, name)
    return "running" in state or "terminated" in state


def stuck(pod: Raw) -> Stuck | None:
    """The first container waiting for a reason that will not pass by itself, if any."""
    for s in _statuses(pod):
        waiting = (s.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        if reason in BOUNDED_WAITING or reason in FATAL_WAITING:
            return Stuck(container=str(s.get("name", "")), reason=reason, message=str(waiting.get("message") or ""),
                         fatal=reason in FATAL_WAITING)
    return None


def parse_time(text: Any) -> datetime | None:
    """An RFC 3339 time as Kubernetes writes it (seconds, or nanoseconds in log stamps), UTC."""
    if not isinstance(text, str) or not text:
        return None
    head, _, fraction = text.rstrip("Z").partition(".")
    try:
        when = datetime.fromisoformat(head).replace(tzinfo=UTC)
        return when.replace(microsecond=int((fraction + "000000")[:6])) if fraction else when
    except ValueError:
        return None


def parse_report(log: str) -> Report | None:
    """The last ``GITTRIGGER_RESULT {json}`` line of the wait container's log, if well formed."""
    for line in reversed(log.splitlines()):
        if not line.startswith(RESULT_PREFIX):
            continue
        try:
            body = json.loads(line[len(RESULT_PREFIX):])
        except ValueError:
            return None
        if not isinstance(body, Mapping):
            return None
        code = body.get("exitCode")
        result = body.get("result")
        error = body.get("error") or body.get("message")
        return Report(
            result=result if isinstance(result, str) else None,
            exit_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            output_parameters=_named(body.get("outputParameters"), "value"),
            output_artifacts=_named(body.get("outputArtifacts"), "key"),
            error=str(error) if error else None,
        )
    return None


def _named(value: Any, field_name: str) -> Mapping[str, str]:
    """``{name: value}``, also from Argo's ``[{name, value}]`` list shape."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return {str(i["name"]): str(i[field_name]) for i in value
                if isinstance(i, Mapping) and "name" in i and i.get(field_name) is not None}
    return {}


def _failure(terminated: Raw) -> str:
    code = terminated.get("exitCode")
    if terminated.get("reason") == "OOMKilled":
        return f"OOMKilled (exit code {code})"
    return f"Error (exit code {code})"


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(RESULT_PREFIX)]
    return lines[-1].strip() if lines else ""


def outcome(pod: Raw, *, mains: Sequence[str], report: Report | None, wait_log: str = "",
            init_log: str = "") -> PodResult:
    """The node result of a finished Pod (see the module docstring for Failed versus Error).

    ``wait_log`` / ``init_log``: the helpers' logs, read when they ran (init: only when it failed).
    """
    status = pod.get("status") or {}
    times = [t for s in _statuses(pod) if (t := parse_time(((s.get("state") or {}).get("terminated") or {})
                                                            .get("finishedAt"))) is not None]
    base = PodResult(phase=NodePhase.ERROR, started_at=parse_time(status.get("startTime")),
                     finished_at=max(times) if times else None, pod_ip=pod_ip(pod), host_node_name=host(pod))
    if report is not None:
        base = replace(base, result=report.result, output_parameters=report.output_parameters,
                       output_artifacts=report.output_artifacts)
    reason, message = str(status.get("reason") or ""), str(status.get("message") or "").strip()
    main_codes = {n: t for n in mains if (t := container_state(pod, n).get("terminated")) is not None}
    exit_code = next((t.get("exitCode") for n, t in main_codes.items() if n == mains[0]), None) if mains else None
    if exit_code is None and report is not None:
        exit_code = report.exit_code
    if phase(pod) == "Failed" and reason == "Evicted":
        return replace(base, phase=NodePhase.ERROR, exit_code=exit_code, message=f"Evicted: {message or reason}")
    if phase(pod) == "Failed" and reason == "DeadlineExceeded":
        return replace(base, phase=NodePhase.FAILED, exit_code=exit_code, message=message or reason)
    for s in (pod.get("status") or {}).get("initContainerStatuses") or ():
        terminated = (s.get("state") or {}).get("terminated") or {}
        if not terminated or terminated.get("exitCode") in (0, None):
            continue
        name = str(s.get("name", ""))
        if name == INIT:  # staging inputs failed: not the user's command; its last line says why
            detail = str(terminated.get("message") or "").strip() or _failure(terminated)
            return replace(base, phase=NodePhase.ERROR,
                           message=_last_line(init_log) or f"init container {name} failed: {detail}")
        if not _is_sidecar(pod, name):
            return replace(base, phase=NodePhase.FAILED,
                           message=f"init container {name} failed: {_failure(terminated)}")
    for terminated in main_codes.values():
        code = terminated.get("exitCode")
        if code in (0, None):
            continue
        if terminated.get("reason") == "StartError":  # the command could not even start
            return replace(base, phase=NodePhase.ERROR, exit_code=code,
                           message=str(terminated.get("message") or "StartError").strip())
        return replace(base, phase=NodePhase.FAILED, exit_code=code, message=_failure(terminated))
    wait = container_state(pod, WAIT).get("terminated") or {}
    if wait.get("exitCode") not in (0, None):
        # The helper's last line is its reason ("failed to save outputs: ..."), worded as the
        # local executor words the same failure.
        detail = _last_line(wait_log) or f"wait container failed: {_failure(wait)}"
        return replace(base, phase=NodePhase.ERROR, exit_code=exit_code, message=detail)
    if report is not None and report.error:
        return replace(base, phase=NodePhase.ERROR, exit_code=exit_code, message=report.error)
    if phase(pod) == "Succeeded":
        if report is None:
            return replace(base, phase=NodePhase.ERROR, exit_code=exit_code,
                             message="the wait container reported no result")
        return replace(base, phase=NodePhase.SUCCEEDED, exit_code=exit_code if exit_code is not None else 0)
    return replace(base, phase=NodePhase.ERROR, exit_code=exit_code,
                     message=f"{reason}: {message}" if reason and message else message or reason or "pod failed")


def _is_sidecar(pod: Raw, name: str) -> bool:
    return any(c.get("name") == name and c.get("restartPolicy") == "Always"
               for c in (pod.get("spec") or {}).get("initContainers") or ())
