"""Which representation a project's models and map use unless the user says otherwise.

The rule, from benchmarks/representation.jsonl (label propagation with the same labels on each
representation; README "Representations"): small greyscale images (handwritten digits,
8x8 to 32x32) are best as their own pixels, which the engine deskews and projects; for colour
images and anything larger an ImageNet-pretrained EfficientNet-Lite0 wins by tens of points on
photos. Both are offered on the Images page and the CLI (`--representation`).
"""
from __future__ import annotations

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


def project_representation(store, image_shape: tuple[int, ...]) -> str:
    """The representation a project uses, resolved: the user's choice (Images page, CLI) or the
    default for its images' shape. `store` is the project's Store."""
    return resolve_representation(store.get_meta(META_KEY, "auto"), image_shape)


def set_project_representation(store, name: str) -> None:
    """Choose a project's representation ('auto', 'pixels' or an extractor name); the next map
    and every retrain use it."""
    from ssl_core.features.extractors import get_extractor

    if name not in ("auto", PIXELS):
        get_extractor(name, (32, 32, 3))         # ValueError for an unknown name, before saving
    store.set_meta(META_KEY, name)
