"""SIGKILL in the middle of a load: every acknowledged event is stored exactly once, the counters
match the stored events, and errgate serves again when restarted on the same database."""

from __future__ import annotations

import signal

import pytest

from tests.faults.helpers import (
    Load,
    assert_stored_once,
    counter_mismatches,
    envelope_url,
    error_counts,
    fresh_database,
    grouped_event,
    new_session,
    post_event,
    stored_event_ids,
    tracked_project_over_http,
    wait_until,
)
from tests.conftest import connect
from tests.process import errgate_process, readiness_status

CLIENTS = 16
ACKNOWLEDGED_BEFORE_KILL = 200


@pytest.mark.parametrize("commits_in_flight", ["1", "4"])
async def test_sigkill_under_load_loses_no_acknowledged_event(
    base_database_url, scratch_dir, commits_in_flight
) -> None:
    async with fresh_database(base_database_url) as url:
        async with errgate_process(
            url, scratch_dir / "errgate.log", ERRGATE_WRITER_COMMITS_IN_FLIGHT=commits_in_flight
        ) as errgate:
            async with new_session() as session:
                project = await tracked_project_over_http(session, errgate.url)
            load = Load(
                envelope_url(errgate.url, project.project_id), project.public_key, clients=CLIENTS,
                make_event=lambda n: grouped_event(str(n % 5)),
            )
            async with load:
                await wait_until(
                    lambda: len(load.acknowledged()) >= ACKNOWLEDGED_BEFORE_KILL, 30, "events acknowledged"
                )
                errgate.signal(signal.SIGKILL)
                assert await errgate.wait(10) == -signal.SIGKILL
            port = errgate.port

        acknowledged = load.acknowledged()
        in_flight = [o for o in load.outcomes if o.status is None]
        assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL
        assert in_flight, "the kill was expected to cut requests in flight"
        unexpected = [o for o in load.outcomes if o.status not in (200, None)]
        assert not unexpected, unexpected[:5]
        for outcome in acknowledged:
            assert outcome.body == {"id": outcome.event_id}, outcome

        stored, errors = await assert_stored_once(url, project.project_id, [o.event_id for o in acknowledged])
        assert set(stored) <= {o.event_id for o in load.outcomes}
        assert sum(e["stored"] for e in errors) == len(stored)

        # The same database, the same port: errgate comes back by itself.
        async with errgate_process(url, scratch_dir / "errgate-restarted.log", port=port) as restarted:
            async with new_session() as session:
                assert await readiness_status(session, restarted.url) == 200
                event = grouped_event("after-restart")
                outcome = await post_event(
                    session, envelope_url(restarted.url, project.project_id), project.public_key, event
                )
            assert outcome.status == 200 and outcome.body == {"id": event["event_id"]}, outcome
            async with connect(url) as db:
                stored_after = await stored_event_ids(db, project.project_id)
                assert stored_after[event["event_id"]] == 1
                assert all(n == 1 for n in stored_after.values())
                assert counter_mismatches(await error_counts(db, project.project_id)) == []
