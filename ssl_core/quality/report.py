"""A project's quality report on disk, what makes it stale, and the per-image flags it gives.

    <project>/quality/report.json   {"parts": {part: {"key": {...}, "result": {...}}}, ...}

The report has three parts, each cached under the key of what it depends on, so the quality
job recomputes only what changed:
- "duplicates" and "outliers": the images and the representation (n_images, representation);
- "label_errors": also the labels and the model (labels_version, the latest run).
The user's decisions (excluded copies, kept labels: marks.py) are applied when the report is
read, never baked in, so a decision shows at once and needs no recomputation.

Flags (one per image, for the map and the queue), most important first: a suspected label
error (flagged by confident learning or predicted as another class out of sample, and not
kept by the user), an excluded copy, an exact or
near duplicate, an outlier (the top OUTLIER_SHARE of the outlier ranking, at least
MIN_OUTLIERS: a ranking has no natural cut, and half a percent is a page of thumbnails at 70,000
images).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ssl_core.project.files import write_bytes_atomic
from ssl_core.project.folder import Project

PARTS = ("duplicates", "outliers", "label_errors")
FLAGS = ("suspected label error", "excluded copy", "exact duplicate", "near duplicate",
         "outlier")
OUTLIER_SHARE = 0.005
MIN_OUTLIERS = 10


def report_path(project: Project):
    return project.root / "quality" / "report.json"


@dataclass
class QualityReport:
    """What the quality job found; parts that were never computed are absent."""
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)   # part -> {"key", "result"}
    updated_at: float = 0.0

    def result(self, part: str, key: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The part's result; None when absent or (given `key`) computed for another key."""
        got = self.parts.get(part)
        if got is None or (key is not None and got.get("key") != key):
            return None
        return got["result"]

    def stale_parts(self, keys: dict[str, dict[str, Any]]) -> list[str]:
        """The parts whose cached key differs from `keys` (what the project is now)."""
        return [p for p in PARTS if p in keys and self.result(p, keys[p]) is None]


def load_report(project: Project) -> QualityReport:
    """The stored report, or an empty one (never computed, or unreadable)."""
    try:
        d = json.loads(report_path(project).read_text())
        return QualityReport(dict(d.get("parts", {})), float(d.get("updated_at", 0.0)))
    except (OSError, ValueError, AttributeError):
        return QualityReport()


def save_report(project: Project, report: QualityReport, check=None) -> None:
    """Write the report atomically (a reader never sees half of it). `check()` runs first and
    may raise (a worker that lost its job claim writes nothing)."""
    report.updated_at = time.time()
    path = report_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    if check is not None:
        check()
    write_bytes_atomic(path, json.dumps({"parts": report.parts,
                                         "updated_at": report.updated_at}).encode(), "quality report")


def outlier_cut(n_images: int) -> int:
    """How many of the top-ranked outliers are flagged."""
    return max(MIN_OUTLIERS, int(round(OUTLIER_SHARE * n_images)))


def flagged_label_errors(result: dict[str, Any] | None, labels: np.ndarray,
                         kept: dict[int, int]) -> list[dict[str, Any]]:
    """The suspected label errors still worth a look, worst first: flagged by confident
    learning, or predicted out of sample as another class (cleanlab's per-class thresholds
    flag few with a handful of labels per class: on digits with 8 labels per class and 4
    flipped it flagged 2, while 3 of the 4 ranked first among 6 disagreements); the label
    unchanged since the report (else it was already fixed) and not kept by the user with that
    class. Each: {"image_id", "given", "suggested", "quality", ...} with project class ids."""
    if not result:
        return []
    out = []
    for issue in result.get("issues", []):
        i, given = int(issue["image_id"]), int(issue["given"])
        suspect = issue.get("flagged") or int(issue["suggested"]) != given
        if not suspect or i >= len(labels) or int(labels[i]) != given:
            continue
        if kept.get(i) == given:
            continue
        out.append(issue)
    return out


def image_flags(report: QualityReport, n: int, labels: np.ndarray, kept: dict[int, int],
                excluded: np.ndarray) -> np.ndarray:
    """(n,) int: index into FLAGS of each image's most important flag, -1 for none."""
    flags = np.full(n, -1, np.int64)

    def put(ids, flag: str) -> None:
        ids = np.asarray([i for i in ids if 0 <= i < n], np.int64)
        free = ids[flags[ids] < 0] if len(ids) else ids
        flags[free] = FLAGS.index(flag)

    put([e["image_id"] for e in flagged_label_errors(report.result("label_errors"), labels, kept)],
        "suspected label error")
    put(np.flatnonzero(np.asarray(excluded, bool)[:n]), "excluded copy")
    groups = (report.result("duplicates") or {}).get("groups", [])
    put([i for g in groups if g.get("exact") for i in g["ids"]], "exact duplicate")
    put([i for g in groups if not g.get("exact") for i in g["ids"]], "near duplicate")
    ranked = (report.result("outliers") or {}).get("ids", [])
    put(ranked[:outlier_cut(n)], "outlier")
    return flags


def straddles(group_ids, sealed: np.ndarray) -> bool:
    """A duplicate group with copies on both sides of the evaluation split: a test image whose
    copy is in training inflates test accuracy."""
    inside = [bool(sealed[i]) for i in group_ids if i < len(sealed)]
    return any(inside) and not all(inside)
