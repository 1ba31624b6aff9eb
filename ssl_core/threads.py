"""How many CPU threads computations here may use, and setting them for one call only.

`os.cpu_count()` counts the machine's cores, not the ones this process may run on: a container
limited by a cgroup quota, or a process pinned to some cores (taskset, a CI runner), would start
one busy thread per machine core and slow itself down many times over. `available_cpus` takes
the smallest of the CPU affinity mask and the cgroup v2/v1 quota; $LATENTLAB_NUM_THREADS caps it
further on a shared machine.

torch's thread count is process-wide. Estimators set it for the duration of `fit` and restore it
(`torch_threads`), so a notebook or the app's process is left as it was.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup's CPU quota (v2 cpu.max, v1 cfs files), None when unlimited."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process may actually use (affinity and cgroup quota), at least 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def default_threads() -> int:
    """Threads for a computation: every available CPU, capped by $LATENTLAB_NUM_THREADS."""
    try:
        cap = int(os.environ.get("LATENTLAB_NUM_THREADS", "0"))
    except ValueError:
        cap = 0
    n = available_cpus()
    return max(1, min(n, cap)) if cap > 0 else n


@contextmanager
def torch_threads(n: int | None = None) -> Iterator[int]:
    """Run the block with torch using `n` threads (default: `default_threads()`); the previous
    count is restored afterwards. Yields the count in use."""
    import torch

    before = torch.get_num_threads()
    n = n or default_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
