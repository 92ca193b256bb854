"""Helpers for the Sentry collector's end-to-end tests.

A project with integrated error tracking made through the REST API, envelopes built byte by
byte, the stored row counts, and one way of posting that returns (status, json, headers).
"""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Mapping, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import orjson

from app import state
from app.db.error_counts import fold as fold_counts
from tests.conftest import ROOT_TOKEN

COLLECTOR = "/api/v4/error_tracking/collector"
NEW_GITLAB = "/errortracking/api/v1/projects"
PREFIXES = (COLLECTOR, NEW_GITLAB, "")
#: The one body of every refused key or project (nobody can tell which case it was).
REJECTED = {"detail": "event submission rejected with_reason: ProjectId", "causes": []}
NOT_STORED_TYPES = (
    "transaction", "span", "session", "sessions", "client_report", "attachment", "check_in", "log",
)


class TrackedProject(NamedTuple):
    project_id: int
    public_key: str
    dsn: str


def live_dsn(dsn: str, server_url: str) -> str:
    """The DSN a client key hands out, pointed at the live server (same key, same path)."""
    parts = urlsplit(dsn)
    live = urlsplit(server_url)
    return urlunsplit(parts._replace(scheme=live.scheme, netloc=f"{parts.username}@{live.netloc}"))


async def tracked_project(api: Any, world: Any, path: str | None = None) -> TrackedProject:
    """A new project with integrated error tracking enabled through the REST API (as root).

    Returns (project_id, public_key, dsn); the DSN points at the live server ``api`` talks to.
    """
    project = await world.project(path or f"group/app-{secrets.token_hex(4)}")
    project_id = project["id"]
    reply = await api.put(
        f"/projects/{project_id}/error_tracking/settings", token=ROOT_TOKEN, json={"active": True, "integrated": True}
    )
    assert reply.status == 200, reply.body
    assert reply.body["active"] is True and reply.body["integrated"] is True
    listed = await api.get(f"/projects/{project_id}/error_tracking/client_keys", token=ROOT_TOKEN)
    assert listed.status == 200, listed.body
    assert len(listed.body) == 1 and listed.body[0]["active"] is True, listed.body
    key = listed.body[0]
    assert urlsplit(key["sentry_dsn"]).path == f"{COLLECTOR}/{project_id}"
    return TrackedProject(project_id, key["public_key"], live_dsn(key["sentry_dsn"], api.base))


async def key_id(api: Any, project_id: int, public_key: str) -> int:
    listed = await api.get(f"/projects/{project_id}/error_tracking/client_keys", token=ROOT_TOKEN)
    assert listed.status == 200, listed.body
    return next(k["id"] for k in listed.body if k["public_key"] == public_key)


# --- URLs and headers ----------------------------------------------------------------------


def collector_url(
    server_url: str, project_id: int | str, *, endpoint: str = "envelope", prefix: str = COLLECTOR, slash: bool = True
) -> str:
    return f"{server_url}{prefix}/api/{project_id}/{endpoint}{'/' if slash else ''}"


def sentry_auth(public_key: str) -> dict[str, str]:
    """The header sentry-python sends."""
    return {"X-Sentry-Auth": f"Sentry sentry_key={public_key}, sentry_version=7, sentry_client=errgate-tests/1.0"}


# --- envelopes ------------------------------------------------------------------------------


def _payload_bytes(payload: bytes | str | Mapping[str, Any] | list[Any]) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return orjson.dumps(payload)


def item(item_type: str, payload: bytes | str | Mapping[str, Any] | list[Any] = b"", *, length: bool = True,
         **headers: Any) -> bytes:
    """One item: its header line, ``\\n``, its payload (with ``length`` in the header unless told not to)."""
    body = _payload_bytes(payload)
    item_headers: dict[str, Any] = {"type": item_type, **headers}
    if length:
        item_headers["length"] = len(body)
    return orjson.dumps(item_headers) + b"\n" + body


def envelope(*items: bytes, headers: Mapping[str, Any] | None = None, final_newline: bool = True) -> bytes:
    """``Headers { "\\n" Item } [ "\\n" ]``."""
    body = b"\n".join([orjson.dumps(dict(headers or {})), *items])
    return body + b"\n" if final_newline else body


def event_envelope(event: Mapping[str, Any], *, header_id: bool = True, **item_headers: Any) -> bytes:
    """An envelope with one ``event`` item; the envelope header carries the event's id."""
    headers = {"event_id": event["event_id"], "sent_at": now_rfc3339()} if header_id else {}
    return envelope(item("event", event, **item_headers), headers=headers)


def new_event_id() -> str:
    return uuid.uuid4().hex


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def frame(function: str, module: str, lineno: int = 10, *, in_app: bool = True) -> dict[str, Any]:
    return {
        "function": function, "module": module, "filename": module.replace(".", "/") + ".py",
        "abs_path": "/srv/app/" + module.replace(".", "/") + ".py", "lineno": lineno,
        "context_line": "    do_something()", "in_app": in_app,
    }


def exception_event(
    exc_type: str = "ValueError",
    value: str = "cart 17 is empty",
    *,
    function: str = "checkout",
    module: str = "shop.views",
    lineno: int = 42,
    **fields: Any,
) -> dict[str, Any]:
    """A Python error event as sentry-python sends it: a library frame, then the crashing in-app frame."""
    event: dict[str, Any] = {
        "event_id": new_event_id(),
        "timestamp": time.time(),
        "platform": "python",
        "level": "error",
        "environment": "production",
        "release": "shop@1.2.3",
        "exception": {
            "values": [
                {
                    "type": exc_type,
                    "value": value,
                    "module": None,
                    "mechanism": {"type": "generic", "handled": True},
                    "stacktrace": {
                        "frames": [
                            frame("handle", "django.core.handlers.base", 181, in_app=False),
                            frame(function, module, lineno),
                        ]
                    },
                }
            ]
        },
    }
    event.update(fields)
    return event


def message_event(text: str = "user 42 logged in", **fields: Any) -> dict[str, Any]:
    """A message-only event (``capture_message``)."""
    event: dict[str, Any] = {
        "event_id": new_event_id(),
        "timestamp": time.time(),
        "platform": "python",
        "level": "info",
        "message": text,
    }
    event.update(fields)
    return event


# --- the database ---------------------------------------------------------------------------


async def count_errors(pool: asyncpg.Pool, project_id: int) -> int:
    return await pool.fetchval("select count(*) from error_tracking_errors where project_id = $1", project_id)


async def count_events(pool: asyncpg.Pool, project_id: int) -> int:
    return await pool.fetchval("select count(*) from error_tracking_error_events where project_id = $1", project_id)


async def counts(pool: asyncpg.Pool, project_id: int) -> tuple[int, int]:
    """(errors, events) of a project."""
    return await count_errors(pool, project_id), await count_events(pool, project_id)


async def events_counted(pool: asyncpg.Pool, project_id: int) -> int:
    """The sum of the project's errors' counters, their pending counts folded first."""
    await fold_counts(pool)
    return await stored_events_count(pool, project_id)


async def stored_events_count(pool: asyncpg.Pool, project_id: int) -> int:
    """The sum of the project's errors' counters as stored, pending counts not folded."""
    return await pool.fetchval(
        "select coalesce(sum(events_count), 0) from error_tracking_errors where project_id = $1", project_id
    )


async def pending_rows(pool: asyncpg.Pool, project_id: int) -> int:
    """The project's rows in the pending counts, not folded yet."""
    return await pool.fetchval("select count(*) from error_tracking_error_counts_pending where project_id = $1", project_id)


async def errors(pool: asyncpg.Pool, project_id: int) -> list[asyncpg.Record]:
    """The project's errors, their pending counts folded first (as every reader of errors does)."""
    await fold_counts(pool)
    return await pool.fetch("select * from error_tracking_errors where project_id = $1 order by id", project_id)


async def events(pool: asyncpg.Pool, project_id: int) -> list[asyncpg.Record]:
    return await pool.fetch(
        "select * from error_tracking_error_events where project_id = $1 order by received_at, event_id", project_id
    )


async def event_row(pool: asyncpg.Pool, project_id: int, event_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "select * from error_tracking_error_events where project_id = $1 and event_id = $2::uuid",
        project_id, event_id,
    )


def unpack_event(text: str) -> dict[str, Any]:
    """An event as errgate stores it (``payload_text``, the JSON text of ``app.ingest.payload.pack_event``)."""
    return orjson.loads(text)


def payload_of(row: asyncpg.Record) -> dict[str, Any]:
    return unpack_event(row["payload_text"])


def counter(server: Any, name: str, **labels: str) -> float:
    """A sample of ``server``'s metrics registry, 0 when it has none yet."""
    return server.app[state.METRICS].registry.get_sample_value(name, labels) or 0.0


def items_received(server: Any, item_type: str) -> float:
    """The collector's count of received items of ``item_type`` (Prometheus counter)."""
    return counter(server, "errgate_ingest_items_total", type=item_type)


# --- HTTP -----------------------------------------------------------------------------------


async def post_envelope(
    session: aiohttp.ClientSession,
    url: str,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    skip_auto_headers: tuple[str, ...] = (),
) -> tuple[int, Any, Any]:
    """POST ``body`` as is; returns (status, parsed JSON body or None, response headers)."""
    async with session.post(url, data=body, headers=dict(headers or {}), skip_auto_headers=skip_auto_headers) as resp:
        raw = await resp.read()
        parsed = orjson.loads(raw) if raw else None
        return resp.status, parsed, resp.headers


async def send_all(http: aiohttp.ClientSession, server: Any, tracked: TrackedProject, *events: Mapping[str, Any]) -> None:
    """Post each event in its own envelope to ``tracked``'s collector and check it was accepted."""
    url = collector_url(server.url, tracked.project_id)
    for event in events:
        status, body, _ = await post_envelope(http, url, event_envelope(event), sentry_auth(tracked.public_key))
        assert_accepted(status, body, event["event_id"])


def assert_problem(status: int, body: Any, expected_status: int) -> None:
    """A collector error: the expected status and Relay's ``{"detail": str, "causes": [str]}``."""
    assert status == expected_status, (status, body)
    assert isinstance(body, dict) and set(body) == {"detail", "causes"}, body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert isinstance(body["causes"], list) and all(isinstance(c, str) for c in body["causes"]), body


def assert_accepted(status: int, body: Any, event_id: str | None = None) -> None:
    """200 with ``{"id": <32 hex>}`` (the given id when known), or ``{}`` when ``event_id`` is ``""``."""
    assert status == 200, (status, body)
    if event_id == "":
        assert body == {}, body
        return
    assert isinstance(body, dict) and set(body) == {"id"}, body
    assert isinstance(body["id"], str) and len(body["id"]) == 32 and int(body["id"], 16) >= 0, body
    assert body["id"] == body["id"].lower()
    if event_id is not None:
        assert body["id"] == event_id.replace("-", "").lower(), body
