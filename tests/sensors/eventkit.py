"""Builders shared by the sensors tests: events and the fixtures in ``fixtures/``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from sensors import Event, EventContext

FIXTURES = Path(__file__).parent / "fixtures"
NOON = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)


def make_event(
    data: Any,
    *,
    source: str = "hooks",
    name: str = "a",
    when: datetime = NOON,
    event_id: str = "evt-1",
    type_: str = "webhook",
    subject: str = "",
    content_type: str = "application/json",
) -> Event:
    """An event from event source ``source``, event ``name``."""
    return Event(
        context=EventContext(
            id=event_id,
            source=source,
            type=type_,
            subject=subject or name,
            time=when,
            datacontenttype=content_type,
        ),
        data=data,
        event_source_name=source,
        event_name=name,
    )


def webhook(body: Any, **headers: str) -> dict[str, Any]:
    """Argo Events' webhook data shape around ``body``."""
    return {"header": {k.replace("_", "-"): [v] for k, v in headers.items()}, "body": body, "metadata": {}}


def fixture_json(name: str) -> Any:
    """A JSON fixture, decoded."""
    return json.loads((FIXTURES / name).read_text())


def fixture_yaml(name: str) -> Any:
    """A YAML fixture, decoded (first document)."""
    return yaml.safe_load((FIXTURES / name).read_text())
