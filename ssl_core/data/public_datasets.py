"""MNIST, Fashion-MNIST, KMNIST and CIFAR-10 read straight from the publishers' files.

The files are looked for under a data root laid out the way torchvision lays it out
(`<root>/MNIST/raw/train-images-idx3-ubyte.gz`, `<root>/cifar-10-batches-py/...`), so a folder
that torchvision already downloaded, or a read-only copy such as ../shared/data, works offline.
We parse the formats ourselves instead of calling torchvision's dataset classes because those
want to unpack next to the files (impossible in a read-only root) and CIFAR's python batches are
pickles: here they go through an unpickler that only admits numpy arrays. When the files are
missing we download them from the mirrors torchvision lists, verify their MD5, and report
progress; offline, the error says exactly which files to put where.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssl_core.progress import Progress, no_progress, scaled

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class DatasetUnavailable(RuntimeError):
    """The dataset is neither on disk nor downloadable; the message says how to fix it."""


@dataclass(frozen=True)
class PublicDataset:
    key: str                 # our source name, e.g. 'fashion-mnist'
    folder: str              # torchvision's folder name under the data root
    torchvision_class: str   # where the download mirrors and MD5s are listed
    classes: list[str]


IDX_DATASETS = {
    "mnist": PublicDataset("mnist", "MNIST", "MNIST", MNIST_CLASSES),
    "fashion-mnist": PublicDataset("fashion-mnist", "FashionMNIST", "FashionMNIST", FASHION_CLASSES),
    "kmnist": PublicDataset("kmnist", "KMNIST", "KMNIST", KMNIST_CLASSES),
}


@dataclass
class LoadedDataset:
    images: np.ndarray   # (N, H, W, C) uint8: training images first, then the official test set
    labels: np.ndarray   # (N,) int64 ground truth
    is_test: np.ndarray  # (N,) bool: the publisher's test split
    classes: list[str]


# --------------------------------------------------------------------------- IDX (MNIST family)
def parse_idx(data: bytes, expect_images: bool) -> np.ndarray:
    """IDX: big-endian magic (2051 images / 2049 labels), counts, then uint8 payload."""
    magic = int.from_bytes(data[0:4], "big")
    if expect_images:
        if magic != 2051 or len(data) < 16:
            raise ValueError(f"not an IDX image file (magic {magic})")
        n, h, w = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
        if len(data) != 16 + n * h * w:
            raise ValueError(f"IDX image file has {len(data) - 16} bytes, header says {n * h * w}")
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, h, w, 1)  # (n, h, w, 1)
    if magic != 2049 or len(data) < 8:
        raise ValueError(f"not an IDX label file (magic {magic})")
    n = int.from_bytes(data[4:8], "big")
    if len(data) != 8 + n:
        raise ValueError(f"IDX label file has {len(data) - 8} bytes, header says {n}")
    return np.frombuffer(data, np.uint8, offset=8).astype(np.int64)  # (n,)


def _find_idx(root: Path, ds: PublicDataset, name: str) -> Path | None:
    for folder in (root / ds.folder / "raw", root / ds.folder, root / "raw", root):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_maybe_gz(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def load_idx_dataset(key: str, root: str | Path, download: bool = True,
                     progress: Progress | None = None) -> LoadedDataset:
    ds = IDX_DATASETS[key]
    root = Path(root).expanduser()
    paths = {name: _find_idx(root, ds, name) for name in IDX_FILES}
    missing = [n for n, p in paths.items() if p is None]
    if missing:
        if not download:
            raise DatasetUnavailable(_missing_message(ds.key, root / ds.folder / "raw", missing))
        _download_idx(ds, root, missing, progress)
        paths = {name: _find_idx(root, ds, name) for name in IDX_FILES}
    parts = {}
    for i, (name, path) in enumerate(paths.items()):
        if progress:
            progress(0.5 + 0.1 * i, f"reading {path.name}")
        try:
            parts[name] = parse_idx(_read_maybe_gz(path), expect_images="images" in name)
        except (OSError, ValueError, EOFError, zlib.error) as err:
            raise DatasetUnavailable(f"{path} is damaged ({err}); delete it to download it again, "
                                     f"or replace it with the publisher's file") from err
    train_x, train_y, test_x, test_y = (parts[n] for n in IDX_FILES)
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise DatasetUnavailable(f"{ds.key}: image and label counts differ under {root}")
    return LoadedDataset(images=np.concatenate([train_x, test_x]),
                         labels=np.concatenate([train_y, test_y]),
                         is_test=np.r_[np.zeros(len(train_x), bool), np.ones(len(test_x), bool)],
                         classes=ds.classes)


def _download_idx(ds: PublicDataset, root: Path, missing: list[str], progress: Progress | None):
    import torchvision.datasets as tvd  # only here: importing torchvision costs seconds

    cls = getattr(tvd, ds.torchvision_class)
    md5s = dict(cls.resources)
    raw = root / ds.folder / "raw"
    for i, name in enumerate(missing):
        file = f"{name}.gz"
        urls = [mirror + file for mirror in cls.mirrors]
        sub = scaled(progress or no_progress, 0.5 * i / len(missing), 0.5 * (i + 1) / len(missing))
        download_file(urls, raw / file, md5s.get(file), sub, dataset=ds.key)


# --------------------------------------------------------------------------------- CIFAR-10
class _ArraysOnlyUnpickler(pickle.Unpickler):
    """CIFAR's python batches are pickled dicts of lists and numpy arrays. Admit exactly the
    globals needed to rebuild a numpy array; anything else (os.system, ...) is refused."""
    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name} from a data file")


def load_cifar_batch(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One python-format batch -> images (n, 32, 32, 3) uint8, labels (n,) int64."""
    batch = _ArraysOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError("not a CIFAR-10 batch")
    x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), np.asarray(batch[b"labels"], dtype=np.int64)


def load_cifar_binary_batch(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One binary-format batch: records of 1 label byte + 3072 pixel bytes (R, G, B planes)."""
    if len(data) % 3073:
        raise ValueError("CIFAR-10 binary batch has a partial record")
    rec = np.frombuffer(data, np.uint8).reshape(-1, 3073)
    x = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (n, 32, 32, 3)
    return np.ascontiguousarray(x), rec[:, 0].astype(np.int64)


_CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def _cifar_members(root: Path) -> dict[str, tuple[bytes, bool]] | None:
    """{batch name: (bytes, is_binary_format)} from whichever layout is present."""
    binary = root / "cifar-10-batches-bin"
    if all((binary / f"{b}.bin").is_file() for b in _CIFAR_TRAIN + ["test_batch"]):
        return {b: ((binary / f"{b}.bin").read_bytes(), True) for b in _CIFAR_TRAIN + ["test_batch"]}
    folder = root / "cifar-10-batches-py"
    if all((folder / b).is_file() for b in _CIFAR_TRAIN + ["test_batch"]):
        return {b: ((folder / b).read_bytes(), False) for b in _CIFAR_TRAIN + ["test_batch"]}
    tarball = root / "cifar-10-python.tar.gz"
    if tarball.is_file():
        out = {}
        try:
            with tarfile.open(tarball, "r:gz") as tar:  # read members in memory: nothing extracted
                for member in tar.getmembers():
                    base = Path(member.name).name
                    if member.isfile() and base in _CIFAR_TRAIN + ["test_batch"]:
                        out[base] = (tar.extractfile(member).read(), False)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            raise DatasetUnavailable(f"{tarball} is damaged ({err}); delete it to download it "
                                     f"again, or replace it with the publisher's file") from err
        return out if len(out) == 6 else None
    return None


def load_cifar10(root: str | Path, download: bool = True,
                 progress: Progress | None = None) -> LoadedDataset:
    root = Path(root).expanduser()
    members = _cifar_members(root)
    if members is None:
        if not download:
            raise DatasetUnavailable(_missing_message(
                "cifar10", root, ["cifar-10-python.tar.gz (or cifar-10-batches-py/)"]))
        import torchvision.datasets as tvd

        cls = tvd.CIFAR10
        download_file([cls.url], root / cls.filename, cls.tgz_md5, scaled(progress or no_progress, 0, 0.5),
                      dataset="cifar10")
        members = _cifar_members(root)
        if members is None:
            raise DatasetUnavailable(f"the downloaded {cls.filename} does not hold CIFAR-10 batches")
    xs, ys = [], []
    for name in _CIFAR_TRAIN + ["test_batch"]:
        data, is_binary = members[name]
        try:
            x, y = (load_cifar_binary_batch if is_binary else load_cifar_batch)(data)
        except (pickle.UnpicklingError, ValueError, EOFError, TypeError) as err:
            raise DatasetUnavailable(f"CIFAR-10 batch {name} under {root} is unusable: {err}") from err
        xs.append(x)
        ys.append(y)
    n_test = len(xs[-1])
    images, labels = np.concatenate(xs), np.concatenate(ys)
    is_test = np.zeros(len(images), bool)
    is_test[-n_test:] = True
    return LoadedDataset(images, labels, is_test, CIFAR10_CLASSES)


# -------------------------------------------------------------------------------- downloads
def download_file(urls: list[str], dest: Path, md5: str | None, progress: Progress | None,
                  dataset: str = "dataset", timeout_s: float = 30.0) -> Path:
    """Fetch the first URL that works into `dest` (via a temporary file, so a broken download
    never leaves a half file behind), checking the MD5 when one is known."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DatasetUnavailable(f"cannot write to the data root {dest.parent}: {err.strerror}. "
                                 f"Choose a writable data root.") from err
    errors = []
    for url in urls:
        tmp = dest.with_name(dest.name + ".part")
        try:
            digest = hashlib.md5()
            with urllib.request.urlopen(url, timeout=timeout_s) as resp, open(tmp, "wb") as out:
                total = int(resp.headers.get("Content-Length") or 0)
                done = 0
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        frac = done / total if total else 0.0
                        progress(frac, f"downloading {dest.name}: {done / 2**20:.1f} MB"
                                       + (f" of {total / 2**20:.1f} MB" if total else ""))
            if md5 and digest.hexdigest() != md5:
                raise ValueError(f"MD5 mismatch (got {digest.hexdigest()}, expected {md5})")
            tmp.replace(dest)
            return dest
        except (OSError, ValueError, urllib.error.URLError) as err:
            errors.append(f"{url}: {getattr(err, 'reason', err)}")
            tmp.unlink(missing_ok=True)
    raise DatasetUnavailable(
        f"could not download {dest.name} for {dataset} (are you offline?). Tried: "
        + "; ".join(errors) + f". Put the publisher's file at {dest} and import again.")


def _missing_message(key: str, where: Path, missing: list[str]) -> str:
    return (f"{key} is not under {where} (missing: {', '.join(missing)}) and downloading is off. "
            f"Copy the publisher's files there, e.g. from ../shared/data, or allow the download.")


