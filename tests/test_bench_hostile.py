"""The benchmark's hostile mode keeps working: two cheap cases against a real errgate give their measured lines.

What errgate answers is the subject of the tests of each behaviour, not of this one: here only
the mode's machinery (server, cases, RSS sampling, liveness probes, summary) is checked.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.bench import hostile
from tests.bench.options import parse_args

CASE_FIELDS = {
    "mode", "case", "expected", "answers", "seconds", "server_rss_mb_before", "server_rss_mb_peak",
    "server_rss_mb_after", "liveness_p50_ms", "liveness_max_ms", "liveness_polls", "liveness_failures",
}


async def test_two_cases_print_a_measured_line_each_then_a_summary(base_database_url: str) -> None:
    lines: list[dict[str, Any]] = []
    summary = await hostile.run(
        base_database_url, lines.append, cases=["path-ids", "link-header"], workers=1, settle_seconds=0.1
    )
    assert [line.get("case") for line in lines] == ["path-ids", "link-header", None]
    assert lines[-1] is summary and summary["summary"] is True
    for line in lines[:-1]:
        assert CASE_FIELDS <= line.keys(), line
        assert line["mode"] == "hostile" and "error" not in line, line
        assert all(isinstance(answer, int) for answer in line["answers"]), line
        assert line["server_rss_mb_peak"] > 0 and line["server_rss_mb_after"] > 0, line
        assert line["liveness_polls"] >= 1 and line["liveness_max_ms"] >= line["liveness_p50_ms"] > 0, line
    assert len(lines[0]["answers"]) == 3
    assert {"link_uses_external_url", "link_has_private_token", "link_has_forged_host"} <= lines[1].keys()
    assert summary["answers"] == {"path-ids": lines[0]["answers"], "link-header": lines[1]["answers"]}
    assert summary["settings"]["ERRGATE_HEADER_TIMEOUT_SECONDS"] == "2"
    assert isinstance(summary["root_token_in_log"], bool) and summary["log_lines"] > 0


def test_cases_are_chosen_by_name_and_unknown_names_refused() -> None:
    arguments = parse_args(["--mode", "hostile", "--cases", "path-ids, link-header"])
    assert (arguments.mode, arguments.cases) == ("hostile", ["path-ids", "link-header"])
    assert [case.name for case in hostile.selected(arguments.cases)] == ["path-ids", "link-header"]
    assert len(hostile.selected(None)) == len(hostile.CASES) == 13
    with pytest.raises(SystemExit, match="unknown hostile cases: nope"):
        hostile.selected(["path-ids", "nope"])
