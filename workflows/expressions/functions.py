"""
The functions Argo adds to every expression environment (``util/expr/env``).

``asInt``, ``asFloat``, ``toJson`` (compact Go ``json.Marshal``), ``jsonpath(json, path)`` and
the ``sprig`` namespace. :mod:`workflows.templating` layers these over the expanded scope, so
they win over any scope key of the same name, exactly as Argo's ``GetFuncMap`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any, Final

from workflows.expressions import sprig
from workflows.expressions.exprbuiltins import b_float, b_int
from workflows.expressions.failures import EvalError
from workflows.expressions.goformat import from_json, to_json, type_name
from workflows.expressions.jsonpath import query


def jsonpath(document: Any, path: Any) -> Any:
    """Argo's ``jsonpath(jsonString, path)``: decode the JSON text, then query it."""
    if not isinstance(document, str) or not isinstance(path, str):
        raise EvalError(f"jsonpath expects (string, string), got ({type_name(document)}, {type_name(path)})")
    return query(path, from_json(document))


#: Read-only, so no expression or caller can mutate the shared namespace.
SPRIG: Final = MappingProxyType(dict(sprig.FUNCTIONS))

ARGO_FUNCTIONS: Final[MappingProxyType[str, Callable[..., Any] | MappingProxyType[str, Any]]] = (
    MappingProxyType({
        "asInt": b_int,
        "asFloat": b_float,
        "jsonpath": jsonpath,
        "toJson": to_json,
        "sprig": SPRIG,
    })
)
