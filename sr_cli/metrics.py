"""PSNR, SSIM and MSE as SR papers compute them (REFERENCE §1), in float64.

Inputs are numpy uint8 or float images in [0, 255], (H, W), (H, W, 1) or (H, W, 3), both of one shape.
With ``y=True`` an RGB pair is scored on MATLAB's BT.601 luma (255·Y, unrounded); a 1-channel pair is scored
on its own values either way. ``shave`` pixels are cut from every border first. SSIM is Wang et al.'s
``ssim_index``: 11×11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, L 255, 'valid' filtering, mean of the
map (per channel, then averaged, when an RGB pair is scored with ``y=False``).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sr_cli.colour import rgb_to_y_np
from sr_cli.errors import InputError

_PEAK = 255.0
_C1 = (0.01 * _PEAK) ** 2
_C2 = (0.03 * _PEAK) ** 2


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """1-D factor of MATLAB's ``fspecial('gaussian', size, sigma)`` (the 2-D window is its outer product)."""
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(t * t) / (2 * sigma * sigma))
    return g / g.sum()


_WINDOW = _gaussian_window()


def _prepare(sr: np.ndarray, hr: np.ndarray, shave: int, y: bool) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float64 (H, W, C) planes, luma if asked, with ``shave`` pixels cut from each border."""
    if shave < 0:
        raise InputError(f"shave must be zero or more, got {shave}")
    a, b = np.asarray(sr), np.asarray(hr)
    if a.shape != b.shape:
        raise InputError(f"cannot compare images of different shapes {a.shape} and {b.shape}")
    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise InputError(f"expected a gray or RGB image, got shape {a.shape}")
    h, w = a.shape[:2]
    if 2 * shave >= min(h, w):
        raise InputError(f"image {w}x{h} is too small to shave {shave} pixels from each border")
    if shave:
        a, b = a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]
    a, b = a.astype(np.float64), b.astype(np.float64)
    if y and a.shape[2] == 3:
        a, b = rgb_to_y_np(a)[:, :, None], rgb_to_y_np(b)[:, :, None]
    return a, b


def mse(sr: np.ndarray, hr: np.ndarray, shave: int, y: bool = True) -> float:
    """Mean squared error in 0-255 units over the (shaved, luma or all-channel) pixels."""
    a, b = _prepare(sr, hr, shave, y)
    return float(np.mean((a - b) ** 2))


def psnr(sr: np.ndarray, hr: np.ndarray, shave: int, y: bool = True) -> float:
    """``10·log10(255² / MSE)`` in dB; ``inf`` for identical images."""
    err = mse(sr, hr, shave, y)
    return math.inf if err == 0 else 10.0 * math.log10(_PEAK**2 / err)


def _filter_valid(planes: np.ndarray) -> np.ndarray:
    """Separable 11×11 Gaussian over axes 1 and 2 of (K, H, W), 'valid' (no padding)."""
    n = len(_WINDOW)
    rows = sliding_window_view(planes, n, axis=1) @ _WINDOW
    return sliding_window_view(rows, n, axis=2) @ _WINDOW


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of the SSIM map of two (H, W) float64 planes."""
    stats = _filter_valid(np.stack([a, b, a * a, b * b, a * b]))
    mu_a, mu_b = stats[0], stats[1]
    var_a = stats[2] - mu_a * mu_a
    var_b = stats[3] - mu_b * mu_b
    cov = stats[4] - mu_a * mu_b
    num = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
    den = (mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2)
    return float(np.mean(num / den))


def ssim(sr: np.ndarray, hr: np.ndarray, shave: int, y: bool = True) -> float:
    """Mean SSIM (Wang et al.) over the shaved luma, gray, or RGB channels (averaged)."""
    a, b = _prepare(sr, hr, shave, y)
    if min(a.shape[:2]) < len(_WINDOW):
        raise InputError(f"image is too small for SSIM's {len(_WINDOW)}x{len(_WINDOW)} window after shaving")
    return float(np.mean([_ssim_plane(a[:, :, c], b[:, :, c]) for c in range(a.shape[2])]))
