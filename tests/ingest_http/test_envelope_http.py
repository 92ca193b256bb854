"""Hand-built envelopes over real HTTP: routes, encodings, limits, framing, item types, hazards, storage."""

from __future__ import annotations

import asyncio
import base64
import gzip
import time
import uuid
import zlib

import brotli
import orjson
import pytest
import zstandard

from tests.conftest import Api
from tests.ingest_http.helpers import (
    NOT_STORED_TYPES,
    PREFIXES,
    REJECTED,
    assert_accepted,
    assert_problem,
    collector_url,
    counts,
    envelope,
    errors,
    event_envelope,
    event_row,
    events,
    events_counted,
    exception_event,
    item,
    items_received,
    message_event,
    new_event_id,
    payload_of,
    post_envelope,
    sentry_auth,
    tracked_project,
)

MiB = 1024 * 1024


async def send(http, server, tracked, body, *, endpoint="envelope", headers=None, **url):
    all_headers = {**sentry_auth(tracked.public_key), **(headers or {})}
    return await post_envelope(http, collector_url(server.url, tracked.project_id, endpoint=endpoint, **url), body, all_headers)


async def assert_stored_once(pool, tracked, event_id):
    assert await counts(pool, tracked.project_id) == (1, 1)
    row = await event_row(pool, tracked.project_id, event_id)
    assert row is not None and row["event_id"].hex == event_id
    return row


# --- routes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", [True, False], ids=["slash", "no-slash"])
@pytest.mark.parametrize("prefix", PREFIXES, ids=["gitlab", "new-gitlab", "bare"])
async def test_envelope_under_every_dsn_prefix(server, http, pool, tracked, prefix, slash) -> None:
    event = exception_event()
    status, body, _ = await send(http, server, tracked, event_envelope(event), prefix=prefix, slash=slash)
    assert_accepted(status, body, event["event_id"])
    await assert_stored_once(pool, tracked, event["event_id"])


@pytest.mark.parametrize("slash", [True, False], ids=["slash", "no-slash"])
@pytest.mark.parametrize("prefix", PREFIXES, ids=["gitlab", "new-gitlab", "bare"])
async def test_store_under_every_dsn_prefix(server, http, pool, tracked, prefix, slash) -> None:
    event = exception_event()
    status, body, _ = await send(
        http, server, tracked, orjson.dumps(event), endpoint="store", prefix=prefix, slash=slash,
        headers={"Content-Type": "application/json"},
    )
    assert_accepted(status, body, event["event_id"])
    await assert_stored_once(pool, tracked, event["event_id"])


async def test_project_id_of_any_length_is_refused_not_500(server, http, pool, tracked) -> None:
    """Ids beyond bigint and beyond Python's int-from-str digit limit get the one refusal body."""
    for project_id in ("9" * 19, "9" * 40, "9" * 5000, "0", "0" * 30 + "1", "\uff15", "\u0663"):
        for endpoint in ("envelope", "store"):
            status, body, _ = await post_envelope(
                http, collector_url(server.url, project_id, endpoint=endpoint), event_envelope(exception_event()),
                sentry_auth(tracked.public_key),
            )
            assert (status, body) == (403, REJECTED), (project_id[:20], endpoint)
    assert await counts(pool, tracked.project_id) == (0, 0)


# --- Content-Encoding -------------------------------------------------------------------------


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


ENCODINGS = {
    "gzip": ("gzip", gzip.compress),
    "x-gzip": ("x-gzip", gzip.compress),
    "deflate-zlib": ("deflate", zlib.compress),
    "deflate-raw": ("deflate", _raw_deflate),
    "br": ("br", brotli.compress),
    "zstd": ("zstd", lambda data: zstandard.ZstdCompressor().compress(data)),
    "identity": ("identity", lambda data: data),
    "empty": ("", lambda data: data),
    "UTF-8": ("UTF-8", lambda data: data),
    "upper-GZIP": ("GZIP", gzip.compress),
}


@pytest.mark.parametrize("case", list(ENCODINGS))
async def test_content_encodings_are_decoded(server, http, pool, tracked, case) -> None:
    header, compress = ENCODINGS[case]
    event = exception_event()
    status, body, _ = await send(
        http, server, tracked, compress(event_envelope(event)), headers={"Content-Encoding": header}
    )
    assert_accepted(status, body, event["event_id"])
    row = await assert_stored_once(pool, tracked, event["event_id"])
    assert payload_of(row)["exception"]["values"][0]["value"] == event["exception"]["values"][0]["value"]


@pytest.mark.parametrize("encoding", ["compress", "bzip2", "gzip, compress"])
async def test_unknown_content_encoding_is_415(server, http, pool, tracked, encoding) -> None:
    status, body, headers = await send(
        http, server, tracked, event_envelope(exception_event()), headers={"Content-Encoding": encoding}
    )
    assert_problem(status, body, 415)
    assert "compress" in body["causes"][0] or "bzip2" in body["causes"][0]
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert await counts(pool, tracked.project_id) == (0, 0)


async def test_corrupt_gzip_is_400(server, http, pool, tracked) -> None:
    data = gzip.compress(event_envelope(exception_event()))
    for broken in (data[: len(data) // 2], b"\x1f\x8b" + b"garbage" * 10):
        status, body, _ = await send(http, server, tracked, broken, headers={"Content-Encoding": "gzip"})
        assert_problem(status, body, 400)
    assert await counts(pool, tracked.project_id) == (0, 0)


BOMBS = {
    "gzip": lambda data: gzip.compress(data, 9),
    "br": lambda data: brotli.compress(data, quality=5),
    "zstd": lambda data: zstandard.ZstdCompressor(level=3).compress(data),
    "deflate": lambda data: zlib.compress(data, 9),
}


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    zeros = b"0" * (50 * MiB)  # inflates 50 MiB; the server allows 1 MiB decoded
    return {name: compress(zeros) for name, compress in BOMBS.items()}


@pytest.mark.parametrize("encoding", list(BOMBS))
async def test_compression_bomb_is_413_quickly(start_server, api, world, http, pool, bombs, encoding) -> None:
    server = await start_server(max_envelope_bytes=1 * MiB)
    tracked = await tracked_project(Api(api.session, server.url), world)
    bomb = bombs[encoding]
    assert len(bomb) < 256 * 1024
    started = time.monotonic()
    status, body, _ = await send(http, server, tracked, bomb, headers={"Content-Encoding": encoding})
    elapsed = time.monotonic() - started
    assert_problem(status, body, 413)
    assert "1048576" in body["causes"][0]
    assert elapsed < 2.0, elapsed
    assert await counts(pool, tracked.project_id) == (0, 0)


async def test_body_over_max_body_bytes_is_413(start_server, api, world, http, pool) -> None:
    server = await start_server(max_body_bytes=64 * 1024)
    tracked = await tracked_project(Api(api.session, server.url), world)
    padding = "x" * (100 * 1024)
    event = exception_event(extra={"padding": padding})
    status, body, _ = await send(http, server, tracked, event_envelope(event))
    assert_problem(status, body, 413)
    # Compressed under the limit, the same envelope is fine (the limit is on the bytes sent).
    status, body, _ = await send(http, server, tracked, gzip.compress(event_envelope(event)),
                                 headers={"Content-Encoding": "gzip"})
    assert_accepted(status, body, event["event_id"])
    assert await counts(pool, tracked.project_id) == (1, 1)


async def test_event_item_over_max_event_bytes_is_413(start_server, api, world, http, pool) -> None:
    server = await start_server(max_event_bytes=8 * 1024)
    tracked = await tracked_project(Api(api.session, server.url), world)
    big = exception_event(extra={"padding": "x" * (9 * 1024)})
    for body_bytes in (
        event_envelope(big),  # with length
        envelope(item("event", big, length=False), headers={"event_id": big["event_id"]}),  # without
    ):
        status, body, _ = await send(http, server, tracked, body_bytes)
        assert_problem(status, body, 413)
    status, body, _ = await send(http, server, tracked, orjson.dumps(big), endpoint="store")
    assert_problem(status, body, 413)
    # Attachments are not limited by the event limit.
    small = exception_event()
    status, body, _ = await send(http, server, tracked, envelope(
        item("event", small), item("attachment", b"a" * (9 * 1024), filename="big.txt"),
        headers={"event_id": small["event_id"]},
    ))
    assert_accepted(status, body, small["event_id"])
    assert await counts(pool, tracked.project_id) == (1, 1)


# --- Content-Type and transfer ---------------------------------------------------------------


async def test_no_content_type(server, http, pool, tracked) -> None:
    event = exception_event()
    status, body, _ = await post_envelope(
        http, collector_url(server.url, tracked.project_id), event_envelope(event),
        sentry_auth(tracked.public_key), skip_auto_headers=("Content-Type",),
    )
    assert_accepted(status, body, event["event_id"])
    await assert_stored_once(pool, tracked, event["event_id"])


@pytest.mark.parametrize("content_type", ["text/plain;charset=UTF-8", "application/x-sentry-envelope",
                                          "application/json", "multipart/form-data; boundary=x"])
async def test_any_content_type(server, http, pool, tracked, content_type) -> None:
    event = exception_event()
    status, body, _ = await send(http, server, tracked, event_envelope(event), headers={"Content-Type": content_type})
    assert_accepted(status, body, event["event_id"])
    await assert_stored_once(pool, tracked, event["event_id"])


async def test_chunked_body(server, http, pool, tracked) -> None:
    """@sentry/node: chunked, no Content-Type, no lengths, no final newline, key in the query."""
    event = exception_event()
    data = envelope(item("event", event, length=False), headers={"event_id": event["event_id"]}, final_newline=False)

    async def chunks():
        for start in range(0, len(data), 7):
            yield data[start : start + 7]
            await asyncio.sleep(0)

    url = collector_url(server.url, tracked.project_id) + f"?sentry_version=7&sentry_key={tracked.public_key}"
    async with http.post(url, data=chunks(), skip_auto_headers=("Content-Type",)) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert resp.status == 200, await resp.text()
        assert_accepted(resp.status, await resp.json(), event["event_id"])
    await assert_stored_once(pool, tracked, event["event_id"])


async def test_chunked_gzip_body(server, http, pool, tracked) -> None:
    event = exception_event(extra={"padding": "p" * 40_000})
    data = gzip.compress(event_envelope(event))

    async def chunks():
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    status, body, _ = await send(http, server, tracked, chunks(), headers={"Content-Encoding": "gzip"})
    assert_accepted(status, body, event["event_id"])
    await assert_stored_once(pool, tracked, event["event_id"])


# --- envelope framing -------------------------------------------------------------------------


def _framings(event: dict) -> dict[str, bytes]:
    eid = event["event_id"]
    return {
        "with-length": envelope(item("event", event), headers={"event_id": eid}),
        "without-length": envelope(item("event", event, length=False), headers={"event_id": eid}),
        "no-final-newline": envelope(item("event", event), headers={"event_id": eid}, final_newline=False),
        "no-length-no-final-newline": envelope(
            item("event", event, length=False), headers={"event_id": eid}, final_newline=False
        ),
        "zero-length-item-first": envelope(
            item("attachment", b"", filename="empty.txt"), item("event", event), headers={"event_id": eid}
        ),
        "zero-length-item-last": envelope(
            item("event", event), item("attachment", b"", filename="empty.txt"), headers={"event_id": eid},
        ),
        "item-header-at-end": envelope(item("event", event), headers={"event_id": eid})
        + orjson.dumps({"type": "attachment"}),
        "item-header-at-end-with-newline": envelope(item("event", event), headers={"event_id": eid})
        + orjson.dumps({"type": "client_report"}) + b"\n",
        "dashed-event-id": envelope(item("event", {**event, "event_id": str(uuid.UUID(eid))}),
                                    headers={"event_id": str(uuid.UUID(eid)).upper()}),
        "unknown-types-and-keys": envelope(
            item("fancy_new_thing", b"\x00\x01binary\n", some_header=[1, 2]),
            item("event", event, content_type="application/json", brand_new_key={"x": 1}),
            item("replay_recording", b"{}"),
            headers={"event_id": eid, "sdk": {"name": "sentry.future", "version": "99"}, "trace": {"x": 1},
                     "unknown_header_key": True, "sent_at": "2030-01-01T00:00:00Z"},
        ),
        "crlf-in-payload-with-length": envelope(
            item("attachment", b"line1\r\nline2\r\n"), item("event", event), headers={"event_id": eid}
        ),
        "event-id-only-in-payload": envelope(item("event", event)),
    }


FRAMINGS = list(_framings(exception_event()))


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_envelope_framings_are_accepted(server, http, pool, tracked, framing) -> None:
    event = exception_event()
    status, body, _ = await send(http, server, tracked, _framings(event)[framing])
    assert_accepted(status, body, event["event_id"])
    row = await assert_stored_once(pool, tracked, event["event_id"])
    assert payload_of(row)["event_id"] == event["event_id"]  # 32 hex, also when sent dashed


async def test_event_without_any_id_gets_one(server, http, pool, tracked) -> None:
    event = exception_event()
    del event["event_id"]
    status, body, _ = await send(http, server, tracked, envelope(item("event", event)))
    assert_accepted(status, body)
    row = await assert_stored_once(pool, tracked, body["id"])
    assert payload_of(row)["event_id"] == body["id"]


async def test_empty_event_id_is_replaced(server, http, pool, tracked) -> None:
    event = exception_event(event_id="")
    status, body, _ = await send(http, server, tracked, envelope(item("event", event), headers={"event_id": ""}))
    assert_accepted(status, body)
    await assert_stored_once(pool, tracked, body["id"])


async def test_envelope_without_items_answers_empty_object(server, http, pool, tracked) -> None:
    for data in (b"{}", b"{}\n", b'{"sent_at":"2024-01-01T00:00:00Z"}\n'):
        status, body, _ = await send(http, server, tracked, data)
        assert_accepted(status, body, "")
    status, body, _ = await send(http, server, tracked, b'{"event_id":"%s"}\n' % new_event_id().encode())
    assert_accepted(status, body)
    assert await counts(pool, tracked.project_id) == (0, 0)


@pytest.mark.parametrize("item_type", NOT_STORED_TYPES + ("user_report", "profile", "statsd", "otel_span", "brand_new"))
async def test_non_event_items_are_accepted_and_not_stored(server, http, pool, tracked, item_type) -> None:
    payloads = {
        "transaction": {"type": "transaction", "transaction": "/checkout", "start_timestamp": time.time() - 1,
                        "timestamp": time.time(), "contexts": {"trace": {"trace_id": uuid.uuid4().hex,
                                                                         "span_id": "a" * 16}}, "spans": []},
        "session": {"sid": str(uuid.uuid4()), "init": True, "started": "2024-01-01T00:00:00Z", "status": "ok",
                    "attrs": {"release": "shop@1"}},
        "sessions": {"aggregates": [{"started": "2024-01-01T00:00:00Z", "exited": 3}], "attrs": {"release": "shop@1"}},
        "client_report": {"timestamp": time.time(), "discarded_events": [{"reason": "queue_overflow",
                                                                          "category": "error", "quantity": 1}]},
        "check_in": {"check_in_id": uuid.uuid4().hex, "monitor_slug": "nightly", "status": "ok"},
        "log": {"items": [{"timestamp": time.time(), "level": "info", "body": "hello"}]},
        "span": {"span_id": "b" * 16, "trace_id": uuid.uuid4().hex, "op": "db"},
    }
    counted_as = item_type if item_type != "brand_new" else "other"
    before = items_received(server, counted_as)
    extra = {"filename": "a.txt"} if item_type == "attachment" else {}
    for with_id in (True, False):
        event_id = new_event_id()
        data = envelope(
            item(item_type, payloads.get(item_type, b"opaque \x00 bytes"), **extra),
            headers={"event_id": event_id} if with_id else {},
        )
        status, body, _ = await send(http, server, tracked, data)
        assert_accepted(status, body, event_id if with_id else "")  # the header's id echoed, else {}
    assert await counts(pool, tracked.project_id) == (0, 0)
    assert items_received(server, counted_as) == before + 2


async def test_event_with_other_items_stores_only_the_event(server, http, pool, tracked) -> None:
    event = exception_event()
    data = envelope(
        item("session", {"sid": str(uuid.uuid4()), "status": "ok", "attrs": {"release": "x"}}),
        item("event", event),
        item("attachment", b"log file", filename="app.log"),
        item("client_report", {"discarded_events": []}),
        headers={"event_id": event["event_id"]},
    )
    status, body, _ = await send(http, server, tracked, data)
    assert_accepted(status, body, event["event_id"])
    await assert_stored_once(pool, tracked, event["event_id"])


# --- event shapes ----------------------------------------------------------------------------


async def test_message_only_event(server, http, pool, tracked) -> None:
    event = message_event("Something went wrong: order 991 not found", level="warning", environment="staging")
    status, body, _ = await send(http, server, tracked, event_envelope(event))
    assert_accepted(status, body, event["event_id"])
    row = await assert_stored_once(pool, tracked, event["event_id"])
    assert (row["level"], row["environment"], row["release"]) == ("warning", "staging", None)
    (error,) = await errors(pool, tracked.project_id)
    assert error["name"] == "Something went wrong: order 991 not found"
    assert error["description"] == "Something went wrong: order 991 not found"
    assert (error["actor"], error["platform"], error["events_count"]) == ("", "python", 1)


async def test_logentry_event(server, http, pool, tracked) -> None:
    event = message_event(logentry={"message": "user %s logged in", "params": ["alice"]})
    del event["message"]
    status, body, _ = await send(http, server, tracked, event_envelope(event))
    assert_accepted(status, body, event["event_id"])
    await assert_stored_once(pool, tracked, event["event_id"])
    (error,) = await errors(pool, tracked.project_id)
    assert error["name"] == "user alice logged in"


async def test_exception_as_bare_list(server, http, pool, tracked) -> None:
    event = exception_event("KeyError", "'sku'")
    event["exception"] = event["exception"]["values"]
    status, body, _ = await send(http, server, tracked, event_envelope(event))
    assert_accepted(status, body, event["event_id"])
    await assert_stored_once(pool, tracked, event["event_id"])
    (error,) = await errors(pool, tracked.project_id)
    assert (error["name"], error["description"], error["actor"]) == ("KeyError", "'sku'", "checkout(shop.views)")


async def test_chained_exceptions_primary_is_last(server, http, pool, tracked) -> None:
    event = exception_event("RuntimeError", "payment failed")
    cause = {"type": "ConnectionError", "value": "timeout after 30s"}
    event["exception"]["values"].insert(0, cause)
    status, body, _ = await send(http, server, tracked, event_envelope(event))
    assert_accepted(status, body, event["event_id"])
    (error,) = await errors(pool, tracked.project_id)
    assert (error["name"], error["description"]) == ("RuntimeError", "payment failed")


async def test_columns_of_an_exception_event(server, http, pool, tracked) -> None:
    event = exception_event(level="fatal", environment="production", release="shop@1.2.3")
    status, body, _ = await send(http, server, tracked, event_envelope(event))
    assert_accepted(status, body, event["event_id"])
    row = await assert_stored_once(pool, tracked, event["event_id"])
    assert (row["level"], row["environment"], row["release"]) == ("fatal", "production", "shop@1.2.3")
    assert abs(row["occurred_at"].timestamp() - event["timestamp"]) < 0.001
    assert payload_of(row)["exception"] == event["exception"]
    (error,) = await errors(pool, tracked.project_id)
    assert error["id"] == row["error_id"]
    assert (error["name"], error["description"], error["actor"], error["platform"]) == (
        "ValueError", "cart 17 is empty", "checkout(shop.views)", "python"
    )
    assert (error["status"], error["events_count"]) == ("unresolved", 1)
    assert error["first_seen_at"] == error["last_seen_at"] == row["occurred_at"]


async def test_transaction_name_is_the_actor(server, http, pool, tracked) -> None:
    event = exception_event(transaction="/api/orders/{id}")
    status, body, _ = await send(http, server, tracked, event_envelope(event))
    assert_accepted(status, body, event["event_id"])
    (error,) = await errors(pool, tracked.project_id)
    assert error["actor"] == "/api/orders/{id}"


# --- the store endpoint ----------------------------------------------------------------------


def _store_bodies(event: dict) -> dict[str, bytes]:
    raw = orjson.dumps(event)
    return {
        "json": raw,
        "base64": base64.b64encode(raw),
        "base64-urlsafe-unpadded": base64.urlsafe_b64encode(raw).rstrip(b"="),
        "base64-zlib": base64.b64encode(zlib.compress(raw)),
        "base64-gzip": base64.b64encode(gzip.compress(raw)),
    }


@pytest.mark.parametrize("form", list(_store_bodies({})))
async def test_store_body_forms(server, http, pool, tracked, form) -> None:
    event = exception_event()
    status, body, _ = await send(http, server, tracked, _store_bodies(event)[form], endpoint="store")
    assert_accepted(status, body, event["event_id"])
    row = await assert_stored_once(pool, tracked, event["event_id"])
    assert payload_of(row)["exception"] == event["exception"]


async def test_store_with_gzip_content_encoding(server, http, pool, tracked) -> None:
    event = message_event()
    status, body, _ = await send(http, server, tracked, gzip.compress(orjson.dumps(event)), endpoint="store",
                                 headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert_accepted(status, body, event["event_id"])
    await assert_stored_once(pool, tracked, event["event_id"])


@pytest.mark.parametrize("data", [b"", b"   ", b"not json, not base64!", b"[1, 2]", b"{", b"null"])
async def test_store_malformed_is_400(server, http, pool, tracked, data) -> None:
    status, body, _ = await send(http, server, tracked, data, endpoint="store")
    assert_problem(status, body, 400)
    assert await counts(pool, tracked.project_id) == (0, 0)


# --- malformed input and hazards --------------------------------------------------------------


def _deep(levels: int) -> bytes:
    return b'{"message":"deep","extra":' + b'{"a":' * (levels - 1) + b"1" + b"}" * (levels - 1) + b"}"


MALFORMED = {
    "empty-body": b"",
    "whitespace-body": b" \n\n ",
    "bad-header-json": b"{not json}\n" + item("event", {"message": "x"}),
    "header-not-object": b'["event_id"]\n',
    "bad-item-header-json": b"{}\n{type: event}\n{}\n",
    "item-header-not-object": b'{}\n"event"\n{}\n',
    "item-without-type": b'{}\n{"length":2}\n{}\n',
    "item-type-not-string": b'{}\n{"type":1,"length":2}\n{}\n',
    "length-past-end": b'{}\n{"type":"event","length":999}\n{"message":"x"}\n',
    "length-negative": b'{}\n{"type":"event","length":-1}\n{}\n',
    "length-not-int": b'{}\n{"type":"event","length":"2"}\n{}\n',
    "length-too-short": b'{}\n{"type":"event","length":3}\n{"message":"x"}\n',
    "bad-header-event-id": b'{"event_id":"not-an-id"}\n',
    "header-event-id-number": b'{"event_id":12345}\n',
    "two-event-items": b"{}\n" + item("event", {"message": "a"}) + b"\n" + item("event", {"message": "b"}) + b"\n",
    "invalid-utf8-in-event": b"{}\n" + item("event", b'{"message":"caf\xc3\x28 \xff\xfe"}') + b"\n",
    "event-not-json": b"{}\n" + item("event", b"<html>oops</html>") + b"\n",
    "top-level-array": b"{}\n" + item("event", b'[{"message":"x"}]') + b"\n",
    "top-level-string": b"{}\n" + item("event", b'"hello"') + b"\n",
    "deep-nesting-200": b"{}\n" + item("event", _deep(200)) + b"\n",
    "deep-nesting-arrays-5000": b"{}\n" + item("event", b'{"extra":' + b"[" * 5000 + b"]" * 5000 + b"}") + b"\n",
    "bad-payload-event-id": b"{}\n" + item("event", {"event_id": "zzz", "message": "x"}) + b"\n",
    "empty-event-item": b"{}\n" + item("event", b"") + b"\n",
    "binary-garbage": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_envelopes_are_400_with_detail_and_causes(server, http, pool, tracked, case) -> None:
    status, body, headers = await send(http, server, tracked, MALFORMED[case])
    assert_problem(status, body, 400)
    assert body["causes"], body
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert await counts(pool, tracked.project_id) == (0, 0)


async def test_deep_nesting_within_limit_is_accepted(server, http, pool, tracked) -> None:
    event_id = new_event_id()
    data = envelope(item("event", _deep(100)), headers={"event_id": event_id})
    status, body, _ = await send(http, server, tracked, data)
    assert_accepted(status, body, event_id)
    await assert_stored_once(pool, tracked, event_id)


async def test_nan_and_infinity_become_null(server, http, pool, tracked) -> None:
    event_id = new_event_id()
    payload = b'{"message":"old raven","extra":{"ratio":NaN,"max":Infinity,"min":-Infinity,"ok":1.5}}'
    status, body, _ = await send(http, server, tracked, envelope(item("event", payload), headers={"event_id": event_id}))
    assert_accepted(status, body, event_id)
    row = await assert_stored_once(pool, tracked, event_id)
    assert payload_of(row)["extra"] == {"ratio": None, "max": None, "min": None, "ok": 1.5}


async def test_lone_surrogate_escape_is_replaced(server, http, pool, tracked) -> None:
    event_id = new_event_id()
    payload = b'{"message":"bad \\ud800 half","exception":{"values":[{"type":"E\\udc00rr","value":"v\\ud83d"}]},' \
              b'"extra":{"\\udfff":"key"}}'
    status, body, _ = await send(http, server, tracked, envelope(item("event", payload), headers={"event_id": event_id}))
    assert_accepted(status, body, event_id)
    row = await assert_stored_once(pool, tracked, event_id)
    stored = payload_of(row)
    assert stored["message"] == "bad \ufffd half"
    assert stored["extra"] == {"\ufffd": "key"}
    (error,) = await errors(pool, tracked.project_id)
    assert (error["name"], error["description"]) == ("E\ufffdrr", "v\ufffd")


async def test_nul_characters_are_stored_without_error(server, http, pool, tracked) -> None:
    event = exception_event("Nul\u0000Error", "value with \u0000 inside", environment="prod\u0000", release="r\u00001",
                            extra={"k\u0000": "v\u0000", "escaped": "\\u0000 is not a NUL"})
    event["message"] = "\u0000"
    status, body, _ = await send(http, server, tracked, event_envelope(event))
    assert_accepted(status, body, event["event_id"])
    row = await assert_stored_once(pool, tracked, event["event_id"])
    stored = payload_of(row)
    assert "\x00" not in str(stored)
    assert stored["extra"]["k\ufffd"] == "v\ufffd" and stored["message"] == "\ufffd"
    assert stored["extra"]["escaped"] == "\\u0000 is not a NUL"
    # The stored text stays readable as jsonb from SQL (jsonb refuses \u0000 escapes).
    in_sql = await pool.fetchval(
        "select payload_text::jsonb -> 'extra' ->> 'k\ufffd' from error_tracking_error_events where event_id = $1::uuid",
        event["event_id"],
    )
    assert in_sql == "v\ufffd"
    assert (row["environment"], row["release"]) == ("prod", "r1")
    (error,) = await errors(pool, tracked.project_id)
    assert (error["name"], error["description"]) == ("NulError", "value with  inside")


async def test_utf8_bom_and_duplicate_keys(server, http, pool, tracked) -> None:
    event_id = new_event_id()
    payload = b'\xef\xbb\xbf{"message":"first","message":"last wins"}'
    status, body, _ = await send(http, server, tracked, envelope(item("event", payload), headers={"event_id": event_id}))
    assert_accepted(status, body, event_id)
    row = await assert_stored_once(pool, tracked, event_id)
    assert payload_of(row)["message"] == "last wins"


async def test_garbage_field_types_are_tolerated(server, http, pool, tracked) -> None:
    event = {
        "event_id": new_event_id(), "timestamp": "yesterday-ish", "platform": 7, "level": {"x": 1},
        "environment": ["prod"], "release": 3.5, "transaction": "", "message": {"formatted": None},
        "exception": {"values": [None, 1, {"type": None, "value": 5, "stacktrace": {"frames": [None, "x", {}]}}]},
        "fingerprint": "not-a-list", "tags": [["a", "b"], None], "breadcrumbs": None, "threads": "x",
    }
    status, body, _ = await send(http, server, tracked, event_envelope(event))
    assert_accepted(status, body, event["event_id"])
    row = await assert_stored_once(pool, tracked, event["event_id"])
    assert (row["level"], row["environment"], row["release"]) == ("error", None, None)
    (error,) = await errors(pool, tracked.project_id)
    assert error["platform"] == "other" and error["name"]


# --- identity, idempotence and durability ------------------------------------------------------


async def test_same_event_id_twice_is_stored_once(server, http, pool, tracked) -> None:
    event = exception_event()
    answers = []
    for _ in range(2):
        status, body, _ = await send(http, server, tracked, event_envelope(event))
        answers.append((status, body))
    assert answers[0] == answers[1] == (200, {"id": event["event_id"]})
    await assert_stored_once(pool, tracked, event["event_id"])
    assert await events_counted(pool, tracked.project_id) == 1


async def test_same_event_id_via_store_and_envelope_is_stored_once(server, http, pool, tracked) -> None:
    event = message_event()
    status, body, _ = await send(http, server, tracked, orjson.dumps(event), endpoint="store")
    assert_accepted(status, body, event["event_id"])
    status, body, _ = await send(http, server, tracked, gzip.compress(event_envelope(event)),
                                 headers={"Content-Encoding": "gzip"})
    assert_accepted(status, body, event["event_id"])
    await assert_stored_once(pool, tracked, event["event_id"])


@pytest.mark.parametrize("timestamp", ["missing", "future", "unparsable", "before-retention"])
async def test_same_event_id_twice_is_stored_once_whatever_its_timestamp(server, http, pool, tracked, timestamp) -> None:
    """Retries of an event whose time falls back to the receive time must still be recognised."""
    event = exception_event()
    if timestamp == "missing":
        del event["timestamp"]
    else:
        event["timestamp"] = {"future": time.time() + 86400 * 3, "unparsable": "soon",
                              "before-retention": time.time() - 86400 * 30}[timestamp]
    for _ in range(2):
        status, body, _ = await send(http, server, tracked, event_envelope(event))
        assert_accepted(status, body, event["event_id"])
        await asyncio.sleep(0.01)
    await assert_stored_once(pool, tracked, event["event_id"])
    assert await events_counted(pool, tracked.project_id) == 1


async def test_concurrent_duplicates_are_stored_once(server, http, pool, tracked) -> None:
    event = exception_event()
    data = event_envelope(event)
    replies = await asyncio.gather(*(send(http, server, tracked, data) for _ in range(10)))
    assert {(status, orjson.dumps(body)) for status, body, _ in replies} == {(200, orjson.dumps({"id": event["event_id"]}))}
    await assert_stored_once(pool, tracked, event["event_id"])
    assert await events_counted(pool, tracked.project_id) == 1


async def test_header_event_id_wins_over_payload(server, http, pool, tracked) -> None:
    event = exception_event()
    header_id = new_event_id()
    status, body, _ = await send(http, server, tracked, envelope(item("event", event), headers={"event_id": header_id}))
    assert_accepted(status, body, header_id)
    row = await assert_stored_once(pool, tracked, header_id)
    assert payload_of(row)["event_id"] == header_id
    assert await event_row(pool, tracked.project_id, event["event_id"]) is None


async def test_answer_is_sent_after_commit(server, http, pool, tracked) -> None:
    """Right after each 200 the row is visible from another connection."""
    for n in range(15):
        event = exception_event(value=f"cart {n} is empty")
        status, body, _ = await send(http, server, tracked, event_envelope(event))
        assert_accepted(status, body, event["event_id"])
        assert await pool.fetchval(
            "select count(*) from error_tracking_error_events where project_id = $1 and event_id = $2::uuid",
            tracked.project_id, event["event_id"],
        ) == 1
        assert await events_counted(pool, tracked.project_id) == n + 1
    assert await counts(pool, tracked.project_id) == (1, 15)


async def test_concurrent_events_are_all_stored(server, http, pool, tracked) -> None:
    sent = [exception_event(value=f"cart {n} is empty") if n % 2 else message_event(f"user {n} logged in")
            for n in range(40)]
    replies = await asyncio.gather(*(send(http, server, tracked, event_envelope(e)) for e in sent))
    for event, (status, body, _) in zip(sent, replies):
        assert_accepted(status, body, event["event_id"])
    assert await counts(pool, tracked.project_id) == (2, 40)
    stored = {row["event_id"].hex for row in await events(pool, tracked.project_id)}
    assert stored == {e["event_id"] for e in sent}
    assert await events_counted(pool, tracked.project_id) == 40


async def test_same_event_id_with_other_content_leaves_no_empty_error(server, http, pool, tracked) -> None:
    """A retry whose payload changed (a proxy re-serialised it, an SDK bug) is still the stored event:
    it must not leave behind an error group without events."""
    first = exception_event("ValueError", "cart 1 is empty")
    retry = exception_event("KeyError", "'sku'", function="refund", event_id=first["event_id"],
                            timestamp=first["timestamp"])
    for event in (first, retry):
        status, body, _ = await send(http, server, tracked, event_envelope(event))
        assert_accepted(status, body, first["event_id"])
    await assert_stored_once(pool, tracked, first["event_id"])
    assert [e["events_count"] for e in await errors(pool, tracked.project_id)] == [1]
