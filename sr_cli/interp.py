"""Interpolation "models" (nearest, bilinear, MATLAB bicubic) and the bicubic pre-upsampling wrapper.

They are ``nn.Module``s so that the engine runs them like any learned model (tiling, batching, devices).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sr_cli.resize import imresize, upscale_bicubic


def _round_half_up(x: torch.Tensor, top: int) -> torch.Tensor:
    """Round to integers, halves away from zero, and clip to [0, top] (MATLAB's integer classes)."""
    return torch.floor(x + 0.5).clamp_(0, top)


class Bicubic(nn.Module):
    """MATLAB ``imresize`` bicubic upscaling by an integer ``scale``, height pass first.

    With ``levels`` set (255 for 8-bit images, 65535 for 16-bit), each pass is rounded to that grid as
    MATLAB does for integer images, so 8-bit results are bit-exact with ``imresize`` on uint8.
    ``levels=None`` is the pure float, differentiable mode.
    """

    def __init__(self, scale: int, levels: int | None = 255) -> None:
        super().__init__()
        self.scale = scale
        self.levels = levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.levels is None:
            return upscale_bicubic(x, self.scale)
        # Work on the integer code values in float64, so ties round exactly as MATLAB's uint8/uint16 do.
        codes = torch.round(x.double() * self.levels)
        y = _round_half_up(imresize(codes, size=(h * self.scale, w)), self.levels)
        y = _round_half_up(imresize(y, size=(h * self.scale, w * self.scale)), self.levels)
        return (y / self.levels).to(x.dtype)


class Interpolate(nn.Module):
    """Nearest or bilinear upscaling by an integer ``scale`` (torch's half-pixel-centred sampling)."""

    def __init__(self, scale: int, mode: str) -> None:
        super().__init__()
        self.scale = scale
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            return F.interpolate(x, scale_factor=self.scale, mode="nearest-exact")
        return F.interpolate(x, scale_factor=self.scale, mode=self.mode, align_corners=False)


class PreUpsampled(nn.Module):
    """Runs ``net`` on the float MATLAB-bicubic upsample of its input (SRCNN's pipeline)."""

    def __init__(self, net: nn.Module, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(upscale_bicubic(x, self.scale))
