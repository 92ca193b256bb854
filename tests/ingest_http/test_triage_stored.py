"""What the writer keeps for triage with each batch: an error's environments, releases, first and
last release and latest level (sql/006_triage.sql), sent by the real sentry-sdk and by envelopes."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import aiohttp
import sentry_sdk

from app.ingest.grouping import fingerprint_for
from app.ingest.payload import pack_event
from app.ingest.summary import summarize_event
import asyncpg
import pytest

from app.ingest.writer import ErrorIds, PendingEvent, StoredPairs, write_batch
from tests.faults.helpers import partitions_around_today
from tests.ingest_http.helpers import (
    assert_accepted,
    collector_url,
    errors,
    event_envelope,
    exception_event,
    post_envelope,
    sentry_auth,
)
from tests.ingest_http.test_sentry_sdk import RELEASE, sdk


async def triage_of(pool, project_id: int, error_id: int) -> dict[str, Any]:
    row = await pool.fetchrow(
        "select level, first_release, last_release from error_tracking_errors where project_id = $1 and id = $2",
        project_id, error_id,
    )
    environments = await pool.fetch(
        "select environment from error_tracking_error_environments where project_id = $1 and error_id = $2 order by 1",
        project_id, error_id,
    )
    releases = await pool.fetch(
        "select release from error_tracking_error_releases where project_id = $1 and error_id = $2 order by 1",
        project_id, error_id,
    )
    return {
        **dict(row),
        "environments": [r["environment"] for r in environments],
        "releases": [r["release"] for r in releases],
    }


def fail_with_warning() -> str | None:
    try:
        raise KeyError("basket")
    except KeyError:
        with sentry_sdk.new_scope() as scope:
            scope.level = "warning"
            return sentry_sdk.capture_exception()


async def test_the_sdks_environment_release_and_level_are_kept(server, pool, tracked) -> None:
    ids, _, _ = await sdk(tracked.dsn, lambda: [fail_with_warning()])
    assert all(ids)
    [error] = await errors(pool, tracked.project_id)
    assert await triage_of(pool, tracked.project_id, error["id"]) == {
        "level": "warning", "first_release": RELEASE, "last_release": RELEASE,
        "environments": ["staging"], "releases": [RELEASE],
    }


async def send(http: aiohttp.ClientSession, server, tracked, event: dict[str, Any]) -> None:
    status, body, _ = await post_envelope(
        http, collector_url(server.url, tracked.project_id), event_envelope(event), sentry_auth(tracked.public_key)
    )
    assert_accepted(status, body, event["event_id"])


async def test_batches_in_two_environments_and_releases_out_of_order(server, http, pool, tracked) -> None:
    now = time.time() - 5
    await send(http, server, tracked, exception_event(environment="production", release="2.0", timestamp=now - 60))
    # Older than the first: its release is the first one, but the level stays the latest event's.
    await send(http, server, tracked, exception_event(
        environment="staging", release="1.0", level="fatal", timestamp=now - 600))
    await send(http, server, tracked, exception_event(environment="production", release="3.0", timestamp=now))
    # No environment nor release: they stay as they were.
    await send(http, server, tracked, exception_event(
        environment=None, release=None, level="warning", timestamp=now + 1))
    [error] = await errors(pool, tracked.project_id)
    assert error["events_count"] == 4
    assert await triage_of(pool, tracked.project_id, error["id"]) == {
        "level": "warning", "first_release": "1.0", "last_release": "3.0",
        "environments": ["production", "staging"], "releases": ["1.0", "2.0", "3.0"],
    }


def pending(project_id: int, received_at, offset: float, **fields: Any) -> PendingEvent:
    event = exception_event(timestamp=received_at.timestamp() + offset, **fields)
    summary = summarize_event(event, fingerprint=fingerprint_for(event), received_at=received_at)
    return PendingEvent(project_id, event["event_id"], summary, pack_event(event), received_at)


async def test_one_batch_of_one_error_orders_its_events_by_time(pool, world) -> None:
    await partitions_around_today(pool)
    project_id = (await world.project())["id"]
    now = datetime.now(timezone.utc)
    batch = [
        pending(project_id, now, -30, release="b", environment="production", level="info"),
        pending(project_id, now, -50, release="a", environment="qa", level="error"),
        pending(project_id, now, -10, release="c", environment="production", level="fatal"),
        pending(project_id, now, -5, release=None, environment="production", level="warning"),
    ]
    assert len(await write_batch(pool, batch, ErrorIds())) == 4
    [error] = await errors(pool, project_id)
    assert await triage_of(pool, project_id, error["id"]) == {
        "level": "warning", "first_release": "a", "last_release": "c",
        "environments": ["production", "qa"], "releases": ["a", "b", "c"],
    }
    # A retry of the whole batch changes nothing; an older event of a new release is not the last one.
    assert await write_batch(pool, batch, ErrorIds()) == set()
    await write_batch(pool, [pending(project_id, now, -40, release="old", environment="qa", level="debug")], ErrorIds())
    assert await triage_of(pool, project_id, error["id"]) == {
        "level": "warning", "first_release": "a", "last_release": "c",
        "environments": ["production", "qa"], "releases": ["a", "b", "c", "old"],
    }


async def test_pairs_known_to_be_stored_are_not_sent_again_but_new_ones_land(pool, world) -> None:
    await partitions_around_today(pool)
    project_id = (await world.project())["id"]
    now = datetime.now(timezone.utc)
    ids, stored = ErrorIds(), StoredPairs()
    await write_batch(pool, [pending(project_id, now, -9, environment="production", release="a")], ids, None, stored)
    [error] = await errors(pool, project_id)
    assert (project_id, error["id"], "environment", "production") in stored
    assert (project_id, error["id"], "release", "a") in stored
    # Rows removed behind the writer's back show what it sends: the known pairs are not sent again ...
    await pool.execute("delete from error_tracking_error_environments where project_id = $1", project_id)
    await pool.execute("delete from error_tracking_error_releases where project_id = $1", project_id)
    await write_batch(pool, [pending(project_id, now, -8, environment="production", release="a")], ids, None, stored)
    assert await triage_of(pool, project_id, error["id"]) == {
        "level": "error", "first_release": "a", "last_release": "a", "environments": [], "releases": [],
    }
    # ... a new environment or release of the known error is, and so is every pair by a writer that knows none.
    await write_batch(pool, [pending(project_id, now, -7, environment="staging", release="b")], ids, None, stored)
    await write_batch(pool, [pending(project_id, now, -6, environment="production", release="a")], ids)
    found = await triage_of(pool, project_id, error["id"])
    assert (found["environments"], found["releases"]) == (["production", "staging"], ["a", "b"])


async def test_pairs_are_learned_only_from_a_committed_batch(pool, world) -> None:
    await partitions_around_today(pool)
    project_id = (await world.project())["id"]
    now = datetime.now(timezone.utc)
    event = pending(project_id, now, -5, environment="production", release="a")
    ids, stored = ErrorIds(), StoredPairs()
    # An error deleted behind the id cache fails the batch: nothing about its pairs is learned.
    ids.remember([{"project_id": project_id, "fingerprint": event.summary.fingerprint, "id": 2**40}])
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await write_batch(pool, [event], ids, None, stored)
    assert (project_id, 2**40, "environment", "production") not in stored
    assert (project_id, 2**40, "release", "a") not in stored
    # An error created for a retry whose event was a duplicate is deleted again, and its pairs with it.
    await write_batch(pool, [event], ids, None, stored)
    [error] = await errors(pool, project_id)
    retry = pending(project_id, now, -5, environment="qa", release="b", exception={"values": [{"type": "Other"}]})
    retry.event_id = event.event_id
    assert await write_batch(pool, [retry], ids, None, stored) == set()
    assert [e["id"] for e in await errors(pool, project_id)] == [error["id"]]
    assert {(project_id, error["id"], "environment", "production"), (project_id, error["id"], "release", "a")} == {
        key for key in stored._pairs if key[0] == project_id
    }


async def test_errors_are_searchable_however_they_are_created(pool, world) -> None:
    project_id = (await world.project())["id"]
    error_id = await pool.fetchval(
        """insert into error_tracking_errors (project_id, fingerprint, name, description, actor, platform,
                                              first_seen_at, last_seen_at)
           values ($1, 'f', 'KeyError', 'basket', 'view(shop)', 'python', now(), now()) returning id""",
        project_id,
    )
    search = "select text from error_tracking_error_search where project_id = $1 and error_id = $2"
    assert await pool.fetchval(search, project_id, error_id) == "keyerror\nbasket\nview(shop)"
    await pool.execute("update error_tracking_errors set description = 'cart' where id = $1", error_id)
    assert await pool.fetchval(search, project_id, error_id) == "keyerror\ncart\nview(shop)"
