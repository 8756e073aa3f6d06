"""configure_logging: our structlog loggers and stdlib loggers come out in one format, with context."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
import structlog

from gittrigger.logs import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_for_structlog_and_stdlib() -> None:
    """Both kinds of logger write JSON lines with level, logger, timestamp and bound context."""
    out = io.StringIO()
    configure_logging(json=True, level="info", stream=out)
    with structlog.contextvars.bound_contextvars(request_id="r1"):
        structlog.get_logger("gittrigger.test").info("node finished", node="n1")
        logging.getLogger("aiohttp.access").info("GET / %s", 200)
    structlog.get_logger("gittrigger.test").debug("hidden")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    ours, theirs = lines
    assert {"event": "node finished", "node": "n1", "request_id": "r1", "level": "info",
            "logger": "gittrigger.test"}.items() <= ours.items()
    assert {"event": "GET / 200", "request_id": "r1", "level": "info", "logger": "aiohttp.access"}.items() \
        <= theirs.items()
    assert "timestamp" in ours and "timestamp" in theirs


@pytest.mark.usefixtures("restore_logging")
def test_console_when_not_json() -> None:
    """json=False renders for people (no JSON), without colour codes on a non-terminal."""
    out = io.StringIO()
    configure_logging(json=False, level="warning", stream=out)
    structlog.get_logger("x").warning("disk almost full", free_mb=3)
    structlog.get_logger("x").info("not shown")
    text = out.getvalue()
    assert "disk almost full" in text and "free_mb=3" in text
    assert "not shown" not in text
    assert "\x1b[" not in text
    assert not text.startswith("{")


@pytest.mark.usefixtures("restore_logging")
def test_auto_picks_json_off_a_terminal() -> None:
    """json=None means JSON when the stream is not a TTY."""
    out = io.StringIO()
    configure_logging(json=None, level="info", stream=out)
    structlog.get_logger("x").info("hello")
    assert json.loads(out.getvalue())["event"] == "hello"


class CountingStream(io.StringIO):
    """A stream that counts flushes and what was visible at each."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed: list[int] = []  # lines visible at each flush
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def flush(self) -> None:
        self.flushed.append(self.getvalue().count("\n"))
        super().flush()


@pytest.mark.usefixtures("restore_logging")
async def test_lines_of_one_loop_iteration_share_one_flush() -> None:
    """On a running loop, the lines logged in one iteration are flushed once, right after it;
    without a loop (see the other tests' plain calls) every line is flushed at once."""
    out = CountingStream()
    configure_logging(json=True, level="info", stream=out)
    log = structlog.get_logger("gittrigger.test")
    for i in range(5):
        log.info("delivery", n=i)
    assert out.flushed == [] and out.writes == 0  # still this iteration
    await asyncio.sleep(0)
    assert out.flushed == [5] and out.writes == 1  # one write for the iteration's lines
    log.info("later")
    await asyncio.sleep(0)
    assert out.flushed == [5, 6]
    await asyncio.to_thread(log.info, "from a worker thread")
    assert out.flushed == [5, 6, 7]
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()][-2:] == ["later",
                                                                                       "from a worker thread"]


@pytest.mark.usefixtures("restore_logging")
async def test_waiting_lines_keep_their_order_and_are_written_at_exit() -> None:
    """A line from a thread is written after the loop's waiting lines; what is still waiting
    when the process exits is written by the exit hook, once."""
    from gittrigger import logs

    out = CountingStream()
    configure_logging(json=True, level="info", stream=out)
    log = structlog.get_logger("gittrigger.test")
    log.info("first")  # waits for the end of this iteration
    thread = threading.Thread(target=log.info, args=("from a thread",))
    thread.start()
    thread.join()  # the loop did not run meanwhile: "first" was still waiting
    log.info("last")
    logs._write_all_waiting()  # as at exit, before the iteration's callback ran
    await asyncio.sleep(0)  # the callback finds nothing left to write
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events == ["first", "from a thread", "last"]
