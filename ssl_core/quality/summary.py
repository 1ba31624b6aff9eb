"""The quality report as plain data and as text: what the CLI prints (`quality [--json]`) and
what the Quality page's headline counts come from, so the two never disagree."""
from __future__ import annotations

from typing import Any

import numpy as np

from ssl_core.data.collection import ImageCollection
from ssl_core.labeling.classes import list_classes
from ssl_core.labeling.evaluation_split import sealed_mask
from ssl_core.labeling.label_log import current_labels
from ssl_core.project.folder import Project
from ssl_core.quality.balance import BalanceReport
from ssl_core.quality.marks import excluded_mask, kept_labels
from ssl_core.quality.report import (
    QualityReport,
    flagged_label_errors,
    outlier_cut,
    straddles,
)

LISTED = 15   # suspected label errors, outliers and groups listed in the text


def quality_summary(project: Project, report: QualityReport, balance: BalanceReport,
                    keys: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Everything the report says, with the user's decisions applied, as JSON-ready data."""
    collection = ImageCollection(project)
    n = collection.n_images
    labels = current_labels(project.store, n)
    sealed = sealed_mask(collection, n)
    excluded = excluded_mask(project.store, n)
    names = {c.id: c.name for c in list_classes(project.store, include_deleted=True)}
    dup = report.result("duplicates")
    groups = (dup or {}).get("groups", [])
    out_ids = (report.result("outliers") or {}).get("ids", [])
    errors = flagged_label_errors(report.result("label_errors"), labels, kept_labels(project.store))
    return {
        "n_images": n,
        "stale": report.stale_parts(keys),
        "balance": balance.to_dict(),
        "duplicates": None if dup is None else {
            "groups": len(groups),
            "exact_groups": sum(1 for g in groups if g.get("exact")),
            "copies": sum(len(g["ids"]) - 1 for g in groups),
            "still_included_copies": sum(max(0, int((~excluded[g["ids"]]).sum()) - 1)
                                         for g in groups),
            "straddling_evaluation_split": sum(1 for g in groups if straddles(g["ids"], sealed)),
            "threshold": dup.get("threshold"), "calibration": dup.get("calibration"),
            "seconds": dup.get("seconds"), "largest": [g["ids"] for g in groups[:LISTED]]},
        "outliers": None if not out_ids else {
            "flagged": outlier_cut(n), "top": [int(i) for i in out_ids[:LISTED]]},
        "label_errors": None if report.result("label_errors") is None else {
            "flagged": len(errors), "note": report.result("label_errors").get("note"),
            "top": [{"image_id": int(e["image_id"]), "given": names.get(int(e["given"])),
                     "suggested": names.get(int(e["suggested"])),
                     "quality": round(float(e["quality"]), 4)} for e in errors[:LISTED]]},
        "excluded": int(np.count_nonzero(excluded)),
    }


def quality_text(summary: dict[str, Any]) -> str:
    """A few readable lines for the terminal."""
    lines = [f"{summary['n_images']:,} images"]
    if summary["stale"]:
        lines.append(f"out of date: {', '.join(summary['stale'])} (images, labels or model changed)")
    bal = summary["balance"]
    lines.append("labels per class: " + ", ".join(
        f"{c['name']} {c['n_labels']}" + (f" (predicted {c['n_predicted']:,})"
                                          if c.get("n_predicted") is not None else "")
        for c in bal["classes"]) if bal["classes"] else "no classes yet")
    lines += [f"warning: {w}" for w in bal["warnings"]]
    if (d := summary["duplicates"]) is not None:
        lines.append(f"duplicates: {d['groups']:,} groups ({d['exact_groups']:,} exact), "
                     f"{d['copies']:,} copies, {d['straddling_evaluation_split']:,} straddle the "
                     f"evaluation split; threshold {d['threshold']:.4g}")
        lines += [f"  group: {', '.join(map(str, ids))}" for ids in d["largest"][:5]]
    if (o := summary["outliers"]) is not None:
        lines.append(f"outliers (top {o['flagged']:,} flagged), first: "
                     + ", ".join(map(str, o["top"])))
    if (e := summary["label_errors"]) is not None:
        lines.append(f"suspected label errors: {e['flagged']:,}" +
                     (f" ({e['note']})" if e.get("note") else ""))
        lines += [f"  image {t['image_id']}: labeled {t['given']!r}, looks like "
                  f"{t['suggested']!r} (label quality {t['quality']:.3f})" for t in e["top"]]
    if summary["excluded"]:
        lines.append(f"{summary['excluded']:,} excluded copies (their labels do not train)")
    return "\n".join(lines)
