"""GitLab's offset pagination, pure: ``page``/``per_page`` in, ``X-Total``, ``X-Next-Page``… and ``Link`` out.

As GitLab builds them from its configured host, the ``Link`` addresses start with the external
URL (``ERRGATE_EXTERNAL_URL``), never with the request's ``Host`` header (which the client
chooses). :func:`app.api.responses.paginated` puts these headers on an answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

if TYPE_CHECKING:
    from app.api.params import Params

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
MAX_PAGE = 10**9  # beyond this the SQL offset would overflow; such pages are refused


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


def page_headers(
    page: Page, total: int | None, *, external_url: str, raw_path: str, query: Iterable[tuple[str, str]],
    has_next: bool = False,
) -> dict[str, str]:
    """GitLab's pagination headers for ``page`` of ``total`` items; ``Link`` addresses are
    ``raw_path`` (still percent-encoded) under ``external_url`` with the ``query`` pairs kept.

    ``total`` None: too many to count (GitLab stops at 10,000). As GitLab then, ``X-Total``,
    ``X-Total-Pages`` and the ``last`` link are left out, and ``has_next`` says whether a next page exists."""
    if total is None:
        total_pages = None
        next_page = page.number + 1 if has_next else None
        prev_page = page.number - 1 if page.number > 1 else None
    else:
        total_pages = max(1, math.ceil(total / page.size))
        next_page = page.number + 1 if page.number < total_pages else None
        # As GitLab (Kaminari): no previous page past the last one.
        prev_page = page.number - 1 if 1 < page.number <= total_pages else None
    external = urlsplit(external_url)
    base = f"{external.scheme}://{external.netloc}{external.path.rstrip('/')}{raw_path}"
    kept = [(name, value) for name, value in query if name not in ("page", "per_page")]
    links = []
    for rel, number in (("prev", prev_page), ("next", next_page), ("first", 1), ("last", total_pages)):
        if number is not None:
            link_query = urlencode([*kept, ("page", str(number)), ("per_page", str(page.size))])
            links.append(f'<{base}?{link_query}>; rel="{rel}"')
    counted = {} if total is None else {"X-Total": str(total), "X-Total-Pages": str(total_pages)}
    return {
        **counted,
        "X-Per-Page": str(page.size),
        "X-Page": str(page.number),
        "X-Next-Page": str(next_page or ""),
        "X-Prev-Page": str(prev_page or ""),
        "Link": ", ".join(links),
    }
