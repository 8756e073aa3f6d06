"""
What each Argo example's MANIFEST note says proves it ran right, as checks over a run's outcome.

Used by :mod:`tests.conformance.test_argo_examples`, which runs the examples and hands each row's
:class:`Outcome` (final Workflow object, logs per pod, stored output-artifact texts) to
``CHECKS[row]``. A check asserts (or calls ``pytest.fail``); rows without an entry have a note
that names no output (the phase alone is checked).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class Outcome:
    workflow: dict[str, Any] | None
    logs: str
    error: str | None = None
    pod_logs: dict[str, list[str]] = field(default_factory=dict)  # pod name -> its lines
    artifacts: dict[str, str] = field(default_factory=dict)  # "<node display name>/<artifact>" -> text

    @property
    def phase(self) -> str:
        return "" if self.workflow is None else str((self.workflow.get("status") or {}).get("phase", ""))

    def nodes(self) -> list[dict[str, Any]]:
        return list(((self.workflow or {}).get("status") or {}).get("nodes", {}).values())

    def results(self) -> list[str]:
        return [str((n.get("outputs") or {}).get("result", "")) for n in self.nodes() if n.get("type") == "Pod"]


Check = Callable[[Outcome], object]  # a check asserts; what it returns is ignored


def _named(o: Outcome, name: str) -> list[dict[str, Any]]:
    return [n for n in o.nodes() if n.get("displayName") == name]


def _one(o: Outcome, name: str) -> dict[str, Any]:
    found = _named(o, name)
    assert len(found) == 1, f"{len(found)} nodes named {name!r}: {sorted(str(n.get('displayName')) for n in o.nodes())}"
    return found[0]


def _node_logs(o: Outcome, node: dict[str, Any]) -> list[str]:
    """The lines of a Pod node: pod names end with the node id's hash, as Argo's v2 pod names do."""
    suffix = "-" + str(node["id"]).rsplit("-", 1)[-1]
    return [line for pod, lines in o.pod_logs.items() if pod.endswith(suffix) for line in lines]


def _lines_of(o: Outcome, name: str) -> list[str]:
    return [line for n in _named(o, name) if n.get("type") == "Pod" for line in _node_logs(o, n)]


def _param(node: dict[str, Any], name: str) -> str | None:
    for p in (node.get("outputs") or {}).get("parameters") or []:
        if p.get("name") == name:
            return None if p.get("value") is None else str(p["value"])
    return None


def _root(o: Outcome) -> dict[str, Any]:
    name = (o.workflow or {})["metadata"]["name"]
    return next(n for n in o.nodes() if n.get("id") == name)


def _all(*checks: Check) -> Check:
    def check(o: Outcome) -> None:
        for c in checks:
            c(o)
    return check


def _contains(*needles: str) -> Check:
    def check(o: Outcome) -> None:
        for needle in needles:
            assert needle in o.logs, f"{needle!r} not in the logs: {o.logs[-800:]!r}"
    return check


def _lines(*expected: str, count: int | None = None) -> Check:
    """Each expected line is a whole log line (``count`` times when given)."""
    def check(o: Outcome) -> None:
        got = o.logs.splitlines()
        for line in expected:
            n = got.count(line)
            assert (n == count) if count is not None else n >= 1, f"{line!r} appears {n} times in {got[-40:]}"
    return check


def _phases(expected: dict[str, str]) -> Check:
    """Every node with each display name is in the given phase ("absent": no such node)."""
    def check(o: Outcome) -> None:
        for name, phase in expected.items():
            found = _named(o, name)
            if phase == "absent":
                assert not found, f"{name!r} exists: {[n['phase'] for n in found]}"
                continue
            assert found, f"no node {name!r}: {sorted(str(n.get('displayName')) for n in o.nodes())}"
            assert all(n["phase"] == phase for n in found), (name, [n["phase"] for n in found], phase)
    return check


def _prints(name: str, *expected: str) -> Check:
    """The Pod node(s) with this display name printed exactly these lines."""
    def check(o: Outcome) -> None:
        assert _lines_of(o, name) == list(expected), (name, _lines_of(o, name))
    return check


def _output(name: str, param: str, value: str) -> Check:
    def check(o: Outcome) -> None:
        node = _root(o) if name == "" else _one(o, name)
        assert _param(node, param) == value, (name, param, node.get("outputs"))
    return check


def _before(first: str, *then: str) -> Check:
    """All ``first`` nodes finished no later than any ``then`` node started."""
    def check(o: Outcome) -> None:
        done = max(str(n.get("finishedAt")) for n in _named(o, first))
        for name in then:
            for n in _named(o, name):
                assert done <= str(n.get("startedAt")), (first, done, name, n.get("startedAt"))
    return check


def _max_running(limit: int, *, template: str | None = None, name_prefix: str = "") -> Check:
    """Never more than ``limit`` Pod nodes (of a template / name prefix) ran at the same time."""
    def check(o: Outcome) -> None:
        pods = [n for n in o.nodes() if n.get("type") == "Pod"
                and str(n.get("displayName", "")).startswith(name_prefix)
                and (template is None or n.get("templateName") == template)]
        assert pods, "no pods"
        for p in pods:
            overlapping = [q for q in pods if str(q["startedAt"]) <= str(p["startedAt"]) < str(q.get("finishedAt"))]
            spans = [(q["displayName"], q["startedAt"], q.get("finishedAt")) for q in overlapping]
            assert len(overlapping) <= limit, spans
    return check


def _results_sequential(o: Outcome) -> None:
    """Each pod node of parallelism-limited steps finishes before the next one starts."""
    # Times have 1 s resolution: order ties by finish time, or a same-second pair could swap.
    pods = sorted((n for n in o.nodes() if n.get("type") == "Pod"),
                  key=lambda n: (str(n["startedAt"]), str(n.get("finishedAt"))))
    for a, b in itertools.pairwise(pods):
        assert str(a["finishedAt"]) <= str(b["startedAt"]), (a["displayName"], b["displayName"])


def _sequential_per_boundary(o: Outcome) -> None:
    """Within each steps/DAG boundary, its pods ran one after another (template parallelism 1)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for n in o.nodes():
        if n.get("type") == "Pod":
            groups.setdefault(str(n.get("boundaryID")), []).append(n)
    for pods in groups.values():
        pods.sort(key=lambda n: (str(n["startedAt"]), str(n.get("finishedAt"))))
        for a, b in itertools.pairwise(pods):
            assert str(a["finishedAt"]) <= str(b["startedAt"]), (a["displayName"], b["displayName"])


def _check_result_was(o: Outcome) -> None:
    results = o.results()
    assert len(results) == 2, results
    generated = next(r for r in results if not r.startswith("result was"))
    assert f"result was: {generated}" in results, results


def _coinflip(o: Outcome) -> None:
    """The branch that ran matches the flip; the other one is Skipped."""
    flip = _one(o, "flip-coin")["outputs"]["result"]
    assert flip in ("heads", "tails"), flip
    other = "tails" if flip == "heads" else "heads"
    _phases({flip: "Succeeded", other: "Skipped"})(o)
    assert _lines_of(o, flip) == [f"it was {flip}"], _lines_of(o, flip)


def _coinflip_recursive(o: Outcome) -> None:
    flips = [n["outputs"]["result"] for n in _named(o, "flip-coin")]
    assert flips and flips.count("heads") == 1 and all(f in ("heads", "tails") for f in flips), flips
    assert "it was heads" in o.logs.splitlines(), o.logs


def _conditionals_complex(o: Outcome) -> None:
    first = _one(o, "flip-coin")["outputs"]["result"]
    second = _one(o, "flip-again")["outputs"]["result"]
    ran = {n["displayName"] for n in o.nodes() if n.get("type") == "Pod" and n["phase"] == "Succeeded"}
    assert ("heads" in ran) == (first == "heads") and ("tails" in ran) == (first == "tails"), (first, ran)
    assert ("complex-condition" in ran) == (second == "tails"), (first, second, ran)
    assert ("heads-regex" in ran) == second.startswith("hea"), (second, ran)
    assert ("tails-regex" in ran) == second.startswith("tai"), (second, ran)


def _flip_output(param_node: str) -> Check:
    """A template output parameter ``stepresult`` equals the flip-coin result."""
    def check(o: Outcome) -> None:
        flip = _one(o, "flip-coin")["outputs"]["result"]
        node = _root(o) if param_node == "" else _one(o, param_node)
        assert _param(node, "stepresult") == flip, (flip, node.get("outputs"))
    return check


def _retried(limit: int | None) -> Check:
    """Retry nodes: attempts are children, at most limit+1, and only the last one may succeed."""
    def check(o: Outcome) -> None:
        by_id = {n["id"]: n for n in o.nodes()}
        retries = [n for n in o.nodes() if n.get("type") == "Retry"]
        assert retries, "no Retry node"
        for r in retries:
            attempts = [by_id[c] for c in r.get("children") or []]
            assert attempts, r
            if limit is not None:
                assert len(attempts) <= limit + 1, len(attempts)
            assert all(a["phase"] != "Succeeded" for a in attempts[:-1]), [a["phase"] for a in attempts]
            if r["phase"] == "Succeeded":
                assert attempts[-1]["phase"] == "Succeeded", [a["phase"] for a in attempts]
            elif r["phase"] == "Failed" and limit is not None and attempts[-1]["phase"] == "Failed":
                assert len(attempts) == limit + 1 or r.get("message"), (len(attempts), r.get("message"))
    return check


def _retry_conditional(o: Outcome) -> None:
    _retried(10)(o)
    retry = next(n for n in o.nodes() if n.get("type") == "Retry")
    attempts = [n for n in o.nodes() if n["id"] in (retry.get("children") or [])]
    # The Retry node lists its attempts in order; start times (1 s resolution) can tie.
    last = next(n for n in attempts if n["id"] == retry["children"][-1])
    code = str((last.get("outputs") or {}).get("exitCode"))
    assert code == "1" or len(attempts) == 11, (code, len(attempts))


def _exit_handlers(o: Outcome) -> None:
    _lines("boohoo!")(o)
    _phases({"celebrate": "Skipped", "cry": "Succeeded", "notify": "Succeeded"})(o)
    name = (o.workflow or {})["metadata"]["name"]
    assert any(line.startswith(f"send e-mail: {name} Failed ") for line in o.logs.splitlines()), o.logs


def _artifact(o: Outcome, node: str, name: str) -> str:
    """The stored text of an output artifact ("" as node: the workflow's root node)."""
    key = f"{node or (o.workflow or {})['metadata']['name']}/{name}"
    assert key in o.artifacts, (key, sorted(o.artifacts))
    return o.artifacts[key]


def _check_total(o: Outcome) -> None:
    assert json.loads(_artifact(o, "reduce", "total")) == {"total": 20}, _artifact(o, "reduce", "total")


def _flip_artifact(o: Outcome) -> None:
    """The template's output artifact ``result`` is the text of the branch the flip chose."""
    flip = _one(o, "flip-coin")["outputs"]["result"]
    assert _artifact(o, "", "result").strip() == f"it was {flip}", (flip, _artifact(o, "", "result"))


def _withsequence_nested(o: Outcome) -> None:
    """Every hello-b/hello-c expansion matches the result of the hello-a/hello-b it reads."""
    a = int(_one(o, "hello-a")["outputs"]["result"])
    assert 0 <= a <= 5, a
    outer = [n for n in o.nodes() if n.get("type") == "Steps" and str(n["displayName"]).startswith("hello-b(")]
    assert len(outer) == len(range(1, a + 1) if a >= 1 else [1, 0]), (a, [n["displayName"] for n in outer])


def _random_path_retry(o: Outcome) -> None:
    """template-defaults: hello-world printed "hello world" whenever it ran."""
    if _named(o, "hello-world"):
        assert "hello world" in o.logs.splitlines(), o.logs


def _skipped_producer(o: Outcome) -> None:
    _phases({"producer": "Skipped"})(o)


def _custom_metrics(o: Outcome) -> None:
    """random-int prints N in 1..10 into the global output; the workflow fails exactly when flakey did."""
    n = _one(o, "random-int")["outputs"]["result"]
    assert 1 <= int(n) <= 10, n
    globals_ = {p["name"]: p.get("value") for p in (((o.workflow or {})["status"].get("outputs") or {})
                                                      .get("parameters") or [])}
    assert globals_.get("rand-int-value") == n, (n, globals_)
    assert _one(o, "flakey")["phase"] == o.phase, (_one(o, "flakey")["phase"], o.phase)


def _variables_showcase(o: Outcome) -> None:
    for needle in ("Succeeded", "greeting=hello target=world"):
        assert needle in o.logs, needle


CHECKS: dict[str, Check] = {
    "hello-world.yaml": lambda o: o.results() == ["hello world"] or pytest.fail(str(o.results())),
    "steps.yaml": _all(_lines("hello1", "hello2a", "hello2b"), _before("hello1", "hello2a", "hello2b")),
    "dag-diamond.yaml": _all(_prints("A", "A"), _prints("B", "B"), _prints("C", "C"), _prints("D", "D"),
                             _before("A", "B", "C"), _before("B", "D"), _before("C", "D")),
    "dag-diamond-steps.yaml": _all(_lines(*(f"{x}{i}" for x in "ABCD" for i in (1, 2, 3)), count=1),
                                   _before("A", "B", "C"), _before("B", "D"), _before("C", "D")),
    "scripts-bash.yaml": _check_result_was,
    "scripts-python.yaml": _check_result_was,
    "scripts-javascript.yaml": _check_result_was,
    "loops.yaml": _lines("hello world", "goodbye world", count=1),
    # the pods cat the host's /etc/os-release (no images here): only the fan-out is checkable
    "loops-maps.yaml": _phases({f"test-linux({i}:image:{im},tag:{tag})": "Succeeded" for i, (im, tag) in enumerate(
        [("debian", "9.1"), ("debian", "8.9"), ("alpine", "3.6"), ("ubuntu", "17.10")])}),
    # the template's workflows.argoproj.io/display-name annotation names the nodes (operator.go executeTemplate)
    "loops-param-argument.yaml": _phases({"os-debian-9.1": "Succeeded", "os-debian-8.9": "Succeeded",
                                          "os-alpine-3.6": "Succeeded", "os-ubuntu-17.10": "Succeeded"}),
    "loops-param-result.yaml": _all(_lines(*(f"sleeping for {n} seconds" for n in range(20, 31))),
                                    _lines("done", count=11)),
    "loops-sequence.yaml": _lines(*(f"testuser0{i}" for i in range(5)), *map(str, range(100, 106)),
                                  *map(str, range(200, 203)), *map(str, range(6))),
    "loops-dag.yaml": _all(_lines("A", "foo", "bar", "baz", "C", count=1), _before("B(0:foo)", "C"),
                           _before("B(1:bar)", "C"), _before("B(2:baz)", "C"), _before("A", "B(0:foo)")),
    "loops-arbitrary-sequential-steps.yaml": _all(
        _lines("succeeds 1", "succeeds 2", "succeeds 3", "will fail and stop here", count=1),
        lambda o: "will not run" not in o.logs or pytest.fail("a later item ran"), _results_sequential),
    "withsequence-nested-result.yaml": _withsequence_nested,
    "parallelism-limit.yaml": _max_running(2),
    "parallelism-template-limit.yaml": _max_running(2),
    "parallelism-nested.yaml": _all(_lines(*(f"{w} {q}" for w in range(1, 5) for q in "abcd"), count=1),
                                    _sequential_per_boundary),
    "parallelism-nested-workflow.yaml": _max_running(2),
    "parallelism-nested-dag.yaml": _all(_lines(*(f"{b} c{c}" for b in range(1, 6) for c in (1, 2, 3)), count=1),
                                        _max_running(2, name_prefix="c1")),
    "conditionals.yaml": _all(_contains("hello"), _phases({"print-hello-govaluate": "Succeeded",
                                                           "print-hello-expr": "Succeeded",
                                                           "print-hello-expr-json": "Succeeded"})),
    "conditionals-complex.yaml": _conditionals_complex,
    "conditional-parameters.yaml": _flip_output(""),
    "coinflip.yaml": _coinflip,
    "coinflip-recursive.yaml": _coinflip_recursive,
    "dag-coinflip.yaml": _contains("it was heads"),
    "recursive-for-loop.yaml": lambda o: sorted(int(r) for r in o.results()) == list(range(1, 11)) or pytest.fail(
        str(o.results())),
    "fibonacci-seq-conditional-param.yaml": lambda o: _lines_of(o, "printresult")[-1:] == ["5"] or pytest.fail(
        str(_lines_of(o, "printresult"))),
    "retry-backoff.yaml": _retried(10),
    "retry-on-error.yaml": _retried(2),
    "retry-with-steps.yaml": _retried(10),
    "retry-container.yaml": _retried(10),
    "retry-container-to-completion.yaml": _retried(None),
    "retry-script.yaml": _retried(10),
    "retry-conditional.yaml": _retry_conditional,
    "exit-handlers.yaml": _exit_handlers,
    "exit-handler-step-level.yaml": _all(_lines("hello1", "hello2a", "hello2b"), _lines("step cleanup", count=3)),
    "exit-handler-dag-level.yaml": _all(_lines("A", "B", "C", "D"), _lines("task cleanup", count=4)),
    "exit-handler-with-param.yaml": _lines("hello world"),
    "exit-handler-with-artifacts.yaml": _contains("Welcome"),
    "template-on-exit.yaml": _all(_lines("hello world", count=2), _lines("goodbye world", count=2)),
    "exit-code-output-variable.yaml": _lines("Exit code was: 123"),
    "status-reference.yaml": _all(_lines("the flakey container failed"), _phases({"succeeded": "Skipped"})),
    "output-parameter.yaml": _prints("consume-parameter", "hello world"),
    "arguments-parameters.yaml": _lines("hello world"),
    "global-parameters.yaml": _lines("hello world"),
    "global-outputs.yaml": _lines("hello world", count=4),
    "parameter-aggregation.yaml": _all(_lines('["odd","even","odd","even"]'), _lines("1", "2")),
    "parameter-aggregation-dag.yaml": _all(_lines('["odd","even","odd","even"]'), _lines("1", "2")),
    "parameter-aggregation-script.yaml": _lines("1", "2"),
    "dag-multiroot.yaml": _all(_before("A", "C", "D"), _before("B", "D")),
    "dag-nested.yaml": _lines(*(x + y for x in "ABCD" for y in "ABCD"), count=1),
    "dag-targets.yaml": _phases({"A": "Succeeded", "C": "Succeeded", "E": "Succeeded", "B": "absent",
                                 "D": "absent"}),
    "dag-continue-on-fail.yaml": _phases({"A": "Succeeded", "B": "Failed", "C": "Succeeded", "D": "Succeeded",
                                          "E": "Failed", "F": "Succeeded", "G": "Omitted"}),
    "dag-conditional-parameters.yaml": _flip_output(""),
    "dag-enhanced-depends.yaml": _phases({"A": "Succeeded", "B": "Succeeded", "C": "Failed",
                                          "should-execute-1": "Succeeded", "should-execute-2": "Succeeded",
                                          "should-not-execute": "Omitted", "should-execute-3": "Succeeded"}),
    "dag-disable-failFast.yaml": _phases({"A": "Succeeded", "B": "Succeeded", "C": "Failed", "D": "Succeeded",
                                          "E": "Succeeded"}),
    "dag-task-level-timeout.yaml": _phases({"A": "Succeeded", "B": "Failed", "C": "Succeeded"}),
    "steps-inline-workflow.yaml": _lines("hello argo"),
    "dag-inline-workflow.yaml": _lines("hello argo"),
    "timeouts-step.yaml": _lines("123"),
    # the "unschedulable" pods (bogus nodeSelector upstream) are not checked: locally they just run
    "timeouts-workflow.yaml": lambda o: [n.get("message") for n in o.nodes() if str(n["displayName"]).startswith(
        "sleep-one-day(")] == ["Step exceeded its deadline"] * 3 or pytest.fail(str(o.nodes())),
    "custom-metrics.yaml": _custom_metrics,
    "step-level-timeout.yaml": _phases({"sleep1": "Failed", "sleep2": "Failed"}),
    "daemon-step.yaml": _all(_contains('"name": "cpu"', '"host"', '"load"', '"region"', "server03", "15.4")),
    "daemon-nginx.yaml": _contains("<title>Welcome to nginx!</title>"),
    "dag-daemon-task.yaml": _contains('"name": "cpu"', "server03", "15.4"),
    "steps-daemon-retry-strategy.yaml": lambda o: o.logs.count("<title>Welcome to nginx!</title>") == 10 or
    pytest.fail(str(o.logs.count("<title>Welcome to nginx!</title>"))),
    "dag-daemon-retry-strategy.yaml": lambda o: o.logs.count("<title>Welcome to nginx!</title>") == 6 or
    pytest.fail(str(o.logs.count("<title>Welcome to nginx!</title>"))),
    "sidecar-nginx.yaml": _contains("<title>Welcome to nginx!</title>"),
    "init-container.yaml": _contains("hello", "bye"),
    "continue-on-fail.yaml": _phases({"A": "Succeeded", "C": "Failed", "D": "Succeeded"}),
    # the block scalar's newline stays: argosay's echo adds one, the executor trims only one
    "expression-tag-template-workflow.yaml": lambda o: _param(_one(o, "task-0(0:3)"), "output") == (
        f"hello 30 @ {str((o.workflow or {})['metadata']['creationTimestamp'])[:4]}\n") or pytest.fail(
        str(_one(o, "task-0(0:3)").get("outputs"))),
    "expression-destructure-json.yaml": _lines("123"),
    "expression-destructure-json-complex.yaml": _lines('[43][43][{"age":43,"name":"Baris"}]["Baris","Mo","Jai"]'),
    "expression-reusing-verbose-snippets.yaml": _lines(
        "The week's average temperature was 35.8 with a minimum of 15 and a maximum of 57."),
    "template-defaults.yaml": _random_path_retry,
    "variables-showcase.yaml": _variables_showcase,
    "skipped-output-defaults/consumer-input-default.yaml": _all(
        _skipped_producer, _prints("consumer", "consumer got: [fallback-from-input]")),
    "skipped-output-defaults/expression-fallback.yaml": _all(_skipped_producer, _output("", "result", "expr-fallback")),
    "skipped-output-defaults/producer-output-default.yaml": _all(
        _skipped_producer, _prints("consumer", "consumer got: [hello-from-producer]")),
    "handle-large-output-results.yaml": _lines('"a"', '"b"', '"c"', count=1),  # jq without -r keeps the quotes
    "container-set-template/graph-workflow.yaml": _lines("hello argo", count=4),
    "container-set-template/outputs-result-workflow.yaml": _lines("hi"),
    "container-set-template/parallel-workflow.yaml": _lines("hello argo", count=2),
    "container-set-template/sequence-workflow.yaml": _lines("hello argo", count=3),
    "container-set-template/workspace-workflow.yaml": _all(
        _output("", "out", "hi"), lambda o: _artifact(o, "", "out").strip() == "hi" or pytest.fail(str(o.artifacts))),
    "forever.yaml": _lines(*map(str, range(1, 1001)), count=1),
    "colored-logs.yaml": lambda o: len(o.logs.splitlines()) == 99 or pytest.fail(str(len(o.logs.splitlines()))),
    "title-and-description-with-markdown.yaml": _lines("hello world"),
    "label-value-from-workflow.yaml": _all(_lines("hello argo"), lambda o: (o.workflow or {})["metadata"].get(
        "labels", {}).get("foo") == "bar" or pytest.fail(str((o.workflow or {})["metadata"].get("labels")))),
    "dag-custom-metrics.yaml": _lines(*(f"console output-->TEST-{a}-{b}" for a in ("ONE", "TWO") for b in "AB")),
    "synchronization-mutex-wf-level.yaml": _lines("hello world"),
    "synchronization-mutex-tmpl-level.yaml": _all(_lines("acquired lock", count=10),
                                                  _max_running(1, template="acquire-lock"),
                                                  _max_running(1, template="acquire-lock-1")),
    "memoize-simple.yaml": _output("", "hello", "world"),
    "gc-ttl.yaml": _lines("hello world"),
    "pod-spec-patch.yaml": _lines("hello world"),
    "pod-spec-patch-wf-tmpl.yaml": _lines("hello world"),
    "pod-spec-yaml-patch.yaml": _lines("hello world"),
    "pod-spec-from-previous-step.yaml": _contains('"memory": "10Gi"', '"cpu": "2000m"'),
    "pod-resources.yaml": _lines("hello world"),
    "pod-resources-template-override.yaml": _lines("small step", "large step"),
    "dns-config.yaml": _lines("hello world"),
    "pod-gc-strategy.yaml": _phases({"fail": "Failed", "succeed": "Succeeded"}),
    "pod-gc-strategy-with-label-selector.yaml": _phases({"fail": "Failed"}),
    "volumes-emptydir.yaml": _lines("Volume mounted and found"),
    "key-only-artifact.yaml": _lines("hello"),
    "artifact-passing.yaml": _contains("hello world"),
    "artifact-passing-subpath.yaml": _all(_contains("hello_world.txt"), _lines("hello world")),
    "artifact-path-placeholders.yaml": _all(
        _output("", "actual-lines-count", "3"),
        lambda o: len(_artifact(o, "", "text").splitlines()) == 3 or pytest.fail(_artifact(o, "", "text"))),
    "conditional-artifacts.yaml": _flip_artifact,
    "dag-conditional-artifacts.yaml": _flip_artifact,
    "artifact-disable-archive.yaml": _lines("hello world"),
    "input-artifact-raw.yaml": _lines("this is", "the raw file", "contents"),
    "map-reduce.yaml": _check_total,
    "nested-workflow.yaml": _contains("input parameter value: my-output-parameter", "hello world"),
    "archive-location.yaml": _lines("hello world"),
    "workflow-template/hello-world.yaml": _lines("hello world"),
    "workflow-template/steps.yaml": _phases({n: "Succeeded" for n in ("hello1", "hello2a", "inner-hello1",
                                                                      "inner-hello2a", "inner-hello2b")}),
    "workflow-template/dag.yaml": _phases({n: "Succeeded" for n in ("A", "B", "C", "D")}),
    "workflow-template/workflow-template-ref.yaml": _lines("hello world"),
    "workflow-template/workflow-template-ref-with-entrypoint-arg-passing.yaml": _lines("hello world"),
    "workflow-template/workflow-archive-logs.yaml": _lines("hello world"),
    "cluster-workflow-template/cluster-wftmpl-dag.yaml": _phases({n: "Succeeded" for n in ("A", "B", "C", "D")}),
    "cluster-workflow-template/mixed-cluster-namespaced-wftmpl-steps.yaml": _lines(
        "hello1", "hello2b", "inner-hello1", "inner-hello2a", "inner-hello2b", count=1),
    "cluster-workflow-template/workflow-template-ref.yaml": _lines("hello world"),
    "cluster-workflow-template/workflow-template-ref-with-entrypoint-arg-passing.yaml": _lines("hello world"),
    "workflow-template/retry-with-steps.yaml": _retried(10),
    "resubmit.yaml": lambda o: None,
}
