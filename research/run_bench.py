"""Benchmark runner: one JSON line per (method, seed) run.

Each run executes in a fresh subprocess so peak RSS is per run. Protocol: labels drawn per class
with seed K from the training split; all train + test pixels are given to fit() unlabeled
(transductive, as the app imports all images); test labels are used only for scoring.

usage: run_bench.py --dataset mnist --method default --labels-per-class 10 --budget 180 --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

METHODS = ("default", "graph", "vae", "gan", "gan-pure", "baseline-cnn", "baseline-gan", "baseline-vae",
           "baseline-cnn-noaug", "baseline-gan-noaug", "baseline-vae-noaug")


def make_estimator(method: str, budget: float, seed: int, dataset: str):
    if method == "default":
        from engine.pipeline import PipelineConfig, SSLPipelineClassifier
        cfg = PipelineConfig()
        if dataset == "digits":
            cfg.graph.n_neighbors, cfg.graph.val_repeats = 5, 5
        return SSLPipelineClassifier(cfg, random_state=seed, time_budget_s=budget)
    if method == "graph":
        from engine.graph_ssl import GraphConfig, GraphSSLClassifier
        cfg = GraphConfig(n_neighbors=5, val_repeats=5) if dataset == "digits" else GraphConfig()
        return GraphSSLClassifier(cfg, random_state=seed, time_budget_s=budget)
    if method == "vae":
        from engine.vae_ssl import VAESSLClassifier
        return VAESSLClassifier(random_state=seed, time_budget_s=budget)
    if method in ("gan", "gan-pure"):
        from engine.gan import GANConfig, SSLGANClassifier
        return SSLGANClassifier(GANConfig(pseudo_labels=(method == "gan")), random_state=seed,
                                time_budget_s=budget)
    if method.startswith("baseline"):
        from engine.baseline import BaselineConfig, SupervisedClassifier
        parts = method.split("-")
        return SupervisedClassifier(kind=parts[1], config=BaselineConfig(augment="noaug" not in parts),
                                    random_state=seed, time_budget_s=budget)
    raise ValueError(method)


def run_one(dataset: str, method: str, lpc: int, seed: int, budget: float) -> dict:
    import torch
    torch.set_num_threads(2)
    from engine.data import load_dataset, sample_labels
    t0 = time.time()
    xtr, ytr, xte, yte = load_dataset(dataset)
    lab = sample_labels(ytr, lpc, seed)
    est = make_estimator(method, budget, seed, dataset)
    if method.startswith("baseline"):  # supervised-only: sees the labeled images alone
        X, y = xtr[lab], ytr[lab]
    else:
        X = np.concatenate([xtr, xte])
        y = np.full(len(X), -1, dtype=np.int64)
        y[lab] = ytr[lab]
    est.fit(X, y)
    fit_s = time.time() - t0
    acc = float(np.mean(est.predict(xte) == yte))
    seconds = time.time() - t0
    val = getattr(est, "validation_score_", None)
    return {"dataset": dataset, "method": method, "labels_per_class": lpc, "seed": seed,
            "budget_s": budget, "seconds": round(seconds, 1), "fit_seconds": round(fit_s, 1),
            "test_accuracy": round(acc, 4),
            "val_accuracy": None if val is None or not np.isfinite(val) else round(float(val), 4),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "cpu_seconds": round(time.process_time(), 1),
            "rollbacks": getattr(est, "rollbacks_", None)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="mnist", choices=["mnist", "fashion", "digits"])
    ap.add_argument("--method", default="default", choices=METHODS)
    ap.add_argument("--labels-per-class", type=int, default=10)
    ap.add_argument("--budget", type=float, default=180.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--single", action="store_true", help="run in this process (internal)")
    a = ap.parse_args()
    if a.single:
        print(json.dumps(run_one(a.dataset, a.method, a.labels_per_class, a.seeds[0], a.budget)), flush=True)
        return
    for s in a.seeds:
        cmd = [sys.executable, __file__, "--single", "--dataset", a.dataset, "--method", a.method,
               "--labels-per-class", str(a.labels_per_class), "--budget", str(a.budget), "--seeds", str(s)]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
