"""Engine feature tests: a server restart in the middle of a run (SqliteStore + the same data dir)."""

# ruff: noqa: E501  (workflow YAML lines)
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.workflows.conftest import EngineFactory, children, node, node_phase_is, phases, processes_with, wait_until
from workflows.store.sqlite import SqliteStore

TEXT = """
metadata: {name: %(name)s}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: first, template: first}
    - - {name: slow, template: slow}
    - - {name: after, template: after}
  - name: first
    container: {image: alpine, command: [echo, first-ran]}
  - name: slow
    %(retry)s
    container:
      image: python
      command: [python3, -c, "import sys, time; print('slow {{retries}}', flush=True); time.sleep(30 if '{{retries}}' in ('0', '{{' + 'retries}}') else 0)", "%(token)s"]
  - name: after
    container: {image: alpine, command: [echo, after-ran]}
"""


@pytest.mark.parametrize("retry", ["", "retryStrategy: {limit: 2, retryPolicy: OnError}"], ids=["no-retry", "on-error"])
async def test_running_pod_is_lost_on_restart(make_engine: EngineFactory, tmp_path: Path, retry: str) -> None:
    token = f"h8-restart-{uuid.uuid4().hex}"
    name = "restart-retry" if retry else "restart"
    text = TEXT % {"name": name, "retry": retry, "token": token}
    if not retry:
        text = text.replace("{{retries}}", "0")
    store = await SqliteStore.open(tmp_path / "runs.db")
    try:
        first = await make_engine(store=store, data_dir=tmp_path / "data")
        stored = await first.submit_yaml(text)
        await wait_until(first, stored, node_phase_is("slow" if not retry else "slow(0)", "Running"), what="slow running")
        await first.engine.close()
        assert processes_with(token) == []

        second = await make_engine(store=store, data_dir=tmp_path / "data")
        assert await second.engine.resume_all() == 1
        wf = await second.wait(stored)
        logs = await second.logs_of(wf)
        await second.engine.close()
    finally:
        await store.close()

    assert logs.count("first-ran") == 1, logs
    assert processes_with(token) == []
    if not retry:
        assert wf["status"]["phase"] == "Failed", phases(wf)
        slow = node(wf, "slow")
        assert slow["phase"] == "Error"
        assert "server" in slow["message"] and "stop" in slow["message"]
        assert "after-ran" not in logs
    else:
        assert wf["status"]["phase"] == "Succeeded", phases(wf)
        slow = node(wf, "slow")
        assert [(c["displayName"], c["phase"]) for c in children(wf, slow)] == [("slow(0)", "Error"), ("slow(1)", "Succeeded")]
        assert "server" in node(wf, "slow(0)")["message"]
        assert logs.count("after-ran") == 1
        assert logs.count("slow 1") == 1
