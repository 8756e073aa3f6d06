"""Dependency filters with Argo Events' semantics (filter.go), plus our git/skipCI extensions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sensors.filters import evaluate
from sensors.model import parse_dependency
from tests.sensors.eventkit import fixture_json, make_event, webhook

PAYLOAD: dict[str, Any] = {
    "a": "b",
    "c": 10,
    "d": {"e": False, "f": "true"},
    "ref": "refs/heads/release/1.2",
    "list": ["x", "y"],
    "n": "42",
    "z": None,
}


def dep(filters: dict[str, Any], **extra: Any) -> Any:
    """A dependency on hooks/a with these filters."""
    raw = {"name": "d", "eventSourceName": "hooks", "eventName": "a", "filters": filters, **extra}
    return parse_dependency(raw, path="dep")


def data_filter(
    path: str, type_: str, *values: str, comparator: str = "", template: str = ""
) -> dict[str, Any]:
    spec: dict[str, Any] = {"path": path, "type": type_, "value": list(values)}
    if comparator:
        spec["comparator"] = comparator
    if template:
        spec["template"] = template
    return spec


@pytest.mark.parametrize(
    ("spec", "passed"),
    [
        (data_filter("a", "string", "b"), True),
        (data_filter("a", "string", "^c$", "b"), True),
        (data_filter("a", "string", "c"), False),
        (data_filter("ref", "string", "release"), True),
        (data_filter("ref", "string", "^release"), False),
        (data_filter("a", "string", "b", comparator="!="), False),
        (data_filter("a", "string", "x", comparator="!="), True),
        (data_filter("c", "number", "10"), True),
        (data_filter("c", "number", "20", comparator=">"), False),
        (data_filter("c", "number", "10", comparator=">="), True),
        (data_filter("c", "number", "11", comparator="<"), True),
        (data_filter("c", "number", "10", comparator="!="), False),
        (data_filter("n", "number", "42"), True),
        (data_filter("d.e", "bool", "false"), True),
        (data_filter("d.e", "bool", "true"), False),
        (data_filter("d.f", "bool", "true"), True),
        (data_filter("missing", "string", ".*"), False),
        (data_filter("z", "string", "^$"), True),
        (data_filter("list", "string", '\\["x","y"\\]'), True),
        (data_filter("list.#", "number", "2"), True),
        (
            data_filter(
                "ref", "string", "^1\\.2$", template='{{ .Input | trimPrefix "refs/heads/release/" }}'
            ),
            True,
        ),
        (data_filter("a", "string", ".*", template="{{ .Input.nope }}"), False),
    ],
    ids=[
        "string",
        "string-values-ored",
        "string-no-match",
        "regex-unanchored",
        "regex-anchored",
        "ne-match",
        "ne-no-match",
        "number-eq",
        "number-gt-false",
        "number-ge",
        "number-lt",
        "number-ne-false",
        "number-from-string",
        "bool-false",
        "bool-mismatch",
        "bool-from-string",
        "missing-path-fails",
        "null-is-empty-string",
        "array-as-json-text",
        "array-length",
        "template",
        "template-error",
    ],
)
def test_data_filter(spec: dict[str, Any], passed: bool) -> None:
    """One data filter against the payload: regex search, numeric comparators, ParseBool."""
    verdict = evaluate(make_event(PAYLOAD), dep({"data": [spec]}))
    assert passed == verdict.passed, verdict.reasons
    assert verdict.reasons[0].startswith("data[0]")


@pytest.mark.parametrize(
    ("operator", "specs", "passed"),
    [
        ("", [data_filter("a", "string", "b"), data_filter("c", "number", "1")], False),
        ("and", [data_filter("a", "string", "b"), data_filter("c", "number", "10")], True),
        ("or", [data_filter("a", "string", "x"), data_filter("c", "number", "10")], True),
        ("or", [data_filter("missing", "string", "x"), data_filter("c", "number", "10")], True),
        ("or", [data_filter("a", "string", "x"), data_filter("c", "number", "1")], False),
    ],
    ids=["default-and", "and", "or", "or-skips-missing", "or-none"],
)
def test_data_logical_operator(operator: str, specs: list[dict[str, Any]], passed: bool) -> None:
    """dataLogicalOperator combines data filters; empty means and."""
    filters: dict[str, Any] = {"data": specs}
    if operator:
        filters["dataLogicalOperator"] = operator
    assert passed == evaluate(make_event(PAYLOAD), dep(filters)).passed


@pytest.mark.parametrize(
    ("context", "passed"),
    [
        ({"type": "webhook"}, True),
        ({"type": "github"}, False),
        ({"source": "hooks", "subject": "a"}, True),
        ({"datacontenttype": "application/json"}, True),
        ({"subject": "b"}, False),
    ],
    ids=["type", "type-mismatch", "two-fields", "content-type", "subject-mismatch"],
)
def test_context_filter(context: dict[str, str], passed: bool) -> None:
    """Context filters compare each non-empty attribute exactly."""
    assert passed == evaluate(make_event(PAYLOAD), dep({"context": context})).passed


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, 14, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "when", "passed"),
    [
        ({"start": "09:00:00", "stop": "17:00:00"}, at(9), True),
        ({"start": "09:00:00", "stop": "17:00:00"}, at(17), False),
        ({"start": "09:00:00", "stop": "17:00:00"}, at(8, 59, 59), False),
        ({"start": "22:00:00", "stop": "02:00:00"}, at(23), True),
        ({"start": "22:00:00", "stop": "02:00:00"}, at(1, 59, 59), True),
        ({"start": "22:00:00", "stop": "02:00:00"}, at(12), False),
        ({"start": "09:00:00", "stop": "17:00:00", "timezone": "America/New_York"}, at(12), False),
        ({"start": "09:00:00", "stop": "17:00:00", "timezone": "America/New_York"}, at(14), True),
    ],
    ids=[
        "start-inclusive",
        "stop-exclusive",
        "before",
        "crosses-midnight-late",
        "crosses-midnight-early",
        "crosses-midnight-outside",
        "timezone-outside",
        "timezone-inside",
    ],
)
def test_time_filter(window: dict[str, str], when: datetime, passed: bool) -> None:
    """[start, stop) on the event time, UTC unless a timezone is given, crossing midnight."""
    verdict = evaluate(make_event(PAYLOAD, when=when), dep({"time": window}))
    assert passed == verdict.passed, verdict.reasons


def test_filters_logical_operator_or_needs_one_kind() -> None:
    """With filtersLogicalOperator or, one passing kind is enough (Argo's mixed-filters example)."""
    filters = {"data": [data_filter("c", "number", "20", comparator=">")], "context": {"type": "webhook"}}
    assert not evaluate(make_event(PAYLOAD), dep(filters)).passed
    assert evaluate(make_event(PAYLOAD), dep(filters, filtersLogicalOperator="or")).passed


def test_script_filter_fails_closed() -> None:
    """Lua scripts are not run; rather than letting every event through the filter fails, saying why."""
    verdict = evaluate(make_event(PAYLOAD), dep({"script": "return true"}))
    assert not verdict.passed
    assert any("not supported" in r for r in verdict.reasons)


def test_transform_is_reported() -> None:
    """A transform cannot be applied; the verdict says the event is used as received."""
    verdict = evaluate(make_event(PAYLOAD), dep({}, transform={"jq": ".a"}))
    assert verdict.passed
    assert "transform" in verdict.reasons[0]


def test_no_data_passes_data_filters() -> None:
    """An event without data passes data filters, as Argo's nil payload does."""
    assert evaluate(make_event(None), dep({"data": [data_filter("a", "string", "b")]})).passed


@pytest.mark.parametrize(
    ("git", "skip_ci", "fixture", "passed"),
    [
        ({"branches": ["main"]}, True, "github-push.json", True),
        ({"branches": ["release/**"]}, True, "github-push.json", False),
        ({"paths": ["src/**"]}, True, "github-push.json", True),
        ({"pathsIgnore": ["docs/**", "src/**"]}, True, "github-push.json", False),
        (None, True, "gitlab-push.json", False),
        (None, False, "gitlab-push.json", True),
        ({"tags": ["v1.*"]}, True, "gitea-tag-push.json", True),
    ],
    ids=["branch", "branch-miss", "paths", "all-ignored", "skip-ci", "skip-ci-off", "tag"],
)
def test_git_extension_is_anded(
    git: dict[str, Any] | None, skip_ci: bool, fixture: str, passed: bool
) -> None:
    """filters.git and skipCI gate the dependency whatever the logical operators say."""
    filters: dict[str, Any] = {"data": [data_filter("body.ref", "string", "^refs/")]}
    if git is not None:
        filters["git"] = git
    dependency = dep(filters, skipCI=skip_ci, filtersLogicalOperator="or")
    verdict = evaluate(make_event(webhook(fixture_json(fixture))), dependency)
    assert passed == verdict.passed, verdict.reasons


EXPR_CASES = [
    (
        [{"expr": 'a == "b" || c == 10', "fields": [{"name": "a", "path": "a"}, {"name": "c", "path": "c"}]}],
        "",
        True,
    ),
    ([{"expr": "e == false", "fields": [{"name": "e", "path": "d.e"}]}], "", True),
    ([{"expr": "c > 20", "fields": [{"name": "c", "path": "c"}]}], "", False),
    ([{"expr": "x == 1", "fields": [{"name": "x", "path": "missing"}]}], "", False),
    (
        [
            {"expr": "c > 20", "fields": [{"name": "c", "path": "c"}]},
            {"expr": "a == 'b'", "fields": [{"name": "a", "path": "a"}]},
        ],
        "or",
        True,
    ),
    ([{"expr": "c >", "fields": [{"name": "c", "path": "c"}]}], "", False),
]


@pytest.mark.parametrize(
    ("exprs", "operator", "passed"),
    EXPR_CASES,
    ids=["or-inside", "bool", "false", "missing-path", "or-list", "syntax"],
)
def test_expr_filter(exprs: list[dict[str, Any]], operator: str, passed: bool) -> None:
    """exprs evaluate with workflows.expressions over the named fields."""
    filters: dict[str, Any] = {"exprs": exprs}
    if operator:
        filters["exprLogicalOperator"] = operator
    verdict = evaluate(make_event(PAYLOAD), dep(filters))
    assert passed == verdict.passed, verdict.reasons
