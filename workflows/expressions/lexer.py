"""
Tokenizer for expr-lang (antonmedv/expr), the language of Argo's ``{{= }}`` tags.

Called only by :mod:`workflows.expressions.exprparse`. Numbers keep Go's distinction
between int and float (``1`` vs ``1.0``) because expr's ``/`` and ``toJson`` depend on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from workflows.expressions.failures import EvalError

_WORD_OPERATORS: Final = frozenset(
    {"and", "or", "not", "in", "matches", "contains", "startsWith", "endsWith"}
)
# Longest first, so "**" wins over "*" and "?." over "?".
_SYMBOLS: Final = (
    "...", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "**", "..",
    "+", "-", "*", "/", "%", "^", "<", ">", "!", "?", ":", ".", ",", "|",
    "(", ")", "[", "]", "{", "}",
)
_NUMBER: Final = re.compile(
    r"0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+"
    r"|(?:\d[\d_]*)(?:\.(?!\.)\d[\d_]*)?(?:[eE][+-]?\d+)?"
)
_IDENT: Final = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_POINTER: Final = re.compile(r"#[A-Za-z_][A-Za-z0-9_]*|#")
_SIMPLE_ESCAPES: Final = {
    "n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
    "\\": "\\", "'": "'", '"': '"', "`": "`",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """One token: ``kind`` is num, str, ident, op, pointer or eof; ``value`` is its text or value."""

    kind: str
    value: str | int | float
    pos: int


def _unescape(body: str, pos: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1 : i + 2]
        if nxt in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[nxt])
            i += 2
        elif nxt in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise EvalError(f"invalid char escape at position {pos + i}")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif nxt.isdigit():
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or not all(c in "01234567" for c in digits):
                raise EvalError(f"invalid char escape at position {pos + i}")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise EvalError(f"invalid char escape at position {pos + i}")
    return "".join(out)


def _number(text: str, pos: int) -> Token:
    clean = text.replace("_", "")
    try:
        if clean[:2].lower() in ("0x", "0o", "0b"):
            return Token(kind="num", value=int(clean, 0), pos=pos)
        if any(c in clean for c in ".eE"):
            return Token(kind="num", value=float(clean), pos=pos)
        return Token(kind="num", value=int(clean), pos=pos)
    except ValueError:
        raise EvalError(f"invalid number {text!r} at position {pos}") from None


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens, ending with an ``eof`` token; bad input raises EvalError."""
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        if ch.isdigit():
            m = _NUMBER.match(source, i)
            assert m is not None  # a digit always matches
            tokens.append(_number(m.group(), i))
            i = m.end()
            continue
        if ch in "'\"`":
            end = i + 1
            while end < n and source[end] != ch:
                end += 2 if source[end] == "\\" and ch != "`" else 1
            if end >= n:
                raise EvalError(f"literal not terminated at position {i}")
            body = source[i + 1 : end]
            tokens.append(Token(kind="str", value=body if ch == "`" else _unescape(body, i + 1), pos=i))
            i = end + 1
            continue
        if ch == "#":
            m = _POINTER.match(source, i)
            assert m is not None
            tokens.append(Token(kind="pointer", value=m.group()[1:], pos=i))
            i = m.end()
            continue
        m = _IDENT.match(source, i)
        if m:
            word = m.group()
            tokens.append(Token(kind="op" if word in _WORD_OPERATORS else "ident", value=word, pos=i))
            i = m.end()
            continue
        for sym in _SYMBOLS:
            if source.startswith(sym, i):
                tokens.append(Token(kind="op", value=sym, pos=i))
                i += len(sym)
                break
        else:
            raise EvalError(f"unexpected token {ch!r} at position {i}")
    tokens.append(Token(kind="eof", value="", pos=n))
    return tokens
