"""Who may send: where the public key is read from, 401/400/403 with nothing stored, the key cache, CORS."""

from __future__ import annotations

import asyncio
import base64
import gzip
import time

import orjson
import pytest

from app import state
from app.db import error_tracking
from tests.conftest import ROOT_TOKEN, Api
from tests.ingest_http.helpers import (
    COLLECTOR,
    REJECTED,
    assert_accepted,
    assert_problem,
    collector_url,
    counts,
    envelope,
    event_envelope,
    exception_event,
    item,
    key_id,
    post_envelope,
    sentry_auth,
    tracked_project,
)


def _basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# (headers, query) for the key K, one per source and spelling.
CREDENTIALS = {
    "x-sentry-auth": ({"X-Sentry-Auth": "Sentry sentry_key={K}, sentry_version=7"}, ""),
    "x-sentry-auth-odd-spacing": ({"X-Sentry-Auth": "Sentry   sentry_version = 7 ,sentry_key = {K}  ,"}, ""),
    "x-sentry-auth-lower-prefix": ({"x-sentry-auth": "sentry sentry_key={K}"}, ""),
    "x-sentry-auth-upper-prefix": ({"X-Sentry-Auth": "SENTRY sentry_key={K},sentry_version=7"}, ""),
    "x-sentry-auth-extra-fields": (
        {"X-Sentry-Auth": "Sentry sentry_version=7, sentry_client=raven-python/6.10.0, sentry_timestamp=1700000000, "
                          "sentry_key={K}, sentry_secret=deadbeef, brand_new_field=1"}, ""),
    "x-sentry-auth-tab": ({"X-Sentry-Auth": "Sentry\tsentry_key={K}"}, ""),
    "authorization-sentry": ({"Authorization": "Sentry sentry_key={K}, sentry_version=7"}, ""),
    "authorization-basic": ({"Authorization": _basic("{K}")}, ""),
    "authorization-basic-with-secret": ({"Authorization": _basic("{K}", "secret")}, ""),
    "query": ({}, "?sentry_key={K}&sentry_version=7&sentry_client=sentry.javascript.node%2F8.0.0"),
    "query-and-same-header": ({"X-Sentry-Auth": "Sentry sentry_key={K}"}, "?sentry_key={K}"),
}


def _fill(template, key: str):
    if isinstance(template, dict):
        return {name: value.replace("{K}", key) for name, value in template.items()}
    return template.replace("{K}", key)


def _basic_fill(headers: dict[str, str], key: str) -> dict[str, str]:
    filled = {}
    for name, value in headers.items():
        if value.startswith("Basic "):
            user, _, password = base64.b64decode(value[6:]).decode().partition(":")
            value = _basic(user.replace("{K}", key), password)
        filled[name] = value.replace("{K}", key)
    return filled


@pytest.mark.parametrize("source", list(CREDENTIALS))
async def test_key_sources_are_accepted(server, http, pool, tracked, source) -> None:
    headers, query = CREDENTIALS[source]
    for stored, endpoint in enumerate(("envelope", "store"), start=1):
        event = exception_event()
        body = event_envelope(event) if endpoint == "envelope" else gzip.compress(orjson.dumps(event))
        extra = {"Content-Encoding": "gzip"} if endpoint == "store" else {}
        url = collector_url(server.url, tracked.project_id, endpoint=endpoint) + _fill(query, tracked.public_key)
        status, answer, _ = await post_envelope(http, url, body, {**_basic_fill(headers, tracked.public_key), **extra})
        assert_accepted(status, answer, event["event_id"])
        assert await counts(pool, tracked.project_id) == (1, stored), endpoint


async def test_key_from_envelope_dsn_when_nothing_else(server, http, pool, tracked) -> None:
    event = exception_event()
    data = envelope(item("event", event), headers={"event_id": event["event_id"], "dsn": tracked.dsn})
    status, body, _ = await post_envelope(http, collector_url(server.url, tracked.project_id), data)
    assert_accepted(status, body, event["event_id"])
    assert await counts(pool, tracked.project_id) == (1, 1)


async def test_envelope_dsn_is_ignored_when_the_request_has_a_key(server, http, pool, world, api, tracked) -> None:
    other = await tracked_project(api, world)
    # A valid header key wins over a dsn naming an unknown key...
    event = exception_event()
    data = envelope(item("event", event), headers={"event_id": event["event_id"],
                                                   "dsn": "http://glet_unknown@127.0.0.1/1"})
    status, body, _ = await post_envelope(http, collector_url(server.url, tracked.project_id), data,
                                          sentry_auth(tracked.public_key))
    assert_accepted(status, body, event["event_id"])
    # ...and a refused header key is not rescued by a valid dsn.
    data = envelope(item("event", exception_event()), headers={"dsn": tracked.dsn})
    status, body, _ = await post_envelope(http, collector_url(server.url, tracked.project_id), data,
                                          sentry_auth(other.public_key))
    assert (status, body) == (403, REJECTED)
    assert await counts(pool, tracked.project_id) == (1, 1)
    assert await counts(pool, other.project_id) == (0, 0)


NO_CREDENTIAL = {
    "nothing": ({}, "", None),
    "x-sentry-auth-without-key": ({"X-Sentry-Auth": "Sentry sentry_version=7, sentry_client=x/1"}, "", None),
    "x-sentry-auth-empty-key": ({"X-Sentry-Auth": "Sentry sentry_key=, sentry_version=7"}, "", None),
    "x-sentry-auth-wrong-prefix": ({"X-Sentry-Auth": "Bearer sentry_key=KEY"}, "", None),
    "x-sentry-auth-no-prefix": ({"X-Sentry-Auth": "sentry_key=KEY, sentry_version=7"}, "", None),
    "authorization-bearer": ({"Authorization": "Bearer glpat-something"}, "", None),
    "authorization-basic-garbage": ({"Authorization": "Basic !!!not-base64"}, "", None),
    "empty-query-key": ({}, "?sentry_key=&sentry_version=7", None),
    "dsn-without-user": ({}, "", "http://127.0.0.1/api/v4/error_tracking/collector/1"),
    "dsn-not-a-string": ({}, "", 12345),
    "dsn-not-a-url": ({}, "", "http://[broken"),
}


@pytest.mark.parametrize("case", list(NO_CREDENTIAL))
async def test_no_credential_is_401(server, http, pool, tracked, case) -> None:
    headers, query, dsn = NO_CREDENTIAL[case]
    event = exception_event()
    envelope_headers = {"event_id": event["event_id"], **({"dsn": dsn} if dsn is not None else {})}
    url = collector_url(server.url, tracked.project_id) + query
    status, body, response_headers = await post_envelope(
        http, url, envelope(item("event", event), headers=envelope_headers), headers
    )
    assert_problem(status, body, 401)
    assert response_headers["Access-Control-Allow-Origin"] == "*"
    assert await counts(pool, tracked.project_id) == (0, 0)


async def test_store_without_credential_is_401(server, http, pool, tracked) -> None:
    status, body, _ = await post_envelope(
        http, collector_url(server.url, tracked.project_id, endpoint="store"), orjson.dumps(exception_event())
    )
    assert_problem(status, body, 401)
    assert await counts(pool, tracked.project_id) == (0, 0)


async def test_two_different_keys_are_400(server, http, pool, api, world, tracked) -> None:
    other = await tracked_project(api, world)
    event = exception_event()
    cases = [
        (sentry_auth(tracked.public_key), f"?sentry_key={other.public_key}"),
        ({**sentry_auth(tracked.public_key), "Authorization": _basic(other.public_key)}, ""),
        ({"Authorization": f"Sentry sentry_key={tracked.public_key}"}, "?sentry_key=glet_unknown"),
    ]
    for headers, query in cases:
        for endpoint in ("envelope", "store"):
            url = collector_url(server.url, tracked.project_id, endpoint=endpoint) + query
            status, body, _ = await post_envelope(http, url, event_envelope(event), headers)
            assert_problem(status, body, 400)
            assert "different keys" in body["causes"][0]
    assert await counts(pool, tracked.project_id) == (0, 0)
    assert await counts(pool, other.project_id) == (0, 0)


# --- refusals: one 403 body for every case ---------------------------------------------------


async def _refused_within(http, url: str, key: str, seconds: float = 3.0) -> tuple[int, object, int]:
    """Post until refused (a cache may hold the key until its TTL or the change notice):
    the last answer and how many events were accepted before it."""
    deadline = time.monotonic() + seconds
    accepted = 0
    while True:
        status, body, _ = await post_envelope(http, url, event_envelope(exception_event()), sentry_auth(key))
        if status != 200 or time.monotonic() > deadline:
            return status, body, accepted
        accepted += 1
        await asyncio.sleep(0.05)


async def _unknown_key(api, world, pool, tracked):
    return tracked.project_id, "glet_" + "0" * 32


async def _inactive_key(api, world, pool, tracked):
    await pool.execute("update error_tracking_client_keys set active = false where public_key = $1", tracked.public_key)
    await pool.execute("select pg_notify('errgate_keys', $1)", f"key:{tracked.public_key}")
    return tracked.project_id, tracked.public_key


async def _deleted_key(api, world, pool, tracked):
    reply = await api.delete(
        f"/projects/{tracked.project_id}/error_tracking/client_keys/{await key_id(api, tracked.project_id, tracked.public_key)}",
        token=ROOT_TOKEN,
    )
    assert reply.status == 200, reply.body
    return tracked.project_id, tracked.public_key


async def _key_of_another_project(api, world, pool, tracked):
    other = await tracked_project(api, world)
    return tracked.project_id, other.public_key


async def _settings_inactive(api, world, pool, tracked):
    reply = await api.patch(f"/projects/{tracked.project_id}/error_tracking/settings", token=ROOT_TOKEN,
                            json={"active": False})
    assert reply.status == 200 and reply.body["active"] is False, reply.body
    return tracked.project_id, tracked.public_key


async def _not_integrated(api, world, pool, tracked):
    reply = await api.patch(f"/projects/{tracked.project_id}/error_tracking/settings", token=ROOT_TOKEN,
                            json={"active": True, "integrated": False})
    assert reply.status == 200 and reply.body["integrated"] is False, reply.body
    return tracked.project_id, tracked.public_key


async def _project_without_settings(api, world, pool, tracked):
    project = await world.project("group/no-settings")
    reply = await api.post(f"/projects/{project['id']}/error_tracking/client_keys", token=ROOT_TOKEN)
    assert reply.status == 201, reply.body
    assert await pool.fetchval("select count(*) from project_error_tracking_settings where project_id = $1",
                               project["id"]) == 0
    return project["id"], reply.body["public_key"]


async def _project_does_not_exist(api, world, pool, tracked):
    return tracked.project_id + 1000, tracked.public_key


REFUSALS = {
    "unknown-key": _unknown_key,
    "inactive-key": _inactive_key,
    "deleted-key": _deleted_key,
    "key-of-another-project": _key_of_another_project,
    "settings-inactive": _settings_inactive,
    "not-integrated": _not_integrated,
    "project-without-settings": _project_without_settings,
    "project-does-not-exist": _project_does_not_exist,
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_refused_keys_and_projects_are_403_with_one_body(server, http, pool, api, world, tracked, case) -> None:
    # The key works first (and is now cached)...
    event = exception_event()
    status, body, _ = await post_envelope(http, collector_url(server.url, tracked.project_id), event_envelope(event),
                                          sentry_auth(tracked.public_key))
    assert_accepted(status, body, event["event_id"])
    project_id, key = await REFUSALS[case](api, world, pool, tracked)
    # ...then, within the cache TTL (1 s in tests), it is refused, with the same answer for every case.
    status, body, accepted = await _refused_within(http, collector_url(server.url, project_id), key)
    assert (status, body) == (403, REJECTED)
    for endpoint, query, headers in (
        ("envelope", "", sentry_auth(key)),
        ("store", "", sentry_auth(key)),
        ("envelope", f"?sentry_key={key}", {}),
        ("envelope/", "", {"Authorization": _basic(key)}),
    ):
        url = collector_url(server.url, project_id, endpoint=endpoint, slash=False) + query
        status, body, response_headers = await post_envelope(http, url, event_envelope(exception_event()), headers)
        assert (status, body) == (403, REJECTED), (endpoint, query)
        assert response_headers["Content-Type"].startswith("application/json")
        assert response_headers["Access-Control-Allow-Origin"] == "*"
    # A dsn-only envelope is refused the same way.
    data = envelope(item("event", exception_event()), headers={"dsn": f"http://{key}@127.0.0.1{COLLECTOR}/{project_id}"})
    status, body, _ = await post_envelope(http, collector_url(server.url, project_id), data)
    assert (status, body) == (403, REJECTED)
    stored = 1 + (accepted if project_id == tracked.project_id else 0)
    assert await counts(pool, tracked.project_id) == (1, stored)
    assert await pool.fetchval("select count(*) from error_tracking_error_events") == stored


async def test_refused_key_is_answered_before_the_body_is_read(start_server, http, pool, api, world) -> None:
    """A refused key costs no decompression: a bomb gets 403 (the same bomb with a valid key: 413)."""
    server = await start_server(max_envelope_bytes=1024 * 1024)
    tracked = await tracked_project(Api(api.session, server.url), world)
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024), 9)
    url = collector_url(server.url, tracked.project_id)
    status, body, _ = await post_envelope(http, url, bomb, {**sentry_auth("glet_unknown"), "Content-Encoding": "gzip"})
    assert (status, body) == (403, REJECTED)
    status, body, _ = await post_envelope(http, url, bomb, {**sentry_auth(tracked.public_key), "Content-Encoding": "gzip"})
    assert_problem(status, body, 413)
    assert await counts(pool, tracked.project_id) == (0, 0)


# --- the key cache ----------------------------------------------------------------------------


async def _listening(pool, since) -> None:
    """Wait until a server started after ``since`` has its LISTEN connection (it clears the cache when it connects)."""
    for _ in range(200):
        if await pool.fetchval(
            """select count(*) from pg_stat_activity where datname = current_database()
               and query ilike 'listen%errgate_keys%' and backend_start >= $1""", since,
        ):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the key change listener never connected")


async def test_key_cache_serves_requests_without_a_database_lookup(start_server, http, pool, api, world, monkeypatch) -> None:
    since = await pool.fetchval("select clock_timestamp()")
    server = await start_server()
    await _listening(pool, since)
    tracked = await tracked_project(Api(api.session, server.url), world)
    lookups: list[str] = []
    real = error_tracking.key_for_ingest

    async def counting(db, public_key):
        lookups.append(public_key)
        return await real(db, public_key)

    monkeypatch.setattr(error_tracking, "key_for_ingest", counting)
    url = collector_url(server.url, tracked.project_id)

    # Cold cache, 20 concurrent requests: one look-up between them.
    replies = await asyncio.gather(*(post_envelope(http, url, event_envelope(exception_event()),
                                                   sentry_auth(tracked.public_key)) for _ in range(20)))
    assert [status for status, _, _ in replies] == [200] * 20
    assert lookups == [tracked.public_key]
    assert server.app[state.KEY_CACHE]._entries[tracked.public_key][1] == tracked.project_id

    # Drop the key behind the cache's back (no notification): still accepted within the TTL...
    await pool.execute("delete from error_tracking_client_keys where public_key = $1", tracked.public_key)
    status, body, _ = await post_envelope(http, url, event_envelope(exception_event()), sentry_auth(tracked.public_key))
    assert status == 200, body
    assert lookups == [tracked.public_key]
    assert await counts(pool, tracked.project_id) == (1, 21)

    # ...and refused once the entry expired (TTL 1 s in tests).
    await asyncio.sleep(server.app[state.SETTINGS].key_cache_ttl_seconds + 0.2)
    status, body, _ = await post_envelope(http, url, event_envelope(exception_event()), sentry_auth(tracked.public_key))
    assert (status, body) == (403, REJECTED)
    assert lookups == [tracked.public_key] * 2
    assert await counts(pool, tracked.project_id) == (1, 21)

    # Refusals are cached too: unknown keys do not cost a query each.
    for _ in range(5):
        status, body, _ = await post_envelope(http, url, event_envelope(exception_event()), sentry_auth("glet_nope"))
        assert (status, body) == (403, REJECTED)
    assert lookups.count("glet_nope") == 1


async def test_deleted_key_stops_working_on_every_replica_at_once(start_server, http, pool, api, world) -> None:
    """Two replicas with a long cache TTL: the deletion notice, not the TTL, makes both refuse."""
    since = await pool.fetchval("select clock_timestamp()")
    replicas = [await start_server(key_cache_ttl_seconds=60.0) for _ in range(2)]
    for _ in range(100):  # both listeners connected
        if await pool.fetchval(
            """select count(*) from pg_stat_activity where datname = current_database()
               and query ilike 'listen%errgate_keys%' and backend_start >= $1""", since,
        ) >= 2:
            break
        await asyncio.sleep(0.02)
    first = Api(api.session, replicas[0].url)
    tracked = await tracked_project(first, world)
    for replica in replicas:
        status, body, _ = await post_envelope(http, collector_url(replica.url, tracked.project_id),
                                              event_envelope(exception_event()), sentry_auth(tracked.public_key))
        assert status == 200, body
        assert tracked.public_key in replica.app[state.KEY_CACHE]._entries
    await _deleted_key(first, world, pool, tracked)
    started = time.monotonic()
    late = 0
    for replica in replicas:
        status, body, accepted = await _refused_within(
            http, collector_url(replica.url, tracked.project_id), tracked.public_key, seconds=2.0
        )
        assert (status, body) == (403, REJECTED)
        late += accepted
    assert time.monotonic() - started < 2.0
    assert await counts(pool, tracked.project_id) == (1, 2 + late)


async def test_reenabled_project_is_accepted_again(server, http, pool, api, tracked) -> None:
    url = collector_url(server.url, tracked.project_id)
    settings = f"/projects/{tracked.project_id}/error_tracking/settings"
    assert (await api.patch(settings, token=ROOT_TOKEN, json={"active": False})).status == 200
    status, body, accepted = await _refused_within(http, url, tracked.public_key)
    assert (status, body) == (403, REJECTED)
    assert (await api.patch(settings, token=ROOT_TOKEN, json={"active": True})).status == 200
    deadline = time.monotonic() + 3
    while True:
        event = exception_event()
        status, body, _ = await post_envelope(http, url, event_envelope(event), sentry_auth(tracked.public_key))
        if status == 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert_accepted(status, body, event["event_id"])
    assert await counts(pool, tracked.project_id) == (1, 1 + accepted)


# --- CORS -------------------------------------------------------------------------------------


def _split(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


@pytest.mark.parametrize("endpoint", ["envelope", "store"])
@pytest.mark.parametrize("slash", [True, False])
async def test_cors_preflight(server, http, tracked, endpoint, slash) -> None:
    url = collector_url(server.url, tracked.project_id, endpoint=endpoint, slash=slash)
    async with http.options(url, headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-sentry-auth",
    }) as resp:
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in _split(resp.headers["Access-Control-Allow-Methods"]) | {
            m.upper() for m in _split(resp.headers["Access-Control-Allow-Methods"])}
        assert {"x-sentry-auth", "content-type", "content-encoding", "authorization"} <= _split(
            resp.headers["Access-Control-Allow-Headers"])
        assert {"x-sentry-error", "x-sentry-rate-limits", "retry-after"} <= _split(
            resp.headers["Access-Control-Expose-Headers"])
        assert resp.headers["Access-Control-Max-Age"] == "3600"


async def test_cors_headers_on_every_post_answer(server, http, tracked) -> None:
    url = collector_url(server.url, tracked.project_id)
    origin = {"Origin": "https://shop.example"}
    cases = [
        (200, event_envelope(exception_event()), sentry_auth(tracked.public_key)),
        (403, event_envelope(exception_event()), sentry_auth("glet_unknown")),
        (401, event_envelope(exception_event()), {}),
        (400, b"{broken", sentry_auth(tracked.public_key)),
        (415, b"{}", {**sentry_auth(tracked.public_key), "Content-Encoding": "compress"}),
    ]
    for expected, body, headers in cases:
        status, _, response_headers = await post_envelope(http, url, body, {**origin, **headers})
        assert status == expected
        assert response_headers["Access-Control-Allow-Origin"] == "*", expected
        assert {"x-sentry-error", "x-sentry-rate-limits", "retry-after"} <= _split(
            response_headers["Access-Control-Expose-Headers"]), expected
