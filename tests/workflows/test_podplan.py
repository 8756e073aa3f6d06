"""The ``GITTRIGGER_POD`` plan: built from a PodRequest, round-tripped through JSON, errors naming fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from workflows.errors import InvalidSpec
from workflows.executors.base import (
    Container,
    File,
    InputArtifact,
    OutputArtifact,
    OutputParameter,
    PodRequest,
)
from workflows.executors.podplan import (
    PlanFile,
    PlanGit,
    PlanInput,
    PodPlan,
    escape_path,
    outputs_env,
    parse_outputs_env,
    plan_for,
)
from workflows.model.ids import NodeId
from workflows.model.spec import GitSource

SERVER = "http://10.0.0.1:2746"


def pod(**fields: Any) -> PodRequest:
    base: dict[str, Any] = {
        "node_id": NodeId("wf-1"), "pod_name": "wf-main-1", "namespace": "ns", "workflow_name": "wf",
        "workflow_uid": "uid-1", "template_name": "main", "main": (Container(name="main", image="alpine"),),
    }
    return PodRequest(**{**base, **fields})


PLANS = [
    PodPlan(server_url=SERVER),
    PodPlan(server_url=SERVER, files=(PlanFile(path="/argo/staging/script", content=b"\x00\xffprint(1)\n",
                                               mode=0o755),)),
    PodPlan(server_url=SERVER, inputs=(
        PlanInput(name="raw", path="/in/raw", raw_data=""),
        PlanInput(name="key", path="/in/k", key="ns/wf/p/a.tgz", sub_path="d/f", mode=0o600, optional=True),
        PlanInput(name="plain", path="/in/p", key="k", archive_none=True, mode=0),
        PlanInput(name="git", path="/src", git=PlanGit(repo="https://example.com/r.git", revision="v1", depth=1,
                                                       fetch=("refs/heads/*",), single_branch=True)),
        PlanInput(name="http", path="/in/h", http_url="http://example.com/x"),
    )),
    PodPlan(server_url=SERVER, parameters=(OutputParameter(name="p", path="/tmp/p:1.txt"),),
            artifacts=(OutputArtifact(name="a", path="/out", key="ns/wf/p/a.tgz", compression_level=0),
                       OutputArtifact(name="b", path="/o b", key="k", archive_none=True, optional=True))),
    PodPlan(server_url=SERVER, result_container="c1", main_containers=("c0", "c1")),
]


@pytest.mark.parametrize("plan", PLANS, ids=["empty", "binary-file", "inputs", "outputs", "container-set"])
def test_plan_round_trips_through_the_env(plan: PodPlan) -> None:
    """from_env(to_env(p)) == p, and the text is compact, deterministic JSON."""
    text = plan.to_env()
    assert PodPlan.from_env(text) == plan
    assert " " not in text.replace("/o b", "") and text == plan.to_env()


def test_plan_for_carries_the_whole_request() -> None:
    """Files, inputs (every source kind), outputs and container names come from the PodRequest."""
    request = pod(
        main=(Container(name="c0"), Container(name="c1")),
        result_container="c1",
        files=(File(path="/argo/staging/script", content=b"echo hi", mode=0o755),),
        input_artifacts=(
            InputArtifact(name="g", path="/src", git=GitSource(repo="r", revision="main", disable_submodules=True)),
            InputArtifact(name="k", path="/k", key="a/b", archive_none=True, optional=True),
        ),
        output_parameters=(OutputParameter(name="p", path="/tmp/p"),),
        output_artifacts=(OutputArtifact(name="a", path="/tmp/a", key="ns/wf/x/a.tgz", compression_level=9),),
    )
    plan = plan_for(request, server_url=SERVER)
    assert plan == PodPlan(
        server_url=SERVER, result_container="c1", main_containers=("c0", "c1"),
        files=(PlanFile(path="/argo/staging/script", content=b"echo hi", mode=0o755),),
        inputs=(PlanInput(name="g", path="/src", git=PlanGit(repo="r", revision="main", disable_submodules=True)),
                PlanInput(name="k", path="/k", key="a/b", archive_none=True, optional=True)),
        parameters=(OutputParameter(name="p", path="/tmp/p"),),
        artifacts=(OutputArtifact(name="a", path="/tmp/a", key="ns/wf/x/a.tgz", compression_level=9),),
    )
    assert PodPlan.from_env(plan.to_env()) == plan
    assert plan.output_index(0) == 1


@pytest.mark.parametrize(("paths", "expected"), [
    ([], ""),
    (["/tmp/a", "/tmp/b"], "0=/tmp/a:1=/tmp/b"),
    (["/x:y", "/100%"], "0=/x%3Ay:1=/100%25"),
    (["/a%3A"], "0=/a%253A"),
], ids=["none", "plain", "colon-and-percent", "escape-looking-path"])
def test_outputs_env_escapes_colons_and_percents(paths: list[str], expected: str) -> None:
    """Parameters then artifacts, ``%``/``:`` escaped, and parsed back to the same paths."""
    parameters = tuple(OutputParameter(name=f"p{i}", path=p) for i, p in enumerate(paths))
    plan = PodPlan(server_url=SERVER, parameters=parameters)
    assert outputs_env(plan) == expected
    assert parse_outputs_env(expected) == dict(enumerate(paths))
    assert all(escape_path(p).count(":") == 0 for p in paths)


def _env(**changes: Any) -> str:
    raw: dict[str, Any] = json.loads(PLANS[3].to_env())
    raw.update(changes)
    return json.dumps(raw)


@pytest.mark.parametrize(("text", "path"), [
    ("not json", "GITTRIGGER_POD"),
    ("[]", "GITTRIGGER_POD"),
    (_env(version=2), "GITTRIGGER_POD.version"),
    (_env(server_url=None), "GITTRIGGER_POD.server_url"),
    (_env(server_url=3), "GITTRIGGER_POD.server_url"),
    (_env(main_containers=[]), "GITTRIGGER_POD.main_containers"),
    (_env(main_containers=[1]), "GITTRIGGER_POD.main_containers[0]"),
    (_env(files=[{"path": "/x", "content": "!!"}]), "GITTRIGGER_POD.files[0].content"),
    (_env(files=[{"path": "/x", "content": "", "mode": True}]), "GITTRIGGER_POD.files[0].mode"),
    (_env(inputs=[{"name": "a"}]), "GITTRIGGER_POD.inputs[0].path"),
    (_env(inputs=[{"name": "a", "path": "/a", "key": "k", "raw_data": "x"}]), "GITTRIGGER_POD.inputs[0]"),
    (_env(inputs=[{"name": "a", "path": "/a", "git": {}}]), "GITTRIGGER_POD.inputs[0].git.repo"),
    (_env(artifacts=[{"name": "a", "path": "/a"}]), "GITTRIGGER_POD.artifacts[0].key"),
    (_env(parameters={}), "GITTRIGGER_POD.parameters"),
], ids=["not-json", "not-object", "version", "no-server", "server-type", "no-mains", "main-type", "bad-base64",
        "mode-bool", "input-path", "two-sources", "git-repo", "artifact-key", "parameters-type"])
def test_bad_plans_name_the_field(text: str, path: str) -> None:
    """Every malformed plan is an InvalidSpec whose path names the field."""
    with pytest.raises(InvalidSpec) as caught:
        PodPlan.from_env(text)
    assert caught.value.path == path
