"""Finding the public key of a Sentry request, in Relay's order.

Sources: ``X-Sentry-Auth: Sentry sentry_key=…``, ``Authorization: Sentry …``,
``Authorization: Basic`` (key as user name), the ``sentry_key`` query parameter, and — on
the envelope endpoint, only when none of those is present — the envelope header's ``dsn``.
Two different keys in one request are refused (400). No key at all is 401.
"""

from __future__ import annotations

import base64
import binascii
import functools
from typing import Mapping
from urllib.parse import urlsplit

from app.ingest.rejection import Rejection


# An SDK sends the same X-Sentry-Auth (or dsn) on every request, and a replica serves a few SDKs:
# each distinct value is parsed once.
@functools.lru_cache(maxsize=256)
def parse_sentry_auth(value: str) -> str | None:
    """``Sentry sentry_key=abc, sentry_version=7`` → ``abc`` (prefix case-insensitive, any spacing)."""
    text = value.strip()
    if text[:6].lower() != "sentry" or (len(text) > 6 and not text[6].isspace()):
        return None
    for pair in text[6:].split(","):
        name, _, raw = pair.strip().partition("=")
        if name.strip().lower() == "sentry_key":
            key = raw.strip().strip('"')
            return key or None
    return None


def _basic_user(value: str) -> str | None:
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user or None


def key_from_request(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The public key from headers and query string; raises 400 when they disagree."""
    found: list[str] = []
    if "X-Sentry-Auth" in headers:
        key = parse_sentry_auth(headers["X-Sentry-Auth"])
        if key is None:
            raise unauthorized("X-Sentry-Auth has no sentry_key")
        found.append(key)
    authorization = headers.get("Authorization")
    if authorization:
        key = parse_sentry_auth(authorization) or _basic_user(authorization)
        if key is not None:
            found.append(key)
    if query.get("sentry_key"):
        found.append(query["sentry_key"].strip())
    if len(set(found)) > 1:
        raise Rejection(400, "bad event meta", ["multiple authorization payloads with different keys"])
    return found[0] if found else None


def key_from_dsn(dsn: object) -> str | None:
    """The public key (user part) of an envelope header's ``dsn``."""
    if not isinstance(dsn, str):
        return None
    return _dsn_user(dsn)


@functools.lru_cache(maxsize=256)
def _dsn_user(dsn: str) -> str | None:
    try:
        return urlsplit(dsn).username or None
    except ValueError:
        return None


def unauthorized(cause: str = "missing authorization information") -> Rejection:
    return Rejection(401, "missing or unparsable authorization", [cause])


def rejected() -> Rejection:
    """One answer for every refused key or project, so nobody can probe which exist."""
    return Rejection(403, "event submission rejected with_reason: ProjectId", [])
