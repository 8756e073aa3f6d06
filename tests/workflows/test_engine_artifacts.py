"""Engine feature tests: raw input artifacts, output artifacts (file, directory, archive none, key-only) passed on."""

# ruff: noqa: E501  (workflow YAML lines)
from __future__ import annotations

from tests.workflows.conftest import Harness, node, phases


async def test_raw_input_artifact(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: raw}
spec:
  entrypoint: main
  templates:
  - name: main
    inputs:
      artifacts:
      - name: cfg
        path: /tmp/cfg/settings.txt
        raw:
          data: |
            alpha
            beta
    container: {image: alpine, command: [cat, /tmp/cfg/settings.txt]}
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert await engine.logs_of(wf) == ["alpha", "beta"]


async def test_file_and_directory_artifacts_passed_between_steps(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: arts}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: gen, template: gen}
    - - name: use
        template: use
        arguments:
          artifacts:
          - {name: file, from: "{{steps.gen.outputs.artifacts.file}}"}
          - {name: dir, from: "{{steps.gen.outputs.artifacts.dir}}"}
          - {name: plain, from: "{{steps.gen.outputs.artifacts.plain}}"}
  - name: gen
    container:
      image: alpine
      command: [sh, -c, "mkdir -p /tmp/d/sub && echo one > /tmp/d/a.txt && echo two > /tmp/d/sub/b.txt && echo single > /tmp/f.txt && echo raw > /tmp/p.txt"]
    outputs:
      artifacts:
      - {name: file, path: /tmp/f.txt}
      - {name: dir, path: /tmp/d}
      - {name: plain, path: /tmp/p.txt, archive: {none: {}}}
  - name: use
    inputs:
      artifacts:
      - {name: file, path: /in/f.txt}
      - {name: dir, path: /in/d}
      - {name: plain, path: /in/p.txt}
    container:
      image: alpine
      command: [sh, -c, "cat /in/f.txt /in/d/a.txt /in/d/sub/b.txt /in/p.txt"]
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert await engine.logs_of(wf, "use") == ["single", "one", "two", "raw"]
    gen = node(wf, "gen")
    names = sorted(a["name"] for a in gen["outputs"]["artifacts"])
    assert names[:3] == ["dir", "file", "plain"]


async def test_key_only_artifacts(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: keyonly}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: put, template: put}
    - - {name: get, template: get}
  - name: put
    container: {image: alpine, command: [sh, -c, "echo stored-by-key > /tmp/out.txt"]}
    outputs:
      artifacts:
      - name: out
        path: /tmp/out.txt
        s3: {key: shared/out.txt.tgz}
  - name: get
    inputs:
      artifacts:
      - name: in
        path: /tmp/in.txt
        s3: {key: shared/out.txt.tgz}
    container: {image: alpine, command: [cat, /tmp/in.txt]}
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert await engine.logs_of(wf, "get") == ["stored-by-key"]


async def test_missing_optional_and_required_artifacts(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: optional}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: opt, template: opt}
      - {name: req, template: req}
  - name: opt
    container: {image: alpine, command: ["true"]}
    outputs:
      artifacts:
      - {name: maybe, path: /tmp/absent, optional: true}
  - name: req
    container: {image: alpine, command: ["true"]}
    outputs:
      artifacts:
      - {name: needed, path: /tmp/absent}
""")
    assert node(wf, "opt")["phase"] == "Succeeded"
    assert node(wf, "req")["phase"] in ("Error", "Failed")
    assert wf["status"]["phase"] == "Failed"


async def test_dag_artifacts_and_global_output_artifact(engine: Harness) -> None:
    wf = await engine.run_yaml("""
metadata: {name: dagart}
spec:
  entrypoint: d
  templates:
  - name: d
    dag:
      tasks:
      - {name: gen, template: gen}
      - name: use
        depends: gen
        template: use
        arguments:
          artifacts:
          - {name: in, from: "{{tasks.gen.outputs.artifacts.out}}"}
      - name: use-global
        depends: gen
        template: use
        arguments:
          artifacts:
          - {name: in, from: "{{workflow.outputs.artifacts.shared}}"}
  - name: gen
    container: {image: alpine, command: [sh, -c, "echo via-dag > /tmp/o.txt"]}
    outputs:
      artifacts:
      - {name: out, path: /tmp/o.txt, globalName: shared}
  - name: use
    inputs:
      artifacts:
      - {name: in, path: /tmp/i.txt}
    container: {image: alpine, command: [cat, /tmp/i.txt]}
""")
    assert wf["status"]["phase"] == "Succeeded", (wf["status"].get("message"), phases(wf))
    assert await engine.logs_of(wf, "use") == ["via-dag"]
    assert await engine.logs_of(wf, "use-global") == ["via-dag"]
    assert [a["name"] for a in wf["status"]["outputs"]["artifacts"]] == ["shared"]
