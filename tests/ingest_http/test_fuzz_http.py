"""Property-based tests over the live endpoint: random and mutated bodies never give a 500 and never
store a partial event.

Hypothesis drives a synchronous function in a worker thread (``asyncio.to_thread``) that posts with
``http.client``, while errgate keeps serving on the test's event loop; database checks are sent
back to that loop with ``run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import time
import zlib
from typing import Any
from urllib.parse import urlsplit

import brotli
import orjson
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.db.error_counts import fold as fold_counts
from tests.ingest_http.helpers import (
    collector_url,
    envelope,
    exception_event,
    item,
    message_event,
    sentry_auth,
    unpack_event,
)

FUZZ_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
ALLOWED = {200, 400, 413}
FIXED_TIME = float(int(time.time()) - 3600)

SNAPSHOT = """
    select (select count(*) from error_tracking_error_events where project_id = $1) as events,
           (select count(*) from error_tracking_errors where project_id = $1) as errors,
           (select coalesce(sum(events_count), 0) from error_tracking_errors where project_id = $1) as counted,
           (select count(*) from error_tracking_errors where project_id = $1 and events_count = 0) as empty,
           (select count(*) from error_tracking_error_events v where v.project_id = $1 and (v.payload_text is null
               or not exists (select 1 from error_tracking_errors e
                              where e.project_id = v.project_id and e.id = v.error_id))) as broken
"""


def _seeds(event_id: str) -> list[bytes]:
    """Valid envelopes and store bodies of the shapes SDKs send; the mutations start from these."""
    # Nothing here may vary between runs (Hypothesis replays draws against these bytes).
    event = exception_event(event_id=event_id, timestamp=FIXED_TIME)
    message = message_event("user 42 logged in", event_id=event_id, timestamp=FIXED_TIME)
    return [
        envelope(item("event", event), headers={"event_id": event_id}),
        envelope(item("event", message, length=False), final_newline=False),
        envelope(item("session", {"sid": "x", "status": "ok", "attrs": {"release": "r"}}),
                 item("event", {"message": "with a session", "extra": {"n": [1, 2, {"x": None}]}}),
                 item("attachment", b"bytes\nwith\nnewlines", filename="a.txt"), headers={"event_id": event_id}),
        envelope(item("transaction", {"type": "transaction", "spans": []}), item("client_report", {})),
        orjson.dumps(event),  # a store body
        orjson.dumps(message),
    ]


@st.composite
def valid(draw: st.DrawFn) -> bytes:
    return draw(st.sampled_from(_seeds(draw(st.uuids()).hex)))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(valid()))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "duplicate", "truncate", "token"]))
        pos = draw(st.integers(0, len(data)))
        if kind == "flip" and data:
            pos = min(pos, len(data) - 1)
            data[pos] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "duplicate":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[pos:]
        else:  # a token that parsers find interesting
            data[pos:pos] = draw(st.sampled_from([
                b"\n", b"\r\n", b'"', b"{", b"}", b"[", b"]", b",", b"NaN", b"\\u0000", b"\\ud800", b"\xff",
                b'"length":0', b'"length":99999', b'"type":"event"', b'"event_id":"x"', b"\xef\xbb\xbf", b"null",
                b'{"type":"event"}\n{}\n', b"[" * 300,
            ]))
    return bytes(data)


def _encode(body: bytes, coding: str | None) -> bytes:
    return {
        None: lambda b: b, "gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress,
        "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    }[coding](body)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes, str | None]:
    """(endpoint, body as sent, Content-Encoding)."""
    endpoint = draw(st.sampled_from(["envelope", "envelope", "envelope", "store"]))
    body = draw(st.one_of(st.binary(max_size=512), mutated(), valid()))
    coding = draw(st.sampled_from([None, None, None, "gzip", "deflate", "br", "zstd"]))
    sent = _encode(body, coding)
    if coding and draw(st.booleans()):  # corrupt the compressed stream too
        pos = draw(st.integers(0, max(0, len(sent) - 1)))
        sent = sent[:pos] + draw(st.binary(max_size=8)) + sent[pos + 1 :]
    return endpoint, sent, coding


class Poster:
    """One keep-alive ``http.client`` connection to the live server (reconnects when closed)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        for attempt in (1, 2):
            try:
                self.conn.request("POST", path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read(), dict(response.getheaders())
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


async def test_random_and_mutated_bodies_never_500_and_never_store_partial_events(server, pool, tracked) -> None:
    loop = asyncio.get_running_loop()
    poster = Poster(server.url)
    seen: dict[str, int] = {}

    async def read(query: str, *args: Any) -> Any:
        await fold_counts(pool)  # the counters as a reader of errors sees them
        return await pool.fetchrow(query, *args)

    def db(query: str, *args: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(read(query, *args), loop).result(timeout=30)

    @FUZZ_SETTINGS
    @given(requests())
    def check(request: tuple[str, bytes, str | None]) -> None:
        endpoint, body, coding = request
        headers = {**sentry_auth(tracked.public_key), "Content-Type": "application/x-sentry-envelope"}
        if coding:
            headers["Content-Encoding"] = coding
        before = db(SNAPSHOT, tracked.project_id)
        path = urlsplit(collector_url(server.url, tracked.project_id, endpoint=endpoint)).path
        status, raw, response_headers = poster.post(path, body, headers)
        after = db(SNAPSHOT, tracked.project_id)
        seen[str(status)] = seen.get(str(status), 0) + 1

        assert status in ALLOWED, (status, raw[:300], body[:300])
        assert response_headers.get("Content-Type", "").startswith("application/json")
        answer = json.loads(raw)
        assert (after["broken"], after["empty"]) == (0, 0), dict(after)
        assert after["counted"] == after["events"], dict(after)
        if status != 200:
            assert set(answer) == {"detail", "causes"} and isinstance(answer["causes"], list), answer
            assert dict(after) == dict(before)
            return
        assert answer == {} or (set(answer) == {"id"} and len(answer["id"]) == 32), answer
        assert after["events"] in (before["events"], before["events"] + 1), (dict(before), dict(after))
        assert 0 <= after["errors"] - before["errors"] <= after["events"] - before["events"]
        if after["events"] == before["events"] + 1:
            seen["stored"] = seen.get("stored", 0) + 1
            row = db(
                """select v.payload_text, v.level, e.name from error_tracking_error_events v
                   join error_tracking_errors e on e.project_id = v.project_id and e.id = v.error_id
                   where v.project_id = $1 and v.event_id = $2::uuid""",
                tracked.project_id, answer["id"],
            )
            assert row is not None and row["payload_text"] is not None and row["name"], answer
            assert unpack_event(row["payload_text"])["event_id"] == answer["id"]

    try:
        await asyncio.to_thread(check)
    finally:
        poster.close()
    # The run explored both sides: refusals and stored events.
    assert seen.get("400", 0) > 20 and seen.get("stored", 0) >= 5, seen


@settings(FUZZ_SETTINGS, max_examples=60)
@given(st.lists(st.tuples(st.sampled_from(["event", "attachment", "session", "span", "weird"]),
                          st.binary(max_size=64)), max_size=6),
       st.booleans())
def test_any_well_framed_envelope_parses(items: list[tuple[str, bytes]], final_newline: bool) -> None:
    """The parser (no server): every item framed with ``length`` comes back as sent; never a crash."""
    from app.ingest.envelope import parse_envelope
    from app.ingest.rejection import Rejection
    from app.ingest.routes import as_problem

    events = [i for i in items if i[0] == "event"]
    body = envelope(*(item(kind, payload, length=True) for kind, payload in items), final_newline=final_newline)
    try:
        parsed = parse_envelope(body, max_item_bytes={"event": 1024})
    except Rejection as rejection:
        problem = as_problem(rejection)
        assert problem.status == 400 and len(events) > 1, problem.body
        return
    assert len(events) <= 1
    assert [(i.type, i.payload) for i in parsed.items] == items
