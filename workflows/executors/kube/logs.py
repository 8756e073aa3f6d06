"""
A container's log streamed into the log store as it is written (``follow=true``), so logs
survive the Pod's deletion.

Started by :mod:`workflows.executors.kubernetes` once a main container runs. One request per
container normally; a stream cut by the API server (restart, load balancer) is resumed from the
last line's time with ``sinceSeconds``, the lines already taken skipped by their timestamps.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Final

import structlog

from workflows.errors import Unavailable, WorkflowError
from workflows.executors.base import LogLine, LogSink, PodRequest
from workflows.executors.kube.calls import Backoff, PodsApi
from workflows.executors.kube.status import parse_time

RETRIES: Final = 5  # broken streams in a row before the rest of a log is given up

logger = structlog.get_logger(__name__)


async def follow_log(api: PodsApi, sink: LogSink, pod: PodRequest, *, namespace: str, container: str) -> None:
    """Stream one container's log into ``sink`` until the container ends (see the module docstring)."""
    last: datetime | None = None
    at_last = 0  # lines taken with exactly the time ``last`` (stamps are not unique)
    backoff, failures = Backoff(first=0.2), 0
    while True:
        resume_at, skip = last, at_last
        since = None if last is None else max(1, int((datetime.now(UTC) - last).total_seconds()) + 2)
        try:
            async for line in api.follow_log(namespace, pod.pod_name, container=container, since_seconds=since):
                stamp_text, _, content = line.partition(" ")
                stamp = parse_time(stamp_text)
                if stamp is None:
                    stamp, content = datetime.now(UTC), line
                if resume_at is not None:
                    if stamp < resume_at or (stamp == resume_at and skip > 0):
                        skip -= stamp == resume_at
                        continue
                    resume_at = None
                last, at_last = stamp, (at_last + 1 if stamp == last else 1)
                failures = 0
                sink.append(LogLine(namespace=pod.namespace, workflow=pod.workflow_name, pod_name=pod.pod_name,
                                    container=container, time=stamp, content=content))
            return
        except Unavailable as e:
            failures += 1
            if failures > RETRIES:
                logger.warning("log stream given up", pod=pod.pod_name, container=container, error=str(e))
                return
            await asyncio.sleep(backoff.next())
        except WorkflowError:
            return  # the container never started, or the pod is gone: nothing more to read
