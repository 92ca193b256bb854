"""How many cores this process may use: its CPU affinity, capped by a cgroup CPU quota (containers).

The quota is read the way container runtimes set it: cgroup v2's ``cpu.max`` ("quota period", or
"max" for none) in this process's cgroup and each of its ancestors, or cgroup v1's
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (-1 for none). A fraction of a core counts as a whole
one (1.5 cores → 2), so that the quota is used; a quota never gives fewer than one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable

CGROUP_ROOT = Path("/sys/fs/cgroup")
OWN_CGROUPS = Path("/proc/self/cgroup")


def cpu_max_cores(text: str) -> float | None:
    """Cores allowed by a cgroup v2 ``cpu.max`` ("150000 100000" → 1.5), None for "max"."""
    quota, _, period = text.strip().partition(" ")
    if quota == "max" or not quota:
        return None
    return int(quota) / int(period or 100_000)


def cfs_cores(quota_text: str, period_text: str) -> float | None:
    """Cores allowed by cgroup v1's ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us``, None for -1."""
    quota = int(quota_text.strip())
    if quota < 0:
        return None
    return quota / int(period_text.strip())


def _own_paths(own_cgroups: str) -> tuple[str | None, str | None]:
    """This process's cgroup v2 path and cgroup v1 ``cpu`` controller path, from /proc/self/cgroup."""
    unified = cpu = None
    for line in own_cgroups.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and controllers == "":
            unified = path
        elif "cpu" in controllers.split(","):
            cpu = path
    return unified, cpu


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:  # absent, or not readable in a sandbox: no limit known there
        return None


def _parsed(parse: Callable[..., float | None], *texts: str) -> float | None:
    try:
        return parse(*texts)
    except (ValueError, ZeroDivisionError):  # not what the kernel writes: treated as no limit
        return None


def _v2_limits(root: Path, path: str) -> list[float]:
    """``cpu.max`` of the cgroup at ``path`` and of each ancestor up to ``root`` (the tightest wins)."""
    directory = root / path.strip("/")
    if not directory.is_dir():  # a path from outside this cgroup namespace: the mount is our own
        directory = root
    limits = []
    while True:
        text = _read(directory / "cpu.max")
        cores = _parsed(cpu_max_cores, text) if text else None
        if cores is not None:
            limits.append(cores)
        if directory == root:
            return limits
        directory = directory.parent


def _v1_limit(root: Path, path: str) -> float | None:
    for mount in (root / "cpu", root / "cpu,cpuacct"):
        for directory in (mount / path.strip("/"), mount):
            quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
            if quota and period:
                return _parsed(cfs_cores, quota, period)
    return None


def cgroup_cores(root: Path = CGROUP_ROOT, own_cgroups: Path = OWN_CGROUPS) -> float | None:
    """Cores allowed by this process's cgroup CPU quota, None without a quota (or without cgroups)."""
    unified, cpu = _own_paths(_read(own_cgroups) or "")
    if (root / "cgroup.controllers").exists():  # cgroup v2 alone; a hybrid system keeps ``cpu`` in v1
        limits = _v2_limits(root, unified or "/")
        return min(limits) if limits else None
    return _v1_limit(root, cpu or "/")


def usable_cores(affinity: int | None = None, quota: float | None = None) -> int:
    """Cores of ``affinity`` (this process's CPU set by default), at most the ``quota`` rounded up, at least 1."""
    cores = len(os.sched_getaffinity(0)) if affinity is None else affinity
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def default_workers() -> int:
    """The number of cores this process may use: affinity and the cgroup quota."""
    return usable_cores(quota=cgroup_cores())
