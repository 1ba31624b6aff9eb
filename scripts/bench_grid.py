"""Run the engine benchmark over a grid, one fresh process per run (so peak memory is per run),
appending JSON lines to benchmarks/results.jsonl. Runs already in the file are skipped, so the
grid can be stopped and resumed.

    .venv/bin/python scripts/bench_grid.py --plan targets --data-root ../shared/data
    .venv/bin/python scripts/bench_grid.py --plan table --data-root ../shared/data
    .venv/bin/python scripts/bench_grid.py --plan photos --path /tmp/photos   # benchmarks.photo_folder
    .venv/bin/python scripts/bench_grid.py --plan regression --data-root ../shared/data \
        --out benchmarks/regression.jsonl
    .venv/bin/python scripts/bench_grid.py --plan inductive --data-root ../shared/data
    .venv/bin/python scripts/bench_grid.py --plan gen_augment --data-root ../shared/data \
        --out benchmarks/gen_augment.jsonl

A plan entry's extra flags may include `--protocol inductive` and `--split dev` (issue 14); a row
without them was transductive on the test split. `--gen-augment` (issue 17) is part of a run's
key too (a row without `gen_augment` was fitted without generated images).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results.jsonl"

# (dataset, method, labels per class, budget, seeds, extra flags)
PHOTO_METHODS = ("default", "graph", "gan", "vae", "baseline")
GEN_BUDGETS = (("digits", 30), ("mnist", 180))   # issue 17's datasets, digits first (fast)
PLANS = {
    # issue 17: generated labelled images, with and without, every cell the same seeds and
    # protocol (--out benchmarks/gen_augment.jsonl: without-rows of the same run, not old ones)
    "gen_augment": [(d, m, n, budget, (0, 1, 2), (*gen, "--protocol", protocol))
                    for d, budget in GEN_BUDGETS for protocol in ("transductive", "inductive")
                    for n in (1, 5, 10) for m in ("default", "vae", "baseline")
                    for gen in ((), ("--gen-augment",))],
    # issue 13: every method on the 188-photo folder (python -m benchmarks.photo_folder), --path
    "photos": [("folder", m, n, 60, (0, 1, 2), ()) for n in (3, 1, 5) for m in PHOTO_METHODS],
    # issue 13: digits and MNIST after the photo changes (--out benchmarks/regression.jsonl)
    # issue 14: the MNIST table's cells scored on unseen test images (the transductive rows exist)
    "inductive": [("mnist", m, 10, 180, (0, 1, 2), ("--protocol", "inductive"))
                  for m in ("default", "gan", "vae", "baseline")],
    "regression": [*[("digits", m, 5, 30, (0, 1, 2), ()) for m in ("default", "gan", "vae", "baseline")],
                   ("mnist", "default", 10, 180, (0,), ())],
    "targets": [
        ("digits", "default", 5, 30, (0, 1, 2), ()),
        ("mnist", "default", 10, 180, (0, 1, 2), ()),
        ("mnist", "vae", 10, 180, (0, 1, 2), ()),
        ("mnist", "gan", 10, 180, (0, 1, 2), ()),
        ("mnist", "baseline", 10, 180, (0, 1, 2), ("--baseline-family", "vae", "--no-augment")),
        ("mnist", "baseline", 10, 180, (0, 1, 2), ("--baseline-family", "gan", "--no-augment")),
        ("mnist", "baseline", 10, 180, (0, 1, 2), ()),
        ("mnist", "default", 10, 900, (0,), ()),
    ],
    "table": [
        *[("digits", m, n, 30, (0,), ()) for n in (1, 5, 10, 50)
          for m in ("default", "vae", "gan", "baseline")],
        *[("mnist", m, n, 180, (0,), ()) for m in ("default", "baseline") for n in (1, 5, 50)],
        *[("mnist", m, n, 180, (0,), ()) for m in ("gan", "vae") for n in (1, 5, 50)],
    ],
    "labeler": [
        *[("mnist", "labeler", s, 300, (0,), ()) for s in ("diversity", "uncertainty", "random")],
    ],
    "session": [   # what one session's remaining machine time allowed, most needed first
        ("mnist", "vae", 10, 180, (0, 1, 2), ()),
        ("mnist", "labeler", "diversity", 300, (0,), ()),
        *[("digits", m, n, 30, (0,), ()) for n in (1, 5, 10, 50)
          for m in ("default", "vae", "gan", "baseline")],
        ("mnist", "labeler", "random", 300, (0,), ()),
        ("mnist", "gan", 10, 900, (0,), ()),
    ],
    "finish": [   # issue 3's remaining targets, then the MNIST table rows
        ("mnist", "gan", 10, 900, (0, 1, 2), ()),
        ("mnist", "default", 10, 900, (1, 2), ()),
        *[("mnist", m, n, 180, (0,), ()) for m in ("default", "baseline", "gan", "vae") for n in (1, 5, 50)],
    ],
    "digits-vae": [   # the VAE-based method after its small-image settings
        *[("digits", "vae", n, 30, (0, 1, 2), ()) for n in (1, 5, 10, 50)],
    ],
    "gan-quiet": [    # the SSL-GAN's 180 s row again, on a quiet machine
        ("mnist", "gan", 10, 180, (0, 1, 2), ()),
        *[("mnist", "gan", n, 180, (0,), ()) for n in (1, 5, 50)],
    ],
    "extra": [
        ("mnist", "default", 10, 900, (1, 2), ()),
        ("mnist", "gan", 10, 900, (0,), ()),
        ("mnist", "baseline", 10, 180, (0, 1, 2), ("--baseline-family", "vae")),
        ("mnist", "baseline", 10, 180, (0, 1, 2), ("--baseline-family", "gan")),
        ("mnist", "baseline", 10, 180, (0, 1, 2), ("--no-augment",)),
    ],
}


def _flag(extra, name: str, default: str) -> str:
    return extra[extra.index(name) + 1] if name in extra else default


def run_key(dataset, method, n, budget, seed, extra) -> tuple:
    if method == "labeler":
        return (dataset, method, n, float(budget), seed)
    family = _flag(extra, "--baseline-family", "cnn")
    augment = "--no-augment" not in extra
    key = (dataset, method, n, float(budget), seed,
           _flag(extra, "--split", "test"), _flag(extra, "--protocol", "transductive"),
           "--gen-augment" in extra)
    return key + ((family, augment) if method == "baseline" else ())


def row_key(row: dict) -> tuple:
    if "strategy" in row:
        return (row["dataset"], "labeler", row["strategy"], float(row["budget_s"]), row["seed"])
    key = (row["dataset"], row["method"], row["labels_per_class"], float(row["budget_s"]), row["seed"],
           row.get("split", "test"), row.get("protocol", "transductive"),
           bool(row.get("gen_augment", False)))
    return key + ((row["baseline_family"], row["augment"]) if row["method"] == "baseline" else ())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plan", choices=PLANS, required=True)
    ap.add_argument("--data-root", default=None, help="for the public datasets")
    ap.add_argument("--path", default=None, help="for the folder plans: a folder of class folders")
    ap.add_argument("--out", default=str(RESULTS), help="where the rows go (and which are done)")
    ap.add_argument("--methods", default=None, help="only these methods of the plan (comma list)")
    ap.add_argument("--datasets", default=None, help="only these datasets of the plan (comma list)")
    args = ap.parse_args()
    out = Path(args.out)
    done = {row_key(json.loads(line)) for line in out.read_text().splitlines()} if out.exists() else set()
    only = set(args.methods.split(",")) if args.methods else None
    datasets = set(args.datasets.split(",")) if args.datasets else None
    for dataset, method, n, budget, seeds, extra in PLANS[args.plan]:
        if (only and method not in only) or (datasets and dataset not in datasets):
            continue
        for seed in seeds:
            if run_key(dataset, method, n, budget, seed, extra) in done:
                continue
            what = (["--strategy", n, "--labels", "50"] if method == "labeler" else
                    ["--method", method, "--labels-per-class", str(n), *extra])
            cmd = [sys.executable, "-m", "benchmarks.engine", "--dataset", dataset, *what,
                   "--budget-s", str(budget), "--seed", str(seed), "--out", str(out)]
            if dataset == "folder":
                cmd += ["--path", args.path]
            elif args.data_root:
                cmd += ["--data-root", args.data_root]
            print(" ".join(cmd[1:]), flush=True)
            subprocess.run(cmd, cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
