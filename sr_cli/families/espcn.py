"""The ESPCN family (Shi 2016): convolutions on Y at LR, sub-pixel output; no foreign layouts."""

from __future__ import annotations

from sr_cli.families.layouts import Detector
from sr_cli.models.espcn import ESPCN
from sr_cli.modelspec import ModelSpec

SPECS = [
    ModelSpec("espcn", "ESPCN on Y, sub-pixel convolution (Shi 2016)", lambda s, **k: ESPCN(s, **k), "y",
              lambda s, **_: ESPCN.receptive_radius(s), paper_params={2: 21284, 3: 22729, 4: 24752}),
]
LAYOUTS: list[Detector] = []
