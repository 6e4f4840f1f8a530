"""How many CPUs this process may use: the CPUs the scheduler lets it run on, capped by the CPU
quota of its container (a Kubernetes CPU limit, `docker run --cpus`), which os.cpu_count() and
os.sched_getaffinity() both ignore. The default number of worker processes."""

from __future__ import annotations

import math
import os
from pathlib import Path

# Inside a container the cgroup namespace shows the container's own cgroup here.
CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may use, a partial CPU of quota rounded up; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(Path(cgroup_root))
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def cgroup_cpu_quota(root: Path) -> float | None:
    """CPUs' worth of run time per period the cgroup allows, or None when it sets no limit
    (or its files cannot be read). cgroup v2 writes `cpu.max` as "<quota> <period>" or
    "max <period>"; cgroup v1 has `cpu.cfs_quota_us` (-1: no limit) and `cpu.cfs_period_us`."""
    try:
        if (root / "cpu.max").is_file():
            quota, period = (root / "cpu.max").read_text().split()
            return None if quota == "max" else _ratio(quota, period)
        for folder in (root / "cpu", root / "cpu,cpuacct"):
            if (folder / "cpu.cfs_quota_us").is_file():
                quota = (folder / "cpu.cfs_quota_us").read_text().strip()
                period = (folder / "cpu.cfs_period_us").read_text().strip()
                return None if int(quota) < 0 else _ratio(quota, period)
    except (OSError, ValueError):
        return None
    return None


def _ratio(quota: str, period: str) -> float | None:
    quota_us, period_us = int(quota), int(period)
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None
