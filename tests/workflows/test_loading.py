"""Tests of :mod:`workflows.loading`: multi-document YAML, bounds against hostile input, files and dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows.errors import InvalidSpec, TooLarge, WorkflowError
from workflows.loading import load_documents, load_objects, load_paths
from workflows.model.spec import ObjectKind

WF = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: %s}
spec:
  entrypoint: main
  templates: [{name: main, container: {image: busybox}}]
"""

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)


def test_multi_document_skips_empty() -> None:
    docs = load_documents(WF % "a" + "---\n---\n" + WF % "b", source="x.yaml")
    assert [d["metadata"]["name"] for d in docs] == ["a", "b"]


def test_bytes_and_json() -> None:
    assert load_documents(b'{"a": [1, 2]}', source="x.json") == [{"a": [1, 2]}]


@pytest.mark.parametrize(("text", "error", "message"), [
    ("a: [1, 2\n", InvalidSpec, "x.yaml: line 2, column 1: "),
    ("- 1\n", InvalidSpec, "x.yaml: document 1 must be a mapping, got list"),
    ("a: " + "[" * 150 + "]" * 150, TooLarge, "x.yaml: line 1: nesting deeper than 100 levels"),
    ("".join(f"{'  ' * i}x:\n" for i in range(150)), TooLarge,
     "x.yaml: line 100: nesting deeper than 100 levels"),
    ("a: &a [1]\nb: [" + ", ".join(["*a"] * 101) + "]\n", TooLarge,
     "x.yaml: line 2: more than 100 alias uses"),
    (LAUGHS, TooLarge, "x.yaml: line 6: expands to more than 1000000 nodes"),
    ("a: &a [*a]\n", TooLarge, "x.yaml: line 1: recursive alias"),
    ("a: !!python/object:os.system 1\n", InvalidSpec, "x.yaml: line 1, column 4: "),
    ("a: 1\n" + "#" * 3_000_000, TooLarge, "x.yaml: 3000005 bytes is over the limit of 2097152 bytes"),
], ids=["syntax", "not-mapping", "deep-flow", "deep-block", "aliases", "billion-laughs", "recursive",
        "python-tag", "size"])
def test_hostile_or_broken_input_is_refused(text: str, error: type[WorkflowError], message: str) -> None:
    """Each refusal is a domain error naming the file and, where known, the line."""
    with pytest.raises(error) as err:
        load_documents(text, source="x.yaml")
    assert str(err.value).startswith(message), str(err.value)


def test_few_aliases_are_fine() -> None:
    docs = load_documents("base: &b {image: busybox}\nt1: *b\nt2: {<<: *b, x: 1}\n", source="x.yaml")
    assert docs[0]["t2"] == {"image": "busybox", "x": 1}


def test_load_paths_files_and_directories(tmp_path: Path) -> None:
    """Directories contribute their manifest files sorted; multi-doc files get #n sources."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text(WF % "b")
    (tmp_path / "a.yaml").write_text(WF % "a1" + "---\n" + WF % "a2")
    (tmp_path / "c.json").write_text('{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", '
                                     '"metadata": {"name": "c"}, "spec": {}}')
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "empty.yaml").write_text("---\n")
    extra = tmp_path / "extra.manifest"
    extra.write_text(WF % "e")
    loaded = load_paths([tmp_path, extra])
    assert [(Path(s).name, d["metadata"]["name"]) for s, d in loaded] == [
        ("a.yaml#1", "a1"), ("a.yaml#2", "a2"), ("c.json", "c"), ("b.yml", "b"), ("extra.manifest", "e"),
    ]
    objects = load_objects([tmp_path])
    assert [o.metadata.name for o in objects] == ["a1", "a2", "c", "b"]
    assert all(o.kind is ObjectKind.WORKFLOW for o in objects)


def test_load_objects_errors_name_file_and_document(tmp_path: Path) -> None:
    bad = tmp_path / "ci.yaml"
    bad.write_text(WF % "ok" + "---\n" + (WF % "bad").replace("{name: main, ", "{"))
    with pytest.raises(InvalidSpec) as err:
        load_objects([bad])
    assert str(err.value) == f"{bad}#2: spec.templates[0].name: is required"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="cannot read"):
        load_paths([tmp_path / "nope.yaml"])
