"""
Parser for expr-lang: tokens to a small immutable syntax tree.

Mirrors expr-lang's ``parser/parser.go`` precedence climbing: unary ``not ! - +``, binary
operators by precedence (``**`` right-associative), ``not in``-style negated operators, the
pipe ``a | f(b)`` (= ``f(a, b)``), ternary ``?:``, optional chaining ``?.`` and closures
(``{# > 1}`` or ``.field``) for predicate builtins. Called by
:mod:`workflows.expressions.exprlang`, which caches parsed trees per source text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from workflows.expressions.failures import EvalError
from workflows.expressions.lexer import Token, tokenize

BINARY: Final = {
    "|": 0, "or": 10, "||": 10, "and": 15, "&&": 15,
    "==": 20, "!=": 20, "<": 20, ">": 20, ">=": 20, "<=": 20,
    "in": 20, "matches": 20, "contains": 20, "startsWith": 20, "endsWith": 20,
    "..": 25, "+": 30, "-": 30, "*": 60, "/": 60, "%": 60, "**": 100, "^": 100, "??": 500,
}
_MAX_NESTING: Final = 100
_RIGHT_ASSOC: Final = frozenset({"**", "^"})
UNARY: Final = {"not": 50, "!": 50, "-": 90, "+": 90}
_NEGATABLE: Final = frozenset({"contains", "matches", "startsWith", "endsWith", "in"})
#: Builtins whose second argument is a closure over ``#`` (expr-lang's ``predicates``).
PREDICATES: Final = frozenset({
    "all", "none", "any", "one", "filter", "map", "find", "findIndex", "findLast", "findLastIndex",
    "count", "sum", "groupBy", "sortBy", "reduce",
})


class Node:
    """Base of syntax-tree nodes."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Lit(Node):
    value: object


@dataclass(frozen=True, slots=True)
class Ident(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Pointer(Node):
    name: str  # "" for ``#``, else ``#index`` / ``#acc``


@dataclass(frozen=True, slots=True)
class Member(Node):
    obj: Node
    prop: Node
    optional: bool


@dataclass(frozen=True, slots=True)
class Slice(Node):
    obj: Node
    lo: Node | None
    hi: Node | None


@dataclass(frozen=True, slots=True)
class Call(Node):
    callee: Node
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Closure(Node):
    body: Node


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Ternary(Node):
    cond: Node
    then: Node
    other: Node


@dataclass(frozen=True, slots=True)
class Array(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MapLit(Node):
    pairs: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True, slots=True)
class Chain(Node):
    """Root of a member chain using ``?.``: a nil met through ``?.`` makes the whole chain nil."""

    node: Node


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0  # > 0 inside a closure, where ``#`` and ``.field`` are allowed
        self.nesting = 0  # bounded, so hostile input fails cleanly instead of exhausting the stack

    @property
    def cur(self) -> Token:
        return self.tokens[self.pos]

    def is_op(self, value: str) -> bool:
        return self.cur.kind == "op" and self.cur.value == value

    def advance(self) -> Token:
        tok = self.cur
        if tok.kind != "eof":
            self.pos += 1
        return tok

    def expect(self, value: str) -> None:
        if not self.is_op(value):
            raise EvalError(f"expected {value!r} but found {self._describe()}")
        self.advance()

    def _describe(self) -> str:
        tok = self.cur
        return "end of expression" if tok.kind == "eof" else f"{tok.value!r} at position {tok.pos}"

    def parse(self) -> Node:
        node = self.expression(0)
        if self.cur.kind != "eof":
            raise EvalError(f"unexpected token {self._describe()}")
        return node

    def expression(self, precedence: int) -> Node:
        self.nesting += 1
        if self.nesting > _MAX_NESTING:
            raise EvalError("expression nested too deeply")
        try:
            return self._expression(precedence)
        finally:
            self.nesting -= 1

    def _expression(self, precedence: int) -> Node:
        left = self.primary()
        prev_op = ""
        while self.cur.kind == "op":
            tok = self.cur
            op = str(tok.value)
            negate = op == "not"
            if negate:
                nxt = self.tokens[self.pos + 1]
                if nxt.kind != "op" or nxt.value not in _NEGATABLE:
                    raise EvalError(f"unexpected token 'not' at position {tok.pos}")
                if BINARY[str(nxt.value)] < precedence:
                    break
                self.advance()
                op = str(nxt.value)
            if op not in BINARY or BINARY[op] < precedence:
                break
            self.advance()
            if op == "|":
                left = self.pipe(left)
            else:
                if prev_op == "??" and op != "??":
                    raise EvalError(f"operator ({op}) and coalesce expressions (??) cannot be mixed; "
                                    "wrap either by parentheses")
                prec = BINARY[op]
                right = self.expression(prec if op in _RIGHT_ASSOC else prec + 1)
                left = Binary(op, left, right)
                if negate:
                    left = Unary("not", left)
            prev_op = op
        if precedence == 0:
            while self.is_op("?"):
                self.advance()
                if self.is_op(":"):  # elvis: a ?: b
                    self.advance()
                    left = Ternary(left, left, self.expression(0))
                    continue
                then = self.expression(0)
                self.expect(":")
                left = Ternary(left, then, self.expression(0))
        return left

    def pipe(self, left: Node) -> Node:
        tok = self.advance()
        if tok.kind != "ident":
            raise EvalError(f"expected a function name after '|' at position {tok.pos}")
        name = str(tok.value)
        if not self.is_op("("):
            return Call(Ident(name), (left,))
        return self.call(name, first=left)

    def primary(self) -> Node:
        tok = self.cur
        if tok.kind == "op" and tok.value in UNARY:
            self.advance()
            operand = self.expression(UNARY[str(tok.value)])
            return self.postfix(Unary(str(tok.value), operand))
        if self.is_op("("):
            self.advance()
            inner = self.expression(0)
            self.expect(")")
            return self.postfix(inner)
        if self.depth > 0:
            if tok.kind == "pointer":
                self.advance()
                return self.postfix(Pointer(str(tok.value)))
            if self.is_op("."):  # ``.field`` inside a closure means ``#.field``
                return self.postfix(Pointer(""))
        return self.postfix(self.secondary())

    def secondary(self) -> Node:
        tok = self.advance()
        if tok.kind in ("num", "str"):
            return Lit(tok.value)
        if tok.kind == "ident":
            name = str(tok.value)
            if name in ("true", "false"):
                return Lit(name == "true")
            if name == "nil":
                return Lit(None)
            if self.is_op("("):
                return self.call(name, first=None)
            return Ident(name)
        if tok.kind == "op" and tok.value == "[":
            items: list[Node] = []
            while not self.is_op("]"):
                items.append(self.expression(0))
                if not self.is_op("]"):
                    self.expect(",")
            self.advance()
            return Array(tuple(items))
        if tok.kind == "op" and tok.value == "{":
            return self.map_literal()
        if tok.kind == "pointer":
            raise EvalError(f"cannot use pointer accessor outside predicate at position {tok.pos}")
        what = "end of expression" if tok.kind == "eof" else f"token {tok.value!r} at position {tok.pos}"
        raise EvalError(f"unexpected {what}")

    def map_literal(self) -> Node:
        pairs: list[tuple[Node, Node]] = []
        while not self.is_op("}"):
            tok = self.cur
            if tok.kind in ("ident", "str", "num") or (tok.kind == "op" and str(tok.value).isalpha()):
                self.advance()
                key: Node = Lit(str(tok.value) if tok.kind != "num" else tok.value)
            elif self.is_op("("):
                self.advance()
                key = self.expression(0)
                self.expect(")")
            else:
                raise EvalError(f"a map key must be a quoted string, a number, an identifier, or an "
                                f"expression enclosed in parentheses (found {self._describe()})")
            self.expect(":")
            pairs.append((key, self.expression(0)))
            if not self.is_op("}"):
                self.expect(",")
        self.advance()
        return MapLit(tuple(pairs))

    def call(self, name: str, *, first: Node | None) -> Node:
        self.expect("(")
        args: list[Node] = [] if first is None else [first]
        while not self.is_op(")"):
            if name in PREDICATES and len(args) == 1:
                args.append(self.closure())
            else:
                args.append(self.expression(0))
            if not self.is_op(")"):
                self.expect(",")
        self.advance()
        return Call(Ident(name), tuple(args))

    def closure(self) -> Node:
        braces = self.is_op("{")
        if braces:
            self.advance()
        self.depth += 1
        body = self.expression(0)
        self.depth -= 1
        if braces:
            self.expect("}")
        return Closure(body)

    def postfix(self, node: Node) -> Node:
        chained = False
        while True:
            if self.is_op(".") or self.is_op("?."):
                optional = self.advance().value == "?."
                chained = chained or optional
                if optional and self.is_op("["):
                    self.advance()
                    node = Member(node, self.expression(0), True)
                    self.expect("]")
                    continue
                tok = self.advance()
                if tok.kind not in ("ident", "op") or not str(tok.value).replace("_", "a").isalnum():
                    raise EvalError(f"expected name after '.' at position {tok.pos}")
                node = Member(node, Lit(str(tok.value)), optional)
                if self.is_op("("):
                    node = self.method_call(node)
            elif self.is_op("["):
                self.advance()
                node = self.index_or_slice(node)
            else:
                break
        return Chain(node) if chained else node

    def method_call(self, callee: Node) -> Node:
        self.expect("(")
        args: list[Node] = []
        while not self.is_op(")"):
            args.append(self.expression(0))
            if not self.is_op(")"):
                self.expect(",")
        self.advance()
        return Call(callee, tuple(args))

    def index_or_slice(self, obj: Node) -> Node:
        if self.is_op(":"):
            self.advance()
            hi = None if self.is_op("]") else self.expression(0)
            self.expect("]")
            return Slice(obj, None, hi)
        index = self.expression(0)
        if self.is_op(":"):
            self.advance()
            hi = None if self.is_op("]") else self.expression(0)
            self.expect("]")
            return Slice(obj, index, hi)
        self.expect("]")
        return Member(obj, index, False)


def parse(source: str) -> Node:
    """Parse an expr-lang expression; syntax errors raise EvalError."""
    if not source.strip():
        raise EvalError("empty expression")
    return _Parser(tokenize(source)).parse()
