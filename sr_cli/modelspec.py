"""``ModelSpec``: what the rest of srtool needs to know about one model name (each family declares its own).

Torch-free: builders import their network when called (``lazy``), radii are arithmetic.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sr_cli.constants import SCALES
from sr_cli.errors import UsageError

if TYPE_CHECKING:
    from torch import nn


def lazy(module: str, name: str) -> Callable[..., nn.Module]:
    """A builder of the network class ``module.name`` that imports it when called, not when the registry loads
    (listing the registry needs no torch)."""

    def build(*args: Any, **kwargs: Any) -> nn.Module:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    return build


@dataclass(frozen=True)
class ModelSpec:
    """How to build one named LR→SR module, the scales it supports, the colour space it works in (``rgb``, or
    ``y`` with chroma upscaled by bicubic), its receptive-field radius (the module's own, in LR pixels: the tile
    overlap), the paper's parameter counts and whether one weights file serves every scale."""

    name: str
    summary: str
    builder: Callable[..., nn.Module]
    space: str  # "rgb" | "y"
    radius: Callable[..., int]  # (scale, **build options) -> receptive-field radius in LR pixels
    scales: tuple[int, ...] = SCALES
    learned: bool = True
    paper_params: dict[int, int] = field(default_factory=dict)
    paper_params_tolerance: float = 0.0  # relative; 0 = exact figure in the paper
    multi_scale: bool = False  # one weights file serves every scale (MDSR)
    discriminator: Callable[[], nn.Module] | None = None
    options: dict[str, Any] = field(default_factory=dict)  # default build options

    def check_scale(self, scale: int) -> None:
        """Raise a UsageError naming the supported scales when ``scale`` is not one of them."""
        if scale not in self.scales:
            scales = ", ".join(f"x{s}" for s in self.scales)
            raise UsageError(f"{self.name} does not support x{scale}: it supports {scales}")

    def build(self, scale: int, **options: Any) -> nn.Module:
        """A fresh LR→SR module at ``scale`` (random weights for learned models: load weights before use)."""
        self.check_scale(scale)
        return self.builder(scale, **{**self.options, **options})

    def overlap(self, scale: int, **options: Any) -> int:
        """The tile overlap (LR pixels) that makes tiled output equal untiled output: the module's radius."""
        self.check_scale(scale)
        return self.radius(scale, **{**self.options, **options})

    @property
    def channels(self) -> int:
        """Image channels the module takes: 3 for RGB models, 1 for Y models."""
        return 1 if self.space == "y" else 3

    def weights_name(self, scale: int) -> str:
        """File name of the shipped weights for ``scale``."""
        return f"{self.name}.safetensors" if self.multi_scale else f"{self.name}_x{scale}.safetensors"
