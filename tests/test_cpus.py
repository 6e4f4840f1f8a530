"""The default number of workers: the CPUs this process may run on, capped by the cgroup's CPU
quota, read from cgroup files written into a temporary folder standing for /sys/fs/cgroup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ngshare_s3.cpus import available_cpus, cgroup_cpu_quota

AFFINITY = len(os.sched_getaffinity(0))


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    "files, quota",
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "200000 100000\n"}, 2.0),
        ({"cpu.max": "50000 100000\n"}, 0.5),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3.0),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "25000\n", "cpu,cpuacct/cpu.cfs_period_us": "50000\n"}, 0.5),
        ({}, None),
        ({"cpu.max": "garbage\n"}, None),
        ({"cpu.max": "0 100000\n"}, None),
    ],
    ids=["v2-unlimited", "v2-2", "v2-half", "v2-1.5", "v1-unlimited", "v1-3", "v1-cpuacct-half", "none",
         "malformed", "zero"],
)
def test_cgroup_quota(tmp_path, files, quota):
    assert cgroup_cpu_quota(write(tmp_path, files)) == quota


def test_a_partial_cpu_rounds_up_to_one_worker(tmp_path):
    assert available_cpus(write(tmp_path, {"cpu.max": "50000 100000"})) == 1


def test_a_quota_above_the_cpus_leaves_the_cpu_count(tmp_path):
    assert available_cpus(write(tmp_path, {"cpu.max": f"{(AFFINITY + 3) * 100000} 100000"})) == AFFINITY


def test_a_quota_below_the_cpus_caps_them(tmp_path):
    if AFFINITY < 2:
        pytest.skip("needs 2 CPUs to show a cap")
    assert available_cpus(write(tmp_path, {"cpu.max": "150000 100000"})) == 2
    assert available_cpus(write(tmp_path, {"cpu.max": "100000 100000"})) == 1


def test_no_quota_means_every_cpu_of_the_affinity_mask(tmp_path):
    assert available_cpus(write(tmp_path, {"cpu.max": "max 100000"})) == AFFINITY
    assert available_cpus(tmp_path / "missing") == AFFINITY
