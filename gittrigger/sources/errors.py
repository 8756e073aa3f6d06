"""
The errors a webhook source raises: :class:`WebhookRejected` and :class:`SignatureRejected`.

Raised by the pure host modules (:mod:`gittrigger.sources.github` and friends) when a delivery
fails verification or cannot be decoded; :mod:`gittrigger.http.webhooks` logs the ``reason``
and answers with ``status``. Reasons are written for operators and never contain the secret
or the digest we expected, only what was wrong.
"""

from __future__ import annotations

from typing import ClassVar

from workflows.errors import ErrorCode, WorkflowError


class WebhookRejected(WorkflowError):
    """A delivery was refused; ``status`` is the HTTP answer (400 for a malformed body or header)."""

    code: ClassVar[ErrorCode] = ErrorCode.INVALID

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class SignatureRejected(WebhookRejected):
    """The signature or token is missing or wrong (UNAUTHENTICATED, answered 401).

    A subclass rather than a flag because ``code`` is a class attribute that the HTTP
    middleware reads from the type, as for every :class:`WorkflowError`.
    """

    code: ClassVar[ErrorCode] = ErrorCode.UNAUTHENTICATED

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason, status)
