"""The interpolation family: nearest, bilinear and MATLAB bicubic, run by the engine like any model."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sr_cli.families.layouts import Detector
from sr_cli.modelspec import ModelSpec

if TYPE_CHECKING:
    from torch import nn

# Radius in LR pixels: nearest reads the pixel's own cell, bilinear one neighbour either side; bicubic samples an HR
# pixel of LR cell c at c ± (1 - 1/scale) / 2, and the cubic kernel's 4 taps reach 2 pixels either side of that.
_RADII = {"nearest": 0, "bilinear": 1, "bicubic": 2}


def pre_upsampled_radius(scale: int, net_radius: int) -> int:
    """Radius in LR pixels of a network (``net_radius`` HR pixels) run on the bicubic upsample (``PreUpsampled``):
    LR cell ``c``'s outputs read HR pixels ``s·c - r .. s·c + s - 1 + r``, which sample LR at ``(Y + 0.5) / s - 0.5``
    with taps from ``floor - 1`` to ``floor + 2``."""
    above = math.floor((scale - 0.5 + net_radius) / scale - 0.5) + 2
    below = 1 - math.floor((0.5 - net_radius) / scale - 0.5)
    return max(above, below)


def _spec(mode: str, summary: str) -> ModelSpec:
    def build(scale: int, **_: Any) -> nn.Module:
        from sr_cli.interp import Bicubic, Interpolate

        return Bicubic(scale) if mode == "bicubic" else Interpolate(scale, mode)

    return ModelSpec(mode, summary, build, "rgb", lambda s, **_: _RADII[mode], learned=False)


SPECS = [
    _spec("nearest", "nearest-neighbour interpolation"),
    _spec("bilinear", "bilinear interpolation"),
    _spec("bicubic", "MATLAB imresize bicubic (bit-exact on 8-bit)"),
]
LAYOUTS: list[Detector] = []
