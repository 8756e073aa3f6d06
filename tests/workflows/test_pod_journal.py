"""The local executor's pod journal: what a restarted server learns about pods it did not start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workflows.executors import journal as journal_mod
from workflows.executors.journal import PodJournal


def reopen(directory: Path, instance: str = "second") -> PodJournal:
    j = PodJournal(directory, instance=instance, boot_id="boot")
    j.open()
    return j


def test_an_earlier_servers_entries_are_merged_per_pod_and_consumed_once(tmp_path: Path) -> None:
    first = PodJournal(tmp_path, instance="first", boot_id="boot")
    first.started("ns/wf/a", attempt=0, groups={10: 1})
    first.started("ns/wf/a", attempt=0, groups={10: 1, 11: 2})
    first.finished("ns/wf/a", attempt=0, result={"phase": "Succeeded"})
    first.started("ns/wf/b", attempt=1, groups={12: 3})
    first.close()

    second = reopen(tmp_path)
    a = second.consume("ns/wf/a")
    assert a is not None and a["g"] == {"10": 1, "11": 2} and a["r"] == {"phase": "Succeeded"} and a["i"] == "first"
    b = second.consume("ns/wf/b")
    assert b is not None and b["a"] == 1 and "r" not in b
    assert second.consume("ns/wf/a") is None  # acted on once
    assert a["i"] != "second"  # an earlier server's entry, not this one's
    second.close()


def test_a_new_attempt_replaces_what_an_earlier_attempt_recorded(tmp_path: Path) -> None:
    first = PodJournal(tmp_path, instance="first", boot_id="boot")
    first.started("k", attempt=0, groups={1: 1})
    first.finished("k", attempt=0, result={"phase": "Failed"})
    first.started("k", attempt=1, groups={2: 2})
    first.close()
    entry = reopen(tmp_path).consume("k")
    assert entry is not None and entry["a"] == 1 and entry["g"] == {"2": 2} and "r" not in entry


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    first = PodJournal(tmp_path, instance="first", boot_id="boot")
    first.started("k", attempt=0, groups={1: 1})
    first.close()
    with (tmp_path / journal_mod.FILE).open("a") as f:
        f.write('{"k":"k","i":"first","a":0,"r":{"pha')
    entry = reopen(tmp_path).consume("k")
    assert entry is not None and entry["g"] == {"1": 1} and "r" not in entry


def test_entries_survive_a_second_restart_until_consumed(tmp_path: Path) -> None:
    first = PodJournal(tmp_path, instance="first", boot_id="boot")
    first.finished("k", attempt=0, result={"phase": "Succeeded"})
    first.close()
    reopen(tmp_path, "second").close()  # restarted, crashed again before the engine asked
    entry = reopen(tmp_path, "third").consume("k")
    assert entry is not None and entry["r"] == {"phase": "Succeeded"}


def test_rotation_keeps_unconsumed_and_recent_entries_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = PodJournal(tmp_path, instance="first", boot_id="boot")
    first.finished("old", attempt=0, result={"phase": "Succeeded"})
    first.close()
    monkeypatch.setattr(journal_mod, "ROTATE_LINES", 10)
    second = reopen(tmp_path)
    clock = iter(range(0, 10_000, 100))
    monkeypatch.setattr(journal_mod.time, "monotonic", lambda: float(next(clock)))
    for i in range(20):
        second.started(f"pod-{i}", attempt=0, groups={i: i})
    second.close()
    lines = [json.loads(raw) for raw in (tmp_path / journal_mod.FILE).read_text().splitlines()]
    keys = [line["k"] for line in lines]
    assert "old" in keys  # never consumed: still needed
    assert len(keys) < 20 and "pod-19" in keys and "pod-0" not in keys  # old own entries rotated out
