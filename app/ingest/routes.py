"""The Sentry collector endpoints: ``/envelope/`` and ``/store/`` under every DSN prefix, plus CORS.

A request is authenticated from its headers or query before its body is read (so refused
keys cost no decompression), then its body is decoded as a bounded stream, parsed, the
``event`` item grouped and summarised, and handed to the writer. The answer is sent only
once the event is committed. Items other than ``event`` are accepted and counted, not stored.
The parsers refuse a request with a :class:`Rejection`; this module turns it into Relay's answer.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timezone

from aiohttp import web

from app import state
from app.config import Settings
from app.dsn import COLLECTOR_PATH
from app.problems import Handler, HTTPProblem, json_response
from app.ingest import backpressure, credentials
from app.ingest.body import read_body
from app.ingest.envelope import normalize_event_id, parse_envelope
from app.ingest.grouping import fingerprint_for
from app.ingest.inflight import DecodeBudgetExhausted, Reservation
from app.ingest.payload import decode_store_body, load_event, pack_event
from app.ingest.rejection import Rejection
from app.ingest.summary import summarize_event
from app.ingest.writer import PendingEvent
from app.metrics import DECODE_BUDGET_REASON

PREFIXES = ("", COLLECTOR_PATH, "/errortracking/api/v1/projects")
CHUNK_SIZE = 64 * 1024
KiB = 1024
# The request's decoded bytes, counted against the worker's budget until it is answered (see collector).
DECODING = web.RequestKey("decoding", Reservation)

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


@functools.cache
def item_limits(settings: Settings) -> dict[str, int]:
    """Relay's per-item limits; the event limit is configurable (computed once per settings)."""
    return {
        "event": settings.max_event_bytes,
        "transaction": settings.max_event_bytes,
        "client_report": 100 * KiB,
        "check_in": 100 * KiB,
        "log": 2 * 1024 * KiB,
    }


def as_problem(rejection: Rejection) -> HTTPProblem:
    """Relay's answer to a refused request: its status and ``{"detail": ..., "causes": [...]}``."""
    return HTTPProblem.sentry(rejection.status, rejection.detail, rejection.causes)


def collector(handler: Handler) -> Handler:
    """CORS headers on every answer (browser SDKs must read errors too), rejections counted, and
    the request's decoded bytes held in the worker's budget until the handler is done with them."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        decoding = request[DECODING] = request.app[state.DECODE_BUDGET].reservation()
        try:
            response = await handler(request)
        except Rejection as rejection:
            problem = as_problem(rejection)
            _refused(request, problem)
            raise problem from None
        except DecodeBudgetExhausted:
            problem = backpressure.decoding_busy()
            _refused(request, problem, DECODE_BUDGET_REASON)
            raise problem from None
        except HTTPProblem as problem:
            _refused(request, problem)
            raise
        finally:
            decoding.close()
        response.headers.update(CORS_HEADERS)
        return response

    return wrapped


def _refused(request: web.Request, problem: HTTPProblem, reason: str | None = None) -> None:
    problem.headers.update(CORS_HEADERS)
    request.app[state.METRICS].rejected(problem.status, reason)


async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=200, headers=PREFLIGHT_HEADERS)


async def _authorize(request: web.Request, public_key: str, project_id: int) -> None:
    allowed_project = await request.app[state.KEY_CACHE].project_for(public_key)
    if allowed_project != project_id:
        raise credentials.rejected()


async def _read(request: web.Request) -> bytes:
    settings = request.app[state.SETTINGS]
    return await read_body(
        request.content.iter_chunked(CHUNK_SIZE),
        request.headers.get("Content-Encoding"),
        max_body_bytes=settings.max_body_bytes,
        # A body that the whole budget cannot hold would be refused 429 every time: it is too large.
        max_decoded_bytes=min(settings.max_envelope_bytes, settings.max_inflight_bytes),
        reserve=request[DECODING].reserve,
        offload=request.app[state.DECODE_OFFLOAD],
    )


def _project_id(request: web.Request) -> int:
    text = request.match_info["project_id"]
    # ``\d`` also matches non-ASCII digits, and int() refuses strings of more than 4300 digits
    # (ValueError, a 500): anything that cannot be a bigint is refused before converting it.
    if not text.isascii() or len(text.lstrip("0")) > 19:
        raise credentials.rejected()
    project_id = int(text)
    if project_id > 2**63 - 1:
        raise credentials.rejected()
    return project_id


async def _store(request: web.Request, project_id: int, event: dict, event_id: str | None) -> str:
    """Group, summarise and commit one event; returns its id once it is durable."""
    received_at = datetime.now(timezone.utc)
    event_id = event_id or normalize_event_id(event.get("event_id")) or uuid.uuid4().hex
    fingerprint = fingerprint_for(event)
    summary = summarize_event(event, fingerprint=fingerprint, received_at=received_at)
    event["event_id"] = event_id
    pending = PendingEvent(project_id, event_id, summary, pack_event(event), received_at)
    await request.app[state.WRITER].write(pending)
    return event_id


@collector
async def envelope_endpoint(request: web.Request) -> web.Response:
    project_id = _project_id(request)
    public_key = credentials.key_from_request(request.headers, request.query)
    if public_key is not None:
        await _authorize(request, public_key, project_id)
    envelope = parse_envelope(await _read(request), max_item_bytes=item_limits(request.app[state.SETTINGS]))
    if public_key is None:
        public_key = credentials.key_from_dsn(envelope.headers.get("dsn"))
        if public_key is None:
            raise credentials.unauthorized()
        await _authorize(request, public_key, project_id)
    metrics = request.app[state.METRICS]
    event_id = envelope.event_id
    for item in envelope.items:
        metrics.item_received(item.type)
        if item.type == "event":
            event = load_event(item.payload, max_bytes=request.app[state.SETTINGS].max_event_bytes)
            event_id = await _store(request, project_id, event, event_id)
    return json_response({"id": event_id} if event_id else {})


@collector
async def store_endpoint(request: web.Request) -> web.Response:
    project_id = _project_id(request)
    public_key = credentials.key_from_request(request.headers, request.query)
    if public_key is None:
        raise credentials.unauthorized()
    await _authorize(request, public_key, project_id)
    settings = request.app[state.SETTINGS]
    body = decode_store_body(await _read(request), max_bytes=settings.max_event_bytes)
    request.app[state.METRICS].item_received("event")
    event_id = await _store(request, project_id, load_event(body, max_bytes=settings.max_event_bytes), None)
    return json_response({"id": event_id})


def setup_routes(app: web.Application) -> None:
    for prefix in PREFIXES:
        for name, handler in (("envelope", envelope_endpoint), ("store", store_endpoint)):
            for slash in ("/", ""):
                path = f"{prefix}/api/{{project_id:\\d+}}/{name}{slash}"
                app.router.add_post(path, handler)
                app.router.add_route("OPTIONS", path, preflight)
