"""images.npy on disk: writing a new version of it, and reading it in batches, in bounded memory.

The pixels of a project are one `(N, H, W, C)` uint8 .npy file (100,000 128x128 colour photos:
4.9 GB). An import writes a new file beside it (the old rows, then the new ones decoded straight
into place) that project/files.py then renames over the old one. The new file is created
exclusively under a name of its own (never opening, so never truncating, a file another import
or a reader has mapped), and images.npy is never written in place: a reader holding a memory
map of an older version keeps its bytes, since a rename leaves the old inode alive (truncating
a mapped file is what kills its readers with SIGBUS). Both directions go page by
page: written pages are flushed and dropped from this process's mapping as soon as a chunk is
done, and full passes (feature extraction, the provisional map) read batches with plain file
reads instead of a memory map, so neither holds the whole collection in memory.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ssl_core.project.files import release_rows as release

CHUNK_BYTES = 64 << 20          # rows are copied / released this many bytes at a time
Filler = Callable[[np.ndarray], np.ndarray]   # writes rows of a (n, H, W, C) view, returns keep


def write_pixel_file(tmp: Path, old: np.ndarray, n_new: int, shape: tuple[int, int, int],
                     fill: Filler) -> np.ndarray:
    """Write `old` (n_old, H, W, C) and then `n_new` new rows into a new .npy file at `tmp`.
    `fill(view)` writes the new rows into `view` (n_new, H, W, C) and returns which of them it
    kept ((n_new,) bool, False for an image that failed to decode); kept rows are then moved
    together, in order, right after the old ones. Returns that mask. The disk space is reserved
    first: writing into a memory map on a full disk kills the process with SIGBUS, where
    posix_fallocate raises ENOSPC (caught by the caller as a full disk)."""
    n_old = len(old)
    with open(tmp, "xb"):            # exclusive: FileExistsError rather than reuse anyone's file
        pass
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n_old + n_new, *shape))
    with open(tmp, "r+b") as fh:
        os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
    rows = _rows_per_chunk(shape)
    for start in range(0, n_old, rows):
        stop = min(start + rows, n_old)          # never past the old rows into the new ones
        out[start:stop] = old[start:stop]
        release(out, start, stop)
    keep = np.asarray(fill(out[n_old:]), bool)                                  # (n_new,)
    kept = np.flatnonzero(keep)
    if len(kept) < n_new:                        # close the gaps of skipped images, in order
        for j, i in enumerate(kept):
            if i != j:
                out[n_old + j] = out[n_old + i]
    out.flush()
    release(out, 0, len(out))
    del out
    return keep


def pixel_file_shape(path: Path) -> tuple[int, ...]:
    """The (N, H, W, C) its header declares, checked against the file's size: a file shorter
    than its header says reads as the rows it really holds (as np.load would fail to map)."""
    with open(path, "rb") as fh:
        shape, offset, _ = _read_header(fh, path)
        size = os.fstat(fh.fileno()).st_size
    row = int(np.prod(shape[1:]))
    return (min(shape[0], (size - offset) // row) if row else shape[0], *shape[1:])


def _read_header(fh, path: Path) -> tuple[tuple[int, ...], int, np.dtype]:
    version = np.lib.format.read_magic(fh)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, _, dtype = read_header(fh)
    if dtype != np.uint8 or len(shape) != 4:
        raise ValueError(f"{path} does not hold (N, H, W, C) uint8 images")
    return shape, fh.tell(), dtype


def iter_pixel_batches(path: Path, n: int, batch: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, (B, H, W, C) uint8) for the first `n` rows of the .npy file at `path`, read with
    plain file reads (no memory map stays resident after a full pass)."""
    with open(path, "rb") as fh:
        shape, offset, _ = _read_header(fh, path)
        row = int(np.prod(shape[1:]))
        for start in range(0, min(n, shape[0]), batch):
            count = min(batch, n - start)
            data = os.pread(fh.fileno(), count * row, offset + start * row)
            yield start, np.frombuffer(data, np.uint8).reshape(count, *shape[1:])


def _rows_per_chunk(shape: tuple[int, ...]) -> int:
    return max(1, CHUNK_BYTES // max(1, int(np.prod(shape))))
