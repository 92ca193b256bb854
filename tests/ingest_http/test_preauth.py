"""Nothing spent before authentication: a request without a valid key decodes at most its envelope
header line, and a body still arriving is not read; /store/ inflates at most the event limit.

Costs are read from the collector's counters (decoded bytes, refusals before the body), not clocks.
"""

from __future__ import annotations

import gzip
import io
import os

import orjson
import pytest

from app import state
from app.ingest.routes import ENVELOPE_HEADER_LIMIT
from tests.conftest import Api
from tests.ingest.test_body import gzip_bomb
from tests.ingest_http.helpers import (
    COLLECTOR,
    REJECTED,
    assert_accepted,
    assert_problem,
    collector_url,
    counts,
    envelope,
    event_row,
    exception_event,
    item,
    post_envelope,
    sentry_auth,
    tracked_project,
)
from tests.ops.rawhttp import RawConnection, post_head

KIB = 1024
MIB = 1024 * KIB
STEP = 64 * KIB  # the decoded bytes of one decompression call (app.ingest.body)
PREFIX_COST = ENVELOPE_HEADER_LIMIT + STEP  # the most a request refused on its envelope header decodes
GZIP = {"Content-Encoding": "gzip"}


REASONS = ("invalid", "unauthorized", "forbidden", "too_large", "unavailable")


class Costs:
    """What the collector spent since this was made, from its counters: decoded bytes, and
    requests refused before their body was read, by reason."""

    def __init__(self, server) -> None:
        self.registry = server.app[state.METRICS].registry
        self.start_decoded = self._decoded()
        self.start_refused = self._refused()

    def _decoded(self) -> float:
        value = self.registry.get_sample_value("errgate_ingest_decoded_bytes_total")
        assert value is not None, "no errgate_ingest_decoded_bytes_total"
        return value

    def _refused(self) -> dict[str, float]:
        name = "errgate_ingest_rejected_before_body_total"
        return {reason: self.registry.get_sample_value(name, {"reason": reason}) or 0.0 for reason in REASONS}

    @property
    def decoded(self) -> float:
        return self._decoded() - self.start_decoded

    def rejected_before_body(self) -> dict[str, float]:
        now = self._refused()
        start = self.start_refused
        return {reason: now[reason] - start[reason] for reason in REASONS if now[reason] != start[reason]}


def tiny_items(compressed_size: int) -> bytes:
    """A gzip envelope with no credential, of thousands of tiny items: ``compressed_size`` bytes or more."""
    items = [item("log", os.urandom(6).hex()) for _ in range(compressed_size // 8)]
    return gzip.compress(envelope(*items, headers={"sent_at": "2026-01-01T00:00:00Z"}))


def dsn_of(key: str, project_id: int) -> str:
    return f"http://{key}@127.0.0.1{COLLECTOR}/{project_id}"


# --- the envelope header's dsn -----------------------------------------------------------------


async def test_no_credential_is_401_after_the_header_line_only(server, http, pool, tracked) -> None:
    body = tiny_items(400 * KIB)
    assert len(body) >= 400 * KIB
    costs = Costs(server)
    status, answer, _ = await post_envelope(http, collector_url(server.url, tracked.project_id), io.BytesIO(body), GZIP)
    assert_problem(status, answer, 401)
    assert costs.decoded <= PREFIX_COST
    assert costs.rejected_before_body() == {"unauthorized": 1}
    assert await counts(pool, tracked.project_id) == (0, 0)


async def test_a_bomb_without_credential_is_401_uninflated(server, http, tracked) -> None:
    bomb = gzip_bomb(512, b'{"sent_at":"2026-01-01T00:00:00Z"}\n')  # 512 MiB, over the envelope limit
    costs = Costs(server)
    status, answer, _ = await post_envelope(http, collector_url(server.url, tracked.project_id), bomb, GZIP)
    assert_problem(status, answer, 401)
    assert costs.decoded <= PREFIX_COST


async def test_a_dsn_of_a_valid_key_is_accepted_and_the_whole_body_read(server, http, pool, tracked) -> None:
    event = exception_event()
    attachment = os.urandom(300 * KIB)  # several decoding steps after the header line
    data = envelope(
        item("attachment", attachment, filename="dump.bin"), item("event", event),
        headers={"event_id": event["event_id"], "dsn": tracked.dsn},
    )
    for body, headers in ((data, {}), (gzip.compress(data), GZIP)):
        costs = Costs(server)
        status, answer, _ = await post_envelope(http, collector_url(server.url, tracked.project_id), body, headers)
        assert_accepted(status, answer, event["event_id"])
        assert costs.decoded == len(data)
        assert costs.rejected_before_body() == {}
    assert await event_row(pool, tracked.project_id, event["event_id"]) is not None


async def test_a_dsn_of_a_refused_key_is_403_after_the_header_line_only(server, http, pool, tracked) -> None:
    for key in ("glet_" + "0" * 32, tracked.public_key):
        project_id = tracked.project_id if key != tracked.public_key else tracked.project_id + 1
        bomb = gzip_bomb(512, orjson.dumps({"dsn": dsn_of(key, project_id)}) + b"\n")
        costs = Costs(server)
        status, answer, _ = await post_envelope(http, collector_url(server.url, project_id), bomb, GZIP)
        assert (status, answer) == (403, REJECTED)
        assert costs.decoded <= PREFIX_COST
        assert costs.rejected_before_body() == {"forbidden": 1}
    assert await counts(pool, tracked.project_id) == (0, 0)


async def test_an_envelope_header_over_the_limit_is_401_without_a_key(server, http, pool, tracked) -> None:
    event = exception_event()
    headers = {"event_id": event["event_id"], "padding": "x" * ENVELOPE_HEADER_LIMIT, "dsn": tracked.dsn}
    data = envelope(item("event", event), headers=headers)
    url = collector_url(server.url, tracked.project_id)
    for body, encoding in ((data, {}), (gzip.compress(data), GZIP)):
        costs = Costs(server)
        status, answer, _ = await post_envelope(http, url, body, encoding)
        assert_problem(status, answer, 401)
        assert f"longer than {ENVELOPE_HEADER_LIMIT} bytes" in answer["causes"][0]
        assert costs.decoded <= PREFIX_COST
    # With the key in a header, the same envelope is accepted: the limit is only for finding a key.
    status, answer, _ = await post_envelope(http, url, data, sentry_auth(tracked.public_key))
    assert_accepted(status, answer, event["event_id"])
    assert await counts(pool, tracked.project_id) == (1, 1)


async def test_a_header_line_that_is_not_json_is_still_400(server, http, tracked) -> None:
    costs = Costs(server)
    status, answer, _ = await post_envelope(
        http, collector_url(server.url, tracked.project_id), gzip_bomb(64, b"{broken\n"), GZIP
    )
    assert_problem(status, answer, 400)
    assert "envelope header is not valid JSON" in answer["causes"][0]
    assert costs.decoded <= PREFIX_COST
    assert costs.rejected_before_body() == {"invalid": 1}


# --- /store/ ---------------------------------------------------------------------------------------


async def test_store_without_credential_decodes_nothing(server, http, pool, tracked) -> None:
    costs = Costs(server)
    url = collector_url(server.url, tracked.project_id, endpoint="store")
    status, answer, _ = await post_envelope(http, url, gzip_bomb(64), GZIP)
    assert_problem(status, answer, 401)
    assert costs.decoded == 0
    assert costs.rejected_before_body() == {"unauthorized": 1}
    assert await counts(pool, tracked.project_id) == (0, 0)


async def test_store_inflates_at_most_the_event_limit(start_server, http, world, pool) -> None:
    server = await start_server(max_event_bytes=MIB)
    tracked = await tracked_project(Api(http, server.url), world)
    url = collector_url(server.url, tracked.project_id, endpoint="store")
    costs = Costs(server)
    status, answer, _ = await post_envelope(http, url, gzip_bomb(64), {**sentry_auth(tracked.public_key), **GZIP})
    assert_problem(status, answer, 413)
    assert answer["causes"] == [f"the gzip-decoded request body is larger than {MIB} bytes"]
    assert costs.decoded <= MIB + STEP
    assert costs.rejected_before_body() == {}  # read past its header: the key was valid
    # An event just under the limit still goes through, compressed or not.
    event = exception_event(extra={"blob": "x" * (MIB - 4 * KIB)})
    for encode, headers in ((bytes, {}), (gzip.compress, GZIP)):
        event["event_id"] = os.urandom(16).hex()
        body = encode(orjson.dumps(event))
        status, answer, _ = await post_envelope(http, url, body, {**sentry_auth(tracked.public_key), **headers})
        assert_accepted(status, answer, event["event_id"])
    assert await counts(pool, tracked.project_id) == (1, 2)


# --- a body still arriving is not read -------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "key", "status"),
    [("envelope", None, 401), ("envelope", "glet_unknown", 403), ("store", None, 401), ("store", "glet_unknown", 403)],
)
async def test_a_refused_request_is_answered_before_its_body_arrives(server, tracked, endpoint, key, status) -> None:
    """The client sends the head and 128 KiB of a 64 MiB body, then waits: the answer comes at once,
    and the connection is closed rather than the rest of the body read."""
    headers = sentry_auth(key) if key else {}
    path = f"{COLLECTOR}/api/{tracked.project_id}/{endpoint}/"
    first = b'{"sent_at":"2026-01-01T00:00:00Z"}\n' + os.urandom(128 * KIB)
    costs = Costs(server)
    async with RawConnection(server.url) as conn:
        await conn.send(post_head(path, 64 * MIB, **headers) + first)
        answer = await conn.answer(timeout=5)
        assert answer.status == status, answer.raw
        assert answer.headers["connection"] == "close"
        assert answer.headers["access-control-allow-origin"] == "*"
        assert await conn.closed(timeout=2)
    assert costs.decoded <= (PREFIX_COST if endpoint == "envelope" and key is None else 0)
    assert sum(costs.rejected_before_body().values()) == 1

