"""The ESRGAN family (Wang 2018): RRDBNet, 23 RRDB × 64 features, growth 32 (6 blocks for the anime model).

Foreign layouts, from the public code: BasicSR / Real-ESRGAN RRDBNet (``basicsr/archs/rrdbnet_arch.py``), srtool's
names: x4, and x2, which pixel-unshuffles its input by 2 first (``unshuffle`` 2); x1 (unshuffle 4) is refused.
ESRGAN (``xinntao/ESRGAN`` ``RRDBNet_arch.py``, BSRGAN's x2/x4 variant) ``RRDB_trunk`` names, and the older
sequential ``model.N`` layout of ``RRDB_ESRGAN_x4_old_arch.pth``: renamed to srtool's.
"""

from __future__ import annotations

import re

from sr_cli.errors import WeightsError
from sr_cli.families.layouts import (
    Detector,
    Found,
    Info,
    State,
    block_options,
    check_rgb,
    count,
    info,
    rename,
)
from sr_cli.modelspec import ModelSpec, lazy
from sr_cli.upsampling import stage_factors, upsampling_radius


def rrdbnet_radius(scale: int, num_block: int = 23, unshuffle: int = 1) -> int:
    """RRDBNet's radius in LR pixels: conv_first + 15 per RRDB + conv_body, then conv_up per stage and
    conv_hr + conv_last at HR.

    Unshuffled by ``u`` (= the first stage's factor, which brings the cells back to the LR grid): a pixel's
    cell of ``u`` pixels, ``r0`` cells of LR convolutions and a radius ``r1`` after the first stage reach
    ``u·r0 + r1 + u - 1`` pixels.
    """
    factors = stage_factors(scale * unshuffle)
    radii = [1 + 15 * num_block + 1] + [1] * (len(factors) - 1) + [3]
    if unshuffle == 1:
        return upsampling_radius(radii, factors)
    return unshuffle * radii[0] + upsampling_radius(radii[1:], factors[1:]) + unshuffle - 1


def _radius(scale: int, num_block: int = 23, unshuffle: int = 1, **_: object) -> int:
    """The module's radius, rounded up to a multiple of ``unshuffle``: windows then start on whole cells (one at
    an odd offset cuts other 2×2 cells than the untiled run does)."""
    radius = rrdbnet_radius(scale, num_block, unshuffle)
    return -(-radius // unshuffle) * unshuffle


def _rrdb_info(state: State, scale: int, layout: str, unshuffle: int = 1) -> Info:
    """Options of an RRDBNet state dict in srtool's names (``unshuffle``: its input's pixel-unshuffle factor)."""
    num_block, num_feat = block_options(state, "conv_first.weight", "body.{}.rdb1.conv1.weight")
    check_rgb(layout, state["conv_first.weight"].shape[1] // unshuffle**2, state["conv_last.weight"].shape[0])
    grow = state["body.0.rdb1.conv1.weight"].shape[0]
    options = {"num_block": num_block, "num_feat": num_feat, "num_grow_ch": grow}
    shuffled = {"unshuffle": unshuffle} if unshuffle > 1 else {}
    return info("esrgan", scale, {**options, **shuffled}, f"{layout} {num_block}x{num_feat} (growth {grow}) x{scale}"
                 + (f", pixel-unshuffle {unshuffle}" if shuffled else ""))


def _basicsr_rrdb(state: State) -> Found:
    """BasicSR RRDBNet: always two nearest ×2 stages; x2 and x1 models pixel-unshuffle their input by 2 and 4
    first, which conv_first's input channels (4 and 16 per colour) tell."""
    if not {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight", "conv_up2.weight",
            "conv_last.weight"} <= state.keys():
        return None  # without conv_up2 it is srtool's own x2/x3 layout, whose scale the tensors do not tell
    layout = "BasicSR RRDBNet"
    in_ch, out_ch = state["conv_first.weight"].shape[1], state["conv_last.weight"].shape[0]
    if in_ch == 16 * out_ch:
        raise WeightsError(f"{layout} x1 (pixel-unshuffle input: conv_first takes {in_ch} channels) is not "
                           "supported: srtool upscales x2, x3 or x4")
    unshuffle = 2 if in_ch == 4 * out_ch else 1
    return state, _rrdb_info(state, 4 // unshuffle, layout, unshuffle)


def _esrgan(state: State) -> Found:
    """xinntao/ESRGAN RRDBNet_arch (and BSRGAN): RRDB_trunk.N.RDBk.convj, trunk_conv, upconv1[, upconv2], HRconv."""
    if not {"conv_first.weight", "RRDB_trunk.0.RDB1.conv1.weight", "trunk_conv.weight", "upconv1.weight",
            "conv_last.weight"} <= state.keys():
        return None
    layout = "ESRGAN RRDB_trunk"
    rules = [(r"^conv_first\.", "conv_first."), (r"^RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.", r"body.\1.rdb\2.conv\3."),
             (r"^trunk_conv\.", "conv_body."), (r"^upconv(\d)\.", r"conv_up\1."), (r"^HRconv\.", "conv_hr."),
             (r"^conv_last\.", "conv_last.")]
    state = rename(state, rules, layout)
    return state, _rrdb_info(state, 4 if "conv_up2.weight" in state else 2, layout)


def _esrgan_old(state: State) -> Found:
    """The sequential ``model.N`` layout: model.0 conv_first, model.1.sub.N RRDBs (convs as ``.convj.0``) and
    model.1.sub.NB the trunk conv, then (upsample, conv, act) per stage at model.3, model.6, conv_hr and conv_last
    two and four places after the last stage. One stage is read as x2, as the old code's 2x models have it."""
    if not {"model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight"} <= state.keys():
        return None
    layout = "ESRGAN old (model.N)"
    num_block = count(state, "model.1.sub.{}.RDB1.conv1.0.weight")
    top = sorted(int(m[1]) for k in state if (m := re.fullmatch(r"model\.(\d+)\.weight", k)) and int(m[1]) >= 2)
    stages = len(top) - 2
    if stages not in (1, 2) or top != [3 * (j + 1) for j in range(stages)] + [3 * stages + 2, 3 * stages + 4]:
        at = ", ".join(f"model.{i}" for i in top)
        raise WeightsError(f"{layout} layout with convolutions at {at} after the trunk: not x2 or x4 nearest "
                           "upsampling")
    num_feat = state["model.0.weight"].shape[0]
    if any(state[f"model.{3 * (j + 1)}.weight"].shape[0] != num_feat for j in range(stages)):
        raise WeightsError(f"{layout} with a pixel-shuffle upsampler is not supported: srtool's esrgan upsamples "
                           "by nearest neighbour")
    rules = [(r"^model\.0\.", "conv_first."),
             (r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.", r"body.\1.rdb\2.conv\3."),
             (rf"^model\.1\.sub\.{num_block}\.", "conv_body."), (r"^model\.3\.", "conv_up1."),
             (r"^model\.6\.", "conv_up2."), (rf"^model\.{3 * stages + 2}\.", "conv_hr."),
             (rf"^model\.{3 * stages + 4}\.", "conv_last.")]
    state = rename(state, rules, layout)
    return state, _rrdb_info(state, 4 if stages == 2 else 2, layout)


SPECS = [
    ModelSpec("esrgan", "ESRGAN RRDBNet, 23 RRDB x 64 features, growth 32 (Wang 2018)",
              lazy("sr_cli.models.rrdbnet", "RRDBNet"), "rgb", _radius, paper_params={4: 16_700_000},
              paper_params_tolerance=0.01, discriminator=lazy("sr_cli.models.rrdbnet", "VGGStyleDiscriminator")),
]
LAYOUTS: list[Detector] = [_basicsr_rrdb, _esrgan, _esrgan_old]
