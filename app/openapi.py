"""``GET /api/v4/openapi.json``: the OpenAPI 3.1 document of errgate's HTTP surface (kept in app/openapi.yaml).

The document is read from the package once, on the first request, and served as JSON with
``servers`` set to ``ERRGATE_EXTERNAL_URL``, the address clients reach errgate at.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any

import orjson
import yaml
from aiohttp import web

from app import state

PATH = "/api/v4/openapi.json"
SOURCE = "openapi.yaml"


@functools.cache
def document() -> dict[str, Any]:
    """The document as written in app/openapi.yaml (YAML anchors expanded; ``$ref`` kept)."""
    text = resources.files("app").joinpath(SOURCE).read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@functools.cache
def served(external_url: str) -> bytes:
    """The JSON answer: the document with ``servers`` naming ``external_url``."""
    body = copy.copy(document())
    body["servers"] = [{"url": external_url.rstrip("/"), "description": "ERRGATE_EXTERNAL_URL"}]
    return orjson.dumps(body)


async def openapi_json(request: web.Request) -> web.Response:
    body = served(request.app[state.SETTINGS].external_url)
    return web.Response(body=body, content_type="application/json")


def setup_routes(app: web.Application) -> None:
    app.router.add_get(PATH, openapi_json)
