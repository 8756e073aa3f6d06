"""
Commit statuses for runs that a Git push started: pending when they run, then the outcome.

An engine phase listener (:meth:`workflows.engine.Engine.add_phase_listener`) wired by
:mod:`gittrigger.triggers`. A run carries the ``gittrigger.io/event-id`` label of the delivery
that created it; the event (from the event log) says which host and which EventSource it came
from, and that source's ``apiToken`` (GitHub, Gitea/Forgejo), ``accessToken`` (GitLab) or
``auth.oauthToken`` (Bitbucket) secret authorises the report. Sources without a token report
nothing. Outcomes are recorded in the event's audit trail; failures are logged, never raised.

Our extension, ignored by Argo Events: ``statusApiURL`` on the event spec names the host's API
base URL when it cannot be derived from the repository URL (self-hosted hosts, tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import structlog

from gittrigger.reporting import CommitStatus, Credentials, StatusReporter, state_for_phase
from gittrigger.repos import SecretResolver
from gittrigger.secretsources import secrets_in
from gittrigger.sources.pushes import push_summary
from sensors.eventlog import AuditEntry, EventLog
from workflows.errors import WorkflowError

log = structlog.get_logger("gittrigger.statuses")

_HOSTS: Final = ("github", "gitlab", "gitea", "forgejo", "bitbucket")
_TOKEN_PATHS: Final = {
    "github": (("apiToken",),),
    "gitea": (("apiToken",),),
    "forgejo": (("apiToken",),),
    "gitlab": (("accessToken",),),
    "bitbucket": (("auth", "oauthToken"),),
}


class CommitStatuses:
    """Reports each push-started run's phase to its Git host (a PhaseListener)."""

    def __init__(self, *, events: EventLog, sources: Sequence[Mapping[str, Any]], secrets: SecretResolver,
                 reporter: StatusReporter, link: Callable[[str, str], str]) -> None:
        self._events = events
        self._secrets = secrets
        self._reporter = reporter
        self._link = link
        self._specs: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.replace_sources(sources)

    def replace_sources(self, sources: Sequence[Mapping[str, Any]]) -> None:
        """Report for these EventSources from now on (their status API settings and tokens); a reload
        calls it, so a changed ``apiToken`` or a new source needs no restart."""
        specs: dict[tuple[str, str], Mapping[str, Any]] = {}
        namespaces: dict[str, str] = {}
        for raw in sources:
            name = str((raw.get("metadata") or {}).get("name", ""))
            namespaces[name] = str((raw.get("metadata") or {}).get("namespace") or "")
            for kind, events_spec in (raw.get("spec") or {}).items():
                if kind in _HOSTS and isinstance(events_spec, Mapping):
                    for event_name, spec in events_spec.items():
                        if isinstance(spec, Mapping):
                            specs[(name, str(event_name))] = spec
        self._specs = specs
        self._namespaces = namespaces  # an EventSource's tokens are read from its own namespace

    async def __call__(self, namespace: str, name: str, phase: str, workflow: Mapping[str, Any]) -> None:
        labels = (workflow.get("metadata") or {}).get("labels") or {}
        event_id = labels.get("gittrigger.io/event-id")
        if not event_id:
            return
        try:
            stored = await self._events.get(str(event_id))
        except WorkflowError:
            return
        kind = stored.source_kind
        spec = self._specs.get((stored.event.event_source_name, stored.event.event_name))
        if kind not in _HOSTS or spec is None:
            return
        secrets = secrets_in(self._secrets, self._namespaces.get(stored.event.event_source_name, ""))
        token = await asyncio.to_thread(self._token, kind, spec, secrets)  # a secret read may block
        if token is None:
            return
        data = stored.event.data if isinstance(stored.event.data, Mapping) else {}
        try:
            push = push_summary(kind, data.get("body") or {})
        except WorkflowError:
            return  # not a push (a tag ping, a PR): nothing to report on
        status = CommitStatus(state=state_for_phase(phase), target_url=self._link(namespace, name),
                              description=f"{name}: {phase}",
                              context=f"gittrigger/{labels.get('gittrigger.io/sensor', 'ci')}")
        outcome = await self._reporter.report_push(
            "gitea" if kind == "forgejo" else kind, push, status, credentials=token,
            api_url=spec.get("statusApiURL"))
        await self._events.audit(stored.seq, AuditEntry(at=datetime.now(UTC), kind="status-reported",
                                                        detail={"workflow": name, **outcome.as_detail()}))

    @staticmethod
    def _token(kind: str, spec: Mapping[str, Any], secrets: SecretResolver) -> Credentials | None:
        for path in _TOKEN_PATHS.get(kind, ()):
            ref: Any = spec
            for part in path:
                ref = ref.get(part) if isinstance(ref, Mapping) else None
            if isinstance(ref, Mapping) and ref.get("name") and ref.get("key"):
                try:
                    return Credentials.from_secret(secrets.resolve(str(ref["name"]), str(ref["key"])))
                except WorkflowError as e:
                    log.warning("status token unavailable", secret=f"{ref['name']}/{ref['key']}", error=str(e))
                    return None
        return None
