"""
Keeps ``bench/ingest.py`` from rotting: runs it with ``--quick`` (a real server subprocess, tiny
sizes, one repetition) and checks the shape of the JSON report. No timing assertions: the figures
are for people to read (bench/README.md); the machine is shared and noisy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "ingest.py"
SUMMARY_KEYS = {"median", "spread", "values"}


@pytest.fixture(scope="module")
def report() -> dict[str, object]:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parsed = json.loads(proc.stdout)
    assert isinstance(parsed, dict)
    return parsed


def _summary(value: object, *, target: bool) -> None:
    assert isinstance(value, dict), value
    assert set(value) == (SUMMARY_KEYS | {"target"} if target else SUMMARY_KEYS), value
    assert len(value["values"]) == 1 and value["median"] > 0


@pytest.mark.parametrize(("key", "target"), [("deliveries_per_s", True), ("answer_p50_ms", False),
                                             ("answer_p99_ms", True)], ids=["rate", "p50", "p99"])
def test_throughput_reports_rate_and_latency(report: dict[str, object], key: str, target: bool) -> None:
    section = report["throughput"]
    assert isinstance(section, dict)
    _summary(section[key], target=target)


def test_every_delivery_was_accepted(report: dict[str, object]) -> None:
    section = report["throughput"]
    assert isinstance(section, dict)
    assert section["non_202"] == 0, section["statuses"]
    assert section["deliveries"][0] > 0


@pytest.mark.parametrize("section_name", ["throughput", "latency"])
def test_the_event_log_fsyncs_of_the_window_are_reported(report: dict[str, object], section_name: str) -> None:
    """Every stored delivery waited for a WAL fsync: the window has some, with a mean and a p99 bucket."""
    section = report[section_name]
    assert isinstance(section, dict)
    [fsync] = section["event_log_fsync"]
    assert fsync["count"] > 0 and fsync["mean_ms"] > 0 and fsync["p99_le_ms"] >= 1.0
    assert 0 <= fsync["over_16ms"] <= fsync["count"]


@pytest.mark.parametrize(("key", "target"), [("p50_ms", True), ("p90_ms", False), ("max_ms", False)],
                         ids=["p50", "p90", "max"])
def test_to_process_reports_delays(report: dict[str, object], key: str, target: bool) -> None:
    section = report["to_process"]
    assert isinstance(section, dict)
    _summary(section[key], target=target)


def test_targets_are_printed(report: dict[str, object]) -> None:
    assert report["targets"] == {"deliveries_per_s": ">= 2000", "answer_p99_ms": "< 20",
                                 "to_process_p50_ms": "< 50"}
