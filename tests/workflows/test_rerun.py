"""workflows.rerun, pure: node field selectors, Argo's retry and resubmit formulations over wire JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from workflows.errors import InvalidSpec
from workflows.model.ids import node_id, pod_name
from workflows.rerun import (
    LABEL_RESUBMITTED_FROM,
    Requirement,
    formulate_resubmit,
    formulate_retry,
    node_matches,
    parse_node_selector,
    parse_parameters,
)

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
STAMP = "2030-01-02T03:04:05Z"
OLD = "2020-01-01T00:00:00Z"


def n(wf: str, name: str, type_: str, phase: str, *, children: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    """A wire node named ``<wf>.<name>`` (or the root when ``name`` is empty)."""
    full = f"{wf}.{name}" if name else wf
    node: dict[str, Any] = {"id": node_id(wf, full), "name": full, "displayName": name or wf, "type": type_,
                            "phase": phase, "startedAt": OLD, "finishedAt": OLD, **extra}
    if children:
        node["children"] = [node_id(wf, f"{wf}.{c}" if c else wf) for c in children]
    return node


def run(wf: str, phase: str, *nodes: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": wf, "namespace": "ns", "resourceVersion": "7",
                         "labels": {"app": "ci", "workflows.argoproj.io/completed": "true"}},
            "spec": {"entrypoint": "main", **spec},
            "status": {"phase": phase, "startedAt": OLD, "finishedAt": OLD, "message": "boom",
                       "nodes": {x["id"]: x for x in nodes}}}


def ids(wf: str, *names: str) -> frozenset[str]:
    return frozenset(node_id(wf, f"{wf}.{x}" if x else wf) for x in names)


# A DAG: a -> b -> c; b failed, c omitted. The root DAG failed.
DAG = run(
    "w", "Failed",
    n("w", "", "DAG", "Failed", children=("a",), templateName="main"),
    n("w", "a", "Pod", "Succeeded", children=("b",), templateName="produce",
      outputs={"parameters": [{"name": "v", "value": "1"}]}),
    n("w", "b", "Pod", "Failed", children=("c",), templateName="check", message="exit 1"),
    n("w", "c", "Pod", "Omitted", templateName="show"),
    n("w", "onExit", "Pod", "Succeeded", templateName="cleanup"),
)

# Steps: root Steps -> [0] group -> one (ok), two (failed, retried: a Retry node with attempts).
STEPS = run(
    "s", "Failed",
    n("s", "", "Steps", "Failed", children=("[0]",)),
    n("s", "[0]", "StepGroup", "Failed", children=("[0].one", "[0].two")),
    n("s", "[0].one", "Pod", "Succeeded", templateName="echo"),
    n("s", "[0].two", "Retry", "Failed", children=("[0].two(0)", "[0].two(1)")),
    n("s", "[0].two(0)", "Pod", "Failed", nodeFlag={"retried": True}),
    n("s", "[0].two(1)", "Pod", "Failed", nodeFlag={"retried": True}),
)


@pytest.mark.parametrize(("text", "expected"), [
    ("", ()),
    ("displayName=foo", (Requirement(field="displayName", value="foo"),)),
    ("phase==Failed", (Requirement(field="phase", value="Failed"),)),
    ("templateName!=x, id=w-1", (Requirement(field="templateName", value="x", equal=False),
                                 Requirement(field="id", value="w-1"))),
    ("inputs.parameters.foo.value=a b", (Requirement(field="inputs.parameters.foo.value", value="a b"),)),
], ids=["empty", "equals", "double-equals", "and-ed", "input-parameter"])
def test_parse_node_selector(text: str, expected: tuple[Requirement, ...]) -> None:
    assert parse_node_selector(text) == expected


@pytest.mark.parametrize("text", ["foo", "=x", "a<b"], ids=["no-operator", "no-field", "bad-operator"])
def test_parse_node_selector_rejects(text: str) -> None:
    with pytest.raises(InvalidSpec, match="nodeFieldSelector"):
        parse_node_selector(text)


NODE = {"id": "w-1", "name": "w.a", "displayName": "a", "templateName": "t", "phase": "Succeeded",
        "inputs": {"parameters": [{"name": "foo", "value": "bar"}]}}
REF_NODE = {"id": "w-2", "name": "w.b", "displayName": "b", "templateName": "ignored", "phase": "Failed",
            "templateRef": {"name": "lib", "template": "build"}}


@pytest.mark.parametrize(("node", "text", "expected"), [
    (NODE, "displayName=a", True),
    (NODE, "displayName=b", False),
    (NODE, "name=w.a,phase=Succeeded", True),
    (NODE, "id=w-1,phase!=Succeeded", False),
    (NODE, "templateName=t", True),
    (NODE, "inputs.parameters.foo.value=bar", True),
    (NODE, "inputs.parameters.nope.value!=bar", True),
    (NODE, "unknown=", True),
    (REF_NODE, "templateName=build", True),
    (REF_NODE, "templateRef.name=lib,templateRef.template=build", True),
], ids=["display", "display-other", "name-and-phase", "not-equal", "template", "input", "missing-ne",
        "missing-is-empty", "ref-template-name", "ref-fields"])
def test_node_matches(node: dict[str, Any], text: str, expected: bool) -> None:
    assert node_matches(parse_node_selector(text), node) is expected


@pytest.mark.parametrize(("given", "expected"), [
    (None, {}), (["a=1", "b=x=y", "c="], {"a": "1", "b": "x=y", "c": ""}),
], ids=["none", "values"])
def test_parse_parameters(given: list[str] | None, expected: dict[str, str]) -> None:
    assert parse_parameters(given) == expected


def test_parse_parameters_rejects() -> None:
    with pytest.raises(InvalidSpec, match=r"parameters\[1\]"):
        parse_parameters(["a=1", "b"])


@pytest.mark.parametrize(("wf", "kwargs", "deleted", "reset"), [
    (DAG, {}, ids("w", "b", "c", "onExit"), ids("w", "")),
    (DAG, {"restart_successful": True, "node_field_selector": "displayName=a"},
     ids("w", "a", "b", "c", "onExit"), ids("w", "")),
    (DAG, {"node_field_selector": "displayName=a"}, ids("w", "b", "c", "onExit"), ids("w", "")),
    (STEPS, {}, ids("s", "[0].two(0)", "[0].two(1)"), ids("s", "", "[0]", "[0].two")),
], ids=["dag-failed-task", "dag-restart-selected", "selector-without-restart-ignored", "steps-retry-node"])
def test_retry_plan(wf: dict[str, Any], kwargs: dict[str, Any], deleted: frozenset[str],
                    reset: frozenset[str]) -> None:
    out = formulate_retry(wf, now=NOW, **kwargs)
    assert out.deleted == deleted
    assert out.reset == reset
    nodes = out.workflow["status"]["nodes"]
    assert set(nodes) == set(wf["status"]["nodes"]) - deleted
    for nid in reset:
        assert nodes[nid]["phase"] == "Running" and nodes[nid]["startedAt"] == STAMP
        assert nodes[nid]["finishedAt"] is None and "message" not in nodes[nid]
    for nid, node in nodes.items():
        assert not set(node.get("children", ())) & deleted
        if nid not in reset:
            assert node == {k: v for k, v in wf["status"]["nodes"][nid].items() if k != "children"} | (
                {"children": node["children"]} if "children" in node else {})


def test_retry_keeps_succeeded_outputs_and_resets_the_run() -> None:
    out = formulate_retry(DAG, now=NOW).workflow
    a = out["status"]["nodes"][node_id("w", "w.a")]
    assert a["outputs"] == {"parameters": [{"name": "v", "value": "1"}]} and a["startedAt"] == OLD
    assert "children" not in a  # b was deleted
    status = out["status"]
    assert status["phase"] == "" and status["startedAt"] == STAMP and status["finishedAt"] is None
    assert "message" not in status
    assert status["conditions"] == [{"type": "Completed", "status": "False"}]
    assert out["metadata"]["labels"] == {"app": "ci"}
    assert DAG["status"]["phase"] == "Failed"  # the input is not modified


def test_retry_failed_descendant_kept_when_a_later_node_succeeded() -> None:
    """A failed task whose failure handler succeeded is not re-run (Argo's isDescendantNodeSucceeded)."""
    wf = run(
        "h", "Failed",
        n("h", "", "DAG", "Failed", children=("a",)),
        n("h", "a", "Pod", "Failed", children=("handler",)),
        n("h", "handler", "Pod", "Succeeded"),
        n("h", "x", "Pod", "Error"),
    )
    wf["status"]["nodes"][node_id("h", "h")]["children"].append(node_id("h", "h.x"))
    out = formulate_retry(wf, now=NOW)
    assert out.deleted == ids("h", "x")


@pytest.mark.parametrize(("spec", "parameters", "expected_args", "expected_spec"), [
    ({"shutdown": "Stop", "activeDeadlineSeconds": 0, "arguments": {"parameters": [{"name": "a", "value": "1"},
                                                                                  {"name": "b", "value": "2"}]}},
     ["b=9", "c=3"], [{"name": "b", "value": "9"}, {"name": "c", "value": "3"}, {"name": "a", "value": "1"}], {}),
    ({"activeDeadlineSeconds": 30}, None, None, {"activeDeadlineSeconds": 30}),
], ids=["terminated-with-parameters", "deadline-kept"])
def test_retry_spec(spec: dict[str, Any], parameters: list[str] | None, expected_args: Any,
                    expected_spec: dict[str, Any]) -> None:
    out = formulate_retry(run("w", "Failed", *DAG["status"]["nodes"].values(), **spec), parameters=parameters,
                          now=NOW).workflow["spec"]
    assert "shutdown" not in out
    assert (out.get("arguments") or {}).get("parameters") == expected_args
    for key, value in expected_spec.items():
        assert out[key] == value
    if not expected_spec:
        assert "activeDeadlineSeconds" not in out


def test_retry_parameters_reach_the_stored_template_spec() -> None:
    wf = run("w", "Failed", *DAG["status"]["nodes"].values())
    wf["status"]["storedWorkflowTemplateSpec"] = {"entrypoint": "main", "shutdown": "Terminate",
                                                  "arguments": {"parameters": [{"name": "a", "value": "1"}]}}
    stored = formulate_retry(wf, parameters=["a=2"], now=NOW).workflow["status"]["storedWorkflowTemplateSpec"]
    assert stored == {"entrypoint": "main", "arguments": {"parameters": [{"name": "a", "value": "2"}]}}


@pytest.mark.parametrize(("phase", "kwargs", "message"), [
    ("Running", {}, "phase Running"),
    ("", {}, "phase Pending"),
    ("Succeeded", {}, "restartSuccessful"),
    ("Succeeded", {"restart_successful": True}, "restartSuccessful"),
    ("Succeeded", {"node_field_selector": "displayName=a"}, "restartSuccessful"),
], ids=["running", "pending", "succeeded", "succeeded-no-selector", "succeeded-no-restart"])
def test_retry_refused(phase: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        formulate_retry(run("w", phase), now=NOW, **kwargs)


def test_retry_succeeded_with_restart_and_selector() -> None:
    ok = run("w", "Succeeded", n("w", "", "Steps", "Succeeded", children=("one",)), n("w", "one", "Pod", "Succeeded"))
    out = formulate_retry(ok, restart_successful=True, node_field_selector="displayName=one", now=NOW)
    assert out.deleted == ids("w", "one") and out.reset == ids("w", "")


def test_resubmit_plain() -> None:
    wf = run("w", "Succeeded", shutdown="Terminate", suspend=True,
             arguments={"parameters": [{"name": "a", "value": "1"}]})
    wf["metadata"]["labels"]["workflows.argoproj.io/creator"] = "me"
    wf["metadata"]["annotations"] = {"note": "x"}
    new = formulate_resubmit(wf, parameters=["a=2"], name_suffix="abcde", now=NOW)
    assert new == {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"generateName": "w-", "namespace": "ns", "annotations": {"note": "x"},
                     "labels": {"app": "ci", LABEL_RESUBMITTED_FROM: "w"}},
        "spec": {"entrypoint": "main", "arguments": {"parameters": [{"name": "a", "value": "2"}]}},
    }


def test_resubmit_keeps_generate_name() -> None:
    wf = run("w-x1", "Failed")
    wf["metadata"]["generateName"] = "w-"
    assert formulate_resubmit(wf, name_suffix="abcde", now=NOW)["metadata"]["generateName"] == "w-"


def test_resubmit_memoized_renames_kept_nodes() -> None:
    new = formulate_resubmit(DAG, memoized=True, name_suffix="abcde", now=NOW)
    name = "w-abcde"
    assert new["metadata"]["name"] == name
    nodes = new["status"]["nodes"]
    assert set(nodes) == {node_id(name, name), node_id(name, f"{name}.a")}
    root, a = nodes[node_id(name, name)], nodes[node_id(name, f"{name}.a")]
    assert root["phase"] == "Running" and root["children"] == [a["id"]] and root["name"] == name
    assert a["phase"] == "Succeeded" and a["message"] == f"original pod: {node_id('w', 'w.a')}"
    assert a["outputs"] == {"parameters": [{"name": "v", "value": "1"}]} and "children" not in a
    assert new["status"]["phase"] == ""


@pytest.mark.parametrize("phase", ["Succeeded", "Running"])
def test_resubmit_memoized_refused(phase: str) -> None:
    with pytest.raises(InvalidSpec, match="Failed/Error"):
        formulate_resubmit(run("w", phase), memoized=True, name_suffix="abcde", now=NOW)


def test_retry_names_the_pods_to_forget() -> None:
    """Argo's podsToDelete: the pods of deleted Pod nodes, named as the scheduler names them."""
    assert formulate_retry(DAG, now=NOW).pods == tuple(sorted(
        (pod_name("w", "w.b", "check"), pod_name("w", "w.c", "show"), pod_name("w", "w.onExit", "cleanup"))))
    assert formulate_retry(STEPS, now=NOW).pods == tuple(sorted(
        (pod_name("s", "s.[0].two(0)", ""), pod_name("s", "s.[0].two(1)", ""))))
