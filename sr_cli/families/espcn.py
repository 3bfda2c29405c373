"""The ESPCN family (Shi 2016): convolutions on Y at LR, sub-pixel output; no foreign layouts."""

from __future__ import annotations

from sr_cli.families.layouts import Detector
from sr_cli.modelspec import ModelSpec, lazy


def espcn_radius() -> int:
    """ESPCN's radius in LR pixels at every scale: 2 + 1 + 1 (all convolutions run at LR; the shuffle adds
    nothing)."""
    return 2 + 1 + 1


SPECS = [
    ModelSpec("espcn", "ESPCN on Y, sub-pixel convolution (Shi 2016)", lazy("sr_cli.models.espcn", "ESPCN"), "y",
              lambda s, **_: espcn_radius(), paper_params={2: 21284, 3: 22729, 4: 24752}),
]
LAYOUTS: list[Detector] = []
