"""
Trigger parameters: copy values out of dependency events into a raw resource dict.

Pure; called by :mod:`sensors.matching` for a trigger's resource (``argoWorkflow``/``k8s``
``parameters``) and for its template (trigger-level ``parameters``). Follows Argo Events
``pkg/sensors/triggers/params.go``:

- ``src`` names a dependency. No event for it: ``value`` is used if given, else the parameter
  is skipped (normal under ``||`` conditions). No key or template: ``value`` if given, else the
  whole event as JSON text.
- ``dataTemplate``/``contextTemplate`` (Go templates over ``.Input``) are tried first, then
  ``dataKey``/``contextKey`` (gjson), then ``value``; if all fail the trigger fails.
- A string at the key yields the string; objects and arrays yield their JSON text; numbers and
  bools their text. With ``useRawData`` a non-string value is inserted as itself (number,
  bool, object) instead of as text.
- ``dest`` is an sjson path; ``operation`` ``append``/``prepend`` concatenate with the current
  value's text, ``overwrite`` (the default) replaces it.

Values are inserted as data: a commit message holding quotes, newlines, ``{{`` or ``$(...)``
ends up as that exact string in the dict, never re-parsed as YAML/JSON or templated again.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sensors import paths
from sensors.events import JSON_CONTENT_TYPE, Event
from sensors.gotemplate import TemplateError, render
from sensors.model import ParameterOperation, ParameterSource, TriggerParameter
from workflows.errors import InvalidSpec

_STRING = "string"  # gjson's String type; everything else may be inserted raw


def apply_parameters(
    resource: Mapping[str, Any],
    parameters: Sequence[TriggerParameter],
    events: Mapping[str, Event],
    *,
    path: str = "parameters",
) -> dict[str, Any]:
    """A deep copy of ``resource`` with ``parameters`` applied; InvalidSpec names a failing one."""
    obj: dict[str, Any] = copy.deepcopy(dict(resource))
    for i, param in enumerate(parameters):
        ppath = f"{path}[{i}]"
        resolved = resolve_value(param.src, events, path=f"{ppath}.src")
        if resolved is None:
            continue
        text, kind = resolved
        if param.operation is not ParameterOperation.OVERWRITE:
            current = paths.get(obj, param.dest)
            if current is not paths.MISSING:
                kind = _STRING
                existing = paths.as_string(current)
                text = existing + text if param.operation is ParameterOperation.APPEND else text + existing
        value: Any = json.loads(text) if param.src.use_raw_data and kind != _STRING else text
        try:
            paths.set(obj, param.dest, value)
        except ValueError as exc:
            raise InvalidSpec(f"{ppath}.dest", str(exc)) from None
    return obj


def resolve_value(
    src: ParameterSource, events: Mapping[str, Event], *, path: str = "src"
) -> tuple[str, str] | None:
    """(text, kind) for one parameter source, or None when it should be skipped.

    ``kind`` is ``"string"`` or the gjson type of a raw value (``"number"``, ``"bool"``,
    ``"null"``, ``"json"``); only non-string kinds are inserted raw under ``useRawData``.
    """
    event = events.get(src.dependency_name)
    if event is None:
        return None if src.value is None else (src.value, _STRING)
    if not (src.context_key or src.context_template or src.data_key or src.data_template):
        if src.value is not None:
            return src.value, _STRING
        return paths.to_json(event.to_json_dict()), _STRING
    errors: list[str] = []
    if src.data_key or src.data_template:
        key, template = src.data_key, src.data_template
        if event.context.datacontenttype.split(";")[0].strip() not in (JSON_CONTENT_TYPE, ""):
            payload: Any = paths.MISSING
            errors.append(f"unsupported event content type {event.context.datacontenttype!r}")
        else:
            payload = event.data
    else:
        key, template = src.context_key, src.context_template
        payload = event.context.to_json_dict()
    if payload is not paths.MISSING:
        if template:
            try:
                out = render(template, {"Input": payload})
            except TemplateError as exc:
                errors.append(f"template failed: {exc}")
            else:
                if out not in ("", "<no value>"):
                    return out, _STRING
                errors.append(f"template {template!r} evaluated to empty string or no value")
        if key:
            found = paths.get(payload, key)
            if found is not paths.MISSING:
                return _text_and_kind(found)
            errors.append(f"key {key!r} does not exist in the event payload")
    if src.value is not None:
        return src.value, _STRING
    raise InvalidSpec(
        path, f"unable to resolve a value from dependency {src.dependency_name!r}: " + "; ".join(errors)
    )


def _text_and_kind(value: Any) -> tuple[str, str]:
    if isinstance(value, str):
        return value, _STRING
    if value is None:
        return "null", "null"
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool"
    if isinstance(value, int | float):
        return paths.as_string(value), "number"
    return paths.to_json(value), "json"
