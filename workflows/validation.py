"""
Everything checked about a workflow before it runs: what ``gittrigger lint`` prints and submit refuses.

Called by :mod:`workflows.engine` on submit, the HTTP lint endpoint and :mod:`workflows.linting`.
Mirrors the useful part of Argo's ``workflow/validate/validate.go`` but collects *all* problems
instead of stopping at the first, each an :class:`InvalidSpec` naming the field
(``spec.templates[2].dag.tasks[1].dependencies: unknown task "E"``).

Variable references are checked with a tag regex of our own (the evaluator lives in
:mod:`workflows.templating`). As in Argo, only tags under ``item``, ``inputs.``, ``steps.``,
``tasks.``, ``pod.`` and ``workflow.`` are checked; ``outputs.``, labels/annotations, times and
``workflow.outputs`` with a templated globalName are allowed as Argo allows them. Scoping is
stricter than Argo's where Argo is accidentally loose: a step sees steps of earlier groups only
(and its own ``status``), a DAG task sees the tasks it (transitively) depends on; the template's
own outputs see all of them. Inside ``{{= ...}}`` expressions only the simple forms
``inputs.parameters.x`` / ``inputs.parameters['x']``, ``workflow.parameters...`` and
``steps.x`` / ``tasks['x']`` are checked; anything fancier is left to run time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from workflows import artifactgc
from workflows.errors import InvalidSpec, NotFound
from workflows.model.spec import (
    Arguments,
    LifecycleHook,
    ObjectKind,
    Step,
    Template,
    TemplateKind,
    Workflow,
)
from workflows.model.wire import parse_object
from workflows.resolution import (
    CLUSTER_WORKFLOW_TEMPLATE,
    WORKFLOW_TEMPLATE,
    TemplateGetter,
    resolve_workflow_template_ref,
)

_TAG: Final = re.compile(r"{{\s*([^{}]+?)\s*}}")
_QUOTED: Final = r"\[\s*['\"]([^'\"]+)['\"]\s*\]"  # ['name'] / ["name"]
_NOT_AFTER: Final = r"(?<![\w.'\"])"  # a root name, not a member or inside a string
_IDENT: Final = r"(?:\.([A-Za-z_]\w*)|" + _QUOTED + ")"  # .name or ['name']
_EXPR_PARAM: Final = re.compile(_NOT_AFTER + r"(inputs|workflow)\.parameters" + _IDENT)
_EXPR_NODE: Final = re.compile(_NOT_AFTER + r"(steps|tasks)" + _IDENT)
_DURATION: Final = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$|^0$")
_INT: Final = re.compile(r"^-?\d+$")
_CHECKED_ROOTS: Final = ("item", "steps.", "inputs.", "pod.", "workflow.", "tasks.")
_DEPENDS_RESULTS: Final = frozenset({"Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned",
                                     "AnySucceeded", "AllFailed"})
_WORKFLOW_VARS: Final = frozenset({
    "workflow.name", "workflow.namespace", "workflow.uid", "workflow.serviceAccountName",
    "workflow.mainEntrypoint", "workflow.status", "workflow.failures", "workflow.priority",
    "workflow.labels", "workflow.annotations", "workflow.labels.json", "workflow.annotations.json",
})
_WORKFLOW_PREFIXES: Final = ("workflow.labels.", "workflow.annotations.", "workflow.creationTimestamp",
                             "workflow.scheduledTime", "workflow.duration")
_NODE_FIELDS: Final = frozenset({"id", "ip", "status", "startedAt", "finishedAt", "hostNodeName", "exitCode",
                                 "outputs.result", "outputs.parameters", "outputs.artifacts"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Scope:
    """What a string inside one template (or one step of it) may refer to."""

    template: Template
    leaf: bool
    loop: bool = False
    extra_inputs: frozenset[str] = frozenset()  # inline template inputs, seen from the step
    root: str | None = None  # "steps" | "tasks"
    nodes: Mapping[str, Template | None] = field(default_factory=dict)  # visible steps/tasks
    own: str | None = None  # the step itself: its `status` is visible (hooks)
    all_nodes: frozenset[str] = frozenset()


@dataclass(slots=True, kw_only=True)
class _Context:
    workflow: Workflow
    getter: TemplateGetter
    problems: list[InvalidSpec] = field(default_factory=list)
    workflow_params: frozenset[str] = frozenset()
    check_workflow_params: bool = True
    global_outputs: frozenset[str] = frozenset()
    any_global_output: bool = False

    def add(self, path: str, message: str) -> None:
        self.problems.append(InvalidSpec(path, message))


def validate_object(raw: Mapping[str, Any], *, getter: TemplateGetter, path: str = "") -> list[InvalidSpec]:
    """Parse and validate one manifest: the parse error alone, or every validation problem."""
    try:
        workflow = parse_object(raw, path=path)
    except InvalidSpec as e:
        return [e]
    return validate(workflow, getter=getter)


def validate(
    workflow: Workflow, *, getter: TemplateGetter, submit_parameters: Mapping[str, str] | None = None
) -> list[InvalidSpec]:
    """Every problem of ``workflow`` (empty when it may run). ``submit_parameters`` override arguments."""
    submitted = submit_parameters or {}
    ctx = _Context(workflow=workflow, getter=getter)
    if workflow.spec.workflow_template_ref is not None:
        if workflow.spec.templates:
            ctx.add("spec.templates", "must be empty when spec.workflowTemplateRef is used")
        try:
            workflow = resolve_workflow_template_ref(workflow, getter)
        except NotFound as e:
            ctx.add("spec.workflowTemplateRef.name", str(e))
            return ctx.problems
        except InvalidSpec as e:
            ctx.add(f"spec.workflowTemplateRef: {e.path}", e.message)
            return ctx.problems
        ctx.workflow = workflow
    spec = workflow.spec
    is_template = workflow.kind in (ObjectKind.WORKFLOW_TEMPLATE, ObjectKind.CLUSTER_WORKFLOW_TEMPLATE)
    ctx.workflow_params = frozenset(p.name for p in spec.arguments.parameters)
    ctx.check_workflow_params = not is_template  # a WorkflowTemplate's users may add arguments
    global_names = {o.global_name for t in spec.templates for o in t.outputs.parameters if o.global_name}
    global_names |= {o.global_name for t in spec.templates for o in t.outputs.artifacts if o.global_name}
    ctx.global_outputs = frozenset(global_names)
    ctx.any_global_output = any("{{" in g for g in global_names)

    _check_arguments(ctx, spec.arguments, submitted=submitted, require_values=not is_template)
    seen: dict[str, int] = {}
    for i, template in enumerate(spec.templates):
        if template.name in seen:
            ctx.add(f"spec.templates[{i}].name", f"duplicate template name {template.name!r} "
                    f"(also spec.templates[{seen[template.name]}])")
        seen.setdefault(template.name, i)
    # A WorkflowTemplate's entrypoint gets its arguments from the workflows that use it.
    entry_args = None if is_template else spec.arguments
    if spec.entrypoint:
        _call(ctx, spec.entrypoint, path="spec.entrypoint", arguments=entry_args)
    elif not is_template:
        ctx.add("spec.entrypoint", "is required")
    if spec.on_exit:
        _call(ctx, spec.on_exit, path="spec.onExit", arguments=entry_args)
    _check_hooks(ctx, spec.hooks, path="spec.hooks")
    for i, template in enumerate(spec.templates):
        _check_template(ctx, template, path=f"spec.templates[{i}]")
    ctx.problems += artifactgc.problems(spec.raw)
    return ctx.problems


def _check_arguments(ctx: _Context, arguments: Arguments, *, submitted: Mapping[str, str],
                     require_values: bool) -> None:
    for i, param in enumerate(arguments.parameters):
        path = f"spec.arguments.parameters[{i}]"
        value = submitted.get(param.name, param.value)
        if value is None and param.value_from is None:
            if require_values:
                ctx.add(f"{path}.value", f"argument {param.name!r} has no value and none was supplied")
        elif value is not None and param.enum and "{{" not in value and value not in param.enum:
            ctx.add(f"{path}.value",
                    f"parameter {param.name!r}: {value!r} is not one of the allowed values {list(param.enum)}")


def _resolve(ctx: _Context, target: Step | LifecycleHook | str, *, path: str) -> Template | None:
    """The template a call names, or None after recording why not (or when it cannot be known yet)."""
    name: str | None
    if isinstance(target, str):
        name, ref, inline = target, None, None
    else:
        name, ref = target.template, target.template_ref
        inline = target.inline if isinstance(target, Step) else None
    given = [what for what, v in (("template", name), ("templateRef", ref), ("inline", inline)) if v]
    if len(given) != 1:
        ctx.add(path, "exactly one of template, templateRef or inline is required"
                if not given else f"only one of {', '.join(given)} may be given")
        return None
    if inline is not None:
        return inline
    if ref is not None:
        if "{{" in ref.name or "{{" in ref.template:
            return None  # chosen at run time
        kind = CLUSTER_WORKFLOW_TEMPLATE if ref.cluster_scope else WORKFLOW_TEMPLATE
        try:
            obj = ctx.getter.get(kind, ctx.workflow.metadata.namespace, ref.name)
        except NotFound:
            ctx.add(f"{path}.templateRef.name", f"{kind} {ref.name!r} not found")
            return None
        found = obj.spec.template(ref.template)
        if found is None:
            ctx.add(f"{path}.templateRef.template", f"{kind} {ref.name!r} has no template {ref.template!r}")
        return found
    assert name is not None
    if "{{" in name:
        return None
    found = ctx.workflow.spec.template(name)
    if found is None:
        ctx.add(path if isinstance(target, str) else f"{path}.template", f"unknown template {name!r}")
    return found


def _call(ctx: _Context, target: Step | LifecycleHook | str, *, path: str,
          arguments: Arguments | None) -> Template | None:
    """Resolve a call and check that ``arguments`` satisfy the template's inputs (None: unknown yet)."""
    template = _resolve(ctx, target, path=path)
    if template is None or arguments is None:
        return template
    where = path if isinstance(target, str) else f"{path}.arguments"
    for param in template.inputs.parameters:
        arg = arguments.parameter(param.name)
        if arg is None:
            if param.value is None and param.default is None and param.value_from is None:
                ctx.add(where, f"missing argument for input parameter {param.name!r} of template "
                        f"{template.name!r}")
        elif param.enum and arg.value is not None and "{{" not in arg.value and arg.value not in param.enum:
            ctx.add(where, f"parameter {param.name!r}: {arg.value!r} is not one of the allowed values "
                    f"{list(param.enum)} of template {template.name!r}")
    supplied = {a.name for a in arguments.artifacts}
    for art in template.inputs.artifacts:
        if art.name not in supplied and not art.optional and not art.has_location:
            ctx.add(where, f"missing argument for input artifact {art.name!r} of template {template.name!r}")
    return template


def _check_hooks(ctx: _Context, hooks: Mapping[str, LifecycleHook], *, path: str) -> None:
    for name, hook in hooks.items():
        _call(ctx, hook, path=f"{path}.{name}", arguments=hook.arguments)


def _check_template(ctx: _Context, template: Template, *, path: str, loop: bool = False,
                    scan: bool = True) -> None:
    """Structure of one template, its calls, and (when ``scan``) its variable references."""
    _check_template_fields(ctx, template, path=path)
    _check_hooks(ctx, template.hooks, path=f"{path}.hooks")
    if template.kind is TemplateKind.STEPS:
        _check_steps(ctx, template, path=path, loop=loop)
    elif template.kind is TemplateKind.DAG:
        _check_dag(ctx, template, path=path, loop=loop)
    elif scan:
        _scan(ctx, template.raw, path=path, scope=_Scope(template=template, leaf=True, loop=loop))


def _duration(ctx: _Context, value: str | None, *, path: str, plain_seconds: bool) -> None:
    if value is None or "{{" in value or _DURATION.match(value) or (plain_seconds and _INT.match(value)):
        return
    hint = "30s, 5m, 1h or seconds" if plain_seconds else "30s, 5m or 1h"
    ctx.add(path, f"invalid duration {value!r} (use e.g. {hint})")


def _check_template_fields(ctx: _Context, template: Template, *, path: str) -> None:
    retry = template.retry_strategy
    if retry is not None:
        limit = retry.limit
        if limit is not None and "{{" not in limit and not (_INT.match(limit) and int(limit) >= 0):
            ctx.add(f"{path}.retryStrategy.limit", f"must be a non-negative integer or a variable, "
                    f"got {limit!r}")
        if retry.backoff is not None:
            backoff = retry.backoff
            for key, value in (("duration", backoff.duration), ("maxDuration", backoff.max_duration),
                               ("cap", backoff.cap)):
                _duration(ctx, value, path=f"{path}.retryStrategy.backoff.{key}", plain_seconds=True)
    if template.timeout is not None:
        if not template.is_leaf:
            ctx.add(f"{path}.timeout", f"{template.kind.value} templates do not support timeout")
        _duration(ctx, template.timeout, path=f"{path}.timeout", plain_seconds=False)
    _duration(ctx, template.suspend_duration, path=f"{path}.suspend.duration", plain_seconds=True)
    if template.memoize is not None:
        _duration(ctx, template.memoize.max_age, path=f"{path}.memoize.maxAge", plain_seconds=False)
    deadline = template.active_deadline_seconds
    if deadline is not None and "{{" not in deadline and not (_INT.match(deadline) and int(deadline) >= 0):
        ctx.add(f"{path}.activeDeadlineSeconds", f"must be a non-negative integer or a variable, "
                f"got {deadline!r}")
    if template.parallelism is not None and template.is_leaf:
        ctx.add(f"{path}.parallelism", "is only valid for steps and dag templates")
    defaults = (ctx.workflow.spec.template_defaults or {}).get(template.kind.value) or {}
    if template.kind in (TemplateKind.CONTAINER, TemplateKind.SCRIPT) and not (
            (template.container or {}).get("image") or defaults.get("image")):
        ctx.add(f"{path}.{template.kind.value}.image", "is required")


def _check_loop(ctx: _Context, step: Step, *, path: str) -> None:
    given = [k for k, v in (("withItems", step.with_items), ("withParam", step.with_param),
                            ("withSequence", step.with_sequence)) if v is not None]
    if len(given) > 1:
        ctx.add(path, f"only one of withItems, withParam, withSequence may be given, "
                f"not {' and '.join(given)}")
    seq = step.with_sequence
    if seq is not None:
        if seq.count is not None and seq.end is not None:
            ctx.add(f"{path}.withSequence", "only one of count or end may be given")
        for key, value in (("count", seq.count), ("start", seq.start), ("end", seq.end)):
            if value is not None and "{{" not in value and not _INT.match(value.strip()):
                ctx.add(f"{path}.withSequence.{key}", f"must be an integer or a variable, got {value!r}")


def _check_step_call(ctx: _Context, step: Step, *, path: str, loop: bool) -> Template | None:
    """Checks common to steps and tasks; returns the called template when known."""
    _check_loop(ctx, step, path=path)
    for i, param in enumerate(step.arguments.parameters):
        if param.value is None and param.value_from is None:
            ctx.add(f"{path}.arguments.parameters[{i}]", f"argument {param.name!r} has no value")
    called = _call(ctx, step, path=path, arguments=step.arguments)
    if step.inline is not None:
        # A leaf inline body is scanned with the step (it sees the step's scope, as in Argo).
        _check_template(ctx, step.inline, path=f"{path}.inline", loop=loop or step.expands, scan=False)
    if step.on_exit:
        _call(ctx, step.on_exit, path=f"{path}.onExit", arguments=step.arguments)
    _check_hooks(ctx, step.hooks, path=f"{path}.hooks")
    return called


def _check_steps(ctx: _Context, template: Template, *, path: str, loop: bool) -> None:
    names: dict[str, str] = {}
    visible: dict[str, Template | None] = {}
    everything = frozenset(s.name for group in template.steps for s in group)
    for g, group in enumerate(template.steps):
        called_here: dict[str, Template | None] = {}
        for s, step in enumerate(group):
            step_path = f"{path}.steps[{g}][{s}]"
            if step.name in names:
                ctx.add(f"{step_path}.name", f"duplicate step name {step.name!r} (also {names[step.name]})")
            names.setdefault(step.name, step_path)
            called = _check_step_call(ctx, step, path=step_path, loop=loop)
            called_here[step.name] = called
            scope = _Scope(template=template, leaf=False, loop=loop or step.expands, root="steps",
                           nodes=dict(visible), own=step.name, all_nodes=everything,
                           extra_inputs=_inline_inputs(step))
            _scan_step(ctx, step, path=step_path, scope=scope, called=called)
        visible.update(called_here)  # a step sees the steps of earlier groups only
    _scan_own_fields(ctx, template, path=path, scope=_Scope(
        template=template, leaf=False, loop=loop, root="steps", nodes=visible, all_nodes=everything))


def _inline_inputs(step: Step) -> frozenset[str]:
    if step.inline is None:
        return frozenset()
    return frozenset(p.name for p in step.inline.inputs.parameters)


def _depends_names(depends: str) -> list[str]:
    """Task names in a ``depends`` expression (``A && (B.Failed || !C.Succeeded)``)."""
    names = []
    for token in re.split(r"&&|\|\||[()!\s]+", depends):
        if not token:
            continue
        base, _, result = token.rpartition(".")
        names.append(base if base and result in _DEPENDS_RESULTS else token)
    return names


def _items_conditions(depends: str) -> list[str]:
    return re.findall(r"([\w-]+)\.(?:AnySucceeded|AllFailed)\b", depends)


def _check_dag(ctx: _Context, template: Template, *, path: str, loop: bool) -> None:
    assert template.dag is not None
    tasks = template.dag.tasks
    if not tasks:
        ctx.add(f"{path}.dag.tasks", "must have at least one task")
    index: dict[str, int] = {}
    for t, task in enumerate(tasks):
        if task.name in index:
            ctx.add(f"{path}.dag.tasks[{t}].name", f"duplicate task name {task.name!r} "
                    f"(also {path}.dag.tasks[{index[task.name]}])")
        index.setdefault(task.name, t)
    uses_depends = any(task.depends for task in tasks)
    deps: dict[str, list[str]] = {}
    called: dict[str, Template | None] = {}
    for t, task in enumerate(tasks):
        task_path = f"{path}.dag.tasks[{t}]"
        if task.depends and task.dependencies:
            ctx.add(task_path, "only one of dependencies and depends may be given")
        elif uses_depends and task.dependencies:
            ctx.add(f"{task_path}.dependencies", "cannot be mixed with depends in the same DAG")
        if uses_depends and task.continue_on is not None:
            ctx.add(f"{task_path}.continueOn", "cannot be used with depends (use depends: \"x.Failed\")")
        mine = list(task.dependencies)
        field_name = "dependencies"
        if task.depends:
            mine, field_name = _depends_names(task.depends), "depends"
            for dep in _items_conditions(task.depends):
                if dep in index and not tasks[index[dep]].expands:
                    ctx.add(f"{task_path}.depends", f"{dep!r} has no items (withItems, withParam or "
                            "withSequence), so .AnySucceeded/.AllFailed do not apply")
        for dep in mine:
            if dep not in index:
                ctx.add(f"{task_path}.{field_name}", f"unknown task {dep!r}")
        deps[task.name] = [d for d in mine if d in index]
        called[task.name] = _check_step_call(ctx, task, path=task_path, loop=loop)
    for cycle in _cycles(deps):
        ctx.add(f"{path}.dag.tasks", f"dependency cycle: {' -> '.join(cycle)}")
    if template.dag.target:
        for target in template.dag.target.split():
            if "{{" not in target and target not in index:
                ctx.add(f"{path}.dag.target", f"unknown task {target!r}")
    everything = frozenset(index)
    for t, task in enumerate(tasks):
        scope = _Scope(template=template, leaf=False, loop=loop or task.expands, root="tasks",
                       nodes=_Ancestors(task.name, deps, called), own=task.name, all_nodes=everything,
                       extra_inputs=_inline_inputs(task))
        _scan_step(ctx, task, path=f"{path}.dag.tasks[{t}]", scope=scope, called=called.get(task.name))
    _scan_own_fields(ctx, template, path=path, scope=_Scope(
        template=template, leaf=False, loop=loop, root="tasks", nodes=called, all_nodes=everything))


class _Ancestors(Mapping[str, "Template | None"]):
    """The tasks ``name`` depends on, directly or not, with what they call: a lazy mapping, worked
    out only when a task refers to another (most never do; a layered DAG made it quadratic)."""

    def __init__(self, name: str, deps: Mapping[str, list[str]], called: Mapping[str, Template | None]) -> None:
        self._name, self._deps, self._called = name, deps, called
        self._names: set[str] | None = None

    def _all(self) -> set[str]:
        if self._names is None:
            self._names = _ancestors(self._name, self._deps)
        return self._names

    def __getitem__(self, key: str) -> Template | None:
        if key not in self._all():
            raise KeyError(key)
        return self._called.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def _ancestors(name: str, deps: Mapping[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(deps.get(name, ()))
    while stack:
        dep = stack.pop()
        if dep not in seen:
            seen.add(dep)
            stack.extend(deps.get(dep, ()))
    return seen


def _cycles(deps: Mapping[str, list[str]]) -> list[list[str]]:
    """One cycle per strongly tangled group, each as ``[A, B, A]``."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    found: list[list[str]] = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        trail.append(name)
        for dep in deps.get(name, ()):
            if state.get(dep) == 1:
                found.append([*trail[trail.index(dep):], dep])
            elif dep not in state:
                visit(dep, trail)
        trail.pop()
        state[name] = 2

    for name in deps:
        if name not in state:
            visit(name, [])
    return found


# --- variable references ---------------------------------------------------------------------


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        if "{{" in value:
            yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def _scan(ctx: _Context, value: Any, *, path: str, scope: _Scope) -> None:
    for where, text in _strings(value, path):
        for match in _TAG.finditer(text):
            tag = match.group(1)
            problem = _expression_problem(ctx, tag[1:], scope) if tag.startswith("=") else _tag_problem(
                ctx, tag, scope)
            if problem:
                ctx.add(where, f"unknown variable {{{{{tag}}}}}: {problem}")


def _scan_step(ctx: _Context, step: Step, *, path: str, scope: _Scope, called: Template | None) -> None:
    inline = step.inline
    # A nested steps/dag inline body has its own scopes; hooks also see the step's own outputs.
    skip = ("hooks", "inline") if inline is not None and not inline.is_leaf else ("hooks",)
    _scan(ctx, {k: v for k, v in step.raw.items() if k not in skip}, path=path, scope=scope)
    if "hooks" in step.raw:
        hook_scope = replace(scope, nodes={**scope.nodes, step.name: called})
        _scan(ctx, step.raw["hooks"], path=f"{path}.hooks", scope=hook_scope)


def _scan_own_fields(ctx: _Context, template: Template, *, path: str, scope: _Scope) -> None:
    """A steps/dag template's fields other than its steps/tasks."""
    own = {k: v for k, v in template.raw.items() if k not in ("steps", "dag")}
    _scan(ctx, own, path=path, scope=scope)
    if template.dag is not None and template.dag.target:
        _scan(ctx, template.dag.target, path=f"{path}.dag.target", scope=scope)


def _tag_problem(ctx: _Context, tag: str, scope: _Scope) -> str | None:
    if not tag.startswith(_CHECKED_ROOTS):
        return None
    if tag == "item" or tag.startswith(("item.", "item[")):
        return None if scope.loop else "used outside a loop (withItems, withParam or withSequence)"
    head, _, rest = tag.partition(".")
    if head == "inputs":
        return _input_problem(rest, scope)
    if head == "pod":
        if rest == "name" and scope.leaf:
            return None
        return "pod.name is only defined in templates that run a pod"
    if head == "workflow":
        return _workflow_problem(ctx, tag)
    if head in ("steps", "tasks"):
        name, _, node_field = rest.partition(".")
        if name == "name" and not node_field:
            return None  # {{steps.name}} / {{tasks.name}}: the current step's own name
        return _node_problem(head, name, node_field, scope)
    return None


def _input_problem(rest: str, scope: _Scope) -> str | None:
    template = scope.template
    kind, _, name = rest.partition(".")
    if kind == "parameters":
        names = {p.name for p in template.inputs.parameters} | scope.extra_inputs
        if not name:
            return None if names else f"template {template.name!r} has no input parameters"
        return None if name in names or name == "json" else \
            f"template {template.name!r} has no input parameter {name!r}"
    if kind == "artifacts":
        art = name.rsplit(".path", 1)[0] if name.endswith(".path") else name
        if art in {a.name for a in template.inputs.artifacts}:
            return None
        return f"template {template.name!r} has no input artifact {art!r}"
    return None


def _workflow_problem(ctx: _Context, tag: str) -> str | None:
    if tag in _WORKFLOW_VARS or tag.startswith(_WORKFLOW_PREFIXES):
        return None
    if tag in ("workflow.parameters", "workflow.parameters.json"):
        return None
    if tag.startswith("workflow.parameters."):
        name = tag.removeprefix("workflow.parameters.")
        if name in ctx.workflow_params or not ctx.check_workflow_params:
            return None
        return f"{name!r} is not a workflow argument (spec.arguments.parameters)"
    for kind in ("parameters", "artifacts"):
        prefix = f"workflow.outputs.{kind}."
        if tag.startswith(prefix):
            if tag.removeprefix(prefix) in ctx.global_outputs or ctx.any_global_output:
                return None
            return "no output of this workflow has that globalName"
    return "not a workflow variable"


def _node_problem(root: str, name: str, node_field: str, scope: _Scope) -> str | None:
    what = "step" if root == "steps" else "task"
    if scope.root != root:
        return f"{root}.* is only defined inside a {'steps' if root == 'steps' else 'dag'} template"
    if name not in scope.nodes:
        if name == scope.own and node_field == "status":
            return None
        if name not in scope.all_nodes:
            return f"template {scope.template.name!r} has no {what} {name!r}"
        if root == "steps":
            return f"step {name!r} does not run before this step (only earlier step groups are visible)"
        return f"task {name!r} is not a dependency of task {scope.own!r}"
    called = scope.nodes[name]
    if called is None or not node_field:
        return None
    for kind in ("parameters", "artifacts"):
        prefix = f"outputs.{kind}."
        if node_field.startswith(prefix):
            wanted = node_field.removeprefix(prefix)
            outputs = called.outputs.parameters if kind == "parameters" else called.outputs.artifacts
            if wanted in {o.name for o in outputs}:
                return None
            return f"{what} {name!r} (template {called.name!r}) has no output {kind[:-1]} {wanted!r}"
    return None if node_field in _NODE_FIELDS else f"{what}s have no field {node_field!r}"


def _expression_problem(ctx: _Context, expression: str, scope: _Scope) -> str | None:
    for match in _EXPR_PARAM.finditer(expression):
        name = match.group(2) or match.group(3)
        problem = _input_problem(f"parameters.{name}", scope) if match.group(1) == "inputs" else \
            _workflow_problem(ctx, f"workflow.parameters.{name}")
        if problem:
            return problem
    for match in _EXPR_NODE.finditer(expression):
        problem = _node_problem(match.group(1), match.group(2) or match.group(3), "", scope)
        if problem:
            return problem
    return None
