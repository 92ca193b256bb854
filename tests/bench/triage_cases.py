"""The triage mode's cases: the error list pages it times, and how their figures and plans are printed."""

from __future__ import annotations

import dataclasses
from typing import Any

from app.db.tracked_errors import COUNT_LIMIT
from app.search_query import ErrorQuery, parse_query
from tests.bench.figures import percentile_ms
from tests.bench.triage_seed import ABSENT_WORD, COMMON_WORD, RARE_WORD

TARGET_P95_MS = 50.0
PER_PAGE = 20


@dataclasses.dataclass(frozen=True)
class Case:
    """One page of ``GET /api/v4/projects/:id/error_tracking/errors``: its query parameters."""

    name: str
    params: dict[str, str]

    def query_string(self) -> dict[str, str]:
        return {"per_page": str(PER_PAGE), **self.params}

    def error_query(self) -> ErrorQuery:
        """The query the route makes of these parameters."""
        p = self.params
        return parse_query(p.get("search"), p.get("status"), p.get("environment"), p.get("sort"))

    def offset(self) -> int:
        return (int(self.params.get("page", "1")) - 1) * PER_PAGE


CASES = (
    Case("default list (unresolved, last seen)", {}),
    Case("sort first_seen", {"sort": "first_seen"}),
    Case("sort frequency", {"sort": "frequency"}),
    Case("status resolved", {"status": "resolved"}),
    Case("status ignored", {"status": "ignored"}),
    Case("status all", {"status": "all"}),
    Case("environment staging", {"environment": "staging"}),
    Case("environment dev, sort frequency", {"environment": "dev", "sort": "frequency"}),
    Case(f"search common word ({COMMON_WORD})", {"search": COMMON_WORD}),
    Case(f"search rare word ({RARE_WORD})", {"search": RARE_WORD}),
    Case(f"search no match ({ABSENT_WORD})", {"search": ABSENT_WORD}),
    Case("search common word + environment staging", {"search": COMMON_WORD, "environment": "staging"}),
    Case("search terms is:all environment:dev + 2 words", {"search": f"is:all environment:dev {COMMON_WORD} connection"}),
    Case("deep page (page 50)", {"page": "50"}),
)


def case_figures(case: Case, seconds: list[float], total: int | None) -> dict[str, Any]:
    """One case's line: the matching errors (``X-Total``; None when errgate gave none, having
    stopped counting past ``COUNT_LIMIT``), latency percentiles and the verdict."""
    ordered = sorted(seconds)
    p95 = percentile_ms(ordered, 0.95)
    return {
        "case": case.name, "total": total, "requests": len(ordered), "p50_ms": percentile_ms(ordered, 0.50),
        "p95_ms": p95, "max_ms": round(ordered[-1] * 1000, 2) if ordered else 0.0,
        "verdict": "PASS" if p95 < TARGET_P95_MS else "FAIL",
    }


def table(lines: list[dict[str, Any]]) -> list[str]:
    """The cases' figures as a Markdown table, a row each."""
    rows = [
        f"| case | errors found | p50 ms | p95 ms | max ms | p95 < {TARGET_P95_MS:g} ms |",
        "|---|---:|---:|---:|---:|---|",
    ]
    rows += [
        f"| {line['case']} | {_found(line['total'])} | {line['p50_ms']:.1f} | {line['p95_ms']:.1f} | {line['max_ms']:.1f} "
        f"| {line['verdict']} |"
        for line in lines
    ]
    return rows


# What each statement explained for a case is for, in the order they run (tests/bench/triage.py).
STATEMENTS = ("the total (`X-Total`)", "the page", "the web page's status tabs (`status_counts`)")


def _found(total: int | None) -> str:
    return f"{total:,}" if total is not None else f"> {COUNT_LIMIT:,}"


def plans_section(case: Case, plans: list[str]) -> list[str]:
    """One case's EXPLAIN (ANALYZE, BUFFERS) output, a fenced block per statement, in Markdown."""
    out = [f"### {case.name}", "", f"`GET …/error_tracking/errors?{_query_text(case)}`", ""]
    for number, plan in enumerate(plans):
        label = STATEMENTS[number] if number < len(STATEMENTS) else f"statement {number + 1}"
        out += [f"{label}:", "", "```text", plan, "```", ""]
    return out


def _query_text(case: Case) -> str:
    return "&".join(f"{key}={value}" for key, value in case.query_string().items())
