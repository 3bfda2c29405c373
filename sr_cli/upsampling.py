"""How srtool's networks upsample, as arithmetic (torch-free): the scale check, the stages for a scale and the
receptive radius through them, shared by the networks (``models/``) and the radius formulas (``families/``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sr_cli.constants import SCALES


def check_scale(scale: int, scales: Sequence[int] = SCALES) -> None:
    """Raise ValueError unless ``scale`` is one of ``scales``."""
    if scale not in scales:
        raise ValueError(f"unsupported scale {scale}: expected one of {tuple(scales)}")


def stage_factors(scale: int) -> list[int]:
    """The upsampling stages for ``scale``: one ×3 stage, or ×2 stages (two for ×4, as in the papers)."""
    check_scale(scale)
    return [3] if scale == 3 else [2] * int(math.log2(scale))


def upsampling_radius(radii: Sequence[int], factors: Sequence[int]) -> int:
    """Receptive-field radius in LR pixels of a network that upsamples by ``factors`` in turn.

    ``radii[i]`` is the summed radius (``k // 2``) of the convolutions run at resolution ``i`` (0 = LR);
    ``factors[i]`` is the nearest/sub-pixel upsampling from resolution ``i`` to ``i + 1``. A radius ``r`` at
    a resolution ``f`` times finer reaches ``ceil(r / f)`` pixels beyond a tile's edge at the coarser one.
    """
    radius = radii[-1]
    for r, f in zip(reversed(radii[:-1]), reversed(factors), strict=True):
        radius = -(-radius // f) + r
    return radius
