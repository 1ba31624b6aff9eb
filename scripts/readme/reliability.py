"""The Reliability block: the quantitative cells from benchmarks/reliability.jsonl (copied from
the tests' test-artifacts/*.json by scripts/reliability_rows.py); the qualitative rows are fixed
text of what the tests assert."""
from __future__ import annotations

from .common import load_jsonl, num, span, summary

FIXED = [
    ("kill -9 of a training worker", "job shows failed (\"stopped responding\"), pages keep working, "
     "the previous predictions and model are untouched, the next retrain succeeds"),
    ("read-only project folder (read-only bind mount)", "labeling, classes and undo raise \"…is "
     "read-only: nothing was written\"; pages show it as a message; folder byte-identical afterwards"),
    ("full disk (tiny tmpfs) during labeling, training, import, map building", "\"the disk … is "
     "full\" messages; no temporary or half-written file; old labels, predictions, model, map and "
     "images unchanged; the same label action goes through exactly once after space is freed"),
    ("odd and broken files (truncated PNG/JPEG/GIF, zero-byte, text renamed .png, 1×1, 16-bit, "
     "CMYK, animated GIF, palette with transparency) via folder and zip", "the readable ones "
     "imported with checked pixels, the rest skipped with a one-line reason each"),
    ("a valid 20,000×20,000 PNG (test input)", "refused from its header, before decoding"),
    ("hostile zip members (zip-slip variants, absolute and drive paths, symlink, 50 MB bomb, broken "
     "inner zip, duplicates) and untrustworthy archives", "members skipped with reasons, archives "
     "refused whole with one line; nothing written outside the project"),
    ("10,000 tiny files + 10 broken ones (test input), folder and zip", "all 10,000 imported, the "
     "10 skipped (asserted)"),
    ("hypothesis: fuzzed zip uploads and fuzzed folders (80 and 40 examples, test settings)",
     "no exception; every file imported or reported; safe stored names"),
    ("class, folder and file names with HTML/script/markdown on every page", "shown as literal "
     "text (AppTest and Chromium: no script/img/iframe element, no dialog)"),
    ("a `weights.pt` carrying a pickle payload, at every load path (5 methods, map VAE, Samples "
     "page, warm starts, exported `load_model.py`)", "refused, the payload never runs"),
]


def _runs(rows: list[dict]) -> str:
    dates = sorted({r["date"] for r in rows})
    return (f"{len(rows)} run{'s' if len(rows) > 1 else ''}, {span(dates, str)}, commit "
            f"{', '.join(sorted({r['commit'] for r in rows}))}, load average "
            f"{span([r['load_avg_when_copied'] for r in rows])} when the figures were copied")


def faults_row(rows: list[dict]) -> str:
    what = "kill -9 of the app **and** a labeling process at random moments"
    if not rows:
        return f"| {what} | no row yet (`scripts/reliability_rows.py` after the test) |"
    f = [r["figures"] for r in rows]
    rounds = span([x["rounds"] for x in f], num(0))
    per_run = "; ".join(f"{x['writer_acks_present']:,} / {x['writer_acks']:,} writer actions, "
                        f"{x['browser_present']} / {x['browser_confirmed']} browser confirmations"
                        for x in f)
    return (f"| {what}, {rounds} rounds per run ({_runs(rows)}) | every acknowledged label present "
            f"exactly once ({per_run}); `PRAGMA integrity_check` ok; the restarted app renders; "
            f"**{sum(x['lost'] for x in f)} lost** |")


def load_row(rows: list[dict]) -> str:
    what = "labeling processes writing at once + Chromium sessions labeling by key press"
    if not rows:
        return f"| {what} | no row yet (`scripts/reliability_rows.py` after the test) |"
    f = [r["figures"] for r in rows]
    writers, sessions = span([x["writers"] for x in f], num(0)), span([x["sessions"] for x in f], num(0))
    per_writer = span([x["writer_actions"] / x["writers"] for x in f], num(0))
    every = span([x["writer_actions"] / x["writer_retries"] for x in f if x["writer_retries"]], num(0))
    ms = num(1)

    def show(values: list[float], unit: str, fmt) -> str:       # the run count is in column one
        return f"{fmt(values[0])}{unit}" if len(values) == 1 else summary(values, fmt, unit)

    def st(part: str, key: str, scale: float = 1000, unit: str = " ms", fmt=ms) -> str:
        return show([x[part][key] * scale for x in f], unit, fmt)
    return (f"| {writers} labeling processes × {per_writer} actions (every {every}th sent twice) + "
            f"{sessions} Chromium sessions labeling by key press ({_runs(rows)}) | "
            + "; ".join(f"{x['writer_actions_in_store']:,} / {x['writer_actions']:,} actions and "
                        f"{x['writer_retries']} retries recognised, {x['browser_actions_in_store']} / "
                        f"{x['browser_actions']} browser actions recorded once" for x in f)
            + f", **{sum(x['lost'] for x in f)} lost**; writer commit median {st('writer_commit', 'median_s')}, "
            f"p95 {st('writer_commit', 'p95_s')}, max {st('writer_commit', 'max_s', 1, ' s', num(1))}; "
            f"browser key → confirmation median {st('browser_key_to_confirmation', 'median_s', 1, ' s', num(2))}, "
            f"p95 {st('browser_key_to_confirmation', 'p95_s', 1, ' s', num(2))}; writers committed "
            f"{show([x['writer_actions_per_s'] for x in f], ' actions/s', num(0))} |")


def block() -> str:
    rows = load_jsonl("reliability.jsonl")
    faults = [r for r in rows if r.get("test") == "faults"]
    load = [r for r in rows if r.get("test") == "load"]
    lines = ["Generated by `scripts/readme_tables.py`; the figures come from "
             "`benchmarks/reliability.jsonl`, copied from the tests' `test-artifacts/*.json` by "
             "`scripts/reliability_rows.py` after a run of `tests/test_faults.py` and "
             "`tests/test_load.py` (the other rows say what the tests assert; the sizes named in "
             "them are the tests' inputs).", "",
             "| what | result |", "| --- | --- |", faults_row(faults), fixed_row(FIXED[0]),
             *[fixed_row(x) for x in FIXED[1:3]], load_row(load), *[fixed_row(x) for x in FIXED[3:]]]
    return "\n".join(lines)


def fixed_row(item: tuple[str, str]) -> str:
    return f"| {item[0]} | {item[1]} |"
