"""``/metrics``: Prometheus text with the HTTP, collector, writer and pool metrics; optionally on its own port."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from app import health
from app.server import create_app, start_sites, stop_sites
from tests.conftest import ROOT_TOKEN, Api, ServerFactory
from tests.conftest import test_settings as settings_for
from tests.ingest_http.helpers import (
    COLLECTOR, collector_url, count_events, event_envelope, exception_event, post_envelope, sentry_auth,
    tracked_project,
)

ENVELOPE_ROUTE = COLLECTOR + "/api/{project_id}/envelope/"


class Scrape:
    """One parsed ``/metrics`` answer: ``scrape.value("errgate_events_accepted_total")``."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def type_of(self, family: str) -> str:
        return self.families[family].type

    def value(self, sample: str, **labels: str) -> float | None:
        for family in self.families.values():
            for each in family.samples:
                if each.name == sample and all(each.labels.get(k) == v for k, v in labels.items()):
                    return each.value
        return None


async def scrape(http: aiohttp.ClientSession, url: str) -> Scrape:
    async with http.get(url + health.METRICS_PATH) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        return Scrape(await response.text())


async def test_metrics_after_api_and_collector_traffic(
    start_server: ServerFactory, http: aiohttp.ClientSession, world: Any, pool: asyncpg.Pool
) -> None:
    server = await start_server()
    api = Api(http, server.url)
    tracked = await tracked_project(api, world)
    assert (await api.get("/projects", token=ROOT_TOKEN)).status == 200
    assert (await api.get("/projects/999999999", token=ROOT_TOKEN)).status == 404
    url = collector_url(server.url, tracked.project_id)
    event = exception_event()
    status, body, _ = await post_envelope(http, url, event_envelope(event), sentry_auth(tracked.public_key))
    assert (status, body) == (200, {"id": event["event_id"]})
    unknown_key = sentry_auth("glet_unknown" + "0" * 20)
    status, _, _ = await post_envelope(http, url, event_envelope(exception_event()), unknown_key)
    assert status == 403
    status, _, _ = await post_envelope(http, url, b"{not json\n", sentry_auth(tracked.public_key))
    assert status == 400
    assert await count_events(pool, tracked.project_id) == 1

    metrics = await scrape(http, server.url)

    assert metrics.type_of("errgate_http_requests") == "counter"
    for route, status_code in (
        ("/api/v4/projects", "200"), ("/api/v4/projects/{id}", "404"),
        (ENVELOPE_ROUTE, "200"), (ENVELOPE_ROUTE, "403"), (ENVELOPE_ROUTE, "400"),
    ):
        assert metrics.value("errgate_http_requests_total", route=route, status=status_code) == 1, (route, status_code)
    assert metrics.value("errgate_http_requests_total", route=ENVELOPE_ROUTE, method="POST", status="200") == 1

    assert metrics.type_of("errgate_http_request_duration_seconds") == "histogram"
    assert metrics.value("errgate_http_request_duration_seconds_count", route=ENVELOPE_ROUTE) == 3
    assert metrics.value("errgate_http_request_duration_seconds_bucket", route=ENVELOPE_ROUTE, le="+Inf") == 3
    assert metrics.value("errgate_http_request_duration_seconds_sum", route=ENVELOPE_ROUTE) > 0

    assert metrics.value("errgate_ingest_items_total", type="event") == 1
    assert metrics.value("errgate_events_accepted_total") == 1
    assert metrics.value("errgate_events_stored_total") == 1
    assert metrics.value("errgate_events_rejected_total", reason="forbidden") == 1
    assert metrics.value("errgate_events_rejected_total", reason="invalid") == 1

    assert metrics.type_of("errgate_writer_batch_size") == "histogram"
    assert metrics.value("errgate_writer_batch_size_count") == 1
    assert metrics.value("errgate_writer_batch_size_sum") == 1
    assert metrics.value("errgate_writer_commit_duration_seconds_count") == 1
    assert metrics.value("errgate_writer_commit_duration_seconds_sum") > 0

    assert metrics.value("errgate_writer_pending_events") == 0
    pool_size = metrics.value("errgate_db_pool_connections")
    in_use = metrics.value("errgate_db_pool_connections_in_use")
    assert pool_size is not None and 1 <= pool_size <= 10
    assert in_use is not None and 0 <= in_use <= pool_size


async def test_queue_depth_counts_events_waiting_for_their_batch(
    start_server: ServerFactory, http: aiohttp.ClientSession, world: Any
) -> None:
    server = await start_server(batch_max_wait_ms=2000)
    tracked = await tracked_project(Api(http, server.url), world)
    url = collector_url(server.url, tracked.project_id)
    auth = sentry_auth(tracked.public_key)
    sending = [asyncio.create_task(post_envelope(http, url, event_envelope(exception_event()), auth)) for _ in range(3)]
    deadline = time.monotonic() + 1.5
    depth = None
    while depth != 3 and time.monotonic() < deadline:
        depth = (await scrape(http, server.url)).value("errgate_writer_pending_events")
    assert depth == 3
    assert [status for status, _, _ in await asyncio.gather(*sending)] == [200, 200, 200]
    assert (await scrape(http, server.url)).value("errgate_writer_pending_events") == 0


async def test_metrics_on_their_own_port(database_url: str, pool: asyncpg.Pool, http: aiohttp.ClientSession) -> None:
    settings = settings_for(database_url, host="127.0.0.1", port=0, metrics_port=0)
    app = create_app(settings)
    runners = await start_sites(app, settings)
    try:
        main = f"http://127.0.0.1:{runners[0].addresses[0][1]}"
        metrics = f"http://127.0.0.1:{runners[1].addresses[0][1]}"
        assert main != metrics
        async with http.get(main + health.METRICS_PATH) as response:
            assert response.status == 404
            assert await response.json() == {"message": "404 Not Found"}
        async with http.get(main + health.LIVENESS_PATH) as response:
            assert response.status == 200
        async with http.get(metrics + health.LIVENESS_PATH) as response:
            assert response.status == 404
        scraped = await scrape(http, metrics)
        assert scraped.value("errgate_http_requests_total", route=health.LIVENESS_PATH, status="200") == 1
        assert scraped.value("errgate_http_requests_total", route="unmatched", status="404") == 1
        assert scraped.value("errgate_db_pool_connections") >= 1
    finally:
        await stop_sites(app, runners)
