"""The publishers' datasets end to end: the built-in digits, MNIST-family files (real ones
from `shared_data`, synthesised ones in tmp_path) and downloads from a loopback mirror.
CIFAR-10 is in test_cifar10.py; folders and uploaded zips are in test_sources.py."""
from __future__ import annotations

import functools
import gzip
import hashlib
import shutil
import socket
import struct
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import require, tree_snapshot

from ssl_core.data import public_datasets
from ssl_core.data.public_datasets import FASHION_CLASSES, IDX_FILES, KMNIST_CLASSES
from ssl_core.data.sources import (
    ArrayData,
    SourceError,
    SourceSpec,
    load_digits,
    load_source,
)

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ------------------------------------------------------------------------------ helpers
def idx_images(images: np.ndarray) -> bytes:
    """IDX3: magic 2051, count, rows, cols (big-endian), then the uint8 pixels."""
    n, h, w = images.shape
    return struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()


def fake_idx_dataset(n_train: int = 20, n_test: int = 10, seed: int = 0):
    """Publisher-format contents {file name without .gz: bytes} plus the arrays they hold."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_x": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_y": rng.integers(0, 10, n_train),
        "test_x": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_y": rng.integers(0, 10, n_test),
    }
    files = {
        "train-images-idx3-ubyte": idx_images(arrays["train_x"]),
        "train-labels-idx1-ubyte": idx_labels(arrays["train_y"]),
        "t10k-images-idx3-ubyte": idx_images(arrays["test_x"]),
        "t10k-labels-idx1-ubyte": idx_labels(arrays["test_y"]),
    }
    assert set(files) == set(IDX_FILES)
    return files, arrays


def write_gz_files(folder: Path, files: dict[str, bytes]) -> dict[str, bytes]:
    """Write each file as <name>.gz; returns {<name>.gz: compressed bytes}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, data in files.items():
        gz = gzip.compress(data, mtime=0)
        (folder / f"{name}.gz").write_bytes(gz)
        out[f"{name}.gz"] = gz
    return out


def check_fake_idx(data: ArrayData, arrays: dict[str, np.ndarray], classes: list[str]) -> None:
    n_train, n_test = len(arrays["train_x"]), len(arrays["test_x"])
    assert data.images.shape == (n_train + n_test, 28, 28, 1)
    assert data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.images[:n_train, ..., 0], arrays["train_x"])
    np.testing.assert_array_equal(data.images[n_train:, ..., 0], arrays["test_x"])
    np.testing.assert_array_equal(data.gt, np.r_[arrays["train_y"], arrays["test_y"]])
    np.testing.assert_array_equal(data.is_test, np.r_[np.zeros(n_train, bool), np.ones(n_test, bool)])
    assert data.class_names == classes
    assert len(data.names) == n_train + n_test and len(set(data.names)) == n_train + n_test

# ------------------------------------------------------------------------------- digits
def test_digits_shape_range_classes_and_fixed_split():
    data = load_source(SourceSpec("digits"))
    assert isinstance(data, ArrayData)
    assert data.images.shape == (1797, 8, 8, 1) and data.images.dtype == np.uint8
    assert data.images.min() == 0 and data.images.max() == 255
    assert data.class_names == [str(d) for d in range(10)]
    assert sorted(set(data.gt.tolist())) == list(range(10))
    assert len(data.names) == 1797 and len(set(data.names)) == 1797
    # The split is fixed: a second load gives exactly the same one.
    again = load_digits()
    np.testing.assert_array_equal(again.is_test, data.is_test)
    np.testing.assert_array_equal(again.gt, data.gt)
    # Stratified 20%: every class contributes ~20% of its images.
    assert abs(data.is_test.mean() - 0.2) < 0.005
    for c in range(10):
        in_class = data.gt == c
        assert abs(data.is_test[in_class].sum() - 0.2 * in_class.sum()) <= 1, c


# ------------------------------------------------------------- MNIST family, real files
def test_mnist_from_the_read_only_shared_folder(shared_data):
    before = tree_snapshot(shared_data)
    data = load_source(SourceSpec("mnist", data_root=str(shared_data)))
    assert isinstance(data, ArrayData)
    assert data.images.shape == (70_000, 28, 28, 1) and data.images.dtype == np.uint8
    assert (~data.is_test).sum() == 60_000 and data.is_test.sum() == 10_000
    assert not data.is_test[:60_000].any() and data.is_test[60_000:].all()
    assert np.bincount(data.gt[data.is_test], minlength=10).tolist() == MNIST_TEST_COUNTS
    assert data.class_names == [str(d) for d in range(10)]
    assert data.images.max() == 255 and data.images.min() == 0
    assert tree_snapshot(shared_data) == before  # nothing created, changed or unpacked there


def test_fashion_mnist_from_the_read_only_shared_folder(shared_data):
    fashion = shared_data / "FashionMNIST" / "raw" / "train-images-idx3-ubyte.gz"
    require(fashion.is_file(), f"the Fashion-MNIST files under {shared_data}")
    before = tree_snapshot(shared_data)
    data = load_source(SourceSpec("fashion-mnist", data_root=str(shared_data), download=False))
    assert data.images.shape == (70_000, 28, 28, 1)
    assert (~data.is_test).sum() == 60_000 and data.is_test.sum() == 10_000
    assert np.bincount(data.gt[data.is_test], minlength=10).tolist() == [1000] * 10
    assert np.bincount(data.gt[~data.is_test], minlength=10).tolist() == [6000] * 10
    assert data.class_names[0] == "T-shirt/top" and data.class_names == FASHION_CLASSES
    assert tree_snapshot(shared_data) == before


def test_unpacked_idx_files_load_like_the_gz_ones(shared_data, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in sorted((shared_data / "MNIST" / "raw").glob("*.gz")):
        with gzip.open(gz, "rb") as src, open(raw / gz.name[:-3], "wb") as dst:
            shutil.copyfileobj(src, dst)
    assert not list(raw.glob("*.gz"))
    unpacked = load_source(SourceSpec("mnist", data_root=str(tmp_path), download=False))
    packed = load_source(SourceSpec("mnist", data_root=str(shared_data), download=False))
    np.testing.assert_array_equal(unpacked.images, packed.images)
    np.testing.assert_array_equal(unpacked.gt, packed.gt)
    np.testing.assert_array_equal(unpacked.is_test, packed.is_test)


# ------------------------------------------------------- MNIST family, synthesised files
def test_kmnist_publisher_files_load(tmp_path):
    files, arrays = fake_idx_dataset(20, 10)
    write_gz_files(tmp_path / "KMNIST" / "raw", files)
    data = load_source(SourceSpec("kmnist", data_root=str(tmp_path), download=False))
    check_fake_idx(data, arrays, KMNIST_CLASSES)


@pytest.mark.parametrize("name, damage", [
    ("train-images-idx3-ubyte", "wrong magic"),
    ("t10k-labels-idx1-ubyte", "truncated payload"),
    ("t10k-images-idx3-ubyte", "truncated gzip"),
    ("train-labels-idx1-ubyte", "garbage deflate data"),
])
def test_corrupt_idx_file_is_a_source_error_naming_the_file(tmp_path, name, damage):
    files, _ = fake_idx_dataset(20, 10)
    if damage == "wrong magic":
        files[name] = struct.pack(">I", 2049) + files[name][4:]
    elif damage == "truncated payload":
        files[name] = files[name][:-3]
    raw = tmp_path / "MNIST" / "raw"
    gz = bytearray(write_gz_files(raw, files)[f"{name}.gz"])
    if damage == "truncated gzip":
        (raw / f"{name}.gz").write_bytes(bytes(gz[:-40]))
    elif damage == "garbage deflate data":
        for i in range(12, 40):  # past the 10-byte gzip header
            gz[i] ^= 0xA5
        (raw / f"{name}.gz").write_bytes(bytes(gz))
    with pytest.raises(SourceError) as err:
        load_source(SourceSpec("mnist", data_root=str(tmp_path), download=False))
    assert str(raw / f"{name}.gz") in str(err.value)


def test_missing_files_without_download_name_the_folder(tmp_path):
    with pytest.raises(SourceError) as err:
        load_source(SourceSpec("kmnist", data_root=str(tmp_path), download=False))
    msg = str(err.value)
    assert str(tmp_path / "KMNIST" / "raw") in msg
    assert "train-images-idx3-ubyte" in msg
    assert list(tmp_path.iterdir()) == []  # download=False creates nothing


# ----------------------------------------------------------------------------- downloads
class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def kmnist_mirror(tmp_path, monkeypatch):
    """Synthesised KMNIST .gz files served from a loopback HTTP server; torchvision's KMNIST
    mirror list and MD5s point at it. Yields (arrays, {file: gz bytes}, resources)."""
    import torchvision.datasets as tvd

    files, arrays = fake_idx_dataset(20, 10, seed=5)
    served = write_gz_files(tmp_path / "mirror", files)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path / "mirror"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    resources = [(name, hashlib.md5(blob).hexdigest()) for name, blob in served.items()]
    monkeypatch.setattr(tvd.KMNIST, "mirrors", [f"http://127.0.0.1:{server.server_address[1]}/"])
    monkeypatch.setattr(tvd.KMNIST, "resources", resources)
    # Keep a broken network from stalling the suite: every download gets a short timeout.
    real = public_datasets.download_file
    monkeypatch.setattr(public_datasets, "download_file",
                        lambda *a, **kw: real(*a, **{**kw, "timeout_s": 5.0}))
    try:
        yield arrays, served, resources
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_download_from_mirror_then_load(kmnist_mirror, tmp_path):
    arrays, served, _ = kmnist_mirror
    root = tmp_path / "data-root"
    root.mkdir()
    calls: list[tuple[float, str]] = []
    data = load_source(SourceSpec("kmnist", data_root=str(root), download=True),
                       progress=lambda frac, msg: calls.append((frac, msg)))
    check_fake_idx(data, arrays, KMNIST_CLASSES)
    raw = root / "KMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(served)
    for name, blob in served.items():
        assert (raw / name).read_bytes() == blob
    fracs = [f for f, _ in calls]
    assert any("downloading" in msg for _, msg in calls)
    assert fracs == sorted(fracs) and len(set(fracs)) > 4  # rising
    assert 0.0 <= fracs[0] and fracs[-1] <= 1.0
    # Now on disk: loads again with downloads off.
    again = load_source(SourceSpec("kmnist", data_root=str(root), download=False))
    np.testing.assert_array_equal(again.images, data.images)


def test_download_with_wrong_md5_leaves_no_file(kmnist_mirror, tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    _, _, resources = kmnist_mirror
    bad = "t10k-images-idx3-ubyte.gz"
    monkeypatch.setattr(tvd.KMNIST, "resources",
                        [(n, "0" * 32 if n == bad else md5) for n, md5 in resources])
    root = tmp_path / "data-root"
    with pytest.raises(SourceError) as err:
        load_source(SourceSpec("kmnist", data_root=str(root), download=True))
    assert "MD5" in str(err.value) and bad in str(err.value)
    raw = root / "KMNIST" / "raw"
    names = [p.name for p in raw.iterdir()]
    assert bad not in names
    assert not [n for n in names if n.endswith(".part")]


def test_offline_download_says_where_to_put_the_files(kmnist_mirror, tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(tvd.KMNIST, "mirrors", [f"http://127.0.0.1:{port}/"])
    root = tmp_path / "data-root"
    with pytest.raises(SourceError) as err:
        load_source(SourceSpec("kmnist", data_root=str(root), download=True))
    msg = str(err.value)
    assert "could not download" in msg and "offline" in msg
    assert str(root / "KMNIST" / "raw") in msg
    assert not list((root / "KMNIST" / "raw").glob("*"))
