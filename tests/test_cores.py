"""The default worker count: cores of the CPU affinity, capped by the cgroup quota (fake cgroup trees)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.config import Settings
from app.cores import cfs_cores, cgroup_cores, cpu_max_cores, usable_cores

HYBRID = "9:name=systemd:/\n4:memory:/box\n2:cpuacct:/\n1:cpu:/\n0::/\n"


def tree(root: Path, files: dict[str, str], own: str = "0::/\n") -> tuple[Path, Path]:
    """A cgroup mount at ``root`` with ``files`` (relative paths), and a /proc/self/cgroup saying ``own``."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "proc-self-cgroup").write_text(own)
    return root, root / "proc-self-cgroup"


@pytest.mark.parametrize(("text", "cores"), [
    ("max 100000\n", None), ("200000 100000\n", 2.0), ("150000 100000\n", 1.5), ("50000 100000", 0.5), ("max", None),
])
def test_cpu_max(text, cores) -> None:
    assert cpu_max_cores(text) == cores


@pytest.mark.parametrize(("quota", "period", "cores"), [("-1\n", "100000\n", None), ("300000\n", "100000\n", 3.0)])
def test_cfs_quota(quota, period, cores) -> None:
    assert cfs_cores(quota, period) == cores


@pytest.mark.parametrize(("affinity", "quota", "expected"), [
    (8, None, 8), (8, 2.0, 2), (8, 1.5, 2), (8, 0.25, 1), (2, 16.0, 2), (1, None, 1),
])
def test_usable_cores_is_the_affinity_capped_by_the_quota_rounded_up(affinity, quota, expected) -> None:
    assert usable_cores(affinity, quota) == expected


def test_usable_cores_defaults_to_this_process_affinity() -> None:
    assert usable_cores() == len(os.sched_getaffinity(0))


def test_cgroup_v2_quota_of_the_container(tmp_path) -> None:
    root, own = tree(tmp_path, {"cgroup.controllers": "cpu memory\n", "cpu.max": "250000 100000\n"})
    assert cgroup_cores(root, own) == 2.5


def test_cgroup_v2_without_a_quota(tmp_path) -> None:
    root, own = tree(tmp_path, {"cgroup.controllers": "cpu\n", "cpu.max": "max 100000\n"})
    assert cgroup_cores(root, own) is None


def test_cgroup_v2_tightest_quota_of_the_cgroup_and_its_ancestors(tmp_path) -> None:
    root, own = tree(tmp_path, {
        "cgroup.controllers": "cpu\n",
        "kubepods.slice/cpu.max": "300000 100000\n",
        "kubepods.slice/pod1/cpu.max": "max 100000\n",
        "kubepods.slice/pod1/app/cpu.max": "400000 100000\n",
    }, own="0::/kubepods.slice/pod1/app\n")
    assert cgroup_cores(root, own) == 3.0


def test_cgroup_v2_path_from_outside_the_namespace_reads_the_mount(tmp_path) -> None:
    root, own = tree(tmp_path, {"cgroup.controllers": "cpu\n", "cpu.max": "100000 100000\n"},
                     own="0::/system.slice/docker-abc.scope\n")
    assert cgroup_cores(root, own) == 1.0


def test_cgroup_v1_quota_of_the_container(tmp_path) -> None:
    root, own = tree(tmp_path, {"cpu/cpu.cfs_quota_us": "150000\n", "cpu/cpu.cfs_period_us": "100000\n"},
                     own="4:cpu,cpuacct:/docker/abc\n")
    assert cgroup_cores(root, own) == 1.5


def test_cgroup_v1_own_cgroup_on_the_host(tmp_path) -> None:
    root, own = tree(tmp_path, {
        "cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        "cpu,cpuacct/batch/cpu.cfs_quota_us": "200000\n", "cpu,cpuacct/batch/cpu.cfs_period_us": "100000\n",
    }, own="3:cpu,cpuacct:/batch\n")
    assert cgroup_cores(root, own) == 2.0


def test_hybrid_hierarchy_reads_the_cpu_controller_of_v1(tmp_path) -> None:
    root, own = tree(tmp_path, {
        "unified/cgroup.controllers": "\n", "cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n",
    }, own=HYBRID)
    assert cgroup_cores(root, own) is None


@pytest.mark.parametrize("files", [{}, {"cgroup.controllers": "cpu\n", "cpu.max": "lots\n"},
                                   {"cpu/cpu.cfs_quota_us": "x\n", "cpu/cpu.cfs_period_us": "0\n"}])
def test_no_cgroups_or_unreadable_values_mean_no_quota(tmp_path, files) -> None:
    root, own = tree(tmp_path, files, own="")
    assert cgroup_cores(root, own) is None


def test_workers_default_to_the_usable_cores_and_one_stays_available() -> None:
    assert Settings.from_env({}).workers == min(usable_cores(quota=cgroup_cores()), 64)
    assert Settings.from_env({"ERRGATE_WORKERS": "1"}).workers == 1
