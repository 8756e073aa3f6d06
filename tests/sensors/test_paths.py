"""gjson-style get and sjson-style set, against the examples in the gjson/sjson READMEs."""

from __future__ import annotations

from typing import Any

import pytest

from sensors import paths

DOC: dict[str, Any] = {
    "name": {"first": "Tom", "last": "Anderson"},
    "age": 37,
    "children": ["Sara", "Alex", "Jack"],
    "fav.movie": "Deer Hunter",
    "friends": [
        {"first": "Dale", "last": "Murphy", "age": 44, "nets": ["ig", "fb", "tw"]},
        {"first": "Roger", "last": "Craig", "age": 68, "nets": ["fb", "tw"]},
        {"first": "Jane", "last": "Murphy", "age": 47, "nets": ["ig", "tw"]},
    ],
    "commits": [{"modified": ["a.py"]}, {"modified": ["b.py", "c.py"]}, {"added": ["d.py"]}],
    "flag": False,
    "nothing": None,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("name.last", "Anderson"),
        ("age", 37),
        ("children", ["Sara", "Alex", "Jack"]),
        ("children.#", 3),
        ("children.1", "Alex"),
        ("child*.2", "Jack"),
        ("c?ildren.0", "Sara"),
        ("fav\\.movie", "Deer Hunter"),
        ("friends.#.first", ["Dale", "Roger", "Jane"]),
        ("friends.1.last", "Craig"),
        ('friends.#(last=="Murphy").first', "Dale"),
        ('friends.#(last=="Murphy")#.first', ["Dale", "Jane"]),
        ("friends.#(age>45)#.last", ["Craig", "Murphy"]),
        ('friends.#(first%"D*").last', "Murphy"),
        ('friends.#(first!%"D*").last', "Craig"),
        ('friends.#(nets.#(=="fb"))#.first', ["Dale", "Roger"]),
        ('children.#(!%"*a*")', "Alex"),
        ("commits.#.modified", [["a.py"], ["b.py", "c.py"]]),
        ("flag", False),
        ("nothing", None),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_get_follows_gjson(path: str, expected: Any) -> None:
    """Every documented gjson form used by Argo Events sensors reads the same value."""
    assert expected == paths.get(DOC, path)


@pytest.mark.parametrize(
    "path",
    ["missing", "name.middle", "children.3", "children.x", "age.x", "friends.#(age>99).first", ""],
    ids=["key", "nested", "index-past-end", "key-on-array", "key-on-number", "query-no-match", "empty"],
)
def test_get_missing_is_distinct_from_null(path: str) -> None:
    """A path that does not exist is MISSING, never None, so filters can fail on it."""
    assert paths.get(DOC, path) is paths.MISSING


@pytest.mark.parametrize(
    ("start", "path", "value", "expected"),
    [
        ({}, "name", "Tom", {"name": "Tom"}),
        ({}, "name.last", "Anderson", {"name": {"last": "Anderson"}}),
        ({"name": {"last": "A"}}, "name.first", "Sara", {"name": {"last": "A", "first": "Sara"}}),
        ({"friends": ["Andy", "Carol"]}, "friends.2", "Sara", {"friends": ["Andy", "Carol", "Sara"]}),
        ({"friends": ["Andy", "Carol"]}, "friends.1", "Sara", {"friends": ["Andy", "Sara"]}),
        ({"friends": ["Andy", "Carol"]}, "friends.-1", "Sara", {"friends": ["Andy", "Carol", "Sara"]}),
        ({"friends": ["Andy"]}, "friends.3", "Sara", {"friends": ["Andy", None, None, "Sara"]}),
        ({}, "users.:2313.name", "Sara", {"users": {"2313": {"name": "Sara"}}}),
        (
            {},
            "spec.arguments.parameters.0.value",
            "x",
            {"spec": {"arguments": {"parameters": [{"value": "x"}]}}},
        ),
        ({"a": {"0": "keep"}}, "a.0", "new", {"a": {"0": "new"}}),
        ({}, "fav\\.movie", "Up", {"fav.movie": "Up"}),
        ({"a": "scalar"}, "a.b", 1, {"a": {"b": 1}}),
    ],
    ids=[
        "key",
        "nested-new",
        "sibling",
        "array-next",
        "array-replace",
        "append",
        "pad-with-null",
        "colon-forces-key",
        "creates-list-for-index",
        "numeric-key-on-map",
        "escaped-dot",
        "replaces-scalar",
    ],
)
def test_set_follows_sjson(start: dict[str, Any], path: str, value: Any, expected: dict[str, Any]) -> None:
    """sjson's documented behaviours: creation, indices, -1 append, colon keys."""
    assert expected == paths.set(start, path, value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("s", "s"),
        (True, "true"),
        (21500, "21500"),
        (1.5, "1.5"),
        (2.0, "2"),
        (None, ""),
        ({"a": [1, "é"]}, '{"a":[1,"é"]}'),
        (paths.MISSING, ""),
    ],
    ids=["string", "bool", "int", "float", "integral-float", "null", "object", "missing"],
)
def test_as_string_matches_gjson_result_string(value: Any, text: str) -> None:
    """Result.String(): strings bare, blocks as compact JSON."""
    assert text == paths.as_string(value)
