"""Table tests for DAG ``depends`` parsing and evaluation."""

from __future__ import annotations

import pytest

from workflows.errors import ExpressionError
from workflows.expressions import depends_from_dependencies, parse_depends

CASES = [
    ("bare-succeeded", "A", {("A", "Succeeded")}, True),
    ("bare-skipped", "A", {("A", "Skipped")}, True),
    ("bare-daemoned", "A", {("A", "Daemoned")}, True),
    ("bare-failed", "A", {("A", "Failed")}, False),
    ("enhanced", "A && (C.Succeeded || C.Failed)", {("A", "Succeeded"), ("C", "Failed")}, True),
    ("enhanced-not-ready", "A && (C.Succeeded || C.Failed)", {("A", "Succeeded"), ("C", "Errored")}, False),
    ("or", "B || C", {("C", "Succeeded")}, True),
    ("and", "B && C", {("C", "Succeeded")}, False),
    ("dash-digit-names", "should-execute-2.Succeeded || should-not-execute",
     {("should-execute-2", "Succeeded")}, True),
    ("not", "!A.Failed", {("A", "Succeeded")}, True),
    ("words", "A.Failed or not B.Succeeded", {("B", "Skipped")}, True),
    ("any-succeeded", "loop.AnySucceeded", {("loop", "AnySucceeded")}, True),
    ("all-failed", "loop.AllFailed", set(), False),
    ("omitted", "A.Omitted && B.Errored", {("A", "Omitted"), ("B", "Errored")}, True),
    ("precedence-and-over-or", "A.Failed || B && C", {("A", "Failed")}, True),
]


@pytest.mark.parametrize(
    ("text", "true_results", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_depends_evaluate(text: str, true_results: set[tuple[str, str]], expected: bool) -> None:
    """Operands are answered by the callback; bare names mean Succeeded || Skipped || Daemoned."""
    assert expected is parse_depends(text).evaluate(lambda task, result: (task, result) in true_results)


def test_depends_tasks() -> None:
    """``tasks`` lists every task named, with or without a result."""
    assert frozenset({"A", "C", "should-execute-2"}) == parse_depends(
        "A && (C.Succeeded || should-execute-2.Failed)").tasks


def test_continue_on_widens_bare_task() -> None:
    """A dependency with continueOn.failed also accepts Failed for a bare reference."""
    failed = parse_depends("A", continue_on={"A": ["Failed"]})
    assert failed.evaluate(lambda task, result: result == "Failed")
    assert not parse_depends("A").evaluate(lambda task, result: result == "Failed")


@pytest.mark.parametrize(("names", "true_results", "expected"), [
    (["A", "B"], {("A", "Succeeded"), ("B", "Skipped")}, True),
    (["A", "B"], {("A", "Succeeded")}, False),
    ([], set(), True),
], ids=["both-done", "one-missing", "none"])
def test_from_dependencies(names: list[str], true_results: set[tuple[str, str]], expected: bool) -> None:
    """The legacy ``dependencies`` list means all of them, each as a bare task."""
    deps = depends_from_dependencies(names)
    assert frozenset(names) == deps.tasks
    assert expected is deps.evaluate(lambda task, result: (task, result) in true_results)


@pytest.mark.parametrize(("text", "fragment"), [
    ("A &&", "unexpected end"),
    ("A.Bogus", "task result 'Bogus' for task 'A' is invalid"),
    ("(A", "unbalanced parenthesis"),
    ("A B", "unexpected 'B'"),
    ("A & B", "unexpected character '&'"),
    ("", "empty depends"),
], ids=["dangling", "bad-result", "unbalanced", "adjacent", "single-amp", "empty"])
def test_depends_errors(text: str, fragment: str) -> None:
    """Bad syntax raises ExpressionError naming the expression."""
    with pytest.raises(ExpressionError) as info:
        parse_depends(text)
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)
