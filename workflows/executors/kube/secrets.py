"""
Reading ``v1 Secret`` objects from the Kubernetes API: one GET, ``data`` decoded from base64.

Used by :class:`gittrigger.secretsources.KubeSecrets` (which caches what this reads and bridges it
to the synchronous secret resolver). It lives here because ``kubernetes_asyncio`` is imported only
under :mod:`workflows.executors.kube` (``tests/test_architecture.py``). The API never returns
``stringData`` (it is write-only, merged into ``data``), so ``data`` is all there is to read.

The GET goes through :class:`~workflows.executors.kube.calls.Requests` (no rate limit: reads are
cached by the caller), so errors are mapped where every API error is: domain errors that never carry
a value. 404 is :class:`~workflows.errors.NotFound`, 403 :class:`SecretForbidden` (whose message
says RBAC must allow ``get`` on ``secrets``), 5xx/429/transport failures
:class:`~workflows.errors.Unavailable` after a few quick retries.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, Final

from kubernetes_asyncio import client

from workflows.errors import ErrorCode, Unavailable, WorkflowError
from workflows.executors.kube.calls import REQUEST_TIMEOUT, Requests

_ATTEMPTS: Final = 3


class SecretForbidden(WorkflowError):
    """The API server refused to show the Secret (403): the service account lacks RBAC ``get`` on secrets."""

    code: ClassVar[ErrorCode] = ErrorCode.FORBIDDEN

    def __init__(self, *, namespace: str, name: str, detail: str) -> None:
        super().__init__(
            f"kubernetes API refused to read secret {name!r} in namespace {namespace!r} ({detail}): "
            f"RBAC must allow get on secrets in {namespace!r} for this server's service account")
        self.namespace = namespace
        self.name = name


class SecretsApi:
    """GET one Secret and decode its ``data``; see the module docstring."""

    def __init__(self, api: client.ApiClient, *, attempts: int = _ATTEMPTS, owns_client: bool = False) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._requests = Requests(retries=attempts - 1)
        self._owns_client = owns_client

    async def close(self) -> None:
        """Close the API client when this reader owns it (``owns_client``)."""
        if self._owns_client:
            await self._api.close()

    async def read(self, namespace: str, name: str) -> Mapping[str, bytes]:
        """Every key of Secret ``name`` in ``namespace`` with its decoded value (read-only mapping)."""
        raw = await self._requests.json(
            lambda: self._core.read_namespaced_secret(
                name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT),
            kind="secret", name=f"{namespace}/{name}",
            forbidden=lambda detail: SecretForbidden(namespace=namespace, name=name, detail=detail))
        data = raw.get("data") or {}
        if not isinstance(data, dict):
            raise Unavailable(f"kubernetes API: secret {name!r} in namespace {namespace!r} has no data mapping")
        decoded: dict[str, bytes] = {}
        for key, value in data.items():
            try:
                decoded[str(key)] = base64.b64decode(str(value or ""), validate=True)
            except (binascii.Error, ValueError):
                # Only the key is named: a broken value is still a secret.
                raise Unavailable(f"kubernetes API: secret {name!r} key {key!r} is not valid base64") from None
        return MappingProxyType(decoded)
