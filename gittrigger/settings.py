"""
gittrigger's settings: nested frozen dataclasses, loaded once from a YAML file, ``GITTRIGGER_*``
environment variables and command-line overrides, and validated once.

Called by :mod:`gittrigger.cli`, which hands the resulting :class:`Settings` to
:mod:`gittrigger.assembly` and :mod:`gittrigger.runtime`. Precedence, lowest first: defaults,
the file, the environment, the overrides. Every bad value raises
:class:`~workflows.errors.InvalidSpec` naming where it came from (``server.port`` for the file
and overrides, ``GITTRIGGER_PORT`` for the environment). Unknown keys in the file are errors so a
typo never passes silently; unknown ``GITTRIGGER_*`` variables are ignored, as other parts
(tests, fixtures) use that prefix too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import yaml

from workflows.errors import InvalidSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """The HTTP listener."""

    host: str = "127.0.0.1"
    port: int = 2746
    max_body_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    """The workflow engine: the namespace runs land in when a manifest names none."""

    namespace: str = "default"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorSettings:
    """Where pods run: only ``local`` (process groups, optionally in bubblewrap) for now."""

    kind: str = "local"
    isolation: str = "auto"
    network: str = "host"
    grace_period_seconds: float = 10.0
    extra_path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSettings:
    """State: ``<data_dir>/gittrigger.db`` (SQLite), artifacts and pod workspaces under ``data_dir``."""

    data_dir: Path = Path(".gittrigger")
    synchronous: str = "NORMAL"


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSettings:
    """Manifests loaded at start (files or folders) and where secret references are read from."""

    manifest_paths: tuple[Path, ...] = ()
    secrets_dir: Path = Path(".gittrigger/secrets")
    # files: <secrets_dir>/<name>/<key>; kubernetes: the Secret via the API; auto: kubernetes in a
    # cluster or with executor.kind kubernetes, else files (see gittrigger.secretsources)
    secrets_from: str = "auto"
    max_manifest_bytes: int = 2 * 1024 * 1024  # a larger manifest file is refused


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthSettings:
    """API access control: bearer tokens with roles (see :mod:`gittrigger.http.auth`).

    ``tokens_file`` is a YAML list of ``{name, token | tokenFile, role, namespaces}``;
    ``admin_token`` adds one admin token for every namespace (handy from the environment).
    With neither, the server binds loopback only.
    """

    tokens_file: Path | None = None
    admin_token: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KubernetesSettings:
    """The Kubernetes executor (``executor.kind: kubernetes``; see :mod:`workflows.executors.kubernetes`)."""

    kubeconfig: Path | None = None  # None: in-cluster config when present, else ~/.kube/config
    context: str | None = None
    namespace: str | None = None  # None: each workflow's metadata.namespace, else engine.namespace
    service_account: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    helper_image: str = "ghcr.io/gittrigger/gittrigger:0.1.0"
    pod_gc: str = "OnPodCompletion"
    pod_gc_delete_delay_seconds: float = 0.0
    qps: float = 20.0
    burst: int = 40
    server_url: str | None = None  # how pods reach this server (artifacts); None: derived from the pod IP
    # Argo's `images` config: the ENTRYPOINT/CMD of images used without a command (no registry lookup)
    images: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()
    default_requests: tuple[tuple[str, str], ...] = ()  # e.g. cpu=100m,memory=128Mi for containers without
    default_limits: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSettings:
    """Log level and format; ``json=None`` means JSON lines unless stderr is a terminal."""

    level: str = "info"
    json: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the process is configured with; built once by :func:`load_settings`."""

    server: ServerSettings = field(default_factory=ServerSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    sources: SourceSettings = field(default_factory=SourceSettings)
    log: LogSettings = field(default_factory=LogSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)


# -- converters: raw value (YAML scalar or environment string) -> typed value, ValueError on bad --

Convert = Callable[[Any], Any]
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")
SYNCHRONOUS_LEVELS: Final = ("OFF", "NORMAL", "FULL", "EXTRA")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def _int_range(low: int, high: int) -> Convert:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"must be an integer {low}-{high}, got {value!r}")
        try:
            number = int(value.strip()) if isinstance(value, str) else value
        except ValueError:
            raise ValueError(f"must be an integer {low}-{high}, got {value!r}") from None
        if not low <= number <= high:
            raise ValueError(f"must be an integer {low}-{high}, got {value!r}")
        return number
    return convert


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a number of seconds >= 0, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"must be a number of seconds >= 0, got {value!r}") from None
    if not 0 <= number < float("inf"):
        raise ValueError(f"must be a number of seconds >= 0, got {value!r}")
    return number


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value.strip()


def _secret(value: Any) -> str:
    """A non-empty string, never repeated in the error (it is a credential)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string (got a {type(value).__name__}; the value is not shown)")
    return value.strip()


def _choice(*choices: str, upper: bool = False) -> Convert:
    def convert(value: Any) -> str:
        text = value.strip() if isinstance(value, str) else value
        if isinstance(text, str):
            text = text.upper() if upper else text.lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return str(text)
    return convert


def _optional_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        if text in ("", "auto"):
            return None
    raise ValueError(f"must be true, false or auto, got {value!r}")


def _path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    return Path(_text(value))


def _strings(value: Any) -> tuple[str, ...]:
    """A list, or one string of ``os.pathsep``-separated entries (the form environment variables take)."""
    if isinstance(value, str):
        return tuple(part for part in value.split(os.pathsep) if part)
    if isinstance(value, list | tuple) and all(isinstance(v, str | Path) and str(v) for v in value):
        return tuple(str(v) for v in value)
    raise ValueError(f"must be a list of non-empty strings, got {value!r}")


def _paths(value: Any) -> tuple[Path, ...]:
    return tuple(Path(p) for p in _strings(value))


def _positive(value: Any) -> float:
    number = _seconds(value)
    if number <= 0:
        raise ValueError(f"must be a number > 0, got {value!r}")
    return number


def _resource_list(value: Any) -> tuple[tuple[str, str], ...]:
    """``cpu=100m,memory=128Mi`` (or a mapping in the file) -> ((name, quantity), ...)."""
    if isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    elif isinstance(value, str):
        pairs = []
        for part in filter(None, (p.strip() for p in value.split(","))):
            name, sep, quantity = part.partition("=")
            if not sep:
                raise ValueError(f"must be name=quantity pairs like cpu=100m,memory=128Mi, got {value!r}")
            pairs.append((name.strip(), quantity.strip()))
    else:
        raise ValueError(f"must be a mapping or name=quantity pairs, got {value!r}")
    for name, quantity in pairs:
        if not re.fullmatch(r"[A-Za-z0-9./-]+", name) or not re.fullmatch(r"[0-9.]+[A-Za-z]*", quantity):
            raise ValueError(f"{name}={quantity} is not a resource name and a quantity")
    return tuple(pairs)


def _images(value: Any) -> tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]:
    """``{image: {entrypoint: [...], cmd: [...]}}`` (Argo's ``images``; JSON text in the environment)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise ValueError(f"must be a JSON object of image -> {{entrypoint, cmd}}: {e}") from None
    if not isinstance(value, dict):
        raise ValueError("must map image names to {entrypoint: [...], cmd: [...]}")
    out = []
    for image, spec in value.items():
        if not isinstance(spec, dict) or not set(spec) <= {"entrypoint", "cmd"}:
            raise ValueError(f"{image}: must be {{entrypoint: [...], cmd: [...]}}")
        parts = []
        for name in ("entrypoint", "cmd"):
            items = spec.get(name) or []
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ValueError(f"{image}.{name}: must be a list of strings")
            parts.append(tuple(items))
        if not parts[0] and not parts[1]:
            raise ValueError(f"{image}: needs an entrypoint or a cmd")
        out.append((str(image), parts[0], parts[1]))
    return tuple(out)


POD_GC_STRATEGIES: Final = ("OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess", "Never")


def _pod_gc(value: Any) -> str:
    if value not in POD_GC_STRATEGIES:
        raise ValueError(f"must be one of {', '.join(POD_GC_STRATEGIES)}, got {value!r}")
    return str(value)


@dataclass(frozen=True, slots=True)
class _Field:
    env: str
    convert: Convert
    relative_to_file: bool = False  # paths in the file are relative to the file's folder


_FIELDS: Final[Mapping[str, Mapping[str, _Field]]] = {
    "server": {
        "host": _Field("GITTRIGGER_HOST", _text),
        "port": _Field("GITTRIGGER_PORT", _int_range(1, 65535)),
        "max_body_bytes": _Field("GITTRIGGER_MAX_BODY_BYTES", _int_range(1024, 1 << 30)),
    },
    "engine": {
        "namespace": _Field("GITTRIGGER_NAMESPACE", _text),
    },
    "executor": {
        "kind": _Field("GITTRIGGER_EXECUTOR", _choice("local", "kubernetes")),
        "isolation": _Field("GITTRIGGER_ISOLATION", _choice("auto", "bwrap", "none")),
        "network": _Field("GITTRIGGER_NETWORK", _choice("host", "none")),
        "grace_period_seconds": _Field("GITTRIGGER_GRACE_PERIOD_SECONDS", _seconds),
        "extra_path": _Field("GITTRIGGER_EXTRA_PATH", _strings),
    },
    "store": {
        "data_dir": _Field("GITTRIGGER_DATA_DIR", _path, relative_to_file=True),
        "synchronous": _Field("GITTRIGGER_SYNCHRONOUS", _choice(*SYNCHRONOUS_LEVELS, upper=True)),
    },
    "sources": {
        "manifest_paths": _Field("GITTRIGGER_MANIFEST_PATHS", _paths, relative_to_file=True),
        "secrets_dir": _Field("GITTRIGGER_SECRETS_DIR", _path, relative_to_file=True),
        "secrets_from": _Field("GITTRIGGER_SECRETS_FROM", _choice("auto", "files", "kubernetes")),
        "max_manifest_bytes": _Field("GITTRIGGER_MAX_MANIFEST_BYTES", _int_range(1024, 1 << 30)),
    },
    "auth": {
        "tokens_file": _Field("GITTRIGGER_TOKENS_FILE", _path, relative_to_file=True),
        "admin_token": _Field("GITTRIGGER_ADMIN_TOKEN", _secret),
    },
    "kubernetes": {
        "kubeconfig": _Field("GITTRIGGER_KUBECONFIG", _path, relative_to_file=True),
        "context": _Field("GITTRIGGER_KUBE_CONTEXT", _text),
        "namespace": _Field("GITTRIGGER_KUBE_NAMESPACE", _text),
        "service_account": _Field("GITTRIGGER_KUBE_SERVICE_ACCOUNT", _text),
        "image_pull_secrets": _Field("GITTRIGGER_KUBE_IMAGE_PULL_SECRETS", _strings),
        "helper_image": _Field("GITTRIGGER_HELPER_IMAGE", _text),
        "pod_gc": _Field("GITTRIGGER_POD_GC", _pod_gc),
        "pod_gc_delete_delay_seconds": _Field("GITTRIGGER_POD_GC_DELETE_DELAY_SECONDS", _seconds),
        "qps": _Field("GITTRIGGER_KUBE_QPS", _positive),
        "burst": _Field("GITTRIGGER_KUBE_BURST", _int_range(1, 10000)),
        "server_url": _Field("GITTRIGGER_SERVER_URL", _text),
        "images": _Field("GITTRIGGER_KUBE_IMAGES", _images),
        "default_requests": _Field("GITTRIGGER_KUBE_DEFAULT_REQUESTS", _resource_list),
        "default_limits": _Field("GITTRIGGER_KUBE_DEFAULT_LIMITS", _resource_list),
    },
    "log": {
        "level": _Field("GITTRIGGER_LOG_LEVEL", _choice(*LOG_LEVELS)),
        "json": _Field("GITTRIGGER_LOG_JSON", _optional_bool),
    },
}


def load_settings(
    *,
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from defaults < ``file`` (YAML) < ``env`` (``GITTRIGGER_*``) < ``overrides``.

    ``overrides`` maps dotted names (``"server.port"``) to values, e.g. from command-line flags;
    ``None`` values are skipped so callers can pass unset flags through. Raises InvalidSpec.
    """
    values: dict[str, dict[str, Any]] = {section: {} for section in _FIELDS}
    explicit_secrets = False
    if file is not None:
        for (section, name), value in _read_file(file).items():
            spec = _FIELDS[section][name]
            converted = _convert(spec, value, where=f"{file}: {section}.{name}")
            values[section][name] = _anchor(converted, file.parent) if spec.relative_to_file else converted
            explicit_secrets |= (section, name) == ("sources", "secrets_dir")
    for section, specs in _FIELDS.items():
        for name, spec in specs.items():
            if spec.env in (env or {}):
                values[section][name] = _convert(spec, (env or {})[spec.env], where=spec.env)
                explicit_secrets |= (section, name) == ("sources", "secrets_dir")
    for dotted, value in (overrides or {}).items():
        section, _, name = dotted.partition(".")
        if name not in _FIELDS.get(section, {}):
            raise InvalidSpec(dotted, "unknown setting")
        if value is not None:
            values[section][name] = _convert(_FIELDS[section][name], value, where=dotted)
            explicit_secrets |= dotted == "sources.secrets_dir"
    settings = Settings(
        server=ServerSettings(**values["server"]),
        engine=EngineSettings(**values["engine"]),
        executor=ExecutorSettings(**values["executor"]),
        store=StoreSettings(**values["store"]),
        sources=SourceSettings(**values["sources"]),
        log=LogSettings(**values["log"]),
        auth=AuthSettings(**values["auth"]),
        kubernetes=KubernetesSettings(**values["kubernetes"]),
    )
    if not explicit_secrets:  # follows the data dir unless named
        settings = replace(settings, sources=replace(settings.sources,
                                                     secrets_dir=settings.store.data_dir / "secrets"))
    return settings


def _convert(spec: _Field, value: Any, *, where: str) -> Any:
    try:
        return spec.convert(value)
    except ValueError as e:
        raise InvalidSpec(where, str(e)) from None


def _anchor(value: Any, base: Path) -> Any:
    if isinstance(value, Path):
        return value if value.is_absolute() else base / value
    if isinstance(value, tuple):
        return tuple(_anchor(v, base) for v in value)
    return value


def _read_file(file: Path) -> dict[tuple[str, str], Any]:
    """(section, name) -> raw value for every key of the YAML file; unknown keys are errors."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidSpec(str(file), f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise InvalidSpec(str(file), f"not UTF-8 text: {e}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise InvalidSpec(str(file), f"{where}{e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise InvalidSpec(str(file), str(e)) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidSpec(str(file), f"must be a mapping of sections, got {type(raw).__name__}")
    out: dict[tuple[str, str], Any] = {}
    for section, body in raw.items():
        if section not in _FIELDS:
            raise InvalidSpec(f"{file}: {section}", f"unknown section (known: {', '.join(_FIELDS)})")
        if body is None:
            continue
        if not isinstance(body, dict):
            raise InvalidSpec(f"{file}: {section}", f"must be a mapping, got {type(body).__name__}")
        for name, value in body.items():
            if name not in _FIELDS[section]:
                known = ", ".join(_FIELDS[section])
                raise InvalidSpec(f"{file}: {section}.{name}", f"unknown setting (known: {known})")
            out[(section, str(name))] = value
    return out


def setting_names() -> list[str]:
    """Every dotted setting name with its environment variable, for help texts."""
    return [f"{section}.{name} ({spec.env})" for section, specs in _FIELDS.items() for name, spec in specs.items()]

