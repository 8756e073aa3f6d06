"""Tests of :mod:`workflows.model.wire`: manifest parsing with field paths, and status round trips."""

from __future__ import annotations

import json
import random
import textwrap
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from workflows.errors import InvalidSpec
from workflows.model import wire
from workflows.model.ids import NodeId
from workflows.model.spec import ObjectKind, RetryPolicy, TemplateKind
from workflows.model.status import (
    ArtifactRef,
    NodeIO,
    NodePhase,
    NodeStatus,
    NodeType,
    WorkflowPhase,
    WorkflowStatus,
)


def doc(text: str) -> dict[str, Any]:
    loaded = yaml.safe_load(textwrap.dedent(text))
    assert isinstance(loaded, dict)
    return loaded


WF = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: ci-, labels: {team: a}}
spec:
  entrypoint: main
  parallelism: 2
  arguments:
    parameters:
    - {name: n, value: 1}
    - {name: flag, value: true}
    - {name: ratio, value: 1.5}
    - {name: big, value: 1.0e+20}
    - {name: env, value: dev, enum: [dev, prod]}
  onExit: cleanup
  nodeSelector: {disk: ssd}
  templates:
  - name: main
    dag:
      failFast: false
      tasks:
      - name: A
        template: echo
        arguments: {parameters: [{name: msg, value: A}]}
      - name: B
        dependencies: [A]
        templateRef: {name: lib, template: t, clusterScope: true}
        withItems: [1, "two", {k: v}]
      - name: C
        depends: "A && B.Succeeded"
        inline:
          container: {image: busybox}
        withSequence: {count: 3}
        continueOn: {failed: true}
  - name: echo
    inputs:
      parameters: [{name: msg}]
      artifacts:
      - {name: src, path: /src, git: {repo: "https://x/y.git", revision: main, depth: 1}}
      - {name: data, path: /d, s3: {key: a/b.tgz}, archive: {none: {}}}
      - {name: lit, path: /l, raw: {data: hello}}
    container: {image: busybox, command: [echo, "{{inputs.parameters.msg}}"]}
    retryStrategy: {limit: "3", retryPolicy: Always, backoff: {duration: 1, factor: 2}}
    metadata: {labels: {x: y}}
    tolerations: [{key: k}]
    activeDeadlineSeconds: 30
  - name: cleanup
    steps:
    - - {name: s1, template: wait}
    - - {name: s2, template: wait, when: "{{steps.s1.status}} == Succeeded"}
      - {name: s3, template: wait, hooks: {exit: {template: wait}}}
  - name: wait
    suspend: {duration: 20}
    synchronization: {mutex: {name: m}, semaphores: [{configMapKeyRef: {name: cm, key: k}}]}
    memoize: {key: "{{inputs.parameters.x}}", cache: {configMap: {name: c}}, maxAge: 1h}
"""


def test_parse_workflow_reads_every_part() -> None:
    """A representative manifest lands in the right model fields."""
    wf = wire.parse_object(doc(WF))
    assert wf.kind is ObjectKind.WORKFLOW
    assert wf.metadata.generate_name == "ci-" and wf.metadata.labels == {"team": "a"}
    spec = wf.spec
    assert (spec.entrypoint, spec.parallelism, spec.on_exit) == ("main", 2, "cleanup")
    assert [(p.name, p.value) for p in spec.arguments.parameters] == [
        ("n", "1"), ("flag", "true"), ("ratio", "1.5"), ("big", "100000000000000000000"), ("env", "dev"),
    ]
    assert spec.arguments.parameters[4].enum == ("dev", "prod")
    assert spec.pod_fields == {"nodeSelector": {"disk": "ssd"}}
    main, echo, cleanup, wait = spec.templates
    assert main.kind is TemplateKind.DAG and main.dag is not None
    assert main.dag.fail_fast is False
    a, b, c = main.dag.tasks
    assert a.arguments.parameter("msg") is not None
    assert b.dependencies == ("A",) and b.template_ref is not None and b.template_ref.cluster_scope
    assert b.with_items == (1, "two", {"k": "v"})
    assert c.depends == "A && B.Succeeded" and c.inline is not None and c.inline.name == ""
    assert c.with_sequence is not None and c.with_sequence.count == "3"
    assert c.continue_on is not None and c.continue_on.failed and not c.continue_on.error
    assert echo.kind is TemplateKind.CONTAINER and echo.container == echo.raw["container"]
    src, data, lit = echo.inputs.artifacts
    assert src.git is not None and src.git.depth == 1 and src.has_location
    assert (data.key, data.archive_none) == ("a/b.tgz", True)
    assert lit.raw_data == "hello"
    assert echo.retry_strategy is not None
    assert echo.retry_strategy.limit == "3" and echo.retry_strategy.policy is RetryPolicy.ALWAYS
    assert echo.retry_strategy.backoff is not None and echo.retry_strategy.backoff.duration == "1"
    assert echo.metadata == {"labels": {"x": "y"}} and echo.pod_fields == {"tolerations": [{"key": "k"}]}
    assert echo.active_deadline_seconds == "30"
    assert [[s.name for s in g] for g in cleanup.steps] == [["s1"], ["s2", "s3"]]
    assert cleanup.steps[1][1].hooks["exit"].template == "wait"
    assert wait.suspend_duration == "20"
    assert wait.synchronization is not None
    assert wait.synchronization.mutexes == ("m",) and wait.synchronization.semaphores == ("cm/k",)
    assert wait.memoize is not None and wait.memoize.cache_name == "c"
    assert spec.raw["templates"][0] is main.raw


def test_parse_cron_workflow() -> None:
    """A CronWorkflow's schedules merge and its workflowSpec becomes the spec."""
    wf = wire.parse_object(doc("""
        apiVersion: argoproj.io/v1alpha1
        kind: CronWorkflow
        metadata: {name: nightly}
        spec:
          schedule: "0 1 * * *"
          schedules: ["0 2 * * *"]
          timezone: Europe/Paris
          concurrencyPolicy: Forbid
          startingDeadlineSeconds: 0
          workflowMetadata: {labels: {a: b}}
          workflowSpec:
            entrypoint: x
            templates: [{name: x, container: {image: i}}]
    """))
    assert wf.cron is not None
    assert wf.cron.schedules == ("0 1 * * *", "0 2 * * *")
    assert (wf.cron.timezone, wf.cron.concurrency_policy, wf.cron.starting_deadline_seconds) == (
        "Europe/Paris", "Forbid", 0,
    )
    assert wf.spec.entrypoint == "x" and wf.workflow_metadata == {"labels": {"a": "b"}}


@pytest.mark.parametrize(
    ("raw", "limit"),
    [({}, None), ({"limit": 2}, "2"), ({"limit": "10"}, "10"), ({"limit": "{{inputs.parameters.n}}"},
                                                                  "{{inputs.parameters.n}}")],
    ids=["empty-unlimited", "int", "string", "expression"],
)
def test_retry_limit_kept_as_string(raw: dict[str, Any], limit: str | None) -> None:
    """retryStrategy limit is an IntOrString kept for later resolution."""
    assert wire.parse_retry_strategy(raw, path="r").limit == limit


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, "1"), (True, "true"), (False, "false"), (1.5, "1.5"), (2.0, "2"), (1e-7, "0.0000001"), ("x", "x")],
    ids=["int", "true", "false", "float", "whole-float", "tiny-float", "string"],
)
def test_any_string(value: object, expected: str) -> None:
    """Scalars convert like Argo's AnyString (strconv.FormatFloat 'f', -1)."""
    assert wire.any_string(value) == expected


TEMPLATE_HEAD = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: w}\n"
CRON_HEAD = "apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nmetadata: {name: c}\n"

ERRORS = [
    ("apiVersion: v1\nkind: Workflow\nspec: {}", "apiVersion: must be 'argoproj.io/v1alpha1', got 'v1'"),
    ("apiVersion: argoproj.io/v1alpha1\nkind: Pod\nspec: {}", "kind: must be one of"),
    (TEMPLATE_HEAD, "spec: is required"),
    (TEMPLATE_HEAD + "spec: {templates: [{name: a}]}", "spec.templates[0]: template 'a' has no body"),
    (TEMPLATE_HEAD + "spec: {templates: [{name: a, container: {}, script: {}}]}",
     "spec.templates[0]: template 'a' has several bodies (container, script)"),
    (TEMPLATE_HEAD + "spec: {templates: [{container: {}}]}", "spec.templates[0].name: is required"),
    (TEMPLATE_HEAD + "spec: {templates: [{name: a, dag: {tasks: [{name: x}, {name: y, dependencies: x}]}}]}",
     "spec.templates[0].dag.tasks[1].dependencies: must be a list, got str"),
    (TEMPLATE_HEAD + "spec: {templates: [{name: a, steps: [{name: x}]}]}",
     "spec.templates[0].steps[0]: must be a list of steps, got dict"),
    (TEMPLATE_HEAD + "spec: {templates: [{name: a, container: {}, retryStrategy: {retryPolicy: Never}}]}",
     "spec.templates[0].retryStrategy.retryPolicy: must be one of"),
    (TEMPLATE_HEAD + "spec: {templates: [{name: a, container: {},"
     " inputs: {parameters: [{name: p, value: [1]}]}}]}",
     "spec.templates[0].inputs.parameters[0].value: must be a string, number or boolean, got list"),
    (TEMPLATE_HEAD + "spec: {arguments: {parameters: [{value: 1}]}}",
     "spec.arguments.parameters[0].name: is required"),
    (TEMPLATE_HEAD + "spec: {parallelism: many}", "spec.parallelism: must be an integer, got 'many'"),
    (CRON_HEAD + "spec: {workflowSpec: {}}",
     "spec.schedule: a schedule or schedules is required"),
    (CRON_HEAD + "spec: {schedule: '* * * * *'}",
     "spec.workflowSpec: is required"),
    (TEMPLATE_HEAD + "spec: {templates: [{name: a, dag: {tasks: [{name: t, withItems: 3}]}}]}",
     "spec.templates[0].dag.tasks[0].withItems: must be a list, got int"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[
    "api-version", "kind", "no-spec", "no-body", "two-bodies", "no-name", "dependencies-string",
    "step-group-not-list", "retry-policy", "param-list", "argument-name", "parallelism", "cron-schedule",
    "cron-spec", "with-items",
])
def test_parse_errors_name_the_field(text: str, message: str) -> None:
    """Each wrong field raises InvalidSpec naming its full path."""
    with pytest.raises(InvalidSpec) as err:
        wire.parse_object(doc(text))
    assert str(err.value).startswith(message), str(err.value)


def test_unknown_fields_are_ignored() -> None:
    wf = wire.parse_object(doc(TEMPLATE_HEAD + "spec: {podGC: {strategy: x}, futureField: 1, templates: []}"))
    assert wf.spec.pod_fields == {"podGC": {"strategy": "x"}}


def test_path_prefix() -> None:
    with pytest.raises(InvalidSpec) as err:
        wire.parse_object(doc(TEMPLATE_HEAD + "spec: {onExit: 1}"), path="items[3]")
    assert err.value.path == "items[3].spec.onExit"


# --- status -------------------------------------------------------------------------------------

T0 = datetime(2026, 11, 26, 15, 4, 5, tzinfo=UTC)
T1 = datetime(2026, 11, 26, 15, 5, 0, tzinfo=UTC)


def node(name: str, **kw: Any) -> NodeStatus:
    fields: dict[str, Any] = {"id": NodeId(f"wf-{name}"), "name": name, "display_name": name,
                              "type": NodeType.POD}
    fields.update(kw)
    return NodeStatus(**fields)


FULL = node(
    "wf.a",
    phase=NodePhase.SUCCEEDED,
    template_name="echo",
    template_ref=MappingProxyType({"name": "lib", "template": "t", "clusterScope": True}),
    template_scope="local/wf",
    boundary_id=NodeId("wf"),
    children=(NodeId("c1"), NodeId("c2")),
    outbound_nodes=(NodeId("c2"),),
    inputs=NodeIO(parameters=(("msg", "hi"),),
                  artifacts=(ArtifactRef(name="src", path="/src", key="k/src"),)),
    outputs=NodeIO(
        parameters=(("out", "1"),),
        artifacts=(ArtifactRef(name="o", path="/o", key="k/o", archive_none=True,
                               raw=MappingProxyType({"optional": True})),),
        result="done", exit_code="0",
    ),
    started_at=T0, finished_at=T1, message="ok", pod_ip="10.0.0.1", daemoned=True, hooked=True, retried=True,
    memoization=MappingProxyType({"hit": True, "key": "k", "cacheName": "c"}), host_node_name="n1",
)

NODES = [
    node("wf", type=NodeType.DAG),
    node("wf.running", phase=NodePhase.RUNNING, started_at=T0),
    node("wf.empty-outputs", outputs=NodeIO(), display_name="other"),
    node("wf.s3-extra", outputs=NodeIO(artifacts=(
        ArtifactRef(name="x", key="k", raw=MappingProxyType({"s3": {"bucket": "b"}})),
        ArtifactRef(name="y", raw=MappingProxyType({"archive": {"tar": {"compressionLevel": 1}}})),
    ))),
    FULL,
]


@pytest.mark.parametrize("n", NODES, ids=[n.name for n in NODES])
def test_node_round_trip(n: NodeStatus) -> None:
    """parse_node(dump_node(x)) == x for hand-built nodes."""
    dumped = wire.dump_node(n)
    assert wire.parse_node(dumped, path="n") == n
    assert wire.parse_node(yaml.safe_load(yaml.safe_dump(dumped)), path="n") == n


def test_dump_node_wire_shape() -> None:
    """Argo's exact keys; unfinished nodes carry finishedAt: null; empty fields are omitted."""
    assert wire.dump_node(NODES[1]) == {
        "id": "wf-wf.running", "name": "wf.running", "displayName": "wf.running", "type": "Pod",
        "phase": "Running", "startedAt": "2026-11-26T15:04:05Z", "finishedAt": None,
    }
    full = wire.dump_node(FULL)
    assert full["nodeFlag"] == {"hooked": True, "retried": True}
    assert full["outputs"] == {
        "parameters": [{"name": "out", "value": "1"}],
        "artifacts": [
            {"name": "o", "path": "/o", "optional": True, "s3": {"key": "k/o"}, "archive": {"none": {}}},
        ],
        "result": "done", "exitCode": "0",
    }
    assert full["boundaryID"] == "wf" and full["memoizationStatus"]["cacheName"] == "c"


def test_status_round_trip() -> None:
    status = WorkflowStatus(
        phase=WorkflowPhase.RUNNING, started_at=T0, message="m", progress="1/2",
        nodes=MappingProxyType({n.id: n for n in NODES}),
        outputs=NodeIO(parameters=(("g", "v"),)),
        stored_templates=MappingProxyType({"namespaced/lib/t": {"name": "t", "container": {"image": "i"}}}),
        stored_spec=MappingProxyType({"entrypoint": "x"}),
        conditions=(MappingProxyType({"type": "Completed", "status": "False"}),),
        synchronization=MappingProxyType({"mutex": {"holding": []}}),
    )
    dumped = wire.dump_status(status)
    assert set(dumped) == {"phase", "startedAt", "finishedAt", "message", "progress", "nodes", "outputs",
                           "storedTemplates", "storedWorkflowTemplateSpec", "conditions", "synchronization"}
    assert dumped["finishedAt"] is None
    assert wire.parse_status(dumped) == status
    assert wire.parse_status(wire.dump_status(WorkflowStatus())) == WorkflowStatus()


def test_parse_status_accepts_fractional_and_offset_times() -> None:
    parsed = wire.parse_status({"startedAt": "2026-11-26T16:04:05.5+01:00", "phase": "Succeeded"})
    assert parsed.started_at == datetime(2026, 11, 26, 15, 4, 5, 500000, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "message"), [
    ({"phase": "Weird"}, "status.phase: unknown workflow phase 'Weird'"),
    ({"nodes": {"x": {"id": "x", "name": "x", "type": "Pod", "startedAt": "yesterday"}}},
     "status.nodes.x.startedAt: must be an RFC 3339 timestamp"),
    ({"nodes": {"x": {"id": "x", "name": "x", "type": "Robot"}}}, "status.nodes.x.type: unknown node type"),
], ids=["phase", "time", "node-type"])
def test_parse_status_errors(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpec, match="^" + message.replace(".", r"\.").replace("(", r"\(")):
        wire.parse_status(raw)


def test_dump_many_nodes() -> None:
    """10,000 nodes dump and parse back (speed is checked by eye, not asserted: shared machine)."""
    nodes = {NodeId(f"wf-{i}"): node(str(i), started_at=T0, children=(NodeId("c"),)) for i in range(10_000)}
    status = WorkflowStatus(nodes=MappingProxyType(nodes))
    assert wire.parse_status(wire.dump_status(status)) == status


def random_node(rng: random.Random, i: int) -> NodeStatus:
    """A node with a random subset of optional fields set."""
    def maybe(value: Any) -> Any:
        return value if rng.random() < 0.5 else None

    def io() -> NodeIO:
        return NodeIO(
            parameters=tuple((f"p{j}", rng.choice(["", "1", "x y", '{"a": 1}']))
                             for j in range(rng.randint(0, 2))),
            artifacts=tuple(ArtifactRef(name=f"a{j}", path=maybe(f"/tmp/{j}"), key=maybe(f"k/{j}.tgz"),
                                        archive_none=rng.random() < 0.5) for j in range(rng.randint(0, 2))),
            result=maybe("out"), exit_code=maybe(str(rng.randint(0, 3))),
        )

    return NodeStatus(
        id=NodeId(f"wf-{i}"), name=f"wf.s{i}", display_name=f"s{i}", type=rng.choice(list(NodeType)),
        phase=rng.choice(list(NodePhase)), template_name=maybe("t"), template_scope=maybe("local/wf"),
        boundary_id=maybe(NodeId("wf")),
        children=tuple(NodeId(f"wf-{i}-{j}") for j in range(rng.randint(0, 3))),
        outbound_nodes=tuple(NodeId(f"wf-{j}") for j in range(rng.randint(0, 2))),
        inputs=maybe(io()), outputs=maybe(io()), started_at=maybe(T0), finished_at=maybe(T1),
        message=maybe("m"), pod_ip=maybe("10.1.2.3"), daemoned=rng.random() < 0.2, hooked=rng.random() < 0.2,
        retried=rng.random() < 0.2, host_node_name=maybe("node-1"),
    )


@pytest.mark.parametrize("seed", range(5))
def test_random_trees_round_trip(seed: int) -> None:
    """parse_status(dump_status(x)) == x over seeded random trees, also through JSON text."""
    rng = random.Random(seed)
    nodes = {n.id: n for n in (random_node(rng, i) for i in range(50))}
    status = WorkflowStatus(phase=rng.choice(list(WorkflowPhase)), started_at=T0,
                            nodes=MappingProxyType(nodes))
    assert wire.parse_status(json.loads(json.dumps(wire.dump_status(status)))) == status


def test_dump_object_round_trips_through_parse() -> None:
    """dump_object gives a manifest that parses back to an equal object (cron fields included)."""
    for text in (WF, """
        apiVersion: argoproj.io/v1alpha1
        kind: CronWorkflow
        metadata: {name: c, namespace: ns, labels: {a: b}, creationTimestamp: "2026-11-26T15:04:05Z"}
        spec:
          schedules: ["0 1 * * *"]
          timezone: UTC
          suspend: true
          workflowMetadata: {labels: {x: y}}
          workflowSpec: {entrypoint: x, templates: [{name: x, suspend: {}}]}
    """):
        obj = wire.parse_object(doc(text))
        again = wire.parse_object(wire.dump_object(obj))
        assert again == obj
