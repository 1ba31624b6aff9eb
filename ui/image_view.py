"""One image of a collection shown at about a given size: the label queue's current image and
its grid, the quality review's suspect and its neighbours share it."""
from __future__ import annotations

import streamlit as st

from ssl_core.data.collection import ImageCollection
from ssl_core.data.thumbnails import contact_sheet


def show_image(images: ImageCollection, i: int, px: int, caption: str | None = None,
               where=st) -> None:
    """Image `i`, upscaled by a whole factor to about `px` pixels on its longer side, in `where`
    (st, a column, ...); the caption defaults to "image <i>"."""
    scale = max(1, px // max(images.shape[:2]))
    where.image(contact_sheet(images.images()[[i]], cols=1, scale=scale, pad=0),
                caption=f"image {i}" if caption is None else caption)
