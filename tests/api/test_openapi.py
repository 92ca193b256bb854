"""The OpenAPI document against the application's router, and as it is served and shipped.

The router walk compares (method, path) pairs both ways, so a route added without its
documentation, or documentation left behind by a removed route, fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from aiohttp import web
from openapi_spec_validator import validate

from app import openapi
from app.server import create_app
from app.web import paths
from tests.conftest import test_settings as settings_for

ROOT = Path(__file__).resolve().parents[2]
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# aiohttp's ``{name:regex}`` placeholder; OpenAPI writes ``{name}`` and types the value in the parameter.
_PLACEHOLDER = re.compile(r"\{(\w+)(?::[^{}]*(?:\{[^{}]*\}[^{}]*)*)?\}")


def openapi_path(aiohttp_path: str) -> str:
    return _PLACEHOLDER.sub(r"{\1}", aiohttp_path)


def routed_operations(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every route but the web page's HTML ones (app.web.paths: pages for
    a browser, not an API). aiohttp adds HEAD to each GET route, and HTTP defines HEAD as GET
    without the body: the document lists the GET only (it says so in its description)."""
    operations = set()
    for route in app.router.routes():
        if route.resource.canonical in paths.PAGE_ROUTES:
            continue
        info = route.resource.get_info()
        path = openapi_path(info.get("formatter") or info["path"])
        operations.add((route.method, path))
    implied_heads = {("HEAD", path) for method, path in operations if method == "GET"}
    return operations - implied_heads


def documented_operations(document: dict) -> set[tuple[str, str]]:
    operations = set()
    for path, item in document["paths"].items():
        item = resolve(document, item)
        operations.update((method.upper(), path) for method in item if method in HTTP_METHODS)
    return operations


def resolve(document: dict, node: dict) -> dict:
    """``node``, or what its local ``$ref`` (``#/components/...``) points at."""
    while "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_placeholders_become_openapi_parameters() -> None:
    assert openapi_path(r"/api/{project_id:\d+}/store/") == "/api/{project_id}/store/"
    assert openapi_path(r"/x/{a:[0-9]{1,3}}/{b}") == "/x/{a}/{b}"


def test_every_route_is_documented_and_every_documented_route_exists(database_url: str) -> None:
    routed = routed_operations(create_app(settings_for(database_url)))
    documented = documented_operations(openapi.document())
    assert routed - documented == set(), "routes missing from app/openapi.yaml"
    assert documented - routed == set(), "app/openapi.yaml names routes that do not exist"


def test_head_routes_are_only_those_of_get_routes(database_url: str) -> None:
    """The walk leaves HEAD out; that is sound only while HEAD comes with GET and alone never."""
    app = create_app(settings_for(database_url))
    heads = {r.resource.canonical for r in app.router.routes() if r.method == "HEAD"}
    gets = {r.resource.canonical for r in app.router.routes() if r.method == "GET"}
    assert heads == gets


def test_the_walk_sees_a_route_the_document_lacks(database_url: str) -> None:
    app = create_app(settings_for(database_url))

    async def undocumented(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_post(r"/api/v4/undocumented/{thing_id:\d+}", undocumented)
    missing = routed_operations(app) - documented_operations(openapi.document())
    assert missing == {("POST", "/api/v4/undocumented/{thing_id}")}


def test_the_walk_sees_a_documented_route_that_does_not_exist(database_url: str) -> None:
    document = openapi.document()
    stale = {**document, "paths": {**document["paths"], "/api/v4/gone/{gone_id}": {"delete": {"responses": {}}}}}
    extra = documented_operations(stale) - routed_operations(create_app(settings_for(database_url)))
    assert extra == {("DELETE", "/api/v4/gone/{gone_id}")}


def test_every_reference_resolves() -> None:
    document = openapi.document()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                resolve(document, node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(openapi.document())


def test_no_value_is_lost_to_yaml() -> None:
    """A comma in an unquoted flow-mapping value (``{description: a, b}``) makes a key ``b`` with
    no value, which OpenAPI's schema cannot see (schemas allow any keyword): none is null here."""

    def nulls(node: object, where: str) -> list[str]:
        if isinstance(node, dict):
            return [f"{where}/{key}" for key, value in node.items() if value is None] + [
                found for key, value in node.items() for found in nulls(value, f"{where}/{key}")
            ]
        if isinstance(node, list):
            return [found for index, value in enumerate(node) for found in nulls(value, f"{where}/{index}")]
        return []

    assert nulls(openapi.document(), "#") == []


def test_operation_ids_are_unique() -> None:
    document = openapi.document()
    ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for method, operation in resolve(document, item).items()
        if method in HTTP_METHODS and "operationId" in operation
    ]
    assert len(ids) == len(set(ids))


async def test_served_with_the_external_url_and_without_a_token(api) -> None:
    reply = await api.get("/openapi.json")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.body["openapi"] == "3.1.0"
    assert reply.body["servers"] == [{"url": "http://errgate.test:8080", "description": "ERRGATE_EXTERNAL_URL"}]
    assert reply.body["paths"] == openapi.document()["paths"]


def test_the_document_ships_with_the_package() -> None:
    """A non-editable install (the container image) has app/openapi.yaml only if package data names it."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = pyproject["tool"]["setuptools"]["package-data"]["app"]
    assert openapi.SOURCE in shipped
    assert (ROOT / "app" / openapi.SOURCE).is_file()
