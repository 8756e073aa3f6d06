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

import logging
import sys
from typing import Any, TextIO

import structlog


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
        renderer = [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=hasattr(out, "isatty") and out.isatty())]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
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
