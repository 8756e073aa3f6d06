"""
The commonly used Masterminds/sprig functions, as Argo exposes them under ``sprig.`` in expr.

Built into the expression environment by :mod:`workflows.expressions.functions`. Argument
order follows sprig (made for template pipelines): ``sprig.replace(old, new, src)``,
``sprig.trimPrefix(prefix, s)``. Numbers follow spf13/cast: unparsable strings become 0.
Times are formatted in UTC (the controller's zone in our deployments).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import secrets
import string
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from workflows.expressions.failures import EvalError
from workflows.expressions.goformat import from_json, go_string, to_json
from workflows.expressions.gotime import format_go, parse_rfc3339
from workflows.expressions.values import is_list, is_number

_GO_TEMPLATE_REF: Final = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def strval(value: Any) -> str:
    """sprig's ``strval``: strings as they are, anything else as ``%v``."""
    return value if isinstance(value, str) else go_string(value)


def to_int64(value: Any) -> int:
    """spf13/cast ``ToInt64``: numbers truncate, bools are 0/1, bad strings are 0."""
    if isinstance(value, bool):
        return int(value)
    if is_number(value):
        return int(value) if math.isfinite(value) else 0
    if isinstance(value, str):
        text = re.sub(r"\.0*$", "", value) if "." in value else value  # cast's trimZeroDecimal
        try:
            return int(text, 0)
        except ValueError:
            return 0
    return 0


def to_float64(value: Any) -> float:
    """spf13/cast ``ToFloat64``: bad strings are 0."""
    if isinstance(value, bool):
        return float(value)
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


def empty(value: Any) -> bool:
    """sprig ``empty``: nil, zero numbers, false, "" and empty collections."""
    if value is None or value is False:
        return True
    if is_number(value):
        return bool(value == 0)
    if isinstance(value, str | list | tuple | Mapping):
        return len(value) == 0
    return False


def _list_of(value: Any) -> list[Any]:
    if value is None:
        return []
    if is_list(value):
        return list(value)
    raise EvalError(f"cannot find first on type {type(value).__name__}")


def _to_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if is_number(value):
        return datetime.fromtimestamp(int(value), tz=UTC)
    if isinstance(value, str) and (parsed := parse_rfc3339(value)) is not None:
        return parsed
    if isinstance(value, Mapping) and isinstance(value.get("RFC3339"), str):
        # Argo's scope also holds workflow.creationTimestamp.<fmt> keys, so the expanded env
        # turns creationTimestamp into a map; its RFC3339 entry carries the time.
        parsed = parse_rfc3339(value["RFC3339"])
        if parsed is not None:
            return parsed
    return datetime.now(UTC)  # sprig's behaviour for anything it does not recognise


def _date(layout: Any, value: Any) -> str:
    return format_go(strval(layout), _to_time(value).astimezone(UTC))


def _regex(pattern: Any) -> re.Pattern[str]:
    try:
        return re.compile(strval(pattern))
    except re.error as exc:
        raise EvalError(f"error parsing regexp: {exc}") from None


def _go_expand(repl: str) -> str:
    """Go regexp ``$1``/``${name}`` replacement syntax to Python's ``\\g<1>``."""
    escaped = repl.replace("\\", "\\\\").replace("$$", "\0")
    return _GO_TEMPLATE_REF.sub(lambda m: f"\\g<{m.group(1) or m.group(2)}>", escaped).replace("\0", "$")


def _regex_find_all(pattern: Any, s: Any, n: Any) -> list[str]:
    found = [m.group() for m in _regex(pattern).finditer(strval(s))]
    limit = to_int64(n)
    return found if limit < 0 else found[:limit]


def _substr(start: Any, end: Any, s: Any) -> str:
    text, lo, hi = strval(s), to_int64(start), to_int64(end)
    if lo < 0:
        return text[:hi]
    if hi < 0 or hi > len(text):
        return text[lo:]
    return text[lo:hi]


def _trunc(count: Any, s: Any) -> str:
    text, c = strval(s), to_int64(count)
    if c < 0 and len(text) + c > 0:
        return text[len(text) + c :]
    return text[:c] if c >= 0 and len(text) > c else text


def _round(value: Any, precision: Any, round_on: Any = 0.5) -> float:
    scale = 10 ** to_int64(precision)
    digit = to_float64(value) * scale
    whole = math.trunc(digit)
    result = math.ceil(digit) if digit - whole >= to_float64(round_on) else math.floor(digit)
    return float(result / scale)


def _dict(*args: Any) -> dict[str, Any]:
    if len(args) % 2:
        args = (*args, "")
    return {strval(args[i]): args[i + 1] for i in range(0, len(args), 2)}


def _b64dec(s: Any) -> str:
    try:
        return base64.b64decode(strval(s), validate=False).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        return str(exc)  # sprig returns the error text instead of failing


def _rand_alpha_num(n: Any) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(max(0, to_int64(n))))


def _int_reduce(name: str, first: Any, rest: tuple[Any, ...]) -> int:
    values = [to_int64(v) for v in (first, *rest)]
    return max(values) if name == "max" else min(values)


def _div(a: Any, b: Any) -> int:
    divisor = to_int64(b)
    if divisor == 0:
        raise EvalError("integer divide by zero")
    return int(to_int64(a) / divisor)  # Go truncates toward zero


def _mod(a: Any, b: Any) -> int:
    divisor = to_int64(b)
    if divisor == 0:
        raise EvalError("integer divide by zero")
    return int(math.fmod(to_int64(a), divisor))


def _title(s: Any) -> str:
    return re.sub(r"(^|\s)(\S)", lambda m: m.group(1) + m.group(2).upper(), strval(s))


def _join(sep: Any, value: Any) -> str:
    items = value if is_list(value) else [value]
    return strval(sep).join(strval(v) for v in items if v is not None)


def _go_quote(text: str) -> str:
    """Go ``%q`` for ordinary text: backslash escapes, no HTML escaping (unlike JSON)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r") + '"'


def _mul(a: Any, *rest: Any) -> int:
    product = to_int64(a)
    for value in rest:
        product *= to_int64(value)
    return product


FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    # strings
    "trim": lambda s: strval(s).strip(),
    "trimAll": lambda cutset, s: strval(s).strip(strval(cutset)),
    "trimPrefix": lambda prefix, s: strval(s).removeprefix(strval(prefix)),
    "trimSuffix": lambda suffix, s: strval(s).removesuffix(strval(suffix)),
    "upper": lambda s: strval(s).upper(),
    "lower": lambda s: strval(s).lower(),
    "title": _title,
    "replace": lambda old, new, src: strval(src).replace(strval(old), strval(new)),
    "repeat": lambda count, s: strval(s) * max(0, to_int64(count)),
    "substr": _substr,
    "trunc": _trunc,
    "contains": lambda sub, s: strval(sub) in strval(s),
    "hasPrefix": lambda prefix, s: strval(s).startswith(strval(prefix)),
    "hasSuffix": lambda suffix, s: strval(s).endswith(strval(suffix)),
    "quote": lambda *xs: " ".join(_go_quote(strval(x)) for x in xs if x is not None),
    "squote": lambda *xs: " ".join(f"'{strval(x)}'" for x in xs if x is not None),
    "cat": lambda *xs: " ".join(strval(x) for x in xs if x is not None),
    "nospace": lambda s: re.sub(r"\s", "", strval(s)),
    "indent": lambda n, s: "\n".join(" " * to_int64(n) + line for line in strval(s).split("\n")),
    "nindent": lambda n, s: "\n" + "\n".join(" " * to_int64(n) + line for line in strval(s).split("\n")),
    "join": _join,
    "split": lambda sep, s: {f"_{i}": part for i, part in enumerate(strval(s).split(strval(sep)))},
    "splitList": lambda sep, s: strval(s).split(strval(sep)),
    "toString": strval,
    "toStrings": lambda xs: [strval(x) for x in _list_of(xs)],
    # collections
    "list": lambda *xs: list(xs),
    "dict": _dict,
    "first": lambda xs: (_list_of(xs) or [None])[0],
    "last": lambda xs: (_list_of(xs) or [None])[-1],
    "rest": lambda xs: _list_of(xs)[1:],
    "initial": lambda xs: _list_of(xs)[:-1],
    "has": lambda needle, xs: any(x == needle for x in _list_of(xs)),
    "hasKey": lambda d, key: isinstance(d, Mapping) and strval(key) in d,
    "get": lambda d, key: d.get(strval(key), "") if isinstance(d, Mapping) else "",
    "keys": lambda *ds: [k for d in ds if isinstance(d, Mapping) for k in d],
    "len": lambda v: len(v) if isinstance(v, str | list | tuple | Mapping) else 0,
    # defaults and flow
    "default": lambda d, *given: d if not given or empty(given[0]) else given[0],
    "empty": empty,
    "coalesce": lambda *xs: next((x for x in xs if not empty(x)), None),
    "ternary": lambda t, f, cond: t if cond is True else f,
    # encodings
    "toJson": to_json,
    "toPrettyJson": lambda v: to_json(v, indent="  "),
    "fromJson": lambda s: _from_json_or_nil(strval(s)),
    "b64enc": lambda s: base64.b64encode(strval(s).encode()).decode(),
    "b64dec": _b64dec,
    "sha256sum": lambda s: hashlib.sha256(strval(s).encode()).hexdigest(),
    "sha1sum": lambda s: hashlib.sha1(strval(s).encode()).hexdigest(),
    # numbers
    "atoi": to_int64,
    "int": to_int64,
    "int64": to_int64,
    "float64": to_float64,
    "add": lambda *xs: sum(to_int64(x) for x in xs),
    "add1": lambda x: to_int64(x) + 1,
    "sub": lambda a, b: to_int64(a) - to_int64(b),
    "mul": _mul,
    "div": _div,
    "mod": _mod,
    "max": lambda a, *rest: _int_reduce("max", a, rest),
    "min": lambda a, *rest: _int_reduce("min", a, rest),
    "floor": lambda x: float(math.floor(to_float64(x))),
    "ceil": lambda x: float(math.ceil(to_float64(x))),
    "round": _round,
    # dates
    "now": lambda: datetime.now(UTC),
    "date": _date,
    "dateInZone": lambda layout, value, _zone: _date(layout, value),
    "unixEpoch": lambda value: str(int(_to_time(value).timestamp())),
    # regular expressions (Go RE2 syntax is, for common patterns, Python's)
    "regexMatch": lambda pattern, s: _regex(pattern).search(strval(s)) is not None,
    "regexFind": lambda pattern, s: (m.group() if (m := _regex(pattern).search(strval(s))) else ""),
    "regexFindAll": _regex_find_all,
    "regexReplaceAll": lambda pattern, s, repl: _regex(pattern).sub(_go_expand(strval(repl)), strval(s)),
    "regexReplaceAllLiteral": lambda pattern, s, repl: _regex(pattern).sub(lambda _: strval(repl), strval(s)),
    # randomness
    "uuidv4": lambda: str(uuid.uuid4()),
    "randAlphaNum": _rand_alpha_num,
}


def _from_json_or_nil(text: str) -> Any:
    try:
        return from_json(text)
    except EvalError:
        return None  # sprig ignores the unmarshal error
