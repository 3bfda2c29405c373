"""PSNR/SSIM against RCAN's published log and the bicubic baseline of REFERENCE §2; colour conversion."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from sr_cli.colour import rgb_to_y, rgb_to_y_np, rgb_to_ycbcr, ycbcr_to_rgb
from sr_cli.errors import InputError
from sr_cli.metrics import mse, psnr, ssim
from sr_cli.resize import imresize

from testdata import DATA, HR, crop, read

RCAN = DATA / "RCAN_Set5_ref"


def rcan_log(s: int) -> tuple[dict[str, tuple[float, float]], tuple[float, float]]:
    """Per-image (PSNR, SSIM) and the means of method RCAN at scale s, from the published log."""
    text = (RCAN / "PSNR_SSIM_Results_BI_model.txt").read_text().split("Method_2")[0]
    rows = re.findall(rf"^x{s} \d+ (\w+)_RCAN_x{s}\.png: PSNR= ([\d.]+) SSIM= ([\d.]+)$", text, re.M)
    (mean,) = re.findall(rf"^x{s}: PSNR= ([\d.]+) SSIM= ([\d.]+)$", text, re.M)
    return {name: (float(p), float(q)) for name, p, q in rows}, (float(mean[0]), float(mean[1]))


@pytest.mark.parametrize(("s", "mean_psnr"), [(2, 38.2742), (3, 34.7422), (4, 32.6336)])
def test_rcan_published_scores(s: int, mean_psnr: float) -> None:
    published, published_mean = rcan_log(s)
    assert sorted(published) == ["baby", "bird", "butterfly", "head", "woman"]
    scores = {}
    for name, (ref_psnr, ref_ssim) in published.items():
        sr = read(RCAN / f"x{s}" / f"{name}_RCAN_x{s}.png")
        hr = crop(read(HR / "Set5" / f"{name}.png"), s)
        scores[name] = (psnr(sr, hr, s), ssim(sr, hr, s))
        # float64 metrics of the same uint8 images: the log's 6 printed decimals (±5e-7) are all that differ
        assert scores[name][0] == pytest.approx(ref_psnr, abs=1e-5), name
        assert scores[name][1] == pytest.approx(ref_ssim, abs=1e-5), name
    mean = np.mean(list(scores.values()), axis=0)
    assert mean[0] == pytest.approx(mean_psnr, abs=5e-5)  # the paper's table prints 4 decimals: ±5e-5
    assert mean == pytest.approx(published_mean, abs=1e-5)


BICUBIC = [
    ("Set5", 2, 33.6734, 0.9303),
    ("Set5", 3, 30.4033, 0.8689),
    ("Set5", 4, 28.4290, 0.8111),
    ("Set14", 2, 30.2302, 0.8691),
    ("Set14", 3, 27.5367, 0.7745),
    ("Set14", 4, 25.9940, 0.7029),
]


@pytest.mark.parametrize(("name", "s", "ref_psnr", "ref_ssim"), BICUBIC)
def test_bicubic_baseline(name: str, s: int, ref_psnr: float, ref_ssim: float) -> None:
    scores = []
    for path in sorted((HR / name).glob("*.png")):
        hr = crop(read(path), s)
        up = imresize(read(DATA / f"{name}_LR" / f"X{s}" / f"{path.stem}x{s}.png"), scale=s)
        assert up.shape == hr.shape and up.dtype == np.uint8
        scores.append((psnr(up, hr, s), ssim(up, hr, s)))
    assert len(scores) == {"Set5": 5, "Set14": 14}[name]
    mean_psnr, mean_ssim = np.mean(scores, axis=0)
    assert mean_psnr == pytest.approx(ref_psnr, abs=5e-5)  # REFERENCE §2 prints 4 decimals: ±5e-5
    assert mean_ssim == pytest.approx(ref_ssim, abs=5e-5)


def test_known_values() -> None:
    hr = np.full((20, 20, 3), 100, dtype=np.uint8)
    sr = hr + np.array([1, 2, 3], dtype=np.uint8)
    assert mse(sr, hr, 0, y=False) == pytest.approx(14 / 3)
    dy = (65.481 * 1 + 128.553 * 2 + 24.966 * 3) / 255
    assert mse(sr, hr, 0) == pytest.approx(dy**2)
    assert psnr(sr[:, :, 0], hr[:, :, 0], 0) == pytest.approx(20 * math.log10(255))
    assert psnr(hr, hr, 2) == math.inf
    assert ssim(hr, hr, 2) == 1.0


def test_shave_cuts_the_border() -> None:
    hr = np.full((30, 30), 50, dtype=np.uint8)
    sr = hr.copy()
    sr[:3], sr[-3:], sr[:, :3], sr[:, -3:] = 60, 60, 60, 60
    assert mse(sr, hr, 3) == 0.0 and mse(sr, hr, 2) > 0.0


def test_gray_is_scored_on_its_own_values() -> None:
    hr = read(HR / "Set14" / "bridge.png")[:96, :96]
    sr = imresize(imresize(hr, scale=0.5), scale=2)
    gray = psnr(sr, hr, 2)
    assert psnr(sr[:, :, None], hr[:, :, None], 2) == gray == psnr(sr, hr, 2, y=False)
    # copying to three channels and taking Y shrinks differences by 219/255: +1.32 dB
    copied = psnr(np.repeat(sr[:, :, None], 3, 2), np.repeat(hr[:, :, None], 3, 2), 2)
    assert copied - gray == pytest.approx(-20 * math.log10(219 / 255))
    assert ssim(sr, hr, 2) == ssim(np.repeat(sr[:, :, None], 3, 2), np.repeat(hr[:, :, None], 3, 2), 2, y=False)


def test_ssim_orders_and_is_symmetric() -> None:
    hr = read(HR / "Set5" / "bird.png")
    mild = imresize(imresize(hr, scale=0.5), scale=2)
    strong = imresize(imresize(hr, scale=0.25), scale=4)
    assert 0 < ssim(strong, hr, 4) < ssim(mild, hr, 4) < 1
    assert ssim(mild, hr, 4) == pytest.approx(ssim(hr, mild, 4), abs=1e-12)
    assert psnr(mild.astype(np.float64), hr, 4) == psnr(mild, hr, 4)


def test_bad_inputs() -> None:
    img = np.zeros((20, 20, 3), dtype=np.uint8)
    with pytest.raises(InputError, match="different shapes"):
        psnr(img, img[:, :10], 0)
    with pytest.raises(InputError, match="too small"):
        psnr(img, img, 10)
    with pytest.raises(InputError, match="too small"):
        ssim(img, img, 5)


def test_colour_conversion() -> None:
    rgb = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]).view(3, 3, 1, 1)
    ycc = rgb_to_ycbcr(rgb)
    torch.testing.assert_close(ycc[0].flatten(), torch.tensor([235.0, 128.0, 128.0]) / 255)
    torch.testing.assert_close(ycc[1].flatten(), torch.tensor([16.0, 128.0, 128.0]) / 255)
    torch.testing.assert_close(ycc[2].flatten(), torch.tensor([81.481, 90.203, 240.0]) / 255)
    x = torch.rand(2, 3, 5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(x)), x)
    torch.testing.assert_close(rgb_to_y(x), rgb_to_ycbcr(x)[:, :1])
    arr = x[0].permute(1, 2, 0).numpy() * 255
    np.testing.assert_allclose(rgb_to_y_np(arr), 255 * rgb_to_y(x)[0, 0].numpy(), rtol=0, atol=1e-10)
