"""A page of items as the REST API answers it: the JSON list with GitLab's pagination headers."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app import state
from app.api.pagination import Page, page_headers
from app.auth import QUERY_TOKEN_PARAMS
from app.problems import json_response


def paginated(
    request: web.Request, page: Page, total: int | None, items: list[Any], has_next: bool = False
) -> web.Response:
    """``items`` with the headers of ``page``; the links do not repeat a token sent in the query.
    ``total`` None: not counted, ``has_next`` says whether another page follows."""
    headers = page_headers(
        page, total, has_next=has_next,
        external_url=request.app[state.SETTINGS].external_url,
        raw_path=request.rel_url.raw_path,
        query=[(name, value) for name, value in request.query.items() if name not in QUERY_TOKEN_PARAMS],
    )
    return json_response(items, headers=headers)
