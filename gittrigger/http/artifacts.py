"""
The artifact endpoint pods use: ``PUT`` and ``GET /api/v1/gittrigger/artifacts/{key}``.

Routes are added by :func:`gittrigger.http.app.make_app`; the callers are the helper commands in
Kubernetes pods (:mod:`gittrigger.podhelper`: ``pod-wait`` uploads output artifacts, ``pod-init``
downloads input artifacts), see ``docs/kubernetes-pods.md``. Objects live in the server's
:class:`~workflows.executors.artifacts.LocalArtifactStore` (``<data dir>/artifacts``, the same one
the local executor uses), so keys and layout are the core's.

Access is per workflow, not per API token: the bearer token is the pod's artifact token
(:mod:`gittrigger.artifacttokens`), 401 if it is not one of ours, 403 if the key lies under
another workflow (``<namespace>/<workflow>/...`` of a workflow with another uid). A body is
streamed to disk and refused (413) past :data:`MAX_BYTES` (default :data:`DEFAULT_MAX_BYTES`),
never read whole into memory. A file travels as its bytes (an archived artifact is its tar+gzip);
a directory object (``archive: none``) as an uncompressed tar of its contents, marked by the
``X-Gittrigger-Transfer: tar`` header both ways.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Final

import structlog
from aiohttp import hdrs, web

from gittrigger.artifacttokens import ArtifactTokens, may_access, owner_of
from gittrigger.http import keys
from gittrigger.http.auth import bearer
from gittrigger.http.middlewares import STATUS, error_body
from workflows.errors import ErrorCode, InvalidSpec, NotFound, TooLarge
from workflows.executors.artifacts import LocalArtifactStore
from workflows.executors.podplan import ARTIFACTS_PATH, TRANSFER_HEADER

routes = web.RouteTableDef()
log = structlog.get_logger(__name__)

ROUTE: Final = ARTIFACTS_PATH + "{key:.+}"
DEFAULT_MAX_BYTES: Final = 1 << 30
MAX_BYTES: Final = web.AppKey("artifact max bytes", int)  # optional override of DEFAULT_MAX_BYTES
_CHUNK: Final = 1 << 16
_UPLOAD_PREFIX: Final = ".upload-"
STORE_DIR: Final = "artifacts"


def state_for(data_dir: Path) -> tuple[LocalArtifactStore, ArtifactTokens]:
    """The artifact store (``<data dir>/artifacts``, as the assembly lays it out) and the artifact
    tokens of the server with this data dir; nothing is touched on disk until first used."""
    return LocalArtifactStore(data_dir / STORE_DIR), ArtifactTokens.in_data_dir(data_dir)


@routes.put(ROUTE)
async def put_artifact(request: web.Request) -> web.StreamResponse:
    """Store the body under ``key`` (replacing what is there); 201 with ``{"key", "size"}``."""
    key = request.match_info["key"]
    denied = await _deny(request, key)
    if denied is not None:
        return denied
    store = request.app[keys.ARTIFACTS]
    limit = request.app.get(MAX_BYTES, DEFAULT_MAX_BYTES)
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"artifact body of {request.content_length} bytes is over the limit of {limit}")
    directory = request.headers.get(TRANSFER_HEADER, "").lower() == "tar"
    await asyncio.to_thread(store.root.mkdir, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=_UPLOAD_PREFIX, dir=store.root)
    upload = Path(name)
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"artifact body is over the limit of {limit} bytes")
                await asyncio.to_thread(out.write, chunk)
        await asyncio.to_thread(_store, store, key, upload, directory=directory)
    finally:
        await asyncio.to_thread(_remove, upload)
    log.info("artifact stored", key=key, size=size)
    return web.json_response({"key": key, "size": size}, status=201)


@routes.get(ROUTE)
async def get_artifact(request: web.Request) -> web.StreamResponse:
    """The stored object: a file's bytes, or a directory as an uncompressed tar (404 if absent)."""
    key = request.match_info["key"]
    denied = await _deny(request, key)
    if denied is not None:
        return denied
    store = request.app[keys.ARTIFACTS]
    path = store.root / key
    if not await asyncio.to_thread(store.exists, key):  # validates the key first (400)
        raise NotFound("artifact", key)
    if not await asyncio.to_thread(path.is_dir):
        return web.FileResponse(path, headers={hdrs.CONTENT_TYPE: "application/octet-stream"})
    fd, name = tempfile.mkstemp(prefix=_UPLOAD_PREFIX, dir=store.root)
    os.close(fd)
    archive = Path(name)
    try:
        await asyncio.to_thread(_tar_contents, path, archive)
        response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: "application/x-tar", TRANSFER_HEADER: "tar"})
        response.content_length = (await asyncio.to_thread(archive.stat)).st_size
        await response.prepare(request)
        with open(archive, "rb") as f:
            while chunk := await asyncio.to_thread(f.read, _CHUNK):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(_remove, archive)


async def _deny(request: web.Request, key: str) -> web.Response | None:
    """401 unless the bearer token is an artifact token; 403 if ``key`` belongs to another workflow."""
    if key.split("/", 1)[0].startswith("."):
        raise InvalidSpec("key", f"{key!r} must not start with a hidden segment")
    presented = bearer(request.headers.get(hdrs.AUTHORIZATION))
    tokens: ArtifactTokens = request.app[keys.ARTIFACT_TOKENS]
    uid = await asyncio.to_thread(tokens.verify, presented) if presented is not None else None
    if uid is None:
        reason = "no bearer token" if presented is None else "not an artifact token"
        log.info("artifact request refused", method=request.method, key=key, status=401, reason=reason)
        return _error(ErrorCode.UNAUTHENTICATED, f"{reason}: send 'Authorization: Bearer $GITTRIGGER_ARTIFACT_TOKEN'")
    owner = owner_of(key)
    owner_uid = None
    if owner is not None:
        try:
            workflow = await request.app[keys.STORE].get(*owner)
        except NotFound:
            pass
        else:
            owner_uid = str((workflow.get("metadata") or {}).get("uid") or "") or None
    if not may_access(key, uid=uid, owner_uid=owner_uid):
        message = f"this token is not for workflow {owner[0]}/{owner[1]}" if owner else "forbidden"
        log.info("artifact request refused", method=request.method, key=key, status=403, reason=message)
        return _error(ErrorCode.FORBIDDEN, message)
    return None


def _error(code: ErrorCode, message: str) -> web.Response:
    status, grpc_code = STATUS[code]
    headers = {hdrs.WWW_AUTHENTICATE: 'Bearer realm="gittrigger-artifacts"'} if code is ErrorCode.UNAUTHENTICATED \
        else None
    return web.json_response(error_body(grpc_code=grpc_code, message=message), status=status, headers=headers)


def _store(store: LocalArtifactStore, key: str, upload: Path, *, directory: bool) -> None:
    """Put the received body under ``key``: as is, or unpacked into a directory object."""
    if not directory:
        store.put_path(key, upload, archive_none=True)  # already the object's bytes (maybe a tar+gzip)
        return
    scratch = upload.with_name(upload.name + ".d")
    try:
        try:
            with tarfile.open(upload, mode="r:") as tar:
                tar.extractall(scratch, filter="data")  # refuses absolute paths, '..' and devices
        except (tarfile.TarError, OSError) as e:
            raise InvalidSpec("body", f"is not a tar of a directory: {e}") from None
        scratch.mkdir(exist_ok=True)  # an empty tar: an empty directory
        store.put_path(key, scratch, archive_none=True)
    finally:
        _remove(scratch)


def _tar_contents(directory: Path, archive: Path) -> None:
    with tarfile.open(archive, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(directory.iterdir()):
            tar.add(entry, arcname=entry.name)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
