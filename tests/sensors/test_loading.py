"""Loading Sensor manifests from files and folders: kinds filtered, errors name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensors.loading import load_sensors, load_sensors_text
from workflows.errors import InvalidSpec, TooLarge

FIXTURES = Path(__file__).parent / "fixtures"

SENSOR = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: %s}
spec:
  dependencies: [{name: d, eventSourceName: hooks, eventName: a}]
  triggers: [{template: {name: t, log: {}}}]
"""
SOURCE = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: hooks}
spec: {webhook: {a: {port: "12000", endpoint: /a, method: POST}}}
"""


def test_loads_sensors_from_a_folder_and_skips_other_kinds(tmp_path: Path) -> None:
    """A folder with a Sensor, an EventSource and a two-document file gives the Sensors in file order."""
    (tmp_path / "a.yaml").write_text(SENSOR % "first")
    (tmp_path / "b.yaml").write_text(SOURCE + "---\n" + SENSOR % "second")
    (tmp_path / "notes.txt").write_text("not a manifest")
    assert [s.name for s in load_sensors([tmp_path])] == ["first", "second"]


def test_loads_the_project_fixtures() -> None:
    sensors = load_sensors([FIXTURES / "ci-sensor.yaml", FIXTURES / "two-deps-sensor.yaml"])
    assert [(s.namespace, s.name) for s in sensors] == [("builds", "ci"), ("", "pair")]


@pytest.mark.parametrize(("text", "where"), [
    ((SENSOR % "x").replace("eventSourceName: hooks, ", ""), "bad.yaml: spec.dependencies[0].eventSourceName"),
    ((SENSOR % "x").replace("triggers: [{template: {name: t, log: {}}}]", "triggers: []"),
     "bad.yaml: spec.triggers"),
    (SOURCE + "---\n" + (SENSOR % "x").replace("name: d,", "name: 7,"),
     "bad.yaml#2: spec.dependencies[0].name"),
    (SENSOR % "x" + "---\n" + SENSOR % "x", "bad.yaml#2: metadata.name"),
    ("kind: Sensor\nmetadata: {name: [unclosed\n", "bad.yaml"),
], ids=["missing-field", "no-triggers", "second-document", "duplicate", "yaml-syntax"])
def test_errors_name_the_file_and_field(tmp_path: Path, text: str, where: str) -> None:
    """Each refusal names the file (and document) and the field path."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(InvalidSpec) as err:
        load_sensors([bad])
    assert err.value.path.replace(str(tmp_path) + "/", "") == where


def test_text_loading_and_size_bound() -> None:
    assert [s.name for s in load_sensors_text(SENSOR % "one", source="inline")] == ["one"]
    with pytest.raises(InvalidSpec) as err:
        load_sensors_text(SENSOR % "x" + "---\n" + (SENSOR % "y").replace("eventName: a", "eventName: [1]"),
                          source="inline")
    assert err.value.path.startswith("inline#2: spec.dependencies[0]")
    with pytest.raises(TooLarge):
        load_sensors_text("x" * (3 * 1024 * 1024), source="huge")
