"""
Shared value semantics of expr-lang: numbers, equality, truthiness checks and ``fetch``.

Go distinguishes int from float and never treats a bool as a number; Python does, so every
arithmetic or comparison helper goes through :func:`is_number`. Used by the evaluator
(:mod:`workflows.expressions.exprlang`) and the builtin/sprig function libraries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workflows.expressions.failures import EvalError
from workflows.expressions.goformat import go_string, type_name


def is_number(value: Any) -> bool:
    """True for Go ints and floats (and never for bools)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_list(value: Any) -> bool:
    """True for arrays (lists/tuples), never for strings."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def equal(a: Any, b: Any) -> bool:
    """expr's ``==``: numbers compare by value across int/float, differing types are unequal."""
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if is_list(a) and is_list(b):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return a is b


def to_int(value: Any, what: str = "int") -> int:
    """Go ``ToInt``: ints and floats (truncated) only."""
    if is_number(value):
        return int(value)
    raise EvalError(f"invalid operation: {what}({type_name(value)})")


def fetch(obj: Any, key: Any) -> Any:
    """expr's ``runtime.Fetch``: map key (missing is nil), array/string index (negative from the end)."""
    if isinstance(obj, Mapping):
        if not isinstance(key, str):
            raise EvalError(f"cannot fetch {go_string(key)} from {type_name(obj)}: key is not a string")
        return obj.get(key)
    if isinstance(obj, str) or is_list(obj):
        if not is_number(key):
            raise EvalError(f"cannot fetch {go_string(key)} from {type_name(obj)}")
        index = int(key)
        length = len(obj)
        if index < 0:
            index += length
        if not 0 <= index < length:
            raise EvalError(f"index out of range: {index} (array length is {length})")
        return obj[index]
    raise EvalError(f"cannot fetch {go_string(key)} from {type_name(obj)}")


def slice_of(obj: Any, lo: Any, hi: Any) -> Any:
    """expr's ``a[lo:hi]`` on arrays and strings: negatives count from the end, bounds are clamped."""
    if not (isinstance(obj, str) or is_list(obj)):
        raise EvalError(f"cannot slice {type_name(obj)}")
    length = len(obj)
    start = 0 if lo is None else to_int(lo)
    end = length if hi is None else to_int(hi)
    if start < 0:
        start += length
    if end < 0:
        end += length
    start, end = max(0, min(start, length)), max(0, min(end, length))
    if start > end:
        start = end
    result = obj[start:end]
    return result if isinstance(obj, str) else list(result)
