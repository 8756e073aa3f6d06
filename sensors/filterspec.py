"""
Dependency filter specs (Argo Events ``EventDependencyFilter``) and their parser.

Split out of :mod:`sensors.model` to keep both modules readable; :mod:`sensors.model` calls
:func:`parse_filters` for each dependency and reuses the field readers at the bottom, which
raise :class:`~workflows.errors.InvalidSpec` naming the field path. Evaluated by
:mod:`sensors.filters` (Argo filters) and :mod:`sensors.gitfilters` (our ``git`` extension).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workflows.errors import InvalidSpec


class LogicalOperator(enum.Enum):
    """How several filters combine; Argo's empty value means ``and``."""

    AND = "and"
    OR = "or"


class JSONType(enum.Enum):
    """The type a data filter reads its value as."""

    BOOL = "bool"
    NUMBER = "number"
    STRING = "string"


class Comparator(enum.Enum):
    """Data filter comparator; Argo's empty value means ``=``."""

    GE = ">="
    GT = ">"
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="


@dataclass(frozen=True, slots=True, kw_only=True)
class DataFilter:
    """``filters.data[i]``: the value at ``path`` against ``values`` (OR-ed)."""

    path: str
    type: JSONType
    values: tuple[str, ...]
    comparator: Comparator = Comparator.EQ
    template: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PayloadField:
    """``exprs[i].fields[j]``: bind the value at ``path`` to ``name`` for the expression."""

    name: str
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ExprFilter:
    """``filters.exprs[i]``: a boolean expression over named payload fields."""

    expr: str
    fields: tuple[PayloadField, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextFilter:
    """``filters.context``: exact matches on CloudEvent attributes; empty means not enforced."""

    type: str = ""
    subject: str = ""
    source: str = ""
    datacontenttype: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeFilter:
    """``filters.time``: a daily window ``[start, stop)``, crossing midnight when stop < start."""

    start: time
    stop: time
    timezone: str = ""  # empty = UTC, as in Argo Events


@dataclass(frozen=True, slots=True, kw_only=True)
class GitFilter:
    """gittrigger extension ``filters.git``: GitHub-Actions-like ref and path globs."""

    branches: tuple[str, ...] | None = None
    branches_ignore: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    tags_ignore: tuple[str, ...] | None = None
    paths: tuple[str, ...] | None = None
    paths_ignore: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventDependencyFilter:
    """All filters of one dependency; each kind present takes part, absent kinds are skipped."""

    data: tuple[DataFilter, ...] | None = None
    exprs: tuple[ExprFilter, ...] | None = None
    context: ContextFilter | None = None
    time: TimeFilter | None = None
    script: str = ""
    data_logical_operator: LogicalOperator = LogicalOperator.AND
    expr_logical_operator: LogicalOperator = LogicalOperator.AND
    git: GitFilter | None = None


_HMS = re.compile(r"^(\d{2}):(\d{2}):(\d{2})$")


def parse_filters(raw: Any, *, path: str) -> EventDependencyFilter:
    """``dependencies[i].filters``."""
    raw = as_mapping(raw, path=path)
    data = None
    if "data" in raw:
        data = tuple(
            _parse_data(item, path=f"{path}.data[{i}]")
            for i, item in enumerate(as_list(raw["data"], path=f"{path}.data"))
        )
    exprs = None
    if "exprs" in raw:
        exprs = tuple(
            _parse_expr(item, path=f"{path}.exprs[{i}]")
            for i, item in enumerate(as_list(raw["exprs"], path=f"{path}.exprs"))
        )
    context = None
    if raw.get("context"):
        ctx = as_mapping(raw["context"], path=f"{path}.context")
        cpath = f"{path}.context"
        context = ContextFilter(
            type=opt_str(ctx, "type", path=cpath),
            subject=opt_str(ctx, "subject", path=cpath),
            source=opt_str(ctx, "source", path=cpath),
            datacontenttype=opt_str(ctx, "datacontenttype", path=cpath),
        )
    return EventDependencyFilter(
        data=data,
        exprs=exprs,
        context=context,
        time=_parse_time(raw["time"], path=f"{path}.time") if raw.get("time") else None,
        script=opt_str(raw, "script", path=path),
        data_logical_operator=parse_operator(
            raw.get("dataLogicalOperator"), path=f"{path}.dataLogicalOperator"
        ),
        expr_logical_operator=parse_operator(
            raw.get("exprLogicalOperator"), path=f"{path}.exprLogicalOperator"
        ),
        git=_parse_git(raw["git"], path=f"{path}.git") if raw.get("git") else None,
    )


def _parse_data(raw: Any, *, path: str) -> DataFilter:
    raw = as_mapping(raw, path=path)
    try:
        json_type = JSONType(raw.get("type"))
    except ValueError:
        raise InvalidSpec(
            f"{path}.type", f"must be bool, number or string, got {raw.get('type')!r}"
        ) from None
    values = tuple(_scalar_str(v) for v in as_list(raw.get("value"), path=f"{path}.value"))
    if not values:
        raise InvalidSpec(f"{path}.value", "at least one value is required")
    for i, value in enumerate(values):
        vpath = f"{path}.value[{i}]"
        if json_type is JSONType.NUMBER:
            try:
                float(value)
            except ValueError:
                raise InvalidSpec(vpath, f"not a number: {value!r}") from None
        elif json_type is JSONType.BOOL and value.lower() not in ("1", "t", "true", "0", "f", "false"):
            raise InvalidSpec(vpath, f"not a boolean: {value!r}")
        elif json_type is JSONType.STRING:
            try:
                re.compile(value)
            except re.error as exc:
                raise InvalidSpec(vpath, f"not a regular expression: {exc}") from None
    comparator = raw.get("comparator") or "="
    try:
        parsed_comparator = Comparator(comparator)
    except ValueError:
        raise InvalidSpec(
            f"{path}.comparator", f"must be one of >= > = != < <=, got {comparator!r}"
        ) from None
    if json_type is JSONType.STRING and parsed_comparator not in (Comparator.EQ, Comparator.NE):
        raise InvalidSpec(f"{path}.comparator", "string filters compare with = or != only")
    return DataFilter(
        path=req_str(raw, "path", path=path),
        type=json_type,
        values=values,
        comparator=parsed_comparator,
        template=opt_str(raw, "template", path=path),
    )


def _parse_expr(raw: Any, *, path: str) -> ExprFilter:
    raw = as_mapping(raw, path=path)
    fields = []
    for i, item in enumerate(as_list(raw.get("fields"), path=f"{path}.fields")):
        item = as_mapping(item, path=f"{path}.fields[{i}]")
        fields.append(
            PayloadField(
                name=req_str(item, "name", path=f"{path}.fields[{i}]"),
                path=req_str(item, "path", path=f"{path}.fields[{i}]"),
            )
        )
    return ExprFilter(expr=req_str(raw, "expr", path=path), fields=tuple(fields))


def _parse_time(raw: Any, *, path: str) -> TimeFilter:
    raw = as_mapping(raw, path=path)
    parsed = []
    for key in ("start", "stop"):
        text = req_str(raw, key, path=path)
        match = _HMS.match(text)
        if not match or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3]) > 59:
            raise InvalidSpec(f"{path}.{key}", f"must be HH:MM:SS, got {text!r}")
        parsed.append(time(int(match[1]), int(match[2]), int(match[3])))
    zone = opt_str(raw, "timezone", path=path)
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidSpec(f"{path}.timezone", f"unknown time zone {zone!r}") from None
    return TimeFilter(start=parsed[0], stop=parsed[1], timezone=zone)


def _parse_git(raw: Any, *, path: str) -> GitFilter:
    raw = as_mapping(raw, path=path)
    known = {"branches", "branchesIgnore", "tags", "tagsIgnore", "paths", "pathsIgnore"}
    if unknown := sorted(set(raw) - known):
        raise InvalidSpec(f"{path}.{unknown[0]}", f"unknown git filter field; known: {sorted(known)}")

    def globs(key: str) -> tuple[str, ...] | None:
        if key not in raw:
            return None
        items = as_list(raw[key], path=f"{path}.{key}")
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item:
                raise InvalidSpec(f"{path}.{key}[{i}]", f"must be a non-empty glob string, got {item!r}")
        return tuple(items)

    for a, b in (("branches", "branchesIgnore"), ("tags", "tagsIgnore"), ("paths", "pathsIgnore")):
        if a in raw and b in raw:
            raise InvalidSpec(f"{path}.{b}", f"use either {a} (with !negations) or {b}, not both")
    return GitFilter(
        branches=globs("branches"),
        branches_ignore=globs("branchesIgnore"),
        tags=globs("tags"),
        tags_ignore=globs("tagsIgnore"),
        paths=globs("paths"),
        paths_ignore=globs("pathsIgnore"),
    )


def parse_operator(value: Any, *, path: str) -> LogicalOperator:
    """``and``/``or``; missing or empty is ``and``."""
    if value in (None, ""):
        return LogicalOperator.AND
    try:
        return LogicalOperator(value)
    except ValueError:
        raise InvalidSpec(path, f"must be and or or, got {value!r}") from None


# Field readers shared with sensors.model.


def as_mapping(value: Any, *, path: str) -> Mapping[str, Any]:
    """``value`` as a mapping (``None`` is empty)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSpec(path, f"must be a mapping, got {type(value).__name__}")
    return value


def as_list(value: Any, *, path: str) -> list[Any]:
    """``value`` as a list (``None`` is empty)."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidSpec(path, f"must be a list, got {type(value).__name__}")
    return list(value)


def req_str(raw: Mapping[str, Any], key: str, *, path: str) -> str:
    """A required non-empty string field."""
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidSpec(
            f"{path}.{key}" if path else key,
            "required string is missing" if value is None else f"must be a non-empty string, got {value!r}",
        )
    return value


def opt_str(raw: Mapping[str, Any], key: str, *, path: str) -> str:
    """An optional string field; missing is empty."""
    value = raw.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidSpec(f"{path}.{key}" if path else key, f"must be a string, got {value!r}")
    return value


def _scalar_str(value: Any) -> str:
    # YAML turns `value: [20]` and `[true]` into numbers/bools; Argo's []string would reject
    # them, we accept them as their text since the meaning is unambiguous.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
