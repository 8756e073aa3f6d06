"""
Trigger ``conditions``: boolean expressions over dependency names, ``"dep-a && (dep-b || dep-c)"``.

Parsed by :mod:`sensors.model` when a Sensor is loaded (so a typo fails at load time with the
field path) and evaluated by :mod:`sensors.matching` against the set of dependencies that
currently hold an event. Names may contain letters, digits, ``-``, ``_`` and ``.``; the
operators are ``&&``, ``||`` and parentheses, with ``&&`` binding tighter, as in Argo Events.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from workflows.errors import InvalidSpec

_TOKEN: Final = re.compile(r"\s*(?:(&&|\|\|)|([()])|([A-Za-z0-9_.\-]+)|(\S))")


@dataclass(frozen=True, slots=True)
class Name:
    """A dependency reference."""

    name: str


@dataclass(frozen=True, slots=True)
class And:
    """Both sides hold."""

    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Or:
    """Either side holds."""

    left: Condition
    right: Condition


Condition = Name | And | Or


def parse(text: str, *, known: Collection[str] | None = None, path: str = "conditions") -> Condition:
    """Parse ``text``; with ``known``, every name must be one of them. Raises InvalidSpec."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        op, paren, name, bad = match.groups()
        if bad is not None:
            raise InvalidSpec(path, f"unexpected {bad!r} in {text!r} (use names, &&, || and parentheses)")
        tokens.append(op or paren or name)
    if not tokens:
        raise InvalidSpec(path, "empty condition")
    parser = _Parser(tokens, text=text, path=path)
    tree = parser.expression()
    if parser.pos != len(tokens):
        raise InvalidSpec(path, f"unexpected {tokens[parser.pos]!r} in {text!r}")
    if known is not None:
        for dep in sorted(names(tree)):
            if dep not in known:
                raise InvalidSpec(path, f"unknown dependency {dep!r} (known: {sorted(known)})")
    return tree


class _Parser:
    def __init__(self, tokens: list[str], *, text: str, path: str) -> None:
        self.tokens, self.text, self.path, self.pos = tokens, text, path, 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def expression(self) -> Condition:
        left = self.term()
        while self._peek() == "||":
            self.pos += 1
            left = Or(left, self.term())
        return left

    def term(self) -> Condition:
        left = self.factor()
        while self._peek() == "&&":
            self.pos += 1
            left = And(left, self.factor())
        return left

    def factor(self) -> Condition:
        token = self._peek()
        if token is None:
            raise InvalidSpec(self.path, f"unexpected end of {self.text!r}")
        self.pos += 1
        if token == "(":
            inner = self.expression()
            if self._peek() != ")":
                raise InvalidSpec(self.path, f"missing ')' in {self.text!r}")
            self.pos += 1
            return inner
        if token in ("&&", "||", ")"):
            raise InvalidSpec(self.path, f"unexpected {token!r} in {self.text!r}")
        return Name(token)


def names(condition: Condition) -> frozenset[str]:
    """Every dependency the condition mentions."""
    if isinstance(condition, Name):
        return frozenset({condition.name})
    return names(condition.left) | names(condition.right)


def evaluate(condition: Condition, satisfied: Collection[str]) -> bool:
    """Whether the condition holds when exactly the ``satisfied`` dependencies have events."""
    if isinstance(condition, Name):
        return condition.name in satisfied
    if isinstance(condition, And):
        return evaluate(condition.left, satisfied) and evaluate(condition.right, satisfied)
    return evaluate(condition.left, satisfied) or evaluate(condition.right, satisfied)


def all_of(dependencies: Collection[str]) -> Condition:
    """The default condition of a trigger without ``conditions``: every dependency (Argo Events)."""
    ordered = sorted(dependencies)
    tree: Condition = Name(ordered[0])
    for dep in ordered[1:]:
        tree = And(tree, Name(dep))
    return tree
