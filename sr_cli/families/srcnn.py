"""The SRCNN family (Dong 2014): 9-1-5 on Y after bicubic upsampling; no foreign layouts."""

from __future__ import annotations

from typing import Any

from torch import nn

from sr_cli.families.layouts import Detector
from sr_cli.interp import PreUpsampled
from sr_cli.models.srcnn import SRCNN
from sr_cli.modelspec import ModelSpec


def _build(scale: int, **_: Any) -> nn.Module:
    return PreUpsampled(SRCNN(num_channels=1), scale)


SPECS = [
    ModelSpec("srcnn", "SRCNN 9-1-5 on Y after bicubic upsampling (Dong 2014)", _build, "y",
              lambda s, **_: PreUpsampled.receptive_radius(s, SRCNN.receptive_radius()),
              paper_params={2: 8129, 3: 8129, 4: 8129}),
]
LAYOUTS: list[Detector] = []
