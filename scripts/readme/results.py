"""The Results block and assets/results.svg, from benchmarks/results.jsonl.

Rows carry `protocol` ("transductive": the test images are in the unlabeled pool, the app's
setting, scored as `test_accuracy`; "inductive": the test images withheld from fit and predicted
afterwards, `test_accuracy_inductive`) and `split` ("test", or "dev" for tuning runs). A row
without `protocol` is transductive, one without `split` is on the test split. Dev rows never
enter the final tables; they get their own table, labeled as such.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from html import escape

from .common import load_jsonl, over_budget, pct, run_cell, span, summary

METHODS = ("default", "gan", "vae", "baseline")
NAMES = {"default": "default (graph → CNN)", "gan": "SSL-GAN", "vae": "VAE-based",
         "baseline": "supervised CNN (labels only)"}
LABELS = (1, 5, 10, 50)
BUDGET = {"mnist": 180.0, "digits": 30.0}
TARGETS = [  # (dataset, labels, method, budget, target accuracy, text)
    ("mnist", 10, "default", 180.0, 0.97, "≥ 97.0%"),
    ("mnist", 10, "default", 900.0, 0.99, "≥ 99.0%"),
    ("mnist", 10, "gan", 900.0, 0.97, "≥ 97.0%"),
    ("digits", 5, "default", 30.0, 0.95, "≥ 95.0%"),
]
TRANSDUCTIVE, INDUCTIVE = "transductive", "inductive"
ACCURACY = {TRANSDUCTIVE: "test_accuracy", INDUCTIVE: "test_accuracy_inductive"}


def protocol(r: dict) -> str:
    return r.get("protocol", TRANSDUCTIVE)


def split(r: dict) -> str:
    return r.get("split", "test")


def engine_runs(rows: list[dict]) -> list[dict]:
    """Single engine runs on a public dataset (not the labeler, not the photo folder, not runs
    with generated training images: those have their own block, scripts/readme/gen_augment.py)."""
    return [r for r in rows if "strategy" not in r and r.get("dataset") != "folder" and "method" in r
            and not r.get("gen_augment")]


def select(rows, dataset, method, n, budget, family=None, augment=None,
           proto=TRANSDUCTIVE, on="test") -> list[dict]:
    out = [r for r in engine_runs(rows) if r["dataset"] == dataset and r["method"] == method
           and r["labels_per_class"] == n and r["budget_s"] == budget
           and protocol(r) == proto and split(r) == on and ACCURACY[proto] in r]
    if method == "baseline":
        fam = family or "cnn"
        aug = True if augment is None else augment
        out = [r for r in out if r.get("baseline_family") == fam and r.get("augment") == aug]
    return sorted(out, key=lambda r: r["seed"])


def cell(runs: list[dict], proto: str = TRANSDUCTIVE) -> str:
    return run_cell(runs, ACCURACY[proto], decimals=2)


def median_acc(runs: list[dict], proto: str = TRANSDUCTIVE) -> float:
    return statistics.median(r[ACCURACY[proto]] for r in runs)


def target_table(rows: list[dict]) -> list[str]:
    lines = ["| dataset, labels | method | budget | target | result: median (min–max, runs) | "
             "seconds | verdict (median) | peak memory |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for dataset, n, method, budget, target, text in TARGETS:
        rs = select(rows, dataset, method, n, budget)
        if not rs:
            lines.append(f"| {dataset}, {n}/class | {method} | {budget:.0f} s | {text} | "
                         "not run yet | | | |")
            continue
        over = over_budget(rs)
        verdict = "met" if median_acc(rs) >= target else "**missed**"
        if over:
            verdict += f", but {len(over)} of {len(rs)} runs **over** the budget"
        lines.append(f"| {dataset}, {n}/class | {method} | {budget:.0f} s | {text} | "
                     f"**{summary([r['test_accuracy'] for r in rs], pct(2), '%', over).replace('%', '%**', 1)} | "
                     f"{span([r['seconds'] for r in rs], lambda v: f'{v:.0f}')} s | {verdict} | "
                     f"{max(r['peak_rss_mb'] for r in rs) / 1024:.2f} GB |")
    return lines


def protocol_table(rows: list[dict]) -> list[str]:
    lines = ["| method (MNIST, budget 180 s) | 10 labels/class, transductive (test pixels in the "
             "unlabeled pool, as in the app) | 10 labels/class, inductive (unseen test images, as "
             "papers score) |", "| --- | --- | --- |"]
    for m in METHODS:
        lines.append(f"| {NAMES[m]} | {cell(select(rows, 'mnist', m, 10, 180.0))} | "
                     f"{cell(select(rows, 'mnist', m, 10, 180.0, proto=INDUCTIVE), INDUCTIVE)} |")
    return lines


def sweep_table(rows: list[dict], dataset: str) -> list[str]:
    budget = BUDGET[dataset]
    lines = ["| method | " + " | ".join(f"{n} label{'s' if n > 1 else ''}/class" for n in LABELS)
             + " |", "| --- |" + " --- |" * len(LABELS)]
    for m in METHODS:
        lines.append(f"| {NAMES[m]} | " + " | ".join(cell(select(rows, dataset, m, n, budget))
                                                     for n in LABELS) + " |")
    return lines


def gain_table(rows: list[dict]) -> list[str]:
    lines = ["| method (MNIST, 10 labels/class, 180 s, transductive) | accuracy | same network, "
             "labels only, no augmentation | gain | same network, labels only, augmented | gain |",
             "| --- | --- | --- | --- | --- | --- |"]
    for method in ("vae", "gan"):
        ssl = select(rows, "mnist", method, 10, 180.0)
        base = select(rows, "mnist", "baseline", 10, 180.0, method, False)
        base_aug = select(rows, "mnist", "baseline", 10, 180.0, method, True)

        def gain(b: list[dict]) -> str:
            return f"{100 * (median_acc(ssl) - median_acc(b)):+.1f} points" if ssl and b else "–"
        lines.append(f"| {NAMES[method]} | {cell(ssl)} | {cell(base)} | {gain(base)} | "
                     f"{cell(base_aug)} | {gain(base_aug)} |")
    return lines


def labeler_table(rows: list[dict]) -> list[str]:
    """Every labeler run, then per strategy the median over all its runs with the range."""
    runs = sorted((r for r in rows if "strategy" in r), key=lambda r: (r["strategy"], r["seed"]))
    if not runs:
        return ["(not run yet)"]
    lines = ["| who chose the 50 labels | seed | test accuracy (transductive) | seconds (VAE "
             "included) | labels per class (0-9) |", "| --- | --- | --- | --- | --- |"]
    for r in runs:
        over = " (**over** budget)" if over_budget([r]) else ""
        lines.append(f"| {r['strategy']} | {r['seed']} | {100 * r['test_accuracy']:.2f}% | "
                     f"{r['seconds']:.0f} s{over} | {' '.join(map(str, r['label_counts']))} |")
    for strategy in sorted({r["strategy"] for r in runs}):
        rs = [r for r in runs if r["strategy"] == strategy]
        seeds = ", ".join(map(str, sorted({r["seed"] for r in rs})))
        lines.append(f"| **{strategy}: all runs** | {seeds} | "
                     f"**{summary([r['test_accuracy'] for r in rs], pct(2), '%', over_budget(rs)).replace('%', '%**', 1)}"
                     " | | |")
    return lines


def dev_table(rows: list[dict]) -> list[str]:
    dev = [r for r in engine_runs(rows) if split(r) == "dev"]
    if not dev:
        return []
    cells = defaultdict(list)
    for r in dev:
        cells[(r["dataset"], r["method"], r.get("baseline_family", ""), r["labels_per_class"],
               r["budget_s"], protocol(r))].append(r)
    lines = ["**Development split (tuning runs; not test results)**: a fixed stratified 20% of the "
             "training split scored, the test split dropped.", "",
             "| dataset | method | labels/class | budget | protocol | dev accuracy |",
             "| --- | --- | --- | --- | --- | --- |"]
    for (dataset, method, fam, n, budget, proto), rs in sorted(cells.items()):
        name = f"{method} ({fam})" if fam else method
        lines.append(f"| {dataset} | {name} | {n} | {budget:.0f} s | {proto} | {cell(rs, proto)} |")
    return lines + [""]


def block(rows: list[dict]) -> str:
    seeds = sorted({r["seed"] for r in engine_runs(rows) if split(r) == "test"})
    parts = [
        "Generated by `scripts/readme_tables.py` from `benchmarks/results.jsonl` (each line one",
        "`python -m benchmarks.engine` run on this project's 2-core CPU, no GPU). Two accuracies, both",
        "on the dataset's own test split, whose labels no method sees: **transductive** (the test",
        "images are among the unlabeled images every semi-supervised method learns from, as in the",
        "app; `test_accuracy`) and **inductive** (the test images are withheld from fit and",
        "predicted afterwards, as papers score; `test_accuracy_inductive`). A row without a",
        "protocol is transductive. Seconds are wall time from raw pixels including all pretraining.",
        "Cells: median accuracy (min–max, number of runs), median seconds; every run is counted,",
        "and a run over its time budget is named in its cell (\"over budget\").",
        f"Seeds run: {', '.join(map(str, seeds))}.",
        "Some rows ran while other work shared the two cores, so they may understate. Rows",
        "re-measured (after a code change, or because the first run was on a loaded machine)",
        "move to `benchmarks/superseded.jsonl` with the reason; every row of a re-measured cell moves.",
        "", "**Targets (issue 3; transductive)**", "", *target_table(rows), "",
        "**MNIST, both accuracies** (70,000 images, 10 labels per class, budget 180 s)", "",
        *protocol_table(rows), "",
        "**MNIST, labels sweep, transductive** (budget 180 s; most cells are one run)", "",
        *sweep_table(rows, "mnist"), "",
        "**digits, labels sweep, transductive** (1,797 8×8 images, budget 30 s)", "",
        *sweep_table(rows, "digits"), "",
        "**What the unlabeled images buy** (same network trained on the labeled images alone)", "",
        *gain_table(rows), "",
        *dev_table(rows),
        "**Simulated labeler (issue 4)**: the label queue's strategy picks which 50 MNIST images get",
        "labels (ground truth answers), then the default method trains; budget 300 s in all;",
        "transductive accuracy. For comparison, 10 random labels per class (100 labels) with the",
        f"default method at 180 s: {cell(select(rows, 'mnist', 'default', 10, 180.0))}.", "",
        *labeler_table(rows), "",
        "![Accuracy against labels per class (transductive)](assets/results.svg)"]
    return "\n".join(parts)


def svg_plot(rows: list[dict]) -> str:
    """Transductive accuracy against labels per class (log axis), one panel per dataset."""
    w, h, pad = 360, 260, 46
    colors = {"default": "#1f77b4", "gan": "#d62728", "vae": "#2ca02c", "baseline": "#7f7f7f"}
    xs = {n: pad + (w - pad - 12) * i / (len(LABELS) - 1) for i, n in enumerate(LABELS)}

    def y_of(a: float) -> float:  # 30%..100%
        return 14 + (h - pad - 14) * (1 - (a - 0.3) / 0.7)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w + 150}" height="{h}" '
             'font-family="sans-serif" font-size="11">', '<rect width="100%" height="100%" fill="white"/>']
    for k, dataset in enumerate(("mnist", "digits")):
        ox = k * w
        parts.append(f'<text x="{ox + w / 2}" y="11" text-anchor="middle" font-weight="bold">'
                     f'{"MNIST, 180 s" if dataset == "mnist" else "digits, 30 s"}</text>')
        for a in (0.4, 0.6, 0.8, 1.0):
            y = y_of(a)
            parts.append(f'<line x1="{ox + pad}" x2="{ox + w - 12}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                         f'<text x="{ox + pad - 4}" y="{y + 4:.1f}" text-anchor="end">{100 * a:.0f}%</text>')
        for n, x in xs.items():
            parts.append(f'<text x="{ox + x:.1f}" y="{h - pad + 16}" text-anchor="middle">{n}</text>')
        parts.append(f'<text x="{ox + w / 2}" y="{h - 8}" text-anchor="middle">labels per class</text>')
        for m in METHODS:
            pts = [(ox + xs[n], y_of(median_acc(rs)))
                   for n in LABELS if (rs := select(rows, dataset, m, n, BUDGET[dataset]))]
            if pts:
                parts.append(f'<polyline fill="none" stroke="{colors[m]}" stroke-width="2" points="'
                             + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
                parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colors[m]}"/>' for x, y in pts]
    for i, m in enumerate(METHODS):
        y = 30 + 18 * i
        parts.append(f'<rect x="{2 * w + 4}" y="{y - 8}" width="12" height="4" fill="{colors[m]}"/>'
                     f'<text x="{2 * w + 20}" y="{y - 3}">{escape(NAMES[m].split(" (")[0])}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def render() -> tuple[str, str]:
    """(the results block's body, the svg)."""
    rows = load_jsonl("results.jsonl")
    return block(rows), svg_plot(rows)
