"""The delivery audit API: list, show and replay stored events, through the app as served."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gittrigger.assembly import Parts, assemble
from gittrigger.http import events
from gittrigger.http.app import make_app
from gittrigger.settings import load_settings
from sensors.eventlog import AuditEntry
from sensors.events import Event
from tests.gittrigger.test_webhooks import MemoryLog, Wakeups, build_app, github_headers, payload

Client = TestClient[Any, web.Application]
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
REPLAY_AT = datetime(2026, 2, 1, tzinfo=UTC)


def an_event(n: int) -> Event:
    return Event.from_argo(
        {"id": f"ev{n}", "source": "github", "type": "github", "subject": "push", "time": T0 + timedelta(minutes=n)},
        {"headers": {"X-Github-Event": ["push"]}, "body": {"ref": "refs/heads/main", "n": n}},
    )


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path), "GITTRIGGER_ISOLATION": "none"})
    async with assemble(settings, memory=True) as built:
        yield built


@pytest.fixture
async def event_log() -> MemoryLog:
    log = MemoryLog()
    for n in range(1, 6):
        await log.append(an_event(n), source_kind="github", delivery_id=f"d{n}", received_at=T0 + timedelta(minutes=n))
    return log


@pytest.fixture
def wakeups() -> Wakeups:
    return Wakeups()


@pytest.fixture
async def client(aiohttp_client: Any, parts: Parts, tmp_path: Path, event_log: MemoryLog,
                 wakeups: Wakeups) -> Client:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path)})
    app = make_app(settings, engine=parts.engine, store=parts.store)
    events.setup(app, log=event_log, notify=wakeups, clock=lambda: REPLAY_AT)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


async def test_list_is_newest_first_and_pages_with_before(client: Client) -> None:
    first = await (await client.get(events.PREFIX, params={"limit": "2"})).json()
    assert [i["id"] for i in first["items"]] == ["ev5", "ev4"]
    assert first["nextBefore"] == 4
    second = await (await client.get(events.PREFIX, params={"limit": "2", "before": "4"})).json()
    assert [i["id"] for i in second["items"]] == ["ev3", "ev2"]
    last = await (await client.get(events.PREFIX, params={"limit": "2", "before": "2"})).json()
    assert [i["id"] for i in last["items"]] == ["ev1"] and last["nextBefore"] is None
    everything = await (await client.get(events.PREFIX)).json()
    assert len(everything["items"]) == 5 and everything["nextBefore"] is None
    assert everything["items"][0] == {
        "id": "ev5", "seq": 5, "eventSourceName": "github", "eventName": "push", "sourceKind": "github",
        "type": "github", "deliveryId": "d5", "receivedAt": "2026-01-02T03:09:05Z", "dispatched": False,
    }


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "501"}, {"limit": "ten"}, {"before": "-1"}, {"before": "0"}],
    ids=["limit-zero", "limit-too-big", "limit-text", "before-negative", "before-zero"],
)
async def test_bad_paging_parameters_are_400(client: Client, params: dict[str, str]) -> None:
    resp = await client.get(events.PREFIX, params=params)
    assert resp.status == 400
    answer = await resp.json()
    assert answer["code"] == 3 and next(iter(params)) in answer["message"]


async def test_get_shows_the_envelope_and_the_audit_trail(client: Client, event_log: MemoryLog) -> None:
    await event_log.audit(3, AuditEntry(at=T0, kind="filter", detail={"sensor": "ci", "matched": True}))
    resp = await client.get(f"{events.PREFIX}/ev3")
    assert resp.status == 200
    got = await resp.json()
    assert got["id"] == "ev3" and got["seq"] == 3 and got["deliveryId"] == "d3"
    assert got["event"]["context"] == {
        "id": "ev3", "source": "github", "specversion": "1.0", "type": "github",
        "datacontenttype": "application/json", "subject": "push", "time": "2026-01-02T03:07:05Z",
    }
    assert got["event"]["data"]["body"] == {"ref": "refs/heads/main", "n": 3}
    assert got["audit"] == [
        {"at": "2026-01-02T03:07:05Z", "kind": "received", "detail": {}},
        {"at": "2026-01-02T03:04:05Z", "kind": "filter", "detail": {"sensor": "ci", "matched": True}},
    ]


async def test_unknown_event_is_404_for_get_and_replay(client: Client, wakeups: Wakeups) -> None:
    for resp in (await client.get(f"{events.PREFIX}/nope"), await client.post(f"{events.PREFIX}/nope/replay")):
        assert resp.status == 404
        assert (await resp.json())["code"] == 5
    assert wakeups.count == 0


async def test_replay_stores_a_linked_copy_and_wakes_the_dispatcher(client: Client, event_log: MemoryLog,
                                                                    wakeups: Wakeups) -> None:
    resp = await client.post(f"{events.PREFIX}/ev2/replay")
    assert resp.status == 202
    answer = await resp.json()
    new_id = answer["id"]
    assert answer == {"id": new_id, "replayOf": "ev2"} and new_id != "ev2"
    copy = await event_log.get(new_id)
    assert (copy.source_kind, copy.delivery_id, copy.received_at) == ("replay", None, REPLAY_AT)
    assert copy.event.data == an_event(2).data
    assert (copy.event.event_source_name, copy.event.event_name) == ("github", "push")
    assert copy.event.context.time == REPLAY_AT
    assert copy.audit[-1] == AuditEntry(at=REPLAY_AT, kind="replay", detail={"replayOf": "ev2", "originalSeq": 2})
    original = await event_log.get("ev2")
    assert original.audit[-1] == AuditEntry(at=REPLAY_AT, kind="replayed", detail={"replay": new_id})
    assert wakeups.count == 1
    again = await (await client.post(f"{events.PREFIX}/ev2/replay")).json()
    assert again["id"] not in (new_id, "ev2")  # each replay is a new event
    listed = await (await client.get(events.PREFIX, params={"limit": "1"})).json()
    assert listed["items"][0]["id"] == again["id"] and listed["items"][0]["sourceKind"] == "replay"


async def test_replay_with_the_log_unavailable_is_503(client: Client, event_log: MemoryLog, wakeups: Wakeups) -> None:
    event_log.unavailable = True
    resp = await client.post(f"{events.PREFIX}/ev1/replay")
    assert resp.status == 503
    assert (await resp.json())["code"] == 14
    assert wakeups.count == 0


async def test_a_delivery_is_visible_through_the_api(aiohttp_client: Any, parts: Parts, tmp_path: Path) -> None:
    """The webhook edge and the audit API on one app: what was acknowledged is what is listed."""
    log, wakeups = MemoryLog(), Wakeups()
    client: Client = await aiohttp_client(build_app(parts, tmp_path, log=log, notify=wakeups))
    body = payload("github-push.json")
    created = await (await client.post("/github", data=body, headers=github_headers(body, delivery="x-1"))).json()
    listed = await (await client.get(events.PREFIX)).json()
    assert [(i["id"], i["deliveryId"]) for i in listed["items"]] == [(created["id"], "x-1")]
    shown = await (await client.get(f"{events.PREFIX}/{created['id']}")).json()
    assert shown["event"]["data"]["body"]["after"] == "2222222222222222222222222222222222222222"


async def test_an_async_notify_is_awaited(aiohttp_client: Any, parts: Parts, tmp_path: Path,
                                          event_log: MemoryLog) -> None:
    """``notify`` may be a coroutine function (an async dispatcher wake-up): it is awaited, not dropped."""
    woken: list[str] = []

    async def notify() -> None:
        woken.append("yes")

    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path)})
    app = make_app(settings, engine=parts.engine, store=parts.store)
    events.setup(app, log=event_log, notify=notify)
    client: Client = await aiohttp_client(app)
    assert (await client.post(f"{events.PREFIX}/ev1/replay")).status == 202
    assert woken == ["yes"]
