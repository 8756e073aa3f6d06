"""
``{{...}}`` substitution in manifests: simple tags (``{{inputs.parameters.x}}``) and expression
tags (``{{= asInt(item) * 2 }}``), mirroring Argo's ``util/template``.

Called by validation (with ``allow_unresolved=True`` to keep what is not known yet), by step
expansion and by the scheduling core right before a node starts (strict). A tag runs from a
``{{`` to the first ``}}``; tags never nest, and substituted values are data: they are inserted
verbatim and never scanned again. Unresolvable tags are kept exactly as written when allowed,
otherwise they raise :class:`~workflows.errors.UnresolvedVariable` (a variable is missing) or
:class:`~workflows.errors.ExpressionError` (an expression is wrong).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from workflows.errors import ExpressionError, UnresolvedVariable
from workflows.expressions import ARGO_FUNCTIONS, evaluate, to_json
from workflows.expressions.exprlang import referenced_paths
from workflows.expressions.failures import EvalError
from workflows.expressions.goformat import from_json

#: Argo's flat scope: "inputs.parameters.message" -> "hello". ``None`` is an absent optional
#: (a skipped node's output with no default): expressions see nil, simple tags refuse it.
Scope = Mapping[str, str | None]

# The shortest run from a "{{" to the first "}}" that contains no other "{{": so in
# "{{a {{b}}" only "{{b}}" is a tag, as Argo's fasttemplate-plus-nested-tag handling does.
_TAG: Final = re.compile(r"\{\{((?:(?!\{\{).)*?)\}\}", re.DOTALL)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """One ``{{...}}`` tag in a text, for validation.

    ``source`` is the tag body (the trimmed name of a simple tag, the expression of a
    ``{{= }}`` tag); ``names`` are the dotted variables it needs (empty if it does not parse).
    """

    text: str
    expression: bool
    source: str
    names: tuple[str, ...]


def references(text: str) -> list[Reference]:
    """The tags of ``text`` in order of appearance."""
    if "{{" not in text:
        return []
    found = []
    for match in _TAG.finditer(text):
        body = match.group(1)
        if body.startswith("="):
            try:
                names = tuple(".".join(p) for p in referenced_paths(body[1:]))
            except ExpressionError:
                names = ()
            found.append(Reference(text=match.group(0), expression=True, source=body[1:], names=names))
        else:
            name = body.strip()
            found.append(Reference(text=match.group(0), expression=False, source=name, names=(name,)))
    return found


def _as_object(value: Any) -> dict[str, Any]:
    """A scope value that must also hold children: a JSON object string keeps its fields."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            parsed = from_json(value)
        except EvalError:
            return {}
        if isinstance(parsed, dict):
            return parsed
    return {}


def expression_env(scope: Scope) -> dict[str, Any]:
    """The nested environment expressions see: dotted keys become maps, functions on top.

    Like Argo's ``expand``, ``item.os`` makes ``item`` a map; when ``item`` itself is a JSON
    object its fields are kept beside the dotted children (the children win). Argo's functions
    (``asInt``, ``toJson``, ``jsonpath``, ``sprig``) are set last, so no scope key hides them.
    """
    env: dict[str, Any] = {}
    for key in sorted(scope):  # a parent sorts before its children ("item" < "item.os")
        parts = key.split(".")
        node = env
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = _as_object(child)
            node = child
        leaf = parts[-1]
        if isinstance(node.get(leaf), dict):  # children came first (only via odd keys like "a..b")
            continue
        node[leaf] = scope[key]
    env.update(ARGO_FUNCTIONS)
    return env


def _has_path(env: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    current: Any = env
    for part in path:
        if not isinstance(current, Mapping) or part not in current:
            return False
        current = current[part]
    return True


class _Replacer:
    """One substitution pass; builds the expression environment at most once, and only if needed."""

    def __init__(self, scope: Scope, *, allow_unresolved: bool) -> None:
        self.scope = scope
        self.allow_unresolved = allow_unresolved
        self._env: dict[str, Any] | None = None

    def replace(self, text: str) -> str:
        if "{{" not in text:  # the hot path: most strings have no tags
            return text
        return _TAG.sub(self._tag, text)

    def _tag(self, match: re.Match[str]) -> str:
        body = match.group(1)
        if body.startswith("="):
            return self._expression(match.group(0), body[1:])
        name = body.strip()
        if name not in self.scope:
            if self.allow_unresolved:
                return match.group(0)
            raise UnresolvedVariable(name)
        value = self.scope[name]
        if value is None:
            raise ExpressionError(
                match.group(0), "output is an absent optional (skipped/omitted node with no default)"
            )
        return value

    def _expression(self, tag: str, source: str) -> str:
        if self._env is None:
            self._env = expression_env(self.scope)
        env = self._env
        try:
            missing = [p for p in referenced_paths(source) if not _has_path(env, p)]
            if missing:
                if self.allow_unresolved:  # keep it for a later pass, when the value exists
                    return tag
                raise UnresolvedVariable(".".join(missing[0]))
            result = evaluate(source, env)
            if result is None:
                raise ExpressionError(source, "expression evaluated to nil")
            return result if isinstance(result, str) else to_json(result)
        except ExpressionError:
            if self.allow_unresolved:
                return tag
            raise
        except EvalError as exc:  # to_json of an unsupported value (NaN, a function)
            if self.allow_unresolved:
                return tag
            raise ExpressionError(source, str(exc)) from None


def replace(text: str, scope: Scope, *, allow_unresolved: bool) -> str:
    """Substitute every tag of ``text`` from ``scope``."""
    return _Replacer(scope, allow_unresolved=allow_unresolved).replace(text)


def substitute(value: Any, scope: Scope, *, allow_unresolved: bool) -> Any:
    """Substitute deeply: strings, list items, and dict keys and values; other values unchanged."""
    replacer = _Replacer(scope, allow_unresolved=allow_unresolved)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return replacer.replace(item)
        if isinstance(item, Mapping):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(value)
