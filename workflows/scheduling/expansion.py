"""
Expansion of ``withItems`` / ``withParam`` / ``withSequence`` into concrete child steps or tasks.

Called by :mod:`.steps` and :mod:`.dag` after the step's own references are resolved. Child
names are deterministic (Argo's ``name(index:item)`` with sorted map keys) because node ids are
hashes of names and must survive a restart. Each child is the step's raw form with ``{{item}}``
substituted, parsed again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from workflows.errors import InvalidSpec
from workflows.model import wire
from workflows.model.spec import SequenceSpec, Step
from workflows.scheduling.scope import go_json
from workflows.templating import substitute

_EXPANSION_KEYS = ("withItems", "withParam", "withSequence")


@dataclass(frozen=True, slots=True, kw_only=True)
class Expanded:
    """One child of an expanded step: its node name suffix and its resolved step."""

    name: str
    step: Step


def item_text(item: Any) -> str:
    """An item as Argo's Item.String() prints it: JSON, without the quotes of a string."""
    if isinstance(item, str):
        return go_json(item)[1:-1]
    return go_json(item)


def _go_value(value: Any) -> str:
    """``fmt.Sprintf("%v", v)`` of a decoded JSON value, for node names."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_value(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    return item_text(value)


def item_scope(item: Any) -> tuple[dict[str, str], str]:
    """The ``item`` / ``item.<key>`` scope of one item, and its name description."""
    if isinstance(item, dict):
        scope = {f"item.{k}": (v if isinstance(v, str) else _go_value(v)) for k, v in item.items()}
        scope["item"] = go_json(item)
        desc = ",".join(sorted(f"{k}:{_go_value(v)}" for k, v in item.items()))
        return scope, desc
    if isinstance(item, list):
        return {"item": go_json(item)}, _go_value(item)
    text = item if isinstance(item, str) else item_text(item)
    return {"item": text}, item_text(item)


def sequence_items(seq: SequenceSpec, *, path: str) -> list[str]:
    """Argo's expandSequence: inclusive, counting down when start > end, printf ``format``."""

    def num(value: str | None, field: str) -> int:
        try:
            return int(str(value).strip())
        except ValueError:
            raise InvalidSpec(f"{path}.{field}", f"must be an integer, got {value!r}") from None

    start = num(seq.start, "start") if seq.start is not None else 0
    if seq.end is not None:
        end = num(seq.end, "end")
    elif seq.count is not None:
        count = num(seq.count, "count")
        if count == 0:
            return []
        end = start + count - 1
    else:
        raise InvalidSpec(path, "neither end nor count was specified in withSequence")
    fmt = seq.format or "%d"
    step = 1 if start <= end else -1
    try:
        return [fmt % i for i in range(start, end + step, step)]
    except (TypeError, ValueError) as e:
        raise InvalidSpec(f"{path}.format", f"bad format {fmt!r}: {e}") from None


def items_of(step: Step, *, path: str) -> list[Any]:
    """The items a step expands over (its own references already substituted)."""
    if step.with_items is not None:
        return list(step.with_items)
    if step.with_param is not None:
        try:
            value = json.loads(step.with_param)
        except ValueError:
            raise InvalidSpec(
                f"{path}.withParam", f"withParam value could not be parsed as a JSON list: {step.with_param.strip()}"
            ) from None
        if not isinstance(value, list):
            raise InvalidSpec(f"{path}.withParam", f"withParam value is not a JSON list: {step.with_param.strip()}")
        return value
    if step.with_sequence is not None:
        return list(sequence_items(step.with_sequence, path=f"{path}.withSequence"))
    return []


def expand(step: Step, *, path: str, scope: Mapping[str, str] | None = None) -> Sequence[Expanded]:
    """Expand one step or task; its children are named ``name(i:item)`` and have ``{{item}}`` resolved."""
    items = items_of(step, path=path)
    raw = {k: v for k, v in step.raw.items() if k not in _EXPANSION_KEYS}
    # Artifact `from`s were resolved on the parent (the raw form still names them): children keep those.
    resolved = {a.name: a for a in step.arguments.artifacts}
    out: list[Expanded] = []
    for i, item in enumerate(items):
        local, desc = item_scope(item)
        merged = {**scope, **local} if scope else local
        child_raw = substitute(raw, merged, allow_unresolved=True)
        name = f"{step.name}({i}:{desc})"
        child_raw["name"] = name
        child = wire.parse_step(child_raw, path=path)
        if child.arguments.artifacts:
            arts = tuple(
                resolved.get(a.name, a) if (a.from_ or a.from_expression) else a for a in child.arguments.artifacts
            )
            child = replace(child, arguments=replace(child.arguments, artifacts=arts))
        out.append(Expanded(name=name, step=child))
    return out
