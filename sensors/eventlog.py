"""
The event log seam: deliveries are stored before they are acknowledged, and dispatched from here.

Written by the webhook edge and the event sources in :mod:`gittrigger` (``append`` before the
2xx), read by :mod:`sensors.dispatcher` (``pending`` / ``mark_dispatched``), and queried by the
audit API. Implemented with SQLite (synchronous=FULL) in :mod:`gittrigger.eventlog`; tests may use
an in-memory one. Redeliveries are recognised by ``(source, delivery_id)``: ``append`` then
returns the original record and ``created=False``, so a host retrying a delivery never runs twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol

from sensors.events import Event


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One fact about a delivery: ``kind`` is ``received``, ``rejected``, ``filter``, ``submitted``,
    ``trigger-failed``, ``status-reported`` ...; ``detail`` is JSON (sensor, trigger, verdicts,
    workflow name, reason)."""

    at: datetime
    kind: str
    detail: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEvent:
    """An event as the log keeps it: ``seq`` orders the log; ``dispatched`` once sensors saw it."""

    seq: int
    event: Event
    source_kind: str  # github | gitlab | gitea | bitbucket | webhook | calendar | git | replay
    delivery_id: str | None
    received_at: datetime
    dispatched: bool = False
    audit: tuple[AuditEntry, ...] = ()


class EventLog(Protocol):
    """Durable, deduplicated events with their audit trail."""

    async def append(self, event: Event, *, source_kind: str, delivery_id: str | None,
                     received_at: datetime) -> tuple[StoredEvent, bool]:
        """Store an event durably (fsync'd) unless ``(event_source_name, delivery_id)`` is known.

        Returns the stored record and whether it was created (False: a redelivery, the original
        record is returned). Raises ``workflows.errors.Unavailable`` when it cannot store: the
        edge then answers 503 so the host retries.
        """
        ...

    async def reject(self, *, source_kind: str, event_source_name: str, event_name: str,
                     delivery_id: str | None, reason: str, received_at: datetime) -> None:
        """Record a refused delivery (bad signature, malformed body) for the audit API; never raises."""
        ...

    async def pending(self, *, limit: int = 100, after_seq: int = 0) -> Sequence[StoredEvent]:
        """Events not yet dispatched, oldest first (after a crash: everything acknowledged but not run);
        only those with ``seq > after_seq`` (the dispatcher's cursor: what it matched already)."""
        ...

    async def mark_dispatched(self, seq: int) -> None:
        """The dispatcher has matched this event against every sensor and recorded the outcomes."""
        ...

    async def audit(self, seq: int, entry: AuditEntry) -> None:
        """Append one audit fact to an event (a filter verdict, a run created, a status reported)."""
        ...

    async def get(self, event_id: str) -> StoredEvent:
        """An event by its context id, with its audit trail; raises ``workflows.errors.NotFound``."""
        ...

    async def list(self, *, limit: int = 50, before_seq: int | None = None) -> Sequence[StoredEvent]:
        """Newest first; page with ``before_seq`` = the last ``seq`` of the previous page."""
        ...
