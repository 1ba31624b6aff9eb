"""The Reliability block: the quantitative cells from benchmarks/reliability.jsonl (copied from
the tests' test-artifacts/*.json by scripts/reliability_rows.py); the qualitative rows are fixed
text of what the tests assert (RACES: the deterministic race tests, pass/fail, each naming its
test; no figure in them)."""
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


# The races closed by "Concurrency without surprises": each forced deterministically (hooks,
# barriers, held locks) by the test it names, so the row says what is asserted, not a measurement.
RACES = [
    ("a reaped training worker keeps running (reaped by a hook during fit, predict or save)",
     "writes nothing more: no metric, summary, model folder or predictions (unchanged); the job "
     "shows failed — `tests/test_job_fencing.py`"),
    ("a live worker whose database writes wait behind the write lock; a cancel that arrives after "
     "the work is done", "not reaped (liveness comes from its alive file); the job stays "
     "succeeded — `tests/test_job_fencing.py`"),
    ("sessions pressing Retrain, or opening the Map, at the same moment (threads at a barrier); an "
     "import committed between a train job's reads", "one map job; never two fits at once (later "
     "retrain requests fold into a job or queue behind it); the job fits one snapshot of image "
     "count, labels and pixels — `tests/test_job_fencing.py`"),
    ("two imports into one project at the same moment (one held mid-import), from the CLI and the "
     "app; readers during an import", "the CLI refuses the second in one line; the app's import "
     "job waits its turn and, cancelled while waiting, changes nothing; the lock dies with its "
     "holder; committed rows keep their pixels for readers — `tests/test_import_races.py`"),
    ("a merge committing between a reader's queries; two tabs under the same name pressing Undo",
     "labels read as one committed state; each tab undoes only its own labels — "
     "`tests/test_undo_identity.py`"),
    ("old runs' model folders pruned while runs go on", "the newest per method, pinned, exported, "
     "current and in-progress runs stay; freed bytes reported — `tests/test_retention.py`"),
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


def soak_row(rows: list[dict]) -> str:
    what = ("soak: Chromium sessions labeling by key press and pressing Retrain, labeling "
            "processes, one more import, all at once")
    if not rows:
        return f"| {what} | no row yet (`scripts/reliability_rows.py` after `tests/test_soak.py`) |"
    f = [r["figures"] for r in rows]
    sessions, writers = span([x["sessions"] for x in f], num(0)), span([x["writers"] for x in f], num(0))
    seconds = span([x["soak_s"] for x in f], num(0))

    def failed(x: dict) -> str:
        if not (x["train_failed"] or any(o.endswith(":failed") for o in x["other_jobs"])):
            return "no job failed (the check that a failed job writes nothing after was idle)"
        return f"{x['failed_jobs_writing_after_failure']} writes by a failed job after it failed"

    def run(x: dict) -> str:
        imp = x["import"]
        return (f"{x['writer_actions_in_store']:,} / {x['writer_actions']:,} writer actions "
                f"({x['writer_retries']} retries) and {x['browser_actions_in_store']} / "
                f"{x['browser_actions']} browser actions recorded once; {x['retrain_presses']} "
                f"Retrain presses → {x['train_jobs']} train jobs ({x['train_succeeded']} succeeded, "
                f"{x['train_failed']} failed, {x['train_cancelled']} cancelled, "
                f"{x['train_active_at_end']} still active at the end), at most "
                f"{x['max_train_jobs_fitting_seen']} fitting at once in {x['job_samples']:,} samples "
                f"of the jobs table; the import added {x['images_after'] - x['images_before']:,} "
                f"images in {imp['seconds']:.0f} s (exit {imp['rc']}), rows and pixel file agree, "
                f"its pixels equal the first import's; " + failed(x) + "; `PRAGMA integrity_check` "
                f"{x['integrity_check']}; load average {x['load_avg']['mean']:.1f} (max "
                f"{x['load_avg']['max']:.1f}) during the soak")
    return (f"| soak: {sessions} Chromium sessions labeling by key press and pressing Retrain "
            f"(Ctrl+Enter) + {writers} labeling processes in waves + one more digits import, for "
            f"{seconds} s ({_runs(rows)}) | " + "; ".join(run(x) for x in f)
            + f"; **{sum(x['lost'] for x in f)} lost** |")


def block() -> str:
    rows = load_jsonl("reliability.jsonl")
    faults = [r for r in rows if r.get("test") == "faults"]
    load = [r for r in rows if r.get("test") == "load"]
    soak = [r for r in rows if r.get("test") == "soak"]
    lines = ["Generated by `scripts/readme_tables.py`; the figures come from "
             "`benchmarks/reliability.jsonl`, copied from the tests' `test-artifacts/*.json` by "
             "`scripts/reliability_rows.py` after a run of `tests/test_faults.py`, "
             "`tests/test_load.py` and `tests/test_soak.py` (the other rows say what the tests "
             "assert; the sizes named in them are the tests' inputs).", "",
             "| what | result |", "| --- | --- |", faults_row(faults), fixed_row(FIXED[0]),
             *[fixed_row(x) for x in FIXED[1:3]], load_row(load), soak_row(soak),
             *[fixed_row(x) for x in RACES], *[fixed_row(x) for x in FIXED[3:]]]
    return "\n".join(lines)


def fixed_row(item: tuple[str, str]) -> str:
    return f"| {item[0]} | {item[1]} |"
