"""The "Your photos" block, from the photo benchmarks' rows.

Sources (every row a script wrote; nothing typed by hand): benchmarks/representation.jsonl
(python -m benchmarks.representation), benchmarks/features.jsonl (benchmarks.features),
benchmarks/results.jsonl rows of `--dataset folder` (benchmarks.engine), benchmarks/memory.jsonl
(benchmarks.memory), benchmarks/first_map.jsonl (scripts/first_map_bench.py) and
benchmarks/regression.jsonl (scripts/bench_grid.py --plan regression). Cells are medians with
their range and the number of runs; a run over its time budget is named in its cell, never dropped.
"""
from __future__ import annotations

import statistics
from collections import defaultdict

from .common import load_jsonl, num, over_budget, run_cell, summary

METHOD_NAMES = {"default": "default (graph → head)", "graph": "graph only", "gan": "SSL-GAN",
                "vae": "VAE-based", "baseline": "supervised (labels only)"}


def representation_table() -> list[str]:
    data = load_jsonl("representation.jsonl")
    if not data:
        return ["(not measured yet: python -m benchmarks.representation)"]
    cells = defaultdict(list)
    for r in data:
        cells[(r["dataset"], tuple(r["shape"]), r["labels_per_class"], r["representation"])].append(
            r["rest_accuracy"])
    keys = sorted({k[:3] for k in cells}, key=lambda k: (k[0], k[2]))
    lines = ["| dataset (image shape) | labels/class | pixels | EfficientNet-Lite0 features | better |",
             "| --- | --- | --- | --- | --- |"]
    for dataset, shape, labels in keys:
        pix = cells.get((dataset, shape, labels, "pixels"), [])
        eff = cells.get((dataset, shape, labels, "efficientnet-lite0"), [])
        better = ("—" if not (pix and eff) else "pixels"
                  if statistics.median(pix) > statistics.median(eff) else "features")
        lines.append(f"| {dataset} ({'×'.join(map(str, shape))}) | {labels} | "
                     f"{summary(pix) if pix else '–'} | {summary(eff) if eff else '–'} | {better} |")
    return lines


def speed_table() -> list[str]:
    data = [r for r in load_jsonl("features.jsonl") if r.get("benchmark") == "features"]
    if not data:
        return ["(not measured yet: python -m benchmarks.features)"]
    cells, fidelity, loads = defaultdict(list), {}, defaultdict(list)
    earlier = "not recorded: the earlier VM (no AVX-512 / VNNI, docs/photos.md)"
    for r in data:
        key = (r.get("cpu", earlier), r["size"], r["backend"])
        cells[key].append(r["images_per_s"])
        loads[key[:2]].append(r["load_avg_before"])
        if "cosine_min" in r:
            fidelity[r["size"]] = min(fidelity.get(r["size"], 1.0), r["cosine_min"])
    lines = ["| CPU (2 cores) | input size | ONNX Runtime (default) images/s | eager PyTorch images/s | "
             "least cosine, ONNX vs PyTorch | load average before |",
             "| --- | --- | --- | --- | --- | --- |"]
    for cpu, size in sorted({k[:2] for k in cells}, key=lambda k: (k[0] == earlier, -k[1])):
        ort, eager = cells.get((cpu, size, "onnxruntime"), []), cells.get((cpu, size, "torch"), [])
        load = loads[(cpu, size)]
        lines.append(f"| {cpu} | {size} px | {summary(ort, num(), '') if ort else '–'} | "
                     f"{summary(eager, num(), '') if eager else '–'} | "
                     f"{fidelity.get(size, float('nan')):.5f} | "
                     f"{min(load):.1f}–{max(load):.1f} |")
    in_jobs = [r for r in load_jsonl("memory.jsonl")
               if r["stage"] == "map" and r.get("seconds_by_step", {}).get("features", 0) > 1]
    if in_jobs:
        lines += ["", "Inside the map job (`benchmarks/memory.jsonl`, EfficientNet-Lite0 at 224 px, "
                  "AMD EPYC with AVX-512): " + "; ".join(
                      f"{r['n_images']:,} photos in {r['seconds_by_step']['features']:.0f} s = "
                      f"**{r['n_images'] / r['seconds_by_step']['features']:.0f} images/s** "
                      f"(commit {r['commit']}, load average {r['load_avg_start']:.1f} at the start)"
                      for r in in_jobs) + ". Target: ≥ 100 images/s."]
    return lines


def accuracy_table() -> list[str]:
    data = [r for r in load_jsonl("results.jsonl") if r.get("dataset") == "folder"]
    if not data:
        return ["(not measured yet: python -m benchmarks.engine --dataset folder ...)"]
    cells = defaultdict(list)
    for r in data:
        cells[(r["method"], r["labels_per_class"])].append(r)
    labels = sorted({k[1] for k in cells})
    lines = ["| method | " + " | ".join(f"{n} label{'s' if n > 1 else ''}/class" for n in labels)
             + " |", "| --- |" + " --- |" * len(labels)]
    for method in [m for m in METHOD_NAMES if any(k[0] == m for k in cells)]:
        out = []
        for n in labels:
            runs = cells.get((method, n), [])
            out.append(run_cell(runs, "rest_accuracy") if runs else "–")
        lines.append(f"| {METHOD_NAMES[method]} | " + " | ".join(out) + " |")
    budgets = sorted({r["budget_s"] for r in data})
    lines.append("")
    lines.append(f"Accuracy on every photo that got no label (the rest), {len(data)} runs, "
                 f"budget {', '.join(f'{b:.0f} s' for b in budgets)} including feature "
                 f"extraction; representation: "
                 f"{', '.join(sorted({r.get('representation', '?') for r in data}))}.")
    return lines


def memory_table() -> list[str]:
    data = load_jsonl("memory.jsonl")
    if not data:
        return ["(not measured yet: python -m benchmarks.memory)"]
    lines = ["| images (128×128×3) | step | commit | seconds | load avg at start | peak RSS | "
             "of it anonymous | pixels | RSS beyond the pixels' own pages (target ≤ 2 GB) | "
             "peak RSS − pixel bytes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    gb = lambda mb: f"{mb / 1024:.2f} GB"                             # noqa: E731
    order = ["import", "map", "train"]
    for r in sorted(data, key=lambda r: (r["n_images"], order.index(r["stage"]))):
        exact = r.get("peak_beyond_pixels_mb")
        verdict = ("not sampled (older row)" if exact is None else
                   f"{gb(exact)} {'— met' if r['within_target'] else '— **over**'}")
        lines.append(f"| {r['n_images']:,} | {r['stage']} | {r['commit']} | {r['seconds']:.0f} s | "
                     f"{r['load_avg_start']:.1f} | {gb(r['peak_rss_mb'])} | "
                     f"{gb(r['peak_anon_mb'])} | {gb(r['pixels_mb'])} | {verdict} | "
                     f"{gb(r['beyond_pixels_mb'])} |")
    lines += ["", "Each stage in its own row, every run kept; rows of older code or of a flawed "
              "measurement moved to `benchmarks/superseded.jsonl` with the reason. Seconds ran on "
              "the shared 2-core VM (load average at the start in its column). The last column is "
              "an upper bound that also counts pixel pages never read; the target column "
              "subtracts only the pixel file's resident pages (sampled every 0.1 s from "
              "/proc/self/smaps), so shared libraries (torch, ONNX Runtime: ~0.6 GB), the "
              "features file and everything allocated count against it."]
    return lines


def regression_table() -> list[str]:
    new = load_jsonl("regression.jsonl")
    if not new:
        return ["(not measured yet: scripts/bench_grid.py --plan regression)"]
    old = [r for r in load_jsonl("results.jsonl") if "strategy" not in r and r.get("dataset") != "folder"
           and r.get("protocol", "transductive") == "transductive" and r.get("split", "test") == "test"]
    key = lambda r: (r["dataset"], r["method"], r["labels_per_class"], r["budget_s"])  # noqa: E731
    cells = defaultdict(list)
    for r in new:
        cells[key(r)].append(r)
    lines = ["| dataset, method, labels/class, budget | before (results.jsonl) | after | change | "
             "load average at the start (after) |", "| --- | --- | --- | --- | --- |"]
    for k in sorted(cells):
        before = [r["test_accuracy"] for r in old if key(r) == k
                  and (k[1] != "baseline" or (r.get("baseline_family", "cnn") == "cnn"
                                              and r.get("augment", True)))]
        after = [r["test_accuracy"] for r in cells[k]]
        change = (f"{100 * (statistics.median(after) - statistics.median(before)):+.1f} points"
                  if before else "–")
        lines.append(f"| {k[0]}, {k[1]}, {k[2]}, {k[3]:.0f} s | "
                     f"{summary(before) if before else '–'} | "
                     f"{summary(after, over=over_budget(cells[k]))} | {change} | "
                     f"{min(r['load_avg_start'] for r in cells[k]):.1f}–"
                     f"{max(r['load_avg_start'] for r in cells[k]):.1f} |")
    return lines


def first_map_lines() -> list[str]:
    data = [r for r in load_jsonl("first_map.jsonl") if r.get("benchmark") == "first_map"]
    if not data:
        return ["(not measured yet: scripts/first_map_bench.py)"]
    lines = ["| project | images | first map on screen (target ≤ 10 s) | the VAE's map in its place | "
             "commit | load average at the start |", "| --- | --- | --- | --- | --- | --- |"]
    for r in data:
        kind = "provisional" if r.get("first_map_provisional") else "the VAE's"
        lines.append(f"| {r['source']} | {r['n_images']:,} | {r['first_map_s']:.1f} s ({kind}) | "
                     f"{r['vae_map_s']:.0f} s | {r['commit']} | {r['load_avg_start']:.1f} |")
    return lines


def reading_text() -> list[str]:
    """The paragraph that reads the photo accuracy table, its comparisons computed from the rows."""
    data = [r for r in load_jsonl("results.jsonl") if r.get("dataset") == "folder"]
    med = defaultdict(list)
    for r in data:
        med[(r["method"], r["labels_per_class"])].append(r["rest_accuracy"])
    med = {k: statistics.median(v) for k, v in med.items()}
    labels = sorted({n for _, n in med})
    if not all((m, n) in med for m in ("graph", "default", "gan", "vae", "baseline") for n in labels):
        return []
    same = all(med[(m, n)] == med[("graph", n)] for m in ("default", "gan") for n in labels)
    gaps = [100 * (med[("graph", n)] - med[("vae", n)]) for n in labels]
    beat = [n for n in labels if all(med[(m, n)] > med[("baseline", n)]
                                     for m in ("graph", "default", "gan", "vae"))]
    n_images = sorted({r["n_images"] for r in data})
    heads = ("match the graph's median in every cell, so they add nothing here beyond speed of "
             "prediction on new images" if same else "do not match the graph's median in every cell")
    return ["", f"Reading the photo tables: on {', '.join(map(str, n_images))} photos the graph over "
            "the pretrained features does the work. The default method's head and the SSL-GAN's "
            f"discriminator (trained on the graph's pseudo-labels) {heads}; the VAE-based method "
            "(its VAE learns a 16-D code of the features, and the graph on that code is coarser) "
            f"is {min(gaps):.1f}–{max(gaps):.1f} points below the graph (medians); every "
            "semi-supervised method beats the labels-only baseline's median at "
            + (" and ".join(map(str, beat)) + f" label{'s' if beat != [1] else ''} per class" if beat else "no label count")
            + ". Accuracies are transductive: the scored photos are in the unlabeled pool."]


def block() -> str:
    parts = ["Generated by `scripts/readme_tables.py` from `benchmarks/*.jsonl`.", "",
             "**Which representation wins** (graph propagation, same labels for both; accuracy on "
             "every unlabeled image; `benchmarks/representation.jsonl`)", "",
             *representation_table(), "",
             "**Photos, 3 draws of labels per cell** (188 photos in 6 classes, "
             "`python -m benchmarks.photo_folder`; `benchmarks/results.jsonl`)", "",
             *accuracy_table(), "",
             "**Feature extraction speed** on the 2 cores (EfficientNet-Lite0, 128×128 photos "
             "resized to the input size; `benchmarks/features.jsonl`)", "",
             *speed_table(), "",
             "**Memory at scale** (photos synthesised by crops and flips; import, map and a "
             "default-method retrain, as the jobs run them; `benchmarks/memory.jsonl`)", "",
             *memory_table(), "",
             "**First map** (Chromium: from clicking Map on a project without a map to the "
             "first scatter with every point; `scripts/first_map_bench.py`, "
             "`benchmarks/first_map.jsonl`)", "", *first_map_lines(), "",
             "**Digits and MNIST after the photo changes** (test accuracy, the dataset's own "
             "test split; `scripts/bench_grid.py --plan regression`, `benchmarks/regression.jsonl`)",
             "", *regression_table(), *reading_text()]
    return "\n".join(parts)
