"""Settings: defaults, file < environment < overrides, and one clear error per bad value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gittrigger.settings import Settings, load_settings
from workflows.errors import InvalidSpec


def test_defaults() -> None:
    """With nothing given, the documented defaults; secrets live in the data dir."""
    settings = load_settings(file=None, env={}, overrides={})
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 2746
    assert settings.executor.isolation == "auto"
    assert settings.executor.grace_period_seconds == 10
    assert settings.store.data_dir == Path(".gittrigger")
    assert settings.sources.secrets_dir == Path(".gittrigger/secrets")
    assert settings.log.json is None
    assert settings == Settings(sources=settings.sources)


def test_precedence_file_then_env_then_overrides(tmp_path: Path) -> None:
    """Later sources win, field by field; paths in the file are relative to the file."""
    config = tmp_path / "conf" / "gittrigger.yaml"
    config.parent.mkdir()
    config.write_text(
        "server: {host: 127.0.0.2, port: 8000}\n"
        "store: {data_dir: state}\n"
        "executor: {isolation: none, extra_path: [/opt/bin], grace_period_seconds: 2.5}\n"
        "log: {level: debug, json: true}\n"
    )
    env = {"GITTRIGGER_PORT": "9000", "GITTRIGGER_LOG_LEVEL": "WARNING", "GITTRIGGER_OTHER_THING": "x"}
    settings = load_settings(file=config, env=env, overrides={"server.port": 9100, "store.synchronous": None})
    assert settings.server.host == "127.0.0.2"
    assert settings.server.port == 9100
    assert settings.log.level == "warning"
    assert settings.log.json is True
    assert settings.store.data_dir == config.parent / "state"
    assert settings.sources.secrets_dir == config.parent / "state" / "secrets"
    assert settings.executor.isolation == "none"
    assert settings.executor.extra_path == ("/opt/bin",)
    assert settings.executor.grace_period_seconds == 2.5


@pytest.mark.parametrize(("env", "field", "expected"), [
    ({"GITTRIGGER_LOG_JSON": "false"}, ("log", "json"), False),
    ({"GITTRIGGER_LOG_JSON": "auto"}, ("log", "json"), None),
    ({"GITTRIGGER_LOG_JSON": "1"}, ("log", "json"), True),
    ({"GITTRIGGER_EXTRA_PATH": "/a:/b"}, ("executor", "extra_path"), ("/a", "/b")),
    ({"GITTRIGGER_DATA_DIR": "/srv/gt"}, ("sources", "secrets_dir"), Path("/srv/gt/secrets")),
    ({"GITTRIGGER_DATA_DIR": "/srv/gt", "GITTRIGGER_SECRETS_DIR": "/run/s"}, ("sources", "secrets_dir"),
     Path("/run/s")),
    ({"GITTRIGGER_SYNCHRONOUS": "full"}, ("store", "synchronous"), "FULL"),
    ({"GITTRIGGER_HOST": " 0.0.0.0 "}, ("server", "host"), "0.0.0.0"),
], ids=["json-false", "json-auto", "json-1", "extra-path-split", "secrets-follow-data-dir",
        "secrets-explicit", "synchronous-upper", "host-stripped"])
def test_environment_values(env: dict[str, str], field: tuple[str, str], expected: Any) -> None:
    """Environment strings are converted to the field's type."""
    settings = load_settings(file=None, env=env, overrides={})
    assert getattr(getattr(settings, field[0]), field[1]) == expected


@pytest.mark.parametrize(("env", "overrides", "message"), [
    ({"GITTRIGGER_PORT": "abc"}, {}, "GITTRIGGER_PORT: must be an integer 1-65535, got 'abc'"),
    ({"GITTRIGGER_PORT": "70000"}, {}, "GITTRIGGER_PORT: must be an integer 1-65535"),
    ({}, {"server.port": "0"}, "server.port: must be an integer 1-65535, got '0'"),
    ({"GITTRIGGER_ISOLATION": "docker"}, {}, "GITTRIGGER_ISOLATION: must be one of auto, bwrap, none"),
    ({"GITTRIGGER_LOG_LEVEL": "loud"}, {}, "GITTRIGGER_LOG_LEVEL: must be one of debug"),
    ({"GITTRIGGER_LOG_JSON": "maybe"}, {}, "GITTRIGGER_LOG_JSON: must be true, false or auto"),
    ({"GITTRIGGER_GRACE_PERIOD_SECONDS": "-1"}, {}, "GITTRIGGER_GRACE_PERIOD_SECONDS: must be a number"),
    ({"GITTRIGGER_HOST": ""}, {}, "GITTRIGGER_HOST: must be a non-empty string"),
    ({}, {"server.nope": 1}, "server.nope: unknown setting"),
], ids=["port-text", "port-range", "override-port-zero", "isolation", "log-level", "log-json", "grace-negative",
        "host-empty", "unknown-override"])
def test_bad_values_name_the_setting(env: dict[str, str], overrides: dict[str, Any], message: str) -> None:
    """Each bad value is one InvalidSpec whose text starts with where it came from."""
    with pytest.raises(InvalidSpec) as caught:
        load_settings(file=None, env=env, overrides=overrides)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("text", "message"), [
    ("server:\n  prot: 8080\n", "server.prot: unknown setting"),
    ("sever:\n  port: 8080\n", "sever: unknown section"),
    ("server:\n  port: abc\n", "server.port: must be an integer 1-65535, got 'abc'"),
    ("server:\n  port: true\n", "server.port: must be an integer 1-65535, got True"),
    ("server: [1, 2]\n", "server: must be a mapping"),
    ("- 1\n", "must be a mapping of sections"),
    ("server: {port: [\n", "line 2"),
], ids=["typo-key", "typo-section", "port-text", "port-bool", "section-list", "top-list", "bad-yaml"])
def test_bad_files_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    """Unknown keys and bad values in the file are errors naming the file and the key."""
    config = tmp_path / "settings.yaml"
    config.write_text(text)
    with pytest.raises(InvalidSpec) as caught:
        load_settings(file=config, env={}, overrides={})
    assert str(caught.value).startswith(str(config))
    assert message in str(caught.value)


def test_missing_file_is_one_error(tmp_path: Path) -> None:
    """A settings file that does not exist is an InvalidSpec naming it."""
    with pytest.raises(InvalidSpec, match="cannot read"):
        load_settings(file=tmp_path / "absent.yaml", env={}, overrides={})


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    """An empty file (or empty sections) changes nothing."""
    config = tmp_path / "settings.yaml"
    config.write_text("server:\n")
    assert load_settings(file=config, env={}, overrides={}) == load_settings(file=None, env={}, overrides={})


def test_a_bad_admin_token_is_refused_without_showing_it(tmp_path: Path) -> None:
    file = tmp_path / "settings.yaml"
    file.write_text("auth:\n  admin_token: 987654321\n")
    with pytest.raises(InvalidSpec) as caught:
        load_settings(file=file, env={})
    assert "auth.admin_token" in str(caught.value) and "987654321" not in str(caught.value)


@pytest.mark.parametrize(("value", "expected"), [
    ("cpu=100m,memory=128Mi", (("cpu", "100m"), ("memory", "128Mi"))),
    ("", ()),
])
def test_kubernetes_default_requests(value: str, expected: tuple[tuple[str, str], ...]) -> None:
    settings = load_settings(env={"GITTRIGGER_KUBE_DEFAULT_REQUESTS": value} if value else {})
    assert settings.kubernetes.default_requests == expected


def test_bad_default_resources_name_the_variable() -> None:
    with pytest.raises(InvalidSpec, match="GITTRIGGER_KUBE_DEFAULT_LIMITS"):
        load_settings(env={"GITTRIGGER_KUBE_DEFAULT_LIMITS": "cpu"})


def test_kubernetes_images_from_the_file_and_the_environment(tmp_path: Path) -> None:
    """Argo's `images` config: the command of images a workflow runs without one."""
    file = tmp_path / "settings.yaml"
    file.write_text("kubernetes:\n  images:\n    argoproj/argosay:v2: {entrypoint: [/argosay]}\n")
    assert load_settings(file=file, env={}).kubernetes.images == (("argoproj/argosay:v2", ("/argosay",), ()),)
    env = {"GITTRIGGER_KUBE_IMAGES": '{"nginx:1.13": {"cmd": ["nginx", "-g", "daemon off;"]}}'}
    assert load_settings(env=env).kubernetes.images == (("nginx:1.13", (), ("nginx", "-g", "daemon off;")),)
    with pytest.raises(InvalidSpec, match="GITTRIGGER_KUBE_IMAGES"):
        load_settings(env={"GITTRIGGER_KUBE_IMAGES": '{"x": {"command": ["a"]}}'})
