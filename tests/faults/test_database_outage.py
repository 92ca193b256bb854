"""PostgreSQL stopped in the middle of a load and started again, errgate left running: requests
are answered 503 with an integer Retry-After (never a hang, never a 200 for an event that is not
stored), readiness fails while the database is away, and ingestion resumes by itself."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any, AsyncIterator, NamedTuple

import aiohttp

from tests.faults.helpers import (
    CLIENT_TIMEOUT_SECONDS,
    Load,
    TrackedProject,
    assert_stored_once,
    embedded_postgres_cluster,
    envelope_url,
    grouped_event,
    new_session,
    serve_in_process,
    tracked_project_over_http,
    wait_until,
)
from tests.process import readiness_status

# Longer than the key cache's TTL (1 s in the test settings) and the writer's fail-fast second,
# so that every path that needs the database meets the outage.
OUTAGE_SECONDS = 4.0
RECOVERY_SECONDS = 5.0


class UnderLoad(NamedTuple):
    cluster: Any
    database_url: str
    server_url: str
    probe: aiohttp.ClientSession
    project: TrackedProject
    load: Load


@contextlib.asynccontextmanager
async def project_under_load(scratch_dir: Path, pause: float) -> AsyncIterator[UnderLoad]:
    """A PostgreSQL of the test's own (so that it can be stopped or frozen), errgate served in
    process on it with several batches in flight, a tracked project, and a load (not started) of
    8 clients over 4 groups."""
    async with embedded_postgres_cluster(scratch_dir) as cluster:
        database_url = await asyncio.to_thread(cluster.start)
        async with serve_in_process(database_url, writer_commits_in_flight=4) as server_url, new_session() as probe:
            project = await tracked_project_over_http(probe, server_url)
            load = Load(
                envelope_url(server_url, project.project_id), project.public_key, clients=8, pause=pause,
                make_event=lambda n: grouped_event(str(n % 4)),
            )
            yield UnderLoad(cluster, database_url, server_url, probe, project, load)


async def test_database_outage_answers_503_and_recovers_by_itself(scratch_dir) -> None:
    async with project_under_load(scratch_dir, pause=0.02) as (cluster, database_url, server_url, probe, project, load):
        readiness_while_down: list[int | None] = []
        async with load:
            await wait_until(lambda: len(load.acknowledged()) >= 50, 20, "50 events acknowledged")

            await asyncio.to_thread(cluster.stop, "immediate")
            stopped = time.monotonic()
            while time.monotonic() < stopped + OUTAGE_SECONDS:
                readiness_while_down.append(await readiness_status(probe, server_url))
                await asyncio.sleep(0.2)
            restarting = time.monotonic()
            await asyncio.to_thread(cluster.start)
            restarted = time.monotonic()

            ready_again: float | None = None
            accepted_again: float | None = None
            deadline = restarted + 2 * RECOVERY_SECONDS
            while (ready_again is None or accepted_again is None) and time.monotonic() < deadline:
                if ready_again is None and await readiness_status(probe, server_url) == 200:
                    ready_again = time.monotonic()
                if accepted_again is None and any(
                    o.status == 200 and o.started >= restarted for o in load.outcomes
                ):
                    accepted_again = time.monotonic()
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # and it keeps accepting
            steady_from = time.monotonic() - 1.0

        outcomes = load.outcomes
        unanswered = [o for o in outcomes if o.status is None]
        assert not unanswered, f"{len(unanswered)} requests got no answer, e.g. {unanswered[:3]}"
        assert max(o.finished - o.started for o in outcomes) < CLIENT_TIMEOUT_SECONDS
        wrong = [(o.status, o.body) for o in outcomes if o.status not in (200, 503)]
        assert not wrong, f"{len(wrong)} answers other than 200/503 during the outage, e.g. {wrong[:3]}"

        unavailable = [o for o in outcomes if o.status == 503]
        assert unavailable, "no request met the outage"
        for outcome in unavailable:
            retry_after = outcome.headers.get("Retry-After", "")
            assert retry_after.isdigit() and int(retry_after) >= 1, outcome.headers
            assert isinstance(outcome.body, dict) and set(outcome.body) == {"detail", "causes"}, outcome.body
        during = [o for o in outcomes if o.started >= stopped and o.finished <= restarting]
        assert during and all(o.status == 503 for o in during), [o.status for o in during]

        assert readiness_while_down and set(readiness_while_down) == {503}, readiness_while_down

        assert ready_again is not None and ready_again - restarted <= RECOVERY_SECONDS, (
            f"readiness not 200 within {RECOVERY_SECONDS} s of the database's return"
        )
        assert accepted_again is not None and accepted_again - restarted <= RECOVERY_SECONDS, (
            f"no event accepted within {RECOVERY_SECONDS} s of the database's return"
        )
        steady = [o for o in outcomes if o.started >= steady_from]
        assert steady and all(o.status == 200 for o in steady), [o.status for o in steady]

        await assert_stored_once(database_url, project.project_id, [o.event_id for o in load.acknowledged()])


# Longer than the client timeout: a request stuck on the database shows up as a client timeout.
FREEZE_SECONDS = CLIENT_TIMEOUT_SECONDS + 1.5


async def test_frozen_database_answers_503_within_the_client_timeout(scratch_dir) -> None:
    """PostgreSQL that accepts connections but never answers (a hung host, a network that drops
    packets): errgate must still answer every request, with 503, before the client gives up."""
    async with project_under_load(scratch_dir, pause=0.05) as (cluster, database_url, server_url, probe, project, load):
        readiness_while_frozen: list[int | None] = []
        async with load:
            await wait_until(lambda: len(load.acknowledged()) >= 30, 20, "30 events acknowledged")
            await asyncio.to_thread(cluster.freeze)
            frozen = time.monotonic()
            try:
                while time.monotonic() < frozen + FREEZE_SECONDS:
                    readiness_while_frozen.append(await readiness_status(probe, server_url))
                    await asyncio.sleep(0.5)
            finally:
                await asyncio.to_thread(cluster.thaw)
            thawed = time.monotonic()
            await wait_until(
                lambda: any(o.status == 200 and o.started >= thawed for o in load.outcomes),
                2 * RECOVERY_SECONDS, "an event accepted after the database came back",
            )

        outcomes = load.outcomes
        hung = [o for o in outcomes if o.status is None]
        assert not hung, (
            f"{len(hung)} of {len(outcomes)} requests got no answer within the {CLIENT_TIMEOUT_SECONDS} s "
            f"client timeout while the database was frozen, e.g. {hung[:2]}"
        )
        wrong = [(o.status, o.body) for o in outcomes if o.status not in (200, 503)]
        assert not wrong, f"{len(wrong)} answers other than 200/503, e.g. {wrong[:3]}"
        assert any(o.status == 503 for o in outcomes if o.started >= frozen), "no 503 while frozen"
        assert readiness_while_frozen and set(readiness_while_frozen) == {503}, readiness_while_frozen

        await assert_stored_once(database_url, project.project_id, [o.event_id for o in load.acknowledged()])
