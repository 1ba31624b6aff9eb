"""The "Generated images as training data" block (issue 17), from benchmarks/gen_augment.jsonl
(scripts/bench_grid.py --plan gen_augment --out benchmarks/gen_augment.jsonl): each method with
and without `--gen-augment`, same seeds, same protocol. Cells are medians with their range and
run count; the difference is the median of the per-seed differences (with minus without), so a
seed's luck in its labels cancels."""
from __future__ import annotations

import statistics

from .common import load_jsonl, num, run_cell, summary

SOURCE = "gen_augment.jsonl"
COMMAND = ("`.venv/bin/python scripts/bench_grid.py --plan gen_augment --data-root ../shared/data "
           "--out benchmarks/gen_augment.jsonl`")
ACCURACY = {"transductive": "test_accuracy", "inductive": "test_accuracy_inductive"}
METHODS = ("default", "vae", "baseline")


def _runs(rows: list[dict], dataset: str, protocol: str, method: str, n: int, gen: bool
          ) -> list[dict]:
    key = ACCURACY[protocol]
    return sorted((r for r in rows if r["dataset"] == dataset and r["method"] == method
                   and r["labels_per_class"] == n and r.get("protocol", "transductive") == protocol
                   and bool(r.get("gen_augment")) == gen and key in r), key=lambda r: r["seed"])


def _difference(without: list[dict], with_: list[dict], key: str) -> str:
    paired = {r["seed"]: r[key] for r in without}
    diffs = [100 * (r[key] - paired[r["seed"]]) for r in with_ if r["seed"] in paired]
    if not diffs:
        return "–"
    med = statistics.median(diffs)
    inner = "1 seed" if len(diffs) == 1 else f"{min(diffs):+.2f} to {max(diffs):+.2f}, {len(diffs)} seeds"
    return f"{med:+.2f} points ({inner})"


def table(rows: list[dict]) -> list[str]:
    lines = ["| data set, protocol | method | labels/class | without | with generated images | "
             "difference (with − without) | generated images kept of drawn |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    cells = sorted({(r["dataset"], r.get("protocol", "transductive"), r["method"], r["labels_per_class"])
                    for r in rows if r["method"] in METHODS},
                   key=lambda k: (k[0] != "digits", k[0], k[1], METHODS.index(k[2]), k[3]))
    for dataset, protocol, method, n in cells:
        key = ACCURACY[protocol]
        without, with_ = (_runs(rows, dataset, protocol, method, n, g) for g in (False, True))
        kept = (summary([r.get("gen_n_used", 0) for r in with_], num(), "") + " of "
                + f"{statistics.median(r.get('gen_n_drawn', 0) for r in with_):,.0f}"
                if with_ else "–")
        if with_ and not any(r.get("gen_n_used") for r in with_):      # say why none was kept
            notes = sorted({r["gen_note"] for r in with_ if r.get("gen_note")})
            kept += f" ({notes[0]})" if notes else ""
        lines.append(f"| {dataset}, {protocol} | {method} | {n} | {run_cell(without, key, 2)} | "
                     f"{run_cell(with_, key, 2)} | {_difference(without, with_, key)} | {kept} |")
    return lines


def block() -> str:
    rows = load_jsonl(SOURCE)
    if not rows:
        return f"Not measured yet: {COMMAND}, then `.venv/bin/python scripts/readme_tables.py`."
    return "\n".join([f"Rows: `benchmarks/{SOURCE}` ({COMMAND}); every run, test split.", "",
                      *table(rows)])
