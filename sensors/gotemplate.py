"""
A small, pure subset of Go's ``text/template`` with the Sprig functions sensors use.

Argo Events renders ``dataTemplate``/``contextTemplate`` (trigger parameters) and data filter
``template`` with Go templates over ``{"Input": <event data>}``. Called by :mod:`sensors.params`
and :mod:`sensors.filters`; :func:`render` raises :class:`TemplateError` where Go would fail.

Supported: text and ``{{ }}`` actions with ``{{-``/``-}}`` trimming and ``{{/* */}}`` comments;
fields (``.Input.body.ref``, ``$.Input``), string/raw/number/bool/nil literals, pipelines
(``x | f a``), parenthesised pipelines with field access, ``if``/``else if``/``else``,
``with``, ``range`` (no variables) and the functions in ``_FUNCS``. Not supported: variable
declarations, ``define``/``template``/``block``. Values print as Go's ``fmt.Sprint`` would print
decoded JSON (missing keys as ``<no value>``, ``map[k:v]``, ``[a b]``, ``1e+21``).

Deliberate leniency: Sprig string functions accept any value and stringify it the way Sprig's
``toString`` does, where Go would refuse a float64 argument to ``upper``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final


class TemplateError(Exception):
    """The template does not parse, or evaluating it fails (as Go's Execute would)."""


_NO_VALUE: Final = "<no value>"
_TOKEN: Final = re.compile(
    r'\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(\$?[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*|\$)'
    r"((?:\.[A-Za-z_]\w*)+|\.)?|(\.(?:[A-Za-z_]\w*)(?:\.[A-Za-z_]\w*)*|\.)|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
    r"|(\||\(|\)))"
)


@dataclass(frozen=True, slots=True)
class _Node:
    kind: str  # text | action | if | with | range
    value: Any = None
    body: tuple[_Node, ...] = ()
    orelse: tuple[_Node, ...] = ()


def render(template: str, data: Any) -> str:
    """Execute ``template`` with ``data`` as dot (and ``$``)."""
    nodes, rest = _parse_nodes(_split(template), 0, stop=())
    if rest is not None:
        raise TemplateError(f"unexpected {{{{{rest[1]}}}}}")
    out: list[str] = []
    _execute(nodes[0], data, root=data, out=out)
    return "".join(out)


def _split(template: str) -> list[tuple[str, str]]:
    """(kind, text) pieces: ("text", ...) and ("action", ...), with trim markers applied.

    Scans rather than regex-matches so that ``}}`` inside a quoted string does not end an action.
    """
    pieces: list[tuple[str, str]] = []
    pos = 0
    while (start := template.find("{{", pos)) != -1:
        opening = template[start + 2 :]
        if opening.removeprefix("- ").startswith("/*"):  # comments may hold quotes: skip to */
            closing = template.find("*/", start + 2)
            end = template.find("}}", closing) if closing != -1 else -1
            if end == -1:
                raise TemplateError("unclosed comment")
        else:
            end = _action_end(template, start + 2)
        text, body = template[pos:start], template[start + 2 : end]
        if body.startswith("- ") or body.startswith("-\t") or body.startswith("-\n"):
            text, body = text.rstrip(), body[1:]
        pos = end + 2
        if body.endswith(" -") or body.endswith("\t-") or body.endswith("\n-"):
            body = body[:-1]
            pos += len(template[pos:]) - len(template[pos:].lstrip())
        pieces.append(("text", text))
        body = body.strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            pieces.append(("action", body))
    pieces.append(("text", template[pos:]))
    return pieces


def _action_end(template: str, pos: int) -> int:
    quote = ""
    while pos < len(template):
        ch = template[pos]
        if quote:
            if ch == "\\" and quote != "`":
                pos += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"`'":
            quote = ch
        elif template.startswith("}}", pos):
            return pos
        pos += 1
    raise TemplateError("unclosed action")


def _parse_nodes(
    pieces: list[tuple[str, str]], index: int, *, stop: tuple[str, ...]
) -> tuple[tuple[tuple[_Node, ...], int], tuple[int, str] | None]:
    nodes: list[_Node] = []
    while index < len(pieces):
        kind, text = pieces[index]
        index += 1
        if kind == "text":
            if text:
                nodes.append(_Node("text", text))
            continue
        word = text.split(None, 1)[0] if text else ""
        if word in ("end", "else"):
            if word not in stop and not (word == "else" and "else" in stop):
                raise TemplateError(f"unexpected {{{{{text}}}}}")
            return (tuple(nodes), index), (index - 1, text)
        if word in ("if", "with", "range"):
            node, index = _parse_block(pieces, index, word=word, pipeline=text[len(word) :])
            nodes.append(node)
        elif word in ("define", "template", "block") or ":=" in text or re.match(r"\$\w*\s*=", text):
            raise TemplateError(f"unsupported action {{{{{text}}}}}")
        else:
            nodes.append(_Node("action", _parse_pipeline(text)))
    if stop:
        raise TemplateError("missing {{end}}")
    return (tuple(nodes), index), None


def _parse_block(pieces: list[tuple[str, str]], index: int, *, word: str, pipeline: str) -> tuple[_Node, int]:
    (body, index), ended = _parse_nodes(pieces, index, stop=("end", "else"))
    assert ended is not None
    orelse: tuple[_Node, ...] = ()
    closing = ended[1]
    if closing.startswith("else"):
        rest = closing[4:].strip()
        if rest.startswith("if ") or rest.startswith("with "):
            # `else if x` is sugar for `else` + nested `if x ... end` sharing our `end`.
            inner_word = rest.split(None, 1)[0]
            node, index = _parse_block(pieces, index, word=inner_word, pipeline=rest[len(inner_word) :])
            return _Node(word, _parse_pipeline(pipeline), body, (node,)), index
        (orelse, index), ended = _parse_nodes(pieces, index, stop=("end",))
    return _Node(word, _parse_pipeline(pipeline), body, orelse), index


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise TemplateError(f"unexpected {text[pos:].strip()[:10]!r} in {{{{{text}}}}}")
        pos = match.end()
        string, raw, ident, ident_fields, field, number, punct = match.groups()
        if string is not None:
            try:
                out.append(("lit", json.loads(string)))
            except ValueError as exc:
                raise TemplateError(f"bad string {string}") from exc
        elif raw is not None:
            out.append(("lit", raw[1:-1]))
        elif ident is not None:
            chain = [f for f in (ident_fields or "").split(".") if f]
            if ident.startswith("$"):
                out.append(("var", [f for f in ident[1:].split(".") if f] + chain))
            elif ident in ("true", "false"):
                out.append(("lit", ident == "true"))
            elif ident == "nil":
                out.append(("lit", None))
            else:
                out.append(("func", ident))
        elif field is not None:
            out.append(("field", [f for f in field.split(".") if f]))
        elif number is not None:
            out.append(("lit", float(number) if any(c in number for c in ".eE") else int(number)))
        else:
            out.append(("punct", punct))
    return out


def _parse_pipeline(text: str) -> list[list[Any]]:
    tokens = _tokens(text)
    pipeline, pos = _pipeline(tokens, 0)
    if pos != len(tokens):
        raise TemplateError(f"unexpected {tokens[pos][1]!r} in {{{{{text}}}}}")
    return pipeline


def _pipeline(tokens: list[tuple[str, Any]], pos: int) -> tuple[list[list[Any]], int]:
    commands: list[list[Any]] = [[]]
    while pos < len(tokens):
        kind, value = tokens[pos]
        if kind == "punct" and value == ")":
            break
        pos += 1
        if kind == "punct" and value == "|":
            commands.append([])
        elif kind == "punct" and value == "(":
            inner, pos = _pipeline(tokens, pos)
            if pos >= len(tokens) or tokens[pos] != ("punct", ")"):
                raise TemplateError("unclosed '('")
            pos += 1
            chain: list[str] = []
            # `(x).y` field access; the tokenizer drops spaces, so `(x) .y` reads the same.
            if pos < len(tokens) and tokens[pos][0] == "field":
                chain, pos = tokens[pos][1], pos + 1
            commands[-1].append(("sub", (inner, chain)))
        else:
            commands[-1].append((kind, value))
    if any(not c for c in commands):
        raise TemplateError("missing command in pipeline")
    return commands, pos


def _execute(nodes: tuple[_Node, ...], dot: Any, *, root: Any, out: list[str]) -> None:
    for node in nodes:
        if node.kind == "text":
            out.append(node.value)
        elif node.kind == "action":
            out.append(go_print(_run_pipeline(node.value, dot, root)))
        elif node.kind in ("if", "with"):
            value = _run_pipeline(node.value, dot, root)
            if truth(value):
                _execute(node.body, value if node.kind == "with" else dot, root=root, out=out)
            else:
                _execute(node.orelse, dot, root=root, out=out)
        else:  # range
            value = _run_pipeline(node.value, dot, root)
            items = [value[k] for k in sorted(value)] if isinstance(value, dict) else value
            if not truth(items):
                _execute(node.orelse, dot, root=root, out=out)
                continue
            if not isinstance(items, list):
                raise TemplateError(f"range can't iterate over {go_print(value)}")
            for item in items:
                _execute(node.body, item, root=root, out=out)


def _run_pipeline(pipeline: list[list[Any]], dot: Any, root: Any) -> Any:
    result: Any = _MISSING
    for command in pipeline:
        result = _run_command(command, dot, root, piped=result)
    return None if result is _MISSING else result


_MISSING: Final = object()


def _run_command(command: list[Any], dot: Any, root: Any, *, piped: Any) -> Any:
    head_kind, head = command[0]
    if head_kind == "func":
        if head not in _FUNCS:
            raise TemplateError(f'function "{head}" not defined')
        args = [_operand(op, dot, root) for op in command[1:]]
        if piped is not _MISSING:
            args.append(piped)
        try:
            return _FUNCS[head](*args)
        except TemplateError:
            raise
        except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as exc:
            raise TemplateError(f"error calling {head}: {exc}") from exc
    if len(command) > 1 or piped is not _MISSING:
        raise TemplateError(f"can't give argument to non-function {head!r}")
    return _operand(command[0], dot, root)


def _operand(op: tuple[str, Any], dot: Any, root: Any) -> Any:
    kind, value = op
    if kind == "lit":
        return value
    if kind == "field":
        return _fields(dot, value)
    if kind == "var":
        return _fields(root, value)
    if kind == "sub":
        inner, chain = value
        return _fields(_run_pipeline(inner, dot, root), chain)
    if kind == "func":
        return _run_command([op], dot, root, piped=_MISSING)
    raise TemplateError(f"unexpected {value!r}")


def _fields(value: Any, chain: list[str]) -> Any:
    for name in chain:
        if isinstance(value, dict):
            value = value.get(name)  # a missing key is the zero value: prints <no value>
        elif value is None:
            raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
        else:
            raise TemplateError(f"can't evaluate field {name} in type {_go_type(value)}")
    return value


def _go_type(value: Any) -> str:
    return {bool: "bool", str: "string", int: "int", float: "float64", list: "[]interface {}"}.get(
        type(value), "interface {}"
    )


def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings/lists/maps are false."""
    if value is None or value is _MISSING:
        return False
    if isinstance(value, bool | int | float | str | list | dict | tuple):
        return bool(value)
    return True


def go_print(value: Any) -> str:
    """``fmt.Sprint`` of a decoded JSON value."""
    if value is None or value is _MISSING:
        return _NO_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(_inner(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_inner(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _inner(value: Any) -> str:
    return "<nil>" if value is None else go_print(value)


def _go_float(value: float) -> str:
    """strconv's shortest 'g' with fmt's %v threshold: exponent form below 1e-4 or from 1e21."""
    if value != value or value in (float("inf"), float("-inf")):
        return "NaN" if value != value else ("+Inf" if value > 0 else "-Inf")
    if value == 0:
        return "0"
    number = Decimal(repr(value)).normalize()
    sign, digits, exp = number.as_tuple()
    assert isinstance(exp, int)
    exponent = exp + len(digits) - 1
    if exponent < -4 or exponent >= 21:
        rest = "".join(map(str, digits[1:]))
        mantissa = f"{'-' if sign else ''}{digits[0]}{'.' + rest if rest else ''}"
        return f"{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"
    return format(number, "f")


def _str(value: Any) -> str:
    """Sprig ``toString``: strings as is, nil as empty, everything else as fmt prints it."""
    if value is None:
        return ""
    return value if isinstance(value, str) else go_print(value)


def _substr(start: int, end: int, value: Any) -> str:
    s = _str(value)
    if start < 0:
        return s[:end]
    if end < 0 or end > len(s):
        return s[start:]
    return s[start:end]


def _trunc(n: int, value: Any) -> str:
    s = _str(value)
    if n < 0:
        return s[max(len(s) + n, 0) :]
    return s[:n]


def _default(default: Any, *given: Any) -> Any:
    return given[0] if given and truth(given[0]) else default


def _integral(value: Any) -> Any:
    """Go's encoding/json writes float64 2.0 as ``2``; make Python agree."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def _to_json(value: Any) -> str:
    text = json.dumps(_integral(value), separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _printf(fmt: str, *args: Any) -> str:
    values = iter(args)

    def sub(match: re.Match[str]) -> str:
        verb = match.group(1)
        if verb == "%":
            return "%"
        value = next(values, None)
        if verb == "q":
            return json.dumps(_str(value), ensure_ascii=False)
        if verb == "d":
            return str(int(value or 0))
        return _str(value) if verb == "s" else go_print(value)

    return re.sub(r"%([%vsdq])", sub, fmt)


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if isinstance(a, bool) != isinstance(b, bool) or isinstance(a, str) != isinstance(b, str):
            raise TemplateError("incompatible types for comparison")
        return op(a, b)

    return compare


_FUNCS: Final[dict[str, Callable[..., Any]]] = {
    # Go builtins
    "and": lambda *a: next((v for v in a if not truth(v)), a[-1]),
    "or": lambda *a: next((v for v in a if truth(v)), a[-1]),
    "not": lambda v: not truth(v),
    "len": lambda v: len(v),
    "index": lambda v, *keys: _index(v, keys),
    "print": lambda *a: "".join(_str(v) for v in a),
    "println": lambda *a: " ".join(_str(v) for v in a) + "\n",
    "printf": _printf,
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": _compare(lambda a, b: a != b),
    "lt": _compare(lambda a, b: a < b),
    "le": _compare(lambda a, b: a <= b),
    "gt": _compare(lambda a, b: a > b),
    "ge": _compare(lambda a, b: a >= b),
    # Sprig
    "upper": lambda s: _str(s).upper(),
    "lower": lambda s: _str(s).lower(),
    "title": lambda s: _str(s).title(),
    "trim": lambda s: _str(s).strip(),
    "trimAll": lambda c, s: _str(s).strip(c),
    "trimPrefix": lambda p, s: _str(s).removeprefix(p),
    "trimSuffix": lambda p, s: _str(s).removesuffix(p),
    "trunc": _trunc,
    "substr": _substr,
    "replace": lambda old, new, s: _str(s).replace(old, new),
    "repeat": lambda n, s: _str(s) * n,
    "nospace": lambda s: re.sub(r"\s", "", _str(s)),
    "contains": lambda sub, s: sub in _str(s),
    "hasPrefix": lambda p, s: _str(s).startswith(p),
    "hasSuffix": lambda p, s: _str(s).endswith(p),
    "quote": lambda *a: " ".join(json.dumps(_str(v), ensure_ascii=False) for v in a if v is not None),
    "squote": lambda *a: " ".join(f"'{_str(v)}'" for v in a if v is not None),
    "cat": lambda *a: " ".join(_str(v) for v in a if v is not None),
    "default": _default,
    "empty": lambda v: not truth(v),
    "coalesce": lambda *a: next((v for v in a if truth(v)), None),
    "ternary": lambda yes, no, cond: yes if cond else no,
    "toString": _str,
    "toJson": _to_json,
    "toRawJson": lambda v: json.dumps(_integral(v), separators=(",", ":"), ensure_ascii=False),
    "toPrettyJson": lambda v: json.dumps(v, indent=2, ensure_ascii=False),
    "fromJson": lambda s: json.loads(_str(s)),
    "b64enc": lambda s: base64.b64encode(_str(s).encode()).decode(),
    "b64dec": lambda s: base64.b64decode(_str(s)).decode(),
    "sha1sum": lambda s: hashlib.sha1(_str(s).encode()).hexdigest(),
    "sha256sum": lambda s: hashlib.sha256(_str(s).encode()).hexdigest(),
    "splitList": lambda sep, s: _str(s).split(sep),
    "join": lambda sep, v: sep.join(_str(x) for x in v),
    "first": lambda v: v[0] if v else None,
    "last": lambda v: v[-1] if v else None,
    "list": lambda *a: list(a),
    "dict": lambda *a: {str(a[i]): a[i + 1] if i + 1 < len(a) else "" for i in range(0, len(a), 2)},
    "get": lambda d, k: d.get(k, ""),
    "hasKey": lambda d, k: k in d,
    "regexMatch": lambda pattern, s: re.search(pattern, _str(s)) is not None,
    "regexFind": lambda pattern, s: m.group(0) if (m := re.search(pattern, _str(s))) else "",
    # Go's ${1} group references become Python's \\1.
    "regexReplaceAll": lambda pattern, s, repl: re.sub(
        pattern, re.sub(r"\$\{?(\d+)\}?", r"\\\1", repl), _str(s)
    ),
    "int": lambda v: int(float(v)) if v not in (None, "") else 0,
    "int64": lambda v: int(float(v)) if v not in (None, "") else 0,
    "float64": lambda v: float(v) if v not in (None, "") else 0.0,
    "atoi": lambda s: int(s) if str(s).lstrip("-").isdigit() else 0,
    "add": lambda *a: sum(int(x) for x in a),
    "sub": lambda a, b: int(a) - int(b),
    "mul": lambda a, b: int(a) * int(b),
    "div": lambda a, b: int(int(a) / int(b)),
    "mod": lambda a, b: int(a) % int(b),
    "indent": lambda n, s: "\n".join(" " * n + line for line in _str(s).split("\n")),
    "nindent": lambda n, s: "\n" + "\n".join(" " * n + line for line in _str(s).split("\n")),
}


def _index(value: Any, keys: tuple[Any, ...]) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list):
            if not isinstance(key, int) or not 0 <= key < len(value):
                raise TemplateError(f"index out of range: {key}")
            value = value[key]
        else:
            raise TemplateError(f"can't index item of type {_go_type(value)}")
    return value
