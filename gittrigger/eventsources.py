"""
The webhook endpoint table: EventSource manifests -> which event is served at which path.

Built by the lead's loading code (``serve`` start-up and SIGHUP reload) with
:meth:`EventSourceRegistry.from_manifests`, read on every delivery by
:mod:`gittrigger.http.webhooks` through :meth:`EventSourceRegistry.lookup`. Argo Events gives
every webhook event its own ``webhook.endpoint`` (path + method) on its own port; we serve all
of them on the one server port, so an endpoint path may belong to one event only: two events on
one path is a configuration error naming both. ``webhook.port`` is accepted and ignored.

The secrets the edge needs to verify a delivery (``webhookSecret``, GitLab ``secretToken``,
the generic source's ``authSecret``) are resolved once here, at load, so a missing secret is a
configuration error and not a 500 on the first delivery; :meth:`EventSourceRegistry.replace`
swaps the whole table at once, so a reload that fails leaves the running table untouched.
Secret values never appear in a ``repr``, a message or a log line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from gittrigger.secretsources import secrets_in
from gittrigger.sources import gitlab
from gittrigger.sources.model import (
    KIND,
    BitbucketSource,
    EventSource,
    GenericWebhookSource,
    GiteaSource,
    GitHubSource,
    GitLabSource,
    SecretRef,
    SourceSpec,
    WebhookContext,
    parse_event_source,
)
from workflows.errors import ErrorCode, InvalidSpec, NotFound, WorkflowError

if TYPE_CHECKING:  # gittrigger.repos imports pygit2; the edge needs only the Protocol
    from gittrigger.repos import SecretResolver

# The field holding the verification secret, per source class (Argo's manifest names).
_SECRET_FIELDS: Final[Mapping[type, tuple[str, str]]] = {
    GitHubSource: ("webhook_secret", "webhookSecret"),
    GiteaSource: ("webhook_secret", "webhookSecret"),
    BitbucketSource: ("webhook_secret", "webhookSecret"),
    GitLabSource: ("secret_token", "secretToken"),
}
_WEBHOOK_KINDS: Final = (GitHubSource, GitLabSource, GiteaSource, BitbucketSource, GenericWebhookSource)


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """One served webhook event: where it listens, what it is, and its resolved secret."""

    path: str
    method: str
    event_source_name: str
    namespace: str
    event_name: str
    kind: str  # github | gitlab | gitea | forgejo | bitbucket | webhook
    spec: SourceSpec
    secret: bytes | None = field(default=None, repr=False)
    max_payload_size: int
    events: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    origin: str = ""  # "<eventsource>.spec.<type>.<event>", for error messages

    @property
    def label(self) -> str:
        """``<eventsource>/<event>``: how log lines and rejections name the source."""
        return f"{self.event_source_name}/{self.event_name}"


class EventSourceRegistry:
    """The endpoint table the webhook edge serves; swapped whole by :meth:`replace`."""

    def __init__(self, endpoints: Iterable[Endpoint] = ()) -> None:
        self._table: Mapping[str, Endpoint] = MappingProxyType({e.path: e for e in endpoints})

    @classmethod
    def from_manifests(cls, objects: Iterable[Any], *, secrets: SecretResolver) -> EventSourceRegistry:
        """A registry from EventSource manifests (dicts; other kinds are skipped) or parsed EventSources.

        Raises :class:`InvalidSpec` for a bad manifest, two events on one endpoint, or a
        verification secret that cannot be read (naming ``<name>/<key>`` and the field).
        """
        endpoints: dict[str, Endpoint] = {}
        for index, obj in enumerate(objects):
            source = _parse(obj, index)
            if source is None:
                continue
            for event_name, spec in source.events.items():
                if not isinstance(spec, _WEBHOOK_KINDS):
                    continue  # calendar and git poller sources have no endpoint
                endpoint = _endpoint(source, event_name, spec, secrets)
                other = endpoints.get(endpoint.path)
                if other is not None:
                    raise InvalidSpec(
                        f"{endpoint.origin}.webhook.endpoint",
                        f"endpoint {endpoint.path!r} is already served by {other.origin}: "
                        "each event needs its own endpoint",
                    )
                endpoints[endpoint.path] = endpoint
        return cls(endpoints.values())

    def lookup(self, path: str) -> Endpoint | None:
        """The endpoint served at ``path`` (exact match, as Argo's mux), or ``None``."""
        return self._table.get(path)

    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every served endpoint, ordered by path."""
        return tuple(self._table[p] for p in sorted(self._table))

    def replace(self, other: EventSourceRegistry) -> None:
        """Serve ``other``'s table from now on (one reference swap: requests see old or new, never a mix)."""
        self._table = other._table

    def __len__(self) -> int:
        return len(self._table)


def _parse(obj: Any, index: int) -> EventSource | None:
    if isinstance(obj, EventSource):
        return obj
    if not isinstance(obj, Mapping) or obj.get("kind") != KIND:
        return None
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    prefix = name if isinstance(name, str) and name else f"[{index}]"
    return parse_event_source(obj, path=prefix)


def _endpoint(source: EventSource, event_name: str, spec: SourceSpec, secrets: SecretResolver) -> Endpoint:
    assert isinstance(spec, _WEBHOOK_KINDS)
    origin = f"{source.name}.spec.{spec.type}.{event_name}"
    hook: WebhookContext = spec.webhook
    if isinstance(spec, GenericWebhookSource):
        ref, field_path = hook.auth_secret, f"{origin}.authSecret"
        events: tuple[str, ...] = ()
        metadata: Mapping[str, str] = hook.metadata
    else:
        attr, wire = _SECRET_FIELDS[type(spec)]
        ref, field_path = getattr(spec, attr), f"{origin}.{wire}"
        events, metadata = spec.events, spec.metadata
        if isinstance(spec, GitLabSource):  # hook options (PushEvents) as deliveries name them (Push Hook)
            events = tuple(gitlab.HOOKS_BY_EVENT.get(e, e) for e in events)
    return Endpoint(
        path=hook.endpoint,
        method=hook.method,
        event_source_name=source.name,
        namespace=source.namespace,
        event_name=event_name,
        kind=spec.type,
        spec=spec,
        secret=_resolve(ref, field_path, secrets_in(secrets, source.namespace)),
        max_payload_size=hook.max_payload_size,
        events=events,
        metadata=metadata,
        origin=origin,
    )


def _resolve(ref: SecretRef | None, field_path: str, secrets: SecretResolver) -> bytes | None:
    if ref is None:
        return None
    try:
        value = secrets.resolve(ref.name, ref.key)
    except NotFound:
        if ref.optional:
            return None
        raise InvalidSpec(field_path, f"secret {ref.name}/{ref.key} not found") from None
    except InvalidSpec as e:
        raise InvalidSpec(field_path, f"secret {ref.name}/{ref.key}: {e.message}") from None
    except WorkflowError as e:
        if e.code is not ErrorCode.FORBIDDEN:
            raise  # Unavailable: transient, and its message names the secret already
        raise InvalidSpec(field_path, f"secret {ref.name}/{ref.key}: {e}") from None  # RBAC: configuration
    if not value:
        raise InvalidSpec(field_path, f"secret {ref.name}/{ref.key} is empty")
    return value
