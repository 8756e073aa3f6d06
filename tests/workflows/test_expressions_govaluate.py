"""Table tests for Argo's govaluate ``when`` reading (bare words are strings)."""

from __future__ import annotations

import pytest

from workflows.errors import ExpressionError
from workflows.expressions import evaluate_when

CASES = [
    ("bare-words-equal", "heads == heads", True),
    ("bare-words-differ", "tails != heads", True),
    ("conditionals-true", "true == true", True),
    ("conditionals-false", "false == true", False),
    ("numbers", "5 > 3", True),
    ("number-float-equal", "5 == 5.0", True),
    ("number-vs-string", "5 == five", False),
    ("single-quoted", "'a b' == 'a b'", True),
    ("double-quoted", '"x" != "y"', True),
    ("quoted-dash", "'my-branch' == 'my-branch'", True),
    ("string-order", "b > a", True),
    ("ge", "3 >= 3", True),
    ("le", "2 <= 1", False),
    ("regex", "heads =~ hea", True),
    ("regex-not", "tails !~ hea", True),
    ("and-or-parens", "( heads == heads && tails == tails ) || ( tails == heads )", True),
    ("not", "!(a == b)", True),
    ("arith", "2 + 3 * 4 == 14", True),
    ("modulo", "7 % 4 == 3", True),
    ("concat", "a + b == ab", True),
    ("ternary", "1 > 2 ? true : false", False),
    ("in-list", "b in (a, b, c)", True),
    ("not-in-list", "!(z in (a, b))", True),
    ("literal-true", "true", True),
    ("literal-false", "false", False),
    ("empty-is-true", "", True),
    ("short-circuit", "false && (1 > heads)", False),
    ("bracket-variable", "[my var] == 'my var'", True),
    ("conditionals-complex",
     "( heads == heads &&\n  tails == tails\n) ||\n( heads == tails &&\n  tails == tails )", True),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_evaluate_when(text: str, expected: bool) -> None:
    """Substituted ``when`` texts evaluate as Argo's shouldExecute does."""
    assert expected is evaluate_when(text)


ERRORS = [
    ("non-bool", "heads", "expected boolean"),
    ("dash-is-minus", "my-branch == my-branch", "cannot be used with the modifier '-'"),
    ("dotted-word-is-accessor", "v1.2 == v1.2", "No parameter 'v1' found"),
    ("unexported-accessor", "a.b == c", "unexported field"),
    ("bad-number", "1.2.3 == 1", "Unable to parse numeric value"),
    ("adjacent-values", "1a == 1a", "unexpected token"),
    ("invalid-token", "a ==== b", "Invalid token"),
    ("unbalanced", "(a == a", "Unbalanced parenthesis"),
    ("dangling", "5 >", "unexpected end"),
    ("and-non-bool", "a && true", "it is not a bool"),
    ("compare-mixed", "1 > a", "it is not a number"),
    ("in-non-list", "a in b", "it is not an array"),
    ("unclosed-string", "'abc == abc", "Unclosed string"),
]


@pytest.mark.parametrize(("text", "fragment"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_when_errors_name_the_expression(text: str, fragment: str) -> None:
    """Bad ``when`` texts raise ExpressionError naming the text and the cause."""
    with pytest.raises(ExpressionError) as info:
        evaluate_when(text)
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)
