"""Upscaling of whole pictures: colour-space handling around the engine.

RGB models see RGB; Y models see the BT.601 luma and the chroma is upscaled by MATLAB bicubic; a gray image
goes through a Y model as it is and through an RGB model as three equal channels (then back to one); alpha is
upscaled on its own by bicubic and the colour is upscaled premultiplied, so edges keep no dark fringe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sr_cli.colour import rgb_to_ycbcr, ycbcr_to_rgb
from sr_cli.device import select_device, select_precision
from sr_cli.engine import Engine, Progress
from sr_cli.interp import Bicubic
from sr_cli.registry import bf16_harmless, get_spec
from sr_cli.weights import load_model_options


class Upscaler:
    """One model, loaded once, ready to upscale pictures and video frames."""

    def __init__(
        self,
        name: str,
        scale: int,
        *,
        weights: str | Path | None = None,
        blend: tuple[Path, float] | None = None,
        device: str | None = "auto",
        precision: str | None = "auto",
        tile: int | str | None = "auto",
        ensemble: bool = False,
        batch_size: int = 4,
        **options: Any,
    ) -> None:
        self.spec = get_spec(name)
        self.spec.check_scale(scale)
        self.scale = scale
        self.device = select_device(device)
        self.dtype = select_precision(precision, self.device,
                                      bf16_harmless=weights is None and bf16_harmless(self.spec, scale))
        self.model, built = load_model_options(self.spec, scale, weights, blend=blend, **options)
        self.overlap = self.spec.overlap(scale, **built)
        tile_px = None if tile in (None, "auto") else int(tile)
        self.engine = Engine(self.model, scale, self.overlap, self.device, self.dtype, tile_px, batch_size, ensemble)
        self._chroma = Engine(Bicubic(scale, levels=None), scale, get_spec("bicubic").overlap(scale), self.device,
                              torch.float32, tile_px, batch_size)

    @property
    def params(self) -> int:
        """Parameter count of the loaded model."""
        return sum(p.numel() for p in self.model.parameters())

    def set_levels(self, levels: int | None) -> None:
        """Quantisation grid for the MATLAB bicubic model (255 for 8-bit, 65535 for 16-bit, None for float)."""
        if isinstance(self.model, Bicubic):
            self.model.levels = levels

    def _run(self, x: torch.Tensor, progress: Progress | None) -> torch.Tensor:
        """(N, C, H, W) float in [0,1] with C = 1 or 3 → upscaled, through the model's colour space."""
        if self.spec.space == "y" and x.shape[1] == 3:
            ycc = rgb_to_ycbcr(x)
            y = self.engine.run(ycc[:, :1].contiguous(), progress)
            cbcr = self._chroma.run(ycc[:, 1:].contiguous())
            return ycbcr_to_rgb(y, cbcr)
        if self.spec.space == "rgb" and x.shape[1] == 1:
            return self.engine.run(x.expand(-1, 3, -1, -1).contiguous(), progress).mean(dim=1, keepdim=True)
        return self.engine.run(x, progress)

    @torch.inference_mode()
    def upscale_float(self, arr: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """(H, W, C) float32 in [0, 1], C in 1..4 (alpha last for 2 and 4) → (sH, sW, C) float32 in [0, 1]."""
        x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
        c = x.shape[1]
        if c in (2, 4):
            colour, alpha = x[:, :-1], x[:, -1:]
            big_alpha = self._chroma.run(alpha).clamp(0, 1)
            big = self._run(colour * alpha, progress).clamp(0, 1)
            colour_out = torch.where(big_alpha > 1e-6, big / big_alpha.clamp_min(1e-6), big).clamp(0, 1)
            y = torch.cat([colour_out, big_alpha], dim=1)
        else:
            y = self._run(x, progress).clamp_(0, 1)
        return y[0].permute(1, 2, 0).numpy()

    def upscale_uint8(self, arr: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """(H, W, C) uint8 → (sH, sW, C) uint8, rounded."""
        self.set_levels(255)
        out = self.upscale_float(arr.astype(np.float32) / 255, progress)
        return np.round(out * 255).astype(np.uint8)

    @torch.inference_mode()
    def upscale_frames(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 video frames → (N, sH, sW, 3) uint8, as one engine batch."""
        self.set_levels(255)
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255)
        y = self._run(x, None).clamp_(0, 1).mul_(255).round_()
        return y.to(torch.uint8).permute(0, 2, 3, 1).numpy()
