"""``python -m tests.bench``: one run of the benchmark, printed as one JSON line (or, for a run, the bare server)."""

from __future__ import annotations

import asyncio

import orjson

from tests.bench.options import parse_args
from tests.bench.run import main
from tests.bench.servers import run_bare_server

if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_bare:
        run_bare_server(arguments.serve_bare, arguments.workers)
    else:
        print(orjson.dumps(asyncio.run(main(arguments))).decode())
