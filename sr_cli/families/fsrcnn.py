"""The FSRCNN family (Dong 2016): (56,12,4) on Y with a deconvolution upsampler; no foreign layouts."""

from __future__ import annotations

from sr_cli.families.layouts import Detector
from sr_cli.modelspec import ModelSpec, lazy


def fsrcnn_radius(scale: int, m: int = 4) -> int:
    """FSRCNN's radius in LR pixels: conv5 (2) + m conv3, plus the 9×9 deconvolution's (padding 4) reach beyond a
    tile's edge.

    HR pixel ``Y`` reads LR pixels ``x`` with ``|Y - scale·x| <= 4``: past the right edge of a tile that is
    ``floor(3 / scale) + 1`` pixels, past the left edge ``floor(4 / scale)``.
    """
    return 2 + m + max(4 // scale, 3 // scale + 1)


SPECS = [
    ModelSpec("fsrcnn", "FSRCNN (56,12,4) on Y, deconvolution upsampler (Dong 2016)",
              lazy("sr_cli.models.fsrcnn", "FSRCNN"), "y", lambda s, m=4, **_: fsrcnn_radius(s, m),
              paper_params={3: 12464},
              paper_params_tolerance=0.03),  # the paper counts conv weights only: +173 biases, +172 PReLU
]
LAYOUTS: list[Detector] = []
