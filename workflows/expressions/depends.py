"""
DAG ``depends`` logic (Argo's enhanced depends): ``A && (B.Succeeded || !C.Failed)``.

Argo (``workflow/common/ancestry.go``, ``controller/dag.go``) rewrites a bare ``task`` to
``(task.Succeeded || task.Skipped || task.Daemoned)`` (adding ``.Errored``/``.Failed`` when
the dependency has ``continueOn``) and evaluates the rest as an expr boolean. Task names may
contain ``-`` and digits. Called by :mod:`workflows.scheduling.dag`, which answers each
``(task, result)`` operand from node phases.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from workflows.errors import ExpressionError

RESULTS: Final = frozenset({
    "Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed",
})
#: What a bare ``task`` means: Argo's expandDependency.
BARE_RESULTS: Final = ("Succeeded", "Skipped", "Daemoned")
_TOKEN: Final = re.compile(
    r"\s*(?:(?P<op>&&|\|\||!|\(|\))|(?P<word>(?:and|or|not)(?![-\w.]))"
    r"|(?P<operand>[A-Za-z0-9_][-A-Za-z0-9_]*(?:\.[A-Za-z]+)?))"
)

ResultFn = Callable[[str, str], bool]


@dataclass(frozen=True, slots=True, kw_only=True)
class Depends:
    """A parsed ``depends`` expression; ``tasks`` are the task names it waits for."""

    text: str
    tasks: frozenset[str]
    _tree: tuple[object, ...] = field(repr=False, compare=False)
    _extra: Mapping[str, tuple[str, ...]] = field(repr=False, compare=False, default_factory=dict)

    def evaluate(self, result: ResultFn) -> bool:
        """True if the dependencies are satisfied; ``result(task, "Succeeded")`` answers one operand."""
        return self._eval(self._tree, result)

    def _eval(self, node: tuple[object, ...], result: ResultFn) -> bool:
        kind = node[0]
        if kind == "const":  # no dependencies at all
            return True
        if kind == "task":
            task, outcome = str(node[1]), node[2]
            if outcome is not None:
                return result(task, str(outcome))
            return any(result(task, r) for r in (*BARE_RESULTS, *self._extra.get(task, ())))
        if kind == "not":
            return not self._eval(node[1], result)  # type: ignore[arg-type]
        left = self._eval(node[1], result)  # type: ignore[arg-type]
        if kind == "and":
            return left and self._eval(node[2], result)  # type: ignore[arg-type]
        return left or self._eval(node[2], result)  # type: ignore[arg-type]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.depth = 0
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                if not text[pos:].strip():
                    break
                at = len(text) - len(text[pos:].lstrip())
                raise ExpressionError(text, f"unexpected character {text[at]!r} at position {at}")
            kind = m.lastgroup or ""
            value = m.group(kind)
            if kind == "word":
                kind, value = "op", {"and": "&&", "or": "||", "not": "!"}[value]
            self.tokens.append((kind, value))
            pos = m.end()
        self.pos = 0
        self.tasks: set[str] = set()

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self) -> tuple[object, ...]:
        if not self.tokens:
            raise ExpressionError(self.text, "empty depends expression")
        node = self.binary(0)
        if (tok := self.peek()) is not None:
            raise ExpressionError(self.text, f"unexpected {tok[1]!r}")
        return node

    def binary(self, level: int) -> tuple[object, ...]:
        op, name = (("||", "or"), ("&&", "and"))[level]
        left = self.binary(1) if level == 0 else self.unary()
        while self.peek() == ("op", op):
            self.pos += 1
            right = self.binary(1) if level == 0 else self.unary()
            left = (name, left, right)
        return left

    def unary(self) -> tuple[object, ...]:
        tok = self.peek()
        if tok is None:
            raise ExpressionError(self.text, "unexpected end of depends expression")
        self.pos += 1
        if tok == ("op", "!"):
            return ("not", self.unary())
        if tok == ("op", "("):
            self.depth += 1  # nesting, not length: a task may depend on hundreds of others
            if self.depth > 100:
                raise ExpressionError(self.text, "depends expression nested too deeply")
            inner = self.binary(0)
            if self.peek() != ("op", ")"):
                raise ExpressionError(self.text, "unbalanced parenthesis")
            self.pos += 1
            self.depth -= 1
            return inner
        if tok[0] != "operand":
            raise ExpressionError(self.text, f"unexpected {tok[1]!r}")
        task, _, outcome = tok[1].partition(".")
        if outcome and outcome not in RESULTS:
            raise ExpressionError(self.text, f"task result '{outcome}' for task '{task}' is invalid")
        self.tasks.add(task)
        return ("task", task, outcome or None)


def parse_depends(text: str, *, continue_on: Mapping[str, Iterable[str]] | None = None) -> Depends:
    """Parse ``depends``; ``continue_on`` adds results ("Failed", "Errored") a bare task also accepts."""
    parser = _Parser(text)
    tree = parser.parse()
    extra = {task: tuple(results) for task, results in (continue_on or {}).items()}
    return Depends(text=text, tasks=frozenset(parser.tasks), _tree=tree, _extra=extra)


def depends_from_dependencies(
    dependencies: Iterable[str], *, continue_on: Mapping[str, Iterable[str]] | None = None
) -> Depends:
    """The ``depends`` equivalent of the legacy ``dependencies: [A, B]`` list: ``A && B``."""
    names = list(dependencies)
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9_][-A-Za-z0-9_]*", name):
            raise ExpressionError(" && ".join(names), f"invalid task name {name!r} in dependencies")
    if not names:
        return Depends(text="", tasks=frozenset(), _tree=("const",), _extra={})
    return parse_depends(" && ".join(names), continue_on=continue_on)
