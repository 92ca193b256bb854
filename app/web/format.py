"""Pure helpers of the templates: relative and exact times, counts, and the bars of the SVG charts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Sequence

_UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60))


def relative(moment: datetime | None, now: datetime) -> str:
    """``3 minutes ago``, ``just now``, ``in 2 hours`` (a clock ahead of ours)."""
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    for unit, size in _UNITS:
        if seconds >= size:
            amount = int(seconds // size)
            text = f"{amount} {unit}{'' if amount == 1 else 's'}"
            return f"in {text}" if ahead else f"{text} ago"
    return "just now"


def exact(moment: datetime | None) -> str:
    """The time in UTC to the second: ``2026-11-30 19:40:59 UTC`` (the hover text of a relative time)."""
    if moment is None:
        return ""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def count(value: int, limit: int | None = None) -> str:
    """``1,234,567``; past ``limit`` (where counting stopped) ``10,000+``."""
    if limit is not None and value > limit:
        return f"{limit:,}+"
    return f"{value:,}"


def count_of_all(counts: Iterable[int], limit: int) -> str:
    """The sum of per-status counts, ``+`` when one of them stopped at ``limit``."""
    values = list(counts)
    capped = any(value > limit for value in values)
    total = sum(min(value, limit) for value in values)
    return f"{total:,}+" if capped else f"{total:,}"


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    index: int


def bars(counts: Sequence[int], width: float, height: float, gap: float = 1.0) -> list[Bar]:
    """One bar per count, scaled to the largest, bottom-aligned in a ``width`` × ``height`` box;
    a zero count gets a sliver so that the time axis stays visible."""
    if not counts:
        return []
    top = max(counts) or 1
    step = width / len(counts)
    bar_width = max(step - gap, 0.5)
    out = []
    for index, value in enumerate(counts):
        bar_height = max(value / top * height, 1.0 if value else 0.5)
        out.append(Bar(round(index * step, 2), round(height - bar_height, 2), round(bar_width, 2),
                       round(bar_height, 2), value, index))
    return out
