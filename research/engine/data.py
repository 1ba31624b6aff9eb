"""Dataset loading and the benchmark label protocol."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

DATA_ROOT = Path("/work/shared/data")


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        buf = f.read()
    magic = int.from_bytes(buf[0:4], "big")
    if magic == 2051:
        n, h, w = (int.from_bytes(buf[4 + 4 * i: 8 + 4 * i], "big") for i in range(3))
        return np.frombuffer(buf, dtype=np.uint8, offset=16).reshape(n, h, w)
    if magic == 2049:
        n = int.from_bytes(buf[4:8], "big")
        return np.frombuffer(buf, dtype=np.uint8, offset=8).reshape(n)
    raise ValueError(f"{path}: unknown IDX magic {magic}")


def load_idx_dataset(name: str = "MNIST"):
    """Returns (Xtr, ytr, Xte, yte); X is (N, 28, 28, 1) uint8, y int64."""
    raw = DATA_ROOT / name / "raw"
    xtr = _read_idx(raw / "train-images-idx3-ubyte.gz")[..., None]
    ytr = _read_idx(raw / "train-labels-idx1-ubyte.gz").astype(np.int64)
    xte = _read_idx(raw / "t10k-images-idx3-ubyte.gz")[..., None]
    yte = _read_idx(raw / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return xtr, ytr, xte, yte


def load_digits_dataset():
    """sklearn digits, (N, 8, 8, 1) uint8 in 0..16, fixed stratified 20% test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(np.uint8)[..., None]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return xtr, ytr, xte, yte


def load_dataset(name: str):
    if name.lower() == "digits":
        return load_digits_dataset()
    return load_idx_dataset({"mnist": "MNIST", "fashion": "FashionMNIST",
                             "fashionmnist": "FashionMNIST"}[name.lower()])


def sample_labels(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of `per_class` random examples of each class (protocol: seed K)."""
    rng = np.random.RandomState(seed)
    idx = [rng.choice(np.flatnonzero(y == c), per_class, replace=False)
           for c in np.unique(y)]
    return np.sort(np.concatenate(idx))


def semi_supervised_targets(y: np.ndarray, labeled_idx: np.ndarray) -> np.ndarray:
    """Vector of -1 with the true label at labeled_idx."""
    t = np.full(len(y), -1, dtype=np.int64)
    t[labeled_idx] = y[labeled_idx]
    return t
