"""Decode any uploaded image file into a normalised ``uint8`` array.

Users drop whatever they have into Latentlab: phone JPEGs with EXIF rotation,
palette GIFs, 16-bit microscopy PNGs, CMYK scans, transparent logos. The
embedding model wants one fixed size and channel count, so this module turns
every such file into an ``(H, W, C)`` uint8 array the same way, and turns every
way a file can be broken (empty, not an image, truncated, absurdly large) into
a single :class:`ImageError` whose message can be shown to the user as is.

Two entry points: :func:`probe_image` reads only the header (cheap enough for a
first pass over thousands of files to choose the common size), and
:func:`decode_image` does the full, guarded decode.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageError", "ImageLimits", "ImageInfo", "probe_image", "decode_image"]

# Only plugins for formats people actually label. Restricting Image.open keeps
# exotic decoders (EPS would even run Ghostscript) away from untrusted uploads.
# JPEGs carrying multi-picture data come back from the JPEG plugin as format
# 'MPO'; 'MPO' itself is not an Image.open format name (KeyError if listed).
SUPPORTED_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "GIF", "TIFF")

# Everything PIL is known to raise on malformed data while opening or decoding.
# Listed explicitly (not `Exception`) so that bugs in this module still surface.
_DECODE_ERRORS = (
    OSError, SyntaxError, ValueError, struct.error, EOFError,
    IndexError, KeyError, TypeError, ZeroDivisionError, OverflowError,
)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)

_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_EXIF_ORIENTATION = 0x0112
_ROTATING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # these swap width and height


class ImageError(ValueError):
    """A file that cannot be used as an image.

    ``str(err)`` is a short human reason such as ``'empty file'``,
    ``'not an image (unrecognised format)'`` or
    ``'truncated or corrupt image data'``, fit to show next to the file name.
    """


@dataclass(frozen=True)
class ImageLimits:
    """Resource limits applied before any pixel data is decoded."""

    max_pixels: int = 50_000_000  # decompression-bomb guard, checked from the header before decoding
    max_file_bytes: int = 64 * 2**20  # refuse single files bigger than this


@dataclass(frozen=True)
class ImageInfo:
    """What the header says about an image, as it will be displayed."""

    width: int  # after EXIF orientation (a portrait phone photo is reported portrait)
    height: int  # after EXIF orientation
    channels: int  # 1 for grayscale-like modes (incl. all-gray palettes), else 3
    format: str  # PIL format name, e.g. 'PNG'
    mode: str  # PIL mode as stored in the file, e.g. 'I;16'


def probe_image(data: bytes, limits: ImageLimits = ImageLimits()) -> ImageInfo:
    """Read only the header of ``data`` and describe the image.

    Raises :class:`ImageError` for empty, oversized, unrecognised or
    pixel-bomb files, so that a first pass can reject them without decoding.
    """
    with _open(data, limits) as im:
        width, height = im.size
        try:
            if _orientation(im) in _ROTATING_ORIENTATIONS:
                width, height = height, width
            channels = 1 if _is_gray(im) else 3
        except _DECODE_ERRORS as err:
            raise ImageError("corrupt image header") from err
        return ImageInfo(width, height, channels, im.format or "", im.mode)


def decode_image(
    data: bytes,
    size: tuple[int, int],
    channels: int,
    limits: ImageLimits = ImageLimits(),
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Decode ``data`` into an ``(H, W, channels)`` uint8 array with ``(H, W) = size``.

    Transparency is composited onto ``background``, EXIF orientation applied,
    high bit depths scaled (not clipped) to 8 bits, and the image is
    center-cropped to the target aspect ratio before a bilinear resize so
    that nothing is distorted. Every bad input raises :class:`ImageError`.
    """
    height, width = size
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size}")
    with _open(data, limits) as im:
        try:
            if im.format in ("JPEG", "MPO"):
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale while staying at
                # least as large as the target: far faster for big photos.
                turned = _orientation(im) in _ROTATING_ORIENTATIONS
                im.draft(None, (height, width) if turned else (width, height))
            im.load()
            # Asked again after load(): a PNG's eXIf chunk may follow the pixel data.
            upright = ImageOps.exif_transpose(im) if _orientation(im) != 1 else im
            flat = _flatten(_to_8bit(upright), background)
        except _BOMB_ERRORS as err:
            raise ImageError(_bomb_message(err, limits)) from err
        except _DECODE_ERRORS as err:
            raise ImageError("truncated or corrupt image data") from err
        try:
            flat = flat.convert("L" if channels == 1 else "RGB")
        except ValueError as err:  # e.g. 'LAB' TIFFs: PIL has no conversion
            raise ImageError(f"unsupported colour mode {flat.mode!r}") from err
        if flat.size != (width, height):
            flat = ImageOps.fit(flat, (width, height), method=Image.Resampling.BILINEAR)
    out = np.asarray(flat, dtype=np.uint8)  # (H, W) for 'L', (H, W, 3) for 'RGB'
    if out.ndim == 2:
        out = out[:, :, None]  # (H, W, 1) uint8
    return out


def _open(data: bytes, limits: ImageLimits) -> Image.Image:
    """Open ``data`` lazily (header only) and enforce the byte and pixel limits."""
    if len(data) == 0:
        raise ImageError("empty file")
    if len(data) > limits.max_file_bytes:
        raise ImageError(
            f"file too large: {len(data) / 2**20:.1f} MiB exceeds the "
            f"{limits.max_file_bytes / 2**20:.1f} MiB limit"
        )
    try:
        im = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except UnidentifiedImageError as err:  # subclass of OSError: must come first
        raise ImageError("not an image (unrecognised format)") from err
    except _BOMB_ERRORS as err:
        # PIL's own global guard fired inside Image.open, before we saw the size.
        raise ImageError(_bomb_message(err, limits)) from err
    except _DECODE_ERRORS as err:
        raise ImageError("corrupt image header") from err
    width, height = im.size
    if width < 1 or height < 1:
        im.close()
        raise ImageError(f"invalid image size {width}x{height}")
    if width * height > limits.max_pixels:
        im.close()
        raise ImageError(
            f"image too large: {width}x{height} = {width * height / 1e6:.1f} Mpx "
            f"exceeds the {limits.max_pixels / 1e6:.1f} Mpx limit"
        )
    return im


def _bomb_message(err: Exception, limits: ImageLimits) -> str:
    """Phrase PIL's decompression-bomb refusal like our own pixel-limit message."""
    # PIL's message carries only the pixel count, e.g. "Image size (400000000 pixels) ...".
    found = re.search(r"\((\d+) pixels\)", str(err))
    if found is None:
        return "image too large (refused by Pillow's decompression-bomb guard)"
    pixels = int(found.group(1))
    if pixels > limits.max_pixels:
        return f"image too large: {pixels / 1e6:.1f} Mpx exceeds the {limits.max_pixels / 1e6:.1f} Mpx limit"
    return f"image too large: {pixels / 1e6:.1f} Mpx exceeds Pillow's decompression-bomb limit"


def _orientation(im: Image.Image) -> int:
    """EXIF orientation tag (1 = upright) without triggering a full decode."""
    # PIL's PNG getexif() loads the whole image when the eXIf chunk sits after
    # the pixel data; a header-only probe must not pay for that.
    if im.format == "PNG" and "exif" not in im.info:
        return 1
    return int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)


def _is_gray(im: Image.Image) -> bool:
    """True when the image carries no colour, judged from mode and palette only."""
    if im.mode in _GRAY_MODES or im.mode.startswith("I;16"):
        return True
    if im.mode in ("P", "PA"):
        palette = im.getpalette() or []  # flat [r, g, b, r, g, b, ...]
        rgb = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)  # (N, 3) uint8
        return bool(np.all(rgb == rgb[:, :1]))
    return False


def _to_8bit(im: Image.Image) -> Image.Image:
    """Map integer and float modes ('I;16*', 'I', 'F') to 'L' by scaling, not clipping.

    PIL's own convert('L') clips 16-bit values at 255, which would turn an
    ordinary 16-bit PNG almost entirely white.
    """
    if not (im.mode.startswith("I") or im.mode == "F"):
        return im
    values = np.asarray(im).astype(np.float64)  # (H, W) float64, any source depth
    if im.mode == "F":
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(values.min()), float(values.max())
        if lo >= 0.0 and hi <= 1.0:
            scaled = values * 255.0
        elif hi > lo:
            scaled = (values - lo) * (255.0 / (hi - lo))
        else:  # constant image outside [0, 1]: nothing to stretch
            scaled = values
    elif im.mode == "I" and values.max() <= 255:
        scaled = values  # 32-bit container holding 8-bit-range data
    else:
        scaled = values * (255.0 / 65535.0)
    gray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)  # (H, W) uint8
    out = Image.fromarray(gray)
    transparent = im.info.get("transparency")
    if isinstance(transparent, int) and im.mode != "F":
        # PNG tRNS on a 16-bit gray image names one exact value as transparent.
        alpha = np.where(np.asarray(im) == transparent, 0, 255).astype(np.uint8)  # (H, W)
        out = Image.merge("LA", (out, Image.fromarray(alpha)))
    return out


def _flatten(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Composite any transparency onto ``background``; the result has no alpha.

    Compositing happens in RGB so that a grayscale target later gets the
    background's luminance through the same 'L' conversion as the pixels.
    """
    if im.mode not in _ALPHA_MODES and not im.has_transparency_data:
        return im
    # convert() turns palette tRNS and single-colour 'transparency' into alpha.
    rgba = im.convert("RGBA")
    base = Image.new("RGBA", rgba.size, (*background, 255))
    return Image.alpha_composite(base, rgba).convert("RGB")
