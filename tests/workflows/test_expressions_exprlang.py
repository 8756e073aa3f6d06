"""Table tests for the expr-lang evaluator, its builtins and Argo's added functions."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.errors import ExpressionError
from workflows.expressions import evaluate
from workflows.expressions.functions import ARGO_FUNCTIONS

ENV: dict[str, Any] = {
    **ARGO_FUNCTIONS,
    "s": "hello",
    "n": "5",
    "xs": [1, 2, 3],
    "users": [{"name": "ann", "age": 30.0}, {"name": "bob", "age": 17.0}],
    "m": {"a": 1, "b-c": 2, "none": None},
    "inputs": {"parameters": {"my-param": "v", "flag": "true"}},
    "steps": {"flip-coin": {"outputs": {"result": "heads"}}, "heads": {"outputs": {"result": "H"}}},
    "nil_value": None,
}

CASES = [
    ("nil", "nil", None),
    ("true", "true", True),
    ("int", "42", 42),
    ("hex", "0x1F", 31),
    ("underscore-int", "1_000", 1000),
    ("float", "1.5", 1.5),
    ("exp-float", "1e3", 1000.0),
    ("single-quoted", "'a\\'b'", "a'b"),
    ("double-quoted-escapes", '"a\\n\\t\\u00e9"', "a\n\té"),
    ("backtick-raw", "`a\\n`", "a\\n"),
    ("array", "[1, 'a', nil]", [1, "a", None]),
    ("map-literal", '{a: 1, "b": 2}', {"a": 1, "b": 2}),
    ("member", "m.a", 1),
    ("member-bracket", 'm["b-c"]', 2),
    ("member-missing-is-nil", "m.zzz", None),
    ("index", "xs[0]", 1),
    ("negative-index", "xs[-1]", 3),
    ("slice", "xs[1:3]", [2, 3]),
    ("slice-open", "xs[:2]", [1, 2]),
    ("slice-string", "s[1:]", "ello"),
    ("optional-chain", "nil_value?.x", None),
    ("optional-chain-deep", "nil_value?.x.y.z", None),
    ("coalesce-nil", "nil_value ?? 'd'", "d"),
    ("coalesce-missing-key", "m.zzz ?? 'd'", "d"),
    ("coalesce-empty-string-kept", "'' ?? 'd'", ""),
    ("unary-minus", "-xs[0]", -1),
    ("not", "!true", False),
    ("not-word", "not false", True),
    ("add", "1 + 2", 3),
    ("add-mixed", "1 + 0.5", 1.5),
    ("sub", "5 - 7", -2),
    ("mul", "3 * 4", 12),
    ("div-is-float", "7 / 2", 3.5),
    ("div-exact-is-float", "6 / 3", 2.0),
    ("mod", "7 % 3", 1),
    ("mod-negative-truncates", "-7 % 3", -1),
    ("pow", "2 ** 10", 1024.0),
    ("caret-pow", "2 ^ 3", 8.0),
    ("pow-right-assoc", "2 ** 3 ** 2", 512.0),
    ("precedence", "1 + 2 * 3", 7),
    ("unary-binds-tighter-than-pow-not", "-2 ** 2", -4.0),
    ("concat", "'a' + 'b'", "ab"),
    ("eq-different-types-false", "'1' == 1", False),
    ("eq-int-float", "1 == 1.0", True),
    ("eq-nil", "nil == nil", True),
    ("eq-bool-int-false", "true == 1", False),
    ("neq", "s != 'x'", True),
    ("lt", "1 < 2", True),
    ("ge-strings", "'b' >= 'a'", True),
    ("and", "true && false", False),
    ("or-word", "false or true", True),
    ("and-word-short-circuit", "false and nil_value.x", False),
    ("in-array", "2 in xs", True),
    ("not-in-array", "4 not in xs", True),
    ("in-map", "'a' in m", True),
    ("matches", "s matches '^h.*o$'", True),
    ("not-matches", "s not matches 'z'", True),
    ("contains", "s contains 'ell'", True),
    ("startsWith", "s startsWith 'he'", True),
    ("endsWith", "s endsWith 'lo'", True),
    ("ternary", "1 > 2 ? 'a' : 'b'", "b"),
    ("ternary-nested", "false ? 1 : true ? 2 : 3", 2),
    ("range", "1..3", [1, 2, 3]),
    ("pipe", "xs | map(# * 2) | sum()", 12),
    ("filter-closure", "filter([1, 3], {# > 1})", [3]),
    ("map-field-shorthand", "map(users, .name)", ["ann", "bob"]),
    ("map-index", "map(xs, #index)", [0, 1, 2]),
    ("all", "all(xs, # > 0)", True),
    ("any", "any(xs, # > 2)", True),
    ("none", "none(xs, # > 5)", True),
    ("one", "one(xs, # == 2)", True),
    ("count", "count(users, .age >= 18)", 1),
    ("find", "find(users, .age < 18).name", "bob"),
    ("findIndex", "findIndex(xs, # == 3)", 2),
    ("reduce", "reduce(xs, #acc + #, 10)", 16),
    ("sum", "sum(xs)", 6),
    ("len-string-bytes", "len('hé')", 3),
    ("len-array", "len(xs)", 3),
    ("len-map", "len(m)", 3),
    ("abs", "abs(-2)", 2),
    ("int-string", "int('12')", 12),
    ("int-float-truncates", "int(2.9)", 2),
    ("float-string", "float('2.5')", 2.5),
    ("string-int", "string(5)", "5"),
    ("string-float", "string(2.0)", "2"),
    ("string-array", "string([1, 'a'])", "[1 a]"),
    ("trim", "trim('  x ')", "x"),
    ("trim-cutset", "trim('xxaxx', 'x')", "a"),
    ("upper", "upper(s)", "HELLO"),
    ("lower", "lower('AB')", "ab"),
    ("split", "split('a,b', ',')", ["a", "b"]),
    ("join", "join(['a', 'b'], '-')", "a-b"),
    ("replace", "replace('aXa', 'a', 'b')", "bXb"),
    ("keys", "keys({a: 1})", ["a"]),
    ("values", "values({a: 1})", [1]),
    ("max", "max(1, 5, 3)", 5),
    ("min-array", "min([4, 2])", 2),
    ("mean", "mean([1, 2])", 1.5),
    ("first", "first(xs)", 1),
    ("last", "last(xs)", 3),
    ("toJSON-indented", "toJSON({a: [1]})", '{\n  "a": [\n    1\n  ]\n}'),
    ("fromJSON", "fromJSON('{\"a\": [1, \"x\"]}')", {"a": [1.0, "x"]}),
    ("toBase64", "toBase64('hi')", "aGk="),
    ("fromBase64", "fromBase64('aGk=')", "hi"),
    ("hasPrefix", "hasPrefix(s, 'h')", True),
    ("sort", "sort([3, 1, 2])", [1, 2, 3]),
    ("uniq", "uniq([1, 1, 2])", [1, 2]),
    ("reverse", "reverse(xs)", [3, 2, 1]),
    # Argo's additions (util/expr/env)
    ("asInt", "asInt(n) * 10", 50),
    ("asFloat", "asFloat('1.5') * 2", 3.0),
    ("argo-toJson-compact", "toJson({b: 1, a: [true, nil]})", '{"a":[true,null],"b":1}'),
    ("argo-toJson-html-escaped", "toJson('<&>')", '"\\u003c\\u0026\\u003e"'),
    ("jsonpath-definite", "jsonpath('{\"a\": {\"b\": 2}}', '$.a.b')", 2.0),
    ("jsonpath-filter-list", "jsonpath('[{\"v\": 1}, {\"v\": 2}]', '$[?(@.v > 1)].v')", [2.0]),
    ("bracket-param-with-dash", "inputs.parameters['my-param']", "v"),
    ("bracket-param-double-quotes", 'inputs.parameters["flag"] == \'true\'', True),
    ("steps-bracket", "steps['flip-coin'].outputs.result", "heads"),
    ("number-like-strings-stay-strings", "n + '1'", "51"),
]


@pytest.mark.parametrize(("source", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_evaluate(source: str, expected: Any) -> None:
    """Every operator and builtin evaluates as expr-lang does."""
    result = evaluate(source, ENV)
    assert expected == result
    assert type(expected) is type(result)


ERRORS = [
    ("unknown-name", "nope + 1", "unknown name nope"),
    ("fetch-from-nil", "nil_value.x", "cannot fetch x from <nil>"),
    ("mismatched-add", "'a' + 1", "mismatched types string and int"),
    ("compare-mismatch", "'a' < 1", "mismatched types"),
    ("not-on-string", "!s", "expected bool"),
    ("and-on-string", "s && true", "expected bool"),
    ("index-out-of-range", "xs[5]", "index out of range"),
    ("mod-zero", "1 % 0", "integer divide by zero"),
    ("int-bad-string", "int('1.5')", "invalid operation: int(1.5)"),
    ("asInt-bad-string", "asInt('x')", "invalid operation: int(x)"),
    ("unterminated-string", "'abc", "literal not terminated"),
    ("unbalanced-paren", "(1 + 2", "expected ')'"),
    ("trailing-token", "1 2", "unexpected token"),
    ("empty", "   ", "empty expression"),
    ("bad-char", "1 @ 2", "unexpected token"),
    ("pointer-outside-closure", "# + 1", "pointer accessor outside predicate"),
    ("unknown-func", "frobnicate(1)", "unknown func frobnicate"),
    ("not-callable", "s(1)", "s is not callable"),
    ("bad-regex", "s matches '('", "error parsing regexp"),
    ("mixing-coalesce", "nil_value ?? 1 + 2", "cannot be mixed"),
    ("jsonpath-bad-json", "jsonpath('{', '$.a')", "invalid JSON"),
    ("jsonpath-missing-key", "jsonpath('{}', '$.a')", "key 'a' not found"),
    ("predicate-not-bool", "filter(xs, # + 1)", "must return bool"),
    ("too-deep", "(" * 300 + "1" + ")" * 300, "nested too deeply"),
]


@pytest.mark.parametrize(("source", "fragment"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_errors_name_the_expression(source: str, fragment: str) -> None:
    """Failures are ExpressionErrors whose message names the expression and the cause."""
    with pytest.raises(ExpressionError) as info:
        evaluate(source, ENV)
    assert fragment in str(info.value)
    assert info.value.expression == source
    assert repr(source) in str(info.value)


def test_functions_cannot_be_replaced_by_the_namespace_map() -> None:
    """The sprig namespace is read-only, so an expression cannot corrupt it for later runs."""
    with pytest.raises(TypeError):
        ARGO_FUNCTIONS["sprig"]["trim"] = None  # type: ignore[index]
