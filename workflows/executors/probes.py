"""
Readiness probes of local daemon containers (exec, httpGet, tcpSocket), Kubernetes' rules.

Called by :mod:`workflows.executors.local` while a daemon's main container runs: once a probe
passes, the executor calls ``on_ready``. A readiness probe that keeps failing never kills the
container (that would be a liveness probe); it is simply retried every ``period_seconds``.
HTTP is spoken over a raw asyncio socket: the engine package may not import aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Final

from workflows.executors.base import Probe

_MIN_PERIOD: Final = 0.05  # a zero period from a manifest must not spin the loop
ExecProbe = Callable[[tuple[str, ...]], Awaitable[bool]]


async def wait_until_ready(probe: Probe, *, host: str, run_exec: ExecProbe) -> None:
    """Return once ``probe`` passes against ``host``; cancel to give up."""
    await asyncio.sleep(probe.initial_delay_seconds)
    while True:
        try:
            async with asyncio.timeout(max(probe.timeout_seconds, _MIN_PERIOD)):
                if await check_once(probe, host=host, run_exec=run_exec):
                    return
        except (TimeoutError, OSError, ValueError):
            pass
        await asyncio.sleep(max(probe.period_seconds, _MIN_PERIOD))


async def check_once(probe: Probe, *, host: str, run_exec: ExecProbe) -> bool:
    """One probe attempt; errors (refused, reset, garbage) count as failure."""
    if probe.exec_command is not None:
        return await run_exec(probe.exec_command)
    if probe.http_port is not None:
        return await _http_ok(
            host, probe.http_port, path=probe.http_path or "/", tls=probe.http_scheme.upper() == "HTTPS"
        )
    if probe.tcp_port is not None:
        _, writer = await asyncio.open_connection(host, probe.tcp_port)
        await _close(writer)
        return True
    return True  # an empty probe passes, as a container without a probe is ready at once


async def _http_ok(host: str, port: int, *, path: str, tls: bool) -> bool:
    context = None
    if tls:  # kubelet does not verify probe certificates either
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    try:
        target = path if path.startswith("/") else "/" + path
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        status_line = await reader.readline()
    finally:
        await _close(writer)
    parts = status_line.split()
    return len(parts) >= 2 and parts[0].startswith(b"HTTP/") and 200 <= int(parts[1]) < 400


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
