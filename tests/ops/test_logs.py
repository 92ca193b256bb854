"""Structured logs of a real ``errgate serve``: one JSON object per line, never a token, key or
payload, at the level of ``ERRGATE_LOG_LEVEL``."""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp
import orjson

from app.health import LIVENESS_PATH
from tests.conftest import ROOT_TOKEN, Api, World
from tests.ingest_http.helpers import (
    collector_url, event_envelope, exception_event, post_envelope, sentry_auth, tracked_project,
)
from tests.ops.conftest import ProcessFactory
from tests.process import ErrgateProcess

ENVELOPE_ROUTE = "/api/v4/error_tracking/collector/api/{project_id}/envelope/"
STORE_ROUTE = "/api/v4/error_tracking/collector/api/{project_id}/store/"
# SENTRY_DSN set, so that the self-reporting start in each process is exercised too (nothing is sent).
DEAD_DSN = "http://glet_00000000000000000000dead@127.0.0.1:9/api/v4/error_tracking/collector/1"


async def _traffic(proc: ErrgateProcess, http: aiohttp.ClientSession, world: World) -> dict[str, str]:
    """API and collector requests with credentials in every place they may be; returns the secrets used."""
    user = await world.user()
    user_token = await world.token(user)
    api = Api(http, proc.url)
    tracked = await tracked_project(api, world)
    marker = "payload-marker-" + secrets.token_hex(8)
    bad_key = "glet_" + secrets.token_hex(12)

    assert (await api.get("/projects", token=ROOT_TOKEN, headers={"X-Request-Id": "logs-test-1"})).status == 200
    assert (await api.get("/user", headers={"Authorization": f"Bearer {user_token}"})).status == 200
    assert (await api.get("/user", params={"private_token": user_token})).status == 200
    clients = f"/projects/{tracked.project_id}/error_tracking/client_keys"
    assert (await api.get(clients, token=ROOT_TOKEN)).status == 200

    url = collector_url(proc.url, tracked.project_id)
    event = exception_event(value=marker, extra={"note": marker})
    status, _, _ = await post_envelope(http, url, event_envelope(event), sentry_auth(tracked.public_key))
    assert status == 200
    store = collector_url(proc.url, tracked.project_id, endpoint="store") + f"?sentry_key={tracked.public_key}"
    status, _, _ = await post_envelope(http, store, orjson.dumps(exception_event(value=marker)))
    assert status == 200
    status, _, _ = await post_envelope(http, url, event_envelope(exception_event(value=marker)), sentry_auth(bad_key))
    assert status == 403
    async with http.get(proc.url + LIVENESS_PATH) as response:
        assert response.status == 200
    return {
        "root token": ROOT_TOKEN, "user token": user_token, "public key": tracked.public_key, "bad key": bad_key,
        "payload": marker, "project": str(tracked.project_id),
    }


def _lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        entry = orjson.loads(line)  # every line is JSON ...
        assert isinstance(entry, dict), line  # ... and an object
        assert {"time", "level", "logger", "message"} <= set(entry), line
        parsed.append(entry)
    return parsed


async def test_info_logs_are_json_access_lines_without_secrets(
    errgate_process: ProcessFactory, http: aiohttp.ClientSession, world: World
) -> None:
    async with errgate_process(ERRGATE_LOG_LEVEL="info", SENTRY_DSN=DEAD_DSN) as proc:
        used = await _traffic(proc, http, world)
        proc.terminate()
        assert await proc.wait(10) == 0
    text = proc.log()
    lines = _lines(text)
    access = [e for e in lines if e["logger"] == "errgate.access"]
    for entry in access:
        assert isinstance(entry["request_id"], str) and entry["request_id"], entry
        assert isinstance(entry["route"], str) and isinstance(entry["status"], int), entry
        assert isinstance(entry["duration_ms"], (int, float)) and entry["duration_ms"] >= 0, entry
        assert "project_id" in entry and entry["method"] in ("GET", "POST", "PUT"), entry
    by_route = {(e["route"], e["status"]): e for e in access}
    project = used["project"]
    assert by_route[(ENVELOPE_ROUTE, 200)]["project_id"] == project
    assert by_route[(ENVELOPE_ROUTE, 403)]["project_id"] == project
    assert by_route[(STORE_ROUTE, 200)]["project_id"] == project
    assert by_route[("/api/v4/projects/{id}/error_tracking/client_keys", 200)]["project_id"] == project
    assert by_route[("/api/v4/projects", 200)]["project_id"] is None
    assert by_route[("/api/v4/projects", 200)]["request_id"] == "logs-test-1"
    assert (LIVENESS_PATH, 200) in by_route
    assert len([e for e in access if e["route"] == "/api/v4/user" and e["status"] == 200]) == 2
    assert any(e["message"] == "errgate listening" for e in lines)
    for what, value in used.items():
        if what != "project":
            assert value not in text, f"{what} in the logs"
    assert "private_token" not in text and "sentry_key" not in text


async def test_warning_level_has_no_access_lines(
    errgate_process: ProcessFactory, http: aiohttp.ClientSession, world: World
) -> None:
    async with errgate_process(ERRGATE_LOG_LEVEL="warning") as proc:
        await _traffic(proc, http, world)
        proc.terminate()
        assert await proc.wait(10) == 0
    lines = _lines(proc.log())
    assert not [e for e in lines if e["logger"] == "errgate.access"]
    assert all(e["level"] in ("warning", "error", "critical") for e in lines), lines
