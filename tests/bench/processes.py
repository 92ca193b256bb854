"""The processes the benchmark measures and pins: errgate's tree and PostgreSQL's, their CPU time, memory and cores."""

from __future__ import annotations

import os

import psutil


def parse_cpus(text: str | None) -> list[int] | None:
    """``"0-1,3"`` → ``[0, 1, 3]``; None or ``""`` → None (no pinning). Cores this process may
    not use are refused, so that a pinned run never silently runs elsewhere."""
    if not text:
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    available = os.sched_getaffinity(0)
    if not cpus <= available:
        raise SystemExit(f"cores {sorted(cpus - available)} are not available here (available: {sorted(available)})")
    return sorted(cpus)


def pin(procs: list[psutil.Process], cpus: list[int] | None) -> None:
    for proc in procs:
        try:
            proc.cpu_affinity(cpus or [])  # [] means every core
        except psutil.NoSuchProcess:
            pass


def tree(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def postgres_processes(database: str | None = None) -> list[psutil.Process]:
    """PostgreSQL's processes; with ``database``, less the backends of other databases, so that
    other work on a shared server is not counted as the run's (the server's own processes, such
    as the WAL writer and the checkpointer, are: they work for every database)."""
    return [
        p for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and (database is None or backend_database(p.info["cmdline"]) in (None, database))
    ]


def backend_database(cmdline: list[str] | None) -> str | None:
    """The database a PostgreSQL process serves, from its title: ``postgres: 15/main: user db
    host(port) state`` for a client backend, ``… autovacuum worker db`` for a vacuum; None for
    the server's own processes."""
    words = " ".join(cmdline or []).split()
    if words[2:4] == ["autovacuum", "worker"]:
        return words[4] if len(words) > 4 else None
    if len(words) > 4 and (words[4] == "[local]" or words[4].endswith(")")):
        return words[3]
    return None


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """CPU time used so far by ``procs`` (those still running)."""
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def rss(pid: int) -> int:
    """Resident memory of ``pid`` and its children, in bytes."""
    try:
        return sum(p.memory_info().rss for p in tree(pid))
    except psutil.NoSuchProcess:
        return 0
