"""
Argo Server's artifact download routes, so the links of Argo's UI and CLI work:

- ``GET /artifact-files/{namespace}/{workflows|archived-workflows}/{id}/{nodeId}/{outputs|inputs}/{artifactName}``
  and ``.../{artifactName}/{file}`` (``id`` is the workflow's name, or its uid for ``archived-workflows``),
- ``GET /artifacts/{namespace}/{name}/{nodeId}/{artifactName}`` and ``/input-artifacts/...`` (the older ones),
- ``GET /artifacts-by-uid/{uid}/{nodeId}/{artifactName}`` and ``/input-artifacts-by-uid/...``.

Routes are added by :func:`gittrigger.http.app.make_app`. As Argo's ``server/artifacts/artifact_server.go``:
the artifact is looked up on the node (``status.nodes[nodeId].outputs|inputs.artifacts``), and the stored
object is streamed as it is — an archived artifact is its ``.tgz`` (Argo does not unpack it either), with
``Content-Disposition: filename="<base name of the key>"``, a Content-Type from the key's extension and
Argo's security headers. A directory object (``archive: none``) is redirected to its trailing-slash URL
and listed (or its ``index.html`` is served), and a file inside it is served by its path. There is no
workflow archive here: a uid is resolved through the store's artifact index, so it finds runs that
still exist and stored artifacts.

Access: these routes live outside ``/api/`` (as in Argo), yet :func:`gittrigger.http.auth.authenticate`
guards them like the API (its ``DOWNLOADS``): the bearer token in the ``Authorization`` header or Argo
UI's ``authorization`` cookie, any role reads, within its namespaces, and a stranger gets 401 before any
path is looked at. Only a by-uid route checks a namespace here, the found run's. Errors are Argo's
``{"code", "message"}`` JSON naming what is missing (workflow, node, artifact, file).
"""

from __future__ import annotations

import asyncio
import html
import mimetypes
import posixpath
from pathlib import Path
from typing import Final
from urllib.parse import quote

import structlog
from aiohttp import hdrs, web

from gittrigger.http import keys
from gittrigger.http.auth import namespace_refusal
from workflows.errors import InvalidSpec, NotFound
from workflows.store.base import RawObject

routes = web.RouteTableDef()
log = structlog.get_logger(__name__)

FILES: Final = "/artifact-files/{namespace}/{discriminator}/{id}/{nodeId}/{direction}/{artifactName}"
SECURITY_HEADERS: Final = {  # Argo's defaults (ARGO_ARTIFACT_CONTENT_SECURITY_POLICY, ..._X_FRAME_OPTIONS)
    "Content-Security-Policy": "sandbox; base-uri 'none'; default-src 'none'; img-src 'self'; "
                               "style-src 'self' 'unsafe-inline'",
    "X-Frame-Options": "SAMEORIGIN",
}


@routes.get(FILES)
@routes.get(FILES + "/{file:.*}")
async def artifact_file(request: web.Request) -> web.StreamResponse:
    """An artifact (or a file of a directory artifact) of a workflow, by name or (archived) by uid."""
    info = request.match_info
    namespace, discriminator, direction = info["namespace"], info["discriminator"], info["direction"]
    if direction not in ("outputs", "inputs"):
        raise InvalidSpec("direction", f"must be outputs or inputs, got {direction!r}")
    if discriminator not in ("workflows", "archived-workflows"):
        raise InvalidSpec("discriminator", f"must be workflows or archived-workflows, got {discriminator!r}")
    if discriminator == "workflows":
        workflow = await request.app[keys.STORE].get(namespace, info["id"])
    else:
        workflow = await _by_uid(request, info["id"])
        if workflow["metadata"].get("namespace") != namespace:
            raise InvalidSpec("namespace", f"workflow with uid {info['id']!r} is not in namespace {namespace!r}")
    return await _serve(request, workflow, node_id=info["nodeId"], name=info["artifactName"],
                        inputs=direction == "inputs", file=info.get("file"))


@routes.get("/artifacts/{namespace}/{name}/{nodeId}/{artifactName}")
@routes.get("/input-artifacts/{namespace}/{name}/{nodeId}/{artifactName}")
async def artifact(request: web.Request) -> web.StreamResponse:
    """An output (or input) artifact of a workflow by namespace and name (Argo's older route)."""
    info = request.match_info
    workflow = await request.app[keys.STORE].get(info["namespace"], info["name"])
    return await _serve(request, workflow, node_id=info["nodeId"], name=info["artifactName"],
                        inputs=request.path.startswith("/input-"))


@routes.get("/artifacts-by-uid/{uid}/{nodeId}/{artifactName}")
@routes.get("/input-artifacts-by-uid/{uid}/{nodeId}/{artifactName}")
async def artifact_by_uid(request: web.Request) -> web.StreamResponse:
    """An output (or input) artifact of the workflow with this uid."""
    info = request.match_info
    workflow = await _by_uid(request, info["uid"])
    refusal = namespace_refusal(request, str(workflow["metadata"].get("namespace") or ""))
    if refusal is not None:
        return refusal
    return await _serve(request, workflow, node_id=info["nodeId"], name=info["artifactName"],
                        inputs=request.path.startswith("/input-"))


# -- lookup --------------------------------------------------------------------------------------


async def _by_uid(request: web.Request, uid: str) -> RawObject:
    """The run with this uid, found through the artifact index (no archive here)."""
    store = request.app[keys.STORE]
    rows = await store.indexed_artifacts(uid=uid)
    if rows:
        workflow = await store.get(rows[0].namespace, rows[0].workflow)
        if workflow["metadata"].get("uid") == uid:
            return workflow
    raise NotFound("workflow", f"with uid {uid}")


# -- serving -------------------------------------------------------------------------------------


def _find(workflow: RawObject, *, node_id: str, name: str, inputs: bool) -> str:
    """The store key of the node's artifact; NotFound names the node or the artifact."""
    meta = workflow.get("metadata") or {}
    node = ((workflow.get("status") or {}).get("nodes") or {}).get(node_id)
    if node is None:
        raise NotFound("node", f"{node_id} of workflow {meta.get('namespace')}/{meta.get('name')}")
    side = "inputs" if inputs else "outputs"
    for art in (node.get(side) or {}).get("artifacts") or ():
        if art.get("name") == name:
            key = (art.get("s3") or {}).get("key")
            if not key:
                raise NotFound("stored artifact", f"{side}.{name} of node {node_id} (not in the artifact store)")
            return str(key)
    raise NotFound("artifact", f"{side}.{name} of node {node_id}")


async def _serve(request: web.Request, workflow: RawObject, *, node_id: str, name: str, inputs: bool,
                 file: str | None = None) -> web.StreamResponse:
    key = _find(workflow, node_id=node_id, name=name, inputs=inputs)
    store = request.app[keys.ARTIFACTS]
    if not await asyncio.to_thread(store.exists, key):  # collected by artifactGC, or never uploaded
        raise NotFound("artifact file", key)
    path = store.root / key
    if file:
        inner = posixpath.normpath(file)
        if inner.startswith(("/", "..")) or inner == ".":
            raise InvalidSpec("file", f"{file!r} must be a relative path inside the artifact")
        if not await asyncio.to_thread(path.is_dir):
            raise NotFound("file", f"{inner} in artifact {name} (not a directory)")
        path, key = path / inner, f"{key}/{inner}"
        if not await asyncio.to_thread(path.exists):
            raise NotFound("file", f"{inner} in artifact {name}")
    if await asyncio.to_thread(path.is_dir):
        if not request.path.endswith("/"):
            raise web.HTTPTemporaryRedirect(request.path + "/")
        entries = await asyncio.to_thread(_entries, path)
        if "index.html" in entries:
            raise web.HTTPTemporaryRedirect(request.path + "index.html")
        return web.Response(text=_listing(entries), content_type="text/html", headers=SECURITY_HEADERS)
    log.info("artifact downloaded", namespace=workflow["metadata"].get("namespace"),
             workflow=workflow["metadata"].get("name"), node=node_id, artifact=name)
    content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    return web.FileResponse(path, headers={
        hdrs.CONTENT_DISPOSITION: f'filename="{posixpath.basename(key)}"', hdrs.CONTENT_TYPE: content_type,
        **SECURITY_HEADERS})


def _entries(directory: Path) -> list[str]:
    return sorted(e.name + ("/" if e.is_dir() else "") for e in directory.iterdir())


def _listing(entries: list[str]) -> str:
    """Argo's directory page: ``..`` then each entry, escaped (file names are untrusted)."""
    items = ['<li><a href="..">..</a></li>']
    items += [f'<li><a href="./{quote(e)}">{html.escape(e)}</a></li>' for e in entries]
    return "<html><body><ul>\n" + "\n".join(items) + "\n</ul></body></html>"
