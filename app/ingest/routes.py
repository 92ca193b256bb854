"""The Sentry collector endpoints: ``/envelope/`` and ``/store/`` under every DSN prefix, plus CORS.

A request is authenticated before its body is read: from its headers or query, or else from
the ``dsn`` of its envelope header, for which only the header line is decoded (at most 64 KiB).
A missing or refused key thus costs no decompression, and a 401 or 403 closes the connection
rather than read the rest of a body still arriving. Then the body is decoded as a bounded
stream, parsed, the ``event`` item grouped and summarised, and handed to the writer. The answer
is sent only once the event is committed. Items other than ``event`` are accepted and counted, not stored.
The parsers refuse a request with a :class:`Rejection`; this module turns it into Relay's answer.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone

from aiohttp import web
from aiohttp.streams import StreamReader

from app import state
from app.config import Settings
from app.dsn import COLLECTOR_PATH
from app.ids import parse_id
from app.problems import Handler, HTTPProblem, json_response
from app.ingest import backpressure, credentials
from app.ingest.body import BodyReader
from app.ingest.envelope import EnvelopeHeader, normalize_event_id, parse_envelope, parse_envelope_header
from app.ingest.fields import read_fields
from app.ingest.grouping import fingerprint_for
from app.ingest.inflight import DecodeBudgetExhausted
from app.ingest.payload import decode_store_body, load_event, pack_event
from app.ingest.rejection import Rejection
from app.ingest.summary import summarize_event
from app.ingest.writer import PendingEvent
from app.metrics import DECODE_BUDGET_REASON

PREFIXES = ("", COLLECTOR_PATH, "/errortracking/api/v1/projects")
KiB = 1024
CHUNK_SIZE = 64 * KiB
# Decoded bytes read for the envelope header's dsn before a request without a key in its headers
# or query is authenticated: SDKs' header lines are well under 1 KiB.
ENVELOPE_HEADER_LIMIT = 64 * KiB
# Refusals of who sent the request: the body still arriving is not read (see _leave_unread).
_AUTHENTICATION_REFUSALS = frozenset({401, 403})

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "x-sentry-error, x-sentry-rate-limits, retry-after",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, POST, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": (
        "x-sentry-auth, x-requested-with, origin, accept, content-type, content-encoding, authorization, "
        "sentry-trace, baggage"
    ),
    "Access-Control-Max-Age": "3600",
}


def item_limits(settings: Settings) -> dict[str, int]:
    """Relay's per-item limits; the event limit is configurable."""
    return _item_limits(settings.max_event_bytes)


@functools.cache
def _item_limits(max_event_bytes: int) -> dict[str, int]:
    # Keyed on the one setting it reads: hashing the whole Settings on every request cost more than the dict.
    return {
        "event": max_event_bytes,
        "transaction": max_event_bytes,
        "client_report": 100 * KiB,
        "check_in": 100 * KiB,
        "log": 2 * 1024 * KiB,
    }


def as_problem(rejection: Rejection) -> HTTPProblem:
    """Relay's answer to a refused request: its status and ``{"detail": ..., "causes": [...]}``."""
    return HTTPProblem.sentry(rejection.status, rejection.detail, rejection.causes)


BodyHandler = Callable[[web.Request, BodyReader], Awaitable[web.StreamResponse]]


def collector(decoded_limit: Callable[[Settings], int]) -> Callable[[BodyHandler], Handler]:
    """A collector endpoint: ``handler(request, body)`` reads its body through ``body``, whose
    decoded size is limited to ``decoded_limit(settings)`` and whose decoded bytes are held in the
    worker's budget until the request ends. CORS headers on every answer (browser SDKs must read
    errors too), refusals and decoded bytes counted."""

    def decorate(handler: BodyHandler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            app = request.app
            settings = app[state.SETTINGS]
            decoding = app[state.DECODE_BUDGET].reservation()
            body = BodyReader(
                _body_chunks(request.content),
                request.headers.get("Content-Encoding"),
                max_body_bytes=settings.max_body_bytes,
                # A body that the whole budget cannot hold would be refused 429 every time: it is too large.
                max_decoded_bytes=min(decoded_limit(settings), settings.max_inflight_bytes),
                reserve=decoding.reserve,
                offload=app[state.DECODE_OFFLOAD],
            )
            try:
                response = await handler(request, body)
            except Rejection as rejection:
                problem = as_problem(rejection)
                _refused(request, body, problem)
                raise problem from None
            except DecodeBudgetExhausted:
                problem = backpressure.decoding_busy()
                _refused(request, body, problem, DECODE_BUDGET_REASON)
                raise problem from None
            except HTTPProblem as problem:
                _refused(request, body, problem)
                raise
            finally:
                body.close()
                decoding.close()
                app[state.METRICS].body_decoded(body.decoded)
            response.headers.update(CORS_HEADERS)
            return response

        return wrapped

    return decorate


async def _body_chunks(content: StreamReader) -> AsyncIterator[bytes]:
    """The request body in pieces of at most :data:`CHUNK_SIZE`, as ``iter_chunked`` gives them,
    but what is buffered already is taken at once: most bodies have arrived whole by then, and
    ``iter_chunked`` goes through two coroutines for every piece and for the end."""
    while True:
        chunk = content.read_nowait(CHUNK_SIZE)
        if not chunk:
            if content.at_eof():
                return
            chunk = await content.read(CHUNK_SIZE)
            if not chunk:
                return
        yield chunk


def _refused(request: web.Request, body: BodyReader, problem: HTTPProblem, reason: str | None = None) -> None:
    problem.headers.update(CORS_HEADERS)
    request.app[state.METRICS].rejected(problem.status, before_body=not body.rest_started, reason=reason)
    if problem.status in _AUTHENTICATION_REFUSALS and not request.content.is_eof():
        _leave_unread(request, problem)


def _leave_unread(request: web.Request, problem: HTTPProblem) -> None:
    """Answer and close the connection without reading the rest of the body.

    After an answer aiohttp reads what is left of the body (for up to 10 s) to keep the
    connection; a sender without a valid key gets none of that. Marking the body ended stops
    that reading, and closing the protocol drops the bytes still arriving.
    """
    problem.headers["Connection"] = "close"
    request.protocol.close()
    request.content.feed_eof()


async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=200, headers=PREFLIGHT_HEADERS)


async def _authorize(request: web.Request, public_key: str, project_id: int) -> None:
    allowed_project = await request.app[state.KEY_CACHE].project_for(public_key)
    if allowed_project != project_id:
        raise credentials.rejected()


def _project_id(request: web.Request) -> int:
    # The route's ``\d+`` also matches other scripts' digits: the same rule as the REST API's ids.
    project_id = parse_id(request.match_info["project_id"])
    if project_id is None:
        raise credentials.rejected()
    return project_id


def pending_event(project_id: int, payload: bytes, event_id: str | None, max_bytes: int) -> PendingEvent:
    """An event payload loaded, grouped, summarised and packed for the writer: the collector's per-event work.

    ``event_id``: the envelope's, else the payload's, else a new one. The loaded event (hundreds of
    objects) is garbage once this returns, before the request waits for its commit, so the cyclic
    collector never finds it alive and promotes it.
    """
    event = load_event(payload, max_bytes=max_bytes)
    received_at = datetime.now(timezone.utc)
    event_id = event_id or normalize_event_id(event.get("event_id")) or uuid.uuid4().hex
    fields = read_fields(event)  # grouping and the summary read the same fields: once
    fingerprint = fingerprint_for(event, fields)
    summary = summarize_event(event, fingerprint=fingerprint, received_at=received_at, fields=fields)
    event["event_id"] = event_id
    return PendingEvent(project_id, event_id, summary, pack_event(event), received_at)


async def _store(request: web.Request, pending: PendingEvent) -> str:
    """Commit one event; returns its id once it is durable."""
    await request.app[state.WRITER].write(pending)
    return pending.event_id


async def _key_from_envelope_header(body: BodyReader) -> tuple[str, EnvelopeHeader]:
    """The key of the envelope header's ``dsn``, decoding no more of the body than that line;
    and the header, which the envelope's parser need not read again."""
    line = await body.read_prefix(ENVELOPE_HEADER_LIMIT)
    if line is None:
        raise credentials.unauthorized(
            f"no key in the request's headers or query, and an envelope header longer than {ENVELOPE_HEADER_LIMIT} "
            "bytes is not searched for a dsn"
        )
    header = parse_envelope_header(line)
    public_key = credentials.key_from_dsn(header.headers.get("dsn"))
    if public_key is None:
        raise credentials.unauthorized()
    return public_key, header


@collector(lambda settings: settings.max_envelope_bytes)
async def envelope_endpoint(request: web.Request, body: BodyReader) -> web.Response:
    project_id = _project_id(request)
    public_key = credentials.key_from_request(request.headers, request.query)
    header = None
    if public_key is None:
        public_key, header = await _key_from_envelope_header(body)
    await _authorize(request, public_key, project_id)
    settings = request.app[state.SETTINGS]
    envelope = parse_envelope(await body.read_rest(), max_item_bytes=item_limits(settings), header=header)
    metrics = request.app[state.METRICS]
    event_id = envelope.event_id
    for item in envelope.items:
        metrics.item_received(item.type)
        if item.type == "event":
            event_id = await _store(request, pending_event(project_id, item.payload, event_id, settings.max_event_bytes))
    return json_response({"id": event_id} if event_id else {})


# Relay's limit on a /store/ body, decoded but before its own base64 and zlib.
@collector(lambda settings: settings.max_event_bytes)
async def store_endpoint(request: web.Request, body: BodyReader) -> web.Response:
    project_id = _project_id(request)
    public_key = credentials.key_from_request(request.headers, request.query)
    if public_key is None:
        raise credentials.unauthorized()
    await _authorize(request, public_key, project_id)
    settings = request.app[state.SETTINGS]
    event_bytes = decode_store_body(await body.read_rest(), max_bytes=settings.max_event_bytes)
    request.app[state.METRICS].item_received("event")
    event_id = await _store(request, pending_event(project_id, event_bytes, None, settings.max_event_bytes))
    return json_response({"id": event_id})


def setup_routes(app: web.Application) -> None:
    for prefix in PREFIXES:
        for name, handler in (("envelope", envelope_endpoint), ("store", store_endpoint)):
            for slash in ("/", ""):
                path = f"{prefix}/api/{{project_id:\\d+}}/{name}{slash}"
                app.router.add_post(path, handler)
                app.router.add_route("OPTIONS", path, preflight)
