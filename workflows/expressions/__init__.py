"""
The expression languages of Argo manifests, as pure functions.

- expr-lang (``{{= }}``, ``valueFrom.expression``, ``retryStrategy.expression``, hooks):
  :func:`evaluate`, :func:`referenced_names`, :func:`check_syntax`;
- govaluate (step/task ``when`` after substitution): :func:`evaluate_when`;
- DAG ``depends``: :func:`parse_depends`, :func:`depends_from_dependencies`;
- JSONPath (``jsonpath()``, ``valueFrom.jsonPath``): :func:`jsonpath_query`;
- Go-compatible value text: :func:`to_json`, :func:`go_string`.

Used by :mod:`workflows.templating` and the scheduling core. All failures raise
:class:`workflows.errors.ExpressionError`.
"""

from workflows.expressions.exprlang import check_syntax, evaluate
from workflows.expressions.functions import ARGO_FUNCTIONS
from workflows.expressions.goformat import go_string, to_json

__all__ = ["ARGO_FUNCTIONS", "check_syntax", "evaluate", "go_string", "to_json"]
