"""The tiled inference engine shared by upscale, video and bench.

The input stays on the host. It is cut into equal-sized windows (each tile's core plus an overlap that covers the
model's receptive field, shifted inwards at the image border), windows run on the device in batches, and only
each window's core is copied into the output, which is assembled on the host. With an overlap at least the
receptive-field radius, the tiled result equals a single forward pass. On out-of-memory the batch, then the
tile, is halved and the image restarted; in fp16 a tile whose output is not finite is redone in fp32.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from sr_cli.device import use_channels_last
from sr_cli.errors import SrtoolError
from sr_cli.memory import activation_bytes, default_budget

Progress = Callable[[int, int], None]  # (tiles done, tiles in total)
MIN_TILE = 16


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def spans(length: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """(core start, core end, window start) along one axis; windows all have size min(tile + 2·overlap, length)."""
    window = min(tile + 2 * overlap, length)
    spans = []
    for start in range(0, length, tile):
        end = min(start + tile, length)
        spans.append((start, end, min(max(start - overlap, 0), length - window)))
    return spans


def _ensemble_ops() -> Iterator[tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]]:
    """The 8 flips/transposes (forward, inverse) of the "+" self-ensemble."""
    for transpose in (False, True):
        for flip_h in (False, True):
            for flip_w in (False, True):
                dims = [d for d, on in ((-2, flip_h), (-1, flip_w)) if on]

                def fwd(x: torch.Tensor, t: bool = transpose, d: list[int] = dims) -> torch.Tensor:
                    x = x.flip(d) if d else x
                    return x.transpose(-2, -1) if t else x

                def inv(y: torch.Tensor, t: bool = transpose, d: list[int] = dims) -> torch.Tensor:
                    y = y.transpose(-2, -1) if t else y
                    return y.flip(d) if d else y

                yield fwd, inv


@dataclass
class Engine:
    """Runs an LR→SR ``model`` over images of any size, tile by tile.

    ``tile``: LR core size in pixels, ``0`` for one pass over the whole image, ``None`` to size it from the
    memory budget (on CUDA a quarter of the free device memory, on CPU ``memory.default_budget``). ``overlap``: LR
    pixels of context on each side of a core.
    """

    model: nn.Module
    scale: int
    overlap: int
    device: torch.device
    dtype: torch.dtype = torch.float32
    tile: int | None = None
    batch_size: int = 4
    ensemble: bool = False
    compile_net: bool = False  # torch.compile the network (see ``CompileOpt``)

    def __post_init__(self) -> None:
        self._fp32_model = self.model
        learned = any(True for _ in self.model.parameters())
        if not learned:  # interpolation: nothing to gain from lower precision
            self.dtype = torch.float32
        self._channels_last = use_channels_last(self.device) and learned
        fmt = torch.channels_last if self._channels_last else torch.preserve_format
        self._model = copy.deepcopy(self.model) if self.dtype != torch.float32 else self.model
        self._model = self._model.to(self.device, self.dtype, memory_format=fmt).eval()
        self._fp32_on_device: nn.Module | None = self._model if self.dtype == torch.float32 else None
        self._eager = self._model  # what the footprint is measured on (hooks see no compiled graph)
        if self.compile_net and learned:
            self._model = torch.compile(self._model)
        self.redone_tiles = 0
        self._bytes_per_pixel: float | None = None

    def bytes_per_pixel(self, channels: int) -> float:
        """Peak bytes per LR pixel of a window in flight: the model's measured activations, the input window and
        the output window (on the device in the run's dtype, then as float32 on the host)."""
        if self._bytes_per_pixel is None:
            fmt = torch.channels_last if self._channels_last else torch.contiguous_format
            size = torch.finfo(self.dtype).bits // 8
            out = channels * self.scale**2
            self._bytes_per_pixel = activation_bytes(self._eager, channels, self.device, self.dtype, fmt) + \
                channels * (4 + size) + out * (size + 4)
        return self._bytes_per_pixel

    def auto_tile(self, channels: int) -> tuple[int, int]:
        """A tile size, and how many windows to batch, whose windows fit the memory budget by the model's measured
        footprint (then OOM halving). On CPU one window at a time, as large as fits (batching gains nothing there,
        and a larger window wastes less on its overlap); on CUDA the batch shrinks before the tile."""
        if self.device.type == "cuda":
            budget = torch.cuda.mem_get_info(self.device)[0] // 4
        else:
            budget = default_budget()
        pixels = budget / self.bytes_per_pixel(channels)  # LR pixels of windows in flight
        batch = 1 if self.device.type == "cpu" else self.batch_size
        while batch > 1 and math.sqrt(pixels / batch) < 4 * self.overlap:
            batch //= 2
        tile = max(MIN_TILE, int(math.sqrt(pixels / batch)) - 2 * self.overlap)
        return tile, batch

    @torch.inference_mode()
    def run(self, x: torch.Tensor, progress: Progress | None = None, tile: int | None = None) -> torch.Tensor:
        """Upscale ``x`` (N, C, H, W) float32 on the host; returns (N, C, sH, sW) float32 on the host. ``tile``
        overrides the engine's own for this call (0: one pass, as for a block already sized to fit)."""
        if x.dim() != 4:
            raise ValueError(f"expected an (N, C, H, W) tensor, got shape {tuple(x.shape)}")
        tile = self.tile if tile is None else tile
        tile, batch = (tile, self.batch_size) if tile is not None else self.auto_tile(x.shape[1])
        while True:
            try:
                return self._run_tiled(x, tile, batch, progress)
            except (RuntimeError, torch.OutOfMemoryError) as err:
                if not _is_oom(err):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                h, w = x.shape[-2:]
                if batch > 1:
                    batch //= 2
                elif tile == 0 or tile > MIN_TILE:
                    tile = max(h, w) // 2 if tile == 0 else tile // 2
                    tile = max(tile, MIN_TILE)
                else:
                    raise SrtoolError(
                        f"out of memory on {self.device} even with {MIN_TILE}-pixel tiles: try --device cpu"
                    ) from None

    def _run_tiled(self, x: torch.Tensor, tile: int, batch: int, progress: Progress | None) -> torch.Tensor:
        # a model that pixel-unshuffles its input works on cells: every window starts on one (the image is
        # reflect-padded to whole cells, as the model itself pads, and the tile and overlap are whole cells)
        cell = getattr(self.model, "unshuffle", 1)
        n, c, h0, w0 = x.shape
        if h0 % cell or w0 % cell:
            mode = "reflect" if min(h0, w0) > 1 else "replicate"
            x = torch.nn.functional.pad(x, (0, -w0 % cell, 0, -h0 % cell), mode=mode)
        tile = -(-tile // cell) * cell
        n, c, h, w = x.shape
        s = self.scale
        out = torch.empty((n, c, h * s, w * s), dtype=torch.float32)
        # one window along an axis that a window would span anyway (the same memory, none of the repeated work)
        th, tw = (length if tile <= 0 or tile + 2 * self.overlap >= length else tile for length in (h, w))
        rows, cols = spans(h, th, self.overlap), spans(w, tw, self.overlap)
        wh, ww = min(th + 2 * self.overlap, h), min(tw + 2 * self.overlap, w)
        jobs = [(i, r, c_) for i in range(n) for r in rows for c_ in cols]
        if progress is not None:
            progress(0, len(jobs))  # the count from the start: the bar's total, then its ETA from the first tile
        if (wh, ww) == (h, w) and len(jobs) <= batch:  # one forward pass over the whole input: no assembly copy
            whole = self._forward(x)
            if progress is not None:
                progress(len(jobs), len(jobs))
            return whole[:, :, :h0 * s, :w0 * s]
        for first in range(0, len(jobs), batch):
            chunk = jobs[first:first + batch]
            windows = torch.stack([x[i, :, r[2]:r[2] + wh, c_[2]:c_[2] + ww] for i, r, c_ in chunk])
            result = self._forward(windows)
            for k, (i, (r0, r1, rw), (c0, c1, cw)) in enumerate(chunk):
                out[i, :, r0 * s:r1 * s, c0 * s:c1 * s] = result[
                    k, :, (r0 - rw) * s:(r1 - rw) * s, (c0 - cw) * s:(c1 - cw) * s
                ]
            if progress is not None:
                progress(first + len(chunk), len(jobs))
        return out[:, :, :h0 * s, :w0 * s]

    def _forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Model output for a batch of windows, on the host in float32; non-finite fp16 tiles redone in fp32."""
        try:
            y = self._predict(self._model, windows, self.dtype)
        except RuntimeError as err:
            if not (self.compile_net and isinstance(err, torch._dynamo.exc.BackendCompilerFailed)):
                raise
            reason = (str(getattr(err, "inner_exception", err)).strip() or "no reason given").splitlines()[0]
            raise SrtoolError(f"--compile failed ({reason}): run without --compile") from None
        if self.dtype == torch.float16:
            bad = ~torch.isfinite(y).flatten(1).all(dim=1)
            if bad.any():
                if self._fp32_on_device is None:
                    self._fp32_on_device = copy.deepcopy(self._fp32_model).to(self.device).eval()
                y[bad] = self._predict(self._fp32_on_device, windows[bad], torch.float32)
                self.redone_tiles += int(bad.sum())
        return y

    def _predict(self, model: nn.Module, windows: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        fmt = torch.channels_last if self._channels_last else torch.contiguous_format
        x = windows.to(self.device, dtype, non_blocking=True).contiguous(memory_format=fmt)
        if not self.ensemble:
            y = model(x).float()
        else:
            y = sum(inv(model(fwd(x)).float()) for fwd, inv in _ensemble_ops()) / 8
        return y.to("cpu", torch.float32)

