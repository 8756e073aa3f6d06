"""
The expression languages of Argo manifests, as pure functions.

- expr-lang (``{{= }}``, ``valueFrom.expression``, ``retryStrategy.expression``, hooks,
  ``labelsFrom``): :func:`evaluate`, :func:`referenced_names`, :func:`check_syntax`;
- govaluate (step/task ``when``, after substitution): :func:`evaluate_when`;
- DAG ``depends``: :func:`parse_depends`, :func:`depends_from_dependencies`, :class:`Depends`;
- JSONPath (``jsonpath()``, ``valueFrom.jsonPath``): :func:`jsonpath_query`;
- Go-compatible value text: :func:`to_json` (``json.Marshal``), :func:`go_string` (``%v``).

Used by :mod:`workflows.templating` and the scheduling core. Every failure raises
:class:`workflows.errors.ExpressionError`, whose message names the expression.
"""

from __future__ import annotations

from typing import Any

from workflows.errors import ExpressionError
from workflows.expressions.depends import Depends, depends_from_dependencies, parse_depends
from workflows.expressions.exprlang import check_syntax, evaluate, referenced_names
from workflows.expressions.failures import EvalError
from workflows.expressions.functions import ARGO_FUNCTIONS
from workflows.expressions.goformat import from_json, go_string, to_json
from workflows.expressions.govaluate import evaluate_when
from workflows.expressions.jsonpath import query


def jsonpath_query(document: str, path: str) -> Any:
    """Query a JSON text with a JSONPath (``valueFrom.jsonPath``); errors raise ExpressionError."""
    try:
        return query(path, from_json(document))
    except EvalError as exc:
        raise ExpressionError(path, str(exc)) from None


__all__ = [
    "ARGO_FUNCTIONS",
    "Depends",
    "check_syntax",
    "depends_from_dependencies",
    "evaluate",
    "evaluate_when",
    "go_string",
    "jsonpath_query",
    "parse_depends",
    "referenced_names",
    "to_json",
]
