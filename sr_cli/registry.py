"""The model registry: the one place that knows every model srtool can run.

Each ``ModelSpec`` says how to build the LR→SR module, the scales it supports, the colour space it works in
(``rgb``, or ``y`` with chroma upscaled by bicubic), the overlap the tiled engine needs (its receptive-field
radius in LR pixels), the paper's parameter counts and where its shipped weights live.
"""

from __future__ import annotations

import json

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from torch import nn

from sr_cli import models as m
from sr_cli.errors import UsageError
from sr_cli.interp import Bicubic, Interpolate, PreUpsampled

SCALES = (2, 3, 4)


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of srtool needs to know about one model name."""

    name: str
    summary: str
    builder: Callable[..., nn.Module]
    space: str  # "rgb" | "y"
    overlap_fn: Callable[..., int]  # receptive-field radius in LR pixels, from the build options
    scales: tuple[int, ...] = SCALES
    learned: bool = True
    paper_params: dict[int, int] = field(default_factory=dict)
    paper_params_tolerance: float = 0.0  # relative; 0 = exact figure in the paper
    multi_scale: bool = False  # one weights file serves every scale (MDSR)
    discriminator: Callable[[], nn.Module] | None = None
    options: dict[str, Any] = field(default_factory=dict)  # default build options

    def check_scale(self, scale: int) -> None:
        """Raise a UsageError naming the supported scales when ``scale`` is not one of them."""
        if scale not in self.scales:
            scales = ", ".join(f"x{s}" for s in self.scales)
            raise UsageError(f"{self.name} does not support x{scale}: it supports {scales}")

    def build(self, scale: int, **options: Any) -> nn.Module:
        """A fresh LR→SR module at ``scale`` (random weights for learned models: load weights before use)."""
        self.check_scale(scale)
        return self.builder(scale, **{**self.options, **options})

    def overlap(self, **options: Any) -> int:
        """The tile overlap (LR pixels) that makes tiled output equal untiled output."""
        return self.overlap_fn(**{**self.options, **options})

    @property
    def channels(self) -> int:
        """Image channels the module takes: 3 for RGB models, 1 for Y models."""
        return 1 if self.space == "y" else 3

    def weights_name(self, scale: int) -> str:
        """File name of the shipped weights for ``scale``."""
        return f"{self.name}.safetensors" if self.multi_scale else f"{self.name}_x{scale}.safetensors"


def _interp(mode: str) -> Callable[..., nn.Module]:
    def build(scale: int, **_: Any) -> nn.Module:
        return Bicubic(scale) if mode == "bicubic" else Interpolate(scale, mode)

    return build


def _srcnn(scale: int, **_: Any) -> nn.Module:
    return PreUpsampled(m.SRCNN(num_channels=1), scale)


def _srresnet(scale: int, variant: str = "paper", **options: Any) -> nn.Module:
    """The paper's SRResNet, or with ``variant="basicsr"`` BasicSR's MSRResNet (no batch norm; what its
    checkpoints hold)."""
    if variant == "basicsr":
        return m.MSRResNet(scale, **options)
    if variant != "paper":
        raise UsageError(f"unknown srresnet variant {variant!r}: paper or basicsr")
    return m.SRResNet(scale, **options)


def _mdsr(scale: int, n_blocks: int = 80, n_feats: int = 64) -> nn.Module:
    net = m.MDSR(n_blocks=n_blocks, n_feats=n_feats, scales=SCALES)
    net.set_scale(scale)
    return net


def _csd(scale: int, width: float = 0.25, n_blocks: int = 32, n_feats: int = 256, sliced: bool = True) -> nn.Module:
    """The CSD network at ``width``: ``sliced`` holds only the width's channels (an exported student),
    otherwise all ``n_feats`` channels with the width switched on (a teacher checkpoint run narrower)."""
    if not 0 < width <= 1:
        raise UsageError(f"--width must be in (0, 1], got {width}")
    if sliced:
        return m.CSDEDSR(scale, n_blocks=n_blocks, n_feats=int(n_feats * width), res_scale=0.1)
    net = m.CSDEDSR(scale, n_blocks=n_blocks, n_feats=n_feats, res_scale=0.1)
    net.set_width(width)
    return net


def _const(n: int) -> Callable[..., int]:
    return lambda **_: n


# Receptive-field radii: 3×3 convs at LR add 1 each, 5×5 add 2, 9×9 add 4; HR convs add ceil(k/2/scale) ≤ their
# LR size; each figure below is rounded up with a margin of 2 (tested: tiled == untiled for every model). esrgan with
# unshuffle u (BasicSR's x2 layout) takes u times its plain figure: that covers its radius in LR pixels and is even,
# so windows at even offsets keep its 2×2 cells (one at an odd offset cuts other cells: not the untiled result).
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec("nearest", "nearest-neighbour interpolation", _interp("nearest"), "rgb", _const(2), learned=False),
        ModelSpec("bilinear", "bilinear interpolation", _interp("bilinear"), "rgb", _const(2), learned=False),
        ModelSpec("bicubic", "MATLAB imresize bicubic (bit-exact on 8-bit)", _interp("bicubic"), "rgb",
                  _const(4), learned=False),
        ModelSpec("srcnn", "SRCNN 9-1-5 on Y after bicubic upsampling (Dong 2014)", _srcnn, "y", _const(8),
                  paper_params={2: 8129, 3: 8129, 4: 8129}),
        ModelSpec("fsrcnn", "FSRCNN (56,12,4) on Y, deconvolution upsampler (Dong 2016)",
                  lambda s, **k: m.FSRCNN(s, **k), "y", _const(12), paper_params={3: 12464},
                  paper_params_tolerance=0.03),  # the paper counts conv weights only: +173 biases, +172 PReLU
        ModelSpec("espcn", "ESPCN on Y, sub-pixel convolution (Shi 2016)", lambda s, **k: m.ESPCN(s, **k), "y",
                  _const(6), paper_params={2: 21284, 3: 22729, 4: 24752}),
        ModelSpec("srresnet", "SRResNet, 16 residual blocks, batch norm switchable (Ledig 2017)",
                  _srresnet, "rgb",
                  lambda n_blocks=16, variant="paper", **_: 2 * n_blocks + (12 if variant == "paper" else 5),
                  paper_params={4: 1_500_000}, paper_params_tolerance=0.05,
                  discriminator=lambda: m.SRGANDiscriminator()),
        ModelSpec("edsr", "EDSR baseline, 16 blocks x 64 features (Lim 2017)",
                  lambda s, **k: m.EDSR(s, **k), "rgb", lambda n_blocks=16, **_: 2 * n_blocks + 8,
                  paper_params={2: 1_370_000, 3: 1_550_000, 4: 1_520_000}, paper_params_tolerance=0.01),
        ModelSpec("edsr-large", "EDSR, 32 blocks x 256 features, residual scaling 0.1 (Lim 2017)",
                  lambda s, **k: m.EDSR(s, **k), "rgb", lambda n_blocks=32, **_: 2 * n_blocks + 8,
                  paper_params={2: 40_700_000, 3: 43_700_000, 4: 43_100_000}, paper_params_tolerance=0.01,
                  options={"n_blocks": 32, "n_feats": 256, "res_scale": 0.1}),
        ModelSpec("mdsr", "MDSR, one model for x2/x3/x4, 80 shared blocks (Lim 2017)", _mdsr, "rgb",
                  lambda n_blocks=80, **_: 2 * n_blocks + 16, paper_params={4: 8_000_000},
                  paper_params_tolerance=0.02, multi_scale=True),
        ModelSpec("esrgan", "ESRGAN RRDBNet, 23 RRDB x 64 features, growth 32 (Wang 2018)",
                  lambda s, **k: m.RRDBNet(s, **k), "rgb",
                  lambda num_block=23, unshuffle=1, **_: unshuffle * (15 * num_block + 8),
                  paper_params={4: 16_700_000}, paper_params_tolerance=0.01,
                  discriminator=lambda: m.VGGStyleDiscriminator()),
        ModelSpec("compact", "SRVGGNetCompact, Real-ESRGAN's real-world compact model",
                  lambda s, **k: m.SRVGGNetCompact(s, **k), "rgb",
                  lambda num_conv=32, **_: m.SRVGGNetCompact.receptive_radius(num_conv) + 2,
                  discriminator=lambda: m.VGGStyleDiscriminator()),
        ModelSpec("csd", "CSD width-switchable EDSR (32 x 256; student = width 0.25) (Wang 2021)", _csd, "rgb",
                  lambda n_blocks=32, **_: 2 * n_blocks + 8, paper_params={4: 2_700_000},
                  paper_params_tolerance=0.05, options={"width": 0.25}),
    ]
}


def get_spec(name: str) -> ModelSpec:
    """The spec for ``name``; an unknown name is a UsageError listing the known ones."""
    try:
        return MODELS[name.lower()]
    except KeyError:
        raise UsageError(f"unknown model '{name}': choose one of {', '.join(MODELS)}") from None


def shipped_weights_dir() -> Path:
    """The folder of the weights that ship with srtool (``weights/`` in the repository, ``sr_cli.zoo`` installed)."""
    try:
        return Path(str(resources.files("sr_cli.zoo")))
    except ModuleNotFoundError:  # running from a source checkout without installing
        return Path(__file__).resolve().parents[1] / "weights"


def shipped_weights(spec: ModelSpec, scale: int) -> Path:
    """Where the shipped weights for ``spec`` at ``scale`` are (the file may not exist)."""
    return shipped_weights_dir() / spec.weights_name(scale)


# Set5 Y-PSNR change of each shipped file run in bf16 instead of fp32 (benchmarks/bf16_quality.py writes it).
BF16_TABLE = Path(__file__).resolve().parent / "data" / "bf16_set5.json"
BF16_MAX_SET5_CHANGE_DB = 0.01


def bf16_harmless(spec: ModelSpec, scale: int) -> bool:
    """Whether the shipped weights of ``spec`` at ``scale`` were measured to lose < 0.01 dB on Set5 in bf16."""
    table = json.loads(BF16_TABLE.read_text()) if BF16_TABLE.is_file() else {}
    change = table.get(spec.name, {}).get(f"x{scale}")
    return change is not None and abs(change) < BF16_MAX_SET5_CHANGE_DB


# A bare `srtool upscale`: the shipped model with the best Set5 x4 score (weights/README.md).
DEFAULT_MODEL = "edsr"
DEFAULT_SCALE = 4
