"""
Argo's classic ``when`` language: Knetic/govaluate, with every variable read as a string.

Argo (``workflow/controller/steps.go`` ``shouldExecute``) substitutes ``{{...}}`` first, then
parses the text with govaluate and turns each VARIABLE token into a STRING token, so bare words
compare as text: ``heads == heads`` is true. Like govaluate, a bare word is letters, digits,
``_`` and ``.`` starting with a letter; ``my-value`` is ``my - value`` (an error, since strings
cannot be subtracted: quote such values). Numbers are float64; ``true``/``false`` are bools.
Called by the scheduling core for steps and DAG tasks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

from workflows.errors import ExpressionError
from workflows.expressions.failures import EvalError
from workflows.expressions.goformat import format_float

_PREFIX: Final = frozenset({"-", "!", "~"})
# Lowest precedence first; each level is left-associative, as govaluate's planner makes it.
_LEVELS: Final = (
    frozenset({","}),
    frozenset({"?", ":", "??"}),
    frozenset({"||"}),
    frozenset({"&&"}),
    frozenset({"==", "!=", ">", ">=", "<", "<=", "=~", "!~", "in"}),
    frozenset({"&", "|", "^"}),
    frozenset({"<<", ">>"}),
    frozenset({"+", "-"}),
    frozenset({"*", "/", "%"}),
    frozenset({"**"}),
)
_OPERATORS: Final = frozenset().union(*_LEVELS) | _PREFIX


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # value | accessor | op | ( | )
    value: Any


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_."


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch.isdigit():
            if text.startswith(("0x", "0X"), i):
                m = re.compile(r"0[xX][0-9a-fA-F]+").match(text, i)
                if not m:
                    raise EvalError(f"Unable to parse hex value '{text[i:i + 3]}' to uint64")
                tokens.append(_Tok("value", float(int(m.group(), 16))))
                i = m.end()
                continue
            j = i
            while j < n and (text[j].isdigit() or text[j] == "."):
                j += 1
            try:
                tokens.append(_Tok("value", float(text[i:j])))
            except ValueError:
                raise EvalError(f"Unable to parse numeric value '{text[i:j]}' to float64") from None
            i = j
        elif ch == "[":  # [any text] names a variable: a string in Argo's reading
            j = text.find("]", i)
            if j < 0:
                raise EvalError("Unclosed parameter bracket")
            tokens.append(_Tok("value", text[i + 1 : j]))
            i = j + 1
        elif ch.isalpha():
            j = i
            while j < n and _is_word_char(text[j]):
                j += 1
            word = text[i:j]
            i = j
            if word in ("true", "false"):
                tokens.append(_Tok("value", word == "true"))
            elif word in ("in", "IN"):
                tokens.append(_Tok("op", "in"))
            elif "." in word:
                if word.endswith("."):
                    raise EvalError(f"Hanging accessor on token '{word}'")
                for part in word.split(".")[1:]:
                    if part[:1] != part[:1].upper():
                        raise EvalError(f"Unable to access unexported field '{part}' in token '{word}'")
                tokens.append(_Tok("accessor", word))
            else:
                tokens.append(_Tok("value", word))
        elif ch in "'\"":
            # govaluate ends a string at either quote character; backslash escapes anything.
            out, j = [], i + 1
            while j < n and text[j] not in "'\"":
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                out.append(text[j])
                j += 1
            if j >= n:
                raise EvalError("Unclosed string literal")
            tokens.append(_Tok("value", "".join(out)))
            i = j + 1
        elif ch in "()":
            tokens.append(_Tok(ch, ch))
            i += 1
        elif ch == ",":
            tokens.append(_Tok("op", ","))
            i += 1
        else:
            j = i
            while j < n and not (text[j].isalnum() or text[j].isspace() or text[j] in "()[]'\","):
                j += 1
            symbol = text[i:j]
            if symbol not in _OPERATORS:
                raise EvalError(f"Invalid token: '{symbol}'")
            tokens.append(_Tok("op", symbol))
            i = j
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens, self.pos, self.nesting = tokens, 0, 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self) -> Any:
        if not self.tokens:
            raise EvalError("empty expression")
        node = self.level(0)
        if (tok := self.peek()) is not None:
            raise EvalError(f"unexpected token '{tok.value}'")
        return node

    def level(self, index: int) -> Any:
        if index == len(_LEVELS):
            return self.prefix()
        left = self.level(index + 1)
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.value in _LEVELS[index]:
            self.pos += 1
            right = self.level(index + 1)
            if tok.value == ",":
                left = ("list", [*left[1], right]) if isinstance(left, tuple) and left[0] == "list" \
                    else ("list", [left, right])
            else:
                left = ("bin", tok.value, left, right)
        return left

    def prefix(self) -> Any:
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.value in _PREFIX:
            self.pos += 1
            return ("prefix", tok.value, self.prefix())
        return self.value()

    def value(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise EvalError("unexpected end of expression")
        self.pos += 1
        if tok.kind == "value":
            return ("lit", tok.value)
        if tok.kind == "accessor":
            return ("accessor", tok.value)
        if tok.kind == "(":
            self.nesting += 1
            if self.nesting > 100:
                raise EvalError("expression nested too deeply")
            inner = self.level(0)
            self.nesting -= 1
            if (close := self.peek()) is None or close.kind != ")":
                raise EvalError("Unbalanced parenthesis")
            self.pos += 1
            return inner
        raise EvalError(f"unexpected token '{tok.value}'")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, list):
        return "[" + " ".join(_show(v) for v in value) + "]"
    return "<nil>" if value is None else str(value)


def _number(op: str, kind: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, float):
        raise EvalError(f"Value '{_show(value)}' cannot be used with the {kind} '{op}', it is not a number")
    return value


def _boolean(op: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise EvalError(
            f"Value '{_show(value)}' cannot be used with the logical operator '{op}', it is not a bool"
        )
    return value


def _arith(op: str, a: Any, b: Any) -> Any:
    if op == "+" and (isinstance(a, str) or isinstance(b, str)):
        return _show(a) + _show(b)
    x, y = _number(op, "modifier", a), _number(op, "modifier", b)
    if op in ("&", "|", "^", "<<", ">>"):
        i, j = int(x), int(y)
        ops = {"&": i & j, "|": i | j, "^": i ^ j, "<<": i << j if 0 <= j < 64 else 0, ">>": i >> max(j, 0)}
        return float(ops[op])
    if op in ("/", "%") and y == 0:
        return math.nan if x == 0 or op == "%" else math.copysign(math.inf, x)
    try:
        return {"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else 0.0,
                "%": math.fmod(x, y) if y else 0.0}[op] if op != "**" else math.pow(x, y)
    except (OverflowError, ValueError):
        return math.inf


def _compare(op: str, a: Any, b: Any) -> bool:
    if op in ("==", "!="):
        same = type(a) is type(b) and a == b
        return same if op == "==" else not same
    if op in ("=~", "!~"):
        if not (isinstance(a, str) and isinstance(b, str)):
            bad = a if not isinstance(a, str) else b
            raise EvalError(
                f"Value '{_show(bad)}' cannot be used with the comparator '{op}', it is not a string"
            )
        try:
            found = re.search(b, a) is not None
        except re.error as exc:
            raise EvalError(f"Unable to compile regexp pattern '{b}': {exc}") from None
        return found if op == "=~" else not found
    if op == "in":
        if not isinstance(b, list):
            raise EvalError(f"Value '{_show(b)}' cannot be used with the comparator 'in', it is not an array")
        return any(type(a) is type(item) and a == item for item in b)
    if isinstance(a, str) and isinstance(b, str):
        x: Any
        y: Any
        x, y = a, b
    else:
        x, y = _number(op, "comparator", a), _number(op, "comparator", b)
    return bool({">": x > y, ">=": x >= y, "<": x < y, "<=": x <= y}[op])


def _eval(node: Any) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "accessor":
        raise EvalError(f"No parameter '{node[1].split('.')[0]}' found.")
    if kind == "list":
        return [_eval(item) for item in node[1]]
    if kind == "prefix":
        value = _eval(node[2])
        if node[1] == "!":
            return not _boolean("!", value)
        number = _number(node[1], "prefix", value)
        return -number if node[1] == "-" else float(~int(number))
    _, op, left_node, right_node = node
    left = _eval(left_node)
    if op in ("&&", "||"):
        if _boolean(op, left) == (op == "||"):  # short-circuit, as govaluate does
            return left
        return _boolean(op, _eval(right_node))
    if op == "?":
        return _eval(right_node) if _boolean(op, left) else None
    if op in (":", "??"):
        return left if left is not None else _eval(right_node)
    right = _eval(right_node)
    if op in ("==", "!=", "=~", "!~", "in", ">", ">=", "<", "<="):
        return _compare(op, left, right)
    return _arith(op, left, right)


def evaluate_when(text: str) -> bool:
    """Evaluate a substituted ``when`` text; empty means true, a non-bool result is an error."""
    if not text.strip():
        return True
    try:
        result = _eval(_Parser(_tokenize(text)).parse())
    except EvalError as exc:
        raise ExpressionError(text, f"invalid 'when' expression: {exc}") from None
    if not isinstance(result, bool):
        raise ExpressionError(text, f"expected boolean evaluation for 'when', got {_show(result)}")
    return result
