"""Trigger condition expressions: parse errors name the field, evaluation follows && / || precedence."""

from __future__ import annotations

import pytest

from sensors import conditions
from workflows.errors import InvalidSpec

DEPS = ["dep-a", "dep-b", "dep-c", "d.e_f"]


@pytest.mark.parametrize(
    ("text", "satisfied", "expected"),
    [
        ("dep-a", {"dep-a"}, True),
        ("dep-a", {"dep-b"}, False),
        ("dep-a && dep-b", {"dep-a"}, False),
        ("dep-a && dep-b", {"dep-a", "dep-b"}, True),
        ("dep-a || dep-b", {"dep-b"}, True),
        ("dep-a && (dep-b || dep-c)", {"dep-a", "dep-c"}, True),
        ("dep-a && (dep-b || dep-c)", {"dep-b", "dep-c"}, False),
        ("dep-a || dep-b && dep-c", {"dep-a"}, True),
        ("dep-a || dep-b && dep-c", {"dep-b"}, False),
        ("((dep-a))", {"dep-a"}, True),
        ("d.e_f&&dep-a", {"d.e_f", "dep-a"}, True),
    ],
    ids=[
        "single",
        "single-missing",
        "and-half",
        "and-both",
        "or",
        "nested",
        "nested-missing-left",
        "and-binds-tighter",
        "and-binds-tighter-false",
        "parens",
        "no-spaces",
    ],
)
def test_evaluate(text: str, satisfied: set[str], expected: bool) -> None:
    """Names hold when their dependency has an event; && binds tighter than ||."""
    assert expected == conditions.evaluate(conditions.parse(text, known=DEPS), satisfied)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("dep-a &&", "unexpected end"),
        ("dep-a & dep-b", "unexpected '&'"),
        ("(dep-a || dep-b", "missing ')'"),
        ("dep-a dep-b", "unexpected 'dep-b'"),
        ("dep-x", "unknown dependency 'dep-x'"),
        ("!dep-a", "unexpected '!'"),
    ],
    ids=["empty", "dangling-op", "single-amp", "unclosed", "two-names", "unknown", "negation"],
)
def test_parse_errors_name_the_field(text: str, message: str) -> None:
    """Bad conditions fail at load time with the field path."""
    with pytest.raises(InvalidSpec) as caught:
        conditions.parse(text, known=DEPS, path="spec.triggers[0].template.conditions")
    assert caught.value.path == "spec.triggers[0].template.conditions"
    assert message in caught.value.message


def test_default_condition_needs_every_dependency() -> None:
    """Without conditions a trigger needs all of the sensor's dependencies (Argo Events)."""
    tree = conditions.all_of(["b", "a"])
    assert conditions.names(tree) == {"a", "b"}
    assert not conditions.evaluate(tree, {"a"})
    assert conditions.evaluate(tree, {"a", "b"})
