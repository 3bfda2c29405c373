"""``srtool upscale`` end to end: naming, overwrite rules, I/O modes, every bad input, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from testdata import without_summary
from tolerances import FLIPPED_LEVELS, FLIPPED_SHARE
from typer.testing import CliRunner

from sr_cli.cli.app import app
from sr_cli.images import Picture, read_image, write_image
from sr_cli.interp import Bicubic
from sr_cli.pipeline import Upscaler
from sr_cli.registry import get_spec
from sr_cli.weights import save_weights

runner = CliRunner()


def srtool(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, without_summary(result.stderr)


def _rgb(path: Path, w: int = 23, h: int = 17, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _bicubic_x2(pixels: np.ndarray, levels: int = 255) -> np.ndarray:
    x = torch.from_numpy(pixels.astype(np.float32) / levels).permute(2, 0, 1)[None]
    y = Bicubic(2, levels=levels)(x)[0].permute(1, 2, 0).numpy()
    return np.round(y * levels).astype(np.uint16 if levels == 65535 else np.uint8)


def test_default_name_beside_input_and_exact_pixels(tmp_path: Path) -> None:
    src = _rgb(tmp_path / "a.png")
    code, out, err = srtool("upscale", str(src), "-m", "bicubic", "-s", "2")
    assert code == 0, err
    result = np.asarray(Image.open(tmp_path / "a_bicubic_x2.png"))
    assert result.shape == (34, 46, 3)
    assert np.array_equal(result, _bicubic_x2(np.asarray(Image.open(src))))
    assert out == ""  # quiet when stdout is not a terminal
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_never_overwrites_without_asking_and_skip_existing(tmp_path: Path) -> None:
    src = _rgb(tmp_path / "a.png")
    target = tmp_path / "a_bicubic_x2.png"
    target.write_bytes(b"keep me")
    code, _, err = srtool("upscale", "-m", "bicubic", str(src), "-s", "2")
    assert code == 5 and "exists" in err and "--overwrite" in err
    assert target.read_bytes() == b"keep me"
    code, out, _ = srtool("upscale", "-m", "bicubic", str(src), "-s", "2", "--skip-existing", "--json")
    assert code == 0 and json.loads(out)["files"][0]["status"] == "skipped"
    assert target.read_bytes() == b"keep me"
    code, _, _ = srtool("upscale", "-m", "bicubic", str(src), "-s", "2", "--overwrite")
    assert code == 0 and Image.open(target).size == (46, 34)


def test_folder_glob_recursive_and_output_folder(tmp_path: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    _rgb(tmp_path / "in" / "x.png")
    _rgb(tmp_path / "in" / "sub" / "y.jpg")
    code, out, _ = srtool("upscale", "-m", "bicubic", str(tmp_path / "in"), "-r", "-o", str(tmp_path / "out"), "-s", "3", "--json")
    assert code == 0
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.*"))
    assert written == ["sub/y_bicubic_x3.jpg", "x_bicubic_x3.png"]  # the tree below the folder named, kept
    code, out, _ = srtool("upscale", "-m", "bicubic", str(tmp_path / "in" / "*.png"), "-o", str(tmp_path / "g"), "-s", "2", "--json")
    assert code == 0 and [f["status"] for f in json.loads(out)["files"]] == ["ok"]


def test_sixteen_bit_gray_alpha_and_exif(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    deep = rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    write_image(Picture(deep, 16), tmp_path / "deep.png")
    gray = rng.integers(0, 256, (9, 11, 1), dtype=np.uint8)
    write_image(Picture(gray, 8), tmp_path / "gray.png")
    rgba = rng.integers(0, 256, (9, 11, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:4, :, 3] = 0
    write_image(Picture(rgba, 8), tmp_path / "alpha.png")
    img = Image.fromarray(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "turned.jpg", exif=exif.tobytes())
    code, _, err = srtool("upscale", "-m", "bicubic", str(tmp_path / "deep.png"), str(tmp_path / "gray.png"),
                          str(tmp_path / "alpha.png"), str(tmp_path / "turned.jpg"), "-s", "2", "-o", str(tmp_path / "o"))
    assert code == 0, err
    out_deep = read_image(tmp_path / "o" / "deep_bicubic_x2.png")
    assert out_deep.bit_depth == 16 and out_deep.pixels.shape == (18, 22, 3)
    assert len(np.unique(out_deep.pixels % 257)) > 1  # really 16-bit values, not 8-bit scaled up
    assert np.array_equal(out_deep.pixels, _bicubic_x2(deep, 65535))  # MATLAB's imresize on uint16, exactly
    out_gray = read_image(tmp_path / "o" / "gray_bicubic_x2.png")
    assert out_gray.pixels.shape == (18, 22, 1)
    assert np.array_equal(out_gray.pixels[..., 0], _bicubic_x2(np.repeat(gray, 3, 2))[..., 0])
    out_alpha = read_image(tmp_path / "o" / "alpha_bicubic_x2.png")
    assert out_alpha.pixels.shape == (18, 22, 4)
    assert (out_alpha.pixels[:4, :, 3] == 0).all() and (out_alpha.pixels[12:, :, 3] == 255).all()
    turned = read_image(tmp_path / "o" / "turned_bicubic_x2.jpg")
    assert turned.pixels.shape == (22, 18, 3)  # orientation applied: portrait
    assert Image.open(tmp_path / "o" / "turned_bicubic_x2.jpg").getexif().get(0x0112, 1) == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("not an image"), "not a PNG"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: (_rgb(p, 64, 64), p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])), "truncated"),
    ],
    ids=["missing", "not-image", "zero-size", "truncated"],
)
def test_bad_inputs_are_one_line_and_the_batch_goes_on(tmp_path: Path, make, message: str) -> None:
    bad = tmp_path / "bad.png"
    make(bad)
    good = _rgb(tmp_path / "good.png")
    code, _, err = srtool("upscale", "-m", "bicubic", str(bad), str(good), "-s", "2")
    assert code == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "bad.png" in lines[0]
    assert "Traceback" not in err
    assert (tmp_path / "good_bicubic_x2.png").is_file()
    assert not (tmp_path / "bad_bicubic_x2.png").exists()


def test_pixel_limit_refuses_a_decompression_bomb(tmp_path: Path) -> None:
    src = _rgb(tmp_path / "big.png", 100, 100)
    code, _, err = srtool("upscale", "-m", "bicubic", str(src), "-s", "2", "--max-pixels", "5000")
    assert code == 3 and "10000" in err.replace(",", "") and "--max-pixels" in err


def test_unsupported_scale_names_the_supported_ones(tmp_path: Path) -> None:
    code, _, err = srtool("upscale", str(_rgb(tmp_path / "a.png")), "-m", "espcn", "-s", "8")
    assert code == 2 and "espcn does not support x8: it supports x2, x3, x4" in err


def test_width_is_refused_for_models_other_than_csd(tmp_path: Path) -> None:
    src = _rgb(tmp_path / "a.png")
    code, _, err = srtool("upscale", str(src), "-m", "bicubic", "-s", "2", "--width", "0.5")
    assert code == 2 and err.strip() == "srtool: error: --width applies to csd only, not bicubic"
    assert not (tmp_path / "a_bicubic_x2.png").exists()
    code, _, err = srtool("bench", "-d", "set5", "-m", "nearest", "-s", "2", "--width", "0.5")
    assert code == 2 and "--width applies to csd only, not nearest" in err


def test_learned_model_without_weights_names_the_file_and_the_train_command(tmp_path: Path) -> None:
    code, _, err = srtool("upscale", str(_rgb(tmp_path / "a.png")), "-m", "edsr-large", "-s", "3")
    assert code == 4
    assert "edsr-large_x3.safetensors not found" in err
    assert "srtool train --model edsr-large --scale 3" in err
    assert not list(tmp_path.glob("a_*"))


def test_weights_of_another_architecture_or_scale(tmp_path: Path) -> None:
    src = _rgb(tmp_path / "a.png")
    espcn3 = get_spec("espcn").build(3)
    save_weights(tmp_path / "espcn3.safetensors", espcn3.state_dict(), {"architecture": "espcn", "scale": 3})
    code, _, err = srtool("upscale", str(src), "-m", "espcn", "-s", "2", "--weights", str(tmp_path / "espcn3.safetensors"))
    assert code == 4 and "holds espcn x3 weights, expected espcn x2" in err
    code, _, err = srtool("upscale", str(src), "-m", "fsrcnn", "-s", "3", "--weights", str(tmp_path / "espcn3.safetensors"))
    assert code == 4 and "holds espcn x3 weights, expected fsrcnn x3" in err
    plain = tmp_path / "plain.pt"
    torch.save(espcn3.state_dict(), plain)  # no metadata: the tensors themselves must not fit
    code, _, err = srtool("upscale", str(src), "-m", "espcn", "-s", "2", "--weights", str(plain))
    assert code == 4 and "does not fit espcn x2" in err


def test_loaded_weights_are_used(tmp_path: Path) -> None:
    src = _rgb(tmp_path / "a.png")
    torch.manual_seed(0)
    model = get_spec("espcn").build(2)
    save_weights(tmp_path / "w.safetensors", model.state_dict(), {"architecture": "espcn", "scale": 2})
    code, _, err = srtool("upscale", str(src), "-m", "espcn", "-s", "2", "--weights", str(tmp_path / "w.safetensors"),
                          "-o", str(tmp_path / "o.png"), "--precision", "fp32", "--device", "cpu")
    assert code == 0, err
    got = np.asarray(Image.open(tmp_path / "o.png"))
    pixels = np.asarray(Image.open(src))
    with torch.no_grad():
        mine = Upscaler("espcn", 2, weights=tmp_path / "w.safetensors", device="cpu", precision="fp32")
        shipped = Upscaler("espcn", 2, device="cpu", precision="fp32")
        assert np.array_equal(got, mine.upscale_uint8(pixels))  # the same path, the same weights: bit for bit
        assert not np.array_equal(got, shipped.upscale_uint8(pixels))  # and not the shipped weights


def test_unwritable_output_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = srtool("upscale", "-m", "bicubic", str(_rgb(tmp_path / "a.png")), "-s", "2", "-o", str(blocker / "sub") + os.sep)
    assert code == 5 and "cannot create output folder" in err


def test_precision_rules(tmp_path: Path) -> None:
    code, _, err = srtool("upscale", "-m", "bicubic", str(_rgb(tmp_path / "a.png")), "-s", "2", "--precision", "fp16", "--device", "cpu")
    assert code == 2 and "fp16 does not run on CPU" in err
    code, _, err = srtool("upscale", "-m", "bicubic", str(_rgb(tmp_path / "a.png")), "-s", "2", "--device", "cuda:7")
    assert code == 2 and "CUDA is not available" in err


def test_module_entry_point_and_console_script(tmp_path: Path) -> None:
    src = _rgb(tmp_path / "a.png")
    console_script = str(Path(sys.executable).with_name("srtool"))
    for i, command in enumerate(([sys.executable, "-m", "sr_cli"], [console_script])):
        done = subprocess.run([*command, "upscale", str(src), "-s", "2", "--json", "-o", str(tmp_path / f"{i}.png")],
                              capture_output=True, text=True, env={**os.environ, "SRTOOL_DEVICE": "cpu"})
        assert done.returncode == 0, (command, done.stderr)
        report = json.loads(done.stdout)
        assert report["device"] == "cpu" and report["files"][0]["size"] == [46, 34]
    if not torch.cuda.is_available():  # $SRTOOL_DEVICE is read (cpu above is also what auto picks here)
        done = subprocess.run([console_script, "upscale", str(src), "-s", "2", "-o", str(tmp_path / "c.png")],
                              capture_output=True, text=True, env={**os.environ, "SRTOOL_DEVICE": "cuda:7"})
        assert done.returncode == 2 and "CUDA is not available" in done.stderr, done.stderr


def test_compile_gives_the_eager_pixels(tmp_path: Path) -> None:
    """``--compile`` runs the network through torch.compile (inductor: some 6 s for ESPCN here); fused kernels sum
    in another order, so a pixel may round to the neighbouring level (FLIPPED_LEVELS), on a share bounded by
    FLIPPED_SHARE."""
    src = _rgb(tmp_path / "a.png", 40, 30)
    outputs = []
    for flag in ([], ["--compile"]):
        out = tmp_path / f"out{len(flag)}.png"
        code, _, err = srtool("upscale", str(src), "-m", "espcn", "-s", "2", "--precision", "fp32", *flag, "-o", str(out))
        assert code == 0, err
        outputs.append(np.asarray(Image.open(out)).astype(int))
    diff = np.abs(outputs[0] - outputs[1])
    assert outputs[1].shape == (60, 80, 3)
    assert diff.max() <= FLIPPED_LEVELS and (diff > 0).mean() <= FLIPPED_SHARE


def test_a_compile_that_fails_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend that cannot compile (inductor without a C++ compiler) is one error line, exit 1, no output file."""
    def no_compiler(gm: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> None:
        raise RuntimeError("Failed to find C++ compiler")

    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model: compile_(model, backend=no_compiler))
    src = _rgb(tmp_path / "a.png")
    code, _, err = srtool("upscale", str(src), "-m", "espcn", "-s", "2", "--compile", "-o", str(tmp_path / "b.png"))
    assert (code, err.count("\n")) == (1, 1) and "--compile failed" in err and "C++ compiler" in err, err
    assert not (tmp_path / "b.png").exists()
