"""
gjson-style reads and sjson-style writes over decoded JSON values.

Argo Events addresses event payloads with tidwall/gjson paths (``dataKey``, filter ``path``,
expr ``fields[].path``) and writes trigger parameters with tidwall/sjson paths (``dest``).
Called by :mod:`sensors.filters`, :mod:`sensors.params` and :mod:`sensors.gitfilters`.

Supported read syntax (gjson): keys separated by ``.``; ``\\`` escapes the next character
(``fav\\.movie``); ``*`` and ``?`` wildcards in a key match the first key, in document order,
that fits; a number on an array is an index; ``#`` on an array is its length; ``#.rest`` maps
``rest`` over the elements (skipping elements where it is missing); ``#(query)`` picks the
first element matching and ``#(query)#`` all of them, with ``== = != < <= > >= % !%`` (``%`` is a
``*``/``?`` pattern match) and a key path or none (the element itself). Modifiers (``@reverse``),
pipes (``|``) and multipaths (``{a,b}``) are not supported: they are read as plain keys.

Supported write syntax (sjson): keys separated by ``.``; ``\\`` escapes; a number on an array
sets that index (padding with ``null``), ``-1`` appends; ``:`` before a number forces an object
key (``users.:2313``); missing containers are created, a list when the next key is a number.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any, Final


class _Missing:
    """The value at a path that does not exist (distinct from JSON ``null``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()

_QUERY_OPS: Final = ("==", "!=", "<=", ">=", "!%", "=", "<", ">", "%")


def split_path(path: str) -> list[str]:
    """Split a gjson path on unescaped dots, keeping ``#(...)`` queries (which may hold dots) whole."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    i = 0
    while i < len(path):
        ch = path[i]
        if ch == "\\" and i + 1 < len(path):
            current.append(path[i : i + 2])  # kept escaped; unescaped when matching
            i += 2
            continue
        if quoted:
            quoted = ch != '"'
        elif ch == '"' and depth:
            quoted = True
        elif ch == "(" and (depth > 0 or current == ["#"]):
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif ch == "." and depth == 0:
            parts.append("".join(current))
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(part: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(part):
        if part[i] == "\\" and i + 1 < len(part):
            out.append(part[i + 1])
            i += 2
        else:
            out.append(part[i])
            i += 1
    return "".join(out)


def _wildcard_pattern(part: str) -> str | None:
    """An fnmatch pattern if ``part`` has unescaped ``*``/``?``; escaped ones become literals."""
    out: list[str] = []
    wild = False
    i = 0
    while i < len(part):
        ch = part[i]
        if ch == "\\" and i + 1 < len(part):
            out.append(_literal(part[i + 1]))
            i += 2
            continue
        if ch in "*?":
            wild = True
            out.append(ch)
        else:
            out.append(_literal(ch))
        i += 1
    return "".join(out) if wild else None


def _literal(ch: str) -> str:
    return f"[{ch}]" if ch in "*?[]" else ch


def get(data: Any, path: str) -> Any:
    """The value at a gjson ``path`` in ``data``, or :data:`MISSING`."""
    if path == "":
        return MISSING
    return _get(data, split_path(path))


def _get(value: Any, parts: list[str]) -> Any:
    if not parts:
        return value
    head, rest = parts[0], parts[1:]
    if isinstance(value, list):
        if head == "#":
            if not rest:
                return len(value)
            mapped = [_get(item, rest) for item in value]
            return [m for m in mapped if m is not MISSING]
        if head.startswith("#(") and (head.endswith(")") or head.endswith(")#")):
            all_matches = head.endswith(")#")
            query = head[2 : -2 if all_matches else -1]
            matches = [item for item in value if _query_matches(item, query)]
            if all_matches:
                mapped = [_get(item, rest) for item in matches]
                return [m for m in mapped if m is not MISSING]
            return _get(matches[0], rest) if matches else MISSING
        key = _unescape(head)
        if key.isdigit():
            index = int(key)
            return _get(value[index], rest) if index < len(value) else MISSING
        return MISSING
    if isinstance(value, dict):
        pattern = _wildcard_pattern(head)
        if pattern is None:
            key = _unescape(head)
            return _get(value[key], rest) if key in value else MISSING
        for key in value:
            if fnmatch.fnmatchcase(key, pattern):
                return _get(value[key], rest)
        return MISSING
    return MISSING


def _query_matches(item: Any, query: str) -> bool:
    """gjson's ``#(key op value)`` on one element; no key means the element, no op means "exists"."""
    key, op, literal = _split_query(query)
    target = item if key == "" else get(item, key)
    if target is MISSING:
        return False
    if op == "":
        return True  # ``#(key)`` only asks that the key exists
    try:
        expected = json.loads(literal)
    except ValueError:
        expected = literal
    if op in ("%", "!%"):
        hit = isinstance(target, str) and fnmatch.fnmatchcase(target, str(expected))
        return hit if op == "%" else not hit
    if isinstance(expected, bool) or expected is None:
        left: Any = target
    elif isinstance(expected, int | float):
        if isinstance(target, bool) or not isinstance(target, int | float):
            return False
        left = target
    else:
        if not isinstance(target, str):
            return False
        left = target
    return _compare(left, op, expected)


def _compare(left: Any, op: str, right: Any) -> bool:
    try:
        match op:
            case "==" | "=":
                return bool(left == right)
            case "!=":
                return bool(left != right)
            case "<":
                return bool(left < right)
            case "<=":
                return bool(left <= right)
            case ">":
                return bool(left > right)
            case ">=":
                return bool(left >= right)
    except TypeError:
        return False
    return False


def _split_query(query: str) -> tuple[str, str, str]:
    depth = 0
    i = 0
    while i < len(query):
        ch = query[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            for op in _QUERY_OPS:
                if query.startswith(op, i):
                    return query[:i].strip(), op, query[i + len(op) :].strip()
        i += 1
    return query.strip(), "", ""


def truthy(value: Any) -> bool:
    """gjson ``Result.Bool()``: true, non-zero numbers, and strings strconv.ParseBool accepts as true."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value in ("1", "t", "T", "TRUE", "true", "True")
    return False


def as_float(value: Any) -> float:
    """gjson ``Result.Float()``: numbers as is, true is 1, numeric strings parsed, anything else 0."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


def as_string(value: Any) -> str:
    """gjson ``Result.String()``: strings bare, objects/arrays as compact JSON, null and missing empty."""
    if value is MISSING or value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return to_json(value)


def to_json(value: Any) -> str:
    """Compact JSON text as Go's encoding/json writes it (UTF-8 kept, no spaces)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def is_block(value: Any) -> bool:
    """Whether gjson types this value ``JSON`` (an object or array) rather than a scalar."""
    return isinstance(value, dict | list)


def _set_parts(path: str) -> Iterator[tuple[str, bool]]:
    """(key, forced-object-key) pairs of an sjson path."""
    for raw in split_path(path):
        forced = raw.startswith(":")
        yield _unescape(raw[1:] if forced else raw), forced


def set(obj: Any, path: str, value: Any) -> Any:  # shadows the builtin: mirrors sjson.Set
    """Set ``value`` at the sjson ``path`` in ``obj`` (a dict or list), in place; returns ``obj``."""
    parts = list(_set_parts(path))
    if not parts or parts == [("", False)]:
        raise ValueError(f"empty path {path!r}")
    container = obj
    for index, (key, forced) in enumerate(parts):
        last = index == len(parts) - 1
        if last:
            _assign(container, key, forced, value)
            return obj
        next_key, next_forced = parts[index + 1]
        child = _child(container, key, forced)
        if not isinstance(child, dict | list):
            child = [] if _is_index(next_key, next_forced) else {}
            container = _assign(container, key, forced, child)
        container = child
    return obj


def _is_index(key: str, forced: bool) -> bool:
    return not forced and (key.isdigit() or key == "-1")


def _child(container: Any, key: str, forced: bool) -> Any:
    if isinstance(container, list) and _is_index(key, forced) and key != "-1":
        index = int(key)
        return container[index] if index < len(container) else MISSING
    if isinstance(container, dict):
        return container.get(key, MISSING)
    return MISSING


def _assign(container: Any, key: str, forced: bool, value: Any) -> Any:
    if isinstance(container, list):
        if not _is_index(key, forced):
            raise ValueError(f"cannot set key {key!r} on an array")
        if key == "-1":
            container.append(value)
        else:
            index = int(key)
            container.extend([None] * (index + 1 - len(container)))
            container[index] = value
        return container
    if isinstance(container, dict):
        container[key] = value
        return container
    raise ValueError(f"cannot set {key!r} inside a {type(container).__name__}")
