"""Table tests for JSONPath, the sprig namespace and Go-compatible value text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from workflows.errors import ExpressionError
from workflows.expressions import evaluate, go_string, jsonpath_query, to_json
from workflows.expressions.functions import ARGO_FUNCTIONS
from workflows.expressions.gotime import format_go

EMPLOYEES = (
    '{"employees": [{"name": "Baris", "age":43},{"name": "Mo", "age": 42}, {"name": "Jai", "age" :44}]}'
)

JSONPATH = [
    ("definite-key", '{"a": "1", "b": "2"}', "$.a", "1"),
    ("filter-eq", EMPLOYEES, '$.employees[?(@.name=="Baris")].age', [43.0]),
    ("filter-and", EMPLOYEES, "$.employees[?(@.age>42 && @.age<44)].age", [43.0]),
    ("range", EMPLOYEES, "$.employees[0:1]", [{"name": "Baris", "age": 43.0}]),
    ("wildcard", EMPLOYEES, "$.employees[*].name", ["Baris", "Mo", "Jai"]),
    ("recursive", EMPLOYEES, "$..name", ["Baris", "Mo", "Jai"]),
    ("bracket-key", EMPLOYEES, "$['employees'][1]['name']", "Mo"),
    ("negative-index", EMPLOYEES, "$.employees[-1].name", "Jai"),
    ("union", EMPLOYEES, "$.employees[0,2].age", [43.0, 44.0]),
    ("length", EMPLOYEES, "$.employees.length", 3.0),
    ("root-array", '[{"value": "true"}]', "$[0].value", "true"),
    ("filter-regex", EMPLOYEES, "$.employees[?(@.name =~ /^J/)].age", [44.0]),
    ("filter-empty", EMPLOYEES, "$.employees[?(@.age > 99)]", []),
    ("root", '{"a": 1}', "$", {"a": 1.0}),
]


@pytest.mark.parametrize(("doc", "path", "expected"), [c[1:] for c in JSONPATH], ids=[c[0] for c in JSONPATH])
def test_jsonpath(doc: str, path: str, expected: Any) -> None:
    """Definite paths give the value; wildcards, ranges, filters and ``..`` give lists."""
    assert expected == jsonpath_query(doc, path)


@pytest.mark.parametrize(("doc", "path", "fragment"), [
    ('{"a": 1}', "$.b", "key 'b' not found"),
    ('[1]', "$[3]", "out of range"),
    ('{"a": 1}', "a", "must start with '$'"),
    ('{"a": 1}', "$[", "unclosed"),
    ("{", "$.a", "invalid JSON"),
], ids=["missing-key", "index-range", "no-root", "unclosed", "bad-json"])
def test_jsonpath_errors(doc: str, path: str, fragment: str) -> None:
    """Bad paths and documents raise ExpressionError."""
    with pytest.raises(ExpressionError) as info:
        jsonpath_query(doc, path)
    assert fragment in str(info.value)


ENV: dict[str, Any] = {**ARGO_FUNCTIONS, "ts": "2024-03-05T14:07:09Z"}

SPRIG = [
    ("trim", "sprig.trim('  a ')", "a"),
    ("trimAll", "sprig.trimAll('$', '$5.00$')", "5.00"),
    ("trimPrefix", "sprig.trimPrefix('v', 'v1.2')", "1.2"),
    ("trimSuffix", "sprig.trimSuffix('.git', 'repo.git')", "repo"),
    ("upper", "sprig.upper('ab')", "AB"),
    ("lower", "sprig.lower('AB')", "ab"),
    ("title", "sprig.title('hello world')", "Hello World"),
    ("replace", "sprig.replace(' ', '-', 'a b c')", "a-b-c"),
    ("repeat", "sprig.repeat(3, 'ab')", "ababab"),
    ("substr", "sprig.substr(1, 3, 'hello')", "el"),
    ("trunc", "sprig.trunc(3, 'hello')", "hel"),
    ("trunc-negative", "sprig.trunc(-3, 'hello')", "llo"),
    ("contains", "sprig.contains('ell', 'hello')", True),
    ("hasPrefix", "sprig.hasPrefix('he', 'hello')", True),
    ("hasSuffix", "sprig.hasSuffix('lo', 'hello')", True),
    ("quote", "sprig.quote('a\"b')", '"a\\"b"'),
    ("squote", "sprig.squote('a')", "'a'"),
    ("cat", "sprig.cat('a', 1, nil, 'b')", "a 1 b"),
    ("join", "sprig.join('-', ['a', 1])", "a-1"),
    ("split", "sprig.split('$', 'a$b')", {"_0": "a", "_1": "b"}),
    ("splitList", "sprig.splitList(',', 'a,b')", ["a", "b"]),
    ("list", "sprig.list(1, 'a')", [1, "a"]),
    ("dict", "sprig.dict('a', 1, 'b')", {"a": 1, "b": ""}),
    ("default-used", "sprig.default('d', '')", "d"),
    ("default-given", "sprig.default('d', 'x')", "x"),
    ("empty", "sprig.empty(0)", True),
    ("coalesce", "sprig.coalesce('', nil, 'c')", "c"),
    ("toString", "sprig.toString(1.5)", "1.5"),
    ("toJson", "sprig.toJson({a: [1]})", '{"a":[1]}'),
    ("fromJson", "sprig.fromJson('{\"a\": 1}').a", 1.0),
    ("atoi", "sprig.atoi('42')", 42),
    ("atoi-bad-is-zero", "sprig.atoi('x')", 0),
    ("int", "sprig.int('7')", 7),
    ("int64-float-string", "sprig.int64('3.0')", 3),
    ("float64", "sprig.float64('2.5')", 2.5),
    ("add", "sprig.add(1, '2', 3.9)", 6),
    ("sub", "sprig.sub(5, 7)", -2),
    ("mul", "sprig.mul(2, 3, 4)", 24),
    ("div-truncates", "sprig.div(-7, 2)", -3),
    ("mod", "sprig.mod(7, 3)", 1),
    ("max", "sprig.max(1, 9, 3)", 9),
    ("min", "sprig.min(4, 2, 8)", 2),
    ("round", "sprig.round(3.14159, 2)", 3.14),
    ("b64enc", "sprig.b64enc('hi')", "aGk="),
    ("b64dec", "sprig.b64dec('aGk=')", "hi"),
    ("date-string", "sprig.date('2006-01-02', ts)", "2024-03-05"),
    ("regexMatch", "sprig.regexMatch('^v[0-9]+$', 'v12')", True),
    ("regexFind", "sprig.regexFind('[0-9]+', 'ab12cd34')", "12"),
    ("regexFindAll", "sprig.regexFindAll('[0-9]+', 'ab12cd34', -1)", ["12", "34"]),
    ("regexReplaceAll", "sprig.regexReplaceAll('a(x*)b', '-ab-axxb-', '${1}W')", "-W-xxW-"),
    ("sha256sum", "sprig.sha256sum('')", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("first", "sprig.first([1, 2])", 1),
    ("last", "sprig.last([1, 2])", 2),
    ("len", "sprig.len('abc')", 3),
    ("uuidv4-shape", "len(sprig.uuidv4())", 36),
    ("randAlphaNum-length", "len(sprig.randAlphaNum(8))", 8),
    ("now-is-a-time", "sprig.date('2006', sprig.now()) >= '2024'", True),
]


@pytest.mark.parametrize(("source", "expected"), [c[1:] for c in SPRIG], ids=[c[0] for c in SPRIG])
def test_sprig(source: str, expected: Any) -> None:
    """sprig functions take sprig's argument order and spf13/cast number rules."""
    result = evaluate(source, ENV)
    assert expected == result
    assert type(expected) is type(result)


@pytest.mark.parametrize(("value", "json", "text"), [
    (3.0, "3", "3"),
    (35.8, "35.8", "35.8"),
    (1e21, "1e+21", "1e+21"),
    (1234567.0, "1234567", "1.234567e+06"),
    (1e-7, "1e-7", "1e-07"),
    ({"b": 1, "a": [True, None]}, '{"a":[true,null],"b":1}', "map[a:[true <nil>] b:1]"),
    ("<a&b>", '"\\u003ca\\u0026b\\u003e"', "<a&b>"),
    ("line\nbreak", '"line\\nbreak"', "line\nbreak"),
], ids=["whole-float", "float", "huge", "million", "tiny", "map", "html", "newline"])
def test_go_text(value: Any, json: str, text: str) -> None:
    """Values print as Go's json.Marshal and fmt %v would."""
    assert json == to_json(value)
    assert text == go_string(value)


def test_go_time_layout() -> None:
    """Go reference-time layouts format like time.Format."""
    moment = datetime(2024, 3, 5, 14, 7, 9, 120000, tzinfo=UTC)
    assert format_go("2006-01-02T15:04:05Z07:00", moment) == "2024-03-05T14:07:09Z"
    assert format_go("Mon Jan _2 3:04PM .000", moment) == "Tue Mar  5 2:07PM .120"
