"""Helpers of the triage API tests: events sent to a tracked project through the real collector."""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from tests.ingest_http.helpers import (
    TrackedProject,
    assert_accepted,
    collector_url,
    event_envelope,
    exception_event,
    message_event,
    post_envelope,
    sentry_auth,
    tracked_project,
)

__all__ = ["TrackedProject", "errors_url", "exception_event", "message_event", "send", "tracked_project"]


def errors_url(project_id: int, suffix: str = "") -> str:
    return f"/projects/{project_id}/error_tracking/errors{suffix}"


async def send(server: Any, tracked: TrackedProject, *events: dict[str, Any], ago: float | None = None) -> list[str]:
    """Post each event in its own envelope (so its own batch), timestamped ``ago`` seconds in
    the past when given; returns their ids."""
    async with aiohttp.ClientSession() as http:
        for event in events:
            if ago is not None:
                event["timestamp"] = time.time() - ago
            status, body, _ = await post_envelope(
                http, collector_url(server.url, tracked.project_id), event_envelope(event),
                sentry_auth(tracked.public_key),
            )
            assert_accepted(status, body, event["event_id"])
    return [event["event_id"] for event in events]

