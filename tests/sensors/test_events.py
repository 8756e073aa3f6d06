"""The Event envelope: CloudEvent JSON round trip and Argo's context JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sensors import Event, EventContext
from tests.sensors.eventkit import NOON, make_event, webhook
from workflows.errors import InvalidSpec


def test_cloudevent_json_round_trips() -> None:
    """What the store writes is what replay reads, data included byte for byte."""
    event = make_event(
        webhook({"message": 'a "quoted"\nline {{x}}', "n": 1.5}, X_GitHub_Event="push"),
        source="github",
        name="main",
    )
    again = Event.from_json(event.to_cloudevent_json())
    assert event == again


def test_context_json_is_argo_shaped() -> None:
    """Context keys and the time format are what Argo Events marshals (contextKey reads these)."""
    when = datetime(2026, 1, 2, 4, 5, 6, 789, tzinfo=timezone(timedelta(hours=2)))
    context = make_event({}, when=when).context.to_json_dict()
    assert context == {
        "id": "evt-1",
        "source": "hooks",
        "specversion": "1.0",
        "type": "webhook",
        "datacontenttype": "application/json",
        "subject": "a",
        "time": "2026-01-02T02:05:06Z",
    }


def test_naive_time_is_refused() -> None:
    """Event times are aware, so time filters cannot silently use the machine's zone."""
    with pytest.raises(ValueError, match="timezone-aware"):
        EventContext(id="1", source="s", type="t", time=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("not json", ""),
        ("[]", ""),
        ('{"source":"s","type":"t","time":"2026-01-01T00:00:00Z"}', "id"),
        ('{"id":"1","source":"s","type":"t","time":"yesterday"}', "time"),
    ],
    ids=["not-json", "not-object", "missing-id", "bad-time"],
)
def test_from_json_errors_name_the_attribute(text: str, path: str) -> None:
    """Corrupt stored events fail with the attribute named."""
    with pytest.raises(InvalidSpec) as caught:
        Event.from_json(text)
    assert caught.value.path == path


def test_argo_style_names_fall_back_to_source_and_subject() -> None:
    """An event stored without our extensions takes its names from source/subject, as Argo does."""
    event = Event.from_json(
        '{"id":"1","source":"github","type":"github","subject":"example",'
        '"time":"2026-03-14T12:00:00+00:00","data":{"a":1}}'
    )
    assert (event.event_source_name, event.event_name, event.context.time) == ("github", "example", NOON)
    assert event.context.time.tzinfo is not None and event.context.time.utcoffset() == UTC.utcoffset(None)


def test_from_argo_context_dict() -> None:
    """Argo-shaped context dicts (what the webhook sources build) become Events named by source/subject."""
    context = {
        "id": "d1",
        "source": "github",
        "specversion": "1.0",
        "type": "github",
        "subject": "main",
        "time": "2026-03-14T12:00:00Z",
        "datacontenttype": "application/json",
    }
    event = Event.from_argo(context, {"body": {}})
    assert (event.event_source_name, event.event_name, event.context.time) == ("github", "main", NOON)
    assert event.context.to_json_dict() == context
