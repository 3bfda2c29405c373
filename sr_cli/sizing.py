"""Any output size: ``--outscale``, ``--width``/``--height`` and ``--min-side`` turned into a final size, the model
scale that reaches it, and the antialiased resize from the model's output to it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from sr_cli.errors import UsageError

# The resize filter: Lanczos (a = 3), which Pillow widens by the scale when it shrinks (antialiased).
FILTER = "lanczos"


@dataclass(frozen=True)
class OutputSize:
    """The final size asked for: a factor, a width and/or height (the aspect kept: both = the largest size that
    fits in width x height), or a shorter side of at least ``min_side`` (never below the input's own size)."""

    outscale: float | None = None
    width: int | None = None
    height: int | None = None
    min_side: int | None = None

    def __post_init__(self) -> None:
        given = [name for name, value in (("--outscale", self.outscale), ("--width/--height", self.width or
                 self.height), ("--min-side", self.min_side)) if value is not None]
        if len(given) > 1:
            raise UsageError(f"{' and '.join(given)} exclude each other: give one output size")
        if self.outscale is not None and not (math.isfinite(self.outscale) and self.outscale > 0):
            raise UsageError(f"--outscale must be a number above 0, got {self.outscale}")

    @property
    def active(self) -> bool:
        """Whether any final size was asked for (else the output is the model's scale)."""
        return any(v is not None for v in (self.outscale, self.width, self.height, self.min_side))

    def factor(self, width: int, height: int) -> float:
        """The linear factor from an input of ``width`` x ``height`` to the size asked for."""
        if self.outscale is not None:
            return self.outscale
        if self.min_side is not None:
            return max(self.min_side / min(width, height), 1.0)
        return min(self.width / width if self.width else math.inf, self.height / height if self.height else math.inf)

    def target(self, width: int, height: int) -> tuple[int, int]:
        """The final (width, height): exact where given, the other side from the aspect, at least 1 pixel."""
        f = self.factor(width, height)
        w, h = (max(1, math.floor(side * f + 0.5)) for side in (width, height))  # rounded half up
        if self.width and f == self.width / width:
            return self.width, h
        if self.height and f == self.height / height:
            return w, self.height
        return w, h

    def model_scale(self, width: int, height: int, scales: Sequence[int]) -> int:
        """The smallest of ``scales`` whose output covers the target (the largest when none does)."""
        w, h = self.target(width, height)
        return next((s for s in sorted(scales) if s * width >= w and s * height >= h), max(scales))


def resize_picture(pixels: np.ndarray, bit_depth: int, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) integer pixels → (h, w, C) at ``size`` = (w, h) by the antialiased Lanczos filter, each channel
    in float32 (8- and 16-bit alike); colour with alpha (C = 2, 4) is resized premultiplied, so that transparent
    pixels lend no colour to the edges."""
    top = float((1 << bit_depth) - 1)
    channels = pixels.shape[2]
    has_alpha = channels in (2, 4)
    planes = [pixels[:, :, c].astype(np.float32) for c in range(channels)]
    if has_alpha:
        alpha = planes[-1] / np.float32(top)
        planes[:-1] = [p * alpha for p in planes[:-1]]
    out = [np.asarray(Image.fromarray(p).resize(size, Image.Resampling.LANCZOS)) for p in planes]
    if has_alpha:
        big_alpha = np.clip(out[-1], 0, top) / np.float32(top)
        out[:-1] = [np.where(big_alpha > 1e-6, p / np.maximum(big_alpha, 1e-6), p) for p in out[:-1]]
    return np.stack([np.rint(np.clip(p, 0, top)) for p in out], axis=2).astype(pixels.dtype)
