"""The user's data-quality decisions, kept in the project database beside the label log.

Two marks, append-only like the label log (the last row per image and mark wins, so a decision
is withdrawn by appending, and nothing is ever rewritten):
- **excluded**: a duplicate copy the user chose not to keep ("keep one" on the Quality page).
  Images are never deleted (ids are row numbers of the pixel file and never change); an
  excluded image's label is taken out of what `fit` sees (`evaluation_split.training_labels`)
  and the label queue never offers it. Restoring it appends an inactive row.
- **kept**: a suspected label error the user reviewed and kept *with that class*. The mark
  names the class it confirmed, so a later relabel makes it void: the new label is judged
  afresh.
Relabel and clear go through the label log (label_log.set_labels), never through here, so the
label log's undo covers them; "keep" is undone by `withdraw_kept`.
"""
from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from ssl_core.labeling.classes import LabelError
from ssl_core.project.store import Store

EXCLUDED, KEPT = "excluded", "kept"


def _append(store: Store, ids: list[int], mark: str, active: bool, class_id: int | None,
            user: str) -> int:
    if not ids:
        raise LabelError("nothing is selected: select some images first")
    now = time.time()
    with store.write() as conn:
        n = conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        if ids[0] < 0 or ids[-1] >= n:
            raise LabelError(f"image ids must lie in 0..{n - 1}")
        conn.executemany("INSERT INTO quality_marks (image_id, mark, active, class_id, user, ts) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         [(i, mark, int(active), class_id, user, now) for i in ids])
    return len(ids)


def set_excluded(store: Store, image_ids: Iterable[int], excluded: bool = True, *,
                 user: str = "local") -> int:
    """Exclude (or restore) images, committed before returning; returns how many rows were
    written."""
    return _append(store, sorted({int(i) for i in image_ids}), EXCLUDED, excluded, None, user)


def keep_label(store: Store, image_id: int, class_id: int, *, user: str = "local") -> None:
    """Record that the user reviewed image `image_id` and keeps its label `class_id`."""
    _append(store, [int(image_id)], KEPT, True, int(class_id), user)


def withdraw_kept(store: Store, image_id: int, *, user: str = "local") -> None:
    """Undo a `keep_label`: the image is a suspect again (if its label still looks wrong)."""
    _append(store, [int(image_id)], KEPT, False, None, user)


def _current(store: Store, mark: str) -> dict[int, int | None]:
    """{image id: class_id (or None)} of the images whose last `mark` row is active."""
    with store.read() as conn:
        rows = conn.execute(
            "SELECT image_id, active, class_id FROM quality_marks WHERE seq IN "
            "(SELECT MAX(seq) FROM quality_marks WHERE mark = ? GROUP BY image_id)",
            (mark,)).fetchall()
    return {int(r["image_id"]): r["class_id"] for r in rows if r["active"]}


def excluded_mask(store: Store, n: int) -> np.ndarray:
    """(n,) bool: the images currently excluded."""
    mask = np.zeros(n, bool)
    ids = [i for i in _current(store, EXCLUDED) if i < n]
    mask[ids] = True
    return mask


def kept_labels(store: Store) -> dict[int, int]:
    """{image id: the class the user kept it as} for every reviewed-and-kept label."""
    return {i: int(c) for i, c in _current(store, KEPT).items() if c is not None}


def marks_version(store: Store) -> int:
    """The newest mark's sequence number: any decision raises it (part of the quality cache
    key, so a report is recomputed after the user excluded or kept something)."""
    with store.read() as conn:
        return conn.execute("SELECT COALESCE(MAX(seq), 0) FROM quality_marks").fetchone()[0]
