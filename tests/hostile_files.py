"""Hostile and odd input files, generated in memory for tests/test_hostile_inputs.py.

Each case is the bytes of one file and what the importer must make of it: imported (with the
colour its centre pixel must come out as), or skipped with a reason containing given words.
Nothing here is a committed binary: every file is built with Pillow, zlib or zipfile.
"""
from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass

import numpy as np
from PIL import Image

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
GIANT = 20_000  # the brief's 20,000 x 20,000 image: 400 Mpx, 1.2 GB as RGB once decoded
TRIED: Counter = Counter()  # (what, outcome) -> count, over every hostile-input test of the session


def tally(what: str, report) -> None:
    """Count an import report's outcomes under `what`."""
    TRIED[(what, "imported")] += report.imported
    TRIED[(what, "skipped")] += len(report.skipped)


def print_tried() -> None:
    """The inputs tried so far and their outcomes (shown with pytest -s)."""
    print("\nhostile inputs tried so far (what -> outcome: count):")
    for (what, outcome), n in sorted(TRIED.items()):
        print(f"  {what:<36} {outcome:<9} {n:>7,}")


@dataclass(frozen=True)
class Case:
    data: bytes
    colour: tuple[int, int, int] | None = None   # imported: pixel (H/2, 3W/4), RGB
    reason: tuple[str, ...] = ()                  # skipped: the reason contains one of these
    left: tuple[int, int, int] | None = None      # imported, when it differs: pixel (H/2, W/4)

    @property
    def good(self) -> bool:
        return self.colour is not None


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def noise(size: int = 64, seed: int = 0) -> Image.Image:
    """Random RGB pixels: compresses badly, so a cut file misses most of its pixel data."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), np.uint8))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def giant_png(width: int = GIANT, height: int = GIANT) -> bytes:
    """A complete, valid 1-bit PNG of width x height (about 48 KB: every row is black).
    Built row by row with zlib, so making it never holds the pixels in memory either."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    row = b"\x00" + bytes((width + 7) // 8)                         # filter byte + packed bits
    packer = zlib.compressobj(9)
    body = b"".join([packer.compress(row) for _ in range(height)] + [packer.flush()])
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body)
            + _png_chunk(b"IEND", b""))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small valid JPEG whose SOF0 header is rewritten to claim width x height."""
    data = bytearray(encode(Image.new("RGB", (16, 16), RED), "JPEG"))
    at = data.index(b"\xff\xc0")                    # SOF0: marker, length(2), precision(1), H, W
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    """A small valid GIF whose logical screen and frame claim width x height."""
    data = bytearray(encode(Image.new("P", (4, 4)), "GIF"))
    struct.pack_into("<HH", data, 6, width, height)  # logical screen descriptor
    at = data.index(b"\x2c")                         # image descriptor: ',' x y w h
    struct.pack_into("<HH", data, at + 5, width, height)
    return bytes(data)


def animated_gif() -> bytes:
    """Three frames (red, green, blue): the importer keeps the first."""
    frames = [Image.new("RGB", (32, 32), c).convert("P") for c in (RED, GREEN, BLUE)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)


def palette_with_transparency(fmt: str) -> bytes:
    """A palette image whose index 0 is transparent (left half) and index 1 blue (right half):
    the transparent half is composited onto white."""
    im = Image.new("P", (32, 32), 0)
    im.putpalette([0, 0, 0] + list(BLUE) + [0, 0, 0] * 254)
    im.paste(1, (16, 0, 32, 32))
    return encode(im, fmt, transparency=0)


def image_corpus() -> dict[str, Case]:
    """Every odd and broken single file of the brief (and a few more), by file name."""
    png, jpeg, gif = (encode(noise(), "PNG"), encode(noise(), "JPEG", quality=90),
                      encode(noise().convert("P"), "GIF"))
    sixteen = np.full((32, 32), 32896, np.uint16)  # 32896 / 65535 * 255 = 128
    return {
        # odd but valid: imported
        "plain.png": Case(encode(Image.new("RGB", (32, 32), GREEN), "PNG"), GREEN),
        "one_by_one.png": Case(encode(Image.new("RGB", (1, 1), RED), "PNG"), RED),
        "gray16.png": Case(encode(Image.fromarray(sixteen), "PNG"), (128, 128, 128)),
        "cmyk.jpg": Case(encode(Image.new("CMYK", (32, 32), (255, 0, 0, 0)), "JPEG", quality=95),
                         (0, 255, 255)),
        "animated.gif": Case(animated_gif(), RED),
        "palette_transparent.png": Case(palette_with_transparency("PNG"), BLUE, left=WHITE),
        "palette_transparent.gif": Case(palette_with_transparency("GIF"), BLUE, left=WHITE),
        # broken or hostile: skipped with a reason
        "truncated.png": Case(png[: len(png) // 2], reason=("truncated", "corrupt")),
        "truncated.jpg": Case(jpeg[: len(jpeg) // 2], reason=("truncated", "corrupt")),
        "truncated.gif": Case(gif[: len(gif) // 2], reason=("truncated", "corrupt")),
        "zero_bytes.png": Case(b"", reason=("empty file",)),
        "text_renamed.png": Case(b"My holiday photos, please label them.\n" * 4,
                                 reason=("not an image",)),
        "script_renamed.jpg": Case(b"<html><script>alert(1)</script></html>",
                                   reason=("not an image",)),
        "postscript_renamed.png": Case(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n",
                                       reason=("not an image",)),  # Ghostscript is never run
        "giant_20000x20000.png": Case(giant_png(), reason=("image too large",)),
        "claims_20000x20000.jpg": Case(jpeg_claiming(GIANT, GIANT), reason=("image too large",)),
        "claims_20000x20000.gif": Case(gif_claiming(GIANT, GIANT), reason=("image too large",)),
    }


def make_zip(entries, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """entries: (name or ZipInfo, bytes) pairs, written in order (duplicates allowed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()
