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
        diff = _difference(without, with_, key)
        if with_ and not any(r.get("gen_n_used") for r in with_):
            diff = f"none added: {diff} is run-to-run noise"
        lines.append(f"| {dataset}, {protocol} | {method} | {n} | {run_cell(without, key, 2)} | "
                     f"{run_cell(with_, key, 2)} | {diff} | {kept} |")
    return lines


def decisions(rows: list[dict]) -> list[str]:
    """Issue 17's rule per data set and method, over the cells where generated images reached
    the classifier: on by default only where the median of the cells' median differences is at
    least +0.3 points and no cell's median difference is below minus its seed spread (the
    without-runs' range)."""
    out = []
    for dataset in sorted({r["dataset"] for r in rows}):
        for method in METHODS:
            cells = []
            for protocol in ACCURACY:
                key = ACCURACY[protocol]
                for n in sorted({r["labels_per_class"] for r in rows}):
                    without, with_ = (_runs(rows, dataset, protocol, method, n, g) for g in (False, True))
                    if not without or not any(r.get("gen_n_used") for r in with_):
                        continue
                    paired = {r["seed"]: r[key] for r in without}
                    diffs = [100 * (r[key] - paired[r["seed"]]) for r in with_ if r["seed"] in paired]
                    spread = 100 * (max(paired.values()) - min(paired.values()))
                    if diffs:
                        cells.append((statistics.median(diffs), spread, f"{protocol} {n}/class"))
            if not cells:
                continue
            med = statistics.median(c[0] for c in cells)
            hurt = [c[2] for c in cells if c[0] < -c[1]]
            on = med >= 0.3 and not hurt
            out.append(f"- {dataset}, {method}: median change {med:+.2f} points over {len(cells)} "
                       f"measured cells" + (f"; lowered beyond its seed spread in {', '.join(hurt)}"
                                            if hurt else "") + (" → meets the rule." if on else
                                            " → fails the rule: it did not help enough."))
    return out


def coverage(rows: list[dict]) -> str:
    """How much of the plan's grid (2 data sets x 2 protocols x 3 label counts x 3 methods) has
    both sides measured, and what the code's default is meanwhile."""
    done = {(r["dataset"], r.get("protocol", "transductive"), r["method"], r["labels_per_class"])
            for r in rows if bool(r.get("gen_augment"))} & {
        (r["dataset"], r.get("protocol", "transductive"), r["method"], r["labels_per_class"])
        for r in rows if not r.get("gen_augment")}
    return (f"Grid cells measured with and without: {len(done)} of 36. The option stays **off by "
            "default** for every method (`GenAugmentConfig.enabled = False`) until the whole grid "
            "is in; it is available on the Train page, the CLI and the bench.")


def block() -> str:
    rows = load_jsonl(SOURCE)
    if not rows:
        return f"Not measured yet: {COMMAND}, then `.venv/bin/python scripts/readme_tables.py`."
    decided = decisions(rows)
    return "\n".join([f"Rows: `benchmarks/{SOURCE}` ({COMMAND}); every run, test split.", "",
                      *table(rows), "", "Decision (the issue's rule: on by default only where it "
                      "raises the median by ≥ 0.3 points and lowers no cell by more than its seed "
                      "spread; cells where no generated image reached a classifier do not count):",
                      *(decided or ["- nothing measured with generated images yet."]), "",
                      coverage(rows)])
