"""``srtool compare``: the grid's layout, tiles equal to ``srtool upscale``'s output at the crop, the crop choice,
the reference scores and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from test_startup import _run
from testdata import HR, read
from tolerances import FLIPPED_LEVELS, FLIPPED_SHARE
from typer.testing import CliRunner

from sr_cli.cli.app import app
from sr_cli.degrade import degrade
from sr_cli.evaluate import score

runner = CliRunner()
FP32 = ("--precision", "fp32", "--device", "cpu")


def srtool(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _butterfly(path: Path, rows: slice = slice(60, 160), cols: slice = slice(40, 150)) -> Path:
    Image.fromarray(read(HR / "Set5" / "butterfly.png")[rows, cols]).save(path)
    return path


def test_tiles_equal_the_upscale_outputs_at_the_crop(tmp_path: Path) -> None:
    """The window (the crop and each model's halo) is smaller than the picture, so the tiles come from another
    window shape than the upscale's one pass: equal up to a network's flipped rounding (tolerances.FLIPPED_*);
    MATLAB bicubic, rounded as it goes, is exact."""
    src = _butterfly(tmp_path / "in.png")  # 110x100
    grid_path = tmp_path / "grid.png"
    models = ("bicubic", "espcn", "fsrcnn")
    code, out, err = srtool("compare", str(src), *(a for m in models for a in ("-m", m)), "-s", "3",
                            "--crop", "30,20,40,36", *FP32, "-o", str(grid_path), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["crop"] == [30, 20, 40, 36] and doc["output"] == str(grid_path) and doc["errors"] == []
    with Image.open(grid_path) as im:
        assert (im.format, im.mode) == ("PNG", "RGB")
        grid = np.asarray(im)
    # one row of 4 tiles of 120x108 (input, 3 models) 8 px apart, under a label strip
    assert [row["model"] for row in doc["models"]] == list(models)
    boxes = [row["tile"] for row in doc["models"]]
    label_h = boxes[0][1]
    assert boxes == [[k * 128, label_h, 120, 108] for k in (1, 2, 3)]
    assert grid.shape == (label_h + 108, 4 * 120 + 3 * 8, 3)
    lr = np.asarray(Image.open(src))[20:56, 30:70]
    assert np.array_equal(grid[label_h:, :120], lr.repeat(3, axis=0).repeat(3, axis=1))
    for row, (x, y, w, h) in zip(doc["models"], boxes, strict=True):
        assert row["scale"] == 3 and row["seconds_per_mp"] > 0 and row["psnr"] is None and row["ssim"] is None
        full = tmp_path / f"{row['model']}.png"
        code, _, err = srtool("upscale", str(src), "-m", row["model"], "-s", "3", *FP32, "-o", str(full))
        assert code == 0, err
        expected = np.asarray(Image.open(full))[60:168, 90:210].astype(int)
        diff = np.abs(grid[y:y + h, x:x + w].astype(int) - expected)
        assert diff.max() <= (0 if row["model"] == "bicubic" else FLIPPED_LEVELS)
        assert (diff > 0).mean() <= FLIPPED_SHARE


def test_crop_given_or_on_the_most_detailed_region(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    flat = np.full((240, 300, 3), 128, np.uint8)
    flat[150:190, 190:230] = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)  # the only detail
    src = tmp_path / "flat.png"
    Image.fromarray(flat).save(src)
    code, out, err = srtool("compare", str(src), "-m", "bicubic", "--json")  # x4: a 96x96 crop
    assert code == 0, err
    x, y, w, h = json.loads(out)["crop"]
    assert (w, h) == (96, 96) and x <= 190 and x + w >= 230 and y <= 150 and y + h >= 190
    assert (tmp_path / "flat_compare_x4.png").is_file()  # the default name, beside the input
    code, out, err = srtool("compare", str(src), "-m", "bicubic", "-s", "2", "--crop", "5,6,20,10", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["crop"] == [5, 6, 20, 10] and doc["models"][0]["tile"][2:] == [40, 20]
    assert doc["output"] == str(tmp_path / "flat_compare_x2.png")
    code, out, err = srtool("compare", str(src), "-m", "bicubic", "--crop", "290,0,20,20", "-o",
                            str(tmp_path / "outside.png"))
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and "not inside the 300x240 picture" in err


def test_reference_scores_are_the_bench_scores_of_the_crops(tmp_path: Path) -> None:
    hr = read(HR / "Set5" / "butterfly.png")[:201, :240]
    Image.fromarray(hr).save(tmp_path / "hr.png")
    src = tmp_path / "lr.png"
    Image.fromarray(degrade(hr, 3, "bicubic")).save(src)  # 80x67
    grid_path = tmp_path / "grid.png"
    code, out, err = srtool("compare", str(src), "-m", "bicubic", "-m", "espcn", "-s", "3", "--crop", "10,12,40,30",
                            "--reference", str(tmp_path / "hr.png"), *FP32, "-o", str(grid_path), "--json")
    assert code == 0, err
    doc = json.loads(out)
    grid = np.asarray(Image.open(grid_path))
    hr_crop = hr[36:126, 30:150]
    for row in doc["models"]:
        x, y, w, h = row["tile"]
        assert (row["psnr"], row["ssim"]) == score(grid[y:y + h, x:x + w], hr_crop, 3)
    assert doc["models"][1]["psnr"] > doc["models"][0]["psnr"] > 20
    x, y, _, _ = doc["models"][1]["tile"]  # input | bicubic | espcn | reference (HR): one row
    assert np.array_equal(grid[y:y + 90, x + 128:x + 128 + 120], hr_crop)
    Image.fromarray(hr[:200]).save(tmp_path / "short.png")
    code, out, err = srtool("compare", str(src), "-m", "bicubic", "-s", "3", "--reference", str(tmp_path / "short.png"))
    assert code == 3 and len(err.splitlines()) == 1 and "must be 240x201" in err


def test_a_model_that_cannot_run_is_one_line_and_the_others_still_appear(tmp_path: Path) -> None:
    src = _butterfly(tmp_path / "in.png")
    code, out, err = srtool("compare", str(src), "-m", "bicubic", "-m", "nosuch", "-m", "edsr-baseline-x4",
                            "-m", "espcn", "-s", "3", "--json")
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 2 and "nosuch" in lines[0] and "edsr-baseline-x4 is x4 only" in lines[1]
    doc = json.loads(out)
    assert [row["model"] for row in doc["models"]] == ["bicubic", "espcn"] and len(doc["errors"]) == 2
    with Image.open(tmp_path / "in_compare_x3.png") as im:  # input, bicubic, espcn
        assert im.size[0] == 3 * doc["models"][0]["tile"][2] + 2 * 8
    code, out, err = srtool("compare", str(src), "-m", "nosuch")
    assert code == 2 and len(err.splitlines()) == 1


def test_an_existing_grid_is_kept_without_overwrite(tmp_path: Path) -> None:
    src = _butterfly(tmp_path / "in.png")
    target = tmp_path / "grid.png"
    target.write_bytes(b"keep me")
    code, _, err = srtool("compare", str(src), "-m", "bicubic", "-o", str(target))
    assert code == 5 and len(err.splitlines()) == 1 and "--overwrite" in err
    assert target.read_bytes() == b"keep me"
    code, _, err = srtool("compare", str(src), "-m", "bicubic", "-o", str(target), "--overwrite")
    assert code == 0, err
    assert Image.open(target).format == "PNG"
    code, _, err = srtool("compare", str(tmp_path / "missing.png"), "-m", "bicubic")
    assert code == 3 and len(err.splitlines()) == 1
    code, _, err = srtool("compare", str(src), "-m", "bicubic", "-o", str(tmp_path / "grid.jpg"))
    assert code == 2 and len(err.splitlines()) == 1


def test_help_loads_no_torch() -> None:
    out, last = _run("compare", "--help")
    assert last == "loaded: [] exit: 0" and "srtool compare" in out
