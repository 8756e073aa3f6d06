"""``gittrigger run`` and ``gittrigger lint`` as real subprocesses of ``python -m gittrigger``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

FIXTURES = Path(__file__).parent / "fixtures" / "workflows"


def gittrigger(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gittrigger", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
        env={**os.environ, "GITTRIGGER_LOG_JSON": "true"},
    )


def run(name: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return gittrigger("run", str(FIXTURES / name), "--data-dir", str(tmp_path / "data"), "--isolation", "none",
                      *args, cwd=tmp_path)


def test_hello_succeeds_with_a_tree(tmp_path: Path) -> None:
    """A succeeding workflow exits 0 and ends with the tree and phase, without ANSI codes off a TTY."""
    result = run("hello.yaml", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Phase:     Succeeded" in result.stdout
    assert "├─ ✔ say" in result.stdout
    assert "○ skipped" in result.stdout
    assert "\x1b[" not in result.stdout
    assert (tmp_path / "data" / "gittrigger.db").exists()


def test_failing_workflow_exits_1(tmp_path: Path) -> None:
    """A failing node fails the run: exit 1, the failed node and message shown."""
    result = run("failing.yaml", tmp_path=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "✖ broken" in result.stdout
    assert "Phase:     Failed" in result.stdout
    assert "exit code 3" in result.stdout


def test_invalid_workflow_exits_2_naming_the_field(tmp_path: Path) -> None:
    """Validation problems are printed as 'FILE: path: message' on stderr, exit 2, no traceback."""
    result = run("invalid.yaml", tmp_path=tmp_path)
    assert result.returncode == 2
    assert f"{FIXTURES / 'invalid.yaml'}: spec.templates[0].steps[0][0].template:" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_parameter_override_shows_in_json(tmp_path: Path) -> None:
    """-p values may contain '='; -o json prints only the stored Workflow on stdout."""
    result = run("hello.yaml", "-p", "greeting=a=b c", "-o", "json", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    workflow = json.loads(result.stdout)
    assert workflow["kind"] == "Workflow"
    assert workflow["status"]["phase"] == "Succeeded"
    assert {"name": "greeting", "value": "a=b c"} in workflow["spec"]["arguments"]["parameters"]
    say = next(n for n in workflow["status"]["nodes"].values() if n["displayName"] == "say")
    assert say["inputs"]["parameters"][0]["value"] == "a=b c"


def test_yaml_output_is_the_workflow(tmp_path: Path) -> None:
    """-o yaml prints the same object as YAML."""
    result = run("failing.yaml", "-o", "yaml", tmp_path=tmp_path)
    assert result.returncode == 1
    workflow = yaml.safe_load(result.stdout)
    assert workflow["status"]["phase"] == "Failed"
    assert workflow["metadata"]["name"].startswith("failing-")


def test_template_ref_from_the_same_file(tmp_path: Path) -> None:
    """A WorkflowTemplate in the run's file serves the Workflow's templateRef."""
    result = run("with-template.yaml", "-o", "json", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    nodes = json.loads(result.stdout)["status"]["nodes"].values()
    assert any(n["displayName"] == "from-template" and n["phase"] == "Succeeded" for n in nodes)


def test_template_ref_from_a_template_file(tmp_path: Path) -> None:
    """--template files serve templateRefs too; without them the reference is a validation error."""
    text = (FIXTURES / "with-template.yaml").read_text()
    template, workflow = text.split("\n---\n")
    (tmp_path / "template.yaml").write_text(template)
    (tmp_path / "workflow.yaml").write_text(workflow)
    data = str(tmp_path / "data")
    missing = gittrigger("run", "workflow.yaml", "--data-dir", data, "--isolation", "none", cwd=tmp_path)
    assert missing.returncode == 2
    assert "workflow.yaml: spec.templates[0].steps[0][0].templateRef.name:" in missing.stderr
    found = gittrigger("run", "workflow.yaml", "--template", "template.yaml", "--data-dir", data,
                       "--isolation", "none", cwd=tmp_path)
    assert found.returncode == 0, found.stderr


@pytest.mark.parametrize(("content", "args", "message"), [
    (None, ["-p", "greeting"], "-p 'greeting': expected NAME=VALUE"),
    ("kind: Workflow\nspec: {}\n---\nkind: Workflow\nspec: {}\n", [],
     "expected exactly one Workflow document, found 2"),
    ("kind: WorkflowTemplate\nmetadata: {name: x}\n", [], "expected exactly one Workflow document, found 0"),
    ("kind: Workflow\nspec: [\n", [], "line 3"),
    ("", ["--isolation", "docker"], "invalid choice: 'docker'"),
], ids=["param-without-equals", "two-workflows", "no-workflow", "bad-yaml", "bad-isolation"])
def test_usage_errors_exit_2_in_one_line(tmp_path: Path, content: str | None, args: list[str], message: str) -> None:
    """Every user mistake is a clear message on stderr and exit 2, never a traceback."""
    file = FIXTURES / "hello.yaml"
    if content is not None:
        file = tmp_path / "input.yaml"
        file.write_text(content)
    result = gittrigger("run", str(file), "--data-dir", str(tmp_path / "data"), *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is one line naming it."""
    result = gittrigger("run", "nope.yaml", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "gittrigger run: nope.yaml: no such file"


def test_bad_setting_from_the_environment(tmp_path: Path) -> None:
    """A bad GITTRIGGER_* value is one line naming the variable."""
    result = subprocess.run(
        [sys.executable, "-m", "gittrigger", "run", str(FIXTURES / "hello.yaml")], cwd=tmp_path,
        capture_output=True, text=True, timeout=60, env={**os.environ, "GITTRIGGER_GRACE_PERIOD_SECONDS": "x"},
    )
    assert result.returncode == 2
    assert "GITTRIGGER_GRACE_PERIOD_SECONDS: must be a number" in result.stderr
    assert "Traceback" not in result.stderr


def _processes_with(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:
            pass
    return found


def test_ctrl_c_stops_the_workflow_and_exits_130(tmp_path: Path) -> None:
    """SIGINT stops the run (Argo stop), kills its pods and exits 130."""
    marker = "297.123"
    process = subprocess.Popen(
        [sys.executable, "-m", "gittrigger", "run", str(FIXTURES / "sleeping.yaml"), "-p", f"seconds={marker}",
         "--data-dir", str(tmp_path / "data"), "--isolation", "none"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not _processes_with(f"sleep\x00{marker}") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_with(f"sleep\x00{marker}"), "the pod never started"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Phase:     Failed" in stdout
    assert _processes_with(f"sleep\x00{marker}") == []


@pytest.mark.parametrize(("names", "code", "expected"), [
    (["hello.yaml"], 0, "no problems found in 1 file"),
    (["hello.yaml", "with-template.yaml", "failing.yaml"], 0, "no problems found in 3 files"),
    (["invalid.yaml"], 1, "invalid.yaml: spec.templates[0].steps[0][0].template: unknown template"),
], ids=["one-file", "several", "invalid"])
def test_lint(tmp_path: Path, names: list[str], code: int, expected: str) -> None:
    """lint prints each problem as 'file: field.path: message' and exits 1 if any."""
    result = gittrigger("lint", *(str(FIXTURES / n) for n in names), cwd=tmp_path)
    assert result.returncode == code, result.stdout + result.stderr
    assert expected in result.stdout


def test_lint_folder_and_missing_file(tmp_path: Path) -> None:
    """Folders are searched; a missing file is a problem line, not a traceback."""
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "ok.yaml").write_text((FIXTURES / "hello.yaml").read_text())
    assert gittrigger("lint", "wf", cwd=tmp_path).stdout.strip() == "no problems found in 1 file"
    result = gittrigger("lint", "wf", "missing.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert "missing.yaml: cannot read" in result.stdout
    assert "Traceback" not in result.stderr


def test_manifest_size_limit_is_a_setting(tmp_path: Path) -> None:
    """GITTRIGGER_MAX_MANIFEST_BYTES bounds what run and lint read; the error names the file."""
    big = tmp_path / "big.yaml"
    big.write_text("x: " + "a" * 5000 + "\n")
    env = {**os.environ, "GITTRIGGER_MAX_MANIFEST_BYTES": "2048"}
    for args in (["lint", str(big)], ["run", str(big)]):
        proc = subprocess.run([sys.executable, "-m", "gittrigger", *args], env=env, capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)
        assert proc.returncode in (1, 2), proc
        assert f"{big}: 5004 bytes is over the limit of 2048 bytes" in proc.stdout + proc.stderr


def test_serve_check_validates_sensors(tmp_path: Path) -> None:
    """serve --check refuses a Sensor with an unsupported trigger, naming the file and field."""
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nmetadata: {name: s}\nspec:\n"
        "  dependencies: [{name: d, eventSourceName: x, eventName: y}]\n"
        "  triggers:\n  - template: {name: t, kafka: {}}\n")
    proc = subprocess.run([sys.executable, "-m", "gittrigger", "serve", "--check", "--data-dir",
                           str(tmp_path / "data"), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc
    assert "bad.yaml: spec.triggers[0].template.kafka" in proc.stderr
