"""
JSON text on the hot paths: every stored event, workflow node and JSON log line goes through here.

Callers: the stores (:mod:`workflows.store`), the event log and its events (``sensors.events``,
``gittrigger.eventlog``), webhook body decoding (``gittrigger.sources.envelope``) and the JSON
log renderer (``gittrigger.logs``).

orjson does the work (encoding a push event takes a tenth of the standard library's time, decoding
a third), and the standard library takes over wherever orjson's answer would differ from its own:

- :func:`dumps` is ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``: compact,
  UTF-8 text. Values orjson refuses (non-string keys, integers beyond 64 bits, strings with lone
  surrogates, nesting deeper than 254, unknown types) are encoded by the standard library, and
  datetimes and dataclasses go to ``default`` as they would there. The one textual difference
  is the spelling of some floats (``1e16`` for ``1e+16``), which parses to the same number.
  Non-finite floats (which the standard library writes as the non-JSON ``NaN``) come out as
  ``null``: :func:`loads` never produces them.
- :func:`loads` is ``json.loads`` for JSON documents, except that ``NaN``, ``Infinity`` and
  numbers too large for a double are refused (they are not JSON; Go, and so Argo, refuses them
  too). Errors are the standard library's ``JSONDecodeError`` (or ``UnicodeDecodeError`` for
  bytes that are not UTF-8), with its line and column.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, Final

import orjson

_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# Integers of 19 digits or more are read by the standard library (orjson would round them).
_NINES: Final = bytes.maketrans(b"012345678", b"999999999")
_NINETEEN: Final = b"9" * 19
_BEFORE_NUMBER: Final = frozenset(b":,[")
_BLANK_OR_SIGN: Final = frozenset(b" \t\r\n-")


def dumps(value: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """Compact JSON text of ``value`` (see the module docstring); TypeError/ValueError as json.dumps."""
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError too: the standard library decides, and explains
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=default)


def loads(data: str | bytes | bytearray, *, lenient: bool = False) -> Any:
    """The JSON document in ``data`` (see the module docstring); raises ValueError (mostly
    json.JSONDecodeError, with line and column).

    ``lenient``: also read ``NaN``, ``Infinity`` and huge numbers as the standard library does,
    for text this project wrote itself: earlier versions stored what the standard library's
    encoder writes, and what is stored must stay readable.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if not _long_integer(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the standard library's verdict, and its message, below
    if lenient:
        return json.loads(data)
    return json.loads(data, parse_constant=_not_json, parse_float=_finite)


def _long_integer(raw: bytes | bytearray) -> bool:
    """Whether ``raw`` may hold an integer token of 19+ digits.

    Runs of 19 digits are found at C speed (every digit made a 9, then a substring search: a
    regex scan cost more than orjson's whole parse); a run counts when what precedes it, past
    blanks and a sign, opens a value (``:``, ``,``, ``[`` or the document's start), so the all-zero
    SHA of a new branch's push (a string) does not. Inside a string that merely looks like that,
    the answer is a harmless yes.
    """
    nines = raw.translate(_NINES)
    at = nines.find(_NINETEEN)
    while at >= 0:
        before = at - 1
        while before >= 0 and raw[before] in _BLANK_OR_SIGN:
            before -= 1
        if before < 0 or raw[before] in _BEFORE_NUMBER:
            return True
        end = at + len(_NINETEEN)
        while end < len(nines) and nines[end] == 0x39:  # to the end of this run
            end += 1
        at = nines.find(_NINETEEN, end)
    return False


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} is out of range")
    return value
