"""The benchmark's options (``python -m tests.bench --help``)."""

from __future__ import annotations

import argparse
from pathlib import Path

import tests.bench
from app.config import Settings


def _preload_hours(text: str) -> int:
    """Hours within the default retention (90 days), so that no preloaded partition is dropped."""
    hours = int(text)
    if not 1 <= hours <= 90 * 24:
        raise argparse.ArgumentTypeError(f"{hours} is not between 1 and 2160")
    return hours


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=tests.bench.__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("errgate", "bare", "compare", "hostile", "pipeline", "inprocess", "triage"),
                        default="errgate",
                        help="compare: the bare handler, then errgate, and errgate's rate as a fraction of the bare "
                             "one's; hostile: requests meant to hurt errgate, one line per case (tests/bench/hostile.py); "
                             "pipeline: the per-event work in-process, CPU µs per event and cProfile's top functions; "
                             "inprocess: a worker's whole request path in-process, without sockets or database, CPU µs "
                             "per request (tests/bench/inprocess.py); "
                             "triage: the error list and search pages timed on a large seeded project, with their "
                             "plans (tests/bench/triage.py)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int,
                        help="errgate worker processes (and the bare handler's); default: errgate's own "
                             "(ERRGATE_WORKERS, else one per usable core)")
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s to send (0 = as fast as possible)")
    parser.add_argument("--events", type=int, default=0, help="corpus size (default: enough for the duration)")
    parser.add_argument("--preload", type=int, default=0, help="synthetic events inserted before the run")
    parser.add_argument("--preload-hours", type=_preload_hours, default=24, metavar="1..2160",
                        help="spread the preloaded events' receive times over this many hours before now")
    parser.add_argument("--server-cpus", help="pin errgate and PostgreSQL to these cores, e.g. 0-1")
    parser.add_argument("--client-cpus", help="pin the load generator to these cores, e.g. 2-3")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--cases", type=_names, help="hostile: only these cases, comma-separated (default: all)")
    parser.add_argument("--rss-guard-mb", type=int, default=6144,
                        help="hostile: kill errgate when its processes pass this resident memory")
    parser.add_argument("--rounds", type=int, default=5, help="pipeline, inprocess: passes over the corpus (default 5)")
    parser.add_argument("--errors", type=int, default=100_000, help="triage: errors seeded")
    parser.add_argument("--seed-events", type=int, default=10_000_000, help="triage: events seeded")
    parser.add_argument("--requests", type=int, default=200, help="triage: timed requests per case")
    parser.add_argument("--warmup", type=int, default=20, help="triage: requests per case before the timed ones")
    parser.add_argument("--reuse", action="store_true",
                        help="triage: keep the seeded database, named after its size, and use it again on the next run")
    parser.add_argument("--markdown", type=Path, help="triage: also write the table and the plans to this file")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workers is None:
        # Passed on explicitly, so that the bare handler runs as many and the result names the count.
        args.workers = Settings.from_env().workers
    return args
