"""Engine feature tests: retry (only what failed runs again, also after a restart), resubmit
(plain and memoized), and set on suspend nodes, with real processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.workflows.conftest import EngineFactory, Harness, node, node_phase_is, nodes, phases, wait_until
from workflows.engine import Engine
from workflows.errors import Conflict, InvalidSpec, NotFound
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.base import PodRequest, PodResult
from workflows.executors.local import LocalExecutor
from workflows.model.ids import pod_name
from workflows.rerun import LABEL_RESUBMITTED_FROM
from workflows.resolution import DictTemplateGetter
from workflows.store.memory import MemoryStore
from workflows.store.sqlite import SqliteStore


@pytest.fixture(params=["memory", "sqlite"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """An engine (over either store) whose pods see the host's /tmp (no sandbox), so a test can flip a
    flag file they check."""
    store: Any = MemoryStore() if request.param == "memory" else await SqliteStore.open(tmp_path / "runs.db")
    data, getter = tmp_path / "data", DictTemplateGetter()
    executor = LocalExecutor(data_dir=data, artifacts=LocalArtifactStore(data / "artifacts"), logs=store,
                             isolation="none", grace_period=1.0)
    harness = Harness(engine=Engine(store=store, executor=executor, templates=getter), store=store,
                      templates=getter, data_dir=data, executor=executor)
    yield harness
    await harness.engine.close()
    executor.close()
    if isinstance(store, SqliteStore):
        await store.close()


def flaky_dag(name: str, flag: Path) -> str:
    """A DAG: ``a`` writes an output, ``b`` (after a) fails until ``flag`` exists, ``c`` (after b)."""
    return f"""
metadata: {{name: {name}}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: a, template: produce}}
      - {{name: b, template: check, dependencies: [a]}}
      - name: c
        template: show
        dependencies: [b]
        arguments: {{parameters: [{{name: v, value: "{{{{tasks.a.outputs.parameters.v}}}}"}}]}}
  - name: produce
    script:
      image: alpine
      command: [sh]
      source: "date +%s%N > /tmp/v; cat /tmp/v"
    outputs:
      parameters:
      - name: v
        valueFrom: {{path: /tmp/v}}
  - name: check
    container: {{image: alpine, command: [sh, -c, "test -e {flag}"]}}
  - name: show
    inputs: {{parameters: [{{name: v}}]}}
    container: {{image: alpine, command: [echo, "{{{{inputs.parameters.v}}}}"]}}
"""


async def test_retry_reruns_only_the_failed_task(engine: Harness, tmp_path: Path) -> None:
    flag = tmp_path / "ok"
    failed = await engine.run_yaml(flaky_dag("retry-dag", flag))
    assert failed["status"]["phase"] == "Failed", phases(failed)
    a_before, b_before = node(failed, "a"), node(failed, "b")
    assert b_before["phase"] == "Failed"

    flag.touch()
    started = await engine.engine.retry("default", "retry-dag")
    assert started["status"]["phase"] == "Running"
    done = await engine.engine.wait("default", "retry-dag")
    assert done["status"]["phase"] == "Succeeded", phases(done)
    a_after = node(done, "a")
    assert a_after["startedAt"] == a_before["startedAt"]  # not run again
    assert a_after["outputs"] == a_before["outputs"]
    assert node(done, "b")["phase"] == "Succeeded"
    value = next(p["value"] for p in a_before["outputs"]["parameters"] if p["name"] == "v")
    assert await engine.logs_of(done, "c") == [value]  # c used a's kept output
    assert await engine.logs_of(done, "a") == [value]  # a's pod ran once, in the first run


async def test_retry_refused_while_running_and_for_succeeded(engine: Harness) -> None:
    stored = await engine.submit_yaml("""
metadata: {name: retry-refused}
spec:
  entrypoint: main
  templates:
  - name: main
    suspend: {}
""")
    await wait_until(engine, stored, lambda wf: wf["status"].get("phase") == "Running", what="running")
    with pytest.raises(InvalidSpec, match="phase Running"):
        await engine.engine.retry("default", "retry-refused")
    await engine.engine.resume("default", "retry-refused")
    done = await engine.wait(stored)
    assert done["status"]["phase"] == "Succeeded"
    with pytest.raises(InvalidSpec, match="restartSuccessful"):
        await engine.engine.retry("default", "retry-refused")
    with pytest.raises(NotFound):
        await engine.engine.retry("default", "nope")


async def test_retry_restart_successful_selected_node(engine: Harness) -> None:
    """restartSuccessful + nodeFieldSelector re-runs the selected succeeded node and what follows it."""
    done = await engine.run_yaml("""
metadata: {name: retry-ok}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: one, template: echo}
    - - {name: two, template: echo}
  - name: echo
    container: {image: alpine, command: [echo, hi]}
""")
    assert done["status"]["phase"] == "Succeeded"
    one, two = node(done, "one"), node(done, "two")
    await engine.engine.retry("default", "retry-ok", restart_successful=True, node_field_selector="displayName=two")
    again = await engine.engine.wait("default", "retry-ok")
    assert again["status"]["phase"] == "Succeeded", phases(again)
    assert node(again, "one")["startedAt"] == one["startedAt"]
    assert node(again, "two")["id"] == two["id"]
    assert len(await engine.logs_of(again, "two")) == 2  # ran twice: once per run


async def test_retry_after_restart_and_with_parameters(make_engine: EngineFactory, tmp_path: Path) -> None:
    """A finished run known only to the store is retried by a new engine, with a new parameter."""
    store = MemoryStore()
    first = await make_engine(store=store)
    text = """
metadata: {name: retry-param}
spec:
  entrypoint: main
  arguments: {parameters: [{name: code, value: "1"}]}
  templates:
  - name: main
    container: {image: alpine, command: [sh, -c, "exit {{workflow.parameters.code}}"]}
"""
    failed = await first.run_yaml(text)
    assert failed["status"]["phase"] == "Failed"
    await first.engine.close()
    second = await make_engine(store=store, data_dir=tmp_path / "second")
    await second.engine.retry("default", "retry-param", parameters=["code=0"])
    done = await second.engine.wait("default", "retry-param")
    assert done["status"]["phase"] == "Succeeded", phases(done)
    assert done["spec"]["arguments"]["parameters"] == [{"name": "code", "value": "0"}]


async def test_resubmit_creates_a_new_run(engine: Harness) -> None:
    done = await engine.run_yaml("""
metadata: {name: resub, labels: {app: ci}}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine, command: [echo, hi]}
""")
    new = await engine.engine.resubmit("default", "resub")
    assert new["metadata"]["name"].startswith("resub-")
    assert new["metadata"]["labels"] == {"app": "ci", LABEL_RESUBMITTED_FROM: "resub"}
    assert new["status"]["phase"] == "Running"
    second = await engine.engine.wait("default", new["metadata"]["name"])
    assert second["status"]["phase"] == "Succeeded"
    assert (await engine.store.get("default", "resub"))["status"]["startedAt"] == done["status"]["startedAt"]


async def test_resubmit_memoized_keeps_succeeded_nodes(engine: Harness, tmp_path: Path) -> None:
    flag = tmp_path / "ok"
    failed = await engine.run_yaml(flaky_dag("memo", flag))
    assert failed["status"]["phase"] == "Failed"
    flag.touch()
    new = await engine.engine.resubmit("default", "memo", memoized=True)
    name = new["metadata"]["name"]
    done = await engine.engine.wait("default", name)
    assert done["status"]["phase"] == "Succeeded", phases(done)
    a_old = node(failed, "a")
    a_new = node(done, "a")
    assert a_new["outputs"] == a_old["outputs"] and a_new["id"] != a_old["id"]
    assert a_new["message"] == f"original pod: {a_old['id']}"
    assert await engine.logs_of(done, "a") == []  # not run in the new run
    value = next(p["value"] for p in a_old["outputs"]["parameters"] if p["name"] == "v")
    assert await engine.logs_of(done, "c") == [value]


async def test_resubmit_memoized_refused_for_succeeded(engine: Harness) -> None:
    await engine.run_yaml("""
metadata: {name: memo-ok}
spec:
  entrypoint: main
  templates:
  - {name: main, container: {image: alpine, command: [echo, hi]}}
""")
    with pytest.raises(InvalidSpec, match="Failed/Error"):
        await engine.engine.resubmit("default", "memo-ok", memoized=True)


SUSPEND = """
metadata: {name: NAME}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: approve, template: approve}
    - - name: use
        template: echo
        arguments: {parameters: [{name: m, value: "{{steps.approve.outputs.parameters.answer}}"}]}
  - name: approve
    suspend: {}
    outputs:
      parameters:
      - name: answer
        valueFrom: {supplied: {}}
  - name: echo
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
"""


async def test_set_node_outputs_and_phase(engine: Harness) -> None:
    stored = await engine.submit_yaml(SUSPEND.replace("NAME", "set-node"))
    await wait_until(engine, stored, node_phase_is("approve", "Running"), what="suspend node running")
    with pytest.raises(InvalidSpec, match="nodeFieldSelector"):
        await engine.engine.set_nodes("default", "set-node", node_field_selector="displayName=nope",
                                      phase="Succeeded")
    with pytest.raises(InvalidSpec, match="phase"):
        await engine.engine.set_nodes("default", "set-node", node_field_selector="displayName=approve")
    ids = await engine.engine.set_nodes("default", "set-node", node_field_selector="displayName=approve",
                                        phase="Succeeded", output_parameters={"answer": "yes"}, message="ok")
    current = await engine.engine.current("default", "set-node")
    assert nodes(current)[ids[0]]["phase"] == "Succeeded"
    done = await engine.wait(stored)
    assert done["status"]["phase"] == "Succeeded", phases(done)
    assert node(done, "approve")["message"] == "ok"
    assert await engine.logs_of(done, "use") == ["yes"]
    with pytest.raises(Conflict):
        await engine.engine.set_nodes("default", "set-node", node_field_selector="displayName=approve",
                                      phase="Succeeded")


async def test_set_node_failed(engine: Harness) -> None:
    stored = await engine.submit_yaml(SUSPEND.replace("NAME", "set-fail"))
    await wait_until(engine, stored, node_phase_is("approve", "Running"), what="suspend node running")
    await engine.engine.set_nodes("default", "set-fail", node_field_selector="templateName=approve",
                                  phase="Failed", message="denied")
    done = await engine.wait(stored)
    assert done["status"]["phase"] == "Failed"
    assert node(done, "approve")["message"] == "denied"


class Forgetting:
    """A LocalExecutor that also offers ``forget_pods`` and records the calls."""

    def __init__(self, inner: LocalExecutor) -> None:
        self.inner = inner
        self.forgotten: list[tuple[str, str, tuple[str, ...]]] = []

    async def run(self, pod: PodRequest, *, on_ready: Callable[[str], None]) -> PodResult:
        return await self.inner.run(pod, on_ready=on_ready)

    async def forget_pods(self, namespace: str, workflow: str, pods: tuple[str, ...]) -> None:
        self.forgotten.append((namespace, workflow, pods))


async def test_retry_asks_the_executor_to_forget_the_rerun_pods(tmp_path: Path) -> None:
    store = MemoryStore()
    inner = LocalExecutor(data_dir=tmp_path / "data", artifacts=LocalArtifactStore(tmp_path / "art"), logs=store,
                          isolation="none", grace_period=1.0)
    executor = Forgetting(inner)
    engine = Engine(store=store, executor=executor, templates=DictTemplateGetter())
    try:
        await engine.submit(yaml.safe_load(flaky_dag("forget", tmp_path / "ok")))
        failed = await engine.wait("default", "forget")
        (tmp_path / "ok").touch()
        await engine.retry("default", "forget")
        assert (await engine.wait("default", "forget"))["status"]["phase"] == "Succeeded"
    finally:
        await engine.close()
        inner.close()
    b = node(failed, "b")
    assert executor.forgotten == [("default", "forget", (pod_name("forget", b["name"], "check"),))]


async def test_retry_after_restart_over_the_same_data_dir(make_engine: EngineFactory) -> None:
    store = MemoryStore()
    first = await make_engine(store=store)
    text = """
metadata: {name: same-dir}
spec:
  entrypoint: main
  arguments: {parameters: [{name: code, value: "1"}]}
  templates:
  - name: main
    container: {image: alpine, command: [sh, -c, "exit {{workflow.parameters.code}}"]}
"""
    assert (await first.run_yaml(text))["status"]["phase"] == "Failed"
    await first.engine.close()
    first.executor.close()
    second = await make_engine(store=store)
    await second.engine.retry("default", "same-dir", parameters=["code=0"])
    assert (await second.engine.wait("default", "same-dir"))["status"]["phase"] == "Succeeded"
