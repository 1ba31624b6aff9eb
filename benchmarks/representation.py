"""Which representation to use by default: label propagation on pixels vs pretrained features.

    python -m benchmarks.representation --data-root ../shared/data --photos /tmp/photos \
        --out benchmarks/representation.jsonl

For each dataset (digits; MNIST and Fashion-MNIST, a seeded subset of `--subset` images each;
the photo folder), each representation ('pixels': the engine's deskewed-PCA pixels;
'efficientnet-lite0': ImageNet-pretrained features) and L labels per class, the default
method's first stage (GraphClassifier: kNN graph + Poisson/Laplace chosen on the labels) is
fitted with L random labels per class and scored on every unlabeled image. Seeds draw the
labels; the same draws for both representations. One JSON row per fit. The default rule in
ssl_core/features/choice.py is read off these rows (README "Representations").
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from benchmarks.rows import append_rows, current_commit


def datasets(data_root: str | None, photos: str | None, subset: int, names: list[str]):
    from benchmarks.engine import load_bench_data

    for name in names:
        if name == "photos":
            if photos:
                yield name, load_bench_data("folder", None, photos)
            continue
        if name != "digits" and not data_root:
            continue
        data = load_bench_data(name, data_root)
        if len(data.labels) > subset:
            keep = np.sort(np.random.default_rng(0).choice(len(data.labels), subset, replace=False))
            data.images, data.labels, data.is_test = (data.images[keep], data.labels[keep],
                                                      data.is_test[keep])
        yield name, data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.representation", description=__doc__)
    parser.add_argument("--data-root")
    parser.add_argument("--photos")
    parser.add_argument("--datasets", default="digits,mnist,fashion-mnist,photos")
    parser.add_argument("--subset", type=int, default=10_000)
    parser.add_argument("--labels", default="1,3,10")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    from ssl_core import make_estimator
    from ssl_core.models.representation import feature_matrix

    commit = current_commit()
    rows = []
    for name, data in datasets(args.data_root, args.photos, args.subset,
                               args.datasets.split(",")):
        for representation in ("pixels", "efficientnet-lite0"):
            t0 = time.perf_counter()
            feats = feature_matrix(representation, data.images)
            features_s = time.perf_counter() - t0
            for per_class in (int(v) for v in args.labels.split(",")):
                for seed in range(args.seeds):
                    rng = np.random.default_rng(seed)
                    y = np.full(len(data.labels), -1)
                    for c in np.unique(data.labels):
                        members = np.flatnonzero(data.labels == c)
                        y[rng.choice(members, min(per_class, len(members)), replace=False)] = c
                    t0 = time.perf_counter()
                    model = make_estimator("graph", random_state=seed,
                                           representation=representation)
                    model.fit(data.images, y, features=feats)
                    rest = y < 0
                    row = {"benchmark": "representation", "dataset": name,
                           "n_images": len(data.labels), "shape": list(data.images.shape[1:]),
                           "representation": representation, "labels_per_class": per_class,
                           "seed": seed, "rest_accuracy": round(float(
                               (model.transduction_[rest] == data.labels[rest]).mean()), 4),
                           "propagation": model.propagation_,
                           "fit_s": round(time.perf_counter() - t0, 1),
                           "features_s": round(features_s, 1), "commit": commit}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    append_rows(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
