"""
Typed keys of the aiohttp application's state (``app[keys.ENGINE]``); no globals anywhere.

Set by :func:`gittrigger.http.app.make_app`, read by the handlers in :mod:`gittrigger.http`.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gittrigger.settings import Settings
from workflows.engine import Engine
from workflows.resolution import DictTemplateGetter
from workflows.store.base import Store

SETTINGS: Final = web.AppKey("settings", Settings)
ENGINE: Final = web.AppKey("engine", Engine)
STORE: Final = web.AppKey("store", Store)
TEMPLATES: Final = web.AppKey("templates", DictTemplateGetter)  # what templateRefs resolve against
