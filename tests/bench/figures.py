"""The benchmark's arithmetic: latency percentiles, CPU per event and the projection from it, WAL per event, the fraction of the ceiling."""

from __future__ import annotations

from typing import Any


def percentile_ms(ordered: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of ``ordered`` (seconds, sorted), in milliseconds: the value
    that many of them are below (0.0 for none)."""
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000, 2)


def cpu_figures(result: dict[str, Any], stored: int | None, server_cores: int) -> dict[str, float | None]:
    """CPU per event of each side, and the rate at which errgate and PostgreSQL would saturate
    ``server_cores`` cores with the load generator elsewhere (a projection from CPU time)."""
    events = stored if stored is not None else result["accepted"]
    if not events:
        return {"errgate_cpu_us_per_event": None, "postgres_cpu_us_per_event": None,
                "client_cpu_us_per_request": None, "projected_events_per_s": None}
    server = result["server_cpu_s"] + result["postgres_cpu_s"]
    return {
        "errgate_cpu_us_per_event": round(result["server_cpu_s"] / events * 1e6),
        "postgres_cpu_us_per_event": round(result["postgres_cpu_s"] / events * 1e6),
        "client_cpu_us_per_request": round(result["client_cpu_s"] / max(result["requests"], 1) * 1e6),
        "projected_events_per_s": round(events / server * server_cores) if server else None,
    }


def wal_figures(before: tuple[int, int], after: tuple[int, int], stored: int) -> dict[str, float | None]:
    """WAL written per stored event, and the share of it that is full-page images (8 KB copies
    of pages changed for the first time since a checkpoint): the I/O a large index costs."""
    if not stored:
        return {"wal_bytes_per_event": None, "wal_fpi_per_event": None}
    return {
        "wal_bytes_per_event": round((after[0] - before[0]) / stored),
        "wal_fpi_per_event": round((after[1] - before[1]) / stored, 3),
    }


def ceiling_figures(result: dict[str, Any], ceiling: dict[str, Any]) -> dict[str, float | None]:
    """errgate's stored events/s as a fraction of the bare handler's requests/s (the ceiling)."""
    rate = ceiling["accepted"] / ceiling["elapsed_s"] if ceiling["elapsed_s"] else 0.0
    stored = result.get("stored_events_per_s")
    return {
        "ceiling_requests_per_s": round(rate, 1),
        "ceiling_p99_ms": ceiling["p99_ms"],
        "fraction_of_ceiling": round(stored / rate, 3) if rate and stored is not None else None,
    }
