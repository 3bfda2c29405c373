"""The compact family: Real-ESRGAN's SRVGGNetCompact, the fast real-world model.

Foreign layout: Real-ESRGAN SRVGGNetCompact (``realesrgan/archs/srvgg_arch.py``, the PReLU models
``realesr-general-x4v3`` and ``realesr-animevideov3``), its own names.
"""

from __future__ import annotations

import re

from sr_cli.constants import SCALES
from sr_cli.errors import WeightsError
from sr_cli.families.layouts import Detector, Found, State, count, info
from sr_cli.modelspec import ModelSpec, lazy


def compact_radius(num_conv: int = 32) -> int:
    """SRVGGNetCompact's radius in LR pixels at every scale: ``num_conv + 2`` 3×3 convolutions, all at LR (the
    shuffle and the nearest skip reach no further than the pixel itself)."""
    return num_conv + 2


def _compact(state: State) -> Found:
    """Real-ESRGAN SRVGGNetCompact: only ``body.N`` tensors, conv (even N) and PReLU (odd N) in turn, the last conv
    to ``3·scale²`` channels for the pixel shuffle (its own names)."""
    if "body.0.weight" not in state or not all(re.fullmatch(r"body\.\d+\.(weight|bias)", k) for k in state):
        return None
    layout = "Real-ESRGAN SRVGGNetCompact"
    n = count(state, "body.{}.weight")
    want = {f"body.{i}.{kind}" for i in range(n) for kind in (("weight",) if i % 2 else ("weight", "bias"))}
    if n < 3 or n % 2 == 0 or state.keys() != want or any(
            state[f"body.{i}.weight"].dim() != (1 if i % 2 else 4) for i in range(n)):
        raise WeightsError(f"{layout} layout whose body.N tensors are not conv, PReLU, ..., conv: srtool's compact "
                           "runs the PReLU models (act_type prelu)")
    num_feat, in_ch = state["body.0.weight"].shape[:2]
    out = state[f"body.{n - 1}.weight"].shape[0]
    scales = [s for s in SCALES if out == 3 * s * s]
    if in_ch != 3 or not scales:
        raise WeightsError(f"{layout} takes {in_ch} channels and its last convolution gives {out}: srtool runs it on "
                           "RGB, x2, x3 or x4 (3 in, 12, 27 or 48 out)")
    num_conv = (n - 3) // 2
    return state, info("compact", scales[0], {"num_feat": num_feat, "num_conv": num_conv},
                        f"{layout} {num_conv}x{num_feat} x{scales[0]}")


SPECS = [
    ModelSpec("compact", "SRVGGNetCompact, Real-ESRGAN's real-world compact model",
              lazy("sr_cli.models.compact", "SRVGGNetCompact"), "rgb",
              lambda s, num_conv=32, **_: compact_radius(num_conv),
              discriminator=lazy("sr_cli.models.rrdbnet", "VGGStyleDiscriminator")),
]
LAYOUTS: list[Detector] = [_compact]
