"""The CPUs a process may use: its affinity and its container's quota, not the host's count."""

import os

import pytest

from wsi_deblur._shared import cpus


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """``usable_cpus`` recomputed, reading its cgroup files from ``tmp_path``."""
    monkeypatch.setattr(cpus, "CGROUP_V2", tmp_path / "cpu.max")
    monkeypatch.setattr(cpus, "CGROUP_V1", (tmp_path / "quota", tmp_path / "period"))
    cpus.usable_cpus.cache_clear()
    yield tmp_path
    cpus.usable_cpus.cache_clear()


def test_without_a_quota_the_affinity_counts(fresh):
    assert cpus.usable_cpus() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "max 100000\n"}, None),            # v2, no limit
    ({"cpu.max": "50000 100000\n"}, 1),             # half a CPU rounds up to one
    ({"quota": "100000\n", "period": "100000\n"}, 1),  # v1
    ({"quota": "-1\n", "period": "100000\n"}, None),   # v1, no limit
])
def test_a_container_quota_limits_it(fresh, files, expected):
    for name, text in files.items():
        (fresh / name).write_text(text)
    affinity = len(os.sched_getaffinity(0))
    assert cpus.usable_cpus() == (affinity if expected is None else min(affinity, expected))
