"""Self-reporting: errgate's unhandled exceptions reach sentry-sdk without secrets, and never in a loop.

sentry-sdk runs for real with an in-memory transport (``init_self_reporting(dsn, transport=…)``),
in front of the real application, runner and socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any, AsyncIterator, Callable, Iterator

import aiohttp
import pytest
import sentry_sdk
from aiohttp import web
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from app import state
from app.ingest.writer import PendingEvent
from app.selfreport import FILTERED, init_self_reporting, own_project_id
from tests import conftest
from app.server import create_app
from tests.conftest import Api, World
from tests.conftest import test_settings as settings_for
from tests.ingest_http.helpers import (
    TrackedProject, collector_url, event_envelope, exception_event, post_envelope, sentry_auth, tracked_project,
)


class MemoryTransport(Transport):
    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict[str, Any]]:
        return [item.payload.json for e in self.envelopes for item in e.items if item.type == "event"]

    def sent(self) -> bytes:
        return b"".join(e.serialize() for e in self.envelopes)


@pytest.fixture
def reporting() -> Iterator[Callable[[str], MemoryTransport]]:
    """``transport = reporting(dsn)`` starts sentry-sdk for this test only."""

    def start(dsn: str) -> MemoryTransport:
        transport = MemoryTransport()
        init_self_reporting(dsn, transport=transport)
        return transport

    yield start
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
    sentry_sdk.get_isolation_scope().clear()
    sentry_sdk.get_current_scope().clear()


ReportingApp = Callable[[str], tuple[MemoryTransport, web.Application]]


@pytest.fixture
def reporting_app(database_url: str, reporting: Callable[[str], MemoryTransport]) -> ReportingApp:
    """``transport, app = reporting_app(dsn)``: sentry-sdk started for ``dsn``, and errgate configured with it."""

    def start(dsn: str) -> tuple[MemoryTransport, web.Application]:
        return reporting(dsn), create_app(settings_for(database_url, sentry_dsn=dsn))

    return start


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    async with conftest.serving(app) as runner:
        yield conftest.url_of(runner)


def foreign_dsn() -> str:
    return f"http://glet_{secrets.token_hex(12)}@sentry.example.test/api/v4/error_tracking/collector/424242"


async def boom(request: web.Request) -> web.Response:
    body = await request.read()
    token = request.headers.get("PRIVATE-TOKEN")  # a local variable that must not be sent
    raise RuntimeError(f"boom with a body of {len(body)} bytes and {'a' if token else 'no'} token")


async def test_unhandled_exception_is_reported_without_secrets(
    pool: Any, reporting_app: ReportingApp
) -> None:
    transport, app = reporting_app(foreign_dsn())
    app.router.add_post("/boom", boom)
    secrets_sent = {
        "header": "glpat-" + secrets.token_hex(10), "bearer": "glpat-" + secrets.token_hex(10),
        "query": "glpat-" + secrets.token_hex(10), "key": "glet_" + secrets.token_hex(12),
        "query_key": "glet_" + secrets.token_hex(12), "cookie": secrets.token_hex(10),
        "body": "marker-" + secrets.token_hex(10),
    }
    async with serving(app) as url, aiohttp.ClientSession() as http:
        async with http.post(
            url + "/boom",
            params={"private_token": secrets_sent["query"], "sentry_key": secrets_sent["query_key"], "page": "2"},
            headers={
                "PRIVATE-TOKEN": secrets_sent["header"], "Authorization": f"Bearer {secrets_sent['bearer']}",
                "X-Sentry-Auth": f"Sentry sentry_key={secrets_sent['key']}", "Cookie": f"s={secrets_sent['cookie']}",
                "X-Request-Id": "selfreport-test-1",
            },
            data=secrets_sent["body"].encode(),
        ) as response:
            assert response.status == 500
            assert await response.json() == {"message": "500 Internal Server Error"}

    [event] = transport.events()
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["mechanism"] == {"type": "aiohttp", "handled": False}
    request = event["request"]
    assert request["method"] == "POST" and request["url"].endswith("/boom")
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["x-request-id"] == "selfreport-test-1"
    for name in ("private-token", "x-sentry-auth"):
        assert headers[name] == FILTERED, name
    assert "authorization" not in headers or headers["authorization"] in (FILTERED, "")
    assert "page=2" in request["query_string"] and "private_token=" in request["query_string"]
    assert "data" not in request and "env" not in request
    assert all("vars" not in frame for frame in exception["stacktrace"]["frames"])
    sent = transport.sent().decode()
    for what, value in secrets_sent.items():
        assert value not in sent, what


@pytest.fixture
async def own_and_other(start_server: Any, world: World) -> tuple[TrackedProject, TrackedProject]:
    """Two tracked projects, made through a plain errgate: one for errgate's own DSN, one for any other."""
    async with aiohttp.ClientSession() as http:
        api = Api(http, (await start_server()).url)
        return await tracked_project(api, world), await tracked_project(api, world)


async def test_failures_while_storing_errgates_own_reports_are_not_reported(
    own_and_other: tuple[TrackedProject, TrackedProject], reporting_app: ReportingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    own, other = own_and_other
    transport, app = reporting_app(own.dsn)
    async with serving(app) as url, aiohttp.ClientSession() as http:

        async def broken_write(event: PendingEvent) -> bool:
            logging.getLogger("errgate.writer").error("storage failed", extra={"events": 1})
            raise RuntimeError("storage is broken")

        monkeypatch.setattr(app[state.WRITER], "write", broken_write)

        async def send(project: TrackedProject, **how: Any) -> int:
            body = event_envelope(exception_event())
            if how.get("query"):
                target = collector_url(url, project.project_id) + f"?sentry_key={project.public_key}"
                status, _, _ = await post_envelope(http, target, body)
            else:
                status, _, _ = await post_envelope(
                    http, collector_url(url, project.project_id), body, sentry_auth(project.public_key)
                )
            return status

        # errgate's own key, in the header sentry-sdk sends and in the query string: nothing reported.
        assert await send(own) == 500
        assert await send(own, query=True) == 500
        assert transport.events() == []
        # Any other project: the same failure is reported (and its error log line too).
        assert await send(other) == 500
        events = transport.events()
        assert [e["exception"]["values"][0]["type"] for e in events if "exception" in e] == ["RuntimeError"]
        assert [e["logentry"]["message"] for e in events if "logentry" in e] == ["storage failed"]


async def test_writer_errors_about_errgates_own_project_are_not_reported(
    reporting: Callable[[str], MemoryTransport],
) -> None:
    dsn = "http://glet_0123456789abcdef@errgate.test:8080/api/v4/error_tracking/collector/31337"
    assert own_project_id(dsn) == "31337"
    transport = reporting(dsn)
    writer_log = logging.getLogger("errgate.writer")
    writer_log.error("event rejected by the database", extra={"project_id": 31337, "error": "CheckViolation"})
    assert transport.events() == []
    writer_log.error("event rejected by the database", extra={"project_id": 7, "error": "CheckViolation"})
    [event] = transport.events()
    assert event["logentry"]["message"] == "event rejected by the database"
    assert event["extra"]["project_id"] == 7


async def test_sentry_sdk_and_its_transport_never_create_events(reporting: Callable[[str], MemoryTransport]) -> None:
    transport = reporting(foreign_dsn())
    for name in ("sentry_sdk.errors", "sentry_sdk.transport", "urllib3.connectionpool", "urllib3.util.retry"):
        logging.getLogger(name).error("could not send the event")
    # Already reported by the self-reporting middleware.
    logging.getLogger("errgate.errors").error("unhandled error")
    assert transport.events() == []
    logging.getLogger("errgate.ingest").error("partition maintenance failed")
    assert len(transport.events()) == 1
    options = sentry_sdk.get_client().options
    assert sentry_sdk.get_client().should_send_default_pii() is False
    assert options["max_request_body_size"] == "never"
    assert options["include_local_variables"] is False
    # Sessions and client reports would be sent on every request (or dropped event) to errgate itself.
    assert options["auto_session_tracking"] is False and options["send_client_reports"] is False
    assert {type(i).__name__ for i in sentry_sdk.get_client().integrations.values()} >= {
        "AioHttpIntegration", "LoggingIntegration"
    }


async def test_a_client_that_disconnects_mid_body_is_not_reported(
    own_and_other: tuple[TrackedProject, TrackedProject], reporting_app: ReportingApp, caplog: pytest.LogCaptureFixture
) -> None:
    _, other = own_and_other
    transport, app = reporting_app(foreign_dsn())
    caplog.set_level(logging.INFO)
    async with serving(app) as url:
        caplog.clear()
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST /api/{other.project_id}/envelope/ HTTP/1.1\r\nHost: errgate\r\n"
            f"X-Sentry-Auth: Sentry sentry_key={other.public_key}\r\nContent-Length: 100000\r\n\r\n{{}}\n".encode()
        )
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()
        await writer.wait_closed()
        for _ in range(100):
            if any(r.name == "errgate.access" for r in caplog.records):
                break
            await asyncio.sleep(0.01)
    access = [r for r in caplog.records if r.name == "errgate.access"]
    assert [r.status for r in access] == [499]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert transport.events() == []


async def test_a_connection_reset_of_errgates_own_making_is_reported(
    pool: Any, reporting_app: ReportingApp
) -> None:
    """ConnectionResetError also comes from the database driver; only a vanished client excuses it."""

    async def database_reset(request: web.Request) -> web.Response:
        raise ConnectionResetError(104, "Connection reset by peer")

    transport, app = reporting_app(foreign_dsn())
    app.router.add_get("/reset", database_reset)
    async with serving(app) as url, aiohttp.ClientSession() as http:
        async with http.get(url + "/reset") as response:
            assert response.status == 500
    [event] = transport.events()
    assert event["exception"]["values"][0]["type"] == "ConnectionResetError"
