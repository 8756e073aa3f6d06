"""Engine feature tests: retryStrategy limits, policies, backoff and expression; Retry node shape."""

# ruff: noqa: E501  (workflow YAML lines)
from __future__ import annotations

import asyncio

from tests.workflows.conftest import Harness, children, node, phases

# exits with the code listed for each attempt ({{retries}} is the attempt number); "E" = cannot start (Error)
TEMPLATE = """
metadata: {name: %(name)s}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: r, template: attempt}
  - name: attempt
    retryStrategy: %(strategy)s
    container:
      image: alpine
      command: ["{{= sprig.splitList(',', '%(codes)s')[asInt(retries)] == 'E' ? '/nonexistent/binary' : 'sh' }}"]
      args: [-c, "echo attempt {{retries}}; exit {{= sprig.splitList(',', '%(codes)s')[asInt(retries)] }}"]
"""


def wf_text(name: str, strategy: str, codes: str) -> str:
    return TEMPLATE % {"name": name, "strategy": strategy, "codes": codes}


def attempts(wf: dict, name: str = "r") -> list[tuple[str, str]]:  # type: ignore[type-arg]
    retry = node(wf, name)
    assert retry["type"] == "Retry", retry
    return [(c["displayName"], c["phase"]) for c in children(wf, retry)]


async def test_limit_exhausted(engine: Harness) -> None:
    wf = await engine.run_yaml(wf_text("limit", '{limit: "2"}', "1,1,1,1"))
    assert wf["status"]["phase"] == "Failed"
    assert attempts(wf) == [("r(0)", "Failed"), ("r(1)", "Failed"), ("r(2)", "Failed")]
    r = node(wf, "r")
    assert r["phase"] == "Failed" and r["message"] == "No more retries left"
    assert children(wf, r)[1]["name"] == "limit[0].r(1)"
    assert await engine.logs_of(wf, "r(2)") == ["attempt 2"]


async def test_succeeds_on_a_later_attempt(engine: Harness) -> None:
    wf = await engine.run_yaml(wf_text("later", "{limit: 3}", "1,1,0,0"))
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert attempts(wf) == [("r(0)", "Failed"), ("r(1)", "Failed"), ("r(2)", "Succeeded")]
    assert node(wf, "r")["phase"] == "Succeeded"
    assert node(wf, "r(2)")["startedAt"] >= node(wf, "r(1)")["finishedAt"]


async def test_policies(engine: Harness) -> None:
    cases = {
        "on-error-failed": ("{limit: 2, retryPolicy: OnError}", "1,0", [("r(0)", "Failed")]),
        "on-error-error": ("{limit: 2, retryPolicy: OnError}", "E,0", [("r(0)", "Error"), ("r(1)", "Succeeded")]),
        "on-failure-error": ("{limit: 2, retryPolicy: OnFailure}", "E,0", [("r(0)", "Error")]),
        "default-error": ("{limit: 2}", "E,0", [("r(0)", "Error")]),
        "always": ("{limit: 3, retryPolicy: Always}", "1,E,0", [("r(0)", "Failed"), ("r(1)", "Error"), ("r(2)", "Succeeded")]),
        "transient": ("{limit: 2, retryPolicy: OnTransientError}", "1,0", [("r(0)", "Failed")]),
    }
    submitted = {name: await engine.submit_yaml(wf_text(name, s, c)) for name, (s, c, _) in cases.items()}
    done = dict(zip(submitted, await asyncio.gather(*(engine.wait(w) for w in submitted.values())), strict=True))
    for name, (_, _, expected) in cases.items():
        assert attempts(done[name]) == expected, name
    assert node(done["on-error-failed"], "r")["message"] == "Error (exit code 1)"
    assert done["on-error-failed"]["status"]["phase"] == "Failed"
    assert done["on-error-error"]["status"]["phase"] == "Succeeded"


async def test_expression_stops_retrying(engine: Harness) -> None:
    wf = await engine.run_yaml(wf_text(
        "expr", "{limit: 5, expression: \"asInt(lastRetry.exitCode) == 2 && lastRetry.status == 'Failed'\"}", "2,3,0"))
    assert wf["status"]["phase"] == "Failed"
    assert attempts(wf) == [("r(0)", "Failed"), ("r(1)", "Failed")]
    assert node(wf, "r")["message"] == "retryStrategy.expression evaluated to false"


async def test_backoff_factor_and_cap(engine: Harness) -> None:
    wf = await engine.run_yaml(wf_text("backoff", "{limit: 2, backoff: {duration: 1s, factor: 2, cap: 1s}}", "1,1,1"))
    assert wf["status"]["phase"] == "Failed"
    assert attempts(wf) == [("r(0)", "Failed"), ("r(1)", "Failed"), ("r(2)", "Failed")]
    assert node(wf, "r")["message"] == "No more retries left"
    assert node(wf, "r(1)")["startedAt"] >= node(wf, "r(0)")["finishedAt"]
    assert node(wf, "r(2)")["startedAt"] >= node(wf, "r(1)")["finishedAt"]


async def test_backoff_beyond_max_duration_stops(engine: Harness) -> None:
    wf = await engine.run_yaml(wf_text("maxdur", "{limit: 3, backoff: {duration: 5s, maxDuration: 1s}}", "1,0"))
    assert wf["status"]["phase"] == "Failed"
    assert attempts(wf) == [("r(0)", "Failed")]
    assert node(wf, "r")["message"] == "Backoff would exceed max duration limit"


async def test_retry_in_dag_and_last_retry_variables(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: dagretry}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - {name: t, template: attempt}
  - name: attempt
    retryStrategy: {limit: 2, retryPolicy: Always}
    script:
      image: alpine
      command: [sh]
      source: |
        echo "try {{retries}} {{lastRetry.exitCode}} {{lastRetry.status}}"
        [ {{retries}} -ge 1 ] || exit 4
""")
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert attempts(wf, "t") == [("t(0)", "Failed"), ("t(1)", "Succeeded")]
    assert node(wf, "t(0)")["outputs"]["result"] == "try 0 0 "
    assert node(wf, "t(1)")["outputs"]["result"] == "try 1 4 Failed"
    assert node(wf, "t")["outputs"]["result"] == "try 1 4 Failed"


async def test_retry_with_items_names_and_outputs(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: retryitems}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: r
        template: attempt
        arguments: {parameters: [{name: x, value: "{{item}}"}]}
        withItems: [a]
    - - name: show
        template: show
        arguments: {parameters: [{name: m, value: "{{steps.r.outputs.parameters.p}}"}]}
  - name: attempt
    inputs: {parameters: [{name: x}]}
    retryStrategy: {limit: 1}
    script:
      image: alpine
      command: [sh]
      source: |
        echo -n "{{inputs.parameters.x}}{{retries}}" > /tmp/p
        [ {{retries}} -ge 1 ]
    outputs:
      parameters:
      - name: p
        valueFrom: {path: /tmp/p}
  - name: show
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
""")
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert attempts(wf, "r(0:a)") == [("r(0:a)(0)", "Failed"), ("r(0:a)(1)", "Succeeded")]
    assert await engine.logs_of(wf, "show") == ['["a1"]']


async def test_retry_of_a_steps_template(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: retrysteps}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: r, template: inner}
  - name: inner
    retryStrategy: {limit: 2}
    steps:
    - - {name: leaf, template: leaf}
  - name: leaf
    container: {image: alpine, command: [sh, -c, "exit 1"]}
""")
    assert wf["status"]["phase"] == "Failed"
    kids = attempts(wf)
    assert kids == [("r(0)", "Failed"), ("r(1)", "Failed"), ("r(2)", "Failed")]
    r0 = node(wf, "r(0)")
    assert r0["type"] == "Steps"
