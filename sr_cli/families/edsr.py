"""The EDSR family (Lim 2017): EDSR baseline (16×64), EDSR large (32×256, residual scaling 0.1) and MDSR.

Foreign layouts, from the public code: EDSR-PyTorch (``src/model/edsr.py``, ``mdsr.py``, ``common.py``) EDSR and
MDSR, whose names srtool's modules use already; BasicSR EDSR (``basicsr/archs/edsr_arch.py``), renamed to
EDSR-PyTorch's. Both are converted to [0, 1] (see ``layouts``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sr_cli.constants import SCALES
from sr_cli.errors import WeightsError
from sr_cli.families.layouts import (
    Detector,
    Found,
    State,
    block_options,
    check_rgb,
    count,
    divide_biases,
    edsr_shape,
    info,
    mean_shifts,
    rename,
    shuffle_scale,
    unit_range,
)
from sr_cli.modelspec import ModelSpec, lazy
from sr_cli.upsampling import stage_factors, upsampling_radius

if TYPE_CHECKING:
    from torch import nn


def edsr_radius(scale: int, n_blocks: int = 16) -> int:
    """EDSR's radius in LR pixels: head (1) + 2·n_blocks + body conv (1) + upsampler convs + tail conv at HR."""
    factors = stage_factors(scale)
    return upsampling_radius([1 + 2 * n_blocks + 1 + 1] + [1] * len(factors), factors)


def mdsr_radius(scale: int, n_blocks: int = 80) -> int:
    """MDSR's radius in LR pixels: head (1) + pre-processing 4 × 5×5 (8) + 2·n_blocks + body conv + upsampler +
    tail."""
    factors = stage_factors(scale)
    return upsampling_radius([1 + 8 + 2 * n_blocks + 1 + 1] + [1] * len(factors), factors)


def _mdsr_build(scale: int, n_blocks: int = 80, n_feats: int = 64) -> nn.Module:
    from sr_cli.models.edsr import MDSR

    net = MDSR(n_blocks=n_blocks, n_feats=n_feats, scales=SCALES)
    net.set_scale(scale)
    return net


def _edsr_arch(n_feats: int) -> str:
    """EDSR with 256 features is the paper's large model (res_scale 0.1, which the tensors cannot show)."""
    return "edsr-large" if n_feats == 256 else "edsr"


def _edsr_pytorch(state: State) -> Found:
    """EDSR-PyTorch EDSR: head.0, body.N.body.{0,2}, body.{n_blocks}, tail.0.{0,2}, tail.1, mean shifts."""
    if not {"head.0.weight", "tail.0.0.weight", "tail.1.weight"} <= state.keys():
        return None
    n_blocks, n_feats = block_options(state, "head.0.weight", "body.{}.body.0.weight")
    if n_blocks == 0 or f"body.{n_blocks}.weight" not in state:
        return None
    layout = "EDSR-PyTorch EDSR"
    check_rgb(layout, state["head.0.weight"].shape[1], state["tail.1.weight"].shape[0])
    scale = shuffle_scale(state, "tail.0", n_feats, layout)
    state, rgb_range = unit_range(state, layout)
    return state, info(_edsr_arch(n_feats), scale, {"n_blocks": n_blocks, "n_feats": n_feats},
                        f"{layout} {n_blocks}x{n_feats} x{scale}, rgb_range {rgb_range}")


def _mdsr(state: State) -> Found:
    """EDSR-PyTorch MDSR: per-scale pre_process.I and upsample.I around a shared body; branches reordered to
    srtool's x2, x3, x4."""
    if not {"head.0.weight", "pre_process.0.0.body.0.weight", "upsample.0.0.weight", "tail.0.weight"} <= state.keys():
        return None
    layout = "EDSR-PyTorch MDSR"
    n_blocks, n_feats = block_options(state, "head.0.weight", "body.{}.body.0.weight")
    check_rgb(layout, state["head.0.weight"].shape[1], state["tail.0.weight"].shape[0])
    branches = [shuffle_scale(state, f"upsample.{i}", n_feats, layout)
                for i in range(count(state, "upsample.{}.0.weight"))]
    if sorted(branches) != list(SCALES):
        have = ", ".join(f"x{s}" for s in branches)
        raise WeightsError(f"{layout} with branches for {have}: srtool's mdsr needs one each for x2, x3 and x4")
    order = {str(i): str(SCALES.index(s)) for i, s in enumerate(branches)}
    state = {re.sub(r"^(pre_process|upsample)\.(\d+)\.", lambda m: f"{m[1]}.{order[m[2]]}.", k): v
             for k, v in state.items()}
    state, rgb_range = unit_range(state, layout)
    return state, info("mdsr", None, {"n_blocks": n_blocks, "n_feats": n_feats},
                        f"{layout} {n_blocks}x{n_feats} x2/x3/x4, rgb_range {rgb_range}")


def _basicsr_edsr(state: State) -> Found:
    """BasicSR EDSR: conv_first, body.N.conv{1,2}, conv_after_body, upsample.{0,2}, conv_last; its mean
    (not saved) is the DIV2K default and its img_range 255 is divided out of the biases."""
    layout = "BasicSR EDSR"
    shape = edsr_shape(state, layout, {"conv_first.weight", "conv_after_body.weight", "upsample.0.weight",
                                       "conv_last.weight"}, "conv_first.weight", "body.{}.conv1.weight",
                       "conv_last.weight", "upsample")
    if shape is None:
        return None
    n_blocks, n_feats, scale = shape
    rules = [(r"^conv_first\.", "head.0."), (r"^body\.(\d+)\.conv1\.", r"body.\1.body.0."),
             (r"^body\.(\d+)\.conv2\.", r"body.\1.body.2."), (r"^conv_after_body\.", f"body.{n_blocks}."),
             (r"^upsample\.(\d+)\.", r"tail.0.\1."), (r"^conv_last\.", "tail.1.")]
    state = {**divide_biases(rename(state, rules, layout), 255), **mean_shifts()}
    return state, info(_edsr_arch(n_feats), scale, {"n_blocks": n_blocks, "n_feats": n_feats},
                        f"{layout} {n_blocks}x{n_feats} x{scale}, img_range 255")


_EDSR = lazy("sr_cli.models.edsr", "EDSR")

SPECS = [
    ModelSpec("edsr", "EDSR baseline, 16 blocks x 64 features (Lim 2017)", _EDSR, "rgb",
              lambda s, n_blocks=16, **_: edsr_radius(s, n_blocks),
              paper_params={2: 1_370_000, 3: 1_550_000, 4: 1_520_000}, paper_params_tolerance=0.01),
    ModelSpec("edsr-large", "EDSR, 32 blocks x 256 features, residual scaling 0.1 (Lim 2017)",
              _EDSR, "rgb", lambda s, n_blocks=32, **_: edsr_radius(s, n_blocks),
              paper_params={2: 40_700_000, 3: 43_700_000, 4: 43_100_000}, paper_params_tolerance=0.01,
              options={"n_blocks": 32, "n_feats": 256, "res_scale": 0.1}),
    ModelSpec("mdsr", "MDSR, one model for x2/x3/x4, 80 shared blocks (Lim 2017)", _mdsr_build, "rgb",
              lambda s, n_blocks=80, **_: mdsr_radius(s, n_blocks), paper_params={4: 8_000_000},
              paper_params_tolerance=0.02, multi_scale=True),
]
LAYOUTS: list[Detector] = [_mdsr, _edsr_pytorch, _basicsr_edsr]
