"""The interpolation family: nearest, bilinear and MATLAB bicubic, run by the engine like any model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from sr_cli.families.layouts import Detector
from sr_cli.interp import Bicubic, Interpolate
from sr_cli.modelspec import ModelSpec


def _interp(mode: str) -> Callable[..., nn.Module]:
    def build(scale: int, **_: Any) -> nn.Module:
        return Bicubic(scale) if mode == "bicubic" else Interpolate(scale, mode)

    return build


SPECS = [
    ModelSpec("nearest", "nearest-neighbour interpolation", _interp("nearest"), "rgb",
              lambda s, **_: Interpolate.receptive_radius(s, "nearest"), learned=False),
    ModelSpec("bilinear", "bilinear interpolation", _interp("bilinear"), "rgb",
              lambda s, **_: Interpolate.receptive_radius(s, "bilinear"), learned=False),
    ModelSpec("bicubic", "MATLAB imresize bicubic (bit-exact on 8-bit)", _interp("bicubic"), "rgb",
              lambda s, **_: Bicubic.receptive_radius(s), learned=False),
]
LAYOUTS: list[Detector] = []
