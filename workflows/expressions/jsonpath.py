"""
JSONPath queries, as Argo's ``jsonpath(json, path)`` expression function and
``valueFrom.jsonPath`` evaluate them (github.com/evilmonkeyinc/jsonpath semantics).

Supports ``$``, ``.key``, ``['key']``, ``[0]`` (negative from the end), ``[*]``/``.*``,
``[start:end:step]``, unions ``[0,1]``/``['a','b']``, recursive ``..key``, ``.length``, and
filters ``[?(@.age > 40 && @.name =~ /re/)]``. A definite path returns the value itself; a
path through a wildcard, slice, union, filter or ``..`` returns a list (Argo's examples show
``[43]`` for a filter). Called by :mod:`workflows.expressions.functions`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from workflows.expressions.failures import EvalError
from workflows.expressions.values import equal, is_list, is_number

_NAME: Final = re.compile(r"[A-Za-z0-9_\-$]+")
_FILTER_TOKEN: Final = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<str>'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\")"
    r"|(?P<re>/(?:\\.|[^/\\])*/)|(?P<op>==|!=|<=|>=|=~|&&|\|\||[<>!+\-*/%()])|(?P<word>[A-Za-z_]\w*)"
    r"|(?P<path>[@$]))"
)


@dataclass(frozen=True, slots=True)
class _Step:
    kind: str  # key | index | wild | slice | union | recursive | filter
    arg: Any = None


class _PathParser:
    """Reads path steps from ``text`` starting at ``pos``; stops where a path cannot continue."""

    def __init__(self, text: str, pos: int) -> None:
        self.text, self.pos = text, pos

    def steps(self) -> list[_Step]:
        out: list[_Step] = []
        text = self.text
        while self.pos < len(text):
            if text.startswith("..", self.pos):
                self.pos += 2
                child = self.bracket() if text.startswith("[", self.pos) else self.dotted()
                out.append(_Step("recursive", child))
            elif text[self.pos] == ".":
                self.pos += 1
                out.append(self.dotted())
            elif text[self.pos] == "[":
                out.append(self.bracket())
            else:
                break
        return out

    def dotted(self) -> _Step:
        if self.text.startswith("*", self.pos):
            self.pos += 1
            return _Step("wild")
        m = _NAME.match(self.text, self.pos)
        if not m:
            raise EvalError(f"invalid JSONPath at position {self.pos}: expected a key")
        self.pos = m.end()
        return _Step("key", m.group())

    def bracket(self) -> _Step:
        end = _matching_bracket(self.text, self.pos)
        body = self.text[self.pos + 1 : end].strip()
        self.pos = end + 1
        if body == "*":
            return _Step("wild")
        if body.startswith("?(") and body.endswith(")"):
            return _Step("filter", _FilterParser(body[2:-1]).parse())
        parts = [p.strip() for p in _split_top(body, ",")]
        keys = [_literal_key(p) for p in parts]
        if len(keys) > 1:
            return _Step("union", keys)
        if isinstance(keys[0], tuple):
            return _Step("slice", keys[0])
        return _Step("index" if isinstance(keys[0], int) else "key", keys[0])


def _matching_bracket(text: str, start: int) -> int:
    depth, quote, i = 0, "", start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise EvalError("invalid JSONPath: unclosed '['")


def _split_top(body: str, sep: str) -> list[str]:
    parts, quote, start = [], "", 0
    for i, ch in enumerate(body):
        if quote:
            quote = "" if ch == quote and body[i - 1] != "\\" else quote
        elif ch in "'\"":
            quote = ch
        elif ch == sep:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return parts


def _literal_key(part: str) -> Any:
    if len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"":
        return re.sub(r"\\(.)", r"\1", part[1:-1])
    if ":" in part:
        bounds = [b.strip() for b in part.split(":")]
        if len(bounds) > 3:
            raise EvalError(f"invalid JSONPath range [{part}]")
        try:
            values = tuple(int(b) if b else None for b in bounds)
        except ValueError:
            raise EvalError(f"invalid JSONPath range [{part}]") from None
        return values + (None,) * (3 - len(values))
    try:
        return int(part)
    except ValueError:
        raise EvalError(f"invalid JSONPath subscript [{part}]") from None


class _FilterParser:
    """Recursive descent over a filter expression: || && ! comparisons + - * / % and operands."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def parse(self) -> Any:
        node = self.or_()
        if self.text[self.pos :].strip():
            raise EvalError(f"invalid JSONPath filter {self.text!r}")
        return node

    def peek(self) -> tuple[str, str] | None:
        m = _FILTER_TOKEN.match(self.text, self.pos)
        if not m or m.lastgroup is None:
            return None
        return m.lastgroup, m.group(m.lastgroup)

    def take(self) -> tuple[str, str]:
        m = _FILTER_TOKEN.match(self.text, self.pos)
        if not m or m.lastgroup is None:
            raise EvalError(f"invalid JSONPath filter {self.text!r}")
        self.pos = m.end()
        return m.lastgroup, m.group(m.lastgroup)

    def binary(self, ops: tuple[str, ...], nxt: Any) -> Any:
        left = nxt()
        while (tok := self.peek()) and tok[0] == "op" and tok[1] in ops:
            self.take()
            left = ("bin", tok[1], left, nxt())
        return left

    def or_(self) -> Any:
        return self.binary(("||",), self.and_)

    def and_(self) -> Any:
        return self.binary(("&&",), self.cmp)

    def cmp(self) -> Any:
        return self.binary(("==", "!=", "<", "<=", ">", ">=", "=~"), self.add)

    def add(self) -> Any:
        return self.binary(("+", "-"), self.mul)

    def mul(self) -> Any:
        return self.binary(("*", "/", "%"), self.unary)

    def unary(self) -> Any:
        tok = self.peek()
        if tok == ("op", "!"):
            self.take()
            return ("not", self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "num":
            return ("lit", float(text))
        if kind == "str":
            return ("lit", re.sub(r"\\(.)", r"\1", text[1:-1]))
        if kind == "re":
            return ("lit", text[1:-1])
        if kind == "word":
            if text in ("true", "false"):
                return ("lit", text == "true")
            if text in ("null", "nil"):
                return ("lit", None)
            raise EvalError(f"invalid JSONPath filter token {text!r}")
        if kind == "path":
            parser = _PathParser(self.text, self.pos)
            steps = parser.steps()
            self.pos = parser.pos
            return ("path", text, steps)
        if text == "(":
            node = self.or_()
            if self.take() != ("op", ")"):
                raise EvalError(f"invalid JSONPath filter {self.text!r}: missing ')'")
            return node
        raise EvalError(f"invalid JSONPath filter token {text!r}")


def _truthy(value: Any) -> bool:
    return value is not None and value is not False and value != ""


def _eval_filter(node: Any, current: Any, root: Any) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "path":
        try:
            return _query(node[2], root if node[1] == "$" else current, root)
        except EvalError:
            return None
    if kind == "not":
        return not _truthy(_eval_filter(node[1], current, root))
    _, op, left_node, right_node = node
    left = _eval_filter(left_node, current, root)
    if op == "&&":
        return _truthy(left) and _truthy(_eval_filter(right_node, current, root))
    if op == "||":
        return _truthy(left) or _truthy(_eval_filter(right_node, current, root))
    right = _eval_filter(right_node, current, root)
    if op == "==":
        return equal(left, right)
    if op == "!=":
        return not equal(left, right)
    if op == "=~":
        return isinstance(left, str) and isinstance(right, str) and re.search(right, left) is not None
    comparable = (is_number(left) and is_number(right)) or (isinstance(left, str) and isinstance(right, str))
    if op in ("<", "<=", ">", ">="):
        if not comparable:
            return False
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    if not (is_number(left) and is_number(right)):
        return left + right if op == "+" and isinstance(left, str) and isinstance(right, str) else None
    if op in ("/", "%") and right == 0:
        return None
    return {"+": lambda: left + right, "-": lambda: left - right, "*": lambda: left * right,
            "/": lambda: left / right, "%": lambda: left % right}[op]()


def _children(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [value[k] for k in sorted(value)]
    return list(value) if is_list(value) else []


def _descendants(value: Any) -> list[Any]:
    out = [value]
    for child in _children(value):
        out.extend(_descendants(child))
    return out


def _select(step: _Step, value: Any, root: Any) -> list[Any]:
    kind, arg = step.kind, step.arg
    if kind == "key":
        if isinstance(value, Mapping) and arg in value:
            return [value[arg]]
        if arg == "length" and (is_list(value) or isinstance(value, Mapping | str)):
            return [float(len(value))]
        raise EvalError(f"key '{arg}' not found")
    if kind == "index":
        if not is_list(value):
            raise EvalError(f"index [{arg}] used on a non-array value")
        index = arg + len(value) if arg < 0 else arg
        if not 0 <= index < len(value):
            raise EvalError(f"index [{arg}] out of range")
        return [value[index]]
    if kind == "wild":
        return _children(value)
    if kind == "slice":
        if not is_list(value):
            raise EvalError("range used on a non-array value")
        start, end, stride = arg
        items = list(value)[slice(start, end)]
        if stride is not None and stride < 0:
            return items[::-1][:: -stride]
        return items[:: stride or 1]
    if kind == "union":
        out: list[Any] = []
        for key in arg:
            sub = _Step("index" if isinstance(key, int) else "key", key)
            out.extend(_select(sub, value, root))
        return out
    if kind == "filter":
        return [item for item in _children(value) if _truthy(_eval_filter(arg, item, root))]
    # recursive: apply the child step to every node below, skipping nodes it does not fit
    out = []
    for node in _descendants(value):
        try:
            out.extend(_select(arg, node, root) if arg.kind != "key" or isinstance(node, Mapping) else [])
        except EvalError:
            continue
    return out


def _query(steps: list[_Step], data: Any, root: Any) -> Any:
    values, collection = [data], False
    for step in steps:
        collection = collection or step.kind not in ("key", "index")
        selected: list[Any] = []
        for value in values:
            try:
                selected.extend(_select(step, value, root))
            except EvalError:
                if not collection:
                    raise
        values = selected
    return values if collection else values[0]


def query(path: str, data: Any) -> Any:
    """Run JSONPath ``path`` over decoded JSON ``data``; bad paths and missing keys raise EvalError."""
    text = path.strip()
    if not text.startswith("$"):
        raise EvalError(f"invalid JSONPath {path!r}: must start with '$'")
    parser = _PathParser(text, 1)
    steps = parser.steps()
    if parser.pos != len(text):
        raise EvalError(f"invalid JSONPath {path!r} at position {parser.pos}")
    return _query(steps, data, data)
