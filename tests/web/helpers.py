"""A cookie-keeping HTTP client for the web page's tests: pages as text, forms posted with their CSRF token."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

CSRF_RE = re.compile(r'name="_csrf" value="([^"]*)"')


@dataclass
class Page:
    status: int
    text: str
    headers: CIMultiDictProxy[str]
    url: str

    @property
    def csrf(self) -> str:
        match = CSRF_RE.search(self.text)
        assert match, f"no CSRF field on the page:\n{self.text[:2000]}"
        return html.unescape(match.group(1))


class WebClient:
    """``await client.get("/")`` → :class:`Page`; redirects are followed unless asked not to."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def request(self, method: str, path: str, *, data: Any = None, follow: bool = True, **kwargs: Any) -> Page:
        url = path if path.startswith("http") else self.base + path
        async with self.session.request(method, url, data=data, allow_redirects=follow, **kwargs) as response:
            return Page(response.status, await response.text(), response.headers, str(response.url))

    async def get(self, path: str, **kwargs: Any) -> Page:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, data: dict[str, Any] | list[tuple[str, Any]], **kwargs: Any) -> Page:
        return await self.request("POST", path, data=data, **kwargs)

    async def submit(self, page_path: str, action: str, fields: dict[str, Any] | list[tuple[str, Any]], **kwargs: Any) -> Page:
        """Open ``page_path``, then post ``fields`` to ``action`` with that page's CSRF token."""
        page = await self.get(page_path)
        pairs = list(fields.items()) if isinstance(fields, dict) else list(fields)
        return await self.post(action, [("_csrf", page.csrf), *pairs], **kwargs)

    async def sign_in(self, token: str, next_path: str = "") -> Page:
        page = await self.get("/")
        return await self.post("/", {"_csrf": page.csrf, "token": token, "next": next_path})

    def cookie(self, name: str) -> Any:
        for cookie in self.session.cookie_jar:
            if cookie.key == name:
                return cookie
        return None


async def tracked_project(pool: Any, world: Any, path: str, owner: Any) -> tuple[Any, str]:
    """A project with integrated error tracking on (the settings page's SQL); returns (project, public key)."""
    from app.db import error_tracking

    project = await world.project(path, owner)
    async with pool.acquire() as conn:
        await error_tracking.save_settings(conn, project["id"], True, True, create=True)
    key = await pool.fetchval("select public_key from error_tracking_client_keys where project_id = $1", project["id"])
    return project, key


async def send_events(base_url: str, project_id: int, public_key: str, *events: dict[str, Any]) -> None:
    """Each event through the collector, as an SDK sends it (200 each)."""
    from tests.ingest_http.helpers import collector_url, event_envelope, sentry_auth

    async with aiohttp.ClientSession() as http:
        for event in events:
            async with http.post(collector_url(base_url, project_id), data=event_envelope(event),
                                 headers=sentry_auth(public_key)) as response:
                assert response.status == 200, await response.text()
