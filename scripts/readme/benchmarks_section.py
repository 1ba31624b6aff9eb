"""The Benchmarks section's generated blocks: the small-project VAE check
(benchmarks/small_project.jsonl, scripts/vae_small_set_check.py) and the browser timings
(benchmarks/retrain_browser.jsonl, scripts/retrain_bench.py; benchmarks/map_browser.jsonl,
scripts/map_browser_bench.py). Every row counts: medians with their range, not the best run."""
from __future__ import annotations

import statistics

from .common import load_jsonl, num, over_budget, pct, span, summary


def small_project_block() -> str:
    rows = [r for r in load_jsonl("small_project.jsonl") if r.get("benchmark") == "vae_small_set"]
    if not rows:
        return ("The last one checks the VAE-based method on a small 28×28 project (a random "
                "subset of MNIST, 10 labeled per class): not run yet.")
    out = []
    for n, budget in sorted({(r["n_images"], r["budget_s"]) for r in rows}):
        rs = [r for r in rows if (r["n_images"], r["budget_s"]) == (n, budget)]   # file order
        out += [f"The last one checks the VAE-based method on a small 28×28 project: {n:,} MNIST "
                f"images, {rs[0]['labels'] // 10} labeled per class, budget {budget:.0f} s, accuracy "
                "on the unlabeled rest (`benchmarks/small_project.jsonl`, every run"
                + ("; the earlier rows did not record the VAE's steps" if any("stages" not in r for r in rs)
                   else "") + "). All runs: "
                f"{summary([r['accuracy_on_unlabeled'] for r in rs], pct(1), '%', over_budget(rs))}.",
                "", "| seed | accuracy on the unlabeled rest | seconds | VAE steps done / planned | "
                "load average at the start | commit |", "| --- | --- | --- | --- | --- | --- |"]
        for r in rs:
            vae = r.get("stages", {}).get("vae")
            steps = f"{vae['steps']:,} / {vae['total_steps']:,}" if vae else "not recorded"
            out.append(f"| {r['seed']} | {100 * r['accuracy_on_unlabeled']:.1f}% | "
                       f"{r['seconds']:.0f} s | {steps} | {r['load_avg_start']:.1f} | {r['commit']} |")
    return "\n".join(out)


def _stat(rows: list[dict], key: str, unit: str = " s") -> tuple[str, float | None]:
    values = [r[key] for r in rows if r.get(key) is not None]
    if not values:
        return "no row", None
    return summary(values, num(2), unit), statistics.median(values)


def browser_block() -> str:
    retrain, maps = load_jsonl("retrain_browser.jsonl"), load_jsonl("map_browser.jsonl")
    lines = ["| what (Chromium, software WebGL; rows in `benchmarks/*_browser.jsonl`) | measured: "
             "median (min–max, runs) | target | verdict (median) | load average |",
             "| --- | --- | --- | --- | --- |"]

    def row(what: str, rows: list[dict], key: str, target: float | None) -> None:
        text, med = _stat(rows, key)
        have = [r for r in rows if r.get(key) is not None]
        verdict = "—" if target is None or med is None else "met" if med <= target else "**not met**"
        load = span([r["load_average"] for r in have]) if have else ""
        lines.append(f"| {what} | {text} | {f'≤ {target:g} s' if target else '—'} | {verdict} | {load} |")

    if retrain:
        labels = "/".join(str(n) for n in sorted({r["labels"] for r in retrain}))
        presses = span([r["ui_actions_while_training"] for r in retrain], num(0))
        row("Retrain click -> job running (digits)", retrain, "click_to_running_s", 2)
        row("the job recorded -> a worker claimed it", retrain, "job_recorded_to_claimed_s", None)
        row(f"a label key press while training -> confirmed (each run's median; {presses} presses "
            "per run came while the job trained)", retrain, "ui_action_s_median", 1)
        row("the same, each run's slowest press", retrain, "ui_action_s_max", None)
        row(f"Retrain click on {labels} labels -> new accuracy shown (digits)", retrain,
            "click_to_accuracy_s", 30)
    if maps:
        points = span([r["points"] for r in maps], num(0))
        selected = span([r["selected"] for r in maps], num(0))
        row(f"map page at {points} points -> every point drawn, script idle: first visit (new "
            "server)", maps, "page_interactive_first_s", 5)
        row("the same after a reload", maps, "page_interactive_reload_s", 5)
        row(f"lasso around {selected} points: mouse released -> selection panel", maps,
            "lasso_release_to_selection_s", None)
        row("the same lasso drawn move by move, start -> selection panel (Plotly restyles "
            "every point on every move, in software GL)", maps, "lasso_to_selection_s", None)
        row("\"Label N\" -> toast \"Labeled N images as …\" on screen (written to the store first)",
            maps, "label_to_toast_s", 1)
        row("the same click -> legend shows the new class", maps, "label_to_legend_s", None)
        row("the same click -> map redrawn and the page idle again", maps, "label_to_settled_s", None)
        row("the same click -> confirmation seen by Playwright (the earlier runs' measure)", maps,
            "label_to_confirmed_s", None)
    redraw = [r["label_to_settled_s"] - r["label_to_legend_s"] for r in maps
              if "label_to_settled_s" in r and "label_to_legend_s" in r]
    prose = [
        "", "The toast, legend and redraw times come from the page's own clock (first animation "
        "frame that shows them), since Playwright's polling waits for the main thread that the "
        "redraw holds. The map rows include runs of earlier code, before the changes below, so "
        "their ranges are wide. What made the map fast: points go out as one uint8 RGBA typed "
        "array (a colour scale made Plotly build and parse a colour string per point on every "
        "redraw), the WebGL canvas is drawn at 1x instead of Plotly's default 2x pixel ratio, the "
        "selection panel is a fragment (a label is written and confirmed without rerunning the "
        "map), and the Map page no longer imports torch. Streamlit gives a chart a new identity "
        "whenever its figure changes, so every recolour is a fresh Plotly plot; that redraw "
        "(legend shown -> page idle) is the remaining "
        + (summary(redraw, num(2), " s") if redraw else "time (no row)") + "."]
    return "\n".join(lines + prose)
