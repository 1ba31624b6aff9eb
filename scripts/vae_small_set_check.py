"""The VAE-based method on a small 28x28 project: a random subset of MNIST, the first 10
images of each class labeled, accuracy on the rest. Checks that small sets get enough VAE
steps (VAEMethodConfig.min_vae_steps); 20 epochs of 3,000 images are only 220 steps.

    .venv/bin/python scripts/vae_small_set_check.py --data-root ../shared/data --n 3000 --seed 0

Each run prints one JSON row and appends it to benchmarks/small_project.jsonl (`--out ''` to
skip); the README sentence is generated from those rows by scripts/readme_tables.py.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # run as a script from anywhere
from benchmarks.engine import load_bench_data  # noqa: E402
from benchmarks.rows import append_rows, code_changed, current_commit  # noqa: E402
from ssl_core.models.vae_method import VAEMethod  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--n", type=int, default=3000, help="images in the project")
    ap.add_argument("--budget-s", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "small_project.jsonl"),
                    help="JSONL file the row is appended to ('' for none)")
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    data = load_bench_data("mnist", args.data_root)
    subset = np.random.RandomState(args.seed).choice(len(data.labels), args.n, replace=False)
    images, truth = data.images[subset], data.labels[subset]
    labeled = np.concatenate([np.flatnonzero(truth == c)[:10] for c in np.unique(truth)])
    y = np.full(len(truth), -1)
    y[labeled] = truth[labeled]
    rest = np.ones(len(truth), bool)
    rest[labeled] = False
    stages: dict[str, dict] = {}

    def record(progress) -> None:            # the last progress of each stage: steps done, why it stopped
        if progress.stage and progress.total_steps:
            stages[progress.stage] = {"steps": progress.step, "total_steps": progress.total_steps,
                                      "stopped_by": progress.stopped_by,
                                      "elapsed_s": round(progress.elapsed_s, 1)}
    start, cpu = time.perf_counter(), time.process_time()
    model = VAEMethod(random_state=args.seed).fit(images, y, callbacks=[record],
                                                  time_budget_s=args.budget_s)
    accuracy = float((model.predict(images[rest]) == truth[rest]).mean())
    row = {"benchmark": "vae_small_set", "dataset": "mnist", "method": "vae",
           "n_images": args.n, "labels": len(labeled), "labels_per_class": 10, "seed": args.seed,
           "budget_s": args.budget_s, "vae_epochs": model.vae_.config.epochs,
           "accuracy_on_unlabeled": round(accuracy, 4),
           "seconds": round(time.perf_counter() - start, 1),
           "cpu_seconds": round(time.process_time() - cpu, 1), "stages": stages,
           "load_avg_start": round(load_start, 2), "commit": current_commit(),
           "code_changed": code_changed()}
    print(json.dumps(row))
    append_rows(args.out or None, [row])


if __name__ == "__main__":
    main()
