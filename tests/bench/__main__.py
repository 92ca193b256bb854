"""``python -m tests.bench``: one run of the benchmark, printed as JSON lines (or, for a run, the bare server)."""

from __future__ import annotations

import asyncio

import orjson

from tests.bench import hostile, inprocess, pipeline, triage
from tests.bench.options import parse_args
from tests.bench.run import database_url, main
from tests.bench.servers import run_bare_server


def print_line(line: dict) -> None:
    print(orjson.dumps(line).decode(), flush=True)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_bare:
        run_bare_server(arguments.serve_bare, arguments.workers)
    elif arguments.mode == "hostile":
        asyncio.run(hostile.run(
            database_url(), print_line, cases=arguments.cases, workers=arguments.workers,
            rss_guard_mb=arguments.rss_guard_mb, keep_database=arguments.keep_database,
        ))
    elif arguments.mode == "pipeline":
        print_line(pipeline.run(arguments.events or pipeline.DEFAULT_EVENTS, arguments.rounds))
    elif arguments.mode == "inprocess":
        print_line(inprocess.run(arguments.events or inprocess.DEFAULT_REQUESTS, arguments.rounds, arguments.connections))
    elif arguments.mode == "triage":
        asyncio.run(triage.run(
            database_url(), lambda text: print(text, flush=True), errors=arguments.errors,
            events=arguments.seed_events, requests=arguments.requests, warmup=arguments.warmup,
            workers=arguments.workers, reuse=arguments.reuse, markdown=arguments.markdown,
        ))
    else:
        print_line(asyncio.run(main(arguments)))
