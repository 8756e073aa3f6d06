"""
The import-layer contract of the three packages (ARCHITECTURE: layers, owners, pure modules).

A lower layer never imports a higher one; third-party clients are imported only by the module
that owns them; the pure core imports no I/O, clock or logging. Dependency-free AST walk (kopf
keeps the same contract with import-linter).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("workflows", "sensors", "gittrigger")

# Modules that must stay pure: no I/O, no clock, no logging (the scheduling core, the model,
# the spec logic, the pure sensor half, the per-host webhook parsers).
PURE = (
    "workflows/errors.py",
    "workflows/model/",
    "workflows/templating.py",
    "workflows/expressions/",
    "workflows/resolution.py",
    "workflows/validation.py",
    "workflows/scheduling/",
    "workflows/eventbindings.py",
    "workflows/configmaps.py",
    "workflows/rerun.py",
    "workflows/executors/kube/status.py",
    "workflows/executors/kube/gc.py",
    "sensors/events.py",
    "sensors/model.py",
    "sensors/filterspec.py",
    "sensors/policies.py",
    "sensors/paths.py",
    "sensors/filters.py",
    "sensors/conditions.py",
    "sensors/params.py",
    "sensors/matching.py",
    "sensors/gitfilters.py",
    "sensors/gotemplate.py",
    "gittrigger/sources/headers.py",
    "gittrigger/sources/errors.py",
    "gittrigger/sources/signatures.py",
    "gittrigger/sources/envelope.py",
    "gittrigger/sources/pushes.py",
    "gittrigger/sources/github.py",
    "gittrigger/sources/gitlab.py",
    "gittrigger/sources/gitea.py",
    "gittrigger/sources/bitbucket.py",
    "gittrigger/sources/generic.py",
    "gittrigger/sources/model.py",
)
BANNED_IN_PURE = {"asyncio", "logging", "structlog", "time", "aiohttp", "kubernetes_asyncio", "pygit2", "yaml",
                  "subprocess", "socket", "sqlite3"}
OWNERS = {
    "aiohttp": ("gittrigger/http/", "gittrigger/runtime.py", "gittrigger/triggers.py", "gittrigger/client",
                "gittrigger/reporting"),
    "kubernetes_asyncio": ("workflows/executors/kubernetes.py", "workflows/executors/kube/",
                           "workflows/store/kubernetes.py"),
    "pygit2": ("gittrigger/repos.py",),
    "yaml": ("workflows/loading.py", "sensors/loading.py", "gittrigger/settings.py", "gittrigger/cli",
             "gittrigger/manifests.py"),
}
UPWARD = {"workflows": {"sensors", "gittrigger"}, "sensors": {"gittrigger"}}

PY_FILES = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def imported_roots(path: Path) -> Iterator[str]:
    """Top-level names of every absolute import in a module."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("path", PY_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_imports_respect_layers(path: Path) -> None:
    """No upward imports, pure modules stay pure, third-party clients only where owned."""
    rel = path.relative_to(ROOT).as_posix()
    mods = set(imported_roots(path))
    upward = mods & UPWARD.get(rel.split("/")[0], set())
    assert not upward, f"{rel} imports upward: {sorted(upward)}"
    if any(rel.startswith(p) for p in PURE):
        impure = mods & BANNED_IN_PURE
        assert not impure, f"{rel} is pure but imports {sorted(impure)}"
    for lib, owners in OWNERS.items():
        assert lib not in mods or any(rel.startswith(o) for o in owners), f"{rel} may not import {lib}"


def test_the_contract_sees_every_package() -> None:
    """A test that walks no files proves nothing."""
    assert len(PY_FILES) > 50
    assert all((ROOT / p).exists() for p in PURE), [p for p in PURE if not (ROOT / p).exists()]
