"""
An in-memory :class:`~sensors.eventlog.EventLog` for tests and development (nothing survives the process).

Same semantics as :class:`gittrigger.eventlog.SqliteEventLog`: deduplication by
``(event_source_name, delivery_id)`` (``None`` never deduplicates), ``pending`` oldest first with
audit trails, ``list`` newest first, ``get`` the newest event with that id or ``NotFound``.
Used by the dispatcher tests and by anyone wiring a server without a data directory.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sensors.eventlog import AuditEntry, StoredEvent
from sensors.events import Event
from workflows.errors import NotFound


class MemoryEventLog:
    """Events in a dict by seq; ``rejected`` holds the refused deliveries for inspection."""

    def __init__(self) -> None:
        self._events: dict[int, StoredEvent] = {}
        self._deliveries: dict[tuple[str, str], int] = {}
        self._next = 1
        self.rejected: builtins.list[dict[str, Any]] = []

    async def append(self, event: Event, *, source_kind: str, delivery_id: str | None,
                     received_at: datetime) -> tuple[StoredEvent, bool]:
        """Store ``event`` unless ``(event_source_name, delivery_id)`` is known."""
        key = (event.event_source_name, delivery_id) if delivery_id is not None else None
        if key is not None and key in self._deliveries:
            return self._events[self._deliveries[key]], False
        stored = StoredEvent(seq=self._next, event=event, source_kind=source_kind, delivery_id=delivery_id,
                             received_at=received_at)
        self._events[stored.seq] = stored
        if key is not None:
            self._deliveries[key] = stored.seq
        self._next += 1
        return stored, True

    async def reject(self, *, source_kind: str, event_source_name: str, event_name: str,
                     delivery_id: str | None, reason: str, received_at: datetime) -> None:
        """Remember a refused delivery."""
        self.rejected.append({"source_kind": source_kind, "event_source_name": event_source_name,
                              "event_name": event_name, "delivery_id": delivery_id, "reason": reason,
                              "received_at": received_at})

    async def pending(self, *, limit: int = 100, after_seq: int = 0) -> Sequence[StoredEvent]:
        """Undispatched events after ``after_seq``, oldest first."""
        return [e for e in self._events.values() if not e.dispatched and e.seq > after_seq][:limit]

    async def mark_dispatched(self, seq: int) -> None:
        """Flag ``seq`` dispatched."""
        if (stored := self._events.get(seq)) is not None:
            self._events[seq] = replace(stored, dispatched=True)

    async def audit(self, seq: int, entry: AuditEntry) -> None:
        """Append one audit fact to event ``seq``."""
        if (stored := self._events.get(seq)) is not None:
            self._events[seq] = replace(stored, audit=(*stored.audit, entry))

    async def get(self, event_id: str) -> StoredEvent:
        """The newest event with context id ``event_id``; raises NotFound."""
        for stored in reversed(self._events.values()):
            if stored.event.context.id == event_id:
                return stored
        raise NotFound("event", event_id)

    async def list(self, *, limit: int = 50, before_seq: int | None = None) -> Sequence[StoredEvent]:
        """Newest first; page with ``before_seq``."""
        newest = [e for e in reversed(self._events.values()) if before_seq is None or e.seq < before_seq]
        return newest[:limit]
