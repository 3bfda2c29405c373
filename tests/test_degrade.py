"""The named degradations, their extras (noise, JPEG) and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr_cli.degrade import DEGRADATIONS, crop_to_scale, degrade
from sr_cli.errors import InputError, UsageError
from sr_cli.metrics import psnr
from sr_cli.resize import imresize
from testdata import DATA, HR



def read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


@pytest.fixture(scope="module")
def head() -> np.ndarray:
    """Set5 head.png, 280x280 RGB (not a multiple of 3)."""
    return read(HR / "Set5" / "head.png")


def test_names() -> None:
    assert DEGRADATIONS == ("bicubic", "blur-decimate", "bilinear", "nearest")


def test_crop_to_scale() -> None:
    img = np.zeros((37, 50, 3), dtype=np.uint8)
    assert crop_to_scale(img, 4).shape == (36, 48, 3)
    assert crop_to_scale(img, 3).shape == (36, 48, 3)
    assert crop_to_scale(img[:, :, 0], 5).shape == (35, 50)


@pytest.mark.parametrize("name", DEGRADATIONS)
def test_exact_shape_and_type(name: str) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)
    for s in (2, 3, 4):
        for img in (rgb, rgb[:, :, 1], rgb[:, :, :1]):
            lr = degrade(img, s, name, noise_sigma=3.0, jpeg_quality=80)
            assert lr.shape == (37 // s, 50 // s) + img.shape[2:]
            assert lr.dtype == np.uint8


def test_bicubic_is_matlab_imresize(head: np.ndarray) -> None:
    lr = degrade(head, 3)
    assert np.array_equal(lr, imresize(crop_to_scale(head, 3), scale=1 / 3))
    assert np.array_equal(lr, read(DATA / "Set5_LR" / "X3" / "headx3.png"))


def test_nearest_takes_the_middle_pixel_of_each_block(head: np.ndarray) -> None:
    for s in (2, 3, 4):
        hr = crop_to_scale(head, s)
        assert np.array_equal(degrade(head, s, "nearest"), hr[s // 2 :: s, s // 2 :: s])


def test_blur_decimate(head: np.ndarray) -> None:
    # a tiny sigma leaves the sampled pixel alone: the same pixels as nearest
    assert np.array_equal(degrade(head, 4, "blur-decimate", blur_sigma=0.1), degrade(head, 4, "nearest"))
    # the blur keeps flat areas flat (weights sum to one) and smooths more with a larger sigma
    flat = np.full((24, 30), 77, dtype=np.uint8)
    assert np.array_equal(degrade(flat, 3, "blur-decimate"), np.full((8, 10), 77, dtype=np.uint8))
    sharp = degrade(head, 4, "blur-decimate", blur_sigma=0.8).astype(np.float64)
    soft = degrade(head, 4, "blur-decimate", blur_sigma=3.0).astype(np.float64)
    assert np.abs(np.diff(soft, axis=1)).mean() < np.abs(np.diff(sharp, axis=1)).mean()
    # the default (sigma 1.6) lies between the two
    default = degrade(head, 4, "blur-decimate").astype(np.float64)
    assert np.abs(np.diff(soft, axis=1)).mean() < np.abs(np.diff(default, axis=1)).mean()
    assert np.abs(np.diff(default, axis=1)).mean() < np.abs(np.diff(sharp, axis=1)).mean()


def test_bilinear_antialiases(head: np.ndarray) -> None:
    flat = np.full((24, 30, 3), 200, dtype=np.uint8)
    assert np.array_equal(degrade(flat, 3, "bilinear"), np.full((8, 10, 3), 200, dtype=np.uint8))
    # a 1-pixel checkerboard averages to grey when antialiased; nearest keeps one phase of it
    checker = ((np.indices((32, 32)).sum(axis=0) % 2) * 255).astype(np.uint8)
    assert np.abs(degrade(checker, 4, "bilinear").astype(int) - 128).max() <= 1  # 127.5 rounds either way
    assert set(np.unique(degrade(checker, 4, "nearest"))) <= {0, 255}
    # close to bicubic on a real image, but not equal
    bil, bic = degrade(head, 2, "bilinear"), degrade(head, 2, "bicubic")
    assert not np.array_equal(bil, bic)
    assert psnr(bil, bic, 0, y=False) > 35


def test_noise_is_reproducible_per_seed() -> None:
    grey = np.full((64, 64), 128, dtype=np.uint8)
    a = degrade(grey, 2, "nearest", noise_sigma=10.0, seed=3)
    assert np.array_equal(a, degrade(grey, 2, "nearest", noise_sigma=10.0, seed=3))
    assert not np.array_equal(a, degrade(grey, 2, "nearest", noise_sigma=10.0, seed=4))
    residual = a.astype(np.float64) - 128
    # 1,024 draws of N(0, 10²) rounded to integers: the mean's standard error is 10/32 ≈ 0.31 (1.0 is > 3 of them) and
    # the std's is 10/√2048 ≈ 0.22 (±1 is > 4 of them); a fixed seed makes it one fixed draw in any case
    assert abs(residual.mean()) < 1.0
    assert 9.0 < residual.std() < 11.0
    assert np.array_equal(degrade(grey, 2, "nearest", seed=9), grey[::2, ::2])


def test_jpeg_changes_pixels_and_quality_orders(head: np.ndarray) -> None:
    clean = degrade(head, 2)
    high = degrade(head, 2, jpeg_quality=95)
    low = degrade(head, 2, jpeg_quality=10)
    assert high.shape == low.shape == clean.shape
    assert not np.array_equal(high, clean)
    assert psnr(high, clean, 0, y=False) > psnr(low, clean, 0, y=False) + 5
    gray = degrade(head[:, :, 0], 2, jpeg_quality=30)
    assert gray.ndim == 2 and not np.array_equal(gray, degrade(head[:, :, 0], 2))
    # JPEG is deterministic, and noise then JPEG is reproducible as a whole
    assert np.array_equal(degrade(head, 2, noise_sigma=5, jpeg_quality=50, seed=1),
                          degrade(head, 2, noise_sigma=5, jpeg_quality=50, seed=1))


def test_unknown_name_lists_the_valid_ones(head: np.ndarray) -> None:
    with pytest.raises(UsageError) as info:
        degrade(head, 2, "lanczos")
    message = str(info.value)
    assert "lanczos" in message and all(name in message for name in DEGRADATIONS)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scale": 0},
        {"scale": 2.5},
        {"scale": 2, "blur_sigma": 1.0},
        {"scale": 2, "name": "blur-decimate", "blur_sigma": 0.0},
        {"scale": 2, "noise_sigma": -1.0},
        {"scale": 2, "jpeg_quality": 0},
        {"scale": 2, "jpeg_quality": 101},
    ],
)
def test_bad_options_raise_usage_error(head: np.ndarray, kwargs: dict) -> None:
    with pytest.raises(UsageError):
        degrade(head, **kwargs)


def test_bad_images_raise_input_error(head: np.ndarray) -> None:
    with pytest.raises(InputError, match="smaller than the scale"):
        degrade(head[:3, :3], 4)
    with pytest.raises(InputError, match="8-bit"):
        degrade(head.astype(np.float32), 2)
