"""EventSource manifests: every supported type parses, and every mistake names its field path."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

import pytest

from gittrigger.sources.model import (
    BitbucketSource,
    CalendarSource,
    GenericWebhookSource,
    GiteaSource,
    GitHubSource,
    GitLabSource,
    GitPollerSource,
    Repository,
    SecretRef,
    WebhookContext,
    parse_event_source,
)
from workflows.errors import InvalidSpec


def manifest(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": "ci", "namespace": "argo-events"},
        "spec": spec,
    }


HOOK = {"endpoint": "/push", "port": "12000", "method": "POST"}
FULL = manifest(
    github={
        "widgets": {
            "repositories": [{"owner": "acme", "names": ["widgets", "gears"]}],
            "webhook": {**HOOK, "url": "https://ci.example.com"},
            "events": ["push", "pull_request"],
            "webhookSecret": {"name": "github-access", "key": "secret"},
            "apiToken": {"name": "github-access", "key": "token"},
            "contentType": "json",
            "metadata": {"team": "gears"},
            "filter": {"expression": "body.ref == 'refs/heads/main'"},
        }
    },
    gitlab={
        "compiler": {
            "projects": ["navy/compiler"],
            "webhook": {"endpoint": "/gitlab", "port": 12001},
            "events": ["PushEvents", "TagPushEvents"],
            "secretToken": {"name": "gitlab", "key": "token"},
            "gitlabBaseURL": "https://gitlab.example.com",
        }
    },
    gitea={
        "kernel": {
            "webhook": {"endpoint": "/gitea", "port": "12002"},
            "webhookSecret": {"name": "g", "key": "s"},
        }
    },
    forgejo={"codeberg": {"webhook": {"endpoint": "/forgejo", "port": "12002"}}},
    bitbucket={
        "apollo": {
            "webhook": {"endpoint": "/bitbucket", "port": "12003"},
            "events": ["repo:push"],
            "auth": {
                "basic": {
                    "username": {"name": "bb", "key": "user"},
                    "password": {"name": "bb", "key": "pass"},
                }
            },
            "repositories": [{"owner": "nasa", "repositorySlug": "apollo"}],
            "webhookSecret": {"name": "bb", "key": "hook"},
        }
    },
    webhook={"plain": {**HOOK, "endpoint": "/plain", "authSecret": {"name": "hook", "key": "token"}}},
    calendar={
        "nightly": {
            "schedule": "30 2 * * *",
            "timezone": "Europe/Berlin",
            "exclusionDates": ["EXDATE:20241224T000000Z,20241225T000000Z"],
            "persistence": {"catchup": {"enabled": True, "maxDuration": "5m"}, "configMap": {"name": "cm"}},
            "metadata": {"hello": "world"},
        },
        "often": {"interval": "10s"},
    },
    git={
        "mirror": {
            "repo": "https://git.example.com/a/b.git",
            "refs": ["refs/heads/main", "refs/tags/v*"],
            "interval": 30,
        }
    },
    eventBusName="default",
    replicas=1,
)


def test_every_supported_type_parses() -> None:
    """A manifest using every supported type becomes typed values keyed by event name."""
    es = parse_event_source(FULL)
    assert (es.name, es.namespace) == ("ci", "argo-events")
    assert {name: spec.type for name, spec in es.events.items()} == {
        "widgets": "github",
        "compiler": "gitlab",
        "kernel": "gitea",
        "codeberg": "forgejo",
        "apollo": "bitbucket",
        "plain": "webhook",
        "nightly": "calendar",
        "often": "calendar",
        "mirror": "git",
    }
    assert (
        GitHubSource(
            webhook=WebhookContext(endpoint="/push", port=12000, url="https://ci.example.com"),
            events=("push", "pull_request"),
            webhook_secret=SecretRef(name="github-access", key="secret"),
            api_token=SecretRef(name="github-access", key="token"),
            content_type="json",
            repositories=(Repository(owner="acme", names=("widgets", "gears")),),
            metadata={"team": "gears"},
            filter_expression="body.ref == 'refs/heads/main'",
        )
        == es.events["widgets"]
    )
    gitlab = es.events["compiler"]
    assert isinstance(gitlab, GitLabSource)
    assert (12001, SecretRef(name="gitlab", key="token")) == (gitlab.webhook.port, gitlab.secret_token)
    assert isinstance(es.events["codeberg"], GiteaSource) and es.events["codeberg"].forgejo
    bitbucket = es.events["apollo"]
    assert isinstance(bitbucket, BitbucketSource)
    assert (SecretRef(name="bb", key="user"), SecretRef(name="bb", key="pass")) == (
        bitbucket.username,
        bitbucket.password,
    )
    assert (Repository(owner="nasa", names=("apollo",)),) == bitbucket.repositories
    plain = es.events["plain"]
    assert isinstance(plain, GenericWebhookSource)
    assert SecretRef(name="hook", key="token") == plain.webhook.auth_secret
    assert (
        CalendarSource(
            schedule="30 2 * * *",
            timezone="Europe/Berlin",
            exclusion_dates=(date(2024, 12, 24), date(2024, 12, 25)),
            catchup=True,
            catchup_max_duration=timedelta(minutes=5),
            metadata={"hello": "world"},
        )
        == es.events["nightly"]
    )
    assert timedelta(seconds=10) == es.events["often"].interval  # type: ignore[union-attr]
    assert (
        GitPollerSource(
            repo="https://git.example.com/a/b.git",
            refs=("refs/heads/main", "refs/tags/v*"),
            interval=timedelta(seconds=30),
        )
        == es.events["mirror"]
    )


def test_defaults() -> None:
    """Unset fields take Argo's defaults (POST, 1 MiB cap); the poller watches branches every minute."""
    es = parse_event_source(
        manifest(github={"e": {"webhook": {"endpoint": "/x", "port": "80"}}}, git={"p": {"repo": "r"}})
    )
    hook = es.events["e"].webhook  # type: ignore[union-attr]
    assert (hook.method, hook.max_payload_size, hook.auth_secret) == ("POST", 1_048_576, None)
    assert GitPollerSource(repo="r") == es.events["p"]
    assert (("refs/heads/*",), timedelta(seconds=60)) == (es.events["p"].refs, es.events["p"].interval)  # type: ignore[union-attr]


def test_deprecated_github_owner_repository() -> None:
    """The deprecated owner/repository pair still names one repository."""
    es = parse_event_source(
        manifest(github={"e": {"webhook": HOOK, "owner": "acme", "repository": "widgets"}})
    )
    assert (Repository(owner="acme", names=("widgets",)),) == es.events["e"].repositories  # type: ignore[union-attr]


def edit(path: str, value: Any, *, delete: bool = False) -> dict[str, Any]:
    """FULL with the dotted ``path`` set to ``value`` (or removed)."""
    doc = copy.deepcopy(FULL)
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if delete:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "path", "message"),
    [
        (edit("apiVersion", "argoproj.io/v1"), "apiVersion", "must be argoproj.io/v1alpha1"),
        (edit("kind", "Sensor"), "kind", "must be EventSource"),
        (edit("metadata.name", "", delete=True), "metadata.name", "is required"),
        (edit("spec", []), "spec", "must be a mapping, got list"),
        (manifest(), "spec", "defines no event source"),
        (
            edit("spec.kafka", {"k": {"url": "kafka:9092"}}),
            "spec.kafka",
            "event source type kafka is not supported",
        ),
        (edit("spec.sns", {}), "spec.sns", "event source type sns is not supported"),
        (
            edit("spec.github.widgets.webhook", None, delete=True),
            "spec.github.widgets.webhook",
            "is required",
        ),
        (
            edit("spec.github.widgets.webhook.port", "http"),
            "spec.github.widgets.webhook.port",
            "must be a port number",
        ),
        (
            edit("spec.github.widgets.webhook.port", 70000),
            "spec.github.widgets.webhook.port",
            "between 1 and 65535",
        ),
        (
            edit("spec.github.widgets.webhook.endpoint", "push"),
            "spec.github.widgets.webhook.endpoint",
            "must start with '/'",
        ),
        (
            edit("spec.github.widgets.webhook.maxPayloadSize", -1),
            "spec.github.widgets.webhook.maxPayloadSize",
            "positive",
        ),
        (
            edit("spec.github.widgets.contentType", "xml"),
            "spec.github.widgets.contentType",
            'must be "json" or "form"',
        ),
        (
            edit("spec.github.widgets.events", "push"),
            "spec.github.widgets.events",
            "must be a list of strings",
        ),
        (
            edit("spec.github.widgets.events.1", 7),
            "spec.github.widgets.events[1]",
            "must be a non-empty string",
        ),
        (
            edit("spec.github.widgets.webhookSecret.key", None, delete=True),
            "spec.github.widgets.webhookSecret.key",
            "is required",
        ),
        (edit("spec.github.widgets.apiToken", "token"), "spec.github.widgets.apiToken", "must be a mapping"),
        (
            edit("spec.github.widgets.metadata.team", 3),
            "spec.github.widgets.metadata.team",
            "must be a string",
        ),
        (edit("spec.github.widgets.filter", {}), "spec.github.widgets.filter.expression", "is required"),
        (
            edit("spec.github.widgets.repositories.0.owner", None, delete=True),
            "spec.github.widgets.repositories[0].owner",
            "is required",
        ),
        (
            edit("spec.gitlab.compiler.secretToken.name", 5),
            "spec.gitlab.compiler.secretToken.name",
            "must be a string",
        ),
        (
            edit("spec.bitbucket.apollo.auth.basic.password", None, delete=True),
            "spec.bitbucket.apollo.auth.basic.password",
            "is required",
        ),
        (edit("spec.webhook.plain.method", "PUT"), "spec.webhook.plain.method", "must be GET or POST"),
        (edit("spec.webhook.plain.port", None, delete=True), "spec.webhook.plain.port", "is required"),
        (
            edit("spec.calendar.nightly.schedule", "@daily"),
            "spec.calendar.nightly.schedule",
            "expected five cron fields",
        ),
        (edit("spec.calendar.often.interval", "10"), "spec.calendar.often.interval", "invalid duration '10'"),
        (edit("spec.calendar.often.interval", "-5s"), "spec.calendar.often.interval", "must be positive"),
        (edit("spec.calendar.often", {}), "spec.calendar.often", "either a schedule or interval"),
        (
            edit("spec.calendar.nightly.timezone", "Mars/Olympus"),
            "spec.calendar.nightly.timezone",
            "unknown timezone",
        ),
        (
            edit("spec.calendar.nightly.exclusionDates.0", "20241224"),
            "spec.calendar.nightly.exclusionDates[0]",
            "EXDATE:",
        ),
        (
            edit("spec.calendar.nightly.persistence.catchup.maxDuration", "5 minutes"),
            "spec.calendar.nightly.persistence.catchup.maxDuration",
            "invalid duration",
        ),
        (
            edit("spec.calendar.nightly.persistence.catchup.enabled", "yes"),
            "spec.calendar.nightly.persistence.catchup.enabled",
            "must be a boolean",
        ),
        (edit("spec.git.mirror.repo", None, delete=True), "spec.git.mirror.repo", "is required"),
        (edit("spec.git.mirror.refs.1", "main"), "spec.git.mirror.refs[1]", "must be a full ref glob"),
        (edit("spec.git.mirror.interval", "500ms"), "spec.git.mirror.interval", "at least 1s"),
        (
            edit("spec.webhook.widgets", {**HOOK}),
            "spec.webhook.widgets",
            "already used in spec.github.widgets",
        ),
    ],
    ids=[
        "api-version",
        "kind",
        "name",
        "spec-list",
        "no-sources",
        "kafka",
        "sns",
        "no-webhook",
        "port-text",
        "port-range",
        "endpoint-slash",
        "payload-size",
        "content-type",
        "events-string",
        "events-item",
        "secret-key",
        "secret-string",
        "metadata-int",
        "filter-empty",
        "repo-owner",
        "gitlab-secret-name",
        "bitbucket-basic",
        "webhook-method",
        "webhook-port",
        "calendar-descriptor",
        "calendar-interval",
        "calendar-negative",
        "calendar-empty",
        "calendar-timezone",
        "calendar-exdate",
        "catchup-duration",
        "catchup-enabled",
        "git-repo",
        "git-ref",
        "git-interval",
        "duplicate-event-name",
    ],
)
def test_errors_name_the_field(doc: dict[str, Any], path: str, message: str) -> None:
    """Every invalid field is reported as InvalidSpec with its dotted path."""
    with pytest.raises(InvalidSpec) as caught:
        parse_event_source(doc)
    assert path == caught.value.path
    assert message in caught.value.message


def test_path_prefix() -> None:
    """A caller's prefix (the document's place in a list) leads every error path."""
    with pytest.raises(InvalidSpec) as caught:
        parse_event_source(edit("kind", "Sensor"), path="items[3]")
    assert caught.value.path == "items[3].kind"


def test_not_a_mapping() -> None:
    """A document that is not a mapping is refused at the root."""
    with pytest.raises(InvalidSpec, match="must be a mapping, got str"):
        parse_event_source("apiVersion: x")
