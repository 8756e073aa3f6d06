"""Engine feature tests: DAG dependencies, enhanced ``depends``, target, failFast."""

# ruff: noqa: E501  (workflow YAML lines)
from __future__ import annotations

from tests.workflows.conftest import Harness, children, node, nodes, phases

PASS_FAIL = """
  - name: pass
    container: {image: alpine, command: [sh, -c, "echo pass"]}
  - name: fail
    container: {image: alpine, command: [sh, -c, "exit 1"]}
  - name: slow
    container: {image: alpine, command: [sh, -c, "sleep 1; echo slow"]}
"""


async def test_diamond_order_and_shape(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: diamond}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - {name: A, template: pass}
      - {name: B, template: pass, depends: A}
      - {name: C, template: pass, depends: A}
      - {name: D, template: pass, depends: "B && C"}
""" + PASS_FAIL)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    root = node(wf, "diamond")
    assert root["type"] == "DAG"
    assert [c["displayName"] for c in children(wf, root)] == ["A"]
    a, b, c, d = (node(wf, x) for x in "ABCD")
    assert sorted(x["displayName"] for x in children(wf, a)) == ["B", "C"]
    assert [x["displayName"] for x in children(wf, b)] == ["D"]
    assert b["name"] == "diamond.B" and b["type"] == "Pod" and b["boundaryID"] == root["id"]
    assert b["startedAt"] >= a["finishedAt"] and c["startedAt"] >= a["finishedAt"]
    assert d["startedAt"] >= max(b["finishedAt"], c["finishedAt"])
    assert root["outboundNodes"] == [d["id"]]
    assert wf["status"]["progress"] == "4/4"


async def test_enhanced_depends_results(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: enhanced}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - {name: P, template: pass}
      - {name: F, template: fail}
      - {name: S, template: pass, when: "1 == 2"}
      - {name: on-failed, template: pass, depends: "F.Failed"}
      - {name: on-succeeded-f, template: pass, depends: "F.Succeeded"}
      - {name: on-omitted, template: pass, depends: "on-succeeded-f.Omitted"}
      - {name: on-skipped, template: pass, depends: "S.Skipped"}
      - {name: bare-skipped, template: pass, depends: "S"}
      - {name: and-not, template: pass, depends: "P && !F.Succeeded"}
      - {name: or, template: pass, depends: "(P.Failed || F.Failed) && P.Succeeded"}
      - {name: any, template: pass, depends: "F.Succeeded || F.Errored"}
""" + PASS_FAIL)
    ph = phases(wf)
    for ran in ("P", "on-failed", "on-omitted", "on-skipped", "bare-skipped", "and-not", "or"):
        assert ph[ran] == "Succeeded", (ran, ph)
    assert ph["F"] == "Failed"
    assert ph["S"] == "Skipped"
    for omitted in ("on-succeeded-f", "any"):
        n = node(wf, omitted)
        assert n["phase"] == "Omitted", (omitted, ph)
        assert n["type"] == "Skipped"
        assert n["message"] == "omitted: depends condition not met"
    # 'any' is a target task omitted below the failed F: the branch is Failed, so the DAG is
    assert wf["status"]["phase"] == "Failed"


async def test_failed_inner_task_handled_by_depends_succeeds(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: handled}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - {name: F, template: fail}
      - {name: cleanup, template: pass, depends: "F.Failed || F.Succeeded"}
""" + PASS_FAIL)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert node(wf, "F")["phase"] == "Failed"
    assert node(wf, "cleanup")["phase"] == "Succeeded"


async def test_errored_dependency(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: errored}
spec:
  entrypoint: d
  arguments: {parameters: [{name: x, value: nope}]}
  templates:
  - name: d
    dag:
      tasks:
      - name: E
        template: choose
        arguments: {parameters: [{name: x, value: "{{workflow.parameters.x}}"}]}
      - {name: on-error, template: pass, depends: "E.Errored"}
      - {name: on-fail, template: pass, depends: "E.Failed"}
      - {name: after, template: pass, depends: "on-error"}
  - name: choose
    inputs:
      parameters:
      - {name: x, enum: [a, b]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.x}}"]}
""" + PASS_FAIL)
    ph = phases(wf)
    assert ph["E"] == "Error", ph
    assert "x" in node(wf, "E")["message"]
    assert ph["on-error"] == "Succeeded"
    assert ph["after"] == "Succeeded"
    assert ph["on-fail"] == "Omitted"


async def test_any_succeeded_all_failed(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: anyall}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - {name: T, template: exit, arguments: {parameters: [{name: c, value: "{{item}}"}]}, withItems: [0, 1]}
      - {name: U, template: exit, arguments: {parameters: [{name: c, value: "{{item}}"}]}, withItems: [1, 2]}
      - {name: t-any, template: pass, depends: "T.AnySucceeded"}
      - {name: t-all, template: pass, depends: "T.AllFailed"}
      - {name: u-any, template: pass, depends: "U.AnySucceeded"}
      - {name: u-all, template: pass, depends: "U.AllFailed"}
  - name: exit
    inputs: {parameters: [{name: c}]}
    container: {image: alpine, command: [sh, -c, "exit {{inputs.parameters.c}}"]}
""" + PASS_FAIL)
    ph = phases(wf)
    assert ph["t-any"] == "Succeeded", ph
    assert ph["t-all"] == "Omitted", ph
    assert ph["u-any"] == "Omitted", ph
    assert ph["u-all"] == "Succeeded", ph
    t = node(wf, "T")
    assert t["type"] == "TaskGroup"
    assert sorted(c["displayName"] for c in children(wf, t)) == ["T(0:0)", "T(1:1)"]
    assert wf["status"]["phase"] == "Failed", (ph, t)


async def test_target_runs_only_needed_tasks(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: target}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      target: "B E"
      tasks:
      - {name: A, template: pass}
      - {name: B, template: pass, depends: A}
      - {name: C, template: pass, depends: B}
      - {name: D, template: pass}
      - {name: E, template: pass}
""" + PASS_FAIL)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert sorted(n["displayName"] for n in nodes(wf).values() if n["type"] == "Pod") == ["A", "B", "E"]


async def test_fail_fast_default_fails_the_dag_once_running_branches_settle(engine: Harness) -> None:
    """Argo's assessDAGPhase walks the DAG first and answers Running while any node is unfulfilled, so
    failFast does not cut short a branch already under way: ``after-s`` still runs once ``S`` is done
    (workflow/controller/dag.go). failFast decides the phase once nothing runs: Failed."""
    wf = await engine.run_yaml("""
metadata: {name: failfast}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - {name: F, template: fail}
      - {name: S, template: slow}
      - {name: after-s, template: pass, depends: S}
""" + PASS_FAIL)
    assert wf["status"]["phase"] == "Failed"
    assert node(wf, "F")["phase"] == "Failed"
    assert node(wf, "after-s")["phase"] == "Succeeded"


async def test_fail_fast_false_lets_others_finish(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: nofailfast}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      failFast: false
      tasks:
      - {name: F, template: fail}
      - {name: S, template: slow}
      - {name: after-s, template: pass, depends: S}
""" + PASS_FAIL)
    assert wf["status"]["phase"] == "Failed"
    assert node(wf, "after-s")["phase"] == "Succeeded"
    assert node(wf, "S")["phase"] == "Succeeded"


async def test_daemoned_dependency_and_inline_task(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: daemoned}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - {name: srv, template: srv}
      - {name: on-daemoned, template: pass, depends: "srv.Daemoned"}
      - name: inl
        depends: on-daemoned
        inline:
          script: {image: python, command: [python3], source: "print('inline')"}
  - name: srv
    daemon: true
    container: {image: alpine, command: [sleep, "30"]}
""" + PASS_FAIL)
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert node(wf, "on-daemoned")["phase"] == "Succeeded"
    assert node(wf, "inl")["outputs"]["result"] == "inline"
    srv = node(wf, "srv")
    assert srv["daemoned"] is True
    assert srv["phase"] == "Succeeded"


async def test_when_item_and_template_parallelism_in_dag(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: dagwhen}
spec:
  entrypoint: d
  templates:
  - name: d
    parallelism: 1
    dag:
      tasks:
      - name: t
        template: echo
        arguments: {parameters: [{name: m, value: "{{item}}"}]}
        withItems: [1, 2, 3]
        when: "{{item}} >= 2"
      - name: after
        template: echo
        depends: t
        arguments: {parameters: [{name: m, value: done}]}
  - name: echo
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [sh, -c, "echo start; sleep 0.3; echo end; echo {{inputs.parameters.m}} >&2"]}
""")
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    ph = phases(wf)
    assert ph["t(0:1)"] == "Skipped" and ph["t(1:2)"] == "Succeeded" and ph["t(2:3)"] == "Succeeded"
    lines = await engine.logs_of(wf)
    running = peak = 0
    for line in lines:
        running += {"start": 1, "end": -1}.get(line, 0)
        peak = max(peak, running)
    assert peak == 1, lines


async def test_progress_counts_finished_pods(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: progress}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      failFast: false
      tasks:
      - {name: A, template: pass}
      - {name: F, template: fail}
      - {name: S, template: pass, when: "a == b"}
""" + PASS_FAIL)
    assert wf["status"]["phase"] == "Failed"
    # Argo's progress.UpdateProgress: executable nodes count 1 each, complete only when
    # Succeeded/Skipped/Omitted; a Failed pod stays 0/1; the Skipped node is not executable
    assert wf["status"]["progress"] == "1/2"


async def test_task_variables(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: taskvars}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - {name: gen, template: gen}
      - name: show
        depends: gen
        template: show
        arguments:
          parameters:
          - {name: m, value: "{{tasks.gen.id}}|{{tasks.gen.status}}|{{tasks.gen.exitCode}}|{{tasks.gen.startedAt}}|{{tasks.gen.finishedAt}}|{{tasks.gen.outputs.result}}|{{tasks.gen.outputs.parameters.p}}|{{tasks.gen.ip}}"}
  - name: gen
    script: {image: alpine, command: [sh], source: "echo -n pv > /tmp/p; echo res"}
    outputs:
      parameters:
      - {name: p, valueFrom: {path: /tmp/p}}
  - name: show
    inputs: {parameters: [{name: m}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.m}}"]}
""")
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    gen = node(wf, "gen")
    (line,) = await engine.logs_of(wf, "show")
    parts = line.split("|")
    assert parts[:7] == [gen["id"], "Succeeded", "0", gen["startedAt"], gen["finishedAt"], "res", "pv"]
    assert parts[7]


async def test_a_task_sees_any_ancestor_it_names_however_far(engine: Harness) -> None:
    """Only ancestors a task names enter its scope: by ``tasks.x``, ``tasks['x']``, two levels up."""
    wf = await engine.run_yaml("""
metadata: {name: far}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: a, template: say, arguments: {parameters: [{name: m, value: alpha}]}}
      - {name: b, template: say, depends: a, arguments: {parameters: [{name: m, value: beta}]}}
      - name: c
        template: say
        depends: b
        arguments: {parameters: [{name: m, value: "{{tasks.a.outputs.result}}+{{=tasks['b'].outputs.result}}"}]}
      - name: d
        template: say
        depends: c
        when: "{{=tasks['a'].outputs.result == 'alpha'}}"
        arguments: {parameters: [{name: m, value: "{{tasks.c.outputs.result}}"}]}
  - name: say
    inputs: {parameters: [{name: m}]}
    container: {image: busybox, command: [echo, "{{inputs.parameters.m}}"]}
""")
    assert wf["status"]["phase"] == "Succeeded", phases(wf)
    assert node(wf, "c")["outputs"]["result"] == "alpha+beta"
    assert node(wf, "d")["outputs"]["result"] == "alpha+beta"
