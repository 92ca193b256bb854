"""The benchmark's triage mode keeps working: a tiny seed, every case requested from a real errgate, the plans printed.

Timings are the benchmark's to report, not this test's: it checks the mode's machinery (seed,
server, requests, table, plans, ``--reuse``) on 200 errors and 2,000 events.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.bench import triage
from tests.bench.options import parse_args
from app.db.tracked_errors import COUNT_LIMIT
from tests.bench.triage_cases import CASES, case_figures, table
from tests.conftest import connect


async def test_a_tiny_seed_is_timed_and_explained_then_reused(base_database_url: str, tmp_path: Path) -> None:
    events = 2_000 + os.getpid() % 1_000  # the kept database is named after the size: one per test process
    printed: list[str] = []
    markdown = tmp_path / "plans.md"
    try:
        lines = await triage.run(base_database_url, printed.append, errors=200, events=events, requests=3, warmup=1,
                                 workers=1, reuse=True, markdown=markdown)
        assert printed[-2].startswith("seeded 200 errors and 2,")
        report = printed[-1]
        assert [line["case"] for line in lines] == [case.name for case in CASES]
        found = {line["case"]: line["total"] for line in lines}
        assert found["status all"] == 200
        assert found["search no match (xylophone)"] == 0
        assert 0 < found["default list (unresolved, last seen)"] < 200
        for line in lines:
            assert line["requests"] == 3 and line["verdict"] in ("PASS", "FAIL"), line
            assert f"| {line['case']} | {line['total']:,} |" in report
        assert report.count("### ") == len(CASES)
        assert report.count("Execution Time:") >= 2 * len(CASES)  # the count and the page of each
        assert "Buffers:" in report
        assert markdown.read_text() == report

        printed.clear()
        again = await triage.run(base_database_url, printed.append, errors=200, events=events, requests=1, warmup=0,
                                 workers=1, reuse=True)
        assert printed[0] == f"reusing the seed of errgate_bench_triage_200_{events}"
        assert [line["total"] for line in again] == [line["total"] for line in lines]
    finally:
        async with connect(base_database_url) as admin:
            await admin.execute(f'drop database if exists "errgate_bench_triage_200_{events}" with (force)')


def test_triage_options() -> None:
    arguments = parse_args(["--mode", "triage"])
    assert (arguments.errors, arguments.seed_events, arguments.requests, arguments.reuse) == (
        100_000, 10_000_000, 200, False)
    assert parse_args(["--mode", "triage", "--reuse", "--markdown", "x.md"]).markdown == Path("x.md")


def test_the_verdict_is_on_the_p95_and_a_missing_total_reads_as_past_the_count_limit() -> None:
    case = CASES[0]
    failing = case_figures(case, [0.010] * 95 + [0.200] * 5, total=None)  # 5 % slow: p95 is the first slow one
    assert (failing["p50_ms"], failing["p95_ms"], failing["max_ms"], failing["verdict"]) == (10.0, 200.0, 200.0, "FAIL")
    assert case_figures(case, [0.010] * 96 + [0.200] * 4, total=7)["verdict"] == "PASS"
    assert f"| {case.name} | > {COUNT_LIMIT:,} | 10.0 | 200.0 | 200.0 | FAIL |" in table([failing])
