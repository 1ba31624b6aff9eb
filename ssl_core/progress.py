"""The one progress-callback type every long operation takes (imports, dataset downloads, the
map, feature extraction): `progress(fraction in [0, 1], message)`. A background job passes its
`JobContext.progress`, which is also a cancellation point (it may raise to stop the work)."""
from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """The default when nobody is listening."""


def scaled(progress: Progress, lo: float, hi: float) -> Progress:
    """A callback that maps a sub-task's 0..1 onto lo..hi of `progress`."""
    return lambda fraction, message: progress(lo + (hi - lo) * fraction, message)
