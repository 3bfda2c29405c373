"""Building blocks shared by the SR models: 'same' convolutions, mean shift, residual blocks, upsamplers.

Module layouts follow EDSR-PyTorch's ``common.py`` so that state-dict names match its checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sr_cli.upsampling import stage_factors


def conv(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True, stride: int = 1) -> nn.Conv2d:
    """A convolution with zero 'same' padding (``kernel_size // 2``)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)


def scaled_kaiming_(modules: Sequence[nn.Module], scale: float) -> None:
    """Kaiming-normal init scaled by ``scale``, zero bias (BasicSR's ``default_init_weights``); nothing to draw for
    meta tensors (a network built for its shapes only)."""
    for module in modules:
        if module.weight.is_meta:
            continue
        fan_in = module.weight.shape[1:].numel()
        nn.init.normal_(module.weight, std=scale * math.sqrt(2 / fan_in))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class MeanShift(nn.Module):
    """Adds ``sign · mean`` per channel as a fixed 1×1 convolution (EDSR-PyTorch's ``MeanShift``, rgb_range 1).

    ``weight`` and ``bias`` are buffers, not parameters: they are saved and loaded under EDSR's names but are
    not trained and not counted among the model's parameters.
    """

    def __init__(self, mean: Sequence[float], sign: int) -> None:
        super().__init__()
        n = len(mean)
        identity = [[float(i == j) for j in range(n)] for i in range(n)]  # not torch.eye: slow on the meta device
        self.register_buffer("weight", torch.tensor(identity).view(n, n, 1, 1))
        self.register_buffer("bias", torch.tensor([sign * m for m in mean], dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias)


class ResBlock(nn.Module):
    """``x + res_scale · body(x)``, body = conv [BN] act conv [BN] (EDSR-PyTorch's ``ResBlock`` layout)."""

    def __init__(self, n_feats: int, kernel_size: int, act: Callable[[], nn.Module], bn: bool = False,
                 res_scale: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(2):
            layers.append(conv(n_feats, n_feats, kernel_size))
            if bn:
                layers.append(nn.BatchNorm2d(n_feats))
            if i == 0:
                layers.append(act())
        self.body = nn.Sequential(*layers)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class Upsampler(nn.Sequential):
    """Sub-pixel upsampler: (conv3 to r²·C, PixelShuffle(r) [, act]) once for ×3, twice with r=2 for ×4."""

    def __init__(self, scale: int, n_feats: int, act: Callable[[], nn.Module] | None = None) -> None:
        layers: list[nn.Module] = []
        for r in stage_factors(scale):
            layers += [conv(n_feats, r * r * n_feats, 3), nn.PixelShuffle(r)]
            if act is not None:
                layers.append(act())
        super().__init__(*layers)
