"""
EventSource manifests (Argo Events ``argoproj.io/v1alpha1``, ``kind: EventSource``) as frozen values.

Called by the settings/loading code that reads EventSource YAML (already parsed to dicts) and
by the HTTP edge and tickers that serve them. :func:`parse_event_source` turns one manifest
into an :class:`EventSource` or raises :class:`~workflows.errors.InvalidSpec` naming the field
(``spec.github.main.webhook.port``). Supported types: ``github``, ``gitlab``, ``bitbucket``
(Cloud), ``gitea``/``forgejo`` (ours), ``webhook`` (generic), ``calendar`` and ``git`` (our
poller). Secrets stay references (:class:`SecretRef`); resolving them is the caller's job.
Argo's camelCase names are known here and nowhere else in the sources package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

from gittrigger.sources import cron
from workflows.errors import InvalidSpec

API_VERSION: Final = "argoproj.io/v1alpha1"
KIND: Final = "EventSource"
DEFAULT_MAX_PAYLOAD_SIZE: Final = 1_048_576  # Argo Events' DefaultMaxWebhookPayloadSize (1 MiB)
DEFAULT_POLL_INTERVAL: Final = timedelta(seconds=60)
# EventSourceSpec fields that configure Argo's deployment, not an event; accepted and ignored.
_DEPLOYMENT_KEYS: Final = frozenset({"eventBusName", "template", "service", "replicas"})
_SUPPORTED: Final = ("github", "gitlab", "bitbucket", "gitea", "forgejo", "webhook", "calendar", "git")


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretRef:
    """A Kubernetes ``SecretKeySelector``: key ``key`` of Secret ``name``; not resolved here."""

    name: str
    key: str
    optional: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookContext:
    """Where a webhook source listens (Argo's ``WebhookContext``)."""

    endpoint: str
    port: int
    method: str = "POST"
    url: str = ""
    max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE
    auth_secret: SecretRef | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Repository:
    """An owner and repository names (GitHub ``repositories[]``, Bitbucket ``owner``/``repositorySlug``)."""

    owner: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class GitHubSource:
    """``spec.github.<event>``: hook deliveries verified with ``webhookSecret``."""

    webhook: WebhookContext
    events: tuple[str, ...] = ()
    webhook_secret: SecretRef | None = None
    api_token: SecretRef | None = None
    content_type: str = ""
    repositories: tuple[Repository, ...] = ()
    organizations: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    filter_expression: str | None = None

    @property
    def type(self) -> str:
        """The source type, which is also ``context.type`` of its events."""
        return "github"


@dataclass(frozen=True, slots=True, kw_only=True)
class GitLabSource:
    """``spec.gitlab.<event>``: hook deliveries checked against ``secretToken``."""

    webhook: WebhookContext
    events: tuple[str, ...] = ()
    secret_token: SecretRef | None = None
    access_token: SecretRef | None = None
    projects: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    base_url: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    filter_expression: str | None = None

    @property
    def type(self) -> str:
        """The source type, which is also ``context.type`` of its events."""
        return "gitlab"


@dataclass(frozen=True, slots=True, kw_only=True)
class GiteaSource:
    """``spec.gitea.<event>`` or ``spec.forgejo.<event>`` (ours): shaped like the GitHub source."""

    webhook: WebhookContext
    events: tuple[str, ...] = ()
    webhook_secret: SecretRef | None = None
    api_token: SecretRef | None = None
    forgejo: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)
    filter_expression: str | None = None

    @property
    def type(self) -> str:
        """``gitea`` or ``forgejo``, after the key the manifest used."""
        return "forgejo" if self.forgejo else "gitea"


@dataclass(frozen=True, slots=True, kw_only=True)
class BitbucketSource:
    """``spec.bitbucket.<event>`` (Cloud); ``webhookSecret`` is our addition (Bitbucket signs since 2023)."""

    webhook: WebhookContext
    events: tuple[str, ...] = ()
    webhook_secret: SecretRef | None = None
    username: SecretRef | None = None
    password: SecretRef | None = None
    oauth_token: SecretRef | None = None
    repositories: tuple[Repository, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    filter_expression: str | None = None

    @property
    def type(self) -> str:
        """The source type, which is also ``context.type`` of its events."""
        return "bitbucket"


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericWebhookSource:
    """``spec.webhook.<event>``: any client; ``webhook.auth_secret`` demands a Bearer token."""

    webhook: WebhookContext
    filter_expression: str | None = None

    @property
    def type(self) -> str:
        """The source type, which is also ``context.type`` of its events."""
        return "webhook"


@dataclass(frozen=True, slots=True, kw_only=True)
class CalendarSource:
    """``spec.calendar.<event>``: a cron ``schedule`` or an ``interval`` (see :mod:`.cron`)."""

    schedule: str = ""
    interval: timedelta | None = None
    exclusion_dates: tuple[date, ...] = ()
    timezone: str = ""
    catchup: bool = False
    catchup_max_duration: timedelta | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    filter_expression: str | None = None

    @property
    def type(self) -> str:
        """The source type, which is also ``context.type`` of its events."""
        return "calendar"


@dataclass(frozen=True, slots=True, kw_only=True)
class GitPollerSource:
    """``spec.git.<event>`` (ours): poll ``repo`` every ``interval`` for refs matching ``refs`` globs.

    For hosts that cannot reach us with webhooks. Credentials follow Argo's SFTP source:
    ``sshKeySecret`` for SSH URLs, ``username``/``password`` (or token) for HTTPS.
    """

    repo: str
    refs: tuple[str, ...] = ("refs/heads/*",)
    interval: timedelta = DEFAULT_POLL_INTERVAL
    ssh_key_secret: SecretRef | None = None
    username: SecretRef | None = None
    password: SecretRef | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    filter_expression: str | None = None

    @property
    def type(self) -> str:
        """The source type, which is also ``context.type`` of its events."""
        return "git"


SourceSpec = (
    GitHubSource
    | GitLabSource
    | GiteaSource
    | BitbucketSource
    | GenericWebhookSource
    | CalendarSource
    | GitPollerSource
)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventSource:
    """One EventSource manifest: its name and every event it defines, keyed by event name."""

    name: str
    namespace: str
    events: Mapping[str, SourceSpec]


def parse_event_source(raw: Any, *, path: str = "") -> EventSource:
    """Parse one EventSource manifest (a dict from YAML/JSON); ``path`` prefixes error paths."""
    at = _Path(path)
    doc = _mapping(raw, at.root)
    if doc.get("apiVersion") != API_VERSION:
        raise InvalidSpec(at("apiVersion"), f"must be {API_VERSION}, got {doc.get('apiVersion')!r}")
    if doc.get("kind") != KIND:
        raise InvalidSpec(at("kind"), f"must be {KIND}, got {doc.get('kind')!r}")
    meta = _mapping(doc.get("metadata"), at("metadata"))
    name = _string(meta, "name", at("metadata"), required=True)
    namespace = _string(meta, "namespace", at("metadata"))
    spec = _mapping(doc.get("spec"), at("spec"))
    events: dict[str, SourceSpec] = {}
    owners: dict[str, str] = {}
    for kind, entries in spec.items():
        if kind in _DEPLOYMENT_KEYS:
            continue
        where = at(f"spec.{kind}")
        if kind not in _PARSERS:
            raise InvalidSpec(
                where, f"event source type {kind} is not supported (supported: {', '.join(_SUPPORTED)})"
            )
        for event_name, entry in _mapping(entries, where).items():
            entry_path = f"{where}.{event_name}"
            if event_name in owners:
                raise InvalidSpec(
                    entry_path, f"event name {event_name!r} is already used in {owners[event_name]}"
                )
            events[event_name] = _PARSERS[kind](_mapping(entry, entry_path), entry_path, kind)
            owners[event_name] = entry_path
    if not events:
        raise InvalidSpec(at("spec"), f"defines no event source (supported types: {', '.join(_SUPPORTED)})")
    return EventSource(name=name, namespace=namespace, events=events)


class _Path:
    def __init__(self, prefix: str) -> None:
        self.root = prefix

    def __call__(self, suffix: str) -> str:
        return f"{self.root}.{suffix}" if self.root else suffix


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSpec(path, f"must be a mapping, got {type(value).__name__}")
    return value


def _string(raw: Mapping[str, Any], key: str, path: str, *, required: bool = False, default: str = "") -> str:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise InvalidSpec(f"{path}.{key}", "is required")
        return default
    if not isinstance(value, str):
        raise InvalidSpec(f"{path}.{key}", f"must be a string, got {type(value).__name__}")
    return value


def _strings(raw: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidSpec(f"{path}.{key}", f"must be a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise InvalidSpec(f"{path}.{key}[{i}]", "must be a non-empty string")
    return tuple(value)


def _metadata(raw: Mapping[str, Any], path: str) -> dict[str, str]:
    meta = _mapping(raw.get("metadata"), f"{path}.metadata")
    for key, value in meta.items():
        if not isinstance(value, str):
            raise InvalidSpec(f"{path}.metadata.{key}", f"must be a string, got {type(value).__name__}")
    return dict(meta)


def _secret(raw: Mapping[str, Any], key: str, path: str) -> SecretRef | None:
    if raw.get(key) is None:
        return None
    where = f"{path}.{key}"
    ref = _mapping(raw[key], where)
    optional = ref.get("optional", False)
    if not isinstance(optional, bool):
        raise InvalidSpec(f"{where}.optional", "must be a boolean")
    return SecretRef(
        name=_string(ref, "name", where, required=True),
        key=_string(ref, "key", where, required=True),
        optional=optional,
    )


def _filter(raw: Mapping[str, Any], path: str) -> str | None:
    if raw.get("filter") is None:
        return None
    return _string(_mapping(raw["filter"], f"{path}.filter"), "expression", f"{path}.filter", required=True)


def _duration(raw: Mapping[str, Any], key: str, path: str) -> timedelta | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):  # our poller: plain seconds
        duration = timedelta(seconds=value)
    elif isinstance(value, str):
        try:
            duration = cron.parse_duration(value)
        except ValueError as e:
            raise InvalidSpec(f"{path}.{key}", str(e)) from None
    else:
        raise InvalidSpec(f"{path}.{key}", f"must be a duration such as 30s, got {type(value).__name__}")
    if duration <= timedelta(0):
        raise InvalidSpec(f"{path}.{key}", f"must be positive, got {value!r}")
    return duration


def _webhook(raw: Mapping[str, Any], path: str) -> WebhookContext:
    if raw.get("webhook") is None:
        raise InvalidSpec(f"{path}.webhook", "is required")
    return _webhook_context(_mapping(raw["webhook"], f"{path}.webhook"), f"{path}.webhook")


def _webhook_context(hook: Mapping[str, Any], where: str) -> WebhookContext:
    endpoint = _string(hook, "endpoint", where, required=True)
    if not endpoint.startswith("/"):
        raise InvalidSpec(f"{where}.endpoint", f"must start with '/', got {endpoint!r}")
    port = hook.get("port")
    if port is None or port == "":
        raise InvalidSpec(f"{where}.port", "is required")
    if isinstance(port, bool) or not (isinstance(port, int) or (isinstance(port, str) and port.isdigit())):
        raise InvalidSpec(f"{where}.port", f"must be a port number, got {port!r}")
    if not 0 < int(port) < 65536:
        raise InvalidSpec(f"{where}.port", f"must be between 1 and 65535, got {port}")
    size = hook.get("maxPayloadSize", DEFAULT_MAX_PAYLOAD_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InvalidSpec(f"{where}.maxPayloadSize", f"must be a positive number of bytes, got {size!r}")
    return WebhookContext(
        endpoint=endpoint,
        port=int(port),
        method=_string(hook, "method", where, default="POST").upper(),
        url=_string(hook, "url", where),
        max_payload_size=size,
        auth_secret=_secret(hook, "authSecret", where),
        metadata=_metadata(hook, where),
    )


def _repositories(raw: Mapping[str, Any], path: str) -> tuple[Repository, ...]:
    out = []
    for i, item in enumerate(raw.get("repositories") or []):
        where = f"{path}.repositories[{i}]"
        repo = _mapping(item, where)
        if "repositorySlug" in repo:  # Bitbucket's shape
            names: tuple[str, ...] = (_string(repo, "repositorySlug", where, required=True),)
        else:
            names = _strings(repo, "names", where)
        out.append(Repository(owner=_string(repo, "owner", where, required=True), names=names))
    return tuple(out)


def _github(raw: Mapping[str, Any], path: str, kind: str) -> GitHubSource:
    repositories = _repositories(raw, path)
    if not repositories and raw.get("owner"):  # deprecated single-repository fields
        name = _string(raw, "repository", path, required=True)
        repositories = (Repository(owner=_string(raw, "owner", path), names=(name,)),)
    content_type = _string(raw, "contentType", path)
    if content_type not in ("", "json", "form"):
        raise InvalidSpec(f"{path}.contentType", f'must be "json" or "form", got {content_type!r}')
    return GitHubSource(
        webhook=_webhook(raw, path),
        events=_strings(raw, "events", path),
        webhook_secret=_secret(raw, "webhookSecret", path),
        api_token=_secret(raw, "apiToken", path),
        content_type=content_type,
        repositories=repositories,
        organizations=_strings(raw, "organizations", path),
        metadata=_metadata(raw, path),
        filter_expression=_filter(raw, path),
    )


def _gitlab(raw: Mapping[str, Any], path: str, kind: str) -> GitLabSource:
    return GitLabSource(
        webhook=_webhook(raw, path),
        events=_strings(raw, "events", path),
        secret_token=_secret(raw, "secretToken", path),
        access_token=_secret(raw, "accessToken", path),
        projects=_strings(raw, "projects", path),
        groups=_strings(raw, "groups", path),
        base_url=_string(raw, "gitlabBaseURL", path),
        metadata=_metadata(raw, path),
        filter_expression=_filter(raw, path),
    )


def _gitea(raw: Mapping[str, Any], path: str, kind: str) -> GiteaSource:
    return GiteaSource(
        webhook=_webhook(raw, path),
        events=_strings(raw, "events", path),
        webhook_secret=_secret(raw, "webhookSecret", path),
        api_token=_secret(raw, "apiToken", path),
        forgejo=kind == "forgejo",
        metadata=_metadata(raw, path),
        filter_expression=_filter(raw, path),
    )


def _bitbucket(raw: Mapping[str, Any], path: str, kind: str) -> BitbucketSource:
    auth = _mapping(raw.get("auth"), f"{path}.auth")
    basic = _mapping(auth.get("basic"), f"{path}.auth.basic")
    if basic and (basic.get("username") is None or basic.get("password") is None):
        missing = "username" if basic.get("username") is None else "password"
        raise InvalidSpec(f"{path}.auth.basic.{missing}", "is required")
    repositories = _repositories(raw, path)
    if not repositories and raw.get("owner"):  # deprecated single-repository fields
        slug = _string(raw, "repositorySlug", path, required=True)
        repositories = (Repository(owner=_string(raw, "owner", path), names=(slug,)),)
    return BitbucketSource(
        webhook=_webhook(raw, path),
        events=_strings(raw, "events", path),
        webhook_secret=_secret(raw, "webhookSecret", path),
        username=_secret(basic, "username", f"{path}.auth.basic"),
        password=_secret(basic, "password", f"{path}.auth.basic"),
        oauth_token=_secret(auth, "oauthToken", f"{path}.auth"),
        repositories=repositories,
        metadata=_metadata(raw, path),
        filter_expression=_filter(raw, path),
    )


def _generic(raw: Mapping[str, Any], path: str, kind: str) -> GenericWebhookSource:
    # Argo's WebhookEventSource inlines the WebhookContext: endpoint, port... sit on the entry itself.
    context = _webhook_context(raw, path)
    if context.method not in ("GET", "POST"):
        raise InvalidSpec(f"{path}.method", f"must be GET or POST, got {context.method!r}")
    return GenericWebhookSource(webhook=context, filter_expression=_filter(raw, path))


def _calendar(raw: Mapping[str, Any], path: str, kind: str) -> CalendarSource:
    schedule = _string(raw, "schedule", path)
    interval = _duration(raw, "interval", path)
    if schedule:
        try:
            cron.validate_schedule(schedule)
        except ValueError as e:
            raise InvalidSpec(f"{path}.schedule", str(e)) from None
    elif interval is None:
        raise InvalidSpec(path, "calendar event must contain either a schedule or interval")
    timezone = _string(raw, "timezone", path)
    try:
        cron.zone(timezone)
    except ValueError as e:
        raise InvalidSpec(f"{path}.timezone", str(e)) from None
    days: list[date] = []
    for i, text in enumerate(_strings(raw, "exclusionDates", path)):
        try:
            days.extend(cron.parse_exclusion_date(text))
        except ValueError as e:
            raise InvalidSpec(f"{path}.exclusionDates[{i}]", str(e)) from None
    persistence = _mapping(raw.get("persistence"), f"{path}.persistence")
    catchup = _mapping(persistence.get("catchup"), f"{path}.persistence.catchup")
    enabled = catchup.get("enabled", False)
    if not isinstance(enabled, bool):
        raise InvalidSpec(f"{path}.persistence.catchup.enabled", "must be a boolean")
    return CalendarSource(
        schedule=schedule,
        interval=interval,
        exclusion_dates=tuple(days),
        timezone=timezone,
        catchup=enabled,
        catchup_max_duration=_duration(catchup, "maxDuration", f"{path}.persistence.catchup"),
        metadata=_metadata(raw, path),
        filter_expression=_filter(raw, path),
    )


def _git(raw: Mapping[str, Any], path: str, kind: str) -> GitPollerSource:
    repo = _string(raw, "repo", path, required=True)
    refs = _strings(raw, "refs", path) or ("refs/heads/*",)
    for i, ref in enumerate(refs):
        if not ref.startswith("refs/"):
            raise InvalidSpec(
                f"{path}.refs[{i}]", f"must be a full ref glob such as refs/heads/*, got {ref!r}"
            )
    interval = _duration(raw, "interval", path) or DEFAULT_POLL_INTERVAL
    if interval < timedelta(seconds=1):
        raise InvalidSpec(f"{path}.interval", "must be at least 1s")
    return GitPollerSource(
        repo=repo,
        refs=refs,
        interval=interval,
        ssh_key_secret=_secret(raw, "sshKeySecret", path),
        username=_secret(raw, "username", path),
        password=_secret(raw, "password", path),
        metadata=_metadata(raw, path),
        filter_expression=_filter(raw, path),
    )


_PARSERS: Final[Mapping[str, Callable[[Mapping[str, Any], str, str], SourceSpec]]] = {
    "github": _github,
    "gitlab": _gitlab,
    "gitea": _gitea,
    "forgejo": _gitea,
    "bitbucket": _bitbucket,
    "webhook": _generic,
    "calendar": _calendar,
    "git": _git,
}
