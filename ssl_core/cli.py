"""Command line: `python -m ssl_core <command>`. Run with --help for the commands.

    import              import images into a project and print the import report
    export-labels       write the project's current labels as CSV
    export-predictions  write the latest predictions for every image as CSV
    export-model        write a trained model (weights, config, classes, load snippet) as a zip
    export-imagefolder  write labeled and/or confidently predicted images as class folders (zip)
    label / undo        label images from scripts (the same transactional writes as the app)
    representation      show or set how the map and the methods see a project's images
    map                 build the latent map (the app's map job; progress on stderr)
    train               retrain a method on the current labels (the app's train job; progress
                        on stderr, then the same honest summary as the Train page)
    runs                list the runs: validation with its interval, test (transductive), gain
    class-mapping       show, suggest or set which project class each ground-truth class is
                        scored as (when the names differ), and re-score the latest run

Why this module is long: it is the argument parser of every command plus one short function
per command, each a thin wrapper over the library (the numbers' wording is in
results/run_text.py); splitting it would only scatter the command list.
"""
from __future__ import annotations

import argparse
import shlex
import sys

from ssl_core.data.decode import ImageLimits
from ssl_core.data.importer import ImportConfig, import_source
from ssl_core.data.sources import SOURCE_KINDS, SourceError, SourceSpec
from ssl_core.data.zip_archive import ArchiveLimits
from ssl_core.project.errors import ProjectError
from ssl_core.project.folder import Project


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("size is HxW, e.g. 28x28") from None
    if not (1 <= h <= 1024 and 1 <= w <= 1024):
        raise argparse.ArgumentTypeError("height and width must lie in 1..1024")
    return h, w


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a confidence lies in 0..1, e.g. 0.9")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_core", description="Latentlab core tools")
    sub = p.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="import images into a project")
    imp.add_argument("--source", required=True, choices=SOURCE_KINDS)
    imp.add_argument("--project", required=True, help="project folder (created if missing)")
    imp.add_argument("--data-root", help="data root for mnist/fashion-mnist/kmnist/cifar10")
    imp.add_argument("--path", help="folder or .zip for the folder/zip sources")
    imp.add_argument("--no-download", action="store_true", help="never download missing files")
    imp.add_argument("--size", type=_size, help="store images as HxW (default: the most "
                     "common size, longer side at most 128)")
    imp.add_argument("--channels", type=int, choices=(1, 3), help="default: most common")
    imp.add_argument("--max-files", type=int, default=ImportConfig.max_files)
    imp.add_argument("--max-pixels", type=int, default=ImageLimits.max_pixels)
    imp.add_argument("--max-archive-mb", type=int, default=ArchiveLimits.max_archive_bytes >> 20)
    exp = sub.add_parser("export-labels", help="write current labels to a CSV file")
    exp.add_argument("--project", required=True)
    exp.add_argument("--out", required=True)
    pre = sub.add_parser("export-predictions", help="write the latest predictions to a CSV file")
    pre.add_argument("--project", required=True)
    pre.add_argument("--out", required=True)
    mod = sub.add_parser("export-model", help="write a trained model as a zip")
    mod.add_argument("--project", required=True)
    mod.add_argument("--out", required=True)
    mod.add_argument("--run", type=int, help="run id (default: the newest run with a model)")
    fol = sub.add_parser("export-imagefolder", help="write images into class folders, as a zip")
    fol.add_argument("--project", required=True)
    fol.add_argument("--out", required=True)
    fol.add_argument("--labeled", action=argparse.BooleanOptionalAction, default=True,
                     help="include labeled images (default: yes)")
    fol.add_argument("--predicted", action=argparse.BooleanOptionalAction, default=False,
                     help="include unlabeled images predicted with --min-confidence (default: no)")
    fol.add_argument("--min-confidence", type=_fraction, default=0.9)
    lab = sub.add_parser("label", help="label images (creates the class if needed)")
    lab.add_argument("--project", required=True)
    lab.add_argument("--ids", required=True, help="comma-separated image ids")
    lab.add_argument("--label", required=True, help="class name")
    lab.add_argument("--user", default="cli")
    und = sub.add_parser("undo", help="undo the user's last label action")
    und.add_argument("--project", required=True)
    und.add_argument("--user", default="cli")
    rep = sub.add_parser("representation", help="show or set a project's representation")
    rep.add_argument("--project", required=True)
    rep.add_argument("--set", dest="value", help="'auto', 'pixels', 'efficientnet-lite0' (-1, -2, "
                     "optionally @<px>) or 'torchvision:<model>'")
    mp = sub.add_parser("map", help="build the latent map (runs the app's map job)")
    mp.add_argument("--project", required=True)
    mp.add_argument("--vae-budget-s", type=float, default=60.0)
    tr = sub.add_parser("train", help="retrain on the current labels (runs the app's train job)")
    tr.add_argument("--project", required=True)
    tr.add_argument("--method", default="default",
                    choices=("default", "gan", "vae", "graph", "baseline"))
    tr.add_argument("--budget-s", type=float, help="default: by project size (30 s / 180 s)")
    tr.add_argument("--no-baseline", action="store_true",
                    help="skip the supervised baseline trained for comparison")
    tr.add_argument("--gen-augment", action="store_true",
                    help="also train on generated labelled images (methods default, vae, baseline)")
    tr.add_argument("--gen-per-class", type=int, help="with --gen-augment: images drawn per class")
    tr.add_argument("--gen-weight", type=float,
                    help="with --gen-augment: loss weight of a generated image")
    rn = sub.add_parser("runs", help="list the runs with their honest numbers")
    rn.add_argument("--project", required=True)
    rn.add_argument("--limit", type=int, default=50)
    rn.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    cm = sub.add_parser("class-mapping", help="show, suggest or set the class-name mapping used "
                        "to score test accuracy when your class names differ from the dataset's")
    cm.add_argument("--project", required=True)
    cm.add_argument("--suggest", action="store_true", help="print the mapping suggested by "
                    "majority overlap with your labels (else the latest predictions)")
    cm.add_argument("--set", nargs="+", metavar="GT=PROJECT", help="confirm these pairs (added "
                    "to the confirmed mapping; 'GT=' leaves GT unscored)")
    cm.add_argument("--rescore", action="store_true",
                    help="score the latest run again with the confirmed mapping")
    qa = sub.add_parser("quality", help="label balance, duplicates, outliers and likely label "
                        "errors (runs the app's quality job; parts already up to date are reused)")
    qa.add_argument("--project", required=True)
    qa.add_argument("--json", action="store_true", help="print JSON instead of text")
    qa.add_argument("--force", action="store_true", help="recompute every part")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (SourceError, ProjectError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _import(args) -> int:
    spec = SourceSpec(args.source, path=args.path, data_root=args.data_root,
                      download=not args.no_download)
    config = ImportConfig(size=args.size, channels=args.channels, max_files=args.max_files,
                          image_limits=ImageLimits(max_pixels=args.max_pixels),
                          archive_limits=ArchiveLimits(max_archive_bytes=args.max_archive_mb << 20))
    report = import_source(Project.create(args.project), spec, config)
    print(report.summary(max_listed=50))
    return 0 if report.imported else 1


def _export(args) -> int:
    from ssl_core.export.tables import export_labels

    n = export_labels(Project.open(args.project), args.out)
    print(f"wrote {n:,} labels to {args.out}")
    return 0


def _export_predictions(args) -> int:
    from ssl_core.export.tables import export_predictions

    n = export_predictions(Project.open(args.project), args.out)
    print(f"wrote predictions for {n:,} images to {args.out}")
    return 0


def _export_model(args) -> int:
    from ssl_core.export.model_zip import export_model

    run = export_model(Project.open(args.project), args.out, args.run)
    print(f"wrote the model of run {run.id} ({run.method}, {run.n_labels} labels) to {args.out}")
    return 0


def _export_imagefolder(args) -> int:
    from ssl_core.export.imagefolder import export_imagefolder

    result = export_imagefolder(Project.open(args.project), args.out, args.labeled,
                                args.predicted, args.min_confidence)
    print(result.summary())
    return 0


def _label(args) -> int:
    from ssl_core.labeling.classes import add_class
    from ssl_core.labeling.label_log import set_labels

    project = Project.open(args.project)
    cls = add_class(project.store, args.label)
    ids = [int(v) for v in args.ids.split(",") if v.strip()]
    result = set_labels(project.store, ids, cls.id, user=args.user)
    print(f"labeled {result.n_images} images as {cls.name!r} (action {result.action_id})")
    return 0


def _undo(args) -> int:
    from ssl_core.labeling.label_log import undo_last

    result = undo_last(Project.open(args.project).store, user=args.user)
    print("nothing to undo" if result is None else f"undid: {result.n_images} images restored")
    return 0


def _representation(args) -> int:
    from ssl_core.data.collection import ImageCollection
    from ssl_core.features.choice import (
        AUTO_KEY,
        META_KEY,
        RepresentationChoice,
        project_representation,
        set_project_representation,
    )
    
    project = Project.open(args.project)
    if args.value:
        set_project_representation(project.store, args.value)
    shape = ImageCollection(project).shape
    chosen = project.store.get_meta(META_KEY, "auto")
    used = project_representation(project.store, shape) if shape else "(no images yet)"
    print(f"representation: {chosen} -> {used}")
    decided = project.store.get_meta(AUTO_KEY)
    if chosen == "auto" and decided:
        print("  " + RepresentationChoice.from_json(decided).describe())
    return 0


def _map(args) -> int:
    from ssl_core.jobs import worker

    project = Project.open(args.project)
    job = _follow(project, worker.launch(project, "map", {"vae_budget_s": args.vae_budget_s}))
    if job.result:
        seconds = job.result.get("seconds", {})
        print(f"map of {job.result['n_images']:,} images ({job.result.get('representation')}) "
              f"in {sum(seconds.values()):.0f} s: " + ", ".join(f"{k} {v:.1f} s"
                                                             for k, v in seconds.items()))
    return 0 if job.result else 1


def _train(args) -> int:
    from ssl_core.jobs.retrain import request_retrain

    project = Project.open(args.project)
    params = {"method": args.method, "compare_baseline": not args.no_baseline}
    if args.budget_s:
        params["budget_s"] = args.budget_s
    if args.gen_augment:
        from ssl_core.models.generated import gen_augment_for
        gen_augment_for(args.method, per_class=args.gen_per_class, weight=args.gen_weight)  # checks
        params.update(gen_augment=True, gen_per_class=args.gen_per_class, gen_weight=args.gen_weight)
    job = _follow(project, request_retrain(project, params).job_id)
    if not job.result:
        return 1
    from ssl_core.results.run_text import summary_lines

    r = job.result
    print("\n".join(summary_lines(r["run_id"], args.method, r)))
    return 0


def _runs(args) -> int:
    import json

    from ssl_core.jobs import records as jobs
    from ssl_core.results.run_text import run_record, run_row, table
    from ssl_core.results.runs import list_runs

    project = Project.open(args.project)
    runs = list_runs(project.store, max(1, args.limit))
    seconds = {}
    for run in runs:
        job = jobs.get_job(project.store, run.job_id) if run.job_id is not None else None
        seconds[run.id] = job.elapsed_s if job is not None and job.status.finished else None
    if args.json:
        print(json.dumps([run_record(r, seconds[r.id]) for r in runs], indent=1))
    elif not runs:
        print("no runs yet: label images of at least 2 classes, then `train`")
    else:
        print(table([run_row(r, seconds[r.id]) for r in runs]))
        print("validation: on labels held out of training. test: on the dataset's sealed "
              "evaluation images, transductive (their pixels were in the unlabeled pool).")
    return 0


def _class_mapping(args) -> int:
    from ssl_core.data.collection import ImageCollection
    from ssl_core.labeling.class_mapping import load_mapping
    from ssl_core.labeling.classes import list_classes
    from ssl_core.results import rescore
    from ssl_core.results.run_text import accuracy_text

    project = Project.open(args.project)
    gt_names = ImageCollection(project).ground_truth_classes()
    if not gt_names:
        print("this project has no ground truth: test accuracy cannot be measured")
        return 0
    if args.set:
        pairs = dict(load_mapping(project.store))
        for item in args.set:
            gt, sep, target = item.partition("=")
            if not sep:
                raise ValueError(f"{item!r}: write GT=PROJECT, e.g. 7=seven")
            pairs[gt] = target
        rescore.confirm_mapping(project, pairs)
    mapping = load_mapping(project.store)
    names = [c.name for c in list_classes(project.store)]
    print("confirmed mapping (ground truth -> your class):" if mapping else
          "no mapping confirmed: classes are compared by name")
    for gt, target in mapping.items():
        print(f"  {gt!r} -> {target!r}")
    if missing := rescore.unmapped(gt_names, names, mapping):
        print("not scored (no class of yours corresponds): " + ", ".join(map(repr, missing)))
    if args.suggest:
        suggested = rescore.suggestion(project)
        print("suggested by majority overlap:" if suggested else
              "nothing to suggest: label some images (or train) first")
        for gt, target in suggested.items():
            print(f"  {gt!r} -> {target!r}")
        if suggested:
            print("confirm with: --set " + " ".join(
                shlex.quote(f"{g}={t}") for g, t in suggested.items()))
    if args.rescore:
        run_id, summary = rescore.rescore_latest(project)
        print(f"run {run_id} re-scored: test accuracy "
              + (accuracy_text(summary["test"]) + ", transductive" if summary.get("test")
                 else "n/a"))
    return 0


def _follow(project: Project, job_id: int):
    """Wait for a job, its progress on stderr; the finished Job (a failure's error printed)."""
    import time

    from ssl_core.jobs import records as jobs

    last = None
    while not (job := jobs.get_job(project.store, job_id)).status.finished:
        line = f"[job {job.id} {job.kind}] {100 * job.progress:3.0f}% {job.message}"
        if line != last:
            print(line, file=sys.stderr, flush=True)
            last = line
        time.sleep(0.5)
    if job.status is not jobs.JobStatus.SUCCEEDED:
        print(f"error: job {job.id} {job.status.value}: {job.error or ''}", file=sys.stderr)
    return job


def _quality(args) -> int:
    import json

    from ssl_core.quality.compute import compute_quality, project_balance, quality_keys
    from ssl_core.quality.summary import quality_summary, quality_text

    project = Project.open(args.project)
    report = compute_quality(project, None if args.json else _print_progress, force=args.force)
    summary = quality_summary(project, report, project_balance(project), quality_keys(project))
    print(json.dumps(summary, indent=1) if args.json else quality_text(summary))
    return 0


def _print_progress(fraction: float, message: str | None, _last: list = [None]) -> None:
    if message != _last[0]:            # a new step, not every batch of the same one
        _last[0] = message
        print(f"[{fraction:4.0%}] {message or ''}", file=sys.stderr, flush=True)


_COMMANDS = {"import": _import, "export-labels": _export, "export-predictions": _export_predictions,
             "export-model": _export_model, "export-imagefolder": _export_imagefolder,
             "label": _label, "undo": _undo, "representation": _representation, "map": _map,
             "train": _train, "runs": _runs, "class-mapping": _class_mapping,
             "quality": _quality}
