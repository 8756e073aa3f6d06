"""
What the helper commands inside a Kubernetes pod do: the ``GITTRIGGER_POD`` plan (pure).

:mod:`workflows.executors.podspec` writes it into the ``init`` and ``wait`` containers' env
(:func:`plan_for`, :meth:`PodPlan.to_env`) and the main containers' ``GITTRIGGER_OUTPUTS``
(:func:`outputs_env`); :mod:`gittrigger.podhelper` (``gittrigger pod-init`` / ``pod-wait``)
reads it back with :meth:`PodPlan.from_env`. The contract is ``docs/kubernetes-pods.md``.

Everything is addressed by index in the shared ``/var/run/gittrigger`` volume: ``files[i]`` is
written to ``inputs/<i>``, ``inputs[i]`` (input artifacts) placed at ``artifacts/<i>``, and
output ``i`` (parameters first, then artifacts, as in ``GITTRIGGER_OUTPUTS``) is copied by the
emissary to ``outputs/<i>``. The JSON is compact and its keys snake_case: it is our own format,
read only by our own helpers (of the same image version as the server that wrote it).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from workflows.errors import InvalidSpec
from workflows.executors.base import OutputArtifact, OutputParameter, PodRequest
from workflows.model.spec import GitSource

VERSION: Final = 1
# The server's artifact endpoint, as pods call it: ``PUT``/``GET`` ``{server_url}{ARTIFACTS_PATH}{key}``
# with ``Authorization: Bearer $GITTRIGGER_ARTIFACT_TOKEN`` (gittrigger.http.artifacts serves it).
ARTIFACTS_PATH: Final = "/api/v1/gittrigger/artifacts/"
# A stored object that is a directory (``archive: none``) travels as an uncompressed tar of its
# contents, marked by this header with the value ``tar`` (a file travels as its bytes).
TRANSFER_HEADER: Final = "X-Gittrigger-Transfer"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanFile:
    """A file pod-init writes to ``inputs/<index>`` (a script's source)."""

    path: str
    content: bytes
    mode: int = 0o644


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanGit:
    """A ``git`` input artifact (credentials are not carried: the pod has no server secrets)."""

    repo: str
    revision: str | None = None
    depth: int | None = None
    branch: str | None = None
    single_branch: bool = False
    fetch: tuple[str, ...] = ()
    disable_submodules: bool = False
    insecure_ignore_host_key: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanInput:
    """An input artifact pod-init places at ``artifacts/<index>``; exactly one source is set."""

    name: str
    path: str
    raw_data: str | None = None
    key: str | None = None  # in the server's artifact store
    archive_none: bool = False
    git: PlanGit | None = None
    http_url: str | None = None
    sub_path: str | None = None
    mode: int | None = None
    optional: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PodPlan:
    """Everything pod-init and pod-wait need, and nothing else (no commands, no images)."""

    server_url: str
    result_container: str = "main"
    main_containers: tuple[str, ...] = ("main",)
    files: tuple[PlanFile, ...] = ()
    inputs: tuple[PlanInput, ...] = ()
    parameters: tuple[OutputParameter, ...] = ()
    artifacts: tuple[OutputArtifact, ...] = ()

    def output_index(self, artifact: int) -> int:
        """The ``outputs/<i>`` index of output artifact ``artifact`` (parameters come first)."""
        return len(self.parameters) + artifact

    def to_env(self) -> str:
        """The plan as compact JSON, for the ``GITTRIGGER_POD`` env var (deterministic)."""
        return json.dumps(_dump(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_env(cls, text: str) -> PodPlan:
        """Parse ``GITTRIGGER_POD``; InvalidSpec names the field (``GITTRIGGER_POD.inputs[0].key``)."""
        try:
            raw = json.loads(text)
        except ValueError as e:
            raise InvalidSpec(ROOT, f"is not JSON: {e}") from None
        return _parse(raw)


def plan_for(pod: PodRequest, *, server_url: str) -> PodPlan:
    """The plan of ``pod``: its files, input artifacts, outputs and containers."""
    return PodPlan(
        server_url=server_url,
        result_container=pod.result_container,
        main_containers=tuple(c.name for c in pod.main),
        files=tuple(PlanFile(path=f.path, content=f.content, mode=f.mode) for f in pod.files),
        inputs=tuple(
            PlanInput(
                name=a.name, path=a.path, raw_data=a.raw_data, key=a.key, archive_none=a.archive_none,
                git=_git(a.git) if a.git is not None else None, http_url=a.http_url, sub_path=a.sub_path,
                mode=a.mode, optional=a.optional,
            )
            for a in pod.input_artifacts
        ),
        parameters=pod.output_parameters,
        artifacts=pod.output_artifacts,
    )


def outputs_env(plan: PodPlan) -> str:
    """``GITTRIGGER_OUTPUTS`` for the emissary: ``<index>=<path>`` joined by ``:``.

    Output parameters first, then output artifacts (the ``outputs/<i>`` indexes). In a path,
    ``%`` is written ``%25`` and ``:`` is written ``%3A`` (only those two), so any path survives
    the separator; the emissary decodes exactly these two escapes.
    """
    paths = [p.path for p in plan.parameters] + [a.path for a in plan.artifacts]
    return ":".join(f"{i}={escape_path(path)}" for i, path in enumerate(paths))


def escape_path(path: str) -> str:
    """A path as it appears in ``GITTRIGGER_OUTPUTS`` (``%`` -> ``%25``, ``:`` -> ``%3A``)."""
    return path.replace("%", "%25").replace(":", "%3A")


def parse_outputs_env(text: str) -> dict[int, str]:
    """The inverse of :func:`outputs_env` (for tests and for reading a pod's env back)."""
    out: dict[int, str] = {}
    for item in filter(None, text.split(":")):
        index, sep, path = item.partition("=")
        if not sep or not index.isdigit():
            raise InvalidSpec("GITTRIGGER_OUTPUTS", f"{item!r} is not <index>=<path>")
        out[int(index)] = path.replace("%3A", ":").replace("%25", "%")
    return out


# -- dump ----------------------------------------------------------------------------------

ROOT: Final = "GITTRIGGER_POD"


def _git(g: GitSource) -> PlanGit:
    return PlanGit(repo=g.repo, revision=g.revision, depth=g.depth, branch=g.branch, single_branch=g.single_branch,
                   fetch=g.fetch, disable_submodules=g.disable_submodules,
                   insecure_ignore_host_key=g.insecure_ignore_host_key)


def _compact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Fields without their defaults (None, False, empty): the env var stays short."""
    # Identity, not equality: 0 (a mode, compression level 0) == False but must stay.
    return {k: v for k, v in fields.items() if not (v is None or v is False or v == [] or v == ())}


def _dump(plan: PodPlan) -> dict[str, Any]:
    return {
        "version": VERSION,
        "server_url": plan.server_url,
        "result_container": plan.result_container,
        "main_containers": list(plan.main_containers),
        "files": [{"path": f.path, "content": base64.b64encode(f.content).decode("ascii"), "mode": f.mode}
                  for f in plan.files],
        "inputs": [_compact({
            "name": a.name, "path": a.path, "raw_data": a.raw_data, "key": a.key, "archive_none": a.archive_none,
            "git": _compact({**_git_fields(a.git), "fetch": list(a.git.fetch)}) if a.git is not None else None,
            "http_url": a.http_url, "sub_path": a.sub_path, "mode": a.mode, "optional": a.optional,
        }) for a in plan.inputs],
        "parameters": [{"name": p.name, "path": p.path} for p in plan.parameters],
        "artifacts": [_compact({
            "name": a.name, "path": a.path, "key": a.key, "archive_none": a.archive_none,
            "compression_level": a.compression_level, "optional": a.optional,
        }) for a in plan.artifacts],
    }


def _git_fields(g: PlanGit) -> dict[str, Any]:
    return {"repo": g.repo, "revision": g.revision, "depth": g.depth, "branch": g.branch,
            "single_branch": g.single_branch, "disable_submodules": g.disable_submodules,
            "insecure_ignore_host_key": g.insecure_ignore_host_key}


# -- parse ---------------------------------------------------------------------------------


class _Reader:
    """Typed access to one JSON object, errors naming ``path.field``."""

    def __init__(self, raw: Any, path: str) -> None:
        if not isinstance(raw, Mapping):
            raise InvalidSpec(path, f"must be an object, got {type(raw).__name__}")
        self.raw, self.path = raw, path

    def _get(self, name: str, kind: type[_T] | tuple[type, ...], *, required: bool, what: str) -> Any:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise InvalidSpec(f"{self.path}.{name}", "is required")
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise InvalidSpec(f"{self.path}.{name}", f"must be {what}, got {type(value).__name__}")
        return value

    def text(self, name: str, *, required: bool = False) -> str | None:
        return self._get(name, str, required=required, what="a string")  # type: ignore[no-any-return]

    def need(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def integer(self, name: str) -> int | None:
        return self._get(name, int, required=False, what="an integer")  # type: ignore[no-any-return]

    def flag(self, name: str) -> bool:
        return bool(self._get(name, bool, required=False, what="a boolean"))

    def items(self, name: str, parse: Callable[[_Reader], _T]) -> tuple[_T, ...]:
        values = self._get(name, list, required=False, what="a list") or []
        return tuple(parse(_Reader(v, f"{self.path}.{name}[{i}]")) for i, v in enumerate(values))

    def strings(self, name: str) -> tuple[str, ...]:
        values = self._get(name, list, required=False, what="a list") or []
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise InvalidSpec(f"{self.path}.{name}[{i}]", f"must be a string, got {type(v).__name__}")
        return tuple(values)


def _parse(raw: Any) -> PodPlan:
    r = _Reader(raw, ROOT)
    version = r.integer("version")
    if version != VERSION:
        raise InvalidSpec(f"{ROOT}.version", f"must be {VERSION} (helper and server versions differ?), got {version}")
    plan = PodPlan(
        server_url=r.need("server_url"),
        result_container=r.need("result_container"),
        main_containers=r.strings("main_containers"),
        files=r.items("files", _file),
        inputs=r.items("inputs", _input),
        parameters=r.items("parameters", lambda p: OutputParameter(name=p.need("name"), path=p.need("path"))),
        artifacts=r.items("artifacts", _artifact),
    )
    if not plan.main_containers:
        raise InvalidSpec(f"{ROOT}.main_containers", "must name at least one container")
    return plan


def _file(r: _Reader) -> PlanFile:
    try:
        content = base64.b64decode(r.need("content"), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSpec(f"{r.path}.content", "is not base64") from None
    mode = r.integer("mode")
    return PlanFile(path=r.need("path"), content=content, mode=0o644 if mode is None else mode)


def _input(r: _Reader) -> PlanInput:
    git = None
    if r.raw.get("git") is not None:
        g = _Reader(r.raw["git"], f"{r.path}.git")
        git = PlanGit(repo=g.need("repo"), revision=g.text("revision"), depth=g.integer("depth"),
                      branch=g.text("branch"), single_branch=g.flag("single_branch"), fetch=g.strings("fetch"),
                      disable_submodules=g.flag("disable_submodules"),
                      insecure_ignore_host_key=g.flag("insecure_ignore_host_key"))
    art = PlanInput(name=r.need("name"), path=r.need("path"), raw_data=r.text("raw_data"), key=r.text("key"),
                    archive_none=r.flag("archive_none"), git=git, http_url=r.text("http_url"),
                    sub_path=r.text("sub_path"), mode=r.integer("mode"), optional=r.flag("optional"))
    sources = [s for s in (art.raw_data, art.key, art.git, art.http_url) if s is not None]
    if len(sources) > 1:
        raise InvalidSpec(r.path, "sets more than one of raw_data, key, git and http_url")
    return art


def _artifact(r: _Reader) -> OutputArtifact:
    return OutputArtifact(name=r.need("name"), path=r.need("path"), key=r.need("key"),
                        archive_none=r.flag("archive_none"), compression_level=r.integer("compression_level"),
                        optional=r.flag("optional"))
