"""A run's honest numbers as plain text, for the command line (the Train page shows the same).

Validation comes with its 95% interval, the number of held-out labels and what it measured;
test accuracy is on the dataset's sealed evaluation images and says it is transductive (their
pixels were in the unlabeled pool); labels on evaluation images that were held out of training
are counted; the gain is this run minus the supervised baseline on the same labels.
"""
from __future__ import annotations

import time
from typing import Any

from ssl_core.results.runs import Run

NO_TEST = "n/a (no ground truth, or none of its classes corresponds to yours: see " \
          "`python -m ssl_core class-mapping --project DIR --suggest`)"


def accuracy_text(d: dict | None) -> str:
    """'93.1% (95% CI 90.2-95.3%, n=412)'; '' for None."""
    if not d:
        return ""
    return (f"{100 * d['value']:.1f}% (95% CI {100 * d['low']:.1f}-{100 * d['high']:.1f}%, "
            f"n={d['n']})")


def validation_text(s: dict[str, Any]) -> str:
    val = s.get("validation")
    if not val:
        return "too few labels to hold any out"
    return accuracy_text(val) + (f", measured on {s['validation_of']}" if s.get("validation_of")
                                 else "")


def gain_text(s: dict[str, Any]) -> str:
    gain = s.get("gain") or {}
    return ", ".join(f"{k} {v:+.1f} points" for k, v in gain.items())


def summary_lines(run_id: int, method: str, s: dict[str, Any]) -> list[str]:
    """What `train` prints for a finished run: the same numbers as the Train page."""
    lines = [f"run {run_id}: {method} on {s.get('n_labels', 0):,} labels"
             + (f" ({s['representation']})" if s.get("representation") else ""),
             "  validation (labels held out of training): " + validation_text(s),
             "  test accuracy on the sealed evaluation images (transductive: their pixels were "
             "in the unlabeled pool): " + (accuracy_text(s.get("test")) or NO_TEST)]
    if s.get("n_labels_sealed"):
        lines.append(f"  {s['n_labels_sealed']:,} of your labels are on evaluation images: kept, "
                     "but held out of training")
    if s.get("baseline"):
        lines.append("  gain over the supervised baseline: " + (gain_text(s) or "n/a"))
    if s.get("warm_start_run"):
        lines.append(f"  warm-started from run {s['warm_start_run']}")
    if s.get("gen_augment"):
        lines.append("  " + gen_augment_text(s["gen_augment"]))
    if s.get("representation_choice"):
        lines.append("  " + str(s["representation_choice"]))
    return lines


def gen_augment_text(g: dict[str, Any]) -> str:
    """One line on a run's generated training images (generated.record)."""
    text = (f"generated images: {g.get('n_used_total', 0):,} of {g.get('n_drawn', 0):,} drawn "
            f"kept (confidence >= {g.get('min_confidence', 0):.2f}), weight {g.get('weight', 0):g}")
    if g.get("generator"):
        text += f"; generator: {g['generator']}"
    return text + (f"; {g['note']}" if g.get("note") else "")


def run_record(run: Run, seconds: float | None = None) -> dict[str, Any]:
    """One finished run for `runs --json`: the numbers with their intervals, nothing rounded."""
    s = run.summary or {}
    base = s.get("baseline") or {}
    return {"id": run.id, "method": run.method, "labels": run.n_labels,
            "created_at": run.created_at, "seconds": seconds,
            "validation": s.get("validation"), "validation_of": s.get("validation_of"),
            "test": s.get("test"), "test_transductive": True if s.get("test") else None,
            "n_labels_sealed": s.get("n_labels_sealed", 0),
            "baseline": {"validation": base.get("validation"), "test": base.get("test")}
            if base else None,
            "gain": s.get("gain"), "gen_augment": s.get("gen_augment"),
            "finished": run.summary is not None}


COLUMNS = ("id", "method", "labels", "validation (95% CI, n, of)", "test (transductive)",
           "gain (points)", "seconds", "started")


def run_row(run: Run, seconds: float | None = None) -> tuple[str, ...]:
    """One line of the `runs` table, as text in COLUMNS order."""
    s = run.summary
    if s is None:
        return (str(run.id), run.method, f"{run.n_labels:,}", "(not finished)", "", "",
                "", _when(run.created_at))
    gain = s.get("gain") or {}
    key = "test" if "test" in gain else "validation"
    return (str(run.id), run.method, f"{run.n_labels:,}",
            validation_text(s) if s.get("validation") else "n/a",
            accuracy_text(s.get("test")) or "n/a",
            f"{gain[key]:+.1f} ({key})" if key in gain else "",
            "" if seconds is None else f"{seconds:.0f}", _when(run.created_at))


def table(rows: list[tuple[str, ...]], columns: tuple[str, ...] = COLUMNS) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [max(len(r[i]) for r in [columns, *rows]) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
                     for r in [columns, *rows])


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))
