"""Slow and idle clients are cut off: request heads, stalled bodies, idle keep-alive, and the connection limit.

Real errgate (application, runner, socket) on loopback with timeouts of half a second; the
clients are raw sockets, since no HTTP library sends one byte at a time or stops mid-body.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.health import LIVENESS_PATH
from tests.conftest import ROOT_TOKEN, Api, Server, ServerFactory, World
from tests.ingest_http.helpers import COLLECTOR, counter, event_envelope, exception_event, tracked_project
from tests.ops.conftest import ProcessFactory
from tests.ops.rawhttp import RawConnection, post_head

TIMEOUT = 0.5
# How long past a timeout the connection may take to close on a busy test machine.
SLACK = 1.5
LIVENESS = f"GET {LIVENESS_PATH} HTTP/1.1\r\nHost: errgate.test\r\n\r\n".encode()


def timed_out(server: Server, phase: str) -> float:
    return counter(server, "errgate_connections_timed_out_total", phase=phase)


# --- configuration ---------------------------------------------------------------------------


def test_settings_read_from_the_environment() -> None:
    defaults = Settings.from_env({})
    assert (defaults.header_timeout_seconds, defaults.body_timeout_seconds) == (10.0, 30.0)
    assert (defaults.keepalive_seconds, defaults.max_connections) == (75.0, 1024)
    settings = Settings.from_env({
        "ERRGATE_HEADER_TIMEOUT_SECONDS": "0.5", "ERRGATE_BODY_TIMEOUT_SECONDS": "2",
        "ERRGATE_KEEPALIVE_SECONDS": "5", "ERRGATE_MAX_CONNECTIONS": "10",
    })
    assert (settings.header_timeout_seconds, settings.body_timeout_seconds) == (0.5, 2.0)
    assert (settings.keepalive_seconds, settings.max_connections) == (5.0, 10)


@pytest.mark.parametrize(
    "name, value",
    [("ERRGATE_HEADER_TIMEOUT_SECONDS", "0"), ("ERRGATE_BODY_TIMEOUT_SECONDS", "soon"),
     ("ERRGATE_KEEPALIVE_SECONDS", "-1"), ("ERRGATE_MAX_CONNECTIONS", "0")],
)
def test_bad_values_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


# --- request heads ---------------------------------------------------------------------------


async def test_a_request_head_sent_one_byte_at_a_time_is_cut_off(start_server: ServerFactory) -> None:
    server = await start_server(header_timeout_seconds=TIMEOUT)
    async with RawConnection(server.url) as conn:
        took = await conn.trickle(LIVENESS, interval=0.1, limit=TIMEOUT + SLACK)
        assert await conn.closed(SLACK)
        assert await conn.read_all(0.1) == b""  # closed without an answer
    assert took < TIMEOUT + SLACK
    assert timed_out(server, "headers") == 1


async def test_the_header_timeout_starts_at_the_first_byte_not_at_connect(start_server: ServerFactory) -> None:
    server = await start_server(header_timeout_seconds=TIMEOUT)
    async with RawConnection(server.url) as conn:
        await asyncio.sleep(TIMEOUT * 2)  # idle: the keep-alive timeout applies, not this one
        await conn.trickle(LIVENESS, interval=TIMEOUT / len(LIVENESS) / 2, limit=TIMEOUT * 2)
        answer = await conn.answer()
        assert answer.status == 200
        # Keep-alive: a second head, in pieces but in time, on the same connection.
        for piece in (LIVENESS[:10], LIVENESS[10:20], LIVENESS[20:]):
            await conn.send(piece)
            await asyncio.sleep(TIMEOUT / 4)
        assert (await conn.answer()).status == 200
    assert timed_out(server, "headers") == 0


# --- bodies ----------------------------------------------------------------------------------


async def test_a_stalled_api_body_is_answered_408_and_the_connection_closed(start_server: ServerFactory) -> None:
    server = await start_server(body_timeout_seconds=TIMEOUT)
    async with RawConnection(server.url) as conn:
        started = time.monotonic()
        await conn.send(post_head("/api/v4/projects", 1000, PRIVATE_TOKEN=ROOT_TOKEN, Content_Type="application/json"))
        await conn.send(b'{"name": "')  # 10 of the 1000 bytes, then nothing
        answer = await conn.answer(TIMEOUT + SLACK)
        assert answer.status == 408
        assert answer.json() == {"message": "408 Request Timeout"}
        assert answer.headers.get("connection", "").lower() == "close"
        assert await conn.closed(SLACK)
    assert time.monotonic() - started < TIMEOUT + SLACK
    assert timed_out(server, "body") == 1


async def envelope_request(server: Server, world: World) -> tuple[bytes, bytes]:
    """The head and the body of an event envelope for a new project, as an SDK sends them."""
    async with aiohttp.ClientSession() as session:
        tracked = await tracked_project(Api(session, server.url), world)
    body = event_envelope(exception_event())
    path = f"{COLLECTOR}/api/{tracked.project_id}/envelope/"
    return post_head(path, len(body), X_Sentry_Auth=f"Sentry sentry_key={tracked.public_key}"), body


async def test_a_stalled_collector_body_is_answered_408(start_server: ServerFactory, world: World) -> None:
    server = await start_server(body_timeout_seconds=TIMEOUT)
    head, body = await envelope_request(server, world)
    async with RawConnection(server.url) as conn:
        await conn.send(head)
        await conn.send(body[:10])
        answer = await conn.answer(TIMEOUT + SLACK)
        assert answer.status == 408
        assert answer.json() == {"message": "408 Request Timeout"}
        assert answer.headers["access-control-allow-origin"] == "*"  # still a collector answer
        assert await conn.closed(SLACK)
    assert timed_out(server, "body") == 1


async def test_a_slow_body_that_keeps_coming_is_not_cut_off(start_server: ServerFactory, world: World) -> None:
    """The body timeout is between reads: a body taking several timeouts in all is accepted."""
    server = await start_server(body_timeout_seconds=TIMEOUT)
    head, body = await envelope_request(server, world)
    pieces = 8
    step = -(-len(body) // pieces)
    started = time.monotonic()
    async with RawConnection(server.url) as conn:
        await conn.send(head)
        for start in range(0, len(body), step):
            await asyncio.sleep(TIMEOUT / 2)
            await conn.send(body[start:start + step])
        answer = await conn.answer()
    assert time.monotonic() - started > 3 * TIMEOUT
    assert answer.status == 200, answer.raw
    assert timed_out(server, "body") == 0


async def test_a_chunk_that_cannot_be_parsed_ends_the_body_being_read(start_server: ServerFactory) -> None:
    """A malformed chunk after the head: the handler reading the body gets 400 at once."""
    server = await start_server(body_timeout_seconds=60)
    async with RawConnection(server.url) as conn:
        head = post_head("/api/v4/projects", 0, PRIVATE_TOKEN=ROOT_TOKEN, Content_Type="application/json")
        await conn.send(head.replace(b"Content-Length: 0", b"Transfer-Encoding: chunked"))
        await asyncio.sleep(0.2)
        await conn.send(b"5\r\n{\"nam\r\nzz\r\n")
        answer = await conn.answer(SLACK)
        assert answer.status == 400
        assert answer.json() == {"message": "400 Bad Request"}
        assert await conn.closed(SLACK)


# --- keep-alive ------------------------------------------------------------------------------


async def test_an_idle_keepalive_connection_is_closed(start_server: ServerFactory) -> None:
    server = await start_server(keepalive_seconds=TIMEOUT)
    async with RawConnection(server.url) as conn:
        await conn.send(LIVENESS)
        assert (await conn.answer()).status == 200
        started = time.monotonic()
        assert await conn.closed(TIMEOUT + SLACK)
        assert time.monotonic() - started >= TIMEOUT * 0.9
    assert timed_out(server, "keepalive") == 1


# --- the connection limit --------------------------------------------------------------------


async def test_over_the_limit_a_connection_is_closed_at_once_while_all_are_busy(start_server: ServerFactory) -> None:
    server = await start_server(max_connections=2, header_timeout_seconds=30)
    async with RawConnection(server.url) as first, RawConnection(server.url) as second:
        for busy in (first, second):  # each has started a request
            await busy.send(LIVENESS[:5])
        await asyncio.sleep(0.1)
        async with RawConnection(server.url) as extra:
            with contextlib.suppress(ConnectionError):  # it may be closed before the request is out
                await extra.send(LIVENESS)
            assert await extra.read_all(SLACK) == b""
        assert counter(server, "errgate_connections_refused_total") == 1
        for busy in (first, second):  # the busy ones are still served
            await busy.send(LIVENESS[5:])
            assert (await busy.answer()).status == 200
        # Both are idle now: a new connection takes the place of one of them.
        async with RawConnection(server.url) as third:
            await third.send(LIVENESS)
            assert (await third.answer()).status == 200
        assert counter(server, "errgate_connections_reclaimed_total") == 1
        closed = [await each.closed(0.2) for each in (first, second)]
        assert sorted(closed) == [False, True]
    assert counter(server, "errgate_connections_refused_total") == 1


async def test_a_freed_place_serves_the_next_connection(start_server: ServerFactory) -> None:
    server = await start_server(max_connections=1, header_timeout_seconds=30)
    for _ in range(3):
        async with RawConnection(server.url) as conn:
            await conn.send(LIVENESS.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
            assert (await conn.answer()).status == 200
            assert await conn.closed(SLACK)
    await asyncio.sleep(0.1)
    assert counter(server, "errgate_connections_open") == 0
    assert counter(server, "errgate_connections_refused_total") == 0


# --- errgate serve ---------------------------------------------------------------------------


async def test_errgate_serve_applies_the_settings_and_exports_the_counters(errgate_process: ProcessFactory) -> None:
    async with errgate_process(ERRGATE_HEADER_TIMEOUT_SECONDS=str(TIMEOUT), ERRGATE_KEEPALIVE_SECONDS=str(TIMEOUT)) as proc:
        async with RawConnection(proc.url) as conn:
            await conn.trickle(LIVENESS, interval=0.1, limit=TIMEOUT + SLACK)
            assert await conn.closed(SLACK)
        async with RawConnection(proc.url) as conn:
            await conn.send(LIVENESS)
            assert (await conn.answer()).status == 200
            assert await conn.closed(TIMEOUT + SLACK)
        async with aiohttp.ClientSession() as session, session.get(proc.url + "/metrics") as response:
            text = await response.text()
    samples = {
        (sample.name, sample.labels.get("phase")): sample.value
        for family in text_string_to_metric_families(text) for sample in family.samples
    }
    assert samples[("errgate_connections_timed_out_total", "headers")] == 1, text
    assert samples[("errgate_connections_timed_out_total", "keepalive")] >= 1
    assert ("errgate_connections_refused_total", None) in samples
