"""Benchmarking: the published Y-PSNR/SSIM protocol over data sets × models × scales, through the engine.

HR is cropped to a multiple of the scale, LR made by the chosen degradation (or read from an LR folder), the
model upscales LR through the same tiled engine as ``srtool upscale``, and PSNR/SSIM are computed on Y with the
scale shaved from each border (REFERENCE §1).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sr_cli.degrade import crop_to_scale, degrade
from sr_cli.errors import InputError, SrtoolError, UsageError
from sr_cli.images import Picture, read_image, write_image
from sr_cli.metrics import psnr, ssim
from sr_cli.pipeline import Upscaler
from sr_cli.realworld import degrade_picture


@dataclass
class ImageScore:
    """One image's result."""

    image: str
    psnr: float
    ssim: float
    seconds: float


@dataclass
class RunScore:
    """One data set × model × scale."""

    dataset: str
    model: str
    scale: int
    params: int
    psnr: float = 0.0
    ssim: float = 0.0
    seconds_per_image: float = 0.0
    megapixels_per_second: float = 0.0
    images: list[ImageScore] = field(default_factory=list)

    def finish(self, pixels: int) -> None:
        """Fill the means from the per-image rows (``pixels``: SR pixels made in total)."""
        n = len(self.images)
        seconds = sum(i.seconds for i in self.images)
        self.psnr = sum(i.psnr for i in self.images) / n
        self.ssim = sum(i.ssim for i in self.images) / n
        self.seconds_per_image = seconds / n
        self.megapixels_per_second = pixels / 1e6 / seconds if seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON/CSV."""
        return asdict(self)


@dataclass(frozen=True)
class Degradation:
    """How LR is made from HR: a named degradation with its extras, or an LR folder."""

    name: str = "bicubic"
    blur_sigma: float | None = None
    noise_sigma: float = 0.0
    jpeg_quality: int | None = None
    seed: int = 0
    lr_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.name == "realesrgan" and (self.blur_sigma or self.noise_sigma or self.jpeg_quality):
            raise UsageError("--degradation realesrgan draws its own blur, noise and JPEG: drop --blur-sigma, "
                             "--noise and --jpeg")

    def make(self, hr: np.ndarray, scale: int, source: Path) -> np.ndarray:
        """The LR for ``hr`` (already cropped to a multiple of ``scale``)."""
        if self.lr_dir is not None:
            return self._read_lr(hr, scale, source)
        if self.name == "realesrgan":
            return degrade_picture(hr, scale, self.seed, source.name)
        lr = degrade(hr[..., 0] if hr.shape[2] == 1 else hr, scale, self.name, blur_sigma=self.blur_sigma,
                     noise_sigma=self.noise_sigma, jpeg_quality=self.jpeg_quality, seed=self.seed)
        return lr[..., None] if lr.ndim == 2 else lr

    def _read_lr(self, hr: np.ndarray, scale: int, source: Path) -> np.ndarray:
        assert self.lr_dir is not None
        candidates = [self.lr_dir / f"X{scale}" / f"{source.stem}x{scale}.png", self.lr_dir / f"{source.stem}x{scale}.png",
                      self.lr_dir / source.name]
        for path in candidates:
            if path.is_file():
                lr = read_image(path).pixels
                want = (hr.shape[0] // scale, hr.shape[1] // scale)
                if lr.shape[:2] != want:
                    raise InputError(f"{path}: LR is {lr.shape[1]}x{lr.shape[0]}, expected {want[1]}x{want[0]} "
                                     f"for x{scale} of {source.name}")
                return lr
        raise InputError(f"no LR image for {source.name} at x{scale} in {self.lr_dir} "
                         f"(looked for {candidates[0].name} in X{scale}/ and the folder itself)")


def eight_bit(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """(H, W, C) pixels as the protocol scores them: 8-bit (16-bit rounded), alpha dropped."""
    if bit_depth == 16:
        pixels = np.round(pixels / 257).astype(np.uint8)
    return pixels[..., :-1] if pixels.shape[2] in (2, 4) else pixels


def load_hr(path: Path, scale: int) -> np.ndarray:
    """The HR image as 8-bit (H, W, C), alpha dropped, cropped to a multiple of ``scale``."""
    picture = read_image(path)
    pixels = eight_bit(picture.pixels, picture.bit_depth)
    if pixels.shape[0] < scale or pixels.shape[1] < scale:
        raise InputError(f"{path}: image {pixels.shape[1]}x{pixels.shape[0]} is smaller than the scale x{scale}")
    return crop_to_scale(pixels, scale)


def score(sr: np.ndarray, hr: np.ndarray, scale: int) -> tuple[float, float]:
    """Y-PSNR and Y-SSIM with ``scale`` pixels shaved (a 1-channel image on its own values)."""
    a, b = (sr[..., 0], hr[..., 0]) if hr.shape[2] == 1 else (sr, hr)
    return psnr(a, b, shave=scale), ssim(a, b, shave=scale)


def upscale_timed(upscaler: Upscaler, lr: np.ndarray) -> tuple[np.ndarray, float]:
    """SR output (uint8) and the seconds it took."""
    start = time.perf_counter()
    sr = upscaler.upscale_uint8(lr)
    return sr, time.perf_counter() - start


Box = tuple[int, int, int, int]  # x, y, width, height in pixels

LABEL_SIZE = 15  # label font size in pixels


def labelled_grid(panels: list[tuple[str, np.ndarray]], columns: int, gap: int = 4) -> tuple[np.ndarray, list[Box]]:
    """Put the (label, HxWxC uint8, C 1 or 3) panels in rows of ``columns``, each under its label (one or more
    lines), ``gap`` white pixels apart: the RGB grid, and the box of each panel's pixels in it. A column is as wide
    as its widest panel, a row as tall as its tallest."""
    font = ImageFont.load_default(LABEL_SIZE)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_h = max(measure.multiline_textbbox((0, 0), label, font=font)[3] for label, _ in panels) + 6
    cells = [panels[i:i + columns] for i in range(0, len(panels), columns)]
    widths = [max(row[c][1].shape[1] for row in cells if c < len(row)) for c in range(min(columns, len(panels)))]
    heights = [label_h + max(p.shape[0] for _, p in row) for row in cells]
    xs = [sum(widths[:c]) + c * gap for c in range(len(widths))]
    ys = [sum(heights[:r]) + r * gap for r in range(len(heights))]
    canvas = Image.new("RGB", (xs[-1] + widths[-1], ys[-1] + heights[-1]), "white")
    draw = ImageDraw.Draw(canvas)
    boxes: list[Box] = []
    for k, (label, pixels) in enumerate(panels):
        x, y = xs[k % columns], ys[k // columns]
        rgb = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels
        canvas.paste(Image.fromarray(np.ascontiguousarray(rgb)), (x, y + label_h))
        draw.multiline_text((x + 4, y + 3), label, fill="black", font=font)
        boxes.append((x, y + label_h, rgb.shape[1], rgb.shape[0]))
    return np.asarray(canvas), boxes


def write_png(pixels: np.ndarray, path: Path) -> None:
    """Write 8-bit pixels as PNG (replacing an older bench output)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(Picture(np.ascontiguousarray(pixels), 8), path, overwrite=True)


def run_bench(
    datasets: list[tuple[str, list[Path]]],
    models: list[str],
    scales: dict[str, list[int]],
    make_upscaler: Callable[[str, int], Upscaler],
    *,
    degradation: Degradation = Degradation(),
    save_dir: Path | None = None,
    compare_dir: Path | None = None,
    on_error: Callable[[SrtoolError], None],
    on_image: Callable[[], None] = lambda: None,
) -> list[RunScore]:
    """Score every model at its scales on every data set; a failing combination is reported and skipped."""
    results: list[RunScore] = []
    for dataset, paths in datasets:
        for scale in sorted({s for m in models for s in scales[m]}):
            upscalers: dict[str, Upscaler] = {}
            for name in (m for m in models if scale in scales[m]):
                try:
                    upscalers[name] = make_upscaler(name, scale)
                except SrtoolError as err:
                    on_error(err)
            if not upscalers:
                continue
            runs = {name: RunScore(dataset, name, scale, up.params) for name, up in upscalers.items()}
            pixels = dict.fromkeys(upscalers, 0)
            for path in paths:
                try:
                    hr = load_hr(path, scale)
                    lr = degradation.make(hr, scale, path)
                except SrtoolError as err:
                    on_error(err)
                    on_image()
                    continue
                panels = [("HR", hr)]
                if compare_dir is not None and "bicubic" not in upscalers:
                    panels.append(("bicubic", make_upscaler("bicubic", scale).upscale_uint8(lr)))
                for name, upscaler in upscalers.items():
                    sr, seconds = upscale_timed(upscaler, lr)
                    try:
                        p, q = score(sr, hr, scale)
                    except SrtoolError as err:
                        on_error(type(err)(f"{path}: {err}"))
                        continue
                    runs[name].images.append(ImageScore(path.stem, p, q, seconds))
                    pixels[name] += sr.shape[0] * sr.shape[1]
                    panels.append((f"{name} x{scale} {p:.2f} dB", sr))
                    if save_dir is not None:
                        write_png(sr, save_dir / dataset / f"x{scale}" / name / f"{path.stem}.png")
                if compare_dir is not None:
                    grid, _ = labelled_grid(panels, len(panels))
                    write_png(grid, compare_dir / f"{dataset}_x{scale}_{path.stem}.png")
                on_image()
            for name, run in runs.items():
                if run.images:
                    run.finish(pixels[name])
                    results.append(run)
    return results
