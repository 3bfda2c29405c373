"""The FSRCNN family (Dong 2016): (56,12,4) on Y with a deconvolution upsampler; no foreign layouts."""

from __future__ import annotations

from sr_cli.families.layouts import Detector
from sr_cli.models.fsrcnn import FSRCNN
from sr_cli.modelspec import ModelSpec

SPECS = [
    ModelSpec("fsrcnn", "FSRCNN (56,12,4) on Y, deconvolution upsampler (Dong 2016)",
              lambda s, **k: FSRCNN(s, **k), "y", lambda s, m=4, **_: FSRCNN.receptive_radius(s, m),
              paper_params={3: 12464},
              paper_params_tolerance=0.03),  # the paper counts conv weights only: +173 biases, +172 PReLU
]
LAYOUTS: list[Detector] = []
