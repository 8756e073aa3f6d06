"""The terminal views of a run: tree shape, glyphs, durations and finished-node lines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gittrigger import display

NOW = datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)


def node(name: str, *, type: str = "Pod", phase: str = "Succeeded", children: tuple[str, ...] = (),
         boundary: str | None = None, started: str | None = "2024-05-01T12:00:00Z",
         finished: str | None = "2024-05-01T12:00:04Z", message: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": name, "name": name, "displayName": name, "type": type, "phase": phase,
                           "children": list(children), "startedAt": started, "finishedAt": finished}
    if boundary:
        out["boundaryID"] = boundary
    if message:
        out["message"] = message
    return out


STEPS = {"metadata": {"name": "wf"}, "status": {"phase": "Running", "nodes": {
    "wf": node("wf", type="Steps", phase="Running", children=("g0", "g1"), finished=None),
    "g1": node("g1", type="StepGroup", phase="Running", children=("b", "c"), boundary="wf", finished=None),
    "g0": node("g0", type="StepGroup", children=("a",), boundary="wf"),
    "c": node("c", phase="Running", boundary="wf", finished=None),
    "b": node("b", phase="Failed", boundary="wf", message="exit code 1"),
    "a": node("a", boundary="wf"),
}}}

DAG = {"metadata": {"name": "d"}, "status": {"phase": "Succeeded", "nodes": {
    "d": node("d", type="DAG", children=("x",)),
    "x": node("x", children=("y",), boundary="d"),
    "y": node("y", type="Retry", children=("y0",), boundary="d"),
    "y0": node("y0", boundary="d", phase="Skipped", started=None, finished="2024-05-01T12:00:04Z"),
}}}


@pytest.mark.parametrize(("workflow", "expected"), [
    (STEPS, ["● wf  10s", "├─ ✔ a  4s", "├─ ✖ b  4s  exit code 1", "└─ ● c  10s"]),
    (DAG, ["✔ d  4s", "├─ ✔ x  4s", "└─ ✔ y  4s", "   └─ ○ y0"]),
], ids=["steps-groups-folded", "dag-tasks-under-dag-retry-owns-attempts"])
def test_tree(workflow: dict[str, Any], expected: list[str]) -> None:
    """Group nodes are folded, DAG tasks sit under their DAG, siblings keep the parent's order."""
    assert display.render_tree(workflow, now=NOW) == expected


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.9, "59s"), (65, "1m 5s"), (7300, "2h 1m")],
                         ids=["zero", "seconds", "minutes", "hours"])
def test_format_duration(seconds: float, text: str) -> None:
    """Durations are short, like argo's."""
    assert display.format_duration(seconds) == text


def test_finished_lines_once_each_children_first() -> None:
    """Each finished node is reported once; groups are not reported; a parent after its children."""
    seen: set[str] = set()
    assert display.finished_lines(STEPS, seen=seen, now=NOW) == [
        "✔ a  4s  (Succeeded)", "✖ b  4s  exit code 1  (Failed)",
    ]
    assert display.finished_lines(STEPS, seen=seen, now=NOW) == []
    assert display.finished_lines(DAG, seen=set(), now=NOW) == [
        "✔ x  4s  (Succeeded)", "○ y0  (Skipped)", "✔ y  4s  (Succeeded)", "✔ d  4s  (Succeeded)",
    ]
