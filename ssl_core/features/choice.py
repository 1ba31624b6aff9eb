"""Which representation a project's models and map use unless the user says otherwise.

The rule, from benchmarks/representation.jsonl (label propagation with the same labels on each
representation; README "Your photos"): colour images and anything larger than 32 px get an
ImageNet-pretrained EfficientNet-Lite0, which wins by tens of points on photos. Small greyscale
images start as their own pixels (handwritten digits: pixels win by 10-20 points) until the
user's labels can decide: Fashion-MNIST, 28x28 greyscale too, is better as features (+12
points), so the train job cross-validates both on the labels once there are enough
(models/representation_choice.py) and keeps the winner here (AUTO_KEY). The user's choice on
the Images page or the CLI (`representation --set`) always wins.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

PIXELS = "pixels"
PRETRAINED_DEFAULT = "efficientnet-lite0"
REPRESENTATIONS = (PIXELS, "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")


def default_representation(image_shape: tuple[int, ...]) -> str:
    """'pixels' for small greyscale images, the pretrained backbone for everything else."""
    h, w, c = image_shape
    return PIXELS if c == 1 and max(h, w) <= 32 else PRETRAINED_DEFAULT


def resolve_representation(name: str, image_shape: tuple[int, ...]) -> str:
    """`name` as given, or the default for these images when it is 'auto'."""
    return default_representation(image_shape) if name in ("auto", "", None) else name


META_KEY = "representation"     # the project's choice, in its store's meta table


AUTO_KEY = "representation_auto"   # 'auto' decided on the labels (models/representation_choice.py)


def project_representation(store, image_shape: tuple[int, ...]) -> str:
    """The representation a project uses, resolved: the user's choice (Images page, CLI), else
    the one its labels chose (small greyscale images, models/representation_choice.py), else the
    default for its images' shape. `store` is the project's Store."""
    name = store.get_meta(META_KEY, "auto")
    decided = store.get_meta(AUTO_KEY) if name in ("auto", "", None) else None
    if decided:
        return json.loads(decided)["choice"]
    return resolve_representation(name, image_shape)


def set_project_representation(store, name: str) -> None:
    """Choose a project's representation ('auto', 'pixels' or an extractor name); the next map
    and every retrain use it."""
    from ssl_core.features.extractors import get_extractor

    if name not in ("auto", PIXELS):
        get_extractor(name, (32, 32, 3))         # ValueError for an unknown name, before saving
    store.set_meta(META_KEY, name)


@dataclass(frozen=True)
class RepresentationChoice:
    """The representation kept, the graph stage's cross-validated accuracy on the labels with
    each candidate, and how many labels that rests on."""
    choice: str
    scores: dict[str, float]
    n_labels: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "RepresentationChoice":
        data = json.loads(text)
        return cls(str(data["choice"]), {str(k): float(v) for k, v in data["scores"].items()},
                   int(data["n_labels"]))

    def describe(self) -> str:
        scores = ", ".join(f"{name} {100 * v:.1f}%" for name, v in self.scores.items())
        return (f"{self.choice}, chosen on your {self.n_labels} labels (graph stage, "
                f"cross-validated: {scores})")


MIN_LABELS_PER_CLASS = 3     # labels every class needs before the labels choose


def enough_labels(labels: np.ndarray) -> bool:
    """Whether labels (N,) (-1 = unlabeled) give every labeled class MIN_LABELS_PER_CLASS."""
    _, counts = np.unique(labels[labels >= 0], return_counts=True)
    return len(counts) >= 2 and int(counts.min()) >= MIN_LABELS_PER_CLASS
