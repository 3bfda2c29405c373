"""MATLAB BT.601 colour conversion (``rgb2ycbcr`` / ``ycbcr2rgb``), the convention SR papers score in.

On [0, 1] RGB: ``Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255`` and likewise for Cb and Cr
(offset 128/255). The inverse uses the exact inverse of that matrix, as MATLAB does.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def _affine(planes: Sequence[Tensor], matrix: np.ndarray, offset: np.ndarray) -> Tensor:
    """``Σ_j matrix[i, j] · planes[j] + offset[i]`` for each row ``i``, at dim -3: per-plane multiply-adds, written
    straight into the result unless a gradient is wanted (a 3×3 einsum over (…, 3, H, W) runs as a batched matrix
    product, about 2x slower on CPU)."""
    grad = torch.is_grad_enabled() and any(p.requires_grad for p in planes)
    shape = (*planes[0].shape[:-2], len(matrix), *planes[0].shape[-2:])
    out = None if grad else torch.empty(shape, dtype=planes[0].dtype, device=planes[0].device)
    rows = []
    for i, (coefficients, constant) in enumerate(zip(matrix.tolist(), offset.tolist(), strict=True)):
        acc = planes[0] * coefficients[0] if out is None else \
            torch.mul(planes[0], coefficients[0], out=out.select(-3, i))
        for plane, c in zip(planes[1:], coefficients[1:], strict=True):
            acc.add_(plane, alpha=c)
        rows.append(acc.add_(constant))
    return out if out is not None else torch.stack(rows, dim=-3)


def _planes(x: Tensor) -> tuple[Tensor, ...]:
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"expected a (..., 3, H, W) tensor, got shape {tuple(x.shape)}")
    return x.unbind(-3)


def rgb_to_ycbcr(x: Tensor) -> Tensor:
    """RGB in [0, 1], channels at dim -3 → YCbCr in [0, 1] (MATLAB ``rgb2ycbcr`` on doubles)."""
    return _affine(_planes(x), _MATRIX / 255.0, _OFFSET / 255.0)


def ycbcr_to_rgb(x: Tensor, chroma: Tensor | None = None) -> Tensor:
    """YCbCr in [0, 1], channels at dim -3 → RGB (MATLAB ``ycbcr2rgb``; not clipped). With ``chroma``, ``x`` holds
    Y alone and ``chroma`` Cb and Cr (no concatenated copy is made)."""
    planes = _planes(x) if chroma is None else (x.select(-3, 0), *chroma.unbind(-3))
    inverse = _INVERSE * 255.0
    return _affine(planes, inverse, -inverse @ (_OFFSET / 255.0))


def rgb_to_y(x: Tensor) -> Tensor:
    """RGB in [0, 1] (…, 3, H, W) → Y in [0, 1] (…, 1, H, W)."""
    return _affine(_planes(x), _MATRIX[:1] / 255.0, _OFFSET[:1] / 255.0)


def rgb_to_y_np(arr: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) in [0, 255] → 255·Y (H, W) float64, unrounded (the value papers score)."""
    rgb = np.asarray(arr, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {rgb.shape}")
    return _OFFSET[0] + rgb @ (_MATRIX[0] / 255.0)
