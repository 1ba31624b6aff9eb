"""The label queue worked through one image at a time: which suggested image comes next.

The queue is the list of suggested image ids, in the order they are shown. Whether an image is
done is read from the current labels (the store), never kept beside them: an image leaves the
queue as soon as it has a label, whoever gave it (this view, the grid, the map, another user),
and comes back in its old place when an undo clears that label. So the queue can never
disagree with the store, and undo needs no bookkeeping here. Skipping moves an image to the
back of the queue: it comes again after the others.

The queue never offers a sealed evaluation image (`suggestions`; evaluation_split.py): its label
would not train, and the test set would lose its hardest images to the "uncertainty" strategy.

The first ten classes get the digit keys 1..9, 0 (in class-list order); the rest are picked by
name."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ssl_core.labeling.classes import LabelError
from ssl_core.labeling.label_log import ActionResult, set_labels
from ssl_core.labeling.suggest import suggest
from ssl_core.project.store import Store

DIGIT_KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0")


def suggestions(strategy: str, n: int, latents: np.ndarray, labels: np.ndarray,
                sealed: np.ndarray, proba: np.ndarray | None = None, seed: int = 0,
                excluded: np.ndarray | None = None) -> np.ndarray:
    """Up to n image ids for the queue, best first: suggest.py's strategy over the images that
    have no label, are not sealed evaluation images and are not duplicate copies the user
    excluded (quality/marks.py). latents (M, d) for the first M images (the map may be older
    than the last import), labels (N,), sealed (N,) bool, excluded (N,) bool or None. (S,)"""
    m = len(latents)
    skip = np.asarray(sealed, bool)[:m]
    if excluded is not None:
        skip = skip | np.asarray(excluded, bool)[:m]
    return suggest(strategy, n, latents, np.asarray(labels)[:m] >= 0,
                   proba=None if proba is None else proba[:m], seed=seed, exclude=skip)


def pending(order: Sequence[int], labels: np.ndarray) -> list[int]:
    """The queue's images that have no label yet, in queue order (ids outside `labels` are
    dropped)."""
    labels = np.asarray(labels)
    return [int(i) for i in order if 0 <= int(i) < len(labels) and labels[int(i)] < 0]


def current(order: Sequence[int], labels: np.ndarray) -> int | None:
    """The image to show now: the first unlabeled one in the queue; None when all are done."""
    rest = pending(order, labels)
    return rest[0] if rest else None


def skip(order: Sequence[int], image_id: int) -> list[int]:
    """The queue with `image_id` moved to the back, unlabeled."""
    image_id = int(image_id)
    return [int(i) for i in order if int(i) != image_id] + [image_id]


def digit_keys(class_ids: Iterable[int]) -> dict[int, str]:
    """Keyboard key of each of the first ten classes: {class id: "1".."9", "0"}."""
    return {int(c): k for c, k in zip(class_ids, DIGIT_KEYS)}


def label_current(store: Store, order: Sequence[int], labels: np.ndarray, class_id: int, *,
                  user: str = "local", action_uuid: str | None = None
                  ) -> tuple[int, ActionResult, int | None]:
    """Label the queue's current image with `class_id` as one undoable action, committed
    before returning; returns (the image labeled, the action, the image that comes next or
    None). `labels` are the current labels the queue was shown with. LabelError when the
    queue has nothing left or the class is gone."""
    image = current(order, labels)
    if image is None:
        raise LabelError("every image in the queue is labeled: suggest more")
    result = set_labels(store, [image], class_id, user=user, action_uuid=action_uuid)
    after = np.array(labels, copy=True)
    after[image] = class_id
    return image, result, current(order, after)
