"""The benchmark CLI and the budget-aware learning-rate schedule it relies on."""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.engine import draw_labels
from ssl_core.training.schedules import BudgetSchedule, flat_then_linear, one_cycle

ROOT = Path(__file__).resolve().parent.parent


def test_labels_are_drawn_per_class_from_the_training_split_and_seeded():
    labels = np.repeat(np.arange(4), 50)
    train = np.flatnonzero(np.arange(200) % 5 != 0)
    a = draw_labels(labels, train, 3, seed=1)
    assert np.isin(a, train).all() and np.bincount(labels[a]).tolist() == [3, 3, 3, 3]
    assert np.array_equal(a, draw_labels(labels, train, 3, seed=1))
    assert not np.array_equal(a, draw_labels(labels, train, 3, seed=2))


def test_bench_prints_one_json_line_for_digits(tmp_path):
    out = tmp_path / "runs.jsonl"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.engine", "--dataset", "digits",
                           "--labels-per-class", "5", "--method", "default", "--budget-s", "30",
                           "--seed", "0", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("dataset", "method", "labels_per_class", "seed", "budget_s", "seconds",
                "test_accuracy", "val_accuracy", "peak_rss_mb"):
        assert key in row
    assert row["seconds"] <= row["budget_s"] and row["test_accuracy"] > 0.9   # chance is 0.1
    assert json.loads(out.read_text()) == row


def test_bench_explains_a_missing_data_root():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.engine", "--dataset", "mnist"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--data-root" in proc.stderr and "Traceback" not in proc.stderr


def test_schedule_shapes():
    assert one_cycle(0.0) == pytest.approx(0.1) and one_cycle(0.15) == pytest.approx(1.0)
    assert one_cycle(1.0) == pytest.approx(0.0, abs=1e-12)
    assert flat_then_linear(0.3) == 1.0 and flat_then_linear(0.75) == pytest.approx(0.5)
    assert flat_then_linear(1.0) == 0.0


def test_budget_schedule_anneals_when_time_runs_out_before_the_steps():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = BudgetSchedule(opt, 1.0, total_steps=1_000_000, budget_s=0.2)
    sched.step()
    assert 0 < opt.param_groups[0]["lr"] <= 1.0
    time.sleep(0.25)
    sched.step()
    assert sched.progress() == 1.0 and opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_simulated_labeler_lets_the_app_choose_the_labels():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.engine", "--dataset", "digits",
                           "--strategy", "uncertainty", "--labels", "20", "--budget-s", "60",
                           "--seed", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["strategy"] == "uncertainty" and row["labels"] == 20 == sum(row["label_counts"])
    assert row["seconds"] <= row["budget_s"] and row["test_accuracy"] > 0.5


def _bench_row(*flags: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.engine", "--dataset", "digits",
                           "--labels-per-class", "5", "--method", "graph", "--budget-s", "30",
                           "--seed", "0", *flags], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_inductive_protocol_withholds_the_test_images_from_fit():
    row = _bench_row("--protocol", "inductive")
    assert row["protocol"] == "inductive" and "test_accuracy" not in row
    assert row["n_fit"] == row["n_images"] - row["n_test"] == 1797 - 360
    assert row["test_accuracy_inductive"] > 0.9


def test_dev_split_drops_the_test_split_and_scores_a_fixed_part_of_train():
    from benchmarks.engine import BenchData, development_split

    labels = np.repeat(np.arange(3), 40)
    is_test = np.arange(120) % 4 == 0
    data = BenchData(np.zeros((120, 2, 2, 1), np.uint8), labels, is_test)
    dev = development_split(data)
    assert len(dev.labels) == 90 and dev.is_test.sum() == 18           # 20% of each class's 30
    assert np.array_equal(dev.is_test, development_split(data).is_test)  # fixed, not seeded per run
    row = _bench_row("--split", "dev")
    assert row["split"] == "dev" and row["n_images"] == 1797 - 360 and row["protocol"] == "transductive"


def test_gen_augment_rows_record_the_option_and_what_it_kept():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.engine", "--dataset", "digits",
                           "--labels-per-class", "1", "--method", "baseline", "--budget-s", "20",
                           "--seed", "0", "--protocol", "inductive", "--gen-augment",
                           "--gen-per-class", "20", "--gen-weight", "0.5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["gen_augment"] is True and row["gen_per_class"] == 20 and row["gen_weight"] == 0.5
    assert row["gen_n_drawn"] == 200 and 0 <= row["gen_n_used"] <= 200
    assert row["n_fit"] == 1797 - 360 and row["seconds"] <= row["budget_s"]
    refused = subprocess.run([sys.executable, "-m", "benchmarks.engine", "--dataset", "digits",
                              "--method", "gan", "--gen-augment"], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode == 1 and "SSL-GAN uses its own" in refused.stderr
