"""The documented Python API (README "Python API"): ``sr_cli.Upscaler`` on PIL images, numpy arrays and files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import sr_cli
from sr_cli.cli.app import app
from sr_cli.errors import OutputError


def test_a_pil_image_an_array_and_a_file_give_the_command_s_pixels(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    src = tmp_path / "a.png"
    Image.fromarray(pixels).save(src)
    assert CliRunner().invoke(app, ["upscale", str(src), "-m", "espcn", "-s", "2", "-o", str(tmp_path / "cli.png")]).exit_code == 0
    command = np.asarray(Image.open(tmp_path / "cli.png"))
    up = sr_cli.Upscaler("espcn", 2)
    image = up.upscale(Image.open(src))
    assert isinstance(image, Image.Image) and image.mode == "RGB" and np.array_equal(np.asarray(image), command)
    assert np.array_equal(up.upscale(pixels), command)
    up.upscale_file(src, tmp_path / "api.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "api.png")), command)
    with pytest.raises(OutputError, match="exists"):
        up.upscale_file(src, tmp_path / "api.png")


def test_gray_sixteen_bit_and_palette_keep_their_kind() -> None:
    up = sr_cli.Upscaler("bicubic", 2)
    gray16 = np.random.default_rng(1).integers(0, 65536, (9, 7), dtype=np.uint16)
    out = up.upscale(gray16)
    assert out.dtype == np.uint16 and out.shape == (18, 14)
    assert np.array_equal(np.asarray(up.upscale(Image.fromarray(gray16))), out)
    palette = Image.fromarray(np.random.default_rng(2).integers(0, 256, (9, 7, 3), dtype=np.uint8)).convert("P")
    assert up.upscale(palette).mode == "RGB" and up.upscale(palette).size == (14, 18)
    with pytest.raises(TypeError, match="uint8 or uint16"):
        up.upscale(np.zeros((4, 4), np.float32))


def test_quantize_into_clips_rounds_zeroes_nan_and_writes_a_strided_view() -> None:
    from sr_cli.pipeline import quantize_into
    row = [-0.5, 0.0, 0.4 / 255, 0.6 / 255, 1.0, 2.0, float("nan")]
    out = np.full((2, 9, 1), 7, np.uint8)
    quantize_into(out[1:, 1:8], torch.tensor([[row]], dtype=torch.float32), 255)
    np.testing.assert_array_equal(out[:, :, 0], [[7] * 9, [7, 0, 0, 0, 1, 255, 255, 0, 7]])  # the rest untouched
    deep = np.zeros((1, 2, 1), np.uint16)
    quantize_into(deep, torch.tensor([[[0.5, 1000 / 65535]]], dtype=torch.float32), 65535)
    np.testing.assert_array_equal(deep[0, :, 0], [32768, 1000])  # 32767.5 rounds half to even; 16 bits kept
