"""
Evaluation of expr-lang (antonmedv/expr) expressions, as Argo uses them.

Entry points for ``{{= }}`` tags (:mod:`workflows.templating`), ``when`` expressions written
in expr, ``valueFrom.expression``, ``retryStrategy.expression``, hook expressions and
``labelsFrom``. The environment is a plain mapping: missing map keys read as nil, fetching
from nil is an error unless guarded by ``?.``, and ``??`` replaces nil. Never uses Python
``eval``; every failure surfaces as :class:`workflows.errors.ExpressionError`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from workflows.errors import ExpressionError
from workflows.expressions import exprbuiltins
from workflows.expressions.exprparse import (
    Array,
    Binary,
    Call,
    Chain,
    Closure,
    Ident,
    Lit,
    MapLit,
    Member,
    Node,
    Pointer,
    Slice,
    Ternary,
    Unary,
    parse,
)
from workflows.expressions.failures import EvalError
from workflows.expressions.goformat import go_string, type_name
from workflows.expressions.values import equal, fetch, is_list, is_number, slice_of

_MAX_DEPTH = 200  # recursion guard: deeply nested input must fail cleanly, not blow the stack


class _NilChain(Exception):
    """Raised by ``?.`` on nil; caught at the chain's root, which then yields nil."""


@functools.lru_cache(maxsize=2048)
def compile_expression(source: str) -> Node:
    """Parse once and cache: the same tag text is evaluated for every node of every run."""
    return parse(source)


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern.replace(r"\z", r"\Z"))
    except re.error as exc:
        raise EvalError(f"error parsing regexp: {exc}") from None


def _arith(op: str, a: Any, b: Any) -> Any:
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if not (is_number(a) and is_number(b)):
        raise EvalError(f"invalid operation: {op} (mismatched types {type_name(a)} and {type_name(b)})")
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":  # expr's / is always float division, with Go's IEEE results for zero
        if b == 0:
            return math.nan if a == 0 else math.copysign(math.inf, a) * math.copysign(1, b)
        return float(a) / float(b)
    if op == "%":
        if not (isinstance(a, int) and isinstance(b, int)):
            raise EvalError(f"invalid operation: % (mismatched types {type_name(a)} and {type_name(b)})")
        if b == 0:
            raise EvalError("integer divide by zero")
        return int(math.fmod(a, b))  # Go truncates toward zero
    try:  # ** and ^
        return float(a) ** float(b)
    except (OverflowError, ZeroDivisionError):
        return math.inf
    except ValueError:
        return math.nan


def _compare(op: str, a: Any, b: Any) -> bool:
    if not ((is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
        raise EvalError(f"invalid operation: {op} (mismatched types {type_name(a)} and {type_name(b)})")
    if op == "<":
        return bool(a < b)
    if op == ">":
        return bool(a > b)
    if op == "<=":
        return bool(a <= b)
    return bool(a >= b)


def _strings(op: str, a: Any, b: Any) -> tuple[str, str]:
    if not (isinstance(a, str) and isinstance(b, str)):
        raise EvalError(f"invalid operation: {op} (mismatched types {type_name(a)} and {type_name(b)})")
    return a, b


def _bool(op: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise EvalError(f"invalid operation: {op} on {type_name(value)} (expected bool)")
    return value


class _Evaluator:
    def __init__(self, env: Mapping[str, Any]) -> None:
        self.env = env
        self.scopes: list[dict[str, Any]] = []  # closure frames: {"": item, "index": i, "acc": acc}
        self.depth = 0

    def eval(self, node: Node) -> Any:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise EvalError("expression nested too deeply")
        try:
            return self._eval(node)
        finally:
            self.depth -= 1

    def _eval(self, node: Node) -> Any:
        if isinstance(node, Lit):
            return node.value
        if isinstance(node, Ident):
            if node.name in self.env:
                return self.env[node.name]
            raise EvalError(f"unknown name {node.name}")
        if isinstance(node, Member):
            obj = self.eval(node.obj)
            if obj is None and node.optional:
                raise _NilChain
            if obj is None:
                raise EvalError(f"cannot fetch {go_string(self.eval(node.prop))} from <nil>")
            return fetch(obj, self.eval(node.prop))
        if isinstance(node, Chain):
            try:
                return self.eval(node.node)
            except _NilChain:
                return None
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Ternary):
            return self.eval(node.then) if _bool("?:", self.eval(node.cond)) else self.eval(node.other)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Array):
            return [self.eval(item) for item in node.items]
        if isinstance(node, MapLit):
            return {self._key(k): self.eval(v) for k, v in node.pairs}
        if isinstance(node, Slice):
            lo = None if node.lo is None else self.eval(node.lo)
            hi = None if node.hi is None else self.eval(node.hi)
            return slice_of(self.eval(node.obj), lo, hi)
        if isinstance(node, Pointer):
            if not self.scopes or node.name not in self.scopes[-1]:
                raise EvalError(f"unknown pointer #{node.name}")
            return self.scopes[-1][node.name]
        raise EvalError(f"cannot evaluate {type(node).__name__}")

    def _key(self, node: Node) -> str:
        key = self.eval(node)
        return key if isinstance(key, str) else go_string(key)

    def unary(self, node: Unary) -> Any:
        value = self.eval(node.operand)
        if node.op in ("not", "!"):
            return not _bool(node.op, value)
        if not is_number(value):
            raise EvalError(f"invalid operation: {node.op} on {type_name(value)}")
        return -value if node.op == "-" else value

    def binary(self, node: Binary) -> Any:
        op = node.op
        if op in ("&&", "and"):
            return _bool(op, self.eval(node.left)) and _bool(op, self.eval(node.right))
        if op in ("||", "or"):
            return _bool(op, self.eval(node.left)) or _bool(op, self.eval(node.right))
        if op == "??":
            left = self.eval(node.left)
            return self.eval(node.right) if left is None else left
        a, b = self.eval(node.left), self.eval(node.right)
        if op == "==":
            return equal(a, b)
        if op == "!=":
            return not equal(a, b)
        if op in ("<", ">", "<=", ">="):
            return _compare(op, a, b)
        if op in ("+", "-", "*", "/", "%", "**", "^"):
            return _arith(op, a, b)
        if op == "in":
            if isinstance(b, Mapping):
                return a in b if isinstance(a, str) else False
            if is_list(b):
                return any(equal(a, item) for item in b)
            if b is None:
                return False
            raise EvalError(f'operator "in" not defined on {type_name(b)}')
        if op == "matches":
            s, pattern = _strings(op, a, b)
            return _regex(pattern).search(s) is not None
        if op == "contains":
            s, sub = _strings(op, a, b)
            return sub in s
        if op == "startsWith":
            s, prefix = _strings(op, a, b)
            return s.startswith(prefix)
        if op == "endsWith":
            s, suffix = _strings(op, a, b)
            return s.endswith(suffix)
        if op == "..":
            if not (isinstance(a, int) and isinstance(b, int)) or isinstance(a, bool) or isinstance(b, bool):
                raise EvalError(f"invalid operation: .. (mismatched types {type_name(a)} and {type_name(b)})")
            if b - a > 1_000_000:
                raise EvalError("range too large")
            return list(range(a, b + 1))
        raise EvalError(f"unknown operator {op}")

    def call(self, node: Call) -> Any:
        callee = node.callee
        if isinstance(callee, Ident):
            name = callee.name
            target = self.env.get(name)
            if callable(target):
                return self.invoke(name, target, [self.eval(a) for a in node.args])
            if name in exprbuiltins.PREDICATE_FUNCTIONS:
                return self.predicate(name, node.args)
            builtin = exprbuiltins.BUILTINS.get(name)
            if builtin is not None:
                return self.invoke(name, builtin, [self.eval(a) for a in node.args])
            if name in self.env:
                raise EvalError(f"{name} is not callable ({type_name(target)})")
            raise EvalError(f"unknown func {name}")
        target = self.eval(callee)
        name = go_string(callee.prop.value) if isinstance(callee, Member) and isinstance(callee.prop, Lit) \
            else "function"
        if not callable(target):
            raise EvalError(f"{name} is not callable ({type_name(target)})")
        return self.invoke(name, target, [self.eval(a) for a in node.args])

    @staticmethod
    def invoke(name: str, fn: Callable[..., Any], args: list[Any]) -> Any:
        try:
            return fn(*args)
        except (EvalError, _NilChain):
            raise
        except TypeError as exc:
            raise EvalError(f"{name}: invalid arguments: {exc}") from None
        except (ValueError, LookupError, ArithmeticError, re.error, UnicodeError) as exc:
            raise EvalError(f"{name}: {exc}") from None

    def predicate(self, name: str, args: tuple[Node, ...]) -> Any:
        if len(args) < 2 or not isinstance(args[1], Closure):
            if name in ("sum", "count") and len(args) == 1:
                return exprbuiltins.PREDICATE_FUNCTIONS[name](self.eval(args[0]), None, args[2:])
            raise EvalError(f"{name} expects an array and a predicate")
        items = self.eval(args[0])
        if isinstance(items, Mapping) and name in ("map", "filter", "all", "any", "none", "one", "count"):
            items = list(items.values())
        if not is_list(items):
            raise EvalError(f"{name}: cannot iterate over {type_name(items)}")
        body = args[1].body
        extra = [self.eval(a) for a in args[2:]]

        def apply(item: Any, index: int, acc: Any = None) -> Any:
            self.scopes.append({"": item, "index": index, "acc": acc})
            try:
                return self.eval(body)
            finally:
                self.scopes.pop()

        return exprbuiltins.PREDICATE_FUNCTIONS[name](list(items), apply, extra)


def evaluate(source: str, env: Mapping[str, Any]) -> Any:
    """Evaluate an expr-lang expression against ``env``; any failure raises ExpressionError."""
    try:
        return _Evaluator(env).eval(compile_expression(source))
    except EvalError as exc:
        raise ExpressionError(source, str(exc)) from None
    except _NilChain:  # defensive: every ``?.`` sits under a Chain node
        return None
    except RecursionError:
        raise ExpressionError(source, "expression nested too deeply") from None


def check_syntax(source: str) -> None:
    """Raise ExpressionError if ``source`` does not parse (for validation before any run)."""
    try:
        compile_expression(source)
    except EvalError as exc:
        raise ExpressionError(source, str(exc)) from None


def _member_path(node: Member) -> tuple[str, ...] | None:
    """``a.b['c']`` as ("a", "b", "c"); None when any step is computed, optional or not on a name."""
    parts: list[str] = []
    current: Node = node
    while isinstance(current, Member):
        if current.optional or not isinstance(current.prop, Lit) or not isinstance(current.prop.value, str):
            return None
        parts.append(current.prop.value)
        current = current.obj
    if not isinstance(current, Ident):
        return None
    parts.append(current.name)
    return tuple(reversed(parts))


def _walk(node: Node, out: list[tuple[str, ...]], *, guarded: bool) -> None:
    """Collect variable paths as Argo's identifierVisitor does, skipping members under ``??``/``?.``."""
    if isinstance(node, Ident):
        out.append((node.name,))
    elif isinstance(node, Member):
        path = _member_path(node)
        if path is not None and not guarded and path[0] != "sprig":
            out.append(path)
        # the object of an optional access is guarded, but its own root identifier is not
        _walk(node.obj, out, guarded=guarded or node.optional)
        _walk(node.prop, out, guarded=False)
    elif isinstance(node, Call):
        if isinstance(node.callee, Ident):
            if node.callee.name not in exprbuiltins.BUILTINS and node.callee.name not in _FUNCTION_NAMES \
                    and node.callee.name not in exprbuiltins.PREDICATE_FUNCTIONS:
                out.append((node.callee.name,))
        else:
            _walk(node.callee, out, guarded=guarded)
        for arg in node.args:
            _walk(arg, out, guarded=False)
    elif isinstance(node, Binary):
        _walk(node.left, out, guarded=node.op == "??")
        _walk(node.right, out, guarded=False)
    elif isinstance(node, Chain | Closure):
        _walk(node.node if isinstance(node, Chain) else node.body, out, guarded=guarded)
    elif isinstance(node, Unary):
        _walk(node.operand, out, guarded=False)
    elif isinstance(node, Ternary):
        for child in (node.cond, node.then, node.other):
            _walk(child, out, guarded=False)
    elif isinstance(node, Slice):
        for part in (node.obj, node.lo, node.hi):
            if part is not None:
                _walk(part, out, guarded=False)
    elif isinstance(node, Array):
        for item in node.items:
            _walk(item, out, guarded=False)
    elif isinstance(node, MapLit):
        for key, value in node.pairs:
            _walk(key, out, guarded=False)
            _walk(value, out, guarded=False)


# Argo's environment functions; their names are not variables a scope must provide.
_FUNCTION_NAMES: Final = frozenset({"asInt", "asFloat", "jsonpath", "toJson", "sprig"})


def referenced_paths(source: str) -> list[tuple[str, ...]]:
    """The variable paths an expression reads, in order, without duplicates; syntax errors raise."""
    try:
        tree = compile_expression(source)
    except EvalError as exc:
        raise ExpressionError(source, str(exc)) from None
    found: list[tuple[str, ...]] = []
    _walk(tree, found, guarded=False)
    return list(dict.fromkeys(p for p in found if p[0] not in _FUNCTION_NAMES))


def referenced_names(source: str) -> set[str]:
    """Dotted names an expression needs (``inputs.parameters.x``, ``steps.a.outputs.result``)."""
    return {".".join(path) for path in referenced_paths(source)}
