"""
Per-workflow tokens for the artifact endpoint: what a pod presents to upload or download artifacts.

A token is ``<workflow uid>.<hex HMAC-SHA256(server secret, workflow uid)>``: the server needs no
table of tokens, and one leaked pod token opens only its own workflow's artifacts. The secret is
32 random bytes in ``<data dir>/artifact-secret`` (mode 0600), created on first use, so tokens in
pods that are still running stay valid across a server restart.

Used by :mod:`gittrigger.http.artifacts` (verify the token, then check the key against the
workflow it names) and by whoever builds the Kubernetes executor (``token_for`` goes into every
pod's ``GITTRIGGER_ARTIFACT_TOKEN``; see ``docs/kubernetes-pods.md``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path
from typing import Final

SECRET_FILE: Final = "artifact-secret"
_SECRET_BYTES: Final = 32


class ArtifactTokens:
    """Mints and checks artifact tokens with the secret in ``secret_file`` (read or created lazily)."""

    def __init__(self, secret_file: Path) -> None:
        self.secret_file = secret_file
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> ArtifactTokens:
        """The tokens of the server whose data dir is ``data_dir``."""
        return cls(data_dir / SECRET_FILE)

    def token_for(self, uid: str) -> str:
        """The token that pods of the workflow with this uid present."""
        if not uid or "." in uid:
            raise ValueError(f"a workflow uid must be non-empty and without '.', got {uid!r}")
        return f"{uid}.{self._mac(uid)}"

    def verify(self, token: str) -> str | None:
        """The workflow uid the token was minted for, or None if it is not one of ours.

        The comparison is constant-time (:func:`hmac.compare_digest`), so timing reveals nothing
        about the expected MAC.
        """
        uid, dot, mac = token.rpartition(".")
        if not dot or not uid:
            return None
        return uid if hmac.compare_digest(mac.encode(), self._mac(uid).encode()) else None

    def _mac(self, uid: str) -> str:
        return hmac.new(self._key(), uid.encode(), hashlib.sha256).hexdigest()

    def _key(self) -> bytes:
        if self._secret is None:
            with self._lock:
                if self._secret is None:
                    self._secret = _load_or_create(self.secret_file)
        return self._secret


def may_access(key: str, *, uid: str, owner_uid: str | None) -> bool:
    """Whether the workflow ``uid`` may read or write artifact ``key``.

    ``owner_uid`` is the uid of the workflow named by the key's first two segments
    (``<namespace>/<workflow>/...``, the layout of every output key the core chooses), None
    when no such workflow exists. A key under an existing workflow belongs to it alone; any
    other key (a template's own ``key:``) is shared by every workflow, as keys in Argo's
    artifact repository are.
    """
    if owner_uid is not None:
        return hmac.compare_digest(owner_uid.encode(), uid.encode())
    return True


def owner_of(key: str) -> tuple[str, str] | None:
    """The ``(namespace, workflow)`` a key's first two segments name, None for shorter keys."""
    parts = key.split("/")
    if len(parts) < 3 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def _load_or_create(path: Path) -> bytes:
    """The secret in ``path``; a new random one written with mode 0600 if there is none.

    Two processes racing to create it agree: the file appears whole (written beside, then
    linked into place without replacing), and the loser reads the winner's.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(_SECRET_BYTES).hex().encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process created it first: theirs wins
            os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    text = path.read_text(encoding="ascii").strip()
    secret = bytes.fromhex(text)
    if len(secret) < 16:
        raise ValueError(f"{path}: the artifact secret is too short (delete the file to make a new one)")
    return secret
