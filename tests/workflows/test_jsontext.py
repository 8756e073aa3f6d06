"""JSON text: the standard library's answers, faster; the few differences are the documented ones."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from workflows import jsontext


def _std(value: Any, default: Any = None) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=default)


@dataclasses.dataclass
class _Point:
    x: int


SAME_AS_STDLIB = [
    ({"a": 1, "b": [1, 2.5, None, True, False], "c": {"d": "e"}}, "plain"),
    ({"z": 1, "a": 2}, "key-order-kept"),
    ({"msg": "café ✓ \u2028 \"quoted\" \\ \n\t"}, "unicode-and-escapes"),
    ({"control": "\x00\x1f\x7f"}, "control-characters"),
    ((1, (2, 3)), "tuples-as-arrays"),
    ({1: "int-key"}, "non-string-key-falls-back"),
    ({"big": 2**64, "neg": -(2**63) - 1}, "integers-beyond-64-bits-fall-back"),
    ({"max": 2**63 - 1, "umax": 2**64 - 1, "min": -(2**63)}, "64-bit-limits"),
    ({"s": "\ud800"}, "lone-surrogate-falls-back"),
    (json.loads("[" * 60 + "]" * 60), "nested"),
    (json.loads("[" * 300 + "]" * 300), "deeper-than-orjson-falls-back"),
    ({"f": 0.1, "g": -1.5, "i": 123.456, "j": 1e300}, "floats"),
    ("", "empty-string"),
    ([], "empty-list"),
]


@pytest.mark.parametrize(("value", "case"), SAME_AS_STDLIB, ids=[c for _, c in SAME_AS_STDLIB])
def test_dumps_writes_what_the_standard_library_writes(value: Any, case: str) -> None:
    assert jsontext.dumps(value) == _std(value)
    assert json.loads(jsontext.dumps(value)) == json.loads(_std(value))


@pytest.mark.parametrize(
    "value",
    [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), _Point(x=1), uuid.UUID(int=5), {1, 2}],
    ids=["datetime", "dataclass", "uuid", "set"],
)
def test_dumps_hands_unknown_types_to_default_as_the_standard_library_does(value: Any) -> None:
    assert jsontext.dumps({"v": value}, default=str) == _std({"v": value}, default=str)
    if not isinstance(value, uuid.UUID):  # a UUID is the one type orjson writes itself (str(uuid))
        with pytest.raises(TypeError):
            jsontext.dumps({"v": value})


def test_dumps_floats_parse_to_the_same_number_though_spelled_differently() -> None:
    value = {"a": 1e16, "b": 1.5e300, "c": 1e-7}
    assert json.loads(jsontext.dumps(value)) == value


SAME_DOCUMENT = [
    (b'{"a": 1, "a": 2}', "duplicate-keys-last-wins"),
    (b'{"z": [1, 2.0, -0, 1e-3, true, null], "y": "\\u00e9\\n"}', "plain"),
    (b'{"id": 1234567890123456789012}', "long-integer-stays-exact"),
    (b'{"id": 9223372036854775807}', "int64-max-exact"),
    (b"123456789012345678901234", "long-integer-document"),
    (b"  \n 123456789012345678901234", "long-integer-document-after-blanks"),
    (b'{"msg": "x: 1234567890123456789012 y", "sha": "' + b"0" * 40 + b'"}', "digit-runs-inside-strings"),
    (b'{"a": 1.12345678901234567890123, "b": 12345678901234567890.5}', "long-mantissas-are-floats"),
    (b'[1,\n  -123456789012345678901234]', "long-negative-integer-in-array-after-newline"),
    ('{"s": "caf\u00e9"}', "str-input"),
    (b'{"s": "\\ud83d\\ude00"}', "surrogate-pair"),
    (b'{"s": "\\ud800"}', "lone-surrogate-as-the-standard-library-reads-it"),
    (b"  [1]  ", "whitespace"),
]


@pytest.mark.parametrize(("text", "case"), SAME_DOCUMENT, ids=[c for _, c in SAME_DOCUMENT])
def test_loads_reads_what_the_standard_library_reads(text: str | bytes, case: str) -> None:
    got = jsontext.loads(text)
    assert got == json.loads(text)
    assert _std(got) == _std(json.loads(text))  # same types too (an exact int is not a float)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"a": NaN}', "NaN is not a JSON value"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON value"),
        (b'{"a": 1e400}', "out of range"),
        (b'{"a": 1,}', "Expecting property name enclosed in double quotes: line 1 column 9"),
        (b"", "Expecting value: line 1 column 1"),
        (b'{"a": 1} x', "Extra data: line 1 column 10"),
    ],
    ids=["nan", "infinity", "too-large-for-a-double", "trailing-comma", "empty", "extra-data"],
)
def test_loads_refuses_what_is_not_json_with_the_standard_librarys_message(text: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        jsontext.loads(text)


def test_loads_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(UnicodeDecodeError):
        jsontext.loads(b'{"a": "\xff"}')


def test_lenient_loads_reads_what_earlier_versions_stored() -> None:
    """The standard library's encoder wrote NaN and Infinity: stored text must stay readable."""
    stored = json.dumps({"a": float("inf"), "b": [1.5]})
    assert jsontext.loads(stored, lenient=True) == {"a": float("inf"), "b": [1.5]}
    with pytest.raises(ValueError, match="Infinity is not a JSON value"):
        jsontext.loads(stored)


def test_digits_inside_strings_do_not_cost_the_slow_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """A push's all-zero "before" SHA is a string, not a long integer: orjson reads it."""
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the standard library parser was used")

    monkeypatch.setattr(jsontext.json, "loads", refuse)
    assert jsontext.loads(b'{"before": "' + b"0" * 40 + b'", "n": 12}') == {"before": "0" * 40, "n": 12}
