"""The named degradations that turn an HR image into its LR input, plus optional noise and JPEG.

- ``bicubic``: MATLAB ``imresize(HR, 1/s, 'bicubic')``, byte-exact (``sr_cli.resize``): the benchmark protocol.
- ``blur-decimate``: Gaussian blur (default sigma 1.6, the "BD" setting of the SR literature; the window reaches
  ``ceil(3·sigma)`` pixels each side, normalised to sum 1, borders replicated), then one pixel of every s×s block:
  the pixel at offset ``s // 2`` in each direction, the one MATLAB's ``imresize(..., 'nearest')`` picks.
- ``bilinear``: ``torch.nn.functional.interpolate(mode="bilinear", antialias=True)``, i.e. a triangle filter
  stretched by s (like Pillow's), so it does not alias.
- ``nearest``: ``interpolate(mode="nearest-exact")``, the same pixel as blur-decimate without the blur
  (antialiasing does not apply to nearest: this one aliases on purpose).

Extras, applied after the resize in this order: additive Gaussian noise (sigma in 0-255 units, drawn from
``numpy.random.Generator(PCG64(seed))``, rounded and clipped to uint8), then JPEG at a quality through Pillow
in memory (Pillow's defaults otherwise, i.e. 4:2:0 chroma for RGB). The same inputs and seed give the same bytes.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sr_cli.choices import DEGRADATIONS
from sr_cli.errors import InputError, UsageError
from sr_cli.resize import imresize

DEFAULT_BLUR_SIGMA = 1.6


def crop_to_scale(hr: np.ndarray, scale: int) -> np.ndarray:
    """Crop HR to a multiple of ``scale``: ``hr[:H - H % s, :W - W % s]`` (a view)."""
    h, w = hr.shape[:2]
    return hr[: h - h % scale, : w - w % scale]


def round_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Round half away from zero and clip to [0, 255] (values below zero clip to 0 either way)."""
    return np.clip(np.floor(arr + 0.5), 0, 255).astype(np.uint8)


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = math.ceil(3 * sigma)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-(t * t) / (2 * sigma * sigma))
    return k / k.sum()


def _blur_decimate(hr: np.ndarray, scale: int, sigma: float) -> np.ndarray:
    """Gaussian blur (replicate borders) evaluated only at the kept pixels, float64 out."""
    kernel = _gaussian_kernel(sigma)
    radius = len(kernel) // 2
    img = hr.astype(np.float64)
    for axis in (0, 1):
        n = img.shape[axis]
        centres = np.arange(scale // 2, n, scale)
        taps = np.clip(centres[:, None] + np.arange(-radius, radius + 1), 0, n - 1)
        gathered = np.take(img, taps, axis=axis)  # axis becomes (kept, taps)
        shape = [1] * gathered.ndim
        shape[axis + 1] = len(kernel)
        img = (gathered * kernel.reshape(shape)).sum(axis=axis + 1)
    return img


def _interpolate(hr: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Resize an (H, W[, C]) uint8 image with ``F.interpolate``; float64 out in 0-255."""
    x = torch.from_numpy(hr.astype(np.float64))
    x = x[None, None] if hr.ndim == 2 else x.permute(2, 0, 1)[None]
    y = F.interpolate(x, size=size, mode=mode, antialias=mode == "bilinear", align_corners=None)[0]
    return (y[0] if hr.ndim == 2 else y.permute(1, 2, 0)).numpy()


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode through Pillow's JPEG in memory."""
    if img.ndim == 3 and img.shape[2] not in (1, 3):
        raise UsageError(f"JPEG degradation needs a gray or RGB image, not {img.shape[2]} channels")
    plane = img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img
    buf = io.BytesIO()
    Image.fromarray(plane).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as decoded:
        out = np.asarray(decoded.convert("L" if plane.ndim == 2 else "RGB"))
    return out.reshape(img.shape)


def degrade(
    hr: np.ndarray,
    scale: int,
    name: str = "bicubic",
    *,
    blur_sigma: float | None = None,
    noise_sigma: float = 0.0,
    jpeg_quality: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """HR uint8 (H, W[, C]) → LR uint8 (H // scale, W // scale[, C]); HR is cropped to a multiple of scale.

    ``blur_sigma`` only applies to ``blur-decimate`` (default 1.6); ``noise_sigma`` is in 0-255 units;
    ``jpeg_quality`` in 1-100; ``seed`` drives the noise.
    """
    if name not in DEGRADATIONS:
        raise UsageError(f"unknown degradation {name!r}; choose one of: {', '.join(DEGRADATIONS)}")
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise UsageError(f"degradation scale must be a positive integer, got {scale!r}")
    if blur_sigma is not None and name != "blur-decimate":
        raise UsageError(f"blur sigma applies only to blur-decimate, not {name}")
    if blur_sigma is not None and not (math.isfinite(blur_sigma) and blur_sigma > 0):
        raise UsageError(f"blur sigma must be a positive number, got {blur_sigma}")
    if not (math.isfinite(noise_sigma) and noise_sigma >= 0):
        raise UsageError(f"noise sigma must be zero or more, got {noise_sigma}")
    if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
        raise UsageError(f"JPEG quality must be between 1 and 100, got {jpeg_quality}")
    if hr.dtype != np.uint8 or hr.ndim not in (2, 3):
        raise InputError(f"degrade needs an 8-bit (H, W) or (H, W, C) image, got {hr.dtype} {hr.shape}")
    size = (hr.shape[0] // scale, hr.shape[1] // scale)
    if min(size) < 1:
        raise InputError(f"image {hr.shape[1]}x{hr.shape[0]} is smaller than the scale {scale}")
    hr = crop_to_scale(hr, scale)

    if name == "bicubic":
        lr = imresize(hr, size=size)
    elif name == "blur-decimate":
        lr = round_to_uint8(_blur_decimate(hr, scale, blur_sigma or DEFAULT_BLUR_SIGMA))
    else:
        lr = round_to_uint8(_interpolate(hr, size, "bilinear" if name == "bilinear" else "nearest-exact"))

    if noise_sigma > 0:
        rng = np.random.default_rng(seed)
        lr = round_to_uint8(lr + rng.normal(0.0, noise_sigma, size=lr.shape))
    if jpeg_quality is not None:
        lr = jpeg_roundtrip(lr, jpeg_quality)
    return lr
