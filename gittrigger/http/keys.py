"""
Typed keys of the aiohttp application's state (``app[keys.ENGINE]``); no globals anywhere.

Set by :func:`gittrigger.http.app.make_app`, read by the handlers in :mod:`gittrigger.http`.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gittrigger.artifacttokens import ArtifactTokens
from gittrigger.settings import Settings
from workflows.engine import Engine
from workflows.executors.artifacts import LocalArtifactStore
from workflows.resolution import DictTemplateGetter
from workflows.store.base import Store

SETTINGS: Final = web.AppKey("settings", Settings)
ENGINE: Final = web.AppKey("engine", Engine)
STORE: Final = web.AppKey("store", Store)
TEMPLATES: Final = web.AppKey("templates", DictTemplateGetter)  # what templateRefs resolve against
ARTIFACTS: Final = web.AppKey("artifacts", LocalArtifactStore)  # what pods upload to and download from
ARTIFACT_TOKENS: Final = web.AppKey("artifact tokens", ArtifactTokens)  # per-workflow tokens of those pods
