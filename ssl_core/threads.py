"""How many CPU threads computations here may use, and keeping torch's thread count steady.

`os.cpu_count()` counts the machine's cores, not the ones this process may run on: a container
limited by a cgroup quota, or a process pinned to some cores (taskset, a CI runner), would start
one busy thread per machine core and slow itself down many times over. `available_cpus` takes
the smallest of the CPU affinity mask and the CPU quotas of this process's own cgroup and every
cgroup above it (v2 cpu.max, v1 cfs files; a systemd slice or a nested container sets them on a
parent); $LATENTLAB_NUM_THREADS caps it further on a shared machine.

torch's thread count is process-wide. Two modes:
- a worker process, a notebook, the command line: estimators set it for the duration of `fit`
  and restore it (`torch_threads`), so the caller is left as it was;
- a server that runs many computations at once in threads (the Streamlit app: one thread per
  browser session): `fix_process_threads()` sets it ONCE at start, from the CPUs available, and
  from then on `torch_threads` never changes it (changing it while another session's
  computation runs would resize that one's thread pool under it). ui/session.init calls it.
"""
from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_CGROUP_ROOT = Path("/sys/fs/cgroup")       # where cgroup file systems are mounted
_PROC_CGROUP = Path("/proc/self/cgroup")    # this process's cgroup per hierarchy
_fixed: int | None = None                   # set once by fix_process_threads
_fix_lock = threading.Lock()


def _own_cgroups() -> dict[str, str]:
    """Hierarchy -> this process's cgroup path: '' for cgroup v2, controller list for v1."""
    out: dict[str, str] = {}
    try:
        for line in _PROC_CGROUP.read_text().splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3:
                out[parts[1]] = parts[2]
    except OSError:
        pass
    return out


def _up_to_root(base: Path, own: str) -> list[Path]:
    """base/own, its parents, ..., base (a process sees its own cgroup as '/' in a container)."""
    rel = Path(own.strip("/")) if own.strip("/") else Path()
    folders = [base / rel, *[base / p for p in rel.parents]]
    return list(dict.fromkeys(folders))


def _v2_quota(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def _cgroup_quota() -> float | None:
    """CPUs allowed by the tightest CPU quota on this process's cgroup path, None if none."""
    own = _own_cgroups()
    quotas = [q for folder in _up_to_root(_CGROUP_ROOT, own.get("", "/"))
              if (q := _v2_quota(folder)) is not None]
    v1 = next((path for controllers, path in own.items() if "cpu" in controllers.split(",")), "/")
    for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        quotas += [q for folder in _up_to_root(_CGROUP_ROOT / mount, v1)
                   if (q := _v1_quota(folder)) is not None]
    return min(quotas) if quotas else None


def available_cpus() -> int:
    """CPUs this process may actually use (affinity and cgroup quotas), at least 1."""
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


def fix_process_threads(n: int | None = None) -> int:
    """Set torch's process-wide thread count once, for a server that computes in many threads
    at once; afterwards `torch_threads` leaves it alone. Idempotent: later calls (every app
    rerun) return the count set first. Returns it."""
    global _fixed
    with _fix_lock:
        if _fixed is None:
            import torch

            count = n or default_threads()
            torch.set_num_threads(count)
            _fixed = count
        return _fixed


def fixed_threads() -> int | None:
    """The count `fix_process_threads` set, None in a process that sets it per computation."""
    return _fixed


@contextmanager
def torch_threads(n: int | None = None) -> Iterator[int]:
    """Run the block with torch using `n` threads (default: `default_threads()`); the previous
    count is restored afterwards. Yields the count in use. After `fix_process_threads` nothing
    is changed and the fixed count is yielded."""
    if _fixed is not None:
        yield _fixed
        return
    import torch

    before = torch.get_num_threads()
    n = n or default_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


@contextmanager
def one_thread_per_worker() -> Iterator[int]:
    """For many small torch ops spread over Python worker threads (neighbours.py): torch set to
    one thread for the block, and the previous count yielded as the number of workers (restored
    afterwards). After `fix_process_threads` nothing is changed and 1 worker is yielded: its
    ops use the fixed pool, and other sessions' computations keep theirs."""
    if _fixed is not None:
        yield 1
        return
    import torch

    workers = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield workers
    finally:
        torch.set_num_threads(workers)
