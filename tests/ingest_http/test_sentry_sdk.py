"""The real sentry-python SDK against the live errgate on loopback.

The SDK is synchronous (a background worker thread), so its calls run in ``asyncio.to_thread``
while the server keeps serving on the test's event loop. Every test builds its own
``sentry_sdk.Client`` bound to a forked isolation scope and closes it, so nothing leaks
between tests (no global ``sentry_sdk.init``). A recording transport keeps what was sent
(Content-Encoding, item types) and what errgate answered.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

import orjson
import pytest
import sentry_sdk
from sentry_sdk.transport import HttpTransport

from tests.ingest_http.helpers import counts, errors, event_row, events, items_received, payload_of

MODULE = __name__
RELEASE = "errgate-tests@1.0.0"


@pytest.fixture(autouse=True)
async def no_leaked_sdk_threads():
    """Every client is closed: its worker, flusher and monitor threads end with the test."""
    before = set(threading.enumerate())
    yield
    for _ in range(100):
        leaked = [t for t in set(threading.enumerate()) - before if not t.name.startswith("asyncio_")]
        if not leaked:
            break
        await asyncio.sleep(0.02)
    assert not leaked, [t.name for t in leaked]
    assert not sentry_sdk.get_client().is_active()  # nothing global was initialised


class RecordingTransport(HttpTransport):
    """sentry-python's own HTTP transport, recording each request and errgate's answer."""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.exchanges: list[dict[str, Any]] = []
        self._item_types: list[str] = []
        self._lock = threading.Lock()

    def _send_envelope(self, envelope: Any) -> None:
        self._item_types = [item.headers.get("type") for item in envelope.items]
        super()._send_envelope(envelope)

    def _request(self, method: str, endpoint_type: Any, body: Any, headers: Any) -> Any:
        response = super()._request(method, endpoint_type, body, headers)
        with self._lock:
            self.exchanges.append({
                "url": self._auth.get_api_url(endpoint_type),
                "content_encoding": headers.get("Content-Encoding"),
                "auth": headers.get("X-Sentry-Auth", ""),
                "items": list(self._item_types),
                "status": response.status,
                "body": orjson.loads(response.data) if response.data else None,
                "cors": response.headers.get("Access-Control-Allow-Origin"),
            })
        return response


def run_sdk(dsn: str, actions: Callable[[], Any], **options: Any) -> tuple[Any, RecordingTransport, str | None]:
    """In the calling (worker) thread: a client for ``dsn``, ``actions()`` in its scope, flush, close.

    Returns what ``actions`` returned, the transport, and the compression algorithm it chose.
    """
    client = sentry_sdk.Client(
        dsn,
        transport=RecordingTransport,
        default_integrations=False,
        auto_enabling_integrations=False,
        release=RELEASE,
        environment="staging",
        server_name="test-host",
        # The backpressure monitor's daemon thread sleeps 10 s before it sees close(): keep it off
        # so that no thread outlives its test.
        enable_backpressure_handling=False,
        **options,
    )
    transport = client.transport
    assert isinstance(transport, RecordingTransport)
    algo = transport._compression_algo
    try:
        with sentry_sdk.isolation_scope() as scope:
            scope.set_client(client)
            result = actions()
        client.flush(timeout=10)
    finally:
        client.close(timeout=10)
    return result, transport, algo


async def sdk(dsn: str, actions: Callable[[], Any], **options: Any) -> tuple[Any, RecordingTransport, str | None]:
    return await asyncio.to_thread(run_sdk, dsn, actions, **options)


def assert_all_accepted(transport: RecordingTransport) -> None:
    assert transport.exchanges, "the SDK sent nothing"
    for exchange in transport.exchanges:
        assert exchange["status"] == 200, exchange
        assert exchange["cors"] == "*"
        assert isinstance(exchange["body"], dict), exchange
        assert "/api/v4/error_tracking/collector/api/" in exchange["url"] and exchange["url"].endswith("/envelope/")
        assert exchange["auth"].startswith("Sentry sentry_key=")


# --- code that fails, as an application's would -------------------------------------------------


def crash_in_checkout(cart: int) -> None:
    raise ValueError(f"cart {cart} is empty")


def checkout(cart: int) -> str | None:
    try:
        crash_in_checkout(cart)
    except ValueError:
        return sentry_sdk.capture_exception()
    return None


def crash_in_payment() -> None:
    raise ValueError("cart 7 is empty")  # same type and text, another crash site


def pay() -> str | None:
    try:
        crash_in_payment()
    except ValueError:
        return sentry_sdk.capture_exception()
    return None


COMPRESSION = {
    "gzip": {"_experiments": {"transport_compression_algo": "gzip"}},
    "br": {},  # sentry-python's default when the brotli module is importable
}


@pytest.mark.parametrize("algo", list(COMPRESSION))
async def test_capture_exception(server, pool, tracked, algo) -> None:
    def actions() -> list[str | None]:
        return [checkout(1), checkout(2), pay()]

    ids, transport, chosen = await sdk(tracked.dsn, actions, **COMPRESSION[algo])
    assert chosen == algo
    assert_all_accepted(transport)
    sent = [x for x in transport.exchanges if "event" in x["items"]]
    assert len(sent) == 3
    assert {x["content_encoding"] for x in sent} == {algo}
    assert [x["body"] for x in sent] == [{"id": event_id} for event_id in ids]

    assert await counts(pool, tracked.project_id) == (2, 3)
    stored = {row["event_id"].hex for row in await events(pool, tracked.project_id)}
    assert stored == set(ids)
    by_actor = {e["actor"]: e for e in await errors(pool, tracked.project_id)}
    assert set(by_actor) == {f"crash_in_checkout({MODULE})", f"crash_in_payment({MODULE})"}
    checkout_error = by_actor[f"crash_in_checkout({MODULE})"]
    assert (checkout_error["name"], checkout_error["description"], checkout_error["platform"]) == (
        "ValueError", "cart 1 is empty", "python"
    )
    assert (checkout_error["status"], checkout_error["events_count"]) == ("unresolved", 2)
    assert by_actor[f"crash_in_payment({MODULE})"]["events_count"] == 1

    row = await event_row(pool, tracked.project_id, ids[0])
    assert (row["level"], row["environment"], row["release"]) == ("error", "staging", RELEASE)
    assert row["error_id"] == checkout_error["id"]
    payload = payload_of(row)
    assert payload["event_id"] == ids[0]
    assert payload["server_name"] == "test-host"
    [exception] = payload["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ValueError", "cart 1 is empty")
    assert [f["function"] for f in exception["stacktrace"]["frames"]][-2:] == ["checkout", "crash_in_checkout"]
    assert abs((row["received_at"] - row["occurred_at"]).total_seconds()) < 30


async def test_capture_message(server, pool, tracked) -> None:
    def actions() -> list[str | None]:
        return [
            sentry_sdk.capture_message("user 42 logged in"),
            sentry_sdk.capture_message("user 43 logged in", level="warning"),
            sentry_sdk.capture_message("disk almost full", level="info"),
        ]

    ids, transport, _ = await sdk(tracked.dsn, actions)
    assert_all_accepted(transport)
    assert await counts(pool, tracked.project_id) == (2, 3)
    by_name = {e["name"]: e for e in await errors(pool, tracked.project_id)}
    assert set(by_name) == {"user 42 logged in", "disk almost full"}
    logged_in = by_name["user 42 logged in"]
    assert (logged_in["events_count"], logged_in["platform"], logged_in["description"]) == (2, "python", "user 42 logged in")
    levels = {row["event_id"].hex: row["level"] for row in await events(pool, tracked.project_id)}
    assert levels == {ids[0]: "info", ids[1]: "warning", ids[2]: "info"}


async def test_transaction_is_accepted_and_not_stored(server, pool, tracked) -> None:
    def actions() -> None:
        with sentry_sdk.start_transaction(name="/checkout", op="http.server"):
            with sentry_sdk.start_span(op="db", name="select cart"):
                pass

    before = items_received(server, "transaction")
    _, transport, _ = await sdk(tracked.dsn, actions, traces_sample_rate=1.0)
    assert_all_accepted(transport)
    [exchange] = [x for x in transport.exchanges if "transaction" in x["items"]]
    assert set(exchange["body"]) == {"id"} and len(exchange["body"]["id"]) == 32
    assert items_received(server, "transaction") == before + 1
    assert await counts(pool, tracked.project_id) == (0, 0)


@pytest.mark.parametrize("mode,item_type", [("application", "session"), ("request", "sessions")])
async def test_sessions_are_accepted_and_not_stored(server, pool, tracked, mode, item_type) -> None:
    def actions() -> None:
        for _ in range(2):
            sentry_sdk.get_isolation_scope().start_session(session_mode=mode)
            sentry_sdk.get_isolation_scope().end_session()

    before = items_received(server, item_type)
    _, transport, _ = await sdk(tracked.dsn, actions)
    assert_all_accepted(transport)
    session_exchanges = [x for x in transport.exchanges if item_type in x["items"]]
    assert session_exchanges, transport.exchanges
    assert all(x["body"] == {} for x in session_exchanges)
    assert items_received(server, item_type) >= before + 1
    assert await counts(pool, tracked.project_id) == (0, 0)


async def test_session_with_an_error(server, pool, tracked) -> None:
    """A session and an error in one run: the error is stored, the session update is accepted."""
    def actions() -> str | None:
        sentry_sdk.start_session()
        event_id = checkout(5)
        sentry_sdk.end_session()
        return event_id

    event_id, transport, _ = await sdk(tracked.dsn, actions)
    assert_all_accepted(transport)
    kinds = {t for x in transport.exchanges for t in x["items"]}
    assert {"event", "session"} <= kinds
    assert await counts(pool, tracked.project_id) == (1, 1)
    assert await event_row(pool, tracked.project_id, event_id) is not None
