"""CIFAR-10 from the publisher's files: the python pickles, the binary batches and the
.tar.gz read without extracting, built synthetically in tmp_path. Checks the channel-plane
to HWC pixel order, the train/test split and the class names, that damaged or missing files
are a SourceError naming the file, and that a malicious pickle in a batch is refused without
running its payload. The other publishers' datasets are in test_public_datasets.py."""
from __future__ import annotations

import builtins
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from ssl_core.data.public_datasets import CIFAR10_CLASSES
from ssl_core.data.sources import ArrayData, SourceError, SourceSpec, load_source


def fake_cifar(n_per_batch=(2, 3, 1, 2, 2), n_test=3, seed=1):
    """{batch name: (data (n, 3072) uint8, labels list)} for the five training batches + test."""
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {name: (rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist())
            for name, n in zip(names, list(n_per_batch) + [n_test])}


def cifar_pickle(name: str, data: np.ndarray, labels: list[int]) -> bytes:
    return pickle.dumps({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [f"{name}_{i}.png".encode() for i in range(len(labels))]})


def expected_hwc(data: np.ndarray) -> np.ndarray:
    """Pixel (y, x) of channel c sits at byte c*1024 + y*32 + x of a row (R, G, B planes)."""
    n = len(data)
    out = np.empty((n, 32, 32, 3), np.uint8)
    for c in range(3):
        for y in range(32):
            out[:, y, :, c] = data[:, c * 1024 + y * 32: c * 1024 + y * 32 + 32]
    return out


def check_cifar(data: ArrayData, batches) -> None:
    order = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    raw = np.concatenate([batches[b][0] for b in order])
    labels = sum((batches[b][1] for b in order), [])
    n_test = len(batches["test_batch"][1])
    assert data.images.shape == (len(raw), 32, 32, 3) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.images, expected_hwc(raw))
    np.testing.assert_array_equal(data.gt, labels)
    assert data.is_test.tolist() == [False] * (len(raw) - n_test) + [True] * n_test
    assert data.class_names == CIFAR10_CLASSES


def planes_batch():
    """Image k: R plane 10+k, G plane 100+k, B plane 200+k, and R at (y=1, x=2) = 255."""
    data = np.zeros((2, 3072), np.uint8)
    for k in range(2):
        data[k, :1024], data[k, 1024:2048], data[k, 2048:] = 10 + k, 100 + k, 200 + k
        data[k, 1 * 32 + 2] = 255
    return data


def test_cifar10_python_batches(tmp_path):
    batches = fake_cifar()
    batches["data_batch_1"] = (planes_batch(), [3, 7])
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, (data, labels) in batches.items():
        (folder / name).write_bytes(cifar_pickle(name, data, labels))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [c.encode() for c in CIFAR10_CLASSES]}))
    data = load_source(SourceSpec("cifar10", data_root=str(tmp_path), download=False))
    check_cifar(data, batches)
    first = data.images[0]
    assert first[1, 2].tolist() == [255, 100, 200]  # row 1, column 2 -- not transposed
    assert first[2, 1].tolist() == [10, 100, 200]
    assert (data.images[1, ..., 1] == 101).all() and (data.images[1, ..., 2] == 201).all()
    assert data.gt[:2].tolist() == [3, 7]


def test_cifar10_binary_batches(tmp_path):
    batches = fake_cifar(seed=2)
    batches["data_batch_1"] = (planes_batch(), [9, 0])
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name, (data, labels) in batches.items():
        records = np.concatenate([np.array(labels, np.uint8)[:, None], data], axis=1)  # (n, 3073)
        (folder / f"{name}.bin").write_bytes(records.tobytes())
    data = load_source(SourceSpec("cifar10", data_root=str(tmp_path), download=False))
    check_cifar(data, batches)
    assert data.images[0, 1, 2].tolist() == [255, 100, 200]
    assert data.gt[:2].tolist() == [9, 0]


def write_cifar_tarball(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def test_cifar10_tarball_is_read_without_extracting(tmp_path):
    batches = fake_cifar(seed=3)
    members = {f"cifar-10-batches-py/{name}": cifar_pickle(name, data, labels)
               for name, (data, labels) in batches.items()}
    members["cifar-10-batches-py/readme.html"] = b"<html></html>"
    write_cifar_tarball(tmp_path / "cifar-10-python.tar.gz", members)
    data = load_source(SourceSpec("cifar10", data_root=str(tmp_path), download=False))
    check_cifar(data, batches)
    assert [p.name for p in tmp_path.iterdir()] == ["cifar-10-python.tar.gz"]


@pytest.mark.parametrize("blob", [b"\x1f\x8b" + bytes(range(200)), b"this is not a tarball"])
def test_damaged_cifar10_tarball_is_a_source_error(tmp_path, blob):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(blob)
    with pytest.raises(SourceError) as err:
        load_source(SourceSpec("cifar10", data_root=str(tmp_path), download=False))
    assert "cifar-10-python.tar.gz" in str(err.value)


def test_cifar10_missing_without_download(tmp_path):
    with pytest.raises(SourceError) as err:
        load_source(SourceSpec("cifar10", data_root=str(tmp_path), download=False))
    assert str(tmp_path) in str(err.value) and "cifar-10-python.tar.gz" in str(err.value)


class _Payload:
    """Unpickling this runs `func(*args)`: the classic pickle code-execution trick."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _system_payload(marker: Path):
    return _Payload(os.system, (f"touch '{marker}'",))


def _open_payload(marker: Path):
    return _Payload(builtins.open, (str(marker), "w"))


@pytest.mark.parametrize("make_payload", [_system_payload, _open_payload])
def test_malicious_cifar_pickle_is_refused_without_side_effect(tmp_path, make_payload):
    # The payload is live: a plain pickle.loads would run it.
    probe = tmp_path / "probe-marker"
    obj = pickle.loads(pickle.dumps(make_payload(probe)))
    if hasattr(obj, "close"):
        obj.close()
    assert probe.exists()

    marker = tmp_path / "pwned-marker"
    batches = fake_cifar(seed=4)
    folder = tmp_path / "root" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, (data, labels) in batches.items():
        (folder / name).write_bytes(cifar_pickle(name, data, labels))
    evil = {b"data": make_payload(marker), b"labels": [1, 2]}
    (folder / "data_batch_3").write_bytes(pickle.dumps(evil))
    with pytest.raises(SourceError) as err:
        load_source(SourceSpec("cifar10", data_root=str(tmp_path / "root"), download=False))
    assert "data_batch_3" in str(err.value)
    assert not marker.exists()
