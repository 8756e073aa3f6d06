"""The OpenAPI document of ``/api/``: exactly the served routes, a valid OpenAPI 3.0 document, served."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import jsonschema_rs
import pytest
from aiohttp import web
from schemathesis.specs.openapi.definitions import OPENAPI_30

from gittrigger.assembly import Parts, assemble
from gittrigger.eventsources import EventSourceRegistry
from gittrigger.http import openapi, webhooks
from gittrigger.http.app import make_app
from gittrigger.settings import load_settings
from sensors.eventlog import EventLog

TOKENS = "- {name: viewer, token: view-secret-0123456789, role: read}\n"


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    settings = load_settings(env={"GITTRIGGER_DATA_DIR": str(tmp_path)})
    async with assemble(settings, memory=True) as built:
        yield built


def served_app(parts: Parts, tmp_path: Path, *, tokens: bool = False) -> web.Application:
    """The application as ``serve`` builds it: make_app, then the webhook edge (audit API + catch-all)."""
    env = {"GITTRIGGER_DATA_DIR": str(tmp_path)}
    if tokens:
        (tmp_path / "tokens.yaml").write_text(TOKENS)
        env["GITTRIGGER_TOKENS_FILE"] = str(tmp_path / "tokens.yaml")
    app = make_app(load_settings(env=env), engine=parts.engine, store=parts.store)
    # The event log is only stored on the app here: walking routes never calls it.
    webhooks.setup(app, registry=EventSourceRegistry(), log=cast(EventLog, object()), notify=lambda: None)
    return app


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route under /api/; aiohttp's automatic HEAD of a GET left out."""
    found = set()
    for route in app.router.routes():
        resource = route.resource
        path = resource.canonical if resource is not None else ""
        if path.startswith(("/api/", *openapi.OUTSIDE_API)) and route.method != "HEAD":
            found.add((route.method, path))
    return found


def documented_routes() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in openapi.document()["paths"].items() for method in item}


async def test_document_covers_exactly_the_served_api_routes(parts: Parts, tmp_path: Path) -> None:
    """A route under /api/ missing from the table, or a documented route nobody serves, fails here."""
    served = served_routes(served_app(parts, tmp_path))
    documented = documented_routes()
    assert not served - documented, f"served but not documented: {sorted(served - documented)}"
    assert not documented - served, f"documented but not served: {sorted(documented - served)}"


def test_document_is_valid_openapi_3_0() -> None:
    """The document validates against the OpenAPI 3.0 meta-schema."""
    jsonschema_rs.Draft4Validator(OPENAPI_30).validate(openapi.document())


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_reference_resolves() -> None:
    document = openapi.document()
    schemas = document["components"]["schemas"]
    missing = {r for r in _refs(document) if r.removeprefix("#/components/schemas/") not in schemas}
    assert not missing


def test_operation_ids_are_unique_and_path_parameters_match() -> None:
    ids = [op.operation_id for op in openapi.OPERATIONS]
    assert len(ids) == len(set(ids))
    for path, item in openapi.document()["paths"].items():
        for operation in item.values():
            in_path = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert in_path == set(re.findall(r"{(\w+)}", path)), path


@pytest.mark.parametrize("status", ["401", "403"], ids=["unauthenticated", "forbidden"])
def test_every_operation_documents_the_token_errors_in_argo_shape(status: str) -> None:
    """Every /api/ route is token-protected, so each documents 401 and 403 as Argo's {code, message}."""
    for path, item in openapi.document()["paths"].items():
        for method, operation in item.items():
            answer = operation["responses"].get(status)
            assert answer is not None, (method, path)
            assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_bodies_are_documented_where_routes_read_them() -> None:
    """POST/PUT operations that read JSON document a body and 413; reads document none."""
    for op in openapi.OPERATIONS:
        if op.method == "GET":
            assert op.body is None, op.path
        if op.body is not None:
            assert 413 in op.errors, op.path


async def test_served_document_needs_a_token_and_is_the_table(aiohttp_client: Any, parts: Parts,
                                                              tmp_path: Path) -> None:
    client = await aiohttp_client(served_app(parts, tmp_path, tokens=True))
    assert (await client.get(openapi.PATH)).status == 401
    resp = await client.get(openapi.PATH, headers={"Authorization": "Bearer view-secret-0123456789"})
    assert resp.status == 200
    body = await resp.json()
    assert body == openapi.document()
    assert body["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
