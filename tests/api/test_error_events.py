"""An error's events (newest first, latest, one by id) and its summary, over events stored by the real collector."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from app.db import error_events
from tests.api.helpers import FORBIDDEN, GUEST, REPORTER, UNAUTHORIZED, parse_link_header
from tests.api.triage import errors_url, exception_event, send, tracked_project
from tests.conftest import ROOT_TOKEN

ERROR_NOT_FOUND = {"message": "404 Error Not Found"}
EVENT_NOT_FOUND = {"message": "404 Event Not Found"}


def checkout_event(**fields):
    return exception_event("ValueError", "cart is empty", function="checkout", module="shop.views", **fields)


@pytest.fixture
async def checkout(server, api, world):
    """A tracked project whose checkout error has five events, 50 to 10 seconds old, sent oldest first."""
    tracked = await tracked_project(api, world)
    sent = []
    for n, browser in enumerate(["firefox", "firefox", "chrome", "firefox", "safari"]):
        environment = "production" if n % 2 == 0 else "staging"
        sent += await send(server, tracked, checkout_event(
            environment=environment, release=f"1.{n}", tags={"browser": browser, "n": n}), ago=50 - 10 * n)
    [error] = (await api.get(errors_url(tracked.project_id), token=ROOT_TOKEN)).body
    return tracked, error["id"], sent


def events_url(tracked, error_id, suffix: str = "") -> str:
    return errors_url(tracked.project_id, f"/{error_id}/events{suffix}")


async def test_events_are_newest_first_with_their_payload(api, checkout) -> None:
    tracked, error_id, sent = checkout
    reply = await api.get(events_url(tracked, error_id), token=ROOT_TOKEN)
    assert reply.status == 200
    assert [e["event_id"] for e in reply.body] == sent[::-1]
    newest = reply.body[0]
    assert set(newest) == {"event_id", "error_id", "occurred_at", "received_at", "environment", "release", "level",
                           "payload"}
    assert (newest["error_id"], newest["environment"], newest["release"], newest["level"]) == (
        error_id, "production", "1.4", "error")
    assert newest["payload"]["event_id"] == sent[-1]
    assert newest["payload"]["tags"] == {"browser": "safari", "n": 4}
    assert newest["payload"]["exception"]["values"][0]["value"] == "cart is empty"
    times = [datetime.fromisoformat(e["occurred_at"]) for e in reply.body]
    assert times == sorted(times, reverse=True)
    assert reply.headers["X-Total"] == "5"


async def test_events_are_paginated(api, checkout) -> None:
    tracked, error_id, sent = checkout
    reply = await api.get(events_url(tracked, error_id), token=ROOT_TOKEN, params={"per_page": "2", "page": "2"})
    assert [e["event_id"] for e in reply.body] == sent[::-1][2:4]
    headers = reply.headers
    assert (headers["X-Total"], headers["X-Total-Pages"], headers["X-Per-Page"], headers["X-Page"],
            headers["X-Next-Page"], headers["X-Prev-Page"]) == ("5", "3", "2", "2", "3", "1")
    links = parse_link_header(headers["Link"])
    assert set(links) == {"prev", "next", "first", "last"}
    assert links["last"].endswith("/events?page=3&per_page=2")


async def test_latest_and_one_by_id(api, checkout) -> None:
    tracked, error_id, sent = checkout
    latest = await api.get(events_url(tracked, error_id, "/latest"), token=ROOT_TOKEN)
    listed = await api.get(events_url(tracked, error_id), token=ROOT_TOKEN)
    assert latest.status == 200 and latest.body == listed.body[0]
    for form in (sent[1], str(uuid.UUID(sent[1])), sent[1].upper()):
        one = await api.get(events_url(tracked, error_id, f"/{form}"), token=ROOT_TOKEN)
        assert (one.status, one.body) == (200, listed.body[3])


async def test_missing_and_foreign_errors_and_events_are_404(server, api, world, checkout) -> None:
    tracked, error_id, sent = checkout
    other = await tracked_project(api, world)
    [foreign_event] = await send(server, other, checkout_event())
    [foreign] = (await api.get(errors_url(other.project_id), token=ROOT_TOKEN)).body
    await send(server, tracked, exception_event("KeyError", "x", function="pay", module="shop.pay"))
    sibling = next(e["id"] for e in (await api.get(errors_url(tracked.project_id), token=ROOT_TOKEN)).body
                   if e["id"] != error_id)
    for missing_error in (foreign["id"], 0, "abc", "9" * 30):
        for suffix in ("", "/latest", f"/{sent[0]}"):
            reply = await api.get(events_url(tracked, missing_error, suffix), token=ROOT_TOKEN)
            assert (reply.status, reply.body) == (404, ERROR_NOT_FOUND), (missing_error, suffix)
    for missing_event in (foreign_event, uuid.uuid4().hex, "abc", "1" * 31, sent[0] + "0", "%00"):
        reply = await api.get(events_url(tracked, error_id, f"/{missing_event}"), token=ROOT_TOKEN)
        assert (reply.status, reply.body) == (404, EVENT_NOT_FOUND), missing_event
    # An event of another error of the same project.
    [sibling_event] = (await api.get(events_url(tracked, sibling), token=ROOT_TOKEN)).body
    reply = await api.get(events_url(tracked, error_id, f"/{sibling_event['event_id']}"), token=ROOT_TOKEN)
    assert (reply.status, reply.body) == (404, EVENT_NOT_FOUND)


@pytest.mark.parametrize("level, status", [(GUEST, 403), (REPORTER, 200)])
async def test_reading_events_needs_reporter(api, world, checkout, level, status) -> None:
    tracked, error_id, sent = checkout
    project = {"id": tracked.project_id}
    token = await world.user_with_role(project, level)
    for suffix in ("", "/latest", f"/{sent[0]}"):
        reply = await api.get(events_url(tracked, error_id, suffix), token=token)
        assert reply.status == status
        if status == 403:
            assert reply.body == FORBIDDEN
    unauthenticated = await api.get(events_url(tracked, error_id))
    assert (unauthenticated.status, unauthenticated.body) == (401, UNAUTHORIZED)
    stranger = await world.token(await world.user())
    reply = await api.get(events_url(tracked, error_id), token=stranger)
    assert (reply.status, reply.body) == (404, {"message": "404 Project Not Found"})


async def test_a_read_api_token_reads_events(api, world, checkout) -> None:
    tracked, error_id, _ = checkout
    user = await world.user()
    await world.member({"id": tracked.project_id}, user, REPORTER)
    token = await world.token(user, scopes=("read_api",))
    assert (await api.get(events_url(tracked, error_id), token=token)).status == 200


async def test_the_summary_counts_events_and_tags(api, checkout) -> None:
    tracked, error_id, _ = checkout
    reply = await api.get(errors_url(tracked.project_id, f"/{error_id}"), token=ROOT_TOKEN)
    summary = reply.body["summary"]
    assert sum(b["count"] for b in summary["events_per_hour"]) == 5
    assert sum(b["count"] for b in summary["events_per_day"]) == 5
    now = datetime.now(timezone.utc)
    last_hour = datetime.fromisoformat(summary["events_per_hour"][-1]["start"])
    assert last_hour <= now < last_hour + timedelta(hours=1)
    tags = {t["key"]: t["values"] for t in summary["tags"]}
    assert tags["browser"] == [{"value": "firefox", "count": 3}, {"value": "chrome", "count": 1},
                               {"value": "safari", "count": 1}]
    assert tags["environment"] == [{"value": "production", "count": 3}, {"value": "staging", "count": 2}]
    assert tags["level"] == [{"value": "error", "count": 5}]
    assert len(tags["release"]) == 5 and len(tags["n"]) == 5
    assert summary["environments"] == ["production", "staging"]
    assert summary["releases"] == ["1.0", "1.1", "1.2", "1.3", "1.4"]
    assert (reply.body["first_release"], reply.body["last_release"]) == ("1.0", "1.4")


async def test_neighbours_of_an_event(pool, checkout) -> None:
    tracked, error_id, sent = checkout
    ids = [uuid.UUID(s) for s in sent]  # oldest first
    middle = await error_events.event(pool, tracked.project_id, error_id, ids[2])
    assert await error_events.neighbours(pool, tracked.project_id, error_id, middle) == {
        "newest": ids[4], "newer": ids[3], "older": ids[1], "oldest": ids[0]}
    newest = await error_events.latest_event(pool, tracked.project_id, error_id)
    assert await error_events.neighbours(pool, tracked.project_id, error_id, newest) == {
        "newest": None, "newer": None, "older": ids[3], "oldest": ids[0]}


async def test_events_stored_as_jsonb_before_payload_text_are_read_too(api, pool, checkout) -> None:
    tracked, error_id, sent = checkout
    await pool.execute(
        """update error_tracking_error_events set payload = payload_text::jsonb, payload_text = null
           where project_id = $1 and event_id = $2::uuid""", tracked.project_id, sent[0])
    reply = await api.get(events_url(tracked, error_id, f"/{sent[0]}"), token=ROOT_TOKEN)
    assert reply.body["payload"]["event_id"] == sent[0]
    assert reply.body["payload"]["tags"] == {"browser": "firefox", "n": 0}
    summary = (await api.get(errors_url(tracked.project_id, f"/{error_id}"), token=ROOT_TOKEN)).body["summary"]
    assert {"value": "firefox", "count": 3} in next(t["values"] for t in summary["tags"] if t["key"] == "browser")


async def test_tags_sent_as_pairs_are_counted_too(server, api, checkout) -> None:
    tracked, error_id, _ = checkout
    await send(server, tracked, checkout_event(tags=[["browser", "opera"], ["bad"], "worse", ["level", "x"]]))
    summary = (await api.get(errors_url(tracked.project_id, f"/{error_id}"), token=ROOT_TOKEN)).body["summary"]
    tags = {t["key"]: t["values"] for t in summary["tags"]}
    assert {"value": "opera", "count": 1} in tags["browser"]
    assert tags["level"] == [{"value": "error", "count": 6}]  # the column, not the payload's tag
