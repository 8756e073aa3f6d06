"""
The one error hierarchy of gittrigger's domain, with codes.

Raised by every layer below the HTTP edge; :mod:`gittrigger.http.middlewares` is the one
place that maps :class:`ErrorCode` to an HTTP status, and :mod:`gittrigger.cli` the one place
that maps it to an exit code. Nothing matches on message text: callers test the type or code.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import ClassVar


class ErrorCode(enum.Enum):
    """What kind of failure an error is; decides the HTTP status and the gRPC code."""

    INVALID = "invalid"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    CONFLICT = "conflict"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    TOO_LARGE = "too_large"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class WorkflowError(Exception):
    """Base of every domain error; ``code`` decides how the edges report it."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL


class InvalidSpec(WorkflowError):
    """A manifest or request field is wrong; ``path`` names the field (``spec.templates[2].name``)."""

    code = ErrorCode.INVALID

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class Problems(WorkflowError):
    """Several validation problems at once (what ``lint`` prints and ``submit`` refuses)."""

    code = ErrorCode.INVALID

    def __init__(self, problems: Sequence[InvalidSpec]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class UnresolvedVariable(WorkflowError):
    """A ``{{...}}`` reference names nothing in scope where a value is required."""

    code = ErrorCode.INVALID

    def __init__(self, name: str) -> None:
        super().__init__(f"failed to resolve {{{{{name}}}}}")
        self.name = name


class ExpressionError(WorkflowError):
    """An expression (``when``, ``{{= }}``, ``depends``, retry ``expression``) does not parse or evaluate."""

    code = ErrorCode.INVALID

    def __init__(self, expression: str, message: str) -> None:
        super().__init__(f"{message} in expression {expression!r}")
        self.expression = expression


class NotFound(WorkflowError):
    """The named object does not exist."""

    code = ErrorCode.NOT_FOUND

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} not found")
        self.kind = kind
        self.name = name


class AlreadyExists(WorkflowError):
    """An object with that name exists already."""

    code = ErrorCode.ALREADY_EXISTS

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} already exists")
        self.kind = kind
        self.name = name


class Conflict(WorkflowError):
    """An update was based on a stale resourceVersion, or the object's state forbids the operation."""

    code = ErrorCode.CONFLICT


class TooLarge(WorkflowError):
    """Input over a configured size or depth bound."""

    code = ErrorCode.TOO_LARGE


class Unavailable(WorkflowError):
    """A dependency (store, executor backend) cannot serve the request right now; retry later."""

    code = ErrorCode.UNAVAILABLE
