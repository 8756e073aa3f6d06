"""Tests for ``{{...}}`` substitution, with strings taken from Argo's example workflows."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.errors import ExpressionError, UnresolvedVariable
from workflows.expressions import evaluate, evaluate_when
from workflows.templating import Reference, Scope, expression_env, references, replace, substitute

EMPLOYEES = '{"employees": [{"name": "Baris", "age":43},{"name": "Mo", "age": 42}, {"name": "Jai", "age" :44}]}'
WEATHER = '{"weekWeather": "eyJ0ZW1wcyI6IFszNCwgMjcsIDE1LCA1NywgNDZdfQo="}'
VERBOSE_SNIPPET = """{{=
  map([
      jsonpath(sprig.b64dec(jsonpath(workflow.parameters.weather, '$.weekWeather')), '$.temps')
    ], {
      toJson({
        avg: sprig.add(#[0], #[1], #[2], #[3], #[4]) / 5,
        min: sprig.min(#[0], #[1], #[2], #[3], #[4]),
        max: sprig.max(#[0], #[1], #[2], #[3], #[4])
      })
  })[0]
}}"""

SCOPE: dict[str, str | None] = {
    "inputs.parameters.should-print": "true",
    "inputs.parameters.message": "hello",
    "inputs.parameters.foo": "3",
    "inputs.parameters.week-temps": '{"avg":35.8,"max":57,"min":15}',
    "workflow.name": "wf-abc",
    "workflow.creationTimestamp": "2024-03-05T14:07:09Z",
    "workflow.parameters.json": '[{"value": "true"}]',
    "workflow.parameters.config": EMPLOYEES,
    "workflow.parameters.simple": '{"a": "1", "b": "2", "c": "3"}',
    "workflow.parameters.weather": WEATHER,
    "workflow.parameters.foo": "bar",
    "steps.flip-coin.outputs.result": "heads",
    "steps.flip-again.outputs.result": "tails",
    "steps.heads.outputs.result": "it was heads",
    "item": "3",
    "tasks.producer.outputs.parameters.msg": None,
    "tasks.empty.outputs.parameters.msg": "",
    "payload": 'say "hi" {{workflow.name}} $(rm -rf /)\nbye',
}

EXAMPLES = [
    ("conditionals-govaluate", "{{inputs.parameters.should-print}} == true", "true == true"),
    ("conditionals-expr", "{{= inputs.parameters[\"should-print\"] == 'true'}}", "true"),
    ("conditionals-expr-json", "{{=jsonpath(workflow.parameters.json, '$[0].value') == 'true'}}", "true"),
    ("conditionals-complex", "{{steps.flip-coin.outputs.result}} == heads", "heads == heads"),
    ("expression-tag-item", "{{=item}}", "3"),
    ("expression-tag-withParam", "{{=toJson(filter([1, 3], {# > 1}))}}", "[3]"),
    ("expression-tag-hello",
     "hello {{=asInt(inputs.parameters.foo) * 10}} @ {{=sprig.date('2006', workflow.creationTimestamp)}}",
     "hello 30 @ 2024"),
    ("destructure-a", "{{=jsonpath(workflow.parameters.simple, '$.a')}}", "1"),
    ("destructure-complex-a",
     "{{=jsonpath(workflow.parameters.config, '$.employees[?(@.name==\"Baris\")].age')}}", "[43]"),
    ("destructure-complex-b",
     "{{=jsonpath(workflow.parameters.config, '$.employees[?(@.age>42 && @.age<44)].age')}}", "[43]"),
    ("destructure-complex-c", "{{=jsonpath(workflow.parameters.config, '$.employees[0:1]')}}",
     '[{"age":43,"name":"Baris"}]'),
    ("destructure-complex-d", "{{=jsonpath(workflow.parameters.config, '$.employees[*].name')}}",
     '["Baris","Mo","Jai"]'),
    ("verbose-snippet", VERBOSE_SNIPPET, '{"avg":35.8,"max":57,"min":15}'),
    ("verbose-snippet-avg", "{{=jsonpath(inputs.parameters['week-temps'], '$.avg')}}", "35.8"),
    ("verbose-snippet-min", "{{=jsonpath(inputs.parameters['week-temps'], '$.min')}}", "15"),
    ("verbose-snippet-max", "{{=jsonpath(inputs.parameters['week-temps'], '$.max')}}", "57"),
    ("expression-fallback", "{{=tasks.producer.outputs.parameters.msg ?? 'expr-fallback'}}", "expr-fallback"),
    ("fallback-keeps-empty", "[{{=tasks.empty.outputs.parameters.msg ?? 'x'}}]", "[]"),
    ("simple-whitespace", "{{ inputs.parameters.message }}!", "hello!"),
    ("several-tags", "{{workflow.name}}/{{inputs.parameters.message}}", "wf-abc/hello"),
    ("int-result", "{{=1 + 2}}", "3"),
    ("float-result", "{{=5 / 2}}", "2.5"),
    ("whole-float-result", "{{=4 / 2}}", "2"),
    ("bool-result", "{{=1 < 2}}", "true"),
    ("list-result", "{{=['a']}}", '["a"]'),
    ("map-result", "{{= {a: 1} }}", '{"a":1}'),
    ("no-close-stays-literal", "{{inputs.parameters.message", "{{inputs.parameters.message"),
    ("lone-close", "a }} b", "a }} b"),
    ("inner-tag-wins", "{{a {{inputs.parameters.message}}", "{{a hello"),
    ("value-is-data", "<{{payload}}>", '<say "hi" {{workflow.name}} $(rm -rf /)\nbye>'),
    ("expression-value-is-data", "{{=payload}}", 'say "hi" {{workflow.name}} $(rm -rf /)\nbye'),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in EXAMPLES], ids=[c[0] for c in EXAMPLES])
def test_replace(text: str, expected: str) -> None:
    """Tags resolve as Argo resolves them, in both modes when everything is known."""
    assert expected == replace(text, SCOPE, allow_unresolved=False)
    assert expected == replace(text, SCOPE, allow_unresolved=True)


@pytest.mark.parametrize(("when", "expected"), [
    ("{{inputs.parameters.should-print}} == true", True),
    ("{{= inputs.parameters[\"should-print\"] == 'true'}}", True),
    ("{{steps.flip-coin.outputs.result}} == tails", False),
    ("( {{steps.flip-coin.outputs.result}} == heads &&\n  {{steps.flip-again.outputs.result}} == tails\n) ||\n"
     "( {{steps.flip-coin.outputs.result}} == tails &&\n  {{steps.flip-again.outputs.result}} == tails )", True),
    ("{{steps.flip-again.outputs.result}} =~ tai", True),
], ids=["govaluate-form", "expr-form", "flip-tails", "complex", "regex"])
def test_when_after_substitution(when: str, expected: bool) -> None:
    """``when`` is substituted, then read by govaluate."""
    assert expected is evaluate_when(replace(when, SCOPE, allow_unresolved=False))


def test_retry_conditional_expression() -> None:
    """retry-conditional.yaml: substituted, then evaluated with lastRetry in the environment."""
    text = ("asInt(lastRetry.exitCode) > 1 &&\nlastRetry.status != \"Error\" &&\nasInt(lastRetry.duration) < 120 &&\n"
            "({{inputs.parameters.safe-to-retry}} == true || lastRetry.message matches "
            "'imminent node shutdown|pod deleted')")
    scope: Scope = {"inputs.parameters.safe-to-retry": "false", "lastRetry.exitCode": "2",
                    "lastRetry.status": "Failed", "lastRetry.duration": "12", "lastRetry.message": "pod deleted"}
    source = replace(text, scope, allow_unresolved=False)
    assert evaluate(source, expression_env(scope)) is True
    assert evaluate(source, expression_env({**scope, "lastRetry.exitCode": "1"})) is False


@pytest.mark.parametrize(("scope", "expected"), [
    ({"steps.flip-coin.outputs.result": "heads", "steps.heads.outputs.result": "H"}, "H"),
    ({"steps.flip-coin.outputs.result": "tails", "steps.tails.outputs.result": "T"}, "T"),
], ids=["heads", "tails"])
def test_conditional_parameters(scope: Scope, expected: str) -> None:
    """conditional-parameters.yaml: only the chosen branch needs its step to exist."""
    source = ("steps['flip-coin'].outputs.result == 'heads' ? steps.heads.outputs.result : "
              "steps.tails.outputs.result")
    assert expected == evaluate(source, expression_env(scope))


def test_label_value_from_workflow() -> None:
    """label-value-from-workflow.yaml: ``labelsFrom`` expressions read workflow parameters."""
    assert evaluate("workflow.parameters.foo", expression_env(SCOPE)) == "bar"


@pytest.mark.parametrize(("text", "name"), [
    ("{{inputs.parameters.nope}}", "inputs.parameters.nope"),
    ("{{ workflow.nope }}", "workflow.nope"),
    ("{{=inputs.parameters.nope + 'x'}}", "inputs.parameters.nope"),
    ("{{=asInt(retries) + 1}}", "retries"),
], ids=["simple", "simple-spaces", "expression", "expression-in-call"])
def test_unresolved(text: str, name: str) -> None:
    """Missing variables raise UnresolvedVariable when strict and are kept verbatim otherwise."""
    with pytest.raises(UnresolvedVariable) as info:
        replace(text, SCOPE, allow_unresolved=False)
    assert name == info.value.name
    assert f"a {text} b" == replace(f"a {text} b", SCOPE, allow_unresolved=True)


@pytest.mark.parametrize("text", [
    "{{=1 +}}",
    "{{='a' + 1}}",
    "{{=nil}}",
    "{{=sprig.fromJson('{}').x.y}}",
], ids=["syntax", "type", "nil-result", "fetch-from-nil"])
def test_bad_expressions(text: str) -> None:
    """Broken expressions raise ExpressionError naming them when strict, and stay as written otherwise."""
    with pytest.raises(ExpressionError) as info:
        replace(text, SCOPE, allow_unresolved=False)
    assert text[3:-2] in str(info.value)
    assert text == replace(text, SCOPE, allow_unresolved=True)


def test_absent_optional_cannot_be_substituted_as_simple_tag() -> None:
    """A skipped output with no default has no text; a simple tag referencing it is an error."""
    with pytest.raises(ExpressionError, match="absent optional"):
        replace("{{tasks.producer.outputs.parameters.msg}}", SCOPE, allow_unresolved=True)


def test_text_without_tags_is_returned_as_is() -> None:
    """The hot path hands back the very same string."""
    text = "no tags here " * 10
    assert text is replace(text, SCOPE, allow_unresolved=False)


def test_substitute_is_deep() -> None:
    """Dict keys and values, lists and nested strings are substituted; other values pass through."""
    value: Any = {"{{workflow.name}}": ["{{inputs.parameters.message}}", 3, None, {"k": "{{=1+1}}"}], "n": 1.5}
    assert substitute(value, SCOPE, allow_unresolved=False) == {"wf-abc": ["hello", 3, None, {"k": "2"}], "n": 1.5}


def test_expression_env_nests_dotted_keys_and_keeps_item_objects() -> None:
    """Dotted keys become maps; a JSON-object item keeps its fields beside its dotted children."""
    env = expression_env({"item": '{"os": "linux", "arch": {"bits": 64}}', "item.os": "linux",
                          "inputs.parameters.my-param": "v", "toJson": "shadow", "sprig.trim": "shadow"})
    assert env["item"] == {"os": "linux", "arch": {"bits": 64.0}}
    assert env["inputs"] == {"parameters": {"my-param": "v"}}
    assert evaluate("toJson({a: 1})", env) == '{"a":1}'
    assert evaluate("sprig.trim(' x ')", env) == "x"


def test_references() -> None:
    """Validation sees every tag with the variables it needs."""
    found = references("{{ a.b }} and {{=asInt(inputs.parameters['x-y']) + len(c)}} and {{=1 +}}")
    assert [
        Reference(text="{{ a.b }}", expression=False, source="a.b", names=("a.b",)),
        Reference(text="{{=asInt(inputs.parameters['x-y']) + len(c)}}", expression=True,
                  source="asInt(inputs.parameters['x-y']) + len(c)",
                  names=("inputs.parameters.x-y", "inputs.parameters", "inputs", "c")),
        Reference(text="{{=1 +}}", expression=True, source="1 +", names=()),
    ] == found
