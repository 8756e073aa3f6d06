"""
expr-lang's builtin functions (``len``, ``filter``, ``toJSON``, ``keys``, ...).

Looked up by :mod:`workflows.expressions.exprlang` when a called name is not a function in
the environment. Predicate builtins receive ``apply(item, index, acc)``, which evaluates the
closure body with ``#``, ``#index`` and ``#acc`` bound. Note ``toJSON`` is expr's indented
form; Argo's compact ``toJson`` lives in :mod:`workflows.expressions.functions`.
"""

from __future__ import annotations

import base64
import binascii
import math
import statistics
from collections.abc import Callable, Mapping
from typing import Any, Final

from workflows.expressions.failures import EvalError
from workflows.expressions.goformat import from_json, go_string, to_json, type_name
from workflows.expressions.values import equal, is_list, is_number

Apply = Callable[..., Any]


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise EvalError(f"invalid argument for {name} (type {type_name(value)})")
    return value


def _list(name: str, value: Any) -> list[Any]:
    if not is_list(value):
        raise EvalError(f"invalid argument for {name} (type {type_name(value)})")
    return list(value)


def _num(name: str, value: Any) -> int | float:
    if not is_number(value):
        raise EvalError(f"invalid argument for {name} (type {type_name(value)})")
    return value  # type: ignore[no-any-return]


def _pred(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise EvalError(f"predicate of {name} must return bool, not {type_name(value)}")
    return value


def b_len(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())  # Go counts bytes
    if is_list(value) or isinstance(value, Mapping):
        return len(value)
    raise EvalError(f"invalid argument for len (type {type_name(value)})")


def b_type(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if is_list(value):
        return "array"
    if isinstance(value, Mapping):
        return "map"
    return "func" if callable(value) else "unknown"


def b_int(value: Any) -> int:
    """expr ``int()`` (Argo's ``asInt``): numbers truncate, strings must be Go integers."""
    if is_number(value):
        return int(value)
    if isinstance(value, str):
        text = value.strip("+") if value.startswith("+") and value[1:].isdigit() else value
        if text.lstrip("-").isdigit() and text.isascii():
            return int(text)
        raise EvalError(f"invalid operation: int({value})")
    raise EvalError(f"invalid operation: int({type_name(value)})")


def b_float(value: Any) -> float:
    """expr ``float()`` (Argo's ``asFloat``): numbers, or strings Go's ParseFloat accepts."""
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            if value.strip() != value or "_" in value:
                raise ValueError(value)
            return float(value)
        except ValueError:
            raise EvalError(f"invalid operation: float({value})") from None
    raise EvalError(f"invalid operation: float({type_name(value)})")


def _trim(value: Any, cutset: Any = None) -> str:
    s = _str("trim", value)
    return s.strip() if cutset is None else s.strip(_str("trim", cutset))


def _split(value: Any, sep: Any, n: Any = -1) -> list[str]:
    s, sep_ = _str("split", value), _str("split", sep)
    count = int(_num("split", n))
    if count == 0:
        return []
    if sep_ == "":
        chars = list(s)
        return chars if count < 0 or count >= len(chars) else [*chars[: count - 1], s[count - 1 :]]
    return s.split(sep_) if count < 0 else s.split(sep_, count - 1)


def _join(items: Any, sep: Any = "") -> str:
    return _str("join", sep).join(_str("join", x) for x in _list("join", items))


def _extreme(name: str, args: tuple[Any, ...]) -> Any:
    values = list(args[0]) if len(args) == 1 and is_list(args[0]) else list(args)
    if not values:
        raise EvalError(f"not enough arguments to call {name}")
    nums = [_num(name, v) for v in values]
    return max(nums) if name == "max" else min(nums)


def _numbers(name: str, items: Any) -> list[int | float]:
    return [_num(name, v) for v in _list(name, items)]


def _base64_decode(value: Any) -> str:
    try:
        return base64.b64decode(_str("fromBase64", value), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise EvalError(f"illegal base64 data: {exc}") from None


def _get(obj: Any, key: Any) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key) if isinstance(key, str) else None
    if is_list(obj) and is_number(key):
        index = int(key) + (len(obj) if key < 0 else 0)
        return obj[index] if 0 <= index < len(obj) else None
    return None


def _uniq(items: Any) -> list[Any]:
    out: list[Any] = []
    for item in _list("uniq", items):
        if not any(equal(item, seen) for seen in out):
            out.append(item)
    return out


def _flatten(items: Any) -> list[Any]:
    out: list[Any] = []
    for item in _list("flatten", items):
        out.extend(_flatten(item) if is_list(item) else [item])
    return out


def _sort(items: Any, order: Any = "asc") -> list[Any]:
    values = _list("sort", items)
    if not (all(is_number(v) for v in values) or all(isinstance(v, str) for v in values)):
        raise EvalError("sort: array must hold only numbers or only strings")
    return sorted(values, reverse=_str("sort", order) == "desc")


def _from_pairs(items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in _list("fromPairs", items):
        if not is_list(pair) or len(pair) != 2:
            raise EvalError("fromPairs: each item must be a [key, value] pair")
        out[pair[0] if isinstance(pair[0], str) else go_string(pair[0])] = pair[1]
    return out


def _map_arg(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise EvalError(f"invalid argument for {name} (type {type_name(value)})")
    return value


def _round_half_away(x: Any) -> float:
    value = float(_num("round", x))
    return math.copysign(math.floor(abs(value) + 0.5), value)


BUILTINS: Final[dict[str, Callable[..., Any]]] = {
    "len": b_len,
    "type": b_type,
    "abs": lambda x: abs(_num("abs", x)),
    "ceil": lambda x: float(math.ceil(_num("ceil", x))),
    "floor": lambda x: float(math.floor(_num("floor", x))),
    "round": _round_half_away,
    "int": b_int,
    "float": b_float,
    "string": go_string,
    "trim": _trim,
    "trimPrefix": lambda s, p=" ": _str("trimPrefix", s).removeprefix(_str("trimPrefix", p)),
    "trimSuffix": lambda s, p=" ": _str("trimSuffix", s).removesuffix(_str("trimSuffix", p)),
    "upper": lambda s: _str("upper", s).upper(),
    "lower": lambda s: _str("lower", s).lower(),
    "split": _split,
    "replace": lambda s, old, new: _str("replace", s).replace(_str("replace", old), _str("replace", new)),
    "repeat": lambda s, n: _str("repeat", s) * max(0, int(_num("repeat", n))),
    "join": _join,
    "indexOf": lambda s, sub: _str("indexOf", s).find(_str("indexOf", sub)),
    "lastIndexOf": lambda s, sub: _str("lastIndexOf", s).rfind(_str("lastIndexOf", sub)),
    "hasPrefix": lambda s, p: _str("hasPrefix", s).startswith(_str("hasPrefix", p)),
    "hasSuffix": lambda s, p: _str("hasSuffix", s).endswith(_str("hasSuffix", p)),
    "max": lambda *a: _extreme("max", a),
    "min": lambda *a: _extreme("min", a),
    "mean": lambda xs: float(statistics.fmean(_numbers("mean", xs))) if xs else 0.0,
    "median": lambda xs: float(statistics.median(_numbers("median", xs))) if xs else 0.0,
    "toJSON": lambda v: to_json(v, indent="  "),
    "fromJSON": lambda s: from_json(_str("fromJSON", s)),
    "toBase64": lambda s: base64.b64encode(_str("toBase64", s).encode()).decode(),
    "fromBase64": _base64_decode,
    "first": lambda xs: _list("first", xs)[0] if xs else None,
    "last": lambda xs: _list("last", xs)[-1] if xs else None,
    "get": _get,
    "take": lambda xs, n: _list("take", xs)[: max(0, int(_num("take", n)))],
    "keys": lambda m: list(_map_arg("keys", m).keys()),
    "values": lambda m: list(_map_arg("values", m).values()),
    "toPairs": lambda m: [[k, v] for k, v in _map_arg("toPairs", m).items()],
    "fromPairs": _from_pairs,
    "reverse": lambda xs: _list("reverse", xs)[::-1],
    "uniq": _uniq,
    "concat": lambda *xs: [item for x in xs for item in _list("concat", x)],
    "flatten": _flatten,
    "sort": _sort,
}


def _find(items: list[Any], apply: Apply, *, last: bool) -> tuple[int, Any]:
    order = range(len(items) - 1, -1, -1) if last else range(len(items))
    for i in order:
        if _pred("find", apply(items[i], i)):
            return i, items[i]
    return -1, None


def _sum(items: list[Any], apply: Apply | None, _extra: list[Any]) -> Any:
    values = [apply(x, i) if apply else x for i, x in enumerate(items)]
    return sum(_num("sum", v) for v in values)


def _count(items: list[Any], apply: Apply | None, _extra: list[Any]) -> int:
    return sum(1 for i, x in enumerate(items) if _pred("count", apply(x, i) if apply else x))


def _group_by(items: list[Any], apply: Apply, _extra: list[Any]) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for i, x in enumerate(items):
        key = apply(x, i)
        groups.setdefault(key if isinstance(key, str) else go_string(key), []).append(x)
    return groups


def _sort_by(items: list[Any], apply: Apply, extra: list[Any]) -> list[Any]:
    keyed = [(apply(x, i), x) for i, x in enumerate(items)]
    _sort([k for k, _ in keyed])  # type check only
    desc = bool(extra) and extra[0] == "desc"
    return [x for _, x in sorted(keyed, key=lambda kx: kx[0], reverse=desc)]


def _reduce(items: list[Any], apply: Apply, extra: list[Any]) -> Any:
    if extra:
        acc, start = extra[0], 0
    elif items:
        acc, start = items[0], 1
    else:
        raise EvalError("reduce of empty array with no initial value")
    for i in range(start, len(items)):
        acc = apply(items[i], i, acc)
    return acc


PREDICATE_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "all": lambda xs, f, _: all(_pred("all", f(x, i)) for i, x in enumerate(xs)),
    "any": lambda xs, f, _: any(_pred("any", f(x, i)) for i, x in enumerate(xs)),
    "none": lambda xs, f, _: not any(_pred("none", f(x, i)) for i, x in enumerate(xs)),
    "one": lambda xs, f, _: sum(1 for i, x in enumerate(xs) if _pred("one", f(x, i))) == 1,
    "filter": lambda xs, f, _: [x for i, x in enumerate(xs) if _pred("filter", f(x, i))],
    "map": lambda xs, f, _: [f(x, i) for i, x in enumerate(xs)],
    "find": lambda xs, f, _: _find(xs, f, last=False)[1],
    "findIndex": lambda xs, f, _: _find(xs, f, last=False)[0],
    "findLast": lambda xs, f, _: _find(xs, f, last=True)[1],
    "findLastIndex": lambda xs, f, _: _find(xs, f, last=True)[0],
    "count": _count,
    "sum": _sum,
    "groupBy": _group_by,
    "sortBy": _sort_by,
    "reduce": _reduce,
}
