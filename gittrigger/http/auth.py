"""
Access control for ``/api/``: bearer tokens with a role and optional namespaces.

Installed as a middleware by :func:`gittrigger.http.app.make_app`; :func:`gittrigger.runtime.check_host`
loads the tokens at start (so a bad token file stops the server before it listens) and logs how the
API is protected. The tokens come from ``auth.tokens_file`` (a YAML list of ``{name, token |
tokenFile, role, namespaces}``) and ``auth.admin_token``. With none configured every request is
allowed, and the server binds loopback only. Outside ``/api/`` only Argo Server's artifact downloads
(:mod:`gittrigger.http.artifactfiles`, :data:`DOWNLOADS`) take the same tokens, and the Argo UI's
cookie too; webhooks and the probes are never token-protected: they have their own signatures or
carry nothing secret. :func:`guarded` is the one decision of which paths need a token.

The decision is pure and table-driven: :func:`required_role` maps (method, route) to a role,
:func:`scope_problem` checks the namespace. Tokens are compared in constant time against every
configured token (SHA-256 digests through :func:`hmac.compare_digest`, no early exit), and no
error or log line ever contains a token.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import structlog
from aiohttp import hdrs, web

from gittrigger.http import keys
from gittrigger.http.middlewares import STATUS, error_body
from gittrigger.settings import AuthSettings
from workflows.errors import ErrorCode, InvalidSpec
from workflows.executors.podplan import ARTIFACTS_PATH
from workflows.loading import load_documents

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = structlog.get_logger("gittrigger.http.auth")

MAX_TOKENS_FILE_BYTES: Final = 1 << 20
ADMIN_TOKEN_NAME: Final = "admin"
ENTRY_FIELDS: Final = frozenset({"name", "token", "tokenFile", "role", "namespaces"})


class Role(enum.IntEnum):
    """What a token may do; each role includes the ones below it."""

    READ = 1  # GET: lists, gets, logs, watches
    WRITE = 2  # + create, submit, retry/resubmit/stop/terminate/suspend/resume/set, update, delete, lint, events
    ADMIN = 3  # + everything else

    @property
    def label(self) -> str:
        """The role as written in the token file."""
        return self.name.lower()


ROLES: Final = {role.label: role for role in Role}


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """Who is calling: a token's name, role and namespaces (None: every namespace)."""

    name: str
    role: Role
    namespaces: frozenset[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """A configured token: the caller it identifies and the SHA-256 digest of its secret."""

    caller: Caller
    digest: bytes = field(repr=False)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Access:
    """Every configured token; ``enabled`` is False when there are none (loopback-only mode)."""

    tokens: tuple[Token, ...] = ()

    @property
    def enabled(self) -> bool:
        """Whether requests to ``/api/`` need a token."""
        return bool(self.tokens)

    def identify(self, presented: str) -> Caller | None:
        """The caller of a presented token, compared in constant time against every token."""
        digest = _digest(presented)
        found: Caller | None = None
        for token in self.tokens:  # no early exit: timing does not tell which token (or whether any) matched
            if hmac.compare_digest(digest, token.digest):
                found = token.caller
        return found

    def describe(self) -> str:
        """One start-up line's worth: how the API is protected."""
        if not self.enabled:
            return "off: no tokens configured, loopback only"
        roles = Counter(token.caller.role.label for token in self.tokens)
        return f"bearer tokens: {len(self.tokens)} ({', '.join(f'{n} {r}' for r, n in sorted(roles.items()))})"


# -- the token file ----------------------------------------------------------------------------


def _secret(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise InvalidSpec(path, f"must be a string, got {type(value).__name__} (quote it in YAML)")
    if not value:
        raise InvalidSpec(path, "must not be empty")
    if any(c.isspace() for c in value):
        raise InvalidSpec(path, "must not contain whitespace")
    return value


def _entry(raw: Any, path: str, *, base_dir: Path) -> tuple[Caller, str]:
    if not isinstance(raw, Mapping):
        raise InvalidSpec(path, f"must be an object, got {type(raw).__name__}")
    unknown = sorted(str(key) for key in raw if key not in ENTRY_FIELDS)
    if unknown:
        raise InvalidSpec(f"{path}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(ENTRY_FIELDS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidSpec(f"{path}.name", "required, a non-empty string")
    given = raw.get("role")
    role = ROLES.get(given) if isinstance(given, str) else None
    if role is None:
        raise InvalidSpec(f"{path}.role", f"must be one of {', '.join(ROLES)}")
    if ("token" in raw) == ("tokenFile" in raw):
        raise InvalidSpec(path, "needs exactly one of token and tokenFile")
    if "token" in raw:
        secret = _secret(raw["token"], f"{path}.token")
    else:
        file = raw["tokenFile"]
        if not isinstance(file, str) or not file:
            raise InvalidSpec(f"{path}.tokenFile", "must be a non-empty path")
        where = base_dir / file
        try:
            text = where.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise InvalidSpec(f"{path}.tokenFile", f"cannot read {where}: {reason}") from None
        secret = _secret(text.strip(), f"{path}.tokenFile")
    namespaces: frozenset[str] | None = None
    if "namespaces" in raw and raw["namespaces"] is not None:
        listed = raw["namespaces"]
        if not isinstance(listed, list) or not all(isinstance(ns, str) and ns for ns in listed):
            raise InvalidSpec(f"{path}.namespaces", "must be a list of namespace names (leave it out for all)")
        namespaces = frozenset(listed)
    return Caller(name=name, role=role, namespaces=namespaces), secret


def parse_tokens(raw: Any, *, base_dir: Path, admin_token: str | None = None) -> Access:
    """The token file's content (a list) plus the optional admin token -> :class:`Access`.

    Errors name the field (``tokens[2].role: must be one of read, write, admin``) and never
    contain a token. ``tokenFile`` paths are relative to ``base_dir``. Names must be unique, and
    so must tokens (one token is one identity).
    """
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise InvalidSpec("tokens", f"must be a list of tokens, got {type(raw).__name__}")
    entries = [_entry(item, f"tokens[{i}]", base_dir=base_dir) for i, item in enumerate(raw)]
    paths = [f"tokens[{i}]" for i in range(len(entries))]
    if admin_token is not None:
        entries.append((Caller(name=ADMIN_TOKEN_NAME, role=Role.ADMIN), _secret(admin_token, "auth.admin_token")))
        paths.append("auth.admin_token")
    names: dict[str, str] = {}
    digests: dict[bytes, str] = {}
    tokens: list[Token] = []
    for path, (caller, secret) in zip(paths, entries, strict=True):
        if caller.name in names:
            raise InvalidSpec(f"{path}.name" if path.startswith("tokens[") else path,
                              f"{caller.name!r} is also the name of {names[caller.name]}")
        digest = _digest(secret)
        if digest in digests:
            raise InvalidSpec(path, f"the same token as {digests[digest]}")
        names[caller.name], digests[digest] = path, path
        tokens.append(Token(caller=caller, digest=digest))
    return Access(tokens=tuple(tokens))


_MARK: Final = re.compile(r"line (\d+), column (\d+)")


def read_tokens_file(file: Path) -> Any:
    """The YAML list in the tokens file (``{tokens: [...]}`` is accepted too).

    Parsed with the manifests' bounded loader, which reads mappings only, so the text is nested
    under a ``tokens:`` key (line and column numbers in errors are those of the file).
    """
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise InvalidSpec("auth.tokens_file", f"cannot read {file}: {reason}") from None
    lines = ["" if line.rstrip() in ("---", "...") else "  " + line for line in text.splitlines()]
    try:
        docs = load_documents("tokens:\n" + "\n".join(lines) + "\n", source=str(file),
                              max_bytes=MAX_TOKENS_FILE_BYTES)
    except InvalidSpec as e:
        message = _MARK.sub(lambda m: f"line {int(m[1]) - 1}, column {max(1, int(m[2]) - 2)}", e.message)
        raise InvalidSpec(e.path, message) from None
    value = docs[0]["tokens"] if docs else None
    if isinstance(value, Mapping) and set(value) == {"tokens"}:
        value = value["tokens"]
    return value


def load_access(settings: AuthSettings) -> Access:
    """Read and validate the configured tokens; InvalidSpec names the file and the field."""
    raw: Any = None
    if settings.tokens_file is not None:
        raw = read_tokens_file(settings.tokens_file)
    base = settings.tokens_file.parent if settings.tokens_file is not None else Path()
    try:
        return parse_tokens(raw, base_dir=base, admin_token=settings.admin_token)
    except InvalidSpec as e:
        if settings.tokens_file is None or e.path.startswith("auth."):
            raise
        raise InvalidSpec(f"{settings.tokens_file}: {e.path}", e.message) from None


@functools.lru_cache(maxsize=16)
def access_for(settings: AuthSettings) -> Access:
    """:func:`load_access`, once per settings value (the middleware's per-request lookup)."""
    return load_access(settings)


# -- the decision, pure ------------------------------------------------------------------------

READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
# The last segment of a POST/PUT route that names one of Argo's state-changing actions.
WRITE_ACTIONS: Final = frozenset({
    "submit", "lint", "retry", "resubmit", "stop", "terminate", "suspend", "resume", "set", "replay",
})
EVENTS_PREFIX: Final = "/api/v1/events/"
# Routes without a namespace that any valid token may read.
GLOBAL_READS: Final = ("/api/v1/info", "/api/v1/version", "/api/v1/userinfo", "/api/v1/cluster-workflow-templates")


# Argo Server's artifact downloads (gittrigger.http.artifactfiles) live outside /api/, as in Argo, yet
# serve the API's data: the same tokens, any role reads, within its namespaces. Each prefix is wholly
# theirs, as /api/ is the API's. A by-uid route names no namespace: its handler checks the namespace
# of the run it finds (namespace_refusal).
DOWNLOADS_BY_UID: Final = ("/artifacts-by-uid/", "/input-artifacts-by-uid/")
DOWNLOADS: Final = ("/artifact-files/", "/artifacts/", "/input-artifacts/", *DOWNLOADS_BY_UID)
COOKIE: Final = "authorization"  # the Argo UI's; its links to downloads are plain browser GETs


def guarded(path: str) -> bool:
    """Whether a request path needs a token (once tokens are configured): ``/api/`` and Argo's downloads.

    Not the pods' artifact store under ``/api/``: pods carry their workflow's token, checked there.
    """
    return path.startswith(("/api/", *DOWNLOADS)) and not path.startswith(ARTIFACTS_PATH)


def required_role(method: str, route: str) -> Role | None:
    """The role a request needs, from its method and route (``/api/v1/workflows/{namespace}/{name}/stop``).

    None: not token-protected (outside ``/api/`` and the downloads). Reads need ``read``; creating
    (POST to a collection), updating (PUT to an object), deleting, Argo's actions and events need
    ``write``; any other change needs ``admin``. A download needs ``read`` (only GET is served).
    """
    if route.startswith(DOWNLOADS):
        return Role.READ
    if not route.startswith("/api/"):
        return None
    method = method.upper()
    if method in READ_METHODS:
        return Role.READ
    if method == "DELETE":
        return Role.WRITE
    if method in WRITE_METHODS:
        segments = route.rstrip("/").split("/")[1:]  # ["api", "v1", kind, ...]
        last = segments[-1]
        if route.startswith(EVENTS_PREFIX) or last in WRITE_ACTIONS:
            return Role.WRITE
        if method == "POST" and (len(segments) == 3 or last == "{namespace}"):
            return Role.WRITE  # create in a collection
        if method == "PUT" and last == "{name}":
            return Role.WRITE  # update an object
    return Role.ADMIN


def scope_problem(caller: Caller, *, needed: Role, route: str, namespace: str | None) -> str | None:
    """Why the caller may not act in this namespace (None: it may).

    A route without a namespace (cluster-scoped, or across all namespaces) needs a token without
    namespace limits, except for reading the global routes (info, version, userinfo,
    ClusterWorkflowTemplates).
    """
    if caller.namespaces is None:
        return None
    if namespace is not None:
        return None if namespace in caller.namespaces else f"may not access namespace {namespace!r}"
    if needed is Role.READ and route.startswith(GLOBAL_READS):
        return None
    return "is limited to some namespaces; this route needs a token for every namespace"


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _cookie(request: web.Request) -> str | None:
    """Argo UI's ``authorization`` cookie, read off the header: its value (``Bearer <token>``) holds a
    space, which cookie parsers drop."""
    for part in request.headers.getall(hdrs.COOKIE, ()):
        for item in part.split(";"):
            name, sep, value = item.strip().partition("=")
            if sep and name == COOKIE:
                return unquote(value.strip().strip('"'))
    return None


# -- the middleware ----------------------------------------------------------------------------

CALLER: Final = web.RequestKey("caller", Caller)  # set on requests that presented a valid token


def _deny(code: ErrorCode, message: str) -> web.Response:
    status, grpc_code = STATUS[code]
    headers = {hdrs.WWW_AUTHENTICATE: 'Bearer realm="gittrigger"'} if code is ErrorCode.UNAUTHENTICATED else None
    return web.json_response(error_body(grpc_code=grpc_code, message=message), status=status, headers=headers)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else ""


def _out_of_scope(request: web.Request, caller: Caller, *, needed: Role, route: str,
                  namespace: str | None) -> web.Response | None:
    problem = scope_problem(caller, needed=needed, route=route, namespace=namespace)
    return None if problem is None else _forbidden(request, caller, f"token {caller.name!r} {problem}")


def _forbidden(request: web.Request, caller: Caller, message: str) -> web.Response:
    log.info("api request refused", method=request.method, path=request.path, status=403, token=caller.name,
             reason=message)
    return _deny(ErrorCode.FORBIDDEN, message)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 without a valid token, 403 when its role or namespaces do not cover the request.

    Runs before the handler, so a stranger learns nothing about a path, not even that it is malformed.
    """
    access = access_for(request.app[keys.SETTINGS].auth)
    if not access.enabled or not guarded(request.path):
        return await handler(request)
    route = _route(request)
    known = required_role(request.method, route)  # None: the webhook catch-all or no route
    needed = known or Role.READ  # an unknown path: any valid token, then a 404
    presented = bearer(request.headers.get(hdrs.AUTHORIZATION))
    if presented is None and request.path.startswith(DOWNLOADS):
        presented = bearer(_cookie(request))  # not on /api/: a cookie there would let other sites write
    caller = access.identify(presented) if presented is not None else None
    if caller is None:
        reason = "no bearer token" if presented is None else "unknown token"
        log.info("api request refused", method=request.method, path=request.path, status=401, reason=reason)
        return _deny(ErrorCode.UNAUTHENTICATED, f"{reason}: send 'Authorization: Bearer <token>'")
    if caller.role < needed:
        return _forbidden(request, caller, f"token {caller.name!r} has role {caller.role.label}; "
                                           f"{request.method} {route} needs {needed.label}")
    if known is not None and not route.startswith(DOWNLOADS_BY_UID):
        refusal = _out_of_scope(request, caller, needed=needed, route=route,
                                namespace=request.match_info.get("namespace"))
        if refusal is not None:
            return refusal
    request[CALLER] = caller
    return await handler(request)


def namespace_refusal(request: web.Request, namespace: str) -> web.Response | None:
    """The 403 when the caller's token does not cover ``namespace`` (None: it does, or there are no tokens).

    For a handler that learns the namespace only from what it looks up: a by-uid download.
    """
    caller = request.get(CALLER)
    if caller is None:
        if access_for(request.app[keys.SETTINGS].auth).enabled:  # fail closed on a path the middleware skipped
            raise RuntimeError(f"{request.path} is not guarded by the auth middleware")
        return None
    return _out_of_scope(request, caller, needed=Role.READ, route=_route(request), namespace=namespace)
