"""How many CPUs this process may use: the machine's count, less what its affinity and its container allow.

``os.cpu_count()`` counts the host's CPUs. In a container limited to two CPUs
by a CFS quota (Docker ``--cpus 2``, a Kubernetes limit) on a 64-CPU host it
says 64, and a pool of 64 threads, each with its tiles in memory and its own
torch threads, is what the limit then has to share. The count here takes the
smallest of the host's CPUs, the process's affinity (``taskset``, cpusets)
and the cgroup's CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), rounded up.

Examples
--------
>>> usable_cpus() >= 1
True
>>> cgroup_quota_cpus("max 100000"), cgroup_quota_cpus("150000 100000"), cgroup_quota_cpus("")
(None, 2, None)
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

#: Where the cgroup CPU quota is read: v2's ``cpu.max``, then v1's quota and period.
CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def cgroup_quota_cpus(text: str) -> int | None:
    """CPUs a quota of the form ``"<quota> <period>"`` allows (rounded up); None for ``max``, -1 or nonsense."""
    parts = text.split()
    try:
        quota, period = float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        return None
    return math.ceil(quota / period) if quota > 0 and period > 0 else None


def _container_cpus() -> int | None:
    try:
        return cgroup_quota_cpus(CGROUP_V2.read_text())
    except OSError:
        pass
    try:
        return cgroup_quota_cpus(" ".join(path.read_text() for path in CGROUP_V1))
    except OSError:
        return None


@lru_cache(maxsize=1)
def usable_cpus() -> int:
    """The CPUs this process may use (at least 1; read once per process)."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    quota = _container_cpus()
    return max(1, min(count, quota) if quota else count)
