"""The HTTP connection layer: header, body and keep-alive timeouts, the connection limit, and parse errors answered in JSON.

aiohttp bounds idle keep-alive connections but has no header or body timeout, so a client
sending one header byte a second, or a body that stops, holds its connection forever. Both
timeouts are kept here, per connection, in a subclass of aiohttp's protocol (RequestHandler):
only the protocol sees every byte arrive (``data_received``), whichever handler reads the body
and whether it reads it with ``request.content``, ``read()`` or ``post()``. The runner below is
aiohttp's AppRunner making its Server create this protocol; nothing else changes.

The subclass relies on RequestHandler internals (``_messages``, ``_current_request``,
``_process_keepalive``, the reading-paused flags), read against aiohttp 3.14; tests/ops cover
every behaviour, so an aiohttp that changes them fails the tests rather than the timeouts.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http import HttpProcessingError, RawRequestMessage
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from app.config import Settings
from app.metrics import Metrics
from app.problems import HTTPProblem, json_response

log = logging.getLogger("errgate.http")

# The parser's message for more than max_headers (128) header lines, in both of aiohttp's parsers.
_TOO_MANY_HEADERS = "Too many headers received"
# File descriptors a worker needs besides its client connections: the database pool, the
# listening sockets, logs, the embedded server's and sentry-sdk's sockets.
SPARE_FILE_DESCRIPTORS = 64


def parse_error_status(exc: HttpProcessingError) -> int:
    """431 when the request line or a header line is too long or there are too many headers, else 400.

    The parser raises the same LineTooLong for an over-long URL and an over-long header line
    (both limited to 8 KiB); both count as the request's head being too large.
    """
    if isinstance(exc, LineTooLong) or exc.message == _TOO_MANY_HEADERS:
        return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    return HTTPStatus.BAD_REQUEST


def _problem(status: int) -> dict[str, str]:
    return {"message": f"{status} {HTTPStatus(status).phrase}"}


def _json_answer(status: int) -> web.Response:
    """An answer made here, outside any application: the application's headers hook never sees it."""
    return json_response(_problem(status), status, {"X-Content-Type-Options": "nosniff"})


def _body_timeout_problem() -> HTTPProblem:
    # The connection is closed after this answer: the rest of the body may still come.
    return HTTPProblem(408, _problem(408), {"Connection": "close"})


def _bad_body_problem() -> HTTPProblem:
    return HTTPProblem(400, _problem(400), {"Connection": "close"})


class Protocol(RequestHandler):
    """One client connection: aiohttp's request handling plus errgate's timeouts and JSON errors.

    Timers: the header timer starts at the first byte of a request head and closes the
    connection when the head is not complete ``header_timeout`` later; the body timer runs
    while a request body is incomplete and fires when no byte of it arrived for
    ``body_timeout`` (not counting time when errgate itself stopped reading: a full buffer or
    a busy handler). Idle keep-alive connections are closed by aiohttp's own keepalive timer.
    """

    def __init__(self, manager: "Server", *, settings: Settings, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(manager, keepalive_timeout=settings.keepalive_seconds, **kwargs)
        self._gate = manager
        self._metrics = metrics
        self._header_timeout = settings.header_timeout_seconds
        self._body_timeout = settings.body_timeout_seconds
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_deadline = 0.0
        # The body still arriving (at most one: the parser finishes a body before the next head),
        # and whether its request has been answered (then aiohttp only drains it).
        self._body: StreamReader | None = None
        self._body_answered = False
        self.admitted = False

    # -- connection ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._gate.admit(self):
            transport.close()
            return
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_header_timer()
        self._stop_body_timer()
        self._body = None
        super().connection_lost(exc)

    @property
    def idle(self) -> bool:
        """Waiting for a request with no byte of one received: may be closed to make room."""
        waiter = self._waiter
        return (
            waiter is not None and not waiter.done() and self._header_timer is None
            and not self._messages and not self._force_close and not self._close
        )

    # -- bytes in --------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._force_close or self._close or self._upgraded or self._payload_parser is not None:
            super().data_received(data)
            return
        body_before = self._body
        queued = len(self._messages)
        super().data_received(data)
        if len(self._messages) > queued:
            self._stop_header_timer()
            message, payload = self._messages[-1]
            if not isinstance(message, RawRequestMessage) and body_before is not None:
                # A malformed chunk: aiohttp would answer the parse error after the request being
                # read, whose body would meanwhile wait for bytes the parser will never give it.
                self._refused(message.exc)
                self._fail_body(body_before, _bad_body_problem())
                return
            self._set_body(None if payload.is_eof() else payload)
        elif body_before is not None and body_before.is_eof():
            self._set_body(None)
        elif data and body_before is None and self._header_timer is None:
            # The first bytes of a head (an empty ``data`` is aiohttp re-parsing what it holds).
            self._header_timer = self._loop.call_at(self._loop.time() + self._header_timeout, self._header_timed_out)
        if self._body is not None and data:
            self._body_deadline = self._loop.time() + self._body_timeout

    def resume_reading(self, resume_parser: bool = True) -> None:
        if not self._reading_paused and not self._buffer_paused:
            # aiohttp's body stream calls this after every read, paused or not; when nothing was
            # paused the parser holds no bytes and the transport reads: re-parsing b"" and resuming
            # the transport would cost two calls per request for nothing.
            return
        # While errgate did not read, the client could not send: its allowance starts again.
        if self._body is not None:
            self._body_deadline = self._loop.time() + self._body_timeout
        super().resume_reading(resume_parser)

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        if self._body is not None and request.content is self._body:
            self._body_answered = True
        if getattr(resp, "__http_exception__", False) and resp.content_type != "application/json":
            # Only aiohttp's own exceptions raised before the middlewares get here (an unknown
            # ``Expect`` header: 417), and their text quotes the request.
            resp = _json_answer(resp.status)
        return await super().finish_response(request, resp, start_time)

    # -- header timer ----------------------------------------------------------------------
    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self._force_close or self.transport is None:
            return
        self._metrics.timed_out("headers")
        if self._waiter is not None and not self._waiter.done():
            self.force_close()
        else:
            # A request is being answered; the slow head pipelined behind it is not served.
            self.close()

    # -- body timer ------------------------------------------------------------------------
    def _set_body(self, body: StreamReader | None) -> None:
        if body is self._body:
            return
        self._body = body
        self._body_answered = False
        if body is None:
            self._stop_body_timer()
            return
        self._body_deadline = self._loop.time() + self._body_timeout
        if self._body_timer is None:
            self._body_timer = self._loop.call_at(self._body_deadline, self._check_body)

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _check_body(self) -> None:
        self._body_timer = None
        body = self._body
        if body is None or self.transport is None:
            return
        now = self._loop.time()
        if self._reading_paused or self._buffer_paused:
            self._body_deadline = now + self._body_timeout
        if now < self._body_deadline:
            self._body_timer = self._loop.call_at(self._body_deadline, self._check_body)
            return
        self._metrics.timed_out("body")
        self._fail_body(body, _body_timeout_problem())

    def _fail_body(self, body: StreamReader, problem: HTTPProblem) -> None:
        """The handler reading ``body`` (now or later) gets ``problem``; the connection closes after its answer."""
        answered = self._body_answered
        self._set_body(None)
        if answered:
            # Only aiohttp's lingering close still reads it, to let the client see the answer: end both.
            self.force_close()
        else:
            self.close()
            body.set_exception(problem)
        # At end of stream aiohttp does not drain the rest of the body after the answer.
        body.feed_eof()

    # -- keep-alive ------------------------------------------------------------------------
    def _process_keepalive(self) -> None:
        if self._header_timer is not None:
            # Not idle: a head is arriving, and the header timeout decides. aiohttp starts the
            # keep-alive timer again after the answer.
            self._keepalive_handle = None
            return
        was_open = not self._force_close
        super()._process_keepalive()
        if was_open and self._force_close:
            self._metrics.timed_out("keepalive")

    # -- errors ----------------------------------------------------------------------------
    def _refused(self, exc: HttpProcessingError) -> int:
        """Log and count a request the parser refused; its status. The parser's message quotes
        the raw request line or header (tokens and keys included): only the error's class is logged."""
        status = parse_error_status(exc)
        # Scanners and TLS clients on the HTTP port send garbage methods all day.
        level = logging.DEBUG if isinstance(exc, BadHttpMethod) else logging.INFO
        log.log(level, "unparsable request", extra={"error": type(exc).__name__, "status": status})
        self._metrics.unparsable(status)
        return status

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        """aiohttp's answer to a request it could not parse or whose handler failed, in JSON.

        aiohttp's own answer and log line quote the parser's message, and so the raw request.
        """
        if isinstance(exc, HttpProcessingError):
            status = self._refused(exc)
        elif status == HTTPStatus.GATEWAY_TIMEOUT:
            log.warning("request handler timed out", extra={"route": request.path})
        else:
            log.error("unhandled error outside the middlewares", exc_info=exc, extra={"route": request.path})
        if request.writer.output_size > 0:
            # Part of another answer is out: aiohttp drops the connection on ConnectionError.
            raise ConnectionError("an answer was already started")
        response = _json_answer(status)
        response.force_close()
        return response


class Server(web.Server):
    """aiohttp's Server creating :class:`Protocol` and holding at most ``max_connections`` clients.

    At the limit, a new connection closes an idle keep-alive connection (one waiting for a
    request with no byte of one received) to take its place, like nginx reuses idle
    connections; when every connection is busy it is closed at once (counted as refused).
    Holding it instead would cost a file descriptor per waiting connection, which is what a
    client opening connections by the thousand wants; a refused client retries.
    """

    def __init__(self, base: web.Server, settings: Settings, metrics: Metrics) -> None:
        # The kwargs aiohttp's AppRunner prepared for RequestHandler (aiohttp keeps them in _kwargs).
        super().__init__(
            base.request_handler, request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation, loop=base._loop, **base._kwargs,
        )
        self.settings = settings
        self.metrics = metrics
        self.max_connections = settings.max_connections
        self._admitted: set[Protocol] = set()

    def __call__(self) -> Protocol:
        return Protocol(self, loop=self._loop, settings=self.settings, metrics=self.metrics, **self._kwargs)

    def admit(self, protocol: Protocol) -> bool:
        if len(self._admitted) >= self.max_connections:
            idle = next((each for each in self._admitted if each.idle), None)
            if idle is None:
                self.metrics.connections_refused.inc()
                return False
            self._release(idle)
            idle.force_close()
            self.metrics.connections_reclaimed.inc()
        self._admitted.add(protocol)
        protocol.admitted = True
        self.metrics.connections_open.inc()
        return True

    def _release(self, protocol: Protocol) -> None:
        if protocol.admitted:
            protocol.admitted = False
            self._admitted.discard(protocol)
            self.metrics.connections_open.dec()

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        if isinstance(handler, Protocol):
            self._release(handler)
        super().connection_lost(handler, exc)


class Runner(web.AppRunner):
    """aiohttp's AppRunner whose server speaks :class:`Protocol`."""

    def __init__(self, app: web.Application, settings: Settings, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._settings = settings
        self._metrics = metrics

    async def _make_server(self) -> web.Server:
        return Server(await super()._make_server(), self._settings, self._metrics)


def ensure_file_descriptors(settings: Settings) -> None:
    """Raise the soft limit on open files to what ``max_connections`` needs (up to the hard limit).

    The usual soft limit is 1024: with it, the default 1024 connections would leave nothing for
    the database pool, and accept() would fail instead of the limit applying.
    """
    needed = settings.max_connections + settings.db_pool_size + SPARE_FILE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            log.warning(
                "open files limited below ERRGATE_MAX_CONNECTIONS",
                extra={"max_connections": settings.max_connections, "open_files_limit": target},
            )
