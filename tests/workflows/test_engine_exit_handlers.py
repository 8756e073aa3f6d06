"""Engine feature tests: workflow onExit, step/task onExit, hooks.exit, continueOn."""

# ruff: noqa: E501  (workflow YAML lines)
from __future__ import annotations

import json

from tests.workflows.conftest import Harness, by_name, node, nodes, phases

EXIT_TEMPLATES = """
  - name: fail
    container: {image: alpine, command: [sh, -c, "echo failing; exit 1"]}
  - name: pass
    container: {image: alpine, command: [echo, passed]}
  - name: report
    container:
      image: alpine
      command: [sh, -c]
      args: ["echo 'status={{workflow.status}}'; echo 'duration={{workflow.duration}}'; cat <<'EOF'\\n{{workflow.failures}}\\nEOF"]
  - name: bad-exit
    container: {image: alpine, command: [sh, -c, "exit 2"]}
"""


async def test_workflow_on_exit_runs_after_failure_and_sees_status(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: onexit-fail}
spec:
  entrypoint: main
  onExit: report
  templates:
  - name: main
    steps:
    - - {name: broken, template: fail}
""" + EXIT_TEMPLATES)
    assert wf["status"]["phase"] == "Failed"
    exit_node = by_name(wf, "onexit-fail.onExit")
    assert exit_node["phase"] == "Succeeded" and exit_node["type"] == "Pod"
    assert exit_node["startedAt"] >= node(wf, "broken")["finishedAt"]
    lines = await engine.logs_of(wf, exit_node["displayName"])
    assert lines[0] == "status=Failed"
    assert lines[1].startswith("duration=") and float(lines[1].split("=", 1)[1]) >= 0
    failures = json.loads("\n".join(lines[2:]))
    broken = [f for f in failures if f["displayName"] == "broken"]
    assert broken and broken[0]["message"] == "Error (exit code 1)"
    assert broken[0]["templateName"] == "fail" and broken[0]["phase"] == "Failed"
    assert broken[0]["podName"] == f"onexit-fail-fail-{node(wf, 'broken')['id'].rsplit('-', 1)[-1]}"
    assert broken[0]["finishedAt"] == node(wf, "broken")["finishedAt"]
    # Argo lists every Failed/Error node, not only pods
    assert sorted(f["displayName"] for f in failures) == ["[0]", "broken", "onexit-fail"]


async def test_workflow_on_exit_sees_success(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: onexit-ok}
spec:
  entrypoint: pass
  onExit: report
  templates:
""" + EXIT_TEMPLATES)
    assert wf["status"]["phase"] == "Succeeded"
    exit_node = by_name(wf, "onexit-ok.onExit")
    assert (await engine.logs_of(wf, exit_node["displayName"]))[0] == "status=Succeeded"


async def test_failed_exit_handler_fails_a_succeeded_workflow(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: onexit-bad}
spec:
  entrypoint: pass
  onExit: bad-exit
  templates:
""" + EXIT_TEMPLATES)
    assert node(wf, "onexit-bad")["phase"] == "Succeeded"
    assert by_name(wf, "onexit-bad.onExit")["phase"] == "Failed"
    assert wf["status"]["phase"] == "Failed"


async def test_step_on_exit_and_task_exit_hook(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: stepexit}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: a, template: fail, onExit: pass, continueOn: {failed: true}}
    - - {name: d, template: d}
  - name: d
    dag:
      tasks:
      - name: t
        template: pass
        hooks:
          exit: {template: pass}
      - {name: u, template: pass, depends: t, onExit: pass}
""" + EXIT_TEMPLATES)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    a_exit = by_name(wf, "stepexit[0].a.onExit")
    assert a_exit["phase"] == "Succeeded"
    assert a_exit["startedAt"] >= node(wf, "a")["finishedAt"]
    assert by_name(wf, "stepexit[1].d.t.onExit")["phase"] == "Succeeded"
    assert by_name(wf, "stepexit[1].d.u.onExit")["phase"] == "Succeeded"
    assert node(wf, "a")["phase"] == "Failed"


async def test_continue_on_failed_and_error(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: continueon}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: f, template: fail, continueOn: {failed: true}}
      - {name: e, template: err, continueOn: {error: true}}
    - - {name: after, template: pass}
  - name: err
    container: {image: alpine, command: [/nonexistent/binary]}
""" + EXIT_TEMPLATES)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert node(wf, "f")["phase"] == "Failed"
    assert node(wf, "e")["phase"] == "Error"
    assert node(wf, "after")["phase"] == "Succeeded"


async def test_continue_on_failed_does_not_cover_error(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: continueon-no}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: e, template: err, continueOn: {failed: true}}
    - - {name: after, template: pass}
  - name: err
    container: {image: alpine, command: [/nonexistent/binary]}
""" + EXIT_TEMPLATES)
    assert wf["status"]["phase"] == "Failed", phases(wf)
    assert not [n for n in nodes(wf).values() if n["displayName"] == "after"]


async def test_steps_exit_handler_and_workflow_exit_hook(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: exit-steps}
spec:
  entrypoint: pass
  hooks:
    exit: {template: cleanup}
  templates:
  - name: cleanup
    steps:
    - - {name: c1, template: pass}
    - - {name: c2, template: report}
""" + EXIT_TEMPLATES)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    exit_node = by_name(wf, "exit-steps.onExit")
    assert exit_node["type"] == "Steps" and exit_node["phase"] == "Succeeded"
    assert (await engine.logs_of(wf, "c2"))[0] == "status=Succeeded"


async def test_dag_leaf_continue_on_failed(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: dag-continue}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - {name: ok, template: pass}
      - {name: bad, template: fail, continueOn: {failed: true}}
""" + EXIT_TEMPLATES)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert node(wf, "bad")["phase"] == "Failed"


async def test_exit_handler_sees_error_status(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: onexit-error}
spec:
  entrypoint: err
  onExit: report
  templates:
  - name: err
    container: {image: alpine, command: [/nonexistent/binary]}
""" + EXIT_TEMPLATES)
    assert wf["status"]["phase"] == "Error"
    exit_node = by_name(wf, "onexit-error.onExit")
    lines = await engine.logs_of(wf, exit_node["displayName"])
    assert lines[0] == "status=Error"
    failures = json.loads("\n".join(lines[2:]))
    assert [f["phase"] for f in failures if f["displayName"] == "onexit-error"] == ["Error"]


async def test_exit_hooks_receive_arguments_from_their_step(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: hookargs}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: s
        template: produce
        hooks:
          exit:
            template: say
            arguments: {parameters: [{name: m, value: "step {{steps.s.outputs.parameters.out}} {{steps.s.status}}"}]}
    - - {name: d, template: d}
  - name: d
    dag:
      tasks:
      - name: t
        template: produce
        hooks:
          exit:
            template: say
            arguments: {parameters: [{name: m, value: "task {{tasks.t.outputs.parameters.out}} {{tasks.t.status}}"}]}
  - name: produce
    container: {image: alpine, command: [sh, -c, "echo -n made > /tmp/o"]}
    outputs:
      parameters:
      - {name: out, valueFrom: {path: /tmp/o}}
  - name: say
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
""")
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    step_exit = by_name(wf, "hookargs[0].s.onExit")
    task_exit = by_name(wf, "hookargs[1].d.t.onExit")
    assert await engine.logs_of(wf, step_exit["displayName"]) == ["step made Succeeded"]
    assert await engine.logs_of(wf, task_exit["displayName"]) == ["task made Succeeded"]
