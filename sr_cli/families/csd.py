"""The CSD family (Wang 2021): width-switchable EDSR (32×256); the student is its width-0.25 slice. At every width
its radius is EDSR's.

Foreign layout: the official CSD code's EDSR (``model/edsr.py``): head, body.N.conv{1,2}, body_conv,
upsampler.blocks.J, tail_conv, on [0, 255] (converted to [0, 1], see ``layouts``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sr_cli.errors import UsageError
from sr_cli.families.edsr import edsr_radius
from sr_cli.families.layouts import Detector, Found, State, edsr_shape, info, unit_range
from sr_cli.modelspec import ModelSpec

if TYPE_CHECKING:
    from torch import nn


def _build(scale: int, width: float = 0.25, n_blocks: int = 32, n_feats: int = 256, sliced: bool = True) -> nn.Module:
    """The CSD network at ``width``: ``sliced`` holds only the width's channels (an exported student),
    otherwise all ``n_feats`` channels with the width switched on (a teacher checkpoint run narrower)."""
    from sr_cli.models.csd import CSDEDSR

    if not 0 < width <= 1:
        raise UsageError(f"--width must be in (0, 1], got {width}")
    if sliced:
        return CSDEDSR(scale, n_blocks=n_blocks, n_feats=int(n_feats * width), res_scale=0.1)
    net = CSDEDSR(scale, n_blocks=n_blocks, n_feats=n_feats, res_scale=0.1)
    net.set_width(width)
    return net


def _csd(state: State) -> Found:
    """Official CSD: head, body.N.conv{1,2}, body_conv, upsampler.blocks.J, tail_conv (full width)."""
    layout = "CSD"
    shape = edsr_shape(state, layout, {"head.weight", "body_conv.weight", "upsampler.blocks.0.weight",
                                       "tail_conv.weight"}, "head.weight", "body.{}.conv1.weight", "tail_conv.weight",
                       "upsampler.blocks")
    if shape is None:
        return None
    n_blocks, n_feats, scale = shape
    state, rgb_range = unit_range(state, layout)
    return state, info("csd", scale, {"n_blocks": n_blocks, "n_feats": n_feats, "sliced": False},
                        f"{layout} {n_blocks}x{n_feats} x{scale}, rgb_range {rgb_range}")


SPECS = [
    ModelSpec("csd", "CSD width-switchable EDSR (32 x 256; student = width 0.25) (Wang 2021)", _build, "rgb",
              lambda s, n_blocks=32, **_: edsr_radius(s, n_blocks), paper_params={4: 2_700_000},
              paper_params_tolerance=0.05, options={"width": 0.25}),
]
LAYOUTS: list[Detector] = [_csd]
