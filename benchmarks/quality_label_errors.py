"""Likely label errors on MNIST: how many deliberately flipped labels confident learning finds.

    python -m benchmarks.quality_label_errors [--data-root /work/shared/data] [--seed S]
        [--out benchmarks/quality_label_errors.jsonl]

All 70,000 MNIST images are the pool (transductive, as a project holds them); 10 labels per
class are drawn from the train split with the seed and 10 of those 100 are flipped to a random
wrong class. `find_label_errors` (ssl_core/quality/label_errors.py) then runs as the quality
job runs it, graph build included. Reported: how many flipped labels are among the top 15 of
its ranking (target >= 8 of 10, median of 3 seeds), how many correct labels are there (15 -
found), what cleanlab's filter flagged and how many of those were flipped, where each flipped
label ranked, and how many flipped labels get their true class as the suggestion. Ground truth
is used only to score.

Tuning (5 vs 10 folds, Poisson vs Laplace, the cleanlab ranking and filter) used seeds
100-104 only; the committed rows are seeds 0, 1, 2, run after the code was committed.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from benchmarks.rows import append_rows, code_changed, current_commit

TOP = 15
PER_CLASS = 10
N_FLIPPED = 10


def noisy_labels(gt: np.ndarray, is_test: np.ndarray, seed: int, n_classes: int = 10
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(codes (N,) with -1 unlabeled, flipped ids (F,)): PER_CLASS train images per class
    labeled, N_FLIPPED of them given a random wrong class."""
    rng = np.random.default_rng(seed)
    labeled = np.concatenate([rng.choice(np.flatnonzero((gt == c) & ~is_test), PER_CLASS,
                                         replace=False) for c in range(n_classes)])
    codes = np.full(len(gt), -1, np.int64)
    codes[labeled] = gt[labeled]
    flipped = rng.choice(labeled, N_FLIPPED, replace=False)
    for i in flipped:
        codes[i] = (gt[i] + rng.integers(1, n_classes)) % n_classes
    return codes, flipped


def run(data_root: str, seed: int) -> dict:
    from ssl_core.data.sources import SourceSpec, load_source
    from ssl_core.quality.label_errors import find_label_errors

    data = load_source(SourceSpec("mnist", data_root=data_root, download=False))
    codes, flipped = noisy_labels(data.gt, data.is_test, seed)
    load = os.getloadavg()[0]
    report = find_label_errors(data.images, codes, 10, seed=seed)
    ranked = [i.image_id for i in report.issues]
    flagged = {i.image_id for i in report.issues if i.flagged}
    suggested = {i.image_id: i.suggested for i in report.issues}
    found = len(set(ranked[:TOP]) & set(flipped.tolist()))
    row = {"bench": "label_errors", "dataset": "mnist", "seed": seed,
           "labels_per_class": PER_CLASS, "n_flipped": N_FLIPPED, "top": TOP,
           "found_in_top15": found, "correct_in_top15": TOP - found,
           "n_flagged": report.n_flagged, "flagged_flipped": len(flagged & set(flipped.tolist())),
           "flagged_correct": len(flagged - set(flipped.tolist())),
           "flipped_ranks": sorted(ranked.index(int(i)) + 1 for i in flipped),
           "flipped_suggested_true": int(sum(suggested[int(i)] == data.gt[i] for i in flipped)),
           "method": report.method, "seconds": report.seconds,
           "graph_seconds": report.graph_seconds, "load_avg_start": round(load, 2),
           "commit": current_commit()}
    if code_changed():
        row["uncommitted_changes"] = True
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality_label_errors",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="/work/shared/data")
    parser.add_argument("--seed", type=int, action="append",
                        help="repeatable; default 0, 1, 2")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    for seed in args.seed or [0, 1, 2]:
        row = run(args.data_root, seed)
        print(row, flush=True)
        append_rows(args.out, [row])
    return 0


if __name__ == "__main__":
    sys.exit(main())
