"""Real-ESRGAN's second-order degradation (Wang et al. 2021, "Real-ESRGAN: Training Real-World Blind
Super-Resolution with Pure Synthetic Data"), applied to one HR patch at a time on the CPU.

The order is that of ``RealESRNetModel.feed_data``: blur → random resize → Gaussian or Poisson noise → JPEG, then
again (the blur with a probability) with the resize relative to the LR size, and last, in random order, JPEG and
[resize to exactly HR/scale + a sinc filter]; the result is rounded to uint8. The defaults are those of
``options/train_realesrnet_x4plus.yml``. Differences: JPEG is Pillow's real encoder at an integer quality (not
DiffJPEG), kernels keep their own odd size (a 21×21 zero-padded kernel filters the same with reflected borders),
there is no unsharp masking of the HR, every resize is to an explicit size of at least one pixel, and the training
patch itself is degraded (Real-ESRGAN degrades a 400-pixel crop and then cuts its patch), so the patch's outer
pixels, up to half a kernel from its edge, are filtered with reflected borders rather than with the picture around.

All randomness is drawn by :func:`draw_plan` from one ``numpy.random.Generator`` (the noise fields from seeds it
draws), and :func:`apply_plan` is a pure function of the image and the plan: the same generator state gives the
same LR bytes in any process. Pixel values are float32 (float64 for bench) in 0-255 units, (C, H, W).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sr_cli.degrade import jpeg_roundtrip, round_to_uint8, crop_to_scale

KERNEL_KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
RESIZE_MODES = ("area", "bilinear", "bicubic")
GRAY_WEIGHTS = np.array([0.2989, 0.587, 0.114], dtype=np.float32)  # torchvision's rgb_to_grayscale, as Real-ESRGAN


@dataclass(frozen=True)
class KernelParams:
    """How a blur kernel is drawn: a sinc with ``sinc_prob``, else one of ``kinds`` with ``probs``."""

    sigma: tuple[float, float] = (0.2, 3.0)  # both axes of the Gaussian-like kernels
    kinds: tuple[str, ...] = KERNEL_KINDS
    probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob: float = 0.1
    betag: tuple[float, float] = (0.5, 4.0)  # generalized Gaussian shape
    betap: tuple[float, float] = (1.0, 2.0)  # plateau shape


@dataclass(frozen=True)
class StageParams:
    """The resize, noise and JPEG of one degradation stage (noise in 0-255 units)."""

    resize_prob: tuple[float, float, float]  # up, down, keep
    resize_range: tuple[float, float]
    noise_range: tuple[float, float]
    poisson_scale_range: tuple[float, float]
    gaussian_noise_prob: float = 0.5
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[int, int] = (30, 95)


@dataclass(frozen=True)
class RealWorldParams:
    """Every range and probability of the pipeline; the defaults are Real-ESRNet x4plus's."""

    kernel1: KernelParams = KernelParams()
    stage1: StageParams = StageParams((0.2, 0.7, 0.1), (0.15, 1.5), (1.0, 30.0), (0.05, 3.0))
    kernel2: KernelParams = KernelParams(sigma=(0.2, 1.5))
    second_blur_prob: float = 0.8
    stage2: StageParams = StageParams((0.3, 0.4, 0.3), (0.3, 1.2), (1.0, 25.0), (0.05, 2.5))
    final_sinc_prob: float = 0.8
    kernel_sizes: tuple[int, ...] = tuple(range(7, 22, 2))


DEFAULTS = RealWorldParams()


@dataclass(frozen=True)
class Noise:
    """One noise draw: Gaussian with sigma ``amount`` or Poisson scaled by ``amount``; ``gray``: one field for
    all channels; ``seed`` makes the field."""

    gaussian: bool
    amount: float
    gray: bool
    seed: int


@dataclass(frozen=True, eq=False)
class Stage:
    """One stage's draws: blur kernel (None: no blur), resize factor and mode, noise, JPEG quality."""

    kernel: np.ndarray | None
    resize: float
    mode: str
    noise: Noise
    quality: int


@dataclass(frozen=True, eq=False)
class Plan:
    """Every random choice of one degradation; ``jpeg_first``: the last JPEG comes before the final resize and
    sinc (else after them)."""

    first: Stage
    second: Stage
    final_mode: str
    sinc: np.ndarray | None
    jpeg_first: bool


# ---------------------------------------------------------------------------------------------- kernels


def _normalised(kernel: np.ndarray) -> np.ndarray:
    """``kernel`` scaled to sum to 1, as float32."""
    return (kernel / kernel.sum()).astype(np.float32)


def _mahalanobis(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """``[x y] Σ⁻¹ [x y]ᵀ`` on a ``size``×``size`` grid centred on 0, Σ the covariance with standard deviations
    ``sigma_x``, ``sigma_y`` along axes rotated by ``theta``."""
    t = np.arange(size, dtype=np.float64) - size // 2
    xx, yy = np.meshgrid(t, t)
    c, s = math.cos(theta), math.sin(theta)
    u = xx * c + yy * s  # coordinates along the rotated axes
    v = -xx * s + yy * c
    return (u / sigma_x) ** 2 + (v / sigma_y) ** 2


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float = 1.0) -> np.ndarray:
    """A (generalized, for ``beta`` ≠ 1) bivariate Gaussian ``exp(-½ d^(2β))``, float32, summing to 1."""
    return _normalised(np.exp(-0.5 * _mahalanobis(size, sigma_x, sigma_y, theta) ** beta))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """A bivariate plateau ``1 / (d^(2β) + 1)``, float32, summing to 1."""
    return _normalised(1.0 / (_mahalanobis(size, sigma_x, sigma_y, theta) ** beta + 1.0))


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """A circular low-pass (2-D sinc) ``ω J₁(ω r) / (2π r)`` with cutoff ``ω`` in radians per pixel, float32,
    summing to 1 (it has negative lobes)."""
    t = np.arange(size, dtype=np.float64) - size // 2
    r = np.hypot(*np.meshgrid(t, t))
    r[size // 2, size // 2] = 1.0  # the limit at 0 is set below
    kernel = cutoff * torch.special.bessel_j1(torch.from_numpy(cutoff * r)).numpy() / (2 * math.pi * r)
    kernel[size // 2, size // 2] = cutoff ** 2 / (4 * math.pi)
    return _normalised(kernel)


def _beta(rng: np.random.Generator, low_high: tuple[float, float]) -> float:
    """Real-ESRGAN's shape draw: half the time below 1, half above."""
    low, high = low_high
    return float(rng.uniform(low, 1.0) if rng.uniform() < 0.5 else rng.uniform(1.0, high))


def random_kernel(rng: np.random.Generator, params: KernelParams, size: int) -> tuple[str, np.ndarray]:
    """A blur kernel of ``size`` drawn as Real-ESRGAN draws them, and its kind (``sinc`` or a ``KERNEL_KINDS``)."""
    if rng.uniform() < params.sinc_prob:
        return "sinc", sinc_kernel(size, float(rng.uniform(math.pi / 3 if size < 13 else math.pi / 5, math.pi)))
    kind = params.kinds[int(rng.choice(len(params.kinds), p=params.probs))]
    sigma_x = float(rng.uniform(*params.sigma))
    if kind.split("_")[-1] == "iso":
        sigma_y, theta = sigma_x, 0.0
    else:
        sigma_y, theta = float(rng.uniform(*params.sigma)), float(rng.uniform(-math.pi, math.pi))
    if kind.startswith("generalized"):
        return kind, gaussian_kernel(size, sigma_x, sigma_y, theta, _beta(rng, params.betag))
    if kind.startswith("plateau"):
        return kind, plateau_kernel(size, sigma_x, sigma_y, theta, _beta(rng, params.betap))
    return kind, gaussian_kernel(size, sigma_x, sigma_y, theta)


# ---------------------------------------------------------------------------------------------- the plan


def _draw_stage(rng: np.random.Generator, params: StageParams, kernel: np.ndarray | None) -> Stage:
    """The random choices of one stage (resize, noise, JPEG quality) around its blur ``kernel``."""
    direction = int(rng.choice(3, p=params.resize_prob))
    low, high = params.resize_range
    resize = float(rng.uniform(1.0, high)) if direction == 0 else float(rng.uniform(low, 1.0)) if direction == 1 \
        else 1.0
    mode = RESIZE_MODES[int(rng.integers(len(RESIZE_MODES)))]
    gaussian = bool(rng.uniform() < params.gaussian_noise_prob)
    amount = float(rng.uniform(*(params.noise_range if gaussian else params.poisson_scale_range)))
    noise = Noise(gaussian, amount, bool(rng.uniform() < params.gray_noise_prob), int(rng.integers(2 ** 63)))
    quality = int(rng.integers(params.jpeg_range[0], params.jpeg_range[1], endpoint=True))
    return Stage(kernel, resize, mode, noise, quality)


def draw_plan(rng: np.random.Generator, params: RealWorldParams = DEFAULTS) -> Plan:
    """Every random choice of one degradation, drawn from ``rng``."""
    sizes = params.kernel_sizes
    kernel1 = random_kernel(rng, params.kernel1, int(rng.choice(sizes)))[1]
    kernel2 = random_kernel(rng, params.kernel2, int(rng.choice(sizes)))[1]
    sinc = (sinc_kernel(int(rng.choice(sizes)), float(rng.uniform(math.pi / 3, math.pi)))
            if rng.uniform() < params.final_sinc_prob else None)
    first = _draw_stage(rng, params.stage1, kernel1)
    second = _draw_stage(rng, params.stage2, kernel2 if rng.uniform() < params.second_blur_prob else None)
    final_mode = RESIZE_MODES[int(rng.integers(len(RESIZE_MODES)))]
    return Plan(first, second, final_mode, sinc, bool(rng.uniform() < 0.5))


# ---------------------------------------------------------------------------------------------- applying it


def _filter(img: np.ndarray, kernel: np.ndarray | None) -> np.ndarray:
    """Correlate each channel with ``kernel``, borders reflected (numpy's reflect also serves kernels wider
    than the image)."""
    if kernel is None:
        return img
    r = kernel.shape[0] // 2
    padded = torch.from_numpy(np.pad(img, ((0, 0), (r, r), (r, r)), mode="reflect"))
    weight = torch.from_numpy(kernel.astype(img.dtype))[None, None].expand(img.shape[0], 1, -1, -1)
    return F.conv2d(padded[None], weight, groups=img.shape[0])[0].numpy()


def _resize(img: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """(C, H, W) floats resized to ``size`` (at least 1x1) with ``F.interpolate``'s ``mode``."""
    size = (max(1, size[0]), max(1, size[1]))
    if size == img.shape[1:]:
        return img
    return F.interpolate(torch.from_numpy(img)[None], size=size, mode=mode)[0].numpy()


def _noisy(img: np.ndarray, noise: Noise) -> np.ndarray:
    """``img`` plus its noise, clipped to [0, 255] (Real-ESRGAN's ``random_add_*_noise_pt`` with ``clip``)."""
    rng = np.random.default_rng(noise.seed)
    if noise.gaussian:
        shape = (1, *img.shape[1:]) if noise.gray else img.shape
        added = rng.standard_normal(shape, dtype=img.dtype) * img.dtype.type(noise.amount)
    else:  # Poisson at 2^ceil(log2(distinct levels)) levels of the 8-bit image, scaled
        base = np.tensordot(GRAY_WEIGHTS.astype(img.dtype), img, axes=1)[None] if noise.gray else img
        levels = round_to_uint8(base)
        vals = 2.0 ** math.ceil(math.log2(np.count_nonzero(np.bincount(levels.ravel(), minlength=256))))
        added = (rng.poisson(levels * (vals / 255.0)) * (255.0 / vals) - levels).astype(img.dtype)
        added *= img.dtype.type(noise.amount)
    return np.clip(img + added, 0.0, 255.0)


def _compressed(img: np.ndarray, quality: int) -> np.ndarray:
    """Through Pillow's JPEG at ``quality`` (clamped and rounded to 8 bits first)."""
    return np.ascontiguousarray(jpeg_roundtrip(round_to_uint8(img.transpose(1, 2, 0)), quality).transpose(2, 0, 1),
                                dtype=img.dtype)


def _stage(img: np.ndarray, stage: Stage, base: tuple[int, int]) -> np.ndarray:
    """Blur, resize to ``base`` × the stage's factor, noise."""
    img = _filter(img, stage.kernel)
    img = _resize(img, (int(base[0] * stage.resize), int(base[1] * stage.resize)), stage.mode)
    return _noisy(img, stage.noise)


def apply_plan(hr: np.ndarray, scale: int, plan: Plan, dtype: type = np.float32) -> np.ndarray:
    """HR uint8 (H, W, 3), H and W multiples of ``scale`` → LR uint8 (H / scale, W / scale, 3) degraded by
    ``plan``, computed in ``dtype`` (float64: the same bytes on any CPU, see :func:`degrade_picture`)."""
    h, w = hr.shape[:2]
    lr_size = (h // scale, w // scale)
    img = np.ascontiguousarray(hr.transpose(2, 0, 1), dtype=dtype)
    img = _compressed(_stage(img, plan.first, (h, w)), plan.first.quality)
    img = _stage(img, plan.second, lr_size)
    if plan.jpeg_first:
        img = _compressed(img, plan.second.quality)
    img = _filter(_resize(img, lr_size, plan.final_mode), plan.sinc)
    if not plan.jpeg_first:
        img = _compressed(img, plan.second.quality)
    return np.ascontiguousarray(round_to_uint8(img).transpose(1, 2, 0))


def degrade_realworld(hr: np.ndarray, scale: int, rng: np.random.Generator, params: RealWorldParams = DEFAULTS,
                      dtype: type = np.float32) -> np.ndarray:
    """HR uint8 (H, W, 3) → LR uint8 (H // scale, W // scale, 3) by a plan drawn from ``rng``, computed in ``dtype``;
    HR is cropped to a multiple of ``scale``."""
    return apply_plan(crop_to_scale(hr, scale), scale, draw_plan(rng, params), dtype)


def degrade_picture(hr: np.ndarray, scale: int, seed: int, name: str) -> np.ndarray:
    """A whole picture's LR (``srtool bench --degradation realesrgan``): (H, W, C) uint8, C 1 or 3 (gray is degraded
    as RGB and its first channel kept), by the plan of ``default_rng([seed, 3, crc32(name)])``: the same file name
    and seed give the same LR on every run. Computed in float64: float32 convolutions sum in an order that depends on
    the CPU (AVX2, AVX-512), and a value moved across a rounding edge moves a whole JPEG block, so a score measured on
    one machine would not be the score on another; float64's errors stay far from any edge."""
    rgb = np.ascontiguousarray(np.repeat(hr, 3, axis=2) if hr.shape[2] == 1 else hr)
    lr = degrade_realworld(rgb, scale, np.random.default_rng([seed, 3, zlib.crc32(name.encode())]), dtype=np.float64)
    return lr[..., :1] if hr.shape[2] == 1 else lr
