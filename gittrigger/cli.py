"""
The ``gittrigger`` command line: ``run`` one workflow locally, ``lint`` manifests, ``serve``; the
argo-like client commands (``submit``, ``list``, ``get``, ``logs``, ...) live in
:mod:`gittrigger.clicommands`.

Entry point of the console script and of ``python -m gittrigger`` (:func:`main`). It is the one
place that turns domain errors (:mod:`workflows.errors`) into exit codes and one-line messages:
0 success, 1 a workflow that did not succeed (or lint problems, or an unavailable dependency),
2 usage errors and invalid input, 130 interrupted. A traceback means a bug, never a user mistake.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

import yaml  # only for ``-o yaml``; reading YAML stays in the loaders

from gittrigger import display
from gittrigger.assembly import assemble
from gittrigger.logs import configure_logging
from gittrigger.process import tune_gc
from gittrigger.settings import Settings, load_settings
from workflows.errors import ErrorCode, InvalidSpec, Problems, WorkflowError
from workflows.linting import lint_paths
from workflows.loading import load_paths, manifest_files
from workflows.store.base import RawObject

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
POLL_SECONDS = 0.5
_USAGE_CODES = frozenset({ErrorCode.INVALID, ErrorCode.TOO_LARGE, ErrorCode.NOT_FOUND, ErrorCode.ALREADY_EXISTS})


class UsageError(Exception):
    """A usage error found after argument parsing; printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="gittrigger", description="Argo Workflows and Argo Events, as local processes.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run one workflow to completion on the local executor")
    run.add_argument("file", type=Path, help="a file holding exactly one Workflow (and any templates it uses)")
    run.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                     help="override a workflow parameter (repeatable)")
    run.add_argument("--entrypoint", help="the template to start from instead of spec.entrypoint")
    run.add_argument("-o", "--output", choices=("tree", "json", "yaml"), default="tree")
    run.add_argument("--template", action="append", default=[], type=Path, metavar="FILE",
                     help="a file or folder of (Cluster)WorkflowTemplates for templateRef (repeatable)")
    run.add_argument("--data-dir", type=Path, help="state directory (default: .gittrigger)")
    run.add_argument("--isolation", choices=("auto", "bwrap", "none"))
    run.add_argument("--config", type=Path, help="a settings YAML file")

    lint = commands.add_parser("lint", help="validate Workflow manifests")
    lint.add_argument("paths", nargs="+", type=Path, metavar="FILE", help="files or folders")

    serve = commands.add_parser("serve", help="run the server (Argo-compatible API)")
    serve.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="manifest files or folders to load")
    serve.add_argument("--config", type=Path, help="a settings YAML file")
    serve.add_argument("--host")
    serve.add_argument("--port")
    serve.add_argument("--data-dir", type=Path)
    serve.add_argument("--isolation", choices=("auto", "bwrap", "none"))
    serve.add_argument("--check", action="store_true", help="validate settings and manifests, then exit")
    serve.add_argument("--watch-config", action="store_true",
                       help="reload the manifests when a file changes (polled every second), as on SIGHUP")

    commands.add_parser("pod-init", help="inside a Kubernetes pod: stage the emissary, files and input artifacts")
    commands.add_parser("pod-wait", help="inside a Kubernetes pod: wait for main, save outputs, report the result")

    from gittrigger import clicommands  # imports this module: loaded once it is complete

    clicommands.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    args = build_parser().parse_args(argv)
    tune_gc()
    try:
        if args.command == "lint":
            return _lint(args.paths)
        if args.command == "run":
            return _run_command(args)
        if args.command == "serve":
            return _serve_command(args)
        if args.command in ("pod-init", "pod-wait"):
            from gittrigger import podhelper  # docs/kubernetes-pods.md; only pods need it

            return podhelper.main(args.command)
        from gittrigger import clicommands

        return clicommands.run(args)
    except UsageError as e:
        print(f"gittrigger {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Problems as e:
        for problem in e.problems:
            print(str(problem), file=sys.stderr)
        return EXIT_USAGE
    except WorkflowError as e:
        print(f"gittrigger {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE if e.code in _USAGE_CODES else EXIT_FAILED
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"gittrigger {args.command}: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


# -- lint ------------------------------------------------------------------------------------------


def _lint(paths: Sequence[Path]) -> int:
    limit = load_settings(env=os.environ).sources.max_manifest_bytes
    problems = lint_paths(paths, max_bytes=limit)
    for line in problems:
        print(line)
    if problems:
        return EXIT_FAILED
    count = len(manifest_files(paths))
    print(f"no problems found in {count} file{'' if count == 1 else 's'}")
    return EXIT_OK


# -- run -------------------------------------------------------------------------------------------


def parse_parameters(values: Sequence[str]) -> dict[str, str]:
    """``-p name=value`` pairs (the value may hold ``=``); a pair without ``=`` is a usage error."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise UsageError(f"-p {value!r}: expected NAME=VALUE")
        out[name] = rest
    return out


def _run_command(args: argparse.Namespace) -> int:
    parameters = parse_parameters(args.parameter)
    env = dict(os.environ)
    env.setdefault("GITTRIGGER_LOG_LEVEL", "warning")  # the tree is the output; logs only for trouble
    settings = load_settings(file=args.config, env=env, overrides={
        "store.data_dir": args.data_dir, "executor.isolation": args.isolation,
    })
    configure_logging(json=settings.log.json, level=settings.log.level)
    source, manifest = _the_workflow(args.file, max_bytes=settings.sources.max_manifest_bytes)
    return asyncio.run(_run(
        settings, source=source, manifest=manifest, templates=[args.file, *args.template],
        parameters=parameters, entrypoint=args.entrypoint, output=args.output,
    ))


def _the_workflow(file: Path, *, max_bytes: int) -> tuple[str, dict[str, Any]]:
    if not file.exists():
        raise UsageError(f"{file}: no such file")
    if file.is_dir():
        raise UsageError(f"{file}: is a directory; give the file holding the Workflow")
    found = [(source, doc) for source, doc in load_paths([file], max_bytes=max_bytes) if doc.get("kind") == "Workflow"]
    if len(found) != 1:
        raise UsageError(f"{file}: expected exactly one Workflow document, found {len(found)}")
    return found[0]


async def _run(
    settings: Settings,
    *,
    source: str,
    manifest: Mapping[str, Any],
    templates: Sequence[Path],
    parameters: Mapping[str, str],
    entrypoint: str | None,
    output: str,
) -> int:
    progress = sys.stdout if output == "tree" else sys.stderr
    async with assemble(settings, templates_from=templates) as parts:
        try:
            submitted = await parts.engine.submit(
                manifest, parameters=parameters, entrypoint=entrypoint, namespace=settings.engine.namespace,
            )
        except Problems as e:
            raise Problems([InvalidSpec(f"{source}: {p.path}" if p.path else source, p.message)
                            for p in e.problems]) from None
        except InvalidSpec as e:
            raise InvalidSpec(f"{source}: {e.path}" if e.path else source, e.message) from None
        namespace, name = submitted["metadata"]["namespace"], submitted["metadata"]["name"]
        interrupted = await _watch(parts.engine, parts.store, namespace=namespace, name=name, stream=progress)
        final = await parts.store.get(namespace, name)
    if interrupted and output == "tree":
        print("interrupted: workflow stopped", file=sys.stderr)
    _print_final(final, output=output)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if (final.get("status") or {}).get("phase") == "Succeeded" else EXIT_FAILED


async def _watch(engine: Any, store: Any, *, namespace: str, name: str, stream: TextIO) -> bool:
    """Show progress until the run ends; Ctrl-C stops it (twice: terminates; thrice: abandons).

    Returns whether the user interrupted.
    """
    loop = asyncio.get_running_loop()
    interrupts: list[int] = []
    stoppers: list[asyncio.Task[None]] = []
    waiter = asyncio.create_task(engine.wait(namespace, name), name=f"wait for {namespace}/{name}")

    async def stop(strategy: str) -> None:
        with contextlib.suppress(WorkflowError):  # finished meanwhile
            await engine.stop(namespace, name, strategy=strategy)

    def interrupted() -> None:
        interrupts.append(1)
        if len(interrupts) <= 2:
            strategy, then = ("Stop", "terminate") if len(interrupts) == 1 else ("Terminate", "abandon")
            print(f"\n{strategy.lower()}ping {name} (Ctrl-C again to {then})", file=sys.stderr)
            stoppers.append(asyncio.create_task(stop(strategy), name=f"{strategy} {namespace}/{name}"))
        else:
            waiter.cancel()  # leaves the block; assemble's engine.close() kills the pods

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted)
    view = LiveView(stream)
    seen: set[str] = set()
    try:
        while True:
            finished = waiter.done()
            view.show(await store.get(namespace, name), seen=seen)
            if finished:
                break
            await asyncio.wait({waiter}, timeout=POLL_SECONDS)
        view.clear()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for task in stoppers:
            with contextlib.suppress(asyncio.CancelledError, WorkflowError):
                await task
        if not waiter.done():
            waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
    return bool(interrupts)


class LiveView:
    """A tree redrawn in place on a terminal; elsewhere, one plain line per finished node."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = hasattr(stream, "isatty") and stream.isatty()
        self._drawn = 0

    def show(self, workflow: RawObject, *, seen: set[str]) -> None:
        now = datetime.now(UTC)
        if not self._tty:
            for line in display.finished_lines(workflow, seen=seen, now=now):
                print(line, file=self._stream, flush=True)
            return
        width = max(20, shutil.get_terminal_size().columns - 1)
        tree = [*display.render_tree(workflow, now=now), *display.summary(workflow, now=now)]
        lines = [line[:width] for line in tree]
        self.clear()
        self._stream.write("\n".join(lines) + "\n")
        self._stream.flush()
        self._drawn = len(lines)

    def clear(self) -> None:
        if self._tty and self._drawn:
            self._stream.write(f"\x1b[{self._drawn}F\x1b[J")  # up N lines, erase to the end
            self._stream.flush()
            self._drawn = 0


def _print_final(workflow: RawObject, *, output: str) -> None:
    if output == "json":
        print(json.dumps(workflow, indent=2))
    elif output == "yaml":
        print(yaml.safe_dump(workflow, sort_keys=False, allow_unicode=True), end="")
    else:
        now = datetime.now(UTC)
        for line in [*display.render_tree(workflow, now=now), "", *display.summary(workflow, now=now)]:
            print(line)


# -- serve -----------------------------------------------------------------------------------------


def _serve_command(args: argparse.Namespace) -> int:
    settings = load_settings(file=args.config, env=os.environ, overrides={
        "server.host": args.host, "server.port": args.port, "store.data_dir": args.data_dir,
        "executor.isolation": args.isolation, "sources.manifest_paths": [str(p) for p in args.paths] or None,
    })
    # aiohttp is only needed here; importing it lazily keeps `run` and `lint` quick to start.
    from gittrigger.runtime import check_host, manifest_paths, serve

    check_host(settings)
    if args.check:
        problems = lint_paths(manifest_paths(settings), max_bytes=settings.sources.max_manifest_bytes)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            return EXIT_USAGE
        # Sensors and EventSources (with their secrets) are checked the way a reload checks them.
        from gittrigger.reload import build_configuration
        from gittrigger.secretsources import open_secrets

        async def check() -> None:
            async with open_secrets(settings) as secrets:  # files, or Secrets through the Kubernetes API
                await asyncio.to_thread(
                    build_configuration, manifest_paths(settings), namespace=settings.engine.namespace,
                    secrets=secrets, max_bytes=settings.sources.max_manifest_bytes)

        try:
            asyncio.run(check())
        except WorkflowError as e:
            print(f"gittrigger serve: {e}", file=sys.stderr)
            return EXIT_USAGE
        print("settings and manifests are valid")
        return EXIT_OK
    configure_logging(json=settings.log.json, level=settings.log.level)
    asyncio.run(serve(settings, watch_config=args.watch_config))
    return EXIT_OK
