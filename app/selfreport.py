"""Self-reporting: errgate's own unhandled exceptions sent with sentry-sdk to ``SENTRY_DSN``, never in a loop.

Each serving process calls :func:`init_self_reporting` once (``app.workers``), never at import.
Unhandled exceptions of a request are caught by :func:`middleware`, which sits inside
``app.problems.error_middleware``: that middleware answers the JSON 500, so sentry-sdk's aiohttp
integration (which wraps the whole application) would never see the exception itself.

``SENTRY_DSN`` may point at errgate itself. So that a failure while storing errgate's own
report cannot produce another report, and so on:

- nothing is reported while handling a request authenticated with the DSN's own public key
  (sentry-sdk always sends it in ``X-Sentry-Auth``);
- error log records about the DSN's own project (the writer logs ``project_id``) are dropped;
- sentry-sdk's transport (urllib3 in a thread, not aiohttp) is not instrumented, its loggers
  are ignored, and release-health sessions and client reports, which every request or dropped
  event would send again, are off.

No request bodies, local variables, client addresses, tokens or keys leave the process.
"""

from __future__ import annotations

import contextvars
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

import sentry_sdk
from aiohttp import web
from sentry_sdk.integrations.aiohttp import AioHttpIntegration
from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger
from sentry_sdk.transport import Transport
from sentry_sdk.utils import event_from_exception

from app.ingest import credentials
from app.ingest.rejection import Rejection
from app.problems import Handler, HTTPProblem, client_went_away
from app.version import installed_version

FILTERED = "[Filtered]"
SECRET_HEADERS = frozenset({"private-token", "authorization", "x-sentry-auth", "cookie", "proxy-authorization"})
SECRET_QUERY_PARAMS = frozenset({"private_token", "access_token", "sentry_key"})
# errgate.errors logs every unhandled exception that the middleware below already reports.
IGNORED_LOGGERS = ("errgate.errors", "sentry_sdk*", "urllib3*")

_own_request: contextvars.ContextVar[bool] = contextvars.ContextVar("errgate_own_report_request", default=False)


def own_project_id(dsn: str) -> str | None:
    """The last path segment of the DSN, as Sentry SDKs read it."""
    project = urlsplit(dsn).path.rstrip("/").rpartition("/")[2]
    return project if project.isdigit() else None


def _release() -> str | None:
    version = installed_version()
    return f"errgate@{version}" if version else None


def init_self_reporting(dsn: str, *, transport: Transport | None = None) -> None:
    """Start sentry-sdk for this process; ``transport`` is for tests (events kept in memory)."""
    for name in IGNORED_LOGGERS:
        ignore_logger(name)
    sentry_sdk.init(
        dsn=dsn,
        transport=transport,
        release=_release(),
        integrations=[AioHttpIntegration(transaction_style="method_and_path_pattern"), LoggingIntegration()],
        auto_enabling_integrations=False,
        # send_default_pii is left unset, which means False: recent sentry-sdk warns (DeprecationWarning)
        # whenever it is set, in favour of data_collection, which older 2.x releases do not know.
        max_request_body_size="never",
        include_local_variables=False,
        auto_session_tracking=False,
        send_client_reports=False,
        before_send=make_before_send(dsn),
    )


Event = dict[str, Any]


def make_before_send(dsn: str) -> Callable[[Event, dict[str, Any]], Event | None]:
    project = own_project_id(dsn)

    def before_send(event: Event, hint: dict[str, Any]) -> Event | None:
        if _own_request.get():
            return None
        record = hint.get("log_record")
        if project is not None and record is not None and str(getattr(record, "project_id", "")) == project:
            return None
        scrub(event)
        return event

    return before_send


def scrub(event: Event) -> None:
    """Remove credentials, the body and the client's address from the event's request data."""
    request = event.get("request")
    if not isinstance(request, dict):
        return
    for name in ("data", "cookies", "env"):
        request.pop(name, None)
    headers = request.get("headers")
    if isinstance(headers, dict):
        for name in headers:
            if name.lower() in SECRET_HEADERS:
                headers[name] = FILTERED
    query = request.get("query_string")
    if isinstance(query, str) and query:
        pairs = parse_qsl(query, keep_blank_values=True)
        request["query_string"] = urlencode(
            [(k, FILTERED if k.lower() in SECRET_QUERY_PARAMS else v) for k, v in pairs]
        )
    url = request.get("url")
    if isinstance(url, str) and "?" in url:
        request["url"] = url.partition("?")[0]


def _authenticated_with(request: web.Request, public_key: str) -> bool:
    try:
        return credentials.key_from_request(request.headers, request.query) == public_key
    except Rejection:  # malformed or conflicting keys: the collector refuses it before any work
        return False


Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def middleware(dsn: str) -> Middleware:
    """Report unexpected exceptions (then let ``error_middleware`` answer 500), except for requests
    that carry errgate's own key: reporting those could loop."""
    public_key = credentials.key_from_dsn(dsn)

    @web.middleware
    async def self_report_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = _own_request.set(public_key is not None and _authenticated_with(request, public_key))
        try:
            return await handler(request)
        except (HTTPProblem, web.HTTPException):
            raise
        except Exception as exc:
            if not client_went_away(request, exc):
                report_unhandled(exc)
            raise
        finally:
            _own_request.reset(token)

    return self_report_middleware


def report_unhandled(exc: BaseException) -> None:
    client = sentry_sdk.get_client()
    if not client.is_active():
        return
    event, hint = event_from_exception(
        exc, client_options=client.options, mechanism={"type": "aiohttp", "handled": False}
    )
    sentry_sdk.capture_event(event, hint=hint)
