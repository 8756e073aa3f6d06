"""
A small client of the Argo Server REST API (the subset ``gittrigger serve`` speaks): workflows,
their actions, logs and watch streams, WorkflowTemplates, ClusterWorkflowTemplates and CronWorkflows.

Used by :mod:`gittrigger.clicommands` (``gittrigger submit|list|get|logs|...``); it works against a
real Argo Server too, as it only speaks Argo's wire shapes. Failures are two exceptions: the server
answered with an error (:class:`ServerError`, carrying Argo's ``{"code", "message"}``), or it could
not be reached (:class:`Unreachable`). Streams are grpc-gateway's ndjson, one ``{"result": ...}`` per
line, an ``{"error": ...}`` line for a failure after the stream began.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote

import aiohttp

DEFAULT_SERVER: Final = "http://127.0.0.1:2746"
REQUEST_TIMEOUT_SECONDS: Final = 60.0
CONNECT_TIMEOUT_SECONDS: Final = 10.0

Json = dict[str, Any]


class ClientError(Exception):
    """A request that did not succeed; ``str()`` is the one line the CLI prints."""


class ServerError(ClientError):
    """The server answered with an error status (or an error frame inside a stream)."""

    def __init__(self, *, status: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Unreachable(ClientError):
    """No answer: connection refused, DNS, timeout, a dropped connection or a bad URL."""

    def __init__(self, *, url: str, reason: str) -> None:
        super().__init__(f"cannot reach server at {url}: {reason}")
        self.url = url


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, aiohttp.InvalidURL):
        return "not a valid URL"
    if isinstance(error, aiohttp.ClientConnectorError):
        if isinstance(error.os_error, ConnectionRefusedError):
            return "connection refused"
        return error.strerror or str(error.os_error) or type(error).__name__
    return str(error) or type(error).__name__


def error_message(*, status: int, reason: str, body: bytes) -> tuple[str, int | None]:
    """Argo's ``message`` (and gRPC ``code``) of an error body; the HTTP status line when it has none."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if isinstance(parsed, dict):
        nested = parsed.get("error")
        inner: Mapping[str, Any] = nested if isinstance(nested, dict) else parsed
        if isinstance(inner.get("message"), str) and inner["message"]:
            code = inner.get("code")
            return inner["message"], code if isinstance(code, int) else None
    text = body.decode(errors="replace").strip()
    return (f"{status} {reason}: {text[:200]}" if text else f"{status} {reason}"), None


def _path(*parts: str) -> str:
    # Names and namespaces are DNS labels; quoting keeps a stray "/" from reaching another route.
    return "/".join(quote(p, safe="") for p in parts)


def _query(params: Mapping[str, str | int | bool | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None or value == "" or value is False:
            continue
        out[key] = "true" if value is True else str(value)
    return out


class ApiClient:
    """An Argo Server session: ``async with ApiClient(server=..., token=...) as api: await api.get_workflow(...)``.

    ``token`` is sent as ``Authorization: Bearer <token>`` (a token already starting with ``Bearer ``,
    as ``ARGO_TOKEN`` does, is sent as is).
    """

    def __init__(self, *, server: str = DEFAULT_SERVER, token: str | None = None) -> None:
        self.server = server.rstrip("/")
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = token if token.startswith("Bearer ") else f"Bearer {token}"
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_SECONDS)
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=timeout)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- transport -------------------------------------------------------------------------------

    def _open(self, method: str, path: str, *, query: Mapping[str, str | int | bool | None] | None,
              body: Any, timeout: float | None) -> Any:
        if self._session is None:
            raise RuntimeError("ApiClient used outside 'async with'")
        per_request = aiohttp.ClientTimeout(total=timeout, connect=CONNECT_TIMEOUT_SECONDS)
        return self._session.request(method, f"{self.server}{path}", params=_query(query or {}),
                                     json=body, timeout=per_request)

    async def call(self, method: str, path: str, *, query: Mapping[str, str | int | bool | None] | None = None,
                   body: Any = None) -> Json:
        """One request; the decoded JSON object of a 2xx answer, else :class:`ServerError`/:class:`Unreachable`."""
        try:
            async with self._open(method, path, query=query, body=body, timeout=REQUEST_TIMEOUT_SECONDS) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    message, code = error_message(status=resp.status, reason=resp.reason or "", body=raw)
                    if message in ("Not Found", "Method Not Allowed"):  # no such route: say which one
                        message = f"{message}: {method} {path}"
                    raise ServerError(status=resp.status, message=message, code=code)
        except (TimeoutError, aiohttp.ClientError, ValueError) as e:
            raise Unreachable(url=self.server, reason=_reason(e)) from None
        try:
            decoded = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ServerError(status=resp.status, message=f"{method} {path}: the answer is not JSON") from None
        return decoded if isinstance(decoded, dict) else {"items": decoded}

    async def stream(self, path: str, *, query: Mapping[str, str | int | bool | None]) -> AsyncGenerator[Json, None]:
        """The ``result`` of each ndjson frame of a server stream, until the server ends it."""
        try:
            async with self._open("GET", path, query=query, body=None, timeout=None) as resp:
                if resp.status >= 400:
                    message, code = error_message(status=resp.status, reason=resp.reason or "",
                                                  body=await resp.read())
                    raise ServerError(status=resp.status, message=message, code=code)
                while line := await resp.content.readline():
                    if not line.strip():
                        continue
                    try:
                        frame = json.loads(line)
                    except (ValueError, UnicodeDecodeError):
                        raise ServerError(status=resp.status, message=f"{path}: a stream line is not JSON") from None
                    if isinstance(frame.get("error"), dict):
                        error = frame["error"]
                        raise ServerError(status=resp.status, message=str(error.get("message") or error),
                                          code=error.get("code") if isinstance(error.get("code"), int) else None)
                    if isinstance(frame.get("result"), dict):
                        yield frame["result"]
        except (TimeoutError, aiohttp.ClientError, ValueError) as e:
            raise Unreachable(url=self.server, reason=_reason(e)) from None

    # -- workflows ---------------------------------------------------------------------------------

    async def create_workflow(self, namespace: str, workflow: Mapping[str, Any], *, dry_run: bool = False) -> Json:
        """``POST /api/v1/workflows/{ns}``: the created Workflow."""
        body: Json = {"namespace": namespace, "workflow": workflow}
        if dry_run:
            body["serverDryRun"] = True
        return await self.call("POST", f"/api/v1/workflows/{_path(namespace)}", body=body)

    async def list_workflows(self, namespace: str, *, labels: str | None = None) -> list[Json]:
        """Every Workflow of the namespace (all pages), optionally by label selector."""
        items: list[Json] = []
        token: str | None = None
        while True:
            page = await self.call("GET", f"/api/v1/workflows/{_path(namespace)}", query={
                "listOptions.labelSelector": labels, "listOptions.continue": token})
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    async def get_workflow(self, namespace: str, name: str) -> Json:
        """``GET /api/v1/workflows/{ns}/{name}``."""
        return await self.call("GET", f"/api/v1/workflows/{_path(namespace, name)}")

    async def delete_workflow(self, namespace: str, name: str) -> None:
        """``DELETE /api/v1/workflows/{ns}/{name}``."""
        await self.call("DELETE", f"/api/v1/workflows/{_path(namespace, name)}")

    async def act(self, namespace: str, name: str, action: str, **fields: Any) -> Json:
        """``PUT /api/v1/workflows/{ns}/{name}/{action}`` (retry, resubmit, stop, terminate, suspend,
        resume, set) with Argo's request body: name, namespace and the action's own ``fields``."""
        body = {"name": name, "namespace": namespace, **{k: v for k, v in fields.items() if v not in (None, "")}}
        return await self.call("PUT", f"/api/v1/workflows/{_path(namespace, name)}/{action}", body=body)

    def logs(self, namespace: str, name: str, *, pod_name: str | None = None, container: str = "main",
             follow: bool = False, tail: int | None = None, grep: str | None = None, selector: str | None = None,
             since_seconds: int | None = None, timestamps: bool = False) -> AsyncGenerator[Json, None]:
        """``GET .../{name}/log``: ``{"content", "podName"}`` per line."""
        return self.stream(f"/api/v1/workflows/{_path(namespace, name)}/log", query={
            "podName": pod_name, "logOptions.container": container, "logOptions.follow": follow,
            "logOptions.tailLines": tail, "grep": grep, "selector": selector, "logOptions.sinceSeconds": since_seconds,
            "logOptions.timestamps": timestamps})

    def watch_workflow(self, namespace: str, name: str) -> AsyncGenerator[Json, None]:
        """``GET /api/v1/workflow-events/{ns}`` for one name: ``{"type", "object"}`` per change."""
        return self.stream(f"/api/v1/workflow-events/{_path(namespace)}",
                           query={"listOptions.fieldSelector": f"metadata.name={name}"})

    # -- templates and cron workflows ----------------------------------------------------------------

    @staticmethod
    def _templates(namespace: str | None) -> str:
        """The collection path: namespaced WorkflowTemplates, or ClusterWorkflowTemplates for ``None``."""
        if namespace is None:
            return "/api/v1/cluster-workflow-templates"
        return f"/api/v1/workflow-templates/{_path(namespace)}"

    async def create_template(self, namespace: str | None, template: Mapping[str, Any]) -> Json:
        """Create a WorkflowTemplate (a ClusterWorkflowTemplate when ``namespace`` is None)."""
        body: Json = {"template": template} if namespace is None else {"namespace": namespace, "template": template}
        return await self.call("POST", self._templates(namespace), body=body)

    async def list_templates(self, namespace: str | None) -> list[Json]:
        """The (Cluster)WorkflowTemplates."""
        return list((await self.call("GET", self._templates(namespace))).get("items") or [])

    async def get_template(self, namespace: str | None, name: str) -> Json:
        """One (Cluster)WorkflowTemplate."""
        return await self.call("GET", f"{self._templates(namespace)}/{_path(name)}")

    async def delete_template(self, namespace: str | None, name: str) -> None:
        """Delete one (Cluster)WorkflowTemplate."""
        await self.call("DELETE", f"{self._templates(namespace)}/{_path(name)}")

    async def create_cron(self, namespace: str, cron: Mapping[str, Any]) -> Json:
        """``POST /api/v1/cron-workflows/{ns}``."""
        return await self.call("POST", f"/api/v1/cron-workflows/{_path(namespace)}",
                               body={"namespace": namespace, "cronWorkflow": cron})

    async def list_crons(self, namespace: str) -> list[Json]:
        """The CronWorkflows of the namespace."""
        return list((await self.call("GET", f"/api/v1/cron-workflows/{_path(namespace)}")).get("items") or [])

    async def get_cron(self, namespace: str, name: str) -> Json:
        """One CronWorkflow."""
        return await self.call("GET", f"/api/v1/cron-workflows/{_path(namespace, name)}")

    async def delete_cron(self, namespace: str, name: str) -> None:
        """Delete one CronWorkflow."""
        await self.call("DELETE", f"/api/v1/cron-workflows/{_path(namespace, name)}")

    async def act_cron(self, namespace: str, name: str, action: str) -> Json:
        """``PUT /api/v1/cron-workflows/{ns}/{name}/{suspend|resume}``."""
        return await self.call("PUT", f"/api/v1/cron-workflows/{_path(namespace, name)}/{action}",
                               body={"name": name, "namespace": namespace})

