"""Engine feature tests: specs rejected at submit (with the field path) and errors found while running."""

from __future__ import annotations

import pytest

from tests.workflows.conftest import Harness, node, phases
from workflows.errors import AlreadyExists, Conflict, NotFound, Problems


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("""
metadata: {name: e1}
spec:
  entrypoint: nope
  templates:
  - name: main
    container: {image: alpine, command: ["true"]}
""", "entrypoint"),
        ("""
metadata: {name: e2}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: a, template: missing}
""", "missing"),
        ("""
metadata: {name: e3}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: a, template: leaf, depends: b}
      - {name: b, template: leaf, depends: a}
  - name: leaf
    container: {image: alpine, command: ["true"]}
""", "cycl"),
        ("""
metadata: {name: e4}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: a, template: needs}
  - name: needs
    inputs: {parameters: [{name: x}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.x}}"]}
""", "x"),
        ("""
metadata: {name: e5}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine, command: [echo, "{{inputs.parameters.nope}}"]}
""", "inputs.parameters.nope"),
    ],
    ids=["unknown-entrypoint", "unknown-template", "dag-cycle", "missing-argument", "unknown-variable"],
)
async def test_invalid_specs_rejected_at_submit(engine: Harness, text: str, needle: str) -> None:
    with pytest.raises(Problems) as err:
        await engine.submit_yaml(text)
    assert needle in str(err.value)
    assert "spec." in str(err.value)


async def test_bad_with_param_errors_the_node(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: badparam}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: gen, template: gen}
    - - name: use
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withParam: "{{steps.gen.outputs.result}}"
  - name: gen
    script: {image: alpine, command: [sh], source: "echo not-json"}
  - name: echo
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
""")
    assert wf["status"]["phase"] in ("Failed", "Error"), phases(wf)
    assert wf["status"]["message"]
    assert node(wf, "gen")["phase"] == "Succeeded"


async def test_command_not_found_is_error(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: nocmd}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine, command: [/definitely/not/here]}
""")
    assert wf["status"]["phase"] == "Error"
    assert node(wf, "nocmd")["phase"] == "Error"
    assert node(wf, "nocmd")["message"]


async def test_same_name_twice_is_rejected_and_stop_of_finished_run_conflicts(engine: Harness) -> None:
    text = """
metadata: {name: twice}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine, command: ["true"]}
"""
    wf = await engine.run_yaml(text)
    assert wf["status"]["phase"] == "Succeeded"
    with pytest.raises(AlreadyExists):
        await engine.submit_yaml(text)
    with pytest.raises(Conflict):
        await engine.engine.stop("default", "twice")
    with pytest.raises(NotFound):
        await engine.engine.stop("default", "never-submitted")
