"""Runs as tables for the results views: history, the learning curve, one run's curves.

Plain pandas frames built from the store, so a notebook gets the same numbers as the Train
page. Accuracies are percentages; `test` columns are filled only where the dataset had ground
truth (measured on the sealed evaluation images, transductive: evaluation_split.py), and they
are never used to pick anything.
"""
from __future__ import annotations

import pandas as pd

from ssl_core.project.store import Store
from ssl_core.results.runs import Run, list_runs, run_metrics


def _pct(acc: dict | None, key: str = "value") -> float | None:
    return None if not acc else 100.0 * acc[key]


def history_frame(store: Store, limit: int = 200) -> pd.DataFrame:
    """One row per finished run, newest first: run, method, labels, validation % with its 95%
    interval and n, test % (ground truth), baseline's validation/test %, gain in points,
    generated images trained on (None: the option was off)."""
    rows = []
    for run in list_runs(store, limit):
        s = run.summary
        if not s:
            continue
        val, test, base = s.get("validation"), s.get("test"), s.get("baseline") or {}
        gain = s.get("gain") or {}
        rows.append({
            "run": run.id, "method": run.method, "labels": run.n_labels,
            "validation %": _pct(val), "val low %": _pct(val, "low"), "val high %": _pct(val, "high"),
            "val n": None if not val else val["n"],
            "test % (ground truth)": _pct(test),
            "baseline val %": _pct(base.get("validation")),
            "baseline test %": _pct(base.get("test")),
            "gain (points)": gain.get("test", gain.get("validation")),
            "warm start from": s.get("warm_start_run"),
            "generated images": (s["gen_augment"].get("n_used_total", 0) if s.get("gen_augment")
                                 else None),          # kept generated images it trained on
        })
    return pd.DataFrame(rows)


def learning_curve_frame(store: Store) -> pd.DataFrame:
    """Long format for accuracy against number of labels: labels, method, measure
    ('validation' | 'test (ground truth)'), accuracy %, run. The baselines fitted beside runs
    appear as method 'baseline (same labels)'."""
    rows = []
    for run in list_runs(store, 500):
        s = run.summary or {}
        for method, part in ((run.method, s), ("baseline (same labels)", s.get("baseline") or {})):
            for key, measure in (("validation", "validation"), ("test", "test (ground truth)")):
                if part.get(key):
                    rows.append({"labels": run.n_labels, "method": method, "measure": measure,
                                 "accuracy %": 100.0 * part[key]["value"], "run": run.id})
    return pd.DataFrame(rows, columns=["labels", "method", "measure", "accuracy %", "run"])


def curves_frame(store: Store, run: Run) -> pd.DataFrame:
    """A run's logged values in long format: step, seconds (since its fit began), name, value."""
    metrics = run_metrics(store, run.id)
    seconds = dict(metrics.pop("elapsed_s", []))
    rows = [{"step": step, "seconds": seconds.get(step), "name": name, "value": value}
            for name, series in metrics.items() for step, value in series]
    return pd.DataFrame(rows, columns=["step", "seconds", "name", "value"])
