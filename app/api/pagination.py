"""GitLab's offset pagination: ``page``/``per_page`` in, ``X-Total``, ``X-Next-Page``… and ``Link`` out.

As GitLab builds them from its configured host, the ``Link`` addresses start with
``ERRGATE_EXTERNAL_URL``, never with the request's ``Host`` header (which the client chooses),
and they do not repeat a token sent in the query.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from app import state
from app.api.params import Params
from app.auth import QUERY_TOKEN_PARAMS
from app.problems import json_response

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
MAX_PAGE = 10**9  # beyond this the SQL offset would overflow; such pages are refused
_NOT_CARRIED = frozenset({"page", "per_page", *QUERY_TOKEN_PARAMS})  # query parameters links do not copy


@dataclass(frozen=True, slots=True)
class Page:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def page_from(params: Params) -> Page:
    """Read ``page`` and ``per_page``; out-of-range values are clamped as GitLab does."""
    number = params.integer("page")
    size = params.integer("per_page")
    if number is not None and number > MAX_PAGE:
        params.errors.append("page is invalid")
    params.done()
    number = number if number and number > 0 else 1
    size = DEFAULT_PER_PAGE if not size or size < 1 else min(size, MAX_PER_PAGE)
    return Page(number, size)


def paginated(request: web.Request, page: Page, total: int, items: list[Any]) -> web.Response:
    total_pages = max(1, math.ceil(total / page.size))
    next_page = page.number + 1 if page.number < total_pages else None
    # As GitLab (Kaminari): no previous page past the last one.
    prev_page = page.number - 1 if 1 < page.number <= total_pages else None
    headers = {
        "X-Total": str(total),
        "X-Total-Pages": str(total_pages),
        "X-Per-Page": str(page.size),
        "X-Page": str(page.number),
        "X-Next-Page": str(next_page or ""),
        "X-Prev-Page": str(prev_page or ""),
    }
    base = _external_address(request)
    kept = [(name, value) for name, value in request.query.items() if name not in _NOT_CARRIED]
    links = []
    for rel, number in (("prev", prev_page), ("next", next_page), ("first", 1), ("last", total_pages)):
        if number is not None:
            query = urlencode([*kept, ("page", str(number)), ("per_page", str(page.size))])
            links.append(f'<{base}?{query}>; rel="{rel}"')
    headers["Link"] = ", ".join(links)
    return json_response(items, headers=headers)


def _external_address(request: web.Request) -> str:
    """The request's path (still percent-encoded) under ``ERRGATE_EXTERNAL_URL``, path prefix included."""
    external = urlsplit(request.app[state.SETTINGS].external_url)
    return f"{external.scheme}://{external.netloc}{external.path.rstrip('/')}{request.rel_url.raw_path}"
