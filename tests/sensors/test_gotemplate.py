"""The Go text/template subset used by dataTemplate, contextTemplate and data filter templates."""

from __future__ import annotations

from typing import Any

import pytest

from sensors.gotemplate import TemplateError, go_print, render

DATA: dict[str, Any] = {
    "Input": {
        "body": {
            "ref": "refs/heads/main",
            "pull_request": {"number": 21500, "title": 'Say "hi"', "head": {"sha": "2c065a1234567"}},
            "list": [1, "a"],
            "map": {"b": 1, "a": True},
            "empty": "",
        }
    }
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ .Input.body.ref }}", "refs/heads/main"),
        ("{{ .Input.body.pull_request.head.sha | substr 0 7 }}", "2c065a1"),
        (
            "{{ .Input.body.pull_request.number }}-{{ .Input.body.pull_request.head.sha | trunc 7 }}",
            "21500-2c065a1",
        ),
        ('{{ .Input.body.ref | trimPrefix "refs/heads/" | upper }}', "MAIN"),
        ('{{ .Input.body.ref | replace "/" "-" }}', "refs-heads-main"),
        ("{{ .Input.body.missing }}", "<no value>"),
        ('{{ .Input.body.missing | default "none" }}', "none"),
        ('{{ .Input.body.empty | default "none" }}', "none"),
        ("{{ .Input.body.pull_request.title | quote }}", '"Say \\"hi\\""'),
        ("{{ .Input.body.map | toJson }}", '{"b":1,"a":true}'),
        ("{{ .Input.body.list }} {{ .Input.body.map }}", "[1 a] map[a:true b:1]"),
        ('{{ if eq .Input.body.ref "refs/heads/main" }}prod{{ else }}dev{{ end }}', "prod"),
        ("{{ if .Input.body.missing }}a{{ else if .Input.body.ref }}b{{ else }}c{{ end }}", "b"),
        ("{{ with .Input.body.pull_request }}#{{ .number }}{{ end }}", "#21500"),
        ("{{ range .Input.body.list }}[{{ . }}]{{ end }}", "[1][a]"),
        ("a  {{- 1 -}}  b", "a1b"),
        ("{{/* a comment */}}x", "x"),
        ("{{- /* it's a comment */ -}} x", "x"),
        ('{{ "}}" }}', "}}"),
        ("{{ `a}}b` | upper }}", "A}}B"),
        ('{{ printf "%s:%d" "n" 3 }}', "n:3"),
        ("{{ lower (trunc 4 .Input.body.ref) }}", "refs"),
        ("{{ (index .Input.body.list 1) }}", "a"),
        ("{{ $.Input.body.ref | len }}", "15"),
        ("{{ .Input.body.ref | sha256sum | trunc 8 }}", "f921bd05"),
        ("{{ `raw {{` }}", "raw {{"),
    ],
    ids=lambda v: None,
)
def test_render(template: str, expected: str) -> None:
    """Renders as Go's text/template with Sprig would."""
    assert expected == render(template, DATA)


@pytest.mark.parametrize(
    "template",
    [
        "{{ .Input.body.missing.deeper }}",
        "{{ .Input.body.list.x }}",
        "{{ nosuchfunc 1 }}",
        "{{ if 1 }}x",
        "{{ .Input",
        "{{ end }}",
        "{{ $x := 1 }}",
        '{{ define "x" }}{{ end }}',
    ],
    ids=[
        "field-of-nil",
        "field-of-list",
        "unknown-function",
        "missing-end",
        "unclosed",
        "stray-end",
        "variables",
        "define",
    ],
)
def test_errors(template: str) -> None:
    """Where Go's Execute fails (or we do not support the syntax), TemplateError is raised."""
    with pytest.raises(TemplateError):
        render(template, DATA)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (21500.0, "21500"),
        (1e21, "1e+21"),
        (1.5e-05, "1.5e-05"),
        (0.0001, "0.0001"),
        (1e20, "100000000000000000000"),
        (-2.5, "-2.5"),
        (None, "<no value>"),
        (True, "true"),
    ],
    ids=["integral", "big", "small", "threshold", "below-big", "negative", "nil", "bool"],
)
def test_go_print_floats_like_fmt(value: Any, text: str) -> None:
    """fmt's %v of float64: shortest digits, exponent form below 1e-4 and from 1e21."""
    assert text == go_print(value)
