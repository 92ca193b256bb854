"""The templates' pure helpers: relative and exact times, counts that stopped, chart bars."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from app.web import format, paths

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def test_relative_times() -> None:
    assert format.relative(NOW, NOW) == "just now"
    assert format.relative(NOW - timedelta(seconds=59), NOW) == "just now"
    assert format.relative(NOW - timedelta(minutes=1), NOW) == "1 minute ago"
    assert format.relative(NOW - timedelta(hours=5, minutes=59), NOW) == "5 hours ago"
    assert format.relative(NOW - timedelta(days=40), NOW) == "1 month ago"
    assert format.relative(NOW + timedelta(hours=2), NOW) == "in 2 hours"
    assert format.relative(None, NOW) == "never"


def test_exact_times_are_utc() -> None:
    moment = datetime(2026, 11, 30, 13, 5, 9, tzinfo=timezone(timedelta(hours=1)))
    assert format.exact(moment) == "2026-11-30 12:05:09 UTC"
    assert format.exact(None) == ""


def test_counts_past_the_limit_read_as_at_least() -> None:
    assert format.count(1234567) == "1,234,567"
    assert format.count(10_000, 10_000) == "10,000"
    assert format.count(10_001, 10_000) == "10,000+"
    assert format.count_of_all([3, 4, 0], 10_000) == "7"
    assert format.count_of_all([10_001, 4, 0], 10_000) == "10,004+"


def test_bars_scale_to_the_largest_and_keep_empty_hours_visible() -> None:
    bars = format.bars([0, 5, 10], 30, 20)
    assert [b.count for b in bars] == [0, 5, 10]
    assert [b.x for b in bars] == [0, 10, 20] and all(b.width == 9 for b in bars)
    assert bars[2].height == 20 and bars[2].y == 0
    assert bars[1].height == 10 and bars[1].y == 10
    assert 0 < bars[0].height < 1
    assert format.bars([], 30, 20) == []
    assert all(b.height < 1 for b in format.bars([0, 0], 10, 10))


def test_paths() -> None:
    assert paths.canonical(paths.ERROR_DETAILS) == "/{namespace}/{project}/-/error_tracking/{error_id}/details"
    assert paths.project_url("/base", "group/sub/app") == "/base/group/sub/app/-/error_tracking"
    assert paths.with_query("/x", {"a": "", "b": None, "c": "d e"}, page=2) == "/x?c=d+e&page=2"
    assert paths.base_path("https://h.example/errgate/") == "/errgate"
    assert paths.safe_next("/a/b?c=1") == "/a/b?c=1"
    assert [paths.safe_next(t) for t in ("//evil", "/\\evil", "http://evil", "", None, "/a\\b")] == [None] * 6
