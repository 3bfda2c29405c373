"""MATLAB BT.601 colour conversion (``rgb2ycbcr`` / ``ycbcr2rgb``), the convention SR papers score in.

On [0, 1] RGB: ``Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255`` and likewise for Cb and Cr
(offset 128/255). The inverse uses the exact inverse of that matrix, as MATLAB does.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# Rows: Y, Cb, Cr; columns: R, G, B; applied to [0, 1] RGB, giving 0-255-scale offsets from OFFSET.
_MATRIX = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ],
    dtype=np.float64,
)
_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64)
_INVERSE = np.linalg.inv(_MATRIX)


def _mix(x: Tensor, matrix: np.ndarray) -> Tensor:
    """Apply a k×3 matrix over channel dim -3 of a (…, 3, H, W) tensor, giving (…, k, H, W)."""
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"expected a (..., 3, H, W) tensor, got shape {tuple(x.shape)}")
    m = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def _offset(x: Tensor) -> Tensor:
    return torch.as_tensor(_OFFSET / 255.0, dtype=x.dtype, device=x.device).view(3, 1, 1)


def rgb_to_ycbcr(x: Tensor) -> Tensor:
    """RGB in [0, 1], channels at dim -3 → YCbCr in [0, 1] (MATLAB ``rgb2ycbcr`` on doubles)."""
    return _mix(x, _MATRIX / 255.0) + _offset(x)


def ycbcr_to_rgb(x: Tensor) -> Tensor:
    """YCbCr in [0, 1], channels at dim -3 → RGB (MATLAB ``ycbcr2rgb``; not clipped)."""
    return _mix(x - _offset(x), _INVERSE * 255.0)


def rgb_to_y(x: Tensor) -> Tensor:
    """RGB in [0, 1] (…, 3, H, W) → Y in [0, 1] (…, 1, H, W)."""
    return _mix(x, _MATRIX[:1] / 255.0) + _OFFSET[0] / 255.0


def rgb_to_y_np(arr: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) in [0, 255] → 255·Y (H, W) float64, unrounded (the value papers score)."""
    rgb = np.asarray(arr, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {rgb.shape}")
    return _OFFSET[0] + rgb @ (_MATRIX[0] / 255.0)
