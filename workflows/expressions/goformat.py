"""
Go-compatible text for expression values: ``json.Marshal`` and ``fmt``'s ``%v``.

Argo inserts non-string ``{{= }}`` results as ``json.Marshal`` output, and sprig/expr turn
values into strings with ``fmt.Sprintf("%v")``. Users see these strings in parameters, so
they must match Go byte for byte: compact JSON, sorted map keys, ``3`` not ``3.0``, HTML
characters escaped. Used by :mod:`workflows.expressions.exprlang`, the function libraries
and :mod:`workflows.templating`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from workflows.expressions.failures import EvalError
from workflows.expressions.gotime import format_go

# encoding/json escapes these even though JSON does not require it (HTMLEscape is on by default).
_JSON_ESCAPES: Final = {
    '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029",
}


def _digits(x: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of ``abs(x) > 0`` and the exponent ``dp`` (value = 0.d * 10**dp)."""
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    frac = frac.rstrip("0")
    raw = (whole + frac).lstrip("0")
    dp = len(whole.lstrip("0")) + (int(exp) if exp else 0)
    if not whole.lstrip("0"):  # 0.00123: the point sits before the leading zeros of frac
        dp = (int(exp) if exp else 0) - (len(frac) - len(frac.lstrip("0")))
    return raw.rstrip("0") or "0", dp


def _exp_form(digits: str, dp: int, *, exp_digits: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = dp - 1
    return f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):0{exp_digits}d}"


def _fixed_form(digits: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * -dp + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]


def format_float(x: float) -> str:
    """Go ``strconv.FormatFloat(x, 'g', -1, 64)``, which is what ``%v`` prints for a float64."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1, x) < 0 else "0"
    digits, dp = _digits(x)
    sign = "-" if x < 0 else ""
    # %v is 'g' with the shortest digits, and Go then switches to exponent form at 1e6.
    if dp - 1 < -4 or dp - 1 >= 6:
        return sign + _exp_form(digits, dp, exp_digits=2)
    return sign + _fixed_form(digits, dp)


def json_float(x: float) -> str:
    """Go ``encoding/json`` float64 text: fixed notation unless tiny or huge; NaN/Inf refuse."""
    if math.isnan(x) or math.isinf(x):
        raise EvalError(f"json: unsupported value: {format_float(x)}")
    if x == 0:
        return "0" if math.copysign(1, x) > 0 else "-0"
    digits, dp = _digits(x)
    sign = "-" if x < 0 else ""
    if abs(x) < 1e-6 or abs(x) >= 1e21:
        return sign + _exp_form(digits, dp, exp_digits=1)
    return sign + _fixed_form(digits, dp)


def json_string(s: str) -> str:
    """A Go-escaped JSON string literal, quotes included."""
    out = []
    for ch in s:
        esc = _JSON_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def to_json(value: Any, *, indent: str = "") -> str:
    """Go ``json.Marshal`` (or ``MarshalIndent(v, "", indent)``): map keys sorted, HTML escaped."""
    return _encode(value, indent, "")


def _encode(value: Any, indent: str, pad: str) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, str):
        return json_string(value)
    if isinstance(value, datetime):  # Go marshals time.Time as RFC 3339 with nanoseconds
        return json_string(format_go("2006-01-02T15:04:05.999999999Z07:00", value))
    inner = pad + indent
    sep = ("\n" + inner) if indent else ""
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = sorted((str(k), v) for k, v in value.items())
        colon = ": " if indent else ":"
        parts = [json_string(k) + colon + _encode(v, indent, inner) for k, v in items]
        return "{" + sep + ("," + sep).join(parts) + (("\n" + pad) if indent else "") + "}"
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        if not value:
            return "[]"
        parts = [_encode(v, indent, inner) for v in value]
        return "[" + sep + ("," + sep).join(parts) + (("\n" + pad) if indent else "") + "]"
    if callable(value):
        raise EvalError("json: unsupported type: func")
    raise EvalError(f"json: unsupported type: {type(value).__name__}")


def go_string(value: Any) -> str:
    """Go ``fmt.Sprintf("%v", value)``: what expr's ``string()`` and sprig's ``toString`` print."""
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, datetime):
        return format_go("2006-01-02 15:04:05.999999999 -0700 MST", value)
    if isinstance(value, Mapping):
        items = sorted((go_string(k), go_string(v)) for k, v in value.items())
        return "map[" + " ".join(f"{k}:{v}" for k, v in items) + "]"
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return "[" + " ".join(go_string(v) for v in value) + "]"
    if isinstance(value, Callable):  # type: ignore[arg-type]
        return "<func>"
    return str(value)


def type_name(value: Any) -> str:
    """The Go-ish type name used in error messages (``int``, ``string``, ``map[string]interface {}``)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, Sequence):
        return "[]interface {}"
    if callable(value):
        return "func"
    return type(value).__name__


def _reject_constant(name: str) -> Any:
    raise EvalError(f"invalid character {name[0]!r} looking for beginning of value")


def from_json(text: str) -> Any:
    """Go ``json.Unmarshal`` into ``interface{}``: every JSON number becomes a float64."""
    try:
        return json.loads(text, parse_int=float, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise EvalError(f"invalid JSON: {exc}") from None
