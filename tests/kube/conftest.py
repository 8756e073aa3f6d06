"""
Fixtures for tests that talk to the fake Kubernetes API (:mod:`tests.kube.fakeapi`).

``make_fake_kube`` starts fakes (aiohttp's yield-a-factory shape, all closed at teardown, so no
pod process survives a test); ``fake_kube`` is one with the defaults; ``kube_client`` is a real
kubernetes-asyncio ``ApiClient`` pointed at it. ``emissary`` compiles ``images/emissary/emissary.c``
once per session when the file exists (None otherwise).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from tests.kube.fakeapi import FakeKube
from tests.kube.kubelet import compile_emissary

ROOT = Path(__file__).resolve().parents[2]
MakeFakeKube = Callable[..., Awaitable[FakeKube]]


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
