"""The benchmark's own arithmetic and options (the benchmark itself is run by hand, not here)."""

from __future__ import annotations

import os

import pytest

from app.config import Settings

from tests.bench.figures import ceiling_figures, cpu_figures, percentile_ms, wal_figures
from tests.bench.options import parse_args
from tests.bench.processes import backend_database, parse_cpus


def test_cpu_lists_are_parsed_and_cores_not_available_refused() -> None:
    available = sorted(os.sched_getaffinity(0))
    assert parse_cpus(None) is None and parse_cpus("") is None
    assert parse_cpus(f"{available[0]}") == [available[0]]
    assert parse_cpus(f"{available[0]}-{available[-1]}") == available
    with pytest.raises(SystemExit, match="not available"):
        parse_cpus(f"{max(available) + 1}")


def test_cpu_cost_per_event_and_the_projection_from_it() -> None:
    result = {"server_cpu_s": 30.0, "postgres_cpu_s": 10.0, "client_cpu_s": 4.0, "requests": 100_000, "accepted": 100_000}
    figures = cpu_figures(result, stored=100_000, server_cores=2)
    assert figures == {
        "errgate_cpu_us_per_event": 300,
        "postgres_cpu_us_per_event": 100,
        "client_cpu_us_per_request": 40,
        # 100,000 events took 40 CPU-seconds of errgate and PostgreSQL: two cores do 5,000 a second.
        "projected_events_per_s": 5000,
    }
    assert cpu_figures(dict(result, accepted=0), stored=0, server_cores=2)["projected_events_per_s"] is None


def test_wal_per_event() -> None:
    figures = wal_figures((1_000_000, 50), (3_000_000, 250), stored=1_000)
    assert figures == {"wal_bytes_per_event": 2_000, "wal_fpi_per_event": 0.2}
    assert wal_figures((0, 0), (10, 1), stored=0) == {"wal_bytes_per_event": None, "wal_fpi_per_event": None}


def test_rate_as_a_fraction_of_the_bare_handlers() -> None:
    assert parse_args(["--mode", "compare"]).mode == "compare"
    ceiling = {"accepted": 300_000, "elapsed_s": 10.0, "p99_ms": 12.5}
    figures = ceiling_figures({"stored_events_per_s": 6_000.0}, ceiling)
    assert figures == {"ceiling_requests_per_s": 30_000.0, "ceiling_p99_ms": 12.5, "fraction_of_ceiling": 0.2}
    assert ceiling_figures({"stored_events_per_s": 6_000.0}, dict(ceiling, accepted=0))["fraction_of_ceiling"] is None


def test_preload_hours_must_stay_within_the_default_retention() -> None:
    assert parse_args(["--preload", "10"]).preload_hours == 24
    assert parse_args(["--preload", "10", "--preload-hours", "720"]).preload_hours == 720
    for outside in ("0", "2161"):
        with pytest.raises(SystemExit):
            parse_args(["--preload-hours", outside])


def test_percentiles_in_milliseconds() -> None:
    ordered = [i / 1000 for i in range(1, 101)]  # 1 ms to 100 ms
    assert (percentile_ms(ordered, 0.50), percentile_ms(ordered, 0.95), percentile_ms(ordered, 1.0)) == (51.0, 96.0, 100.0)
    assert percentile_ms([], 0.95) == 0.0


def test_workers_default_to_errgates_own_default() -> None:
    assert parse_args([]).workers == Settings.from_env().workers
    assert parse_args(["--workers", "3"]).workers == 3


@pytest.mark.parametrize("title, database", [
    ("postgres: 15/main: postgres errgate_bench_1_ab 127.0.0.1(37910) idle", "errgate_bench_1_ab"),
    ("postgres: 15/main: alice other_db [local] INSERT", "other_db"),
    ("postgres: 15/main: autovacuum worker errgate_test_2_cd", "errgate_test_2_cd"),
    ("postgres: 15/main: checkpointer ", None),
    ("postgres: 15/main: walwriter", None),
    ("postgres: 15/main: logical replication launcher ", None),
    ("/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main -c config_file=x", None),
])
def test_postgres_processes_are_told_apart_by_database(title: str, database: str | None) -> None:
    """The run counts PostgreSQL's CPU for its own database and the server's shared processes only."""
    assert backend_database([title]) == database
