"""MATLAB-exact bicubic imresize: the benchmark LR files byte for byte, and the float/torch paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from testdata import DATA, HR, crop, read
from tolerances import RESAMPLE_ABS

from sr_cli.errors import UsageError
from sr_cli.resize import contributions, imresize, upscale_bicubic


def lr_pairs(hr_set: str, lr_folder: str, s: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, cropped HR, reference LR) for every HR image of a set."""
    return [
        (p.name, crop(read(p), s), read(DATA / lr_folder / f"X{s}" / f"{p.stem}x{s}.png"))
        for p in sorted((HR / hr_set).glob("*.png"))
    ]


def exact_matches(pairs: list[tuple[str, np.ndarray, np.ndarray]], s: int, border: str) -> list[str]:
    return [
        name
        for name, hr, lr in pairs
        if (out := imresize(hr, scale=1 / s, border=border)).shape == lr.shape and np.array_equal(out, lr)
    ]


CASES = [
    ("Set5", "Set5_LR", "symmetric", 5),
    ("Set14", "Set14_LR", "symmetric", 14),
    ("Set5", "Set5_LR/replicate_border", "replicate", 5),
]


@pytest.mark.parametrize("s", [2, 3, 4])
@pytest.mark.parametrize(("hr_set", "lr_folder", "border", "count"), CASES)
def test_reproduces_benchmark_lr_byte_for_byte(hr_set: str, lr_folder: str, border: str, count: int, s: int) -> None:
    pairs = lr_pairs(hr_set, lr_folder, s)
    assert len(pairs) == count
    assert exact_matches(pairs, s, border) == [name for name, _, _ in pairs]


def test_grayscale_stays_two_dimensional() -> None:
    (bridge,) = [p for p in lr_pairs("Set14", "Set14_LR", 3) if p[0] == "bridge.png"]
    assert bridge[1].ndim == 2
    out = imresize(bridge[1], scale=1 / 3)
    assert out.shape == bridge[2].shape == (170, 170)
    assert out.dtype == np.uint8


def test_border_rule_matters() -> None:
    # The RCAN files need the clamped border, the EDSR-style files the mirrored one: the other rule matches none.
    assert exact_matches(lr_pairs("Set5", "Set5_LR/replicate_border", 2), 2, "symmetric") == []
    assert exact_matches(lr_pairs("Set5", "Set5_LR", 2), 2, "replicate") == []


def test_rounding_between_passes_matters() -> None:
    # Float throughout with a single final rounding matches none of MATLAB's files.
    for name, hr, lr in lr_pairs("Set5", "Set5_LR", 4):
        out = np.clip(np.floor(imresize(hr.astype(np.float64), scale=0.25) + 0.5), 0, 255)
        assert not np.array_equal(out, lr), name


def test_smaller_scale_dimension_goes_first() -> None:
    hr = read(HR / "Set5" / "butterfly.png")  # 256x256
    both = imresize(hr, size=(128, 64))  # width scale 1/4 < height scale 1/2: width first
    width_first = imresize(imresize(hr, size=(256, 64)), size=(128, 64))
    height_first = imresize(imresize(hr, size=(128, 256)), size=(128, 64))
    assert np.array_equal(both, width_first)
    assert not np.array_equal(both, height_first)


def test_output_size_is_ceil_of_scaled_size() -> None:
    img = np.zeros((7, 10), dtype=np.uint8)
    assert imresize(img, scale=0.5).shape == (4, 5)
    assert imresize(img, scale=1.5).shape == (11, 15)
    assert imresize(img, size=(3, 20)).shape == (3, 20)


def test_scale_one_is_identity() -> None:
    hr = read(HR / "Set5" / "bird.png")
    assert np.array_equal(imresize(hr, scale=1.0), hr)


def test_contributions_sum_to_one_and_stay_in_range() -> None:
    for in_len, out_len, scale in ((10, 3, 0.3), (5, 17, 3.4), (9, 9, 1.0)):
        for border in ("symmetric", "replicate"):
            weights, index = contributions(in_len, out_len, scale, border)
            np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)  # float64 sums of ≤ 20 terms: ~1e-15
            assert index.min() >= 0 and index.max() < in_len
    # MATLAB's mirror of 1..n repeats the edge pixel: index 0 (1-based) reads pixel 1, -1 reads pixel 2.
    _, index = contributions(4, 8, 2.0, "symmetric")
    assert index[0].tolist() == [1, 0, 0, 1]


def test_torch_uint8_equals_numpy_uint8() -> None:
    hr = crop(read(HR / "Set5" / "head.png"), 3)
    expected = imresize(hr, scale=1 / 3)
    batch = torch.from_numpy(np.stack([hr, hr[::-1]])).permute(0, 3, 1, 2)
    out = imresize(batch, scale=1 / 3)
    assert out.dtype == torch.uint8
    assert np.array_equal(out[0].permute(1, 2, 0).numpy(), expected)
    assert np.array_equal(out[1].permute(1, 2, 0).numpy(), imresize(np.ascontiguousarray(hr[::-1]), scale=1 / 3))


def test_float_close_to_uint8() -> None:
    for _, hr, _ in lr_pairs("Set5", "Set5_LR", 2):
        exact = imresize(hr, scale=0.5).astype(np.float64)
        smooth = imresize(hr.astype(np.float32), scale=0.5)
        assert smooth.dtype == np.float32
        diff = np.abs(np.clip(smooth, 0, 255) - exact)  # float keeps the overshoot that uint8 clips
        assert diff.max() <= 2.5
        assert diff.mean() < 0.3


def test_float_batch_equals_single_images() -> None:
    x = torch.rand(3, 2, 17, 23, generator=torch.Generator().manual_seed(0))
    batched = imresize(x, size=(9, 31))
    assert batched.shape == (3, 2, 9, 31)
    for i in range(3):  # float32 0-1 values through two 4-tap passes, summed in another order batched: ≤ 8·u ≈ 5e-7
        torch.testing.assert_close(batched[i], imresize(x[i], size=(9, 31)), rtol=0, atol=1e-6)
    torch.testing.assert_close(batched[1, 0], imresize(x[1, 0], size=(9, 31)), rtol=0, atol=1e-6)


def test_float_is_differentiable() -> None:
    x = torch.rand(2, 3, 24, 20, generator=torch.Generator().manual_seed(1), requires_grad=True)
    imresize(x, scale=0.5).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    small = torch.rand(1, 1, 6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for kwargs in ({"scale": 1.5}, {"size": (3, 4)}):
        assert torch.autograd.gradcheck(lambda t: imresize(t, **kwargs), small.requires_grad_())


def test_bad_arguments_raise_usage_error() -> None:
    img = np.zeros((8, 8), dtype=np.uint8)
    with pytest.raises(UsageError, match="symmetric, replicate"):
        imresize(img, scale=0.5, border="reflect")
    with pytest.raises(UsageError, match="exactly one"):
        imresize(img)
    with pytest.raises(UsageError, match="exactly one"):
        imresize(img, scale=0.5, size=(4, 4))
    with pytest.raises(UsageError, match="positive"):
        imresize(img, scale=0.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    hr = crop(read(HR / "Set5" / "baby.png"), 4)
    x = torch.from_numpy(hr).permute(2, 0, 1)[None]
    assert torch.equal(imresize(x.cuda(), scale=0.25).cpu(), imresize(x, scale=0.25))
    xf = x.float() / 255
    # CUDA's fused multiply-adds round differently from the CPU's: a few ulps of float32 values ≤ 1 → 1e-5
    torch.testing.assert_close(imresize(xf.cuda(), scale=4).cpu(), imresize(xf, scale=4), rtol=0, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("shape", [(2, 37, 53), (1, 3, 2, 5), (4, 1, 6)])
def test_fast_upscale_equals_imresize(scale: int, shape: tuple[int, ...]) -> None:
    """The chroma path's shifted-copies bicubic takes imresize's taps, weights and mirrored border (2-pixel sides
    included; 1-pixel sides go through imresize itself) and stays differentiable."""
    x = torch.rand(shape, generator=torch.Generator().manual_seed(scale), requires_grad=True)
    fast, slow = upscale_bicubic(x, scale), imresize(x, scale=scale)
    assert fast.shape == slow.shape == (*shape[:-2], shape[-2] * scale, shape[-1] * scale)
    assert (fast - slow).abs().max().item() <= RESAMPLE_ABS
    fast.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
