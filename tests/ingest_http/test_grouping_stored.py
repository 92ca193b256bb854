"""Grouping as stored: which events share an error row, its status, and its first/last seen times."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from app.db.error_counts import fold as fold_counts
from tests.ingest_http.helpers import counts, errors, exception_event, frame, message_event, send_all


async def error_of(pool, tracked, event_id: str):
    await fold_counts(pool)
    return await pool.fetchrow(
        """select e.* from error_tracking_errors e join error_tracking_error_events v
           on v.project_id = e.project_id and v.error_id = e.id
           where v.project_id = $1 and v.event_id = $2::uuid""",
        tracked.project_id, event_id,
    )


async def test_same_bug_with_different_numbers_is_one_error(server, http, pool, tracked) -> None:
    first = exception_event("ValueError", "cart 17 is empty", lineno=42)
    second = exception_event("ValueError", "cart 90210 is empty", lineno=43)  # a later deploy moved the line
    await send_all(http, server, tracked, first, second)
    assert await counts(pool, tracked.project_id) == (1, 2)
    [error] = await errors(pool, tracked.project_id)
    assert error["events_count"] == 2
    assert (error["name"], error["description"], error["actor"]) == ("ValueError", "cart 17 is empty", "checkout(shop.views)")


async def test_same_exception_without_stack_differing_in_volatile_values_is_one_error(server, http, pool, tracked) -> None:
    values = [
        "order 12 for 0x7f3a2b1c at 10.0.0.7 (id 3f2504e0-4f89-11d3-9a0c-0305e82c3301) by ann@example.com",
        "order 98765 for 0xdeadbeef at 192.168.1.20 (id 9b2c0a1e-0000-4000-8000-00000000abcd) by bob@example.org",
    ]
    sent = [exception_event("LookupError", value) for value in values]
    for event in sent:
        del event["exception"]["values"][0]["stacktrace"]
    await send_all(http, server, tracked, *sent)
    assert await counts(pool, tracked.project_id) == (1, 2)
    # ...while a different text is another error.
    await send_all(http, server, tracked, exception_event("LookupError", "order 12 was cancelled")
                   | {"exception": {"values": [{"type": "LookupError", "value": "order 12 was cancelled"}]}})
    assert await counts(pool, tracked.project_id) == (2, 3)


async def test_messages_with_different_numbers_are_one_error(server, http, pool, tracked) -> None:
    await send_all(http, server, tracked, message_event("user 42 logged in"), message_event("user 43 logged in"))
    assert await counts(pool, tracked.project_id) == (1, 2)
    await send_all(http, server, tracked, message_event("user 42 logged out"))
    assert await counts(pool, tracked.project_id) == (2, 3)
    names = sorted(e["name"] for e in await errors(pool, tracked.project_id))
    assert names == ["user 42 logged in", "user 42 logged out"]


async def test_message_template_groups_before_parameters(server, http, pool, tracked) -> None:
    sent = []
    for user in ("alice", "bob"):
        event = message_event(logentry={"message": "user %s logged in", "params": [user],
                                        "formatted": f"user {user} logged in"})
        del event["message"]
        sent.append(event)
    await send_all(http, server, tracked, *sent)
    assert await counts(pool, tracked.project_id) == (1, 2)
    [error] = await errors(pool, tracked.project_id)
    assert error["name"] == "user alice logged in"


async def test_different_crash_sites_are_different_errors(server, http, pool, tracked) -> None:
    at_checkout = exception_event("ValueError", "bad input", function="checkout", module="shop.views")
    at_refund = exception_event("ValueError", "bad input", function="refund", module="shop.views")
    in_other_module = exception_event("ValueError", "bad input", function="checkout", module="shop.api")
    await send_all(http, server, tracked, at_checkout, at_refund, in_other_module, exception_event("ValueError", "bad input"))
    assert await counts(pool, tracked.project_id) == (3, 4)
    actors = sorted(e["actor"] for e in await errors(pool, tracked.project_id))
    assert actors == ["checkout(shop.api)", "checkout(shop.views)", "refund(shop.views)"]
    assert (await error_of(pool, tracked, at_checkout["event_id"]))["events_count"] == 2


async def test_only_in_app_frames_group(server, http, pool, tracked) -> None:
    one = exception_event()
    two = exception_event()
    two["exception"]["values"][0]["stacktrace"]["frames"].insert(0, frame("run", "gunicorn.workers.sync", 7, in_app=False))
    two["exception"]["values"][0]["stacktrace"]["frames"][1]["function"] = "get_response"
    await send_all(http, server, tracked, one, two)
    assert await counts(pool, tracked.project_id) == (1, 2)


async def test_custom_fingerprint_groups_separately(server, http, pool, tracked) -> None:
    plain = exception_event()
    custom = exception_event(fingerprint=["custom"])
    custom_elsewhere = exception_event("KeyError", "'x'", function="refund", fingerprint=["custom"])
    default_only = exception_event(fingerprint=["{{ default }}"])
    default_plus = exception_event(fingerprint=["{{ default }}", "tenant-a"])
    await send_all(http, server, tracked, plain, custom, custom_elsewhere, default_only, default_plus)
    assert await counts(pool, tracked.project_id) == (3, 5)
    plain_error = await error_of(pool, tracked, plain["event_id"])
    assert (await error_of(pool, tracked, default_only["event_id"]))["id"] == plain_error["id"]
    custom_error = await error_of(pool, tracked, custom["event_id"])
    assert (await error_of(pool, tracked, custom_elsewhere["event_id"]))["id"] == custom_error["id"]
    assert custom_error["id"] != plain_error["id"]
    assert custom_error["events_count"] == 2 and plain_error["events_count"] == 2
    assert (await error_of(pool, tracked, default_plus["event_id"]))["id"] not in (plain_error["id"], custom_error["id"])


async def test_resolved_error_reopens_and_ignored_stays_ignored(server, http, pool, tracked) -> None:
    resolved = exception_event("ValueError", "a", function="one")
    ignored = exception_event("ValueError", "b", function="two")
    await send_all(http, server, tracked, resolved, ignored)
    resolved_id = (await error_of(pool, tracked, resolved["event_id"]))["id"]
    ignored_id = (await error_of(pool, tracked, ignored["event_id"]))["id"]
    await pool.execute("update error_tracking_errors set status = 'resolved' where id = $1", resolved_id)
    await pool.execute("update error_tracking_errors set status = 'ignored' where id = $1", ignored_id)
    await send_all(http, server, tracked, exception_event("ValueError", "a", function="one"),
                   exception_event("ValueError", "b", function="two"))
    status = {e["id"]: e["status"] for e in await errors(pool, tracked.project_id)}
    assert status == {resolved_id: "unresolved", ignored_id: "ignored"}
    assert await counts(pool, tracked.project_id) == (2, 4)
    # A retry of an already stored event does not reopen a resolved error.
    await pool.execute("update error_tracking_errors set status = 'resolved' where id = $1", resolved_id)
    await send_all(http, server, tracked, resolved)
    assert {e["id"]: e["status"] for e in await errors(pool, tracked.project_id)}[resolved_id] == "resolved"
    assert await counts(pool, tracked.project_id) == (2, 4)


async def test_first_and_last_seen_are_min_and_max_of_event_timestamps(server, http, pool, tracked) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    earliest, middle, latest = now - timedelta(hours=30), now - timedelta(hours=5), now - timedelta(minutes=10)
    as_rfc3339 = exception_event(timestamp=earliest.isoformat().replace("+00:00", "Z"))
    as_numeric_string = exception_event(timestamp=f"{middle.timestamp():.2f}")
    as_epoch = exception_event(timestamp=latest.timestamp())
    as_offset = exception_event(timestamp=(middle + timedelta(minutes=1)).astimezone(
        timezone(timedelta(hours=-5))).isoformat())
    await send_all(http, server, tracked, as_numeric_string, as_epoch, as_offset, as_rfc3339)  # out of order
    [error] = await errors(pool, tracked.project_id)
    assert error["events_count"] == 4
    assert (error["first_seen_at"], error["last_seen_at"]) == (earliest, latest)
    occurred = {r["event_id"].hex: r["occurred_at"] for r in await pool.fetch(
        "select event_id, occurred_at from error_tracking_error_events where project_id = $1", tracked.project_id)}
    assert occurred == {
        as_rfc3339["event_id"]: earliest, as_numeric_string["event_id"]: middle, as_epoch["event_id"]: latest,
        as_offset["event_id"]: middle + timedelta(minutes=1),
    }


async def test_future_timestamp_is_clamped_to_receive_time(server, http, pool, tracked) -> None:
    before = datetime.now(timezone.utc)
    future = exception_event(timestamp=time.time() + 86400 * 30)
    far_future = exception_event(timestamp="2999-01-01T00:00:00Z")
    await send_all(http, server, tracked, future, far_future)
    after = datetime.now(timezone.utc)
    rows = await pool.fetch("select occurred_at, received_at from error_tracking_error_events where project_id = $1",
                            tracked.project_id)
    assert len(rows) == 2
    for row in rows:
        assert before <= row["occurred_at"] <= after
        assert row["occurred_at"] == row["received_at"]
    [error] = await errors(pool, tracked.project_id)
    assert before <= error["first_seen_at"] <= error["last_seen_at"] <= after
