"""
Keeps ``bench/engine.py`` from rotting: runs it with ``--quick`` (tiny sizes, one repetition) in
a subprocess and checks the shape of the JSON report. No timing assertions: the figures are for
people to read (bench/README.md), the machine is shared and noisy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "engine.py"
SUMMARY_KEYS = {"median", "spread", "values"}


@pytest.fixture(scope="module")
def report() -> dict[str, object]:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--repeat", "1"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parsed = json.loads(proc.stdout)
    assert isinstance(parsed, dict)
    return parsed


def _summary(value: object) -> None:
    assert isinstance(value, dict) and set(value) == SUMMARY_KEYS, value
    assert len(value["values"]) == 1 and value["median"] >= 0


@pytest.mark.parametrize("key", ["engine_s", "bare_s", "ratio"], ids=str)
@pytest.mark.parametrize("shape", ["none_flat", "none_layered"], ids=str)
def test_dag_reports_engine_bare_and_ratio(report: dict[str, object], shape: str, key: str) -> None:
    dag = report["dag"]
    assert isinstance(dag, dict)
    _summary(dag[shape][key])


def test_dag_reports_bwrap_against_a_bare_bwrap_pool_or_says_why_not(report: dict[str, object]) -> None:
    dag = report["dag"]
    assert isinstance(dag, dict)
    if isinstance(dag.get("bwrap"), str):
        assert "unavailable" in dag["bwrap"]
        return
    assert dag["bwrap_argv"][-1].endswith("true")
    for shape in ("bwrap_flat", "bwrap_layered"):
        _summary(dag[shape]["ratio_vs_bare_bwrap"])


@pytest.mark.parametrize("store", ["memory", "sqlite"], ids=str)
def test_items_reports_time_rss_and_scaling_per_store(report: dict[str, object], store: str) -> None:
    items = report["items"]
    assert isinstance(items, dict)
    figures = items[store]
    for n in ("n40", "n80"):
        _summary(figures[n]["seconds"])
        _summary(figures[n]["peak_rss_mb"])
        _summary(figures[n]["gc_seconds"])
    _summary(figures["ratio_80_to_40"])


def test_latency_reports_engine_and_process_delays(report: dict[str, object]) -> None:
    latency = report["latency"]
    assert isinstance(latency, dict)
    for key in ("ready_to_run_call_ms", "ready_to_process_ms", "bare_spawn_to_process_ms"):
        _summary(latency[key])
