"""
The ``gittrigger`` commands that talk to a running server, like the ``argo`` CLI: ``submit``,
``list``, ``get``, ``logs``, ``watch``, ``retry``, ``resubmit``, ``stop``, ``terminate``,
``suspend``, ``resume``, ``delete``, ``template ...`` and ``cron ...``.

:func:`add_commands` is called by :func:`gittrigger.cli.build_parser`, :func:`run` by
:func:`gittrigger.cli.main`, which also maps usage and manifest errors to exit codes. The server is
``--server`` / ``GITTRIGGER_SERVER`` (default http://127.0.0.1:2746), the token
``GITTRIGGER_TOKEN``, the namespace ``-n`` / ``GITTRIGGER_NAMESPACE`` (the server's own default
too) / ``default``. A failed request prints one line (the server's ``message``, or "cannot reach
server at URL: reason") and exits 1. :mod:`gittrigger.client` (aiohttp) is imported only when a
command runs, so ``run`` and ``lint`` start as quickly as before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml  # only for ``-o yaml``

from gittrigger import display
from gittrigger.cli import EXIT_FAILED, EXIT_OK, LiveView, UsageError, parse_parameters
from gittrigger.settings import load_settings
from workflows.loading import load_paths
from workflows.model.ids import pod_name

if TYPE_CHECKING:
    from gittrigger.client import ApiClient, Json

FINISHED: Final = frozenset({"Succeeded", "Failed", "Error"})
OUTPUTS: Final = ("json", "yaml", "wide", "name")
_ACTIONS: Final = {"stop": "stopped", "terminate": "terminated", "suspend": "suspended", "resume": "resumed"}


# -- arguments -------------------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="the namespace (default: $GITTRIGGER_NAMESPACE or default)")
    common.add_argument("--server", help="the server's URL (default: $GITTRIGGER_SERVER or http://127.0.0.1:2746)")
    return common


def add_commands(commands: Any) -> None:
    """Add the client subcommands to ``gittrigger``'s subparsers (``commands``)."""
    common = [_common()]

    def add(name: str, help: str, *, on: Any = commands) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = on.add_parser(name, help=help, parents=common)
        return parser

    submit = add("submit", "submit workflows to the server")
    submit.add_argument("files", nargs="*", type=Path, metavar="FILE")
    submit.add_argument("--from", dest="from_", metavar="KIND/NAME",
                        help="submit from workflowtemplate/NAME or clusterworkflowtemplate/NAME")
    _parameters(submit)
    submit.add_argument("--entrypoint", help="the template to start from instead of spec.entrypoint")
    submit.add_argument("-l", "--labels", action="append", default=[], metavar="KEY=VALUE")
    submit.add_argument("--generate-name", help="metadata.generateName of the submitted workflows")
    submit.add_argument("--server-dry-run", action="store_true", help="validate and name, but do not create")
    submit.add_argument("-w", "--watch", action="store_true", help="watch the workflow until it finishes")
    submit.add_argument("-o", "--output", choices=OUTPUTS)

    listing = add("list", "list workflows")
    listing.add_argument("-l", "--selector", help="a label selector: key=value[,key=value]")
    listing.add_argument("--status", action="append", default=[], help="phases to show (repeatable, comma-separated)")
    listing.add_argument("--running", action="store_true", help="only running workflows")
    listing.add_argument("--completed", action="store_true", help="only finished workflows")
    listing.add_argument("-o", "--output", choices=OUTPUTS)

    get = add("get", "show a workflow and its node tree")
    get.add_argument("name")
    get.add_argument("-o", "--output", choices=OUTPUTS)

    logs = add("logs", "print the logs of a workflow or one of its pods")
    logs.add_argument("name")
    logs.add_argument("pod", nargs="?", help="a pod name (or use --node)")
    logs.add_argument("--node", help="a node's name or display name")
    logs.add_argument("-c", "--container", default="main")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--tail", type=int, metavar="N", help="the last N lines of each pod")
    logs.add_argument("--grep", metavar="REGEX", help="only lines matching REGEX")
    logs.add_argument("-l", "--selector", help="only pods with these labels: key=value[,key=value]")
    logs.add_argument("--since", metavar="DURATION", help="only lines newer than this, e.g. 30s, 5m, 1h30m")
    logs.add_argument("--timestamps", action="store_true", help="prefix each line with its time")
    logs.add_argument("--no-prefix", action="store_true", help="do not prefix lines with the pod name")

    add("watch", "show a workflow's tree live until it finishes").add_argument("name")

    retry = add("retry", "retry a failed workflow")
    retry.add_argument("--restart-successful", action="store_true", help="also re-run the selected successful nodes")
    retry.add_argument("--node-field-selector", help="nodes to restart, e.g. displayName=build")
    resubmit = add("resubmit", "submit a workflow again, as a new one")
    resubmit.add_argument("--memoized", action="store_true", help="re-use the outputs of the succeeded nodes")
    for parser in (retry, resubmit):
        parser.add_argument("name")
        _parameters(parser)
        parser.add_argument("-w", "--watch", action="store_true")
        parser.add_argument("-o", "--output", choices=OUTPUTS)

    for action, text in (("stop", "stop a workflow: exit handlers still run"),
                         ("terminate", "terminate a workflow: no exit handlers"),
                         ("suspend", "suspend a workflow"), ("resume", "resume a suspended workflow")):
        parser = add(action, text)
        parser.add_argument("names", nargs="+", metavar="NAME")
        if action in ("stop", "resume"):
            parser.add_argument("--node-field-selector", help="only these nodes")
        if action == "stop":
            parser.add_argument("--message", help="the message of the stopped nodes")

    delete = add("delete", "delete workflows")
    delete.add_argument("names", nargs="*", metavar="NAME")
    delete.add_argument("--all", action="store_true", help="every workflow of the namespace (or of -l)")
    delete.add_argument("-l", "--selector", help="delete the workflows with these labels")
    delete.add_argument("--completed", action="store_true", help="only finished workflows")

    templates = add("template", "manage WorkflowTemplates (--cluster: ClusterWorkflowTemplates)")
    _object_commands(templates.add_subparsers(dest="action", required=True), common=common, kind="template")
    crons = add("cron", "manage CronWorkflows")
    _object_commands(crons.add_subparsers(dest="action", required=True), common=common, kind="cron")


def _parameters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="a workflow parameter (repeatable)")


def _object_commands(actions: Any, *, common: list[argparse.ArgumentParser], kind: str) -> None:
    """create | list | get | delete (and cron's suspend | resume) of WorkflowTemplates or CronWorkflows."""
    def add(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=help, parents=common)
        if kind == "template":
            parser.add_argument("--cluster", action="store_true", help="ClusterWorkflowTemplates")
        return parser

    create = add("create", "create from manifest files")
    create.add_argument("files", nargs="+", type=Path, metavar="FILE")
    create.add_argument("-o", "--output", choices=OUTPUTS)
    add("list", "list them").add_argument("-o", "--output", choices=OUTPUTS)
    get = add("get", "show one")
    get.add_argument("name")
    get.add_argument("-o", "--output", choices=OUTPUTS)
    delete = add("delete", "delete some (or --all)")
    delete.add_argument("names", nargs="*", metavar="NAME")
    delete.add_argument("--all", action="store_true")
    if kind == "cron":
        add("suspend", "stop scheduling").add_argument("names", nargs="+", metavar="NAME")
        add("resume", "schedule again").add_argument("names", nargs="+", metavar="NAME")


# -- running ---------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Run one client command; a failed request is one line on stderr and exit 1."""
    from gittrigger.client import DEFAULT_SERVER, ApiClient, ClientError

    server = args.server or os.environ.get("GITTRIGGER_SERVER") or DEFAULT_SERVER
    if not server.startswith(("http://", "https://")):
        raise UsageError(f"server {server!r}: expected an http:// or https:// URL")
    args.namespace = args.namespace or os.environ.get("GITTRIGGER_NAMESPACE") or "default"
    name = args.command if args.command not in ("template", "cron") else f"{args.command} {args.action}"
    handler = _HANDLERS[args.command]

    async def go() -> int:
        async with ApiClient(server=server, token=os.environ.get("GITTRIGGER_TOKEN") or None) as api:
            return await handler(api, args)

    try:
        return asyncio.run(go())
    except ClientError as e:
        print(f"gittrigger {name}: {e}", file=sys.stderr)
        return EXIT_FAILED


def _now() -> datetime:
    return datetime.now(UTC)


def _print(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)


def _emit(obj: Any, output: str | None, *, human: Callable[[], Sequence[str]]) -> None:
    """``-o json|yaml|name`` or the human view."""
    if output == "json":
        print(json.dumps(obj, indent=2))
    elif output == "yaml":
        print(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True), end="")
    elif output == "name":
        items = obj if isinstance(obj, list) else [obj]
        _print([str((item.get("metadata") or {}).get("name", "")) for item in items])
    else:
        _print(human())


def _workflow_view(workflow: Json) -> list[str]:
    now = _now()
    tree = display.node_table(workflow, now=now)
    return [*display.workflow_details(workflow, now=now), *([""] if tree else []), *tree]


def _exit_code(workflow: Json) -> int:
    return EXIT_OK if (workflow.get("status") or {}).get("phase") == "Succeeded" else EXIT_FAILED


def _labels(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in (v for chunk in values for v in chunk.split(",") if v):
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise UsageError(f"-l {value!r}: expected KEY=VALUE")
        out[key] = rest
    return out


def _manifests(files: Sequence[Path], *, kinds: frozenset[str]) -> list[tuple[str, dict[str, Any]]]:
    """The documents of ``files``, each of one of ``kinds``; anything else is a usage error."""
    for file in files:
        if not file.exists():
            raise UsageError(f"{file}: no such file")
    limit = load_settings(env=os.environ).sources.max_manifest_bytes
    found = load_paths(files, max_bytes=limit)
    for source, doc in found:
        if doc.get("kind") not in kinds:
            raise UsageError(f"{source}: expected {' or '.join(sorted(kinds))}, got kind {doc.get('kind')!r}")
    if not found:
        raise UsageError(f"{', '.join(map(str, files))}: no manifests found")
    return found


def with_arguments(workflow: Mapping[str, Any], *, parameters: Mapping[str, str], entrypoint: str | None,
                   labels: Mapping[str, str], generate_name: str | None) -> dict[str, Any]:
    """The workflow with ``-p`` parameters (set or added), ``--entrypoint``, ``-l`` labels applied, as argo does."""
    out: dict[str, Any] = json.loads(json.dumps(workflow))  # a deep copy of plain JSON
    meta, spec = out.setdefault("metadata", {}), out.setdefault("spec", {})
    if labels:
        meta["labels"] = {**(meta.get("labels") or {}), **labels}
    if generate_name:
        meta.pop("name", None)
        meta["generateName"] = generate_name
    if entrypoint:
        spec["entrypoint"] = entrypoint
    if parameters:
        listed = spec.setdefault("arguments", {}).setdefault("parameters", [])
        left = dict(parameters)
        for param in listed:
            if param.get("name") in left:
                param["value"] = left.pop(param["name"])
        listed.extend({"name": k, "value": v} for k, v in left.items())
    return out


def _from(reference: str) -> dict[str, Any]:
    kind, _, name = reference.partition("/")
    refs = {"workflowtemplate": {}, "clusterworkflowtemplate": {"clusterScope": True}}
    if kind.lower() not in refs or not name:
        raise UsageError(f"--from {reference!r}: expected workflowtemplate/NAME or clusterworkflowtemplate/NAME")
    return {"metadata": {"generateName": f"{name}-"},
            "spec": {"workflowTemplateRef": {"name": name, **refs[kind.lower()]}}}


async def _submit(api: ApiClient, args: argparse.Namespace) -> int:
    if bool(args.files) == bool(args.from_):
        raise UsageError("give manifest FILEs or --from KIND/NAME (one of them)")
    parameters = parse_parameters(args.parameter)
    sources = [("--from", _from(args.from_))] if args.from_ else _manifests(args.files, kinds=frozenset({"Workflow"}))
    code = EXIT_OK
    for _, manifest in sources:
        workflow = with_arguments(manifest, parameters=parameters, entrypoint=args.entrypoint,
                                  labels=_labels(args.labels), generate_name=args.generate_name)
        created = await api.create_workflow(args.namespace, workflow, dry_run=args.server_dry_run)
        if args.watch and not args.server_dry_run:
            code = max(code, await _follow(api, args.namespace, created["metadata"]["name"], output=args.output))
        else:
            _emit(created, args.output, human=partial(_workflow_view, created))
    return code


def _phase_filter(args: argparse.Namespace) -> Callable[[Json], bool]:
    wanted = {p.strip().lower() for chunk in args.status for p in chunk.split(",") if p.strip()}

    def keep(workflow: Json) -> bool:
        phase = str((workflow.get("status") or {}).get("phase") or "Pending")
        finished = phase in FINISHED
        return ((not wanted or phase.lower() in wanted) and not (args.running and finished)
                and not (args.completed and not finished))
    return keep


def _newest_first(workflow: Json) -> tuple[bool, str]:
    # Argo lists unfinished runs first, then the rest, newest first within each.
    finished = bool((workflow.get("status") or {}).get("finishedAt"))
    return (not finished, str((workflow.get("metadata") or {}).get("creationTimestamp") or ""))


async def _list(api: ApiClient, args: argparse.Namespace) -> int:
    items = [wf for wf in await api.list_workflows(args.namespace, labels=args.selector) if _phase_filter(args)(wf)]
    items.sort(key=_newest_first, reverse=True)
    if not items and args.output not in ("json", "yaml"):
        if args.output != "name":
            print("No workflows found")
        return EXIT_OK
    _emit(items, args.output, human=lambda: display.workflow_table(items, now=_now(), wide=args.output == "wide"))
    return EXIT_OK


async def _get(api: ApiClient, args: argparse.Namespace) -> int:
    workflow = await api.get_workflow(args.namespace, args.name)
    _emit(workflow, args.output, human=lambda: _workflow_view(workflow))
    return EXIT_OK


def node_pod(workflow: Mapping[str, Any], node: str) -> str:
    """The pod of the node named ``node`` (its id, full name or display name)."""
    nodes: Mapping[str, Mapping[str, Any]] = (workflow.get("status") or {}).get("nodes") or {}
    name = str((workflow.get("metadata") or {}).get("name") or "")
    for node_id, status in nodes.items():
        if node in (node_id, status.get("name"), status.get("displayName")) and status.get("type") == "Pod":
            return pod_name(name, str(status.get("name")), str(status.get("templateName") or ""))
    raise UsageError(f"--node {node!r}: {name} has no pod node of that name")


def parse_duration(text: str) -> int:
    """Go-style durations as ``argo logs --since`` takes them (``90s``, ``5m``, ``1h30m``) -> seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"--since {text!r}: expected a duration such as 30s, 5m or 1h30m")
    return sum(int(n) * units[u] for n, u in parts)


async def _logs(api: ApiClient, args: argparse.Namespace) -> int:
    pod = args.pod
    if args.node:
        if pod:
            raise UsageError("give a POD or --node, not both")
        pod = node_pod(await api.get_workflow(args.namespace, args.name), args.node)
    prefix = not pod and not args.no_prefix
    lines = api.logs(args.namespace, args.name, pod_name=pod, container=args.container, follow=args.follow,
                     tail=args.tail, grep=args.grep, selector=args.selector, timestamps=args.timestamps,
                     since_seconds=parse_duration(args.since) if args.since else None)
    async with aclosing(lines):
        async for entry in lines:
            content = str(entry.get("content", ""))
            print(f"{entry.get('podName', '')}: {content}" if prefix else content, flush=True)
    return EXIT_OK


async def _watch(api: ApiClient, args: argparse.Namespace) -> int:
    return await _follow(api, args.namespace, args.name, output=None)


async def _follow(api: ApiClient, namespace: str, name: str, *, output: str | None) -> int:
    """Show the workflow live until it finishes (a dropped stream is re-opened); its final view; exit like run."""
    workflow = await api.get_workflow(namespace, name)
    view, seen = LiveView(sys.stdout if output in (None, "wide") else sys.stderr), set[str]()
    while (workflow.get("status") or {}).get("phase") not in FINISHED:
        view.show(workflow, seen=seen)
        events = api.watch_workflow(namespace, name)
        async with aclosing(events):
            async for event in events:
                if event.get("type") == "DELETED":
                    view.clear()
                    print(f"workflow {name} was deleted", file=sys.stderr)
                    return EXIT_FAILED
                if isinstance(event.get("object"), dict):
                    workflow = event["object"]
                    view.show(workflow, seen=seen)
                    if (workflow.get("status") or {}).get("phase") in FINISHED:
                        break
        workflow = await api.get_workflow(namespace, name)  # the final state, or where a dropped stream left
    view.show(workflow, seen=seen)
    view.clear()
    _emit(workflow, output, human=lambda: _workflow_view(workflow))
    return _exit_code(workflow)


async def _retry(api: ApiClient, args: argparse.Namespace) -> int:
    parameters = [f"{k}={v}" for k, v in parse_parameters(args.parameter).items()]
    workflow = await api.act(args.namespace, args.name, "retry", restartSuccessful=args.restart_successful or None,
                             nodeFieldSelector=args.node_field_selector, parameters=parameters or None)
    return await _then(api, args, workflow)


async def _resubmit(api: ApiClient, args: argparse.Namespace) -> int:
    parameters = [f"{k}={v}" for k, v in parse_parameters(args.parameter).items()]
    workflow = await api.act(args.namespace, args.name, "resubmit", memoized=args.memoized or None,
                             parameters=parameters or None)
    return await _then(api, args, workflow)


async def _then(api: ApiClient, args: argparse.Namespace, workflow: Json) -> int:
    if args.watch:
        return await _follow(api, args.namespace, workflow["metadata"]["name"], output=args.output)
    _emit(workflow, args.output, human=lambda: _workflow_view(workflow))
    return EXIT_OK


async def _act(api: ApiClient, args: argparse.Namespace) -> int:
    extra = {"nodeFieldSelector": getattr(args, "node_field_selector", None), "message": getattr(args, "message", None)}
    for name in args.names:
        await api.act(args.namespace, name, args.command, **extra)
        print(f"workflow {name} {_ACTIONS[args.command]}")
    return EXIT_OK


async def _delete(api: ApiClient, args: argparse.Namespace) -> int:
    names = list(args.names)
    if args.all or args.selector or args.completed:
        if names:
            raise UsageError("give NAMEs or --all/-l/--completed, not both")
        keep = _phase_filter(argparse.Namespace(status=[], running=False, completed=args.completed))
        names = [wf["metadata"]["name"] for wf in await api.list_workflows(args.namespace, labels=args.selector)
                 if keep(wf)]
    elif not names:
        raise UsageError("give the NAMEs of the workflows to delete, or --all")
    for name in names:
        await api.delete_workflow(args.namespace, name)
        print(f"Workflow '{name}' deleted")
    return EXIT_OK


# -- templates and cron workflows ------------------------------------------------------------------


async def _objects(api: ApiClient, args: argparse.Namespace) -> int:
    """``template|cron create|list|get|delete|suspend|resume``: WorkflowTemplates (``--cluster``:
    ClusterWorkflowTemplates) or CronWorkflows."""
    cron, ns = args.command == "cron", args.namespace
    scope = None if getattr(args, "cluster", False) else ns
    kind = "CronWorkflow" if cron else "WorkflowTemplate" if scope else "ClusterWorkflowTemplate"

    async def listing() -> list[Json]:
        return await (api.list_crons(ns) if cron else api.list_templates(scope))

    def details(obj: Json) -> Callable[[], Sequence[str]]:
        return partial(display.object_details, obj, now=_now())

    if args.action == "create":
        for _, manifest in _manifests(args.files, kinds=frozenset({kind})):
            created = await (api.create_cron(ns, manifest) if cron else api.create_template(scope, manifest))
            _emit(created, args.output, human=details(created))
    elif args.action == "list":
        items = await listing()
        _emit(items, args.output, human=partial(display.cron_table if cron else display.template_table, items,
                                                now=_now()))
    elif args.action == "get":
        obj = await (api.get_cron(ns, args.name) if cron else api.get_template(scope, args.name))
        _emit(obj, args.output, human=details(obj))
    elif args.action == "delete":
        if args.all == bool(args.names):
            raise UsageError("give the NAMEs to delete or --all (one of them)")
        for name in list(args.names) or [str(item["metadata"]["name"]) for item in await listing()]:
            await (api.delete_cron(ns, name) if cron else api.delete_template(scope, name))
            print(f"{kind} '{name}' deleted")
    else:  # cron suspend | resume
        for name in args.names:
            await api.act_cron(ns, name, args.action)
            print(f"{kind} '{name}' {_ACTIONS[args.action]}")
    return EXIT_OK


_HANDLERS: Final[Mapping[str, Callable[[ApiClient, argparse.Namespace], Awaitable[int]]]] = {
    "submit": _submit, "list": _list, "get": _get, "logs": _logs, "watch": _watch, "retry": _retry,
    "resubmit": _resubmit, "stop": _act, "terminate": _act, "suspend": _act, "resume": _act, "delete": _delete,
    "template": _objects, "cron": _objects,
}
