"""``srtool compare``: one crop of a picture upscaled by several models, in one labelled grid.

The crop is the most detailed part of the picture, or the box asked for. A model upscales only the crop and the
context its receptive field needs (its ``halo``), so its tile is the same crop of the whole picture's upscale (the
blocks of ``Upscaler.upscale_picture`` join the same way) at the cost of the crop alone.
"""

from __future__ import annotations

import time

import numpy as np

from sr_cli.errors import UsageError
from sr_cli.evaluate import Box, labelled_grid
from sr_cli.pipeline import Upscaler

TILE_SIDE = 384  # output pixels a side of the default crop's tiles
DETAIL_GRID = 512  # the detail search looks at the picture subsampled to at most this many pixels a side
MAX_COLUMNS = 4
LUMA = np.array([0.299, 0.587, 0.114])


def default_side(scale: int) -> int:
    """The side of the automatic crop in input pixels: tiles of about ``TILE_SIDE`` output pixels."""
    return -(-TILE_SIDE // scale)


def parse_crop(text: str, width: int, height: int) -> Box:
    """``x,y,w,h`` in input pixels, inside a ``width`` x ``height`` picture."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--crop must be x,y,w,h in input pixels, got '{text}'") from None
    if min(x, y) < 0 or min(w, h) < 1 or x + w > width or y + h > height:
        raise UsageError(f"--crop {text} is not inside the {width}x{height} picture")
    return x, y, w, h


def detail_crop(pixels: np.ndarray, side: int) -> Box:
    """The ``side`` x ``side`` box (clipped to the picture) with the most detail: the largest sum of absolute luma
    differences between neighbours, on the picture subsampled to at most ``DETAIL_GRID`` pixels a side (a fine
    texture keeps its energy there, aliased). The first best box in reading order."""
    h, w = pixels.shape[:2]
    bw, bh = min(side, w), min(side, h)
    step = max(1, min(-(-max(h, w) // DETAIL_GRID), bw, bh))
    small = pixels[::step, ::step].astype(np.float64)
    luma = small[..., :3] @ LUMA if small.shape[2] >= 3 else small[..., 0]
    energy = np.zeros_like(luma)
    energy[:, :-1] += np.abs(np.diff(luma, axis=1))
    energy[:-1] += np.abs(np.diff(luma, axis=0))
    total = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    ky, kx = bh // step, bw // step
    sums = total[ky:, kx:] - total[:-ky, kx:] - total[ky:, :-kx] + total[:-ky, :-kx]
    i, j = np.unravel_index(np.argmax(sums), sums.shape)
    return min(int(j) * step, w - bw), min(int(i) * step, h - bh), bw, bh


def upscale_crop(upscaler: Upscaler, pixels: np.ndarray, bit_depth: int, box: Box) -> tuple[np.ndarray, float]:
    """``box`` of the picture upscaled, equal to that box of ``upscaler.upscale_picture(pixels, bit_depth)``, and
    the seconds per output megapixel it took. Only the box and ``halo`` input pixels around it are run, from and
    to whole cells of a pixel-unshuffling model, as the picture's own blocks are. The window runs twice and the
    second run is timed: the first does what a model does once (its memory probe, kernel set-up for the shape)."""
    x, y, w, h = box
    height, width = pixels.shape[:2]
    cell, halo, s = getattr(upscaler.model, "unshuffle", 1), upscaler.halo, upscaler.scale
    top, left = max(y - halo, 0) // cell * cell, max(x - halo, 0) // cell * cell
    bottom = min(-(-(y + h + halo) // cell) * cell, height)
    right = min(-(-(x + w + halo) // cell) * cell, width)
    window = pixels[top:bottom, left:right]
    upscaler.upscale_picture(window, bit_depth)
    start = time.perf_counter()
    out = upscaler.upscale_picture(window, bit_depth)
    seconds = time.perf_counter() - start
    tile = out[(y - top) * s:(y - top + h) * s, (x - left) * s:(x - left + w) * s]
    return tile, seconds / (out.shape[0] * out.shape[1] / 1e6)


def model_label(name: str, scale: int, seconds_per_mp: float, scores: tuple[float, float] | None) -> str:
    """A model tile's label: name and scale, then time per output megapixel and Y-PSNR/SSIM if scored."""
    figures = f"{seconds_per_mp * 1000:,.0f} ms/MP"
    if scores is not None:
        figures += f"   {scores[0]:.2f} dB   SSIM {scores[1]:.4f}"
    return f"{name} x{scale}\n{figures}"


def compare_grid(lr: np.ndarray, box: Box, scale: int, tiles: list[tuple[str, np.ndarray]],
                 reference: np.ndarray | None = None) -> tuple[np.ndarray, list[Box]]:
    """The RGB grid: the input crop ``lr`` (8-bit) enlarged by pixel repetition, each (label, 8-bit tile), then
    the reference crop if given; at most ``MAX_COLUMNS`` a row, rows as full as they can be. Returns the grid and
    the box of each model tile in it."""
    x, y, w, h = box
    panels = [(f"input (nearest)\ncrop {x},{y} {w}x{h}", lr.repeat(scale, axis=0).repeat(scale, axis=1)), *tiles]
    if reference is not None:
        panels.append(("reference (HR)", reference))
    rows = -(-len(panels) // MAX_COLUMNS)
    grid, boxes = labelled_grid(panels, -(-len(panels) // rows), gap=8)
    return grid, boxes[1:1 + len(tiles)]

