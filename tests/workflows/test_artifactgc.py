"""Argo's artifactGC rules (:mod:`workflows.artifactgc`): strategies by precedence, what each event
collects, shared keys kept, and unknown strategies refused by validation naming the field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from workflows import artifactgc
from workflows.model.wire import parse_object
from workflows.resolution import DictTemplateGetter
from workflows.validation import validate


@dataclass(frozen=True)
class Row:
    node_id: str
    name: str


def run(*, default: str | None = None, own: str | None = None, recorded: str | None = None,
        template_ref: bool = False, stored: bool = False) -> dict[str, Any]:
    """A run whose node ``n1`` (template ``gen``) made artifact ``out``, with strategies where given."""
    art: dict[str, Any] = {"name": "out", "path": "/tmp/out"}
    if own is not None:
        art["artifactGC"] = {"strategy": own}
    spec: dict[str, Any] = {"entrypoint": "gen", "templates": [{"name": "gen", "outputs": {"artifacts": [art]}}]}
    if default is not None:
        spec["artifactGC"] = {"strategy": default}
    node_art: dict[str, Any] = {"name": "out", "s3": {"key": "k"}}
    if recorded is not None:
        node_art["artifactGC"] = {"strategy": recorded}
    node: dict[str, Any] = {"id": "n1", "type": "Pod", "templateName": "gen", "outputs": {"artifacts": [node_art]}}
    if template_ref:
        node["templateRef"] = {"name": "lib", "template": "gen"}
    status: dict[str, Any] = {"nodes": {"n1": node}}
    if stored:  # a workflowTemplateRef run: the spec it executed is in the status
        status["storedWorkflowTemplateSpec"] = spec
        spec = {"workflowTemplateRef": {"name": "lib"}}
    return {"metadata": {"name": "w", "uid": "u1"}, "spec": spec, "status": status}


@pytest.mark.parametrize(("workflow", "expected"), [
    (run(), "Never"),
    (run(default="OnWorkflowDeletion"), "OnWorkflowDeletion"),
    (run(default="OnWorkflowDeletion", own="Never"), "Never"),
    (run(default="OnWorkflowDeletion", own=""), "OnWorkflowDeletion"),
    (run(own="OnWorkflowCompletion"), "OnWorkflowCompletion"),
    (run(own="Never", recorded="OnWorkflowDeletion"), "OnWorkflowDeletion"),
    (run(default="OnWorkflowCompletion", own="Never", template_ref=True), "OnWorkflowCompletion"),
    (run(own="OnWorkflowDeletion", stored=True), "OnWorkflowDeletion"),
], ids=["default-never", "workflow-default", "artifact-overrides", "empty-inherits", "artifact-only",
        "recorded-on-node-wins", "template-ref-uses-default", "workflow-template-ref-stored-spec"])
def test_strategy_precedence(workflow: dict[str, Any], expected: str) -> None:
    """The artifact's own strategy wins over the run's; "" inherits; Never is the default."""
    assert artifactgc.strategy_of(workflow, node_id="n1", name="out") == expected


@pytest.mark.parametrize(("strategy", "event", "collected"), [
    ("Never", "completion", False), ("Never", "deletion", False),
    ("OnWorkflowCompletion", "completion", True), ("OnWorkflowCompletion", "deletion", True),
    ("OnWorkflowDeletion", "completion", False), ("OnWorkflowDeletion", "deletion", True),
], ids=["never-completion", "never-deletion", "completion-completion", "completion-at-deletion",
        "deletion-at-completion", "deletion-deletion"])
def test_what_each_event_collects(strategy: str, event: artifactgc.Event, collected: bool) -> None:
    """A deletion also collects completion artifacts (Argo processes both strategies then)."""
    rows = [Row("n1", "out"), Row("n1", "unknown-name")]
    picked = artifactgc.collectable(run(own=strategy), rows, event=event)
    assert picked == ([Row("n1", "out")] if collected else [])


@pytest.mark.parametrize(("workflow", "declares"), [
    (run(), False), (run(default="Never", own="Never"), False), (run(default="OnWorkflowDeletion"), True),
    (run(own="OnWorkflowCompletion"), True), (run(own="OnWorkflowDeletion", stored=True), True),
], ids=["nothing", "never-everywhere", "workflow-level", "artifact-level", "stored-spec"])
def test_declares_gc(workflow: dict[str, Any], declares: bool) -> None:
    """The cheap test that spares runs without artifactGC an index read."""
    assert artifactgc.declares_gc(workflow) is declares


def test_shared_keys_are_kept_and_duplicates_dropped() -> None:
    assert artifactgc.keys_to_delete(["a", "my-file", "a", "b"], still_referenced={"my-file"}) == ["a", "b"]


WORKFLOW = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: wf}
spec:
  entrypoint: main
  artifactGC: {strategy: %s, forceFinalizerRemoval: true}
  templates:
  - name: main
    container: {image: alpine, command: [sh, -c, "echo hi > /tmp/out"]}
    outputs:
      artifacts:
      - {name: out, path: /tmp/out, artifactGC: {strategy: %s}}
"""


@pytest.mark.parametrize(("workflow_level", "artifact_level", "paths"), [
    ("OnWorkflowDeletion", "Never", []),
    ('""', "OnWorkflowCompletion", []),
    ("OnDeletion", "Never", ["spec.artifactGC.strategy"]),
    ("Never", "Always", ["spec.templates[0].outputs.artifacts[0].artifactGC.strategy"]),
], ids=["valid", "empty-inherits", "unknown-workflow-level", "unknown-artifact-level"])
def test_validation_names_unknown_strategies(workflow_level: str, artifact_level: str, paths: list[str]) -> None:
    """An unknown strategy is an InvalidSpec naming its field; forceFinalizerRemoval is accepted."""
    workflow = parse_object(yaml.safe_load(WORKFLOW % (workflow_level, artifact_level)))
    problems = validate(workflow, getter=DictTemplateGetter())
    assert [p.path for p in problems] == paths
    assert all("must be one of OnWorkflowCompletion, OnWorkflowDeletion, Never" in p.message for p in problems)
