"""The SRResNet family (Ledig 2017): the paper's network with batch norm, and BasicSR's MSRResNet (no batch norm).

Foreign layout: BasicSR MSRResNet (``basicsr/archs/srresnet_arch.py``), its own names, on [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sr_cli.errors import UsageError
from sr_cli.families.layouts import (
    Detector,
    Found,
    State,
    block_options,
    check_rgb,
    info,
    shuffle_scale,
)
from sr_cli.modelspec import ModelSpec, lazy
from sr_cli.upsampling import stage_factors, upsampling_radius

if TYPE_CHECKING:
    from torch import nn


def srresnet_radius(scale: int, n_blocks: int = 16) -> int:
    """SRResNet's radius in LR pixels: conv9 (4) + 2·n_blocks + conv3 + upsampler convs + conv9 at HR."""
    factors = stage_factors(scale)
    return upsampling_radius([4 + 2 * n_blocks + 1 + 1] + [1] * (len(factors) - 1) + [4], factors)


def msrresnet_radius(scale: int, n_blocks: int = 16) -> int:
    """MSRResNet's radius in LR pixels: head (1) + 2·n_blocks + first upsampler conv, later stages' convs, two HR
    convs."""
    factors = stage_factors(scale)
    return upsampling_radius([1 + 2 * n_blocks + 1] + [1] * (len(factors) - 1) + [2], factors)


# variant: (network builder, its radius)
_VARIANTS: dict[str, tuple[Callable[..., nn.Module], Callable[[int, int], int]]] = {
    "paper": (lazy("sr_cli.models.srresnet", "SRResNet"), srresnet_radius),
    "basicsr": (lazy("sr_cli.models.msrresnet", "MSRResNet"), msrresnet_radius),
}


def _variant(variant: str) -> tuple[Callable[..., nn.Module], Callable[[int, int], int]]:
    if variant not in _VARIANTS:
        raise UsageError(f"unknown srresnet variant {variant!r}: paper or basicsr")
    return _VARIANTS[variant]


def _build(scale: int, variant: str = "paper", **options: Any) -> nn.Module:
    """The paper's SRResNet, or with ``variant="basicsr"`` BasicSR's MSRResNet (what its checkpoints hold)."""
    return _variant(variant)[0](scale, **options)


def _radius(scale: int, variant: str = "paper", n_blocks: int = 16, **_: Any) -> int:
    return _variant(variant)[1](scale, n_blocks)


def _msrresnet(state: State) -> Found:
    """BasicSR MSRResNet: conv_first, body.N.conv{1,2}, upconv1[, upconv2], conv_hr, conv_last (its own names,
    on [0, 1]); srtool's srresnet with variant ``basicsr``."""
    if not {"conv_first.weight", "body.0.conv1.weight", "upconv1.weight", "conv_hr.weight",
            "conv_last.weight"} <= state.keys():
        return None
    layout = "BasicSR MSRResNet"
    n_blocks, n_feats = block_options(state, "conv_first.weight", "body.{}.conv1.weight")
    check_rgb(layout, state["conv_first.weight"].shape[1], state["conv_last.weight"].shape[0])
    stages = {f"up.{i}.weight": state[f"upconv{i + 1}.weight"] for i in (0, 1) if f"upconv{i + 1}.weight" in state}
    scale = shuffle_scale(stages, "up", n_feats, layout)
    return state, info("srresnet", scale, {"variant": "basicsr", "n_blocks": n_blocks, "n_feats": n_feats},
                        f"{layout} {n_blocks}x{n_feats} x{scale}")


SPECS = [
    ModelSpec("srresnet", "SRResNet, 16 residual blocks, batch norm switchable (Ledig 2017)", _build, "rgb",
              _radius, paper_params={4: 1_500_000}, paper_params_tolerance=0.05,
              discriminator=lazy("sr_cli.models.srresnet", "SRGANDiscriminator")),
]
LAYOUTS: list[Detector] = [_msrresnet]
