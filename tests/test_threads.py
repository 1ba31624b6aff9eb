"""CPU threads: counted from what this process may use (affinity, the cgroup quotas of its own
cgroup and the ones above it), and fixed once in a server process so that a computation in one
session never resizes torch's process-wide thread pool under another's."""
import threading

import pytest
import torch

from ssl_core import threads


@pytest.fixture
def cgroups(tmp_path, monkeypatch):
    """A fake cgroup v2 tree with this process in /user.slice/app.scope."""
    root = tmp_path / "cgroup"
    (root / "user.slice" / "app.scope").mkdir(parents=True)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("0::/user.slice/app.scope\n")
    monkeypatch.setattr(threads, "_CGROUP_ROOT", root)
    monkeypatch.setattr(threads, "_PROC_CGROUP", proc)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.delenv("LATENTLAB_NUM_THREADS", raising=False)
    return root


def test_affinity_limits_the_count(cgroups, monkeypatch):
    assert threads.available_cpus() == 16                               # no quota anywhere
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {2, 5})
    assert threads.available_cpus() == 2 == threads.default_threads()


def test_a_quota_on_a_parent_cgroup_limits_the_count(cgroups):
    (cgroups / "cpu.max").write_text("max 100000\n")
    (cgroups / "user.slice" / "cpu.max").write_text("250000 100000\n")   # 2.5 CPUs: 3 threads
    (cgroups / "user.slice" / "app.scope" / "cpu.max").write_text("max 100000\n")
    assert threads.available_cpus() == 3
    (cgroups / "user.slice" / "app.scope" / "cpu.max").write_text("50000 100000\n")
    assert threads.available_cpus() == 1                                # the tightest wins


def test_cgroup_v1_quota_is_read_from_the_processes_own_cgroup(cgroups, tmp_path, monkeypatch):
    proc = tmp_path / "proc-v1"
    proc.write_text("4:memory:/x\n2:cpu,cpuacct:/docker/abc\n0::/\n")
    monkeypatch.setattr(threads, "_PROC_CGROUP", proc)
    own = cgroups / "cpu,cpuacct" / "docker" / "abc"
    own.mkdir(parents=True)
    (own / "cpu.cfs_quota_us").write_text("400000\n")
    (own / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.available_cpus() == 4


def test_once_fixed_computations_never_change_the_process_wide_count(monkeypatch):
    calls = []
    monkeypatch.setattr(threads, "_fixed", None)
    monkeypatch.setattr(torch, "set_num_threads", calls.append)         # record, change nothing
    monkeypatch.setattr(threads, "default_threads", lambda: 3)
    assert threads.fix_process_threads() == 3 and calls == [3]
    assert threads.fix_process_threads(7) == 3                          # set once, then kept
    seen = []

    def computation() -> None:                                          # e.g. a fit or predict
        with threads.torch_threads() as n, threads.torch_threads(1) as one:
            with threads.one_thread_per_worker() as workers:
                seen.append((n, one, workers))

    workers = [threading.Thread(target=computation) for _ in range(4)]  # sessions side by side
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert calls == [3] and seen == [(3, 3, 1)] * 4


def test_unfixed_torch_threads_sets_and_restores(monkeypatch):
    monkeypatch.setattr(threads, "_fixed", None)
    before = torch.get_num_threads()
    with threads.torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
