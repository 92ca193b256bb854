"""Ingest benchmark: ``python -m tests.bench`` — a load test that prints one JSON line, never a timed test.

It starts errgate (``errgate serve --workers N``) on a fresh database of the PostgreSQL at
``DATABASE_URL`` (default: the local server on 127.0.0.1:5432), creates a project and a client
key through the REST API, builds envelopes with the real ``sentry-sdk`` (captured by a
transport that keeps them instead of sending them), several platforms and sizes, gzip and br,
many distinct errors with many repeats and a fresh ``event_id`` per request, then sends them
from a separate process over N concurrent keep-alive connections for a fixed duration.

Printed: accepted events/s, stored events/s (counted in the database afterwards), latency
percentiles, non-2xx count, server RSS before and after, CPU seconds of the server, of
PostgreSQL and of the load generator (``client_cpu_s``). ``--mode bare`` runs the same load
against a bare aiohttp handler that only reads the body and answers ``{"id": ...}``: the
framework's ceiling on this machine (the corpus is sent again from the start if it runs out).
``--mode compare`` runs the bare handler and then errgate with the same load and adds
``fraction_of_ceiling``: errgate's stored events/s over the bare handler's requests/s.
``--mode hostile`` sends requests meant to hurt errgate instead (gzip bombs, slow clients, tokens in
malformed requests, forged hosts…) and prints, for each case, what errgate answered, how long it
took, its peak and remaining RSS, and the latency of ``/-/liveness`` meanwhile (tests/bench/hostile.py).
``--mode pipeline`` starts no server: it measures the envelope endpoint's per-event work
in-process over the same corpus (tests/bench/pipeline.py).
``--mode triage`` seeds one project with 100,000 errors and 10 million events and times the error
list's pages (sorts, statuses, environment, search, a deep page) over HTTP against 50 ms at p95,
then prints the plans of their SQL (tests/bench/triage.py; ``--reuse`` keeps the seed for the next run).
``--rate`` sends at a fixed rate instead of as fast as possible (for latency at a given load).
``--preload N`` first inserts N synthetic events so the run measures ingestion into a large
table; ``--preload-hours H`` (default 24) spreads their
receive times over the last H hours, as a table that reached that size over that time holds
them. WAL bytes and full-page images per stored event (from ``pg_stat_wal``, server-wide) show
the I/O each event costs.

The goals are for errgate and PostgreSQL on two cores. ``--server-cpus`` and ``--client-cpus``
pin errgate with PostgreSQL, and the load generator, to separate cores (on a machine with more
than two) so that the load generator does not take the server's CPU. Every run also prints the
CPU cost per event of each side and ``projected_events_per_s``: stored events per CPU-second of
errgate and PostgreSQL, times the cores they may use. That is the rate at which those cores
would be saturated with the load generator elsewhere: a projection from measured CPU time, not
a measured rate.

Examples::

    python -m tests.bench --duration 30 --connections 64 --workers 2
    python -m tests.bench --mode bare --duration 30 --connections 64
    python -m tests.bench --mode compare --duration 30 --connections 256
    python -m tests.bench --duration 30 --rate 2500
    python -m tests.bench --duration 30 --connections 256 --server-cpus 0-1 --client-cpus 2-3
    python -m tests.bench --mode hostile
    python -m tests.bench --mode pipeline --rounds 7
    python -m tests.bench --mode hostile --cases slowloris,stalled-body
    python -m tests.bench --mode triage --reuse --markdown plans.md
"""
