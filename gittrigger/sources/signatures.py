"""
Constant-time checks of webhook signatures and shared tokens, shared by the host modules.

Called by :mod:`gittrigger.sources.github`, ``gitlab``, ``gitea``, ``bitbucket`` and
``generic``. Every comparison goes through :func:`hmac.compare_digest` on bytes, and no
rejection reason contains the secret or the digest we computed: a reason that echoed the
expected HMAC would let a caller forge the next delivery of the same body.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from typing import Final

from gittrigger.sources.errors import SignatureRejected

ALGORITHMS: Final = {"sha256": hashlib.sha256, "sha1": hashlib.sha1}


def _raw(value: str) -> bytes:
    # aiohttp decodes header bytes with surrogateescape; undo that so any byte compares.
    return value.encode("utf-8", "surrogateescape")


def check_hmac(
    sent: str | None, *, header: str, body: bytes, secret: bytes, algorithm: str, prefix: str
) -> None:
    """Require ``sent`` to be ``prefix`` + hex HMAC(``secret``, ``body``) with ``algorithm``.

    Hex is compared after decoding, so upper-case hex is accepted as go-github does.
    """
    if sent is None or sent.strip() == "":
        raise SignatureRejected(f"missing {header} header")
    sent = sent.strip()
    if prefix and not sent.startswith(prefix):
        raise SignatureRejected(f"{header} header is not of the form {prefix}<hex digest>")
    try:
        digest = binascii.unhexlify(_raw(sent[len(prefix) :]))
    except (binascii.Error, ValueError):
        raise SignatureRejected(f"{header} header does not hold a hex digest") from None
    expected = hmac.new(secret, body, ALGORITHMS[algorithm]).digest()
    if not hmac.compare_digest(digest, expected):
        raise SignatureRejected(f"signature mismatch in {header}")


def check_token(sent: str | None, *, header: str, secret: bytes, scheme: str = "") -> None:
    """Require ``sent`` to be ``scheme`` followed by the shared ``secret`` (GitLab token, Bearer auth)."""
    if sent is None or sent == "":
        raise SignatureRejected(f"missing {header} header")
    if scheme and not sent.startswith(scheme):
        raise SignatureRejected(f"{header} header is not of the form {scheme.strip()} <token>")
    if not hmac.compare_digest(_raw(sent[len(scheme) :]), secret):
        raise SignatureRejected(f"token mismatch in {header}")
