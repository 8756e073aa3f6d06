"""
Logging setup: structlog for our own loggers, and the same rendering for stdlib loggers.

:func:`configure_logging` is the ONLY place that calls ``structlog.configure``; it is called
once by :mod:`gittrigger.cli` before anything logs. It installs structlog's ``ProcessorFormatter``
on the stdlib root logger, so ``aiohttp.access``, ``kubernetes_asyncio`` and friends come out in
the same format as ours: JSON lines when stderr is not a terminal (or ``json=True``), the console
renderer on a terminal. Logs go to stderr; stdout belongs to command output. Context bound with
``structlog.contextvars.bind_contextvars`` elsewhere (request and delivery ids) is merged in.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import sys
from typing import Any, TextIO

import structlog

from workflows import jsontext


def configure_logging(*, json: bool | None, level: str, stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger; ``json=None`` picks JSON unless ``stream`` is a TTY."""
    out = stream if stream is not None else sys.stderr
    if json is None:
        json = not (hasattr(out, "isatty") and out.isatty())
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[Any]
    if json:
        renderer = [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer(serializer=_json_line)]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=hasattr(out, "isatty") and out.isatty())]
    # Our own loggers skip the stdlib round trip (a LogRecord, a formatter pass, a handler lock):
    # at thousands of deliveries a second that was a third of the server's time per request.
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            *([] if json else [structlog.processors.format_exc_info]),
            *renderer,
        ],
        logger_factory=_NamedWriterFactory(out),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)


def _json_line(event: Any, **kw: Any) -> str:
    """One JSON log line (structlog passes ``default``, its repr fallback for unknown values)."""
    return jsontext.dumps(event, default=kw.get("default"))


class _NamedWriter(structlog.WriteLogger):
    """structlog's plain writer, remembering the name it was asked for (``get_logger(name)``).

    On a running event loop the lines of one iteration are written together, by a callback
    scheduled with the first of them: one ``write`` (and flush) per iteration instead of one per
    line, which matters most when the stream is unbuffered (``PYTHONUNBUFFERED``, common in
    containers: every write a syscall). No line waits longer than the iteration. Without a
    running loop (the CLI, worker threads) a line is written and flushed at once, after any lines
    still waiting, so the order holds; lines still waiting at exit are written then.
    """

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name

    def msg(self, message: str) -> None:
        """Write ``message`` and a newline: now, or when this loop iteration ends."""
        loop = asyncio._get_running_loop()
        with self._lock:
            waiting = _WAITING.get(self._file)
            if loop is None:
                lines = [*(waiting or ()), message]
                _WAITING.pop(self._file, None)
                self._write("\n".join(lines) + "\n")
                self._flush()
                return
            if waiting is not None:
                waiting.append(message)
                return
            _WAITING[self._file] = [message]
        loop.call_soon(_write_waiting, self._file, self._lock)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


_WAITING: dict[TextIO, list[str]] = {}  # per stream, the lines of this loop iteration


def _write_waiting(file: TextIO, lock: Any) -> None:
    with lock:
        lines = _WAITING.pop(file, None)
        if lines:
            with contextlib.suppress(ValueError, OSError):  # closed meanwhile (a test's stream)
                file.write("\n".join(lines) + "\n")
                file.flush()


@atexit.register
def _write_all_waiting() -> None:
    """Lines logged in a loop's last iteration (its callback never ran) are not lost."""
    for file in list(_WAITING):
        _write_waiting(file, contextlib.nullcontext())


class _NamedWriterFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedWriter:
        return _NamedWriter(self._file, str(args[0]) if args else "")


def _add_logger_name(logger: Any, method_name: str, event_dict: Any) -> Any:
    name = getattr(logger, "name", "")
    if name:
        event_dict["logger"] = name
    return event_dict
