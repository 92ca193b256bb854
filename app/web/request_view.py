"""The HTTP request of an event (Sentry's request interface), with its secrets masked for the page.

Cookies, authorization headers, and any header or query parameter whose name says it holds a
credential (``X-Api-Key``, ``X-Auth-Token``, ``csrf``, ``session``…) are shown by name with the
value masked, and so is a password in the URL: an event is read by everyone on the project, but
the credentials of the user who hit the error are not theirs to see.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from app.web.payload_values import MAX_ROWS, TEXT_LIMIT, clip, pairs, text

MASK = "********"
_SECRET_NAME = re.compile(r"auth|cookie|token|secret|passw|api[-_]?key|session|csrf|xsrf|signature|credential", re.I)


@dataclass(frozen=True)
class RequestView:
    method: str
    url: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    cookies: tuple[tuple[str, str], ...]  # names only: every value masked
    env: tuple[tuple[str, str], ...]


def request(value: Any) -> RequestView | None:
    """The request of an event, or None when the event has none."""
    if not isinstance(value, dict) or not value:
        return None
    return RequestView(
        method=text(value.get("method"), 20).upper(),
        url=masked_url(text(value.get("url"))),
        query=tuple(_masked(_query(value.get("query_string")))),
        headers=tuple(_masked(pairs(value.get("headers")))),
        cookies=tuple((name, MASK) for name, _ in _cookies(value.get("cookies"))),
        env=tuple(pairs(value.get("env"))),
    )


def is_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def masked_url(url: str) -> str:
    """``url`` with the password of its user info and the values of secret query parameters masked."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket: shown as sent, it has no parts to mask
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    query = parts.query
    if query:
        query = urllib.parse.urlencode(_masked(_query(query)), safe="*")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


def _masked(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, MASK if is_secret(name) else value) for name, value in rows]


def _query(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, str):
        query = clip(value, TEXT_LIMIT).lstrip("?")
        return [
            (clip(name, 200), clip(item))
            for name, item in urllib.parse.parse_qsl(query, keep_blank_values=True, max_num_fields=None)[:MAX_ROWS]
        ]
    return pairs(value)


def _cookies(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, str):
        names = (part.split("=", 1)[0].strip() for part in clip(value, TEXT_LIMIT).split(";"))
        return [(clip(name, 200), "") for name in names if name][:MAX_ROWS]
    return pairs(value)
