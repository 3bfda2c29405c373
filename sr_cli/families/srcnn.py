"""The SRCNN family (Dong 2014): 9-1-5 on Y after bicubic upsampling; no foreign layouts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sr_cli.families.interpolation import pre_upsampled_radius
from sr_cli.families.layouts import Detector
from sr_cli.modelspec import ModelSpec

if TYPE_CHECKING:
    from torch import nn


def srcnn_radius() -> int:
    """SRCNN's receptive-field radius in (upsampled) HR pixels: 4 + 0 + 2, before the bicubic support."""
    return 4 + 0 + 2


def _build(scale: int, **_: Any) -> nn.Module:
    from sr_cli.interp import PreUpsampled
    from sr_cli.models.srcnn import SRCNN

    return PreUpsampled(SRCNN(num_channels=1), scale)


SPECS = [
    ModelSpec("srcnn", "SRCNN 9-1-5 on Y after bicubic upsampling (Dong 2014)", _build, "y",
              lambda s, **_: pre_upsampled_radius(s, srcnn_radius()),
              paper_params={2: 8129, 3: 8129, 4: 8129}),
]
LAYOUTS: list[Detector] = []
