"""
Dependency filters: does this event satisfy this dependency? With reasons for the audit trail.

Pure; called by :mod:`sensors.matching` for every event whose source and name match a
dependency. Follows Argo Events ``pkg/sensors/dependencies/filter.go``:

- ``data``: the value at a gjson ``path`` (missing = fails) compared with the ``value`` list
  (OR-ed): strings are regexes searched unanchored, numbers compared with ``comparator``,
  bools parsed like Go's strconv.ParseBool; an optional ``template`` is rendered over the value
  first (``{{ .Input }}``). ``dataLogicalOperator`` combines the filters.
- ``exprs``: each ``expr`` is evaluated with :func:`workflows.expressions.evaluate` over its
  ``fields`` (an expr without fields is skipped, as in Argo). Argo uses govaluate; we use the
  expr language, which agrees on comparisons and ``&&``/``||`` but not on ``=~``.
- ``context``: exact match of each non-empty attribute.
- ``time``: ``[start, stop)`` on the event time's clock in ``timezone`` (UTC by default); a
  window whose stop is before its start crosses midnight.
- ``script`` (Lua) is not supported: it fails closed, with a reason, rather than letting every
  event through.
- ``filtersLogicalOperator`` combines the kinds present; with ``or`` one passing kind suffices.

Then our extensions (always AND-ed, whatever the operators): ``filters.git`` and ``skipCI``
from :mod:`sensors.gitfilters`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

from sensors import gitfilters, paths
from sensors.events import Event, EventContext
from sensors.filterspec import (
    Comparator,
    ContextFilter,
    DataFilter,
    ExprFilter,
    JSONType,
    LogicalOperator,
    TimeFilter,
)
from sensors.gotemplate import TemplateError, render
from sensors.model import EventDependency
from workflows.errors import WorkflowError
from workflows.expressions import evaluate as evaluate_expr


@dataclass(frozen=True, slots=True, kw_only=True)
class FilterVerdict:
    """Whether an event passed a dependency's filters, and why (one line per filter checked)."""

    passed: bool
    reasons: tuple[str, ...] = ()


_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def evaluate(event: Event, dependency: EventDependency) -> FilterVerdict:
    """Apply all of ``dependency``'s filters to ``event``."""
    reasons: list[str] = []
    if dependency.transform is not None:
        reasons.append("transform (jq/script) is not supported; the event is used as received")
    spec = dependency.filters
    passed = True
    if spec is not None:
        kinds: list[tuple[str, Callable[[], tuple[bool, list[str]]]]] = []
        if spec.exprs is not None:
            kinds.append(("exprs", lambda: _exprs(spec.exprs or (), spec.expr_logical_operator, event.data)))
        if spec.data is not None:
            kinds.append(("data", lambda: _data(spec.data or (), spec.data_logical_operator, event.data)))
        if spec.context is not None:
            context = spec.context
            kinds.append(("context", lambda: _context(context, event.context)))
        if spec.time is not None:
            window = spec.time
            kinds.append(("time", lambda: _time(window, event.context)))
        if spec.script:
            kinds.append(("script", lambda: (False, ["script: Lua script filters are not supported"])))
        results = []
        for _, run in kinds:
            ok, why = run()
            results.append(ok)
            reasons.extend(why)
        if results:
            passed = (
                any(results) if dependency.filters_logical_operator is LogicalOperator.OR else all(results)
            )
    git_ok, git_reasons = gitfilters.check(
        spec.git if spec is not None else None, skip_ci=dependency.skip_ci, data=event.data
    )
    reasons.extend(git_reasons)
    return FilterVerdict(passed=passed and git_ok, reasons=tuple(reasons))


def _combine(results: list[bool], operator: LogicalOperator) -> bool:
    return any(results) if operator is LogicalOperator.OR else all(results)


def _data(filters: tuple[DataFilter, ...], operator: LogicalOperator, data: Any) -> tuple[bool, list[str]]:
    if not filters or data is None:
        return True, []
    results: list[bool] = []
    reasons: list[str] = []
    for i, spec in enumerate(filters):
        ok, why = _data_one(spec, data)
        results.append(ok)
        reasons.append(f"data[{i}] {spec.path!r}: {why}")
        if ok and operator is LogicalOperator.OR:
            break
        if not ok and operator is LogicalOperator.AND:
            break
    return _combine(results, operator), reasons


def _data_one(spec: DataFilter, data: Any) -> tuple[bool, str]:
    value = paths.get(data, spec.path)
    if value is paths.MISSING:
        return False, "path does not exist"
    if spec.template:
        try:
            out = render(spec.template, {"Input": paths.as_string(value)})
        except TemplateError as exc:
            return False, f"template failed: {exc}"
        if out in ("", "<no value>"):
            return False, "template evaluated to empty string or no value"
        value = out
    shown = _short(paths.as_string(value))
    for expected in spec.values:
        if spec.type is JSONType.BOOL:
            if expected not in _TRUE + _FALSE:
                return False, f"{expected!r} is not a boolean"
            hit = (expected in _TRUE) == paths.truthy(value)
        elif spec.type is JSONType.NUMBER:
            hit = _compare_number(paths.as_float(value), spec.comparator, float(expected))
        else:
            found = re.search(expected, paths.as_string(value)) is not None
            hit = found if spec.comparator is Comparator.EQ else not found
        if hit:
            return True, f"{shown} {spec.comparator.value} {expected!r}"
    return False, f"{shown} does not satisfy {spec.comparator.value} {list(spec.values)}"


def _compare_number(actual: float, comparator: Comparator, expected: float) -> bool:
    match comparator:
        case Comparator.GE:
            return actual >= expected
        case Comparator.GT:
            return actual > expected
        case Comparator.LT:
            return actual < expected
        case Comparator.LE:
            return actual <= expected
        case Comparator.NE:
            return actual != expected
    return actual == expected


def _exprs(filters: tuple[ExprFilter, ...], operator: LogicalOperator, data: Any) -> tuple[bool, list[str]]:
    if not filters or data is None:
        return True, []
    results: list[bool] = []
    reasons: list[str] = []
    for i, spec in enumerate(filters):
        env: dict[str, Any] = {}
        missing = next((f.path for f in spec.fields if paths.get(data, f.path) is paths.MISSING), None)
        if missing is not None:
            results.append(False)
            reasons.append(f"exprs[{i}]: path {missing!r} does not exist")
        elif not spec.fields:
            reasons.append(f"exprs[{i}]: no fields; skipped")
            continue
        else:
            env = {f.name: paths.get(data, f.path) for f in spec.fields}
            ok, why = _run_expr(spec.expr, env)
            results.append(ok)
            reasons.append(f"exprs[{i}] {spec.expr!r}: {why}")
        if results[-1] == (operator is LogicalOperator.OR):
            break  # decided: first pass under `or`, first failure under `and`
    if not results:
        return operator is LogicalOperator.AND, reasons
    return _combine(results, operator), reasons


def _run_expr(source: str, env: Mapping[str, Any]) -> tuple[bool, str]:
    try:
        result = evaluate_expr(source, env)
    except WorkflowError as exc:  # ExpressionError: the user's expression fails the filter, with its message
        return False, f"error: {exc}"
    return result is True, f"{_short(paths.to_json(result))}"


def _context(spec: ContextFilter, actual: EventContext) -> tuple[bool, list[str]]:
    reasons = []
    passed = True
    for name in ("type", "subject", "source", "datacontenttype"):
        expected = getattr(spec, name)
        if expected:
            ok = expected == getattr(actual, name)
            passed = passed and ok
            reasons.append(f"context.{name}: {getattr(actual, name)!r} {'==' if ok else '!='} {expected!r}")
    return passed, reasons


def _time(spec: TimeFilter, context: EventContext) -> tuple[bool, list[str]]:
    zone = ZoneInfo(spec.timezone) if spec.timezone else UTC
    clock = context.time.astimezone(zone).time().replace(tzinfo=None, microsecond=0)
    within = spec.start <= clock < spec.stop
    across_midnight = clock >= spec.start or clock < spec.stop
    ok = within if spec.start < spec.stop else across_midnight
    where = "inside" if ok else "outside"
    return ok, [f"time: {clock.isoformat()} {spec.timezone or 'UTC'} is {where} [{spec.start}, {spec.stop})"]


def _short(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
