"""Duplicate and outlier detection (ssl_core/quality) against injected truth.

    python -m benchmarks.quality_duplicates [--data-root /work/shared/data] [--seed S]
        [--out benchmarks/quality.jsonl] [--descriptors] [--outlier-methods]

1. duplicates: all 70,000 MNIST images, then 1,000 copies appended in a seeded random order:
   700 near-duplicates of random MNIST images, each made by a random non-empty subset of
   {JPEG re-encoding at quality 70, a shift by (dx, dy) in -2..2 (not both 0), a rescale by
   0.9-1.1 about the centre} (each with probability 1/2, redrawn if none; geometry first, JPEG
   last), and 300 exact copies of other random images. The copies live in a memmapped .npy
   like a project's images. Truth: each source with its copies is a true group.
   - pair precision / recall: over all pairs inside predicted groups vs all pairs inside true
     groups (a group of m gives m(m-1)/2 pairs, so a chain through the data costs a lot);
   - copy recall: the share of copies grouped with their source (near and exact apart);
   - group precision: the share of predicted groups that lie inside one true group;
     group recall: the share of true groups predicted exactly.
   False pairs are split into: natural (two MNIST images; of those, with the same pixels, or
   the same digit), and with a copy (a copy linked to an image other than its source's group).
   `--descriptors` repeats it with other descriptors (the choice in quality/descriptor.py).
2. outliers: 200 random Fashion-MNIST images appended to MNIST; recall = the share of them in
   the top 400 of the ranking. `--outlier-methods` adds the kNN scores (quality/outliers.py).
Seconds include everything the library does (hashing, descriptors, search, calibration).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np

from benchmarks.rows import append_rows, code_changed, current_commit


def make_copies(images: np.ndarray, rng: np.random.Generator, n_near: int = 700,
                n_exact: int = 300) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """-> copies (n_near + n_exact, H, W, C) in random order, their sources (ids into images)
    and what was done to each ('exact' or '+'-joined transforms)."""
    from ssl_core.quality.descriptor import affine, jpeg

    near_src = rng.choice(len(images), n_near, replace=False)
    exact_src = rng.choice(len(images), n_exact, replace=False)
    copies, kinds = [], []
    for i in near_src:
        ops: list[str] = []
        while not ops:
            ops = [op for op in ("jpeg", "shift", "scale") if rng.random() < 0.5]
        dx = dy = 0
        while "shift" in ops and dx == 0 and dy == 0:
            dx, dy = (int(v) for v in rng.integers(-2, 3, 2))
        out = images[i]
        if "shift" in ops or "scale" in ops:
            out = affine(out, rng.uniform(0.9, 1.1) if "scale" in ops else 1.0, dx, dy)
        if "jpeg" in ops:
            out = jpeg(out, 70)
        copies.append(out)
        kinds.append("+".join(ops))
    copies += [images[i] for i in exact_src]
    kinds += ["exact"] * n_exact
    order = rng.permutation(len(copies))
    sources = np.concatenate([near_src, exact_src])
    return np.stack(copies)[order], sources[order], [kinds[i] for i in order]


def score_duplicates(groups, n_natural: int, sources: np.ndarray, kinds: list[str],
                     rep: np.ndarray, gt: np.ndarray) -> dict:
    """Precision / recall of predicted groups vs the injected truth (module docstring)."""
    root = np.arange(n_natural + len(sources))          # true group id: the source's id
    root[n_natural:] = sources
    pred_pairs = {(a, b) for g in groups for a, b in combinations(g.ids, 2)}
    true_groups: dict[int, list[int]] = {}
    for c, s in enumerate(sources):
        true_groups.setdefault(int(s), [int(s)]).append(n_natural + c)
    true_pairs = {(a, b) for m in true_groups.values() for a, b in combinations(sorted(m), 2)}
    hit = pred_pairs & true_pairs
    false = pred_pairs - true_pairs
    natural = [(a, b) for a, b in false if a < n_natural and b < n_natural]
    group_of = {i: gi for gi, g in enumerate(groups) for i in g.ids}
    found = np.array([group_of.get(n_natural + c, -1) == group_of.get(int(s), -2)
                      for c, s in enumerate(sources)])
    is_exact = np.array([k == "exact" for k in kinds])
    pure = [len({root[i] for i in g.ids}) == 1 for g in groups]
    predicted = {tuple(g.ids) for g in groups}
    out = {
        "pair_precision": len(hit) / max(1, len(pred_pairs)),
        "pair_recall": len(hit) / max(1, len(true_pairs)),
        "copy_recall": float(found.mean()),
        "near_copy_recall": float(found[~is_exact].mean()),
        "exact_copy_recall": float(found[is_exact].mean()),
        "group_precision": float(np.mean(pure)) if groups else 1.0,
        "group_recall": float(np.mean([tuple(sorted(m)) in predicted
                                       for m in true_groups.values()])),
        "n_groups": len(groups), "n_predicted_pairs": len(pred_pairs),
        "n_true_pairs": len(true_pairs), "false_pairs": len(false),
        "false_pairs_natural": len(natural),
        "false_pairs_natural_same_pixels": sum(rep[a] == rep[b] for a, b in natural),
        "false_pairs_natural_same_digit": sum(gt[a] == gt[b] for a, b in natural),
        "false_pairs_with_copy": len(false) - len(natural),
    }
    for kind in sorted(set(kinds) - {"exact"}):
        sel = np.array([k == kind for k in kinds])
        out[f"recall_{kind}"] = round(float(found[sel].mean()), 4)
    return {k: round(v, 4) if isinstance(v, float) else int(v) for k, v in out.items()}


def descriptor_candidates(images: np.ndarray, seed: int) -> dict:
    """Other descriptors find_duplicates can be given, for `--descriptors`."""
    import torch

    from ssl_core.models.preprocessing import PixelProjection
    from ssl_core.quality.descriptor import pixel_descriptor

    sample = np.sort(np.random.default_rng(seed).choice(len(images), 10_000, replace=False))
    to_t = lambda b: torch.from_numpy(np.asarray(b)).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    proj, _ = PixelProjection.fit(to_t(images[sample]), True, 50, seed)
    return {
        "raw-pixels": lambda b: np.asarray(b, np.float32).reshape(len(b), -1),
        "deskew-pca50": lambda b: proj(to_t(b)).astype(np.float32),
        "moment16-nofloor": lambda b: pixel_descriptor(b, size=16, spread=2.2, sigma=0, floor=0),
    }


def bench_duplicates(data_root: str, seed: int, descriptors: bool) -> list[dict]:
    from ssl_core.data.sources import SourceSpec, load_source
    from ssl_core.quality.duplicates import exact_representatives, find_duplicates

    data = load_source(SourceSpec("mnist", data_root=data_root, download=False))
    copies, sources, kinds = make_copies(data.images, np.random.default_rng(seed))
    n = len(data.images)
    gt = np.concatenate([data.gt, data.gt[sources]])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npy"
        np.save(path, np.concatenate([data.images, copies]))
        images = np.load(path, mmap_mode="r")                        # (N + 1000, 28, 28, 1)
        rep = exact_representatives(images)
        cands = {"moment28": None} | (descriptor_candidates(data.images, seed) if descriptors
                                      else {})
        for name, describe in cands.items():
            load = os.getloadavg()[0]
            start = time.perf_counter()
            report = find_duplicates(images, describe=describe, seed=seed)
            seconds = time.perf_counter() - start
            cal = report.calibration
            rows.append({"bench": "duplicates", "dataset": "mnist", "seed": seed,
                         "descriptor": name, "n_images": len(images),
                         **score_duplicates(report.groups, n, sources, kinds, rep, gt),
                         "seconds": round(seconds, 1), "threshold": round(report.threshold, 4),
                         "ratio": round(cal["ratio"], 4),
                         "estimated_recall": cal["estimated_recall"],
                         "estimated_false_link_rate": cal["estimated_false_link_rate"],
                         "load_avg_start": load})
            print(rows[-1], flush=True)
    return rows


def bench_outliers(data_root: str, seed: int, methods: bool) -> list[dict]:
    from ssl_core.data.sources import SourceSpec, load_source
    from ssl_core.quality.outliers import find_outliers, outlier_space

    mnist = load_source(SourceSpec("mnist", data_root=data_root, download=False)).images
    fashion = load_source(SourceSpec("fashion-mnist", data_root=data_root, download=False))
    rng = np.random.default_rng(seed)
    images = np.concatenate([mnist, fashion.images[rng.choice(len(fashion.images), 200,
                                                              replace=False)]])
    foreign = np.arange(len(images)) >= len(mnist)
    rows = []
    for method in ("residual", "knn", "relative") if methods else ("residual",):
        load = os.getloadavg()[0]
        start = time.perf_counter()
        report = find_outliers(outlier_space(images, seed=seed), top=400, method=method,
                               seed=seed)
        seconds = time.perf_counter() - start
        rows.append({"bench": "outliers", "dataset": "mnist+200 fashion-mnist", "seed": seed,
                     "method": method, "n_images": len(images),
                     "recall_at_400": round(float(foreign[report.ids].sum()) / 200, 4),
                     "seconds": round(seconds, 1), "threshold": None,
                     "load_avg_start": load})
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality_duplicates",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="/work/shared/data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    parser.add_argument("--descriptors", action="store_true")
    parser.add_argument("--outlier-methods", action="store_true")
    parser.add_argument("--skip", choices=["duplicates", "outliers"])
    args = parser.parse_args(argv)
    commit, dirty = current_commit(), code_changed()
    rows = []
    if args.skip != "duplicates":
        rows += bench_duplicates(args.data_root, args.seed, args.descriptors)
    if args.skip != "outliers":
        rows += bench_outliers(args.data_root, args.seed, args.outlier_methods)
    for row in rows:
        row["commit"] = commit
        if dirty:
            row["uncommitted_changes"] = True
    append_rows(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
