"""
Fixtures for tests that talk to the fake Kubernetes API (:mod:`tests.kube.fakeapi`).

``make_fake_kube`` starts fakes (aiohttp's yield-a-factory shape, all closed at teardown, so no
pod process survives a test); ``fake_kube`` is one with the defaults; ``kube_client`` is a real
kubernetes-asyncio ``ApiClient`` pointed at it. ``emissary`` compiles ``images/emissary/emissary.c``
once per session when the file exists (None otherwise). Every test here also checks (autouse)
that it left no asyncio task pending and no child process running.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from tests.kube.fakeapi import FakeKube
from tests.kube.kubelet import compile_emissary
from workflows.executors.processes import descendants

ROOT = Path(__file__).resolve().parents[2]
MakeFakeKube = Callable[..., Awaitable[FakeKube]]


@pytest.fixture(autouse=True)
async def nothing_left_behind() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks pending or child processes alive (after its fakes closed)."""
    before = set(asyncio.all_tasks())
    yield
    for _ in range(50):  # let just-cancelled tasks unwind and killed processes be reaped
        tasks = {t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()}
        children = descendants(os.getpid())
        if not tasks and not children:
            return
        await asyncio.sleep(0.01)
    assert not tasks, f"tasks left pending: {sorted(t.get_name() for t in tasks)}"
    assert not children, f"processes left running: {children}"


@pytest.fixture(scope="session")
def emissary(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """The emissary binary for the helper image, compiled once per session (None without its source)."""
    return compile_emissary(ROOT / "images" / "emissary" / "emissary.c", cache_dir=tmp_path_factory.mktemp("emissary"))


@pytest.fixture
async def make_fake_kube(tmp_path: Path, emissary: Path | None) -> AsyncIterator[MakeFakeKube]:
    """A factory of started fakes: ``await make_fake_kube(kubelet=False, latency_seconds=0.01)``."""
    fakes: list[FakeKube] = []

    async def go(**kwargs: Any) -> FakeKube:
        kwargs.setdefault("data_dir", tmp_path / f"kube-{len(fakes)}")
        kwargs.setdefault("emissary", emissary)
        fake = FakeKube(**kwargs)
        fakes.append(fake)
        await fake.start()
        return fake

    yield go
    for fake in fakes:
        await fake.close()


@pytest.fixture
async def fake_kube(make_fake_kube: MakeFakeKube) -> FakeKube:
    """A started fake with its kubelet and the default nodes ``node-a`` and ``node-b``."""
    return await make_fake_kube()


def api_client_for(fake: FakeKube) -> client.ApiClient:
    """A kubernetes-asyncio client for ``fake`` (plain HTTP, no auth); close it when done."""
    configuration = client.Configuration(host=fake.url)
    return client.ApiClient(configuration=configuration)


@pytest.fixture
async def kube_client(fake_kube: FakeKube) -> AsyncIterator[client.ApiClient]:
    """A real ``ApiClient`` configured for ``fake_kube``."""
    async with api_client_for(fake_kube) as api:
        yield api
