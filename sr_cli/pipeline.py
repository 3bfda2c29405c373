"""Upscaling of whole pictures: colour-space handling around the engine.

RGB models see RGB; Y models see the BT.601 luma and the chroma is upscaled by MATLAB bicubic; a gray image
goes through a Y model as it is and through an RGB model as three equal channels (then back to one); alpha is
upscaled on its own by bicubic and the colour is upscaled premultiplied, so edges keep no dark fringe.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from sr_cli.choices import DEFAULT_QUALITY
from sr_cli.colour import rgb_to_ycbcr, ycbcr_to_rgb
from sr_cli.device import select_device, select_precision
from sr_cli.engine import MIN_TILE, Engine, Progress
from sr_cli.images import Picture, read_image, write_image
from sr_cli.interp import Bicubic
from sr_cli.memory import default_budget, work_budget
from sr_cli.modelspec import ModelSpec
from sr_cli.registry import bf16_harmless, get_spec
from sr_cli.weights import load_model_options


def block_spans(length: int, core: int, halo: int, cell: int = 1) -> list[tuple[int, int, int, int]]:
    """(core start, core end, window start, window end) of the blocks along one axis: ``ceil(length / core)``
    nearly equal cores (``core`` 0: one), each window its core plus ``halo`` on the sides that have neighbours.
    Boundaries fall on multiples of ``cell`` (a pixel-unshuffling model's cells)."""
    n = 1 if core <= 0 else max(1, -(-length // core))
    edges = sorted({0, length, *(round(i * length / n / cell) * cell for i in range(1, n))})
    return [(a, b, max(a - halo, 0), min(b + halo, length)) for a, b in zip(edges, edges[1:])]


# Float planes per output channel a block holds at its peak (the network's output, the chroma, the converted colour,
# the quantised copy), each 4 bytes per HR pixel.
FLOAT_PLANES = 4
# Output pictures' worth of memory a block leaves free: Pillow's copy of this picture when it encodes it (RGB is
# stored as 4 bytes a pixel: 4/3), and the previous picture, which the writer thread may still be encoding.
WRITE_COPIES = 4 / 3 + 1


@torch.inference_mode()
def quantize_into(dst: np.ndarray, values: torch.Tensor, top: float) -> None:
    """Store float ``values`` (C, H, W) in [0, 1] (clipped; NaN → 0) into the integer array ``dst`` (H, W, C) as
    0..``top``, rounded half to even; in place on ``values``, in torch's threads (numpy's ufuncs take one core)."""
    values.nan_to_num_(0.0).clamp_(0, 1).mul_(top).round_()
    torch.from_numpy(dst).copy_(values.permute(1, 2, 0))


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
        compile_net: bool = False,
        batch_size: int = 4,
        max_memory: int | None = None,
        **options: Any,
    ) -> None:
        spec = get_spec(name)
        spec.check_scale(scale)
        dev = select_device(device)
        dtype = select_precision(precision, dev, bf16_harmless=weights is None and bf16_harmless(spec, scale))
        model, built = load_model_options(spec, scale, weights, blend=blend, **options)
        self._setup(spec, scale, model, built, dev, dtype, tile=tile, batch_size=batch_size, ensemble=ensemble,
                    compile_net=compile_net, max_memory=max_memory)

    @classmethod
    def around(cls, name: str, scale: int, model: nn.Module, device: torch.device, options: dict[str, Any],
               ) -> Upscaler:
        """An fp32 upscaler around a live network (training's validation), so it scores pictures exactly as
        ``srtool bench`` does; ``options`` are the network's build options (they set its tile overlap)."""
        upscaler = cls.__new__(cls)
        upscaler._setup(get_spec(name), scale, model, options, device, torch.float32)
        return upscaler

    def _setup(self, spec: ModelSpec, scale: int, model: nn.Module, built: dict[str, Any], device: torch.device,
               dtype: torch.dtype, *, tile: int | str | None = "auto", batch_size: int = 4, ensemble: bool = False,
               compile_net: bool = False, max_memory: int | None = None) -> None:
        self.spec, self.scale, self.device, self.dtype, self.model = spec, scale, device, dtype, model
        self.overlap = spec.overlap(scale, **built)
        self.tile = None if tile in (None, "auto") else int(tile)
        self.max_memory = max_memory  # bytes; None: DEFAULT_MAX_MEMORY, loosely (see memory.default_budget)
        self.engine = Engine(model, scale, self.overlap, device, dtype, self.tile, batch_size, ensemble, compile_net)
        self._chroma = Engine(Bicubic(scale, levels=None), scale, get_spec("bicubic").overlap(scale), device,
                              torch.float32, 0)
        self.halo = max(self.overlap, self._chroma.overlap)  # LR context a block needs: the model's and chroma's

    @property
    def params(self) -> int:
        """Parameter count of the loaded model."""
        return sum(p.numel() for p in self.model.parameters())

    def set_levels(self, levels: int | None) -> None:
        """Quantisation grid for the MATLAB bicubic model (255 for 8-bit, 65535 for 16-bit, None for float)."""
        if isinstance(self.model, Bicubic):
            self.model.levels = levels

    def _run(self, x: torch.Tensor, progress: Progress | None, tile: int | None = None) -> torch.Tensor:
        """(N, C, H, W) float in [0,1] with C = 1 or 3 → upscaled, through the model's colour space."""
        if self.spec.space == "y" and x.shape[1] == 3:
            ycc = rgb_to_ycbcr(x)
            y = self.engine.run(ycc[:, :1].contiguous(), progress, tile)
            cbcr = self._chroma.run(ycc[:, 1:].contiguous())
            return ycbcr_to_rgb(y, cbcr)
        if self.spec.space == "rgb" and x.shape[1] == 1:
            return self.engine.run(x.expand(-1, 3, -1, -1).contiguous(), progress, tile).mean(dim=1, keepdim=True)
        return self.engine.run(x, progress, tile)

    @torch.inference_mode()
    def _upscale_window(self, arr: np.ndarray, progress: Progress | None = None) -> torch.Tensor:
        """(H, W, C) float32 in [0, 1], C in 1..4 (alpha last for 2 and 4) → (C, sH, sW) float32 in [0, 1]. On CPU
        a block sized by ``block_size`` runs in one pass; ``--tile N`` and CUDA keep the engine's own tiling."""
        tile = 0 if self.tile is None and self.device.type == "cpu" else None
        x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
        c = x.shape[1]
        if c in (2, 4):
            colour, alpha = x[:, :-1], x[:, -1:]
            big_alpha = self._chroma.run(alpha).clamp(0, 1)
            big = self._run(colour * alpha, progress, tile).clamp(0, 1)
            colour_out = torch.where(big_alpha > 1e-6, big / big_alpha.clamp_min(1e-6), big).clamp(0, 1)
            y = torch.cat([colour_out, big_alpha], dim=1)
        else:
            y = self._run(x, progress, tile).clamp_(0, 1)
        return y[0]

    def block_size(self, height: int, width: int, channels: int, bit_depth: int = 8) -> int:
        """The LR core side of the blocks a picture is upscaled in: ``--tile`` when given (0: the whole picture),
        else the largest whose window fits the work budget by the measured bytes per LR pixel of the network's
        activations (on CPU) and of the float pictures around it. The budget is ``max_memory`` less what the
        process holds and less ``WRITE_COPIES`` outputs of this size (the encoder's copy of this picture, and the
        picture a writer thread may still be encoding), at most half of it (a picture whose copies fill the cap is
        written after its blocks are freed). Without ``max_memory`` a deep model's block keeps a core
        of at least twice its halo (at most 4x the work of one pass), above the default cap if need be."""
        if self.tile is not None:
            return self.tile
        out = channels * self.scale**2
        per_pixel = 4 * channels + FLOAT_PLANES * 4 * out  # the float input and the float outputs around the net
        if self.device.type == "cpu":  # (on CUDA the engine tiles the device's memory itself)
            per_pixel += self.engine.bytes_per_pixel(self.spec.channels)
        budget = default_budget() if self.max_memory is None else work_budget(self.max_memory)
        budget -= min(int(WRITE_COPIES * height * width * out * bit_depth // 8), budget // 2)
        side = int(math.sqrt(max(budget, 0) / per_pixel))
        if side >= max(height, width) + 2 * self.halo:
            return 0
        core = side - 2 * self.halo
        if self.max_memory is None:
            core = max(core, 2 * self.halo)
        return max(MIN_TILE, core)

    def upscale_picture(self, pixels: np.ndarray, bit_depth: int, progress: Progress | None = None) -> np.ndarray:
        """(H, W, C) integer pixels of ``bit_depth`` bits, C in 1..4 → (sH, sW, C) of the same type, block by block
        (see ``block_size``): each block's window carries ``halo`` LR pixels of context, so blocks join exactly
        as one pass would; only the output picture is held whole, as integers."""
        self.set_levels(65535 if bit_depth == 16 else 255)
        h, w, c = pixels.shape
        s, top = self.scale, float((1 << bit_depth) - 1)
        core = self.block_size(h, w, c, bit_depth)
        out = np.empty((h * s, w * s, c), dtype=pixels.dtype)
        cell = getattr(self.model, "unshuffle", 1)
        rows, cols = (block_spans(n, core, self.halo, cell) for n in (h, w))
        blocks = [(r, col) for r in rows for col in cols]
        for k, ((r0, r1, rw, rw1), (c0, c1, cw, cw1)) in enumerate(blocks):
            window = pixels[rw:rw1, cw:cw1].astype(np.float32) / np.float32(top)
            inner = None if progress is None else \
                (lambda done, total, k=k: progress(k * total + done, len(blocks) * total))
            result = self._upscale_window(window, inner)
            part = result[:, (r0 - rw) * s:(r1 - rw) * s, (c0 - cw) * s:(c1 - cw) * s]
            quantize_into(out[r0 * s:r1 * s, c0 * s:c1 * s], part, top)
        return out

    def upscale(self, image: Image.Image | np.ndarray) -> Image.Image | np.ndarray:
        """A PIL image (L, LA, RGB, RGBA, I;16; others as RGB/RGBA) or a uint8/uint16 array (H, W) or (H, W, C),
        C in 1..4 (alpha last for 2 and 4), upscaled and returned as the same kind."""
        if isinstance(image, Image.Image):
            if image.mode == "I;16":
                return Image.fromarray(self.upscale_picture(np.asarray(image)[..., None], 16)[..., 0])
            if image.mode not in ("L", "LA", "RGB", "RGBA"):
                image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
            pixels = np.asarray(image)
            out = self.upscale_picture(pixels[..., None] if pixels.ndim == 2 else pixels, 8)
            return Image.fromarray(out[..., 0] if pixels.ndim == 2 else out, image.mode)
        if image.dtype not in (np.uint8, np.uint16) or image.ndim not in (2, 3):
            raise TypeError(f"expected a uint8 or uint16 (H, W) or (H, W, C) array, got {image.dtype} {image.shape}")
        out = self.upscale_picture(image[..., None] if image.ndim == 2 else image, 16 if image.dtype == np.uint16 else 8)
        return out[..., 0] if image.ndim == 2 else out

    def upscale_file(self, source: str | Path, target: str | Path, *, overwrite: bool = False,
                     quality: int = DEFAULT_QUALITY) -> None:
        """Read ``source``, upscale it and write ``target`` (its format from the suffix; ICC and EXIF carried) as
        ``srtool upscale`` does: atomically, never over an existing file unless ``overwrite``."""
        picture = read_image(source)
        pixels = self.upscale_picture(picture.pixels, picture.bit_depth)
        write_image(Picture(pixels, picture.bit_depth, picture.icc, picture.exif, picture.source_format),
                    target, overwrite=overwrite, quality=quality)

    def upscale_uint8(self, arr: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """(H, W, C) uint8 → (sH, sW, C) uint8, rounded."""
        return self.upscale_picture(arr, 8, progress)

    @torch.inference_mode()
    def upscale_frames(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 or uint16 video frames → (N, sH, sW, 3) of the same type, as one engine batch."""
        deep = frames.dtype == np.uint16
        top = 65535 if deep else 255
        self.set_levels(top)
        x = torch.from_numpy(np.ascontiguousarray(frames).astype(np.float32)).permute(0, 3, 1, 2).div_(top)
        y = self._run(x, None)
        out = np.empty((y.shape[0], *y.shape[2:], y.shape[1]), dtype=frames.dtype)
        for frame, values in zip(out, y, strict=True):
            quantize_into(frame, values, top)
        return out
