"""Verification, delivery ids, event types and Argo Events envelopes of the Git-host webhook sources."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from urllib.parse import urlencode

import pytest

from gittrigger.sources import bitbucket, generic, gitea, github, gitlab
from gittrigger.sources import headers as hdr
from gittrigger.sources.envelope import MASK, WebhookHost, rfc3339
from gittrigger.sources.errors import SignatureRejected, WebhookRejected
from workflows.errors import ErrorCode, WorkflowError

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
SECRET = b"It's a Secret to Everybody"
WHEN = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)


def fixture(host: str, name: str) -> bytes:
    return (FIXTURES / host / name).read_bytes()


def hexmac(body: bytes, secret: bytes = SECRET, algo: str = "sha256") -> str:
    return hmac.new(secret, body, getattr(hashlib, algo)).hexdigest()


def test_github_documented_test_vector() -> None:
    """GitHub's own example (secret, "Hello, World!") verifies, so the HMAC input is the raw body."""
    sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    github.verify({hdr.X_HUB_SIGNATURE_256: sig}, b"Hello, World!", SECRET)


BODY = fixture("github", "push.json")

# (module, headers for BODY, expected rejection or None)
SIGNATURE_CASES: list[tuple[ModuleType, dict[str, str], str | None]] = [
    (github, {"X-Hub-Signature-256": "sha256=" + hexmac(BODY)}, None),
    (github, {"x-hub-signature-256": "sha256=" + hexmac(BODY).upper()}, None),
    (github, {"X-Hub-Signature": "sha1=" + hexmac(BODY, algo="sha1")}, None),
    (
        github,
        {"X-Hub-Signature-256": "sha256=" + hexmac(BODY, b"other")},
        "signature mismatch in X-Hub-Signature-256",
    ),
    (github, {"X-Hub-Signature-256": hexmac(BODY)}, "X-Hub-Signature-256 header is not of the form sha256="),
    (github, {"X-Hub-Signature-256": "sha256=zz"}, "X-Hub-Signature-256 header does not hold a hex digest"),
    (github, {"X-Hub-Signature-256": "sha256=" + hexmac(BODY)[:-2]}, "signature mismatch"),
    (github, {}, "missing X-Hub-Signature-256 header"),
    (gitlab, {"X-Gitlab-Token": SECRET.decode()}, None),
    (gitlab, {"x-gitlab-token": SECRET.decode()}, None),
    (gitlab, {"X-Gitlab-Token": "guess"}, "token mismatch in X-Gitlab-Token"),
    (gitlab, {}, "missing X-Gitlab-Token header"),
    (gitlab, {"X-Gitlab-Token": "s\udce9cret"}, "token mismatch in X-Gitlab-Token"),
    (github, {"X-Hub-Signature-256": "sha256=\u00e9\u00e9"}, "does not hold a hex digest"),
    (gitea, {"X-Gitea-Signature": hexmac(BODY)}, None),
    (gitea, {"X-Forgejo-Signature": hexmac(BODY)}, None),
    (gitea, {"X-Gitea-Signature": "", "X-Forgejo-Signature": hexmac(BODY)}, None),
    (gitea, {"X-Gitea-Signature": "sha256=" + hexmac(BODY)}, "does not hold a hex digest"),
    (gitea, {"X-Gitea-Signature": hexmac(BODY, b"other")}, "signature mismatch in X-Gitea-Signature"),
    (gitea, {"X-Gitea-Signature": ""}, "missing X-Gitea-Signature header"),
    (bitbucket, {"X-Hub-Signature": "sha256=" + hexmac(BODY)}, None),
    (bitbucket, {"X-Hub-Signature": "sha1=" + hexmac(BODY, algo="sha1")}, "is not of the form sha256="),
    (bitbucket, {"X-Hub-Signature": "sha256=" + hexmac(BODY, b"x")}, "signature mismatch in X-Hub-Signature"),
    (bitbucket, {}, "missing X-Hub-Signature header"),
    (generic, {"Authorization": "Bearer " + SECRET.decode()}, None),
    (generic, {"Authorization": "Basic " + SECRET.decode()}, "not of the form Bearer <token>"),
    (generic, {"Authorization": "Bearer nope"}, "token mismatch in Authorization"),
    (generic, {}, "missing Authorization header"),
]


@pytest.mark.parametrize(
    ("module", "headers", "rejection"),
    SIGNATURE_CASES,
    ids=[
        "github-valid",
        "github-uppercase-hex-lowercase-name",
        "github-sha1-fallback",
        "github-wrong-secret",
        "github-no-prefix",
        "github-not-hex",
        "github-truncated",
        "github-missing",
        "gitlab-valid",
        "gitlab-lowercase-name",
        "gitlab-wrong",
        "gitlab-missing",
        "gitlab-undecodable-byte",
        "github-non-ascii",
        "gitea-valid",
        "forgejo-valid",
        "gitea-empty-forgejo-set",
        "gitea-prefixed",
        "gitea-wrong",
        "gitea-empty",
        "bitbucket-valid",
        "bitbucket-sha1",
        "bitbucket-wrong",
        "bitbucket-missing",
        "generic-valid",
        "generic-basic",
        "generic-wrong",
        "generic-missing",
    ],
)
def test_verify(module: ModuleType, headers: dict[str, str], rejection: str | None) -> None:
    """A good signature passes; a bad or missing one is UNAUTHENTICATED without leaking secrets."""
    if rejection is None:
        module.verify(headers, BODY, SECRET)
        return
    with pytest.raises(SignatureRejected) as caught:
        module.verify(headers, BODY, SECRET)
    assert rejection in caught.value.reason
    assert (caught.value.code, caught.value.status) == (ErrorCode.UNAUTHENTICATED, 401)
    assert isinstance(caught.value, WorkflowError)
    assert SECRET.decode() not in str(caught.value)
    assert hexmac(BODY) not in str(caught.value).lower()


@pytest.mark.parametrize("module", [github, gitlab, gitea, bitbucket, generic], ids=lambda m: m.__name__)
@pytest.mark.parametrize("secret", [None, b""], ids=["none", "empty"])
def test_no_secret_means_no_check(module: ModuleType, secret: bytes | None) -> None:
    """Without a configured secret Argo Events accepts unsigned deliveries, and so do we."""
    module.verify({}, BODY, secret)


def test_body_tampering_is_detected() -> None:
    """The signature covers every byte: one changed byte fails verification."""
    headers = {hdr.X_HUB_SIGNATURE_256: "sha256=" + hexmac(BODY)}
    with pytest.raises(SignatureRejected):
        github.verify(headers, BODY.replace(b"main", b"mainx", 1), SECRET)


@pytest.mark.parametrize(
    ("module", "headers", "expected"),
    [
        (
            github,
            {"X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
            "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        ),
        (github, {"x-github-delivery": "abc"}, "abc"),
        (github, {}, None),
        (gitlab, {"Idempotency-Key": "idem-1", "X-Gitlab-Event-UUID": "uuid-1"}, "idem-1"),
        (gitlab, {"X-Gitlab-Event-UUID": "uuid-1"}, "uuid-1"),
        (gitlab, {"X-Gitlab-Webhook-UUID": "hook-not-delivery"}, None),
        (gitea, {"X-Gitea-Delivery": "g-1", "X-GitHub-Delivery": "g-1"}, "g-1"),
        (gitea, {"X-Forgejo-Delivery": "f-1"}, "f-1"),
        (gitea, {}, None),
        (bitbucket, {"X-Request-UUID": "r-1", "X-Hook-UUID": "h-1"}, "r-1"),
        (bitbucket, {"X-Hook-UUID": "h-1"}, None),
        (generic, {"X-Request-Id": "whatever"}, None),
    ],
    ids=[
        "github",
        "github-lowercase",
        "github-none",
        "gitlab-idempotency-first",
        "gitlab-event-uuid",
        "gitlab-hook-uuid-ignored",
        "gitea",
        "forgejo",
        "gitea-none",
        "bitbucket-request",
        "bitbucket-hook-ignored",
        "generic-none",
    ],
)
def test_delivery_id(module: ModuleType, headers: dict[str, str], expected: str | None) -> None:
    """Each host's dedup key comes from its per-delivery header, never the per-hook one."""
    assert expected == module.delivery_id(headers)


@pytest.mark.parametrize(
    ("module", "headers", "body", "expected", "ping"),
    [
        (github, {"X-GitHub-Event": "push"}, b"{}", "push", False),
        (github, {"X-GitHub-Event": "ping"}, b"{}", "ping", True),
        (gitlab, {"X-Gitlab-Event": "Tag Push Hook"}, b"{}", "Tag Push Hook", False),
        (gitlab, {}, b'{"object_kind": "push"}', "Push Hook", False),
        (gitea, {"X-Gitea-Event": "create"}, b"{}", "create", False),
        (gitea, {"X-Forgejo-Event": "push"}, b"{}", "push", False),
        (bitbucket, {"X-Event-Key": "repo:push"}, b"{}", "repo:push", False),
        (generic, {}, b"{}", "webhook", False),
    ],
    ids=[
        "github-push",
        "github-ping",
        "gitlab",
        "gitlab-object-kind",
        "gitea",
        "forgejo",
        "bitbucket",
        "generic",
    ],
)
def test_event_type_and_ping(
    module: ModuleType, headers: dict[str, str], body: bytes, expected: str, ping: bool
) -> None:
    """The event type comes from the host's header; only GitHub has a ping."""
    assert expected == module.event_type(headers, body)
    assert ping is module.is_ping(headers, body)


@pytest.mark.parametrize(
    ("module", "header"),
    [
        (github, "X-GitHub-Event"),
        (gitlab, "X-Gitlab-Event"),
        (gitea, "X-Gitea-Event"),
        (bitbucket, "X-Event-Key"),
    ],
    ids=["github", "gitlab", "gitea", "bitbucket"],
)
def test_missing_event_header_is_invalid(module: ModuleType, header: str) -> None:
    """A delivery without its event-type header is malformed (400), not unauthenticated."""
    with pytest.raises(WebhookRejected) as caught:
        module.event_type({}, b"{}")
    assert f"missing {header} header" == caught.value.reason
    assert (caught.value.code, caught.value.status) == (ErrorCode.INVALID, 400)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("x-github-event", "X-Github-Event"),
        ("X-GitHub-Delivery", "X-Github-Delivery"),
        ("X-HUB-SIGNATURE-256", "X-Hub-Signature-256"),
        ("content-type", "Content-Type"),
        ("idempotency-key", "Idempotency-Key"),
        ("x-gitlab-event-uuid", "X-Gitlab-Event-Uuid"),
        ("user_agent", "User_agent"),
        ("bad header", "bad header"),
        ("naïve-name", "naïve-name"),
        ("", ""),
    ],
    ids=[
        "lower",
        "mixed",
        "upper",
        "content-type",
        "idempotency",
        "uuid",
        "underscore",
        "space",
        "non-ascii",
        "empty",
    ],
)
def test_canonical_header_names_follow_go(name: str, expected: str) -> None:
    """Header names are spelled as Go's CanonicalMIMEHeaderKey, which Argo Events stores."""
    assert expected == hdr.canonical(name)


def test_header_constants_are_their_own_names() -> None:
    """Each constant holds the header name the host documents (spot checks of the tables)."""
    assert (hdr.X_HUB_SIGNATURE_256, hdr.X_GITLAB_TOKEN, hdr.X_GITEA_SIGNATURE, hdr.X_EVENT_KEY) == (
        "X-Hub-Signature-256",
        "X-Gitlab-Token",
        "X-Gitea-Signature",
        "X-Event-Key",
    )


class MultiHeaders(Mapping[str, str]):
    """A case-insensitive multi-valued mapping shaped like aiohttp's CIMultiDictProxy."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def __getitem__(self, key: str) -> str:
        for k, v in self._pairs:
            if k.lower() == key.lower():
                return v
        raise KeyError(key)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (k for k, _ in self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def items(self):  # type: ignore[no-untyped-def,override]
        return list(self._pairs)


def github_headers(
    body: bytes, *, event: str = "push", content_type: str = "application/json"
) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": "sha256=" + hexmac(body),
        "User-Agent": "GitHub-Hookshot/044aadd",
    }


def test_github_event_envelope() -> None:
    """GitHub push -> Argo's {headers (canonical, lists), body (+ event/delivery keys), metadata}."""
    headers = github_headers(BODY)
    github.verify(headers, BODY, SECRET)
    parts = github.to_event(
        headers, BODY, source_name="ci", event_name="widgets", received_at=WHEN, metadata={"team": "a"}
    )
    assert {
        "source": "ci",
        "type": "github",
        "subject": "widgets",
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "time": "2024-05-01T08:00:00Z",
    }.items() <= parts.context.items()
    assert parts.delivery_id == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert parts.data["headers"]["X-Github-Event"] == ["push"]
    assert parts.data["headers"]["Content-Type"] == ["application/json"]
    assert "X-GitHub-Event" not in parts.data["headers"]
    body = parts.data["body"]
    assert (body["ref"], body["X-GitHub-Event"]) == ("refs/heads/main", "push")
    assert body["X-GitHub-Delivery"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert parts.data["metadata"] == {"team": "a"}
    json.dumps(parts.data)  # the envelope is stored as JSON


def test_event_id_is_stable_per_delivery_and_hex() -> None:
    """A redelivery gets the same 32-hex id; another delivery or no delivery id gets another."""
    headers = github_headers(BODY)
    make = lambda h: github.to_event(h, BODY, source_name="ci", event_name="e", received_at=WHEN)  # noqa: E731
    first, again = make(headers), make(headers)
    other = make({**headers, "X-GitHub-Delivery": "another"})
    anon = make({k: v for k, v in headers.items() if k != "X-GitHub-Delivery"})
    assert first.context["id"] == again.context["id"]
    assert len({first.context["id"], other.context["id"], anon.context["id"]}) == 3
    assert all(len(p.context["id"]) == 32 and int(p.context["id"], 16) >= 0 for p in (first, other, anon))
    assert anon.delivery_id is None


@pytest.mark.parametrize("delivery", ["d1", "123e4567-e89b-12d3-a456-426614174000", "é/ü ✓", "x" * 300],
                         ids=["short", "uuid", "unicode", "long"])
def test_event_id_is_the_uuid5_of_the_delivery(delivery: str) -> None:
    """Stored ids stay what they were: uuid5 of source type/name/event/delivery, as hex."""
    from gittrigger.sources import envelope

    got = envelope.event_id_for(source_type="github", source_name="ci", event_name="e", delivery_id=delivery)
    assert got == uuid.uuid5(envelope._EVENT_ID_NAMESPACE, f"github/ci/e/{delivery}").hex


def test_metadata_key_is_absent_when_empty() -> None:
    """Go's omitempty: no metadata configured -> no ``metadata`` key at all."""
    parts = gitlab.to_event(
        {"X-Gitlab-Event": "Push Hook"}, b"{}", source_name="s", event_name="e", received_at=WHEN
    )
    assert set(parts.data) == {"headers", "body"}


def test_repeated_headers_keep_every_value_and_secrets_are_masked() -> None:
    """Multi-valued headers become lists in order; Authorization and X-Gitlab-Token are masked."""
    headers = MultiHeaders(
        [
            ("x-gitlab-event", "Push Hook"),
            ("Via", "proxy-a"),
            ("via", "proxy-b"),
            ("X-Gitlab-Token", SECRET.decode()),
            ("authorization", "Bearer t"),
        ]
    )
    parts = gitlab.to_event(headers, b"{}", source_name="s", event_name="e", received_at=WHEN)
    assert parts.data["headers"]["Via"] == ["proxy-a", "proxy-b"]
    assert parts.data["headers"]["X-Gitlab-Token"] == [MASK]
    assert parts.data["headers"]["Authorization"] == [MASK]
    assert SECRET.decode() not in json.dumps(parts.data)


def test_github_form_encoded_payload() -> None:
    """A form-encoded delivery is signed over the raw form body and carries JSON in ``payload``."""
    form = urlencode({"payload": BODY.decode()}).encode()
    headers = github_headers(form, content_type="application/x-www-form-urlencoded")
    github.verify(headers, form, SECRET)
    parts = github.to_event(headers, form, source_name="s", event_name="e", received_at=WHEN)
    assert parts.data["body"]["ref"] == "refs/heads/main"


@pytest.mark.parametrize(
    ("module", "headers", "body", "reason"),
    [
        (
            github,
            {},
            b"{not json",
            "body is not valid JSON: Expecting property name enclosed in double quotes",
        ),
        (github, {}, b"", "body is not valid JSON: Expecting value at line 1 column 1"),
        (github, {}, b"[1, 2]", "body is not valid JSON: expected an object, got list"),
        (github, {}, b"\xff\xfe{", "body is not valid JSON"),
        (github, {"Content-Type": "text/plain"}, b"{}", "unsupported Content-Type 'text/plain'"),
        (github, {"Content-Type": "application/x-www-form-urlencoded"}, b"other=1", "no payload field"),
        (
            github,
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"payload=%7Bx",
            "body is not valid JSON",
        ),
        (gitlab, {}, b'{"a": ', "body is not valid JSON"),
        (gitea, {}, b"nul", "body is not valid JSON"),
        (bitbucket, {}, b'"a string"', "expected an object, got str"),
        (generic, {}, b"{", "body is not valid JSON"),
        (github, {}, b'{"ref": NaN}', "body is not valid JSON: NaN is not a JSON value"),
        (generic, {}, b'{"n": 1e999}', "body is not valid JSON: number 1e999 is out of range"),
    ],
    ids=[
        "github-garbage",
        "empty",
        "array",
        "not-utf8",
        "text-plain",
        "form-no-payload",
        "form-bad-json",
        "gitlab",
        "gitea",
        "bitbucket-string",
        "generic",
        "nan",
        "out-of-range",
    ],
)
def test_malformed_bodies_are_invalid(
    module: ModuleType, headers: dict[str, str], body: bytes, reason: str
) -> None:
    """A malformed body is rejected INVALID (400) with a one-line reason and no traceback chain."""
    with pytest.raises(WebhookRejected) as caught:
        module.to_event(headers, body, source_name="s", event_name="e", received_at=WHEN)
    assert reason in caught.value.reason
    assert (caught.value.code, caught.value.status) == (ErrorCode.INVALID, 400)
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert "\n" not in caught.value.reason


HOST_EVENTS: list[tuple[ModuleType, str, Callable[[bytes], dict[str, str]], str, str]] = [
    (
        gitlab,
        "gitlab/push.json",
        lambda b: {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET.decode(), "Idempotency-Key": "k1"},
        "gitlab",
        "X-Gitlab-Event",
    ),
    (
        gitea,
        "gitea/push.json",
        lambda b: {"X-Gitea-Event": "push", "X-Gitea-Delivery": "d1", "X-Gitea-Signature": hexmac(b)},
        "gitea",
        "X-Gitea-Event",
    ),
    (
        bitbucket,
        "bitbucket/push.json",
        lambda b: {
            "X-Event-Key": "repo:push",
            "X-Request-UUID": "r1",
            "X-Hub-Signature": "sha256=" + hexmac(b),
        },
        "bitbucket",
        "X-Event-Key",
    ),
]


@pytest.mark.parametrize(
    ("module", "path", "make_headers", "source_type", "event_header"),
    HOST_EVENTS,
    ids=["gitlab", "gitea", "bitbucket"],
)
def test_host_event_envelopes(
    module: ModuleType,
    path: str,
    make_headers: Callable[[bytes], dict[str, str]],
    source_type: str,
    event_header: str,
) -> None:
    """Each signed host fixture verifies and becomes {headers, body} with the body untouched."""
    body = (FIXTURES / path).read_bytes()
    headers = make_headers(body)
    module.verify(headers, body, SECRET)
    parts = module.to_event(headers, body, source_name="src", event_name="ev", received_at=WHEN)
    assert source_type == parts.context["type"]
    assert json.loads(body) == parts.data["body"]
    assert [headers[event_header]] == parts.data["headers"][hdr.canonical(event_header)]
    assert parts.delivery_id is not None


def test_forgejo_type_is_kept() -> None:
    """A ``forgejo`` EventSource entry yields events of type ``forgejo`` from the same parser."""
    parts = gitea.to_event(
        {"X-Forgejo-Event": "push"},
        b"{}",
        source_name="s",
        event_name="e",
        received_at=WHEN,
        source_type="forgejo",
    )
    assert parts.context["type"] == "forgejo"


@pytest.mark.parametrize(
    ("headers", "body", "method", "query", "expected"),
    [
        ({"Content-Type": "application/json"}, b'{"a": 1}', "POST", None, {"a": 1}),
        ({}, b"[1, 2]", "POST", None, [1, 2]),
        (
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"a=1&a=2&b=",
            "POST",
            None,
            {"a": ["1", "2"], "b": [""]},
        ),
        ({}, b"", "GET", {"q": ["x"]}, {"q": ["x"]}),
    ],
    ids=["json", "json-array", "form", "get-query"],
)
def test_generic_webhook_bodies(
    headers: dict[str, str], body: bytes, method: str, query: dict[str, list[str]] | None, expected: object
) -> None:
    """The generic source keeps Argo's ``header`` key and its JSON/form/query body rules."""
    parts = generic.to_event(
        headers, body, source_name="s", event_name="e", received_at=WHEN, method=method, query=query
    )
    assert expected == parts.data["body"]
    assert "header" in parts.data and "headers" not in parts.data
    assert (parts.delivery_id, parts.context["type"]) == (None, "webhook")


def test_generic_rejects_other_methods() -> None:
    """Argo's webhook source serves GET and POST only."""
    with pytest.raises(WebhookRejected) as caught:
        generic.to_event({}, b"{}", source_name="s", event_name="e", received_at=WHEN, method="PUT")
    assert caught.value.status == 405


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05Z"),
        (datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC), "2024-01-02T03:04:05.120000Z"),
        (datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))), "2024-01-02T03:04:05Z"),
    ],
    ids=["utc", "fraction", "offset"],
)
def test_event_time_is_rfc3339_utc(moment: datetime, expected: str) -> None:
    """``context.time`` is the receive time in UTC, RFC 3339."""
    assert expected == rfc3339(moment)


def test_naive_receive_time_is_a_programming_error() -> None:
    """A naive datetime has no meaning as an event time."""
    with pytest.raises(ValueError, match="timezone-aware"):
        rfc3339(datetime(2024, 1, 1))


HOSTS: Mapping[str, WebhookHost] = {
    "github": github,
    "gitlab": gitlab,
    "gitea": gitea,
    "bitbucket": bitbucket,
    "webhook": generic,
}


@pytest.mark.parametrize("source_type", sorted(HOSTS), ids=str)
def test_every_host_module_offers_the_same_calls(source_type: str) -> None:
    """The HTTP edge can treat the host modules alike (mypy checks the WebhookHost Protocol)."""
    module = HOSTS[source_type]
    assert source_type == module.SOURCE_TYPE
    for member in ("verify", "delivery_id", "event_type", "is_ping", "to_event"):
        assert callable(getattr(module, member))
