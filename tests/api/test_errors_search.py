"""The errors list's search, environment filter and status terms over events stored by the real collector."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app.db import tracked_errors
from app.search_query import parse_query
from tests.api.triage import errors_url, exception_event, message_event, send, tracked_project
from tests.conftest import ROOT_TOKEN


@pytest.fixture
async def shop(server, api, world):
    """Four errors: A (production, 1.0), B (staging, 2.0, warning), C (a message), D (resolved)."""
    tracked = await tracked_project(api, world)
    await send(server, tracked,
               exception_event("ValueError", "cart 17 is empty", function="checkout", module="shop.views",
                               environment="production", release="1.0"), ago=40)
    await send(server, tracked,
               exception_event("KeyError", "basket_id", function="pay", module="shop.payments",
                               environment="staging", release="2.0", level="warning"), ago=30)
    await send(server, tracked,
               message_event("Disk almost FULL: 100% of /var", environment="production", release="1.0"), ago=20)
    await send(server, tracked,
               exception_event("TypeError", "cannot add", function="total", module="shop.cart",
                               environment="production", release="1.0"), ago=10)
    ids = {e["name"]: e["id"] for e in (await api.get(errors_url(tracked.project_id), token=ROOT_TOKEN)).body}
    named = {"A": ids["ValueError"], "B": ids["KeyError"], "C": ids["Disk almost FULL: 100% of /var"],
             "D": ids["TypeError"]}
    reply = await api.put(errors_url(tracked.project_id, f"/{named['D']}"), token=ROOT_TOKEN,
                          json={"status": "resolved"})
    assert reply.status == 200
    return tracked, named


async def listed(api, tracked, **params) -> list[int]:
    reply = await api.get(errors_url(tracked.project_id), token=ROOT_TOKEN, params=params)
    assert reply.status == 200, reply.body
    assert reply.headers["X-Total"] == str(len(reply.body))
    return sorted(e["id"] for e in reply.body)


def ids_of(named, letters: str) -> list[int]:
    return sorted(named[letter] for letter in letters)


@pytest.mark.parametrize("params, expected", [
    ({}, "ABC"),
    ({"search": "valueerror"}, "A"),  # the name, case-insensitive
    ({"search": "CART 17"}, "A"),  # two words, both in the description
    ({"search": "shop.PAYMENTS"}, "B"),  # the actor: pay(shop.payments)
    ({"search": "cart basket"}, ""),  # every word must match
    ({"search": '"cart 17"'}, "A"),  # a quoted phrase
    ({"search": '"17 cart"'}, ""),
    ({"search": "100%"}, "C"),  # LIKE's % and _ are literal
    ({"search": "%"}, "C"),
    ({"search": "basket_id"}, "B"),
    ({"search": "_"}, "B"),
    ({"search": "environment:production"}, "AC"),
    ({"search": "release:2.0"}, "B"),
    ({"search": "release:1.0 is:all"}, "ACD"),
    ({"search": "level:warning"}, "B"),
    ({"search": "level:info"}, "C"),
    ({"search": "is:resolved"}, "D"),
    ({"search": "is:ignored"}, ""),
    ({"search": "is:all"}, "ABCD"),
    ({"search": "cart environment:production level:error"}, "A"),
    ({"search": "shop is:all environment:production"}, "AD"),
    ({"environment": "staging"}, "B"),
    ({"environment": "production", "search": "disk"}, "C"),
    ({"environment": "nowhere"}, ""),
    ({"status": "all"}, "ABCD"),
    ({"status": "resolved"}, "D"),
    ({"status": "resolved", "search": "is:unresolved"}, "ABC"),  # a term overrides the parameter
    ({"status": "all", "environment": "production", "search": "release:1.0"}, "ACD"),
    ({"status": "", "search": "", "environment": "", "sort": ""}, "ABC"),  # blank: not given
])
async def test_search_terms_filters_and_statuses(api, shop, params, expected) -> None:
    tracked, named = shop
    assert await listed(api, tracked, **params) == ids_of(named, expected)


@pytest.mark.parametrize("params, message", [
    ({"status": "bogus"}, "status does not have a valid value"),
    ({"sort": "bogus"}, "sort does not have a valid value"),
    ({"status": "bogus", "sort": "bogus"}, "status does not have a valid value, sort does not have a valid value"),
    ({"search": "is:bogus"}, "search term is: must be one of unresolved, resolved, ignored, all"),
    ({"search": "level:loud"}, "search term level: must be one of fatal, error, warning, info, debug"),
    ({"search": "release:"}, "search term release: needs a value"),
    ({"search": "a\x00b"}, "search is invalid"),
    ({"search": "x" * 1001}, "search is longer than 1000 characters"),
])
async def test_bad_values_are_400(api, shop, params, message) -> None:
    tracked, _ = shop
    reply = await api.get(errors_url(tracked.project_id), token=ROOT_TOKEN, params=params)
    assert (reply.status, reply.body) == (400, {"error": message})


async def test_environment_filter_after_events_in_two_environments(server, api, shop) -> None:
    tracked, named = shop
    assert await listed(api, tracked, environment="qa") == []
    await send(server, tracked, exception_event("ValueError", "cart 18 is empty", function="checkout",
                                                module="shop.views", environment="qa", release="1.1"))
    assert await listed(api, tracked, environment="qa") == ids_of(named, "A")
    assert await listed(api, tracked, environment="production") == ids_of(named, "AC")
    assert await listed(api, tracked, search="environment:qa release:1.0") == ids_of(named, "A")
    reply = await api.get(errors_url(tracked.project_id, f"/{named['A']}"), token=ROOT_TOKEN)
    assert reply.body["environments"] == ["production", "qa"]
    assert (reply.body["first_release"], reply.body["last_release"]) == ("1.0", "1.1")
    assert reply.body["summary"]["environments"] == ["production", "qa"]
    assert reply.body["summary"]["releases"] == ["1.0", "1.1"]
    assert reply.body["events_count"] == 2


async def test_a_new_event_of_a_resolved_error_reopens_it_and_it_is_listed_again(server, api, shop) -> None:
    tracked, named = shop
    await send(server, tracked, exception_event("TypeError", "cannot add", function="total", module="shop.cart",
                                                environment="staging", release="3.0", level="fatal"))
    assert await listed(api, tracked, search="level:fatal") == ids_of(named, "D")
    assert await listed(api, tracked, environment="staging") == ids_of(named, "BD")


async def test_search_does_not_reach_another_project(server, api, world, shop) -> None:
    tracked, _ = shop
    other = await tracked_project(api, world)
    await send(server, other, exception_event("ValueError", "cart 17 is empty", function="checkout",
                                              module="shop.views", environment="production"))
    assert len(await listed(api, tracked, search="cart")) == 1
    assert len(await listed(api, other, search="cart environment:production")) == 1


async def test_status_counts_apply_the_other_filters(pool, shop) -> None:
    tracked, _ = shop
    counts = await tracked_errors.status_counts(pool, tracked.project_id, parse_query(None))
    assert counts == {"unresolved": 3, "resolved": 1, "ignored": 0}
    counts = await tracked_errors.status_counts(pool, tracked.project_id, parse_query("shop", environment="production"))
    assert counts == {"unresolved": 1, "resolved": 1, "ignored": 0}


async def test_recent_counts_per_hour_oldest_first(server, pool, shop) -> None:
    tracked, named = shop
    await send(server, tracked, exception_event("ValueError", "cart 17 is empty", function="checkout",
                                                module="shop.views"), ago=2 * 3600)
    now = datetime.now(timezone.utc)
    counts = await tracked_errors.recent_counts(pool, tracked.project_id, [named["A"], named["B"], 0], now)
    assert set(counts) == {named["A"], named["B"], 0}
    assert all(len(c) == 24 for c in counts.values())
    assert counts[0] == [0] * 24 and sum(counts[named["B"]]) == 1
    assert sum(counts[named["A"]]) == 2
    # The event two hours ago is in the bucket of its hour (the current one is last).
    hours_back = (now.replace(minute=0, second=0, microsecond=0) - (now - timedelta(hours=2)).replace(
        minute=0, second=0, microsecond=0)) // timedelta(hours=1)
    assert counts[named["A"]][23 - hours_back] >= 1
