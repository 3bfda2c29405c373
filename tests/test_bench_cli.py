"""``srtool bench`` and ``srtool models``: the published bicubic figures, outputs, and bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sr_cli.cli.app import app
from sr_cli.metrics import psnr
from sr_cli.registry import MODELS
from testdata import DATA, HR, crop, read

runner = CliRunner()

# REFERENCE §2: bicubic baseline, Y, shave s.
EXPECTED = {
    ("set5", 2): (33.6734, 0.9303), ("set5", 3): (30.4033, 0.8689), ("set5", 4): (28.4290, 0.8111),
    ("set14", 2): (30.2302, 0.8691), ("set14", 3): (27.5367, 0.7745), ("set14", 4): (25.9940, 0.7029),
}


def srtool(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_reproduces_the_reference_table(scale: int) -> None:
    code, out, err = srtool("bench", "--dataset", "set5", "--dataset", "set14", "--model", "bicubic",
                            "--scale", str(scale), "--json")
    assert code == 0, err
    doc = json.loads(out)
    rows = {(r["dataset"], r["scale"]): r for r in doc["results"]}
    for ds in ("set5", "set14"):
        r = rows[(ds, scale)]
        assert (round(r["psnr"], 4), round(r["ssim"], 4)) == EXPECTED[(ds, scale)]
        assert len(r["images"]) == (5 if ds == "set5" else 14)
        assert r["params"] == 0 and r["megapixels_per_second"] > 0


def test_lr_dir_reads_the_published_lr(tmp_path: Path) -> None:
    # RCAN's LR (see tests/data/SOURCES.md) differs from what srtool's own imresize makes (which is DATA/Set5_LR
    # exactly), so the default figure 28.4290 would mean --lr-dir was ignored
    code, out, err = srtool("bench", "-d", "set5", "-m", "bicubic", "-s", "4", "--lr-dir",
                            str(DATA / "Set5_LR" / "replicate_border"), "--json")
    assert code == 0, err
    got = round(json.loads(out)["results"][0]["psnr"], 4)
    assert got == 28.4302 and got != EXPECTED[("set5", 4)][0]


def test_csv_compare_and_saved_images(tmp_path: Path) -> None:
    code, out, err = srtool("bench", "-d", "set5", "-m", "bicubic", "-m", "nearest", "-s", "3",
                            "--csv", str(tmp_path / "r.csv"), "--compare", str(tmp_path / "cmp"),
                            "--save-images", str(tmp_path / "sr"))
    assert code == 0, err
    assert "bicubic" in out and "30.4033" in out
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 2 * 6 and rows[5]["image"] == "(mean)" and rows[5]["psnr"] == "30.4033"
    panels = sorted(p.name for p in (tmp_path / "cmp").iterdir())
    assert panels[0] == "set5_x3_baby.png" and len(panels) == 5
    hr_w = Image.open(HR / "Set5" / "baby.png").size[0] // 3 * 3
    assert Image.open(tmp_path / "cmp" / "set5_x3_baby.png").size[0] == 3 * hr_w + 2 * 4
    saved = np.asarray(Image.open(tmp_path / "sr" / "set5" / "x3" / "bicubic" / "bird.png"))
    assert saved.shape[2] == 3 and saved.shape[0] == Image.open(HR / "Set5" / "bird.png").size[1] // 3 * 3
    bird = next(r for r in rows if (r["model"], r["image"]) == ("bicubic", "bird"))
    assert f"{psnr(saved, crop(read(HR / 'Set5' / 'bird.png'), 3), shave=3):.4f}" == bird["psnr"]  # the scored SR


def test_degradations_change_the_score() -> None:
    def bench(*extra: str) -> float:
        code, out, err = srtool("bench", "-d", "set5", "-m", "bicubic", "-s", "2", "--degradation", "blur-decimate",
                                *extra, "--json")
        assert code == 0, err
        return json.loads(out)["results"][0]["psnr"]

    noisy = bench("--noise", "5", "--jpeg", "80")
    assert noisy < 33.0
    # noise and JPEG each cost more on top of the blur (seeded, so a step left out gives another run's figure exactly:
    # measured 27.86 < 27.98 (noise), 27.98 (JPEG) < 28.28 (blur only))
    blur_only = bench()
    assert noisy < bench("--noise", "5") < blur_only and noisy < bench("--jpeg", "80") < blur_only


def test_bad_input_is_reported_and_other_combinations_still_run(tmp_path: Path) -> None:
    code, out, err = srtool("bench", "-d", "set5", "-d", "nosuchset", "-m", "bicubic", "-s", "4", "--json")
    assert code == 1 and "unknown" in err and "nosuchset" in err
    doc = json.loads(out)
    assert round(doc["results"][0]["psnr"], 4) == 28.4290 and len(doc["errors"]) == 1
    code, out, err = srtool("bench", "-d", "set5", "-m", "bicubic", "-m", "edsr-large", "-s", "4", "--json")
    assert code == 1 and "edsr-large x4 has no weights" in err
    assert [r["model"] for r in json.loads(out)["results"]] == ["bicubic"]
    code, _, err = srtool("bench", "-d", "set5", "-m", "nosuchmodel")
    assert code == 2 and "unknown model 'nosuchmodel'" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = srtool("bench", "-d", "folder", "--data-dir", str(empty), "-m", "bicubic", "-s", "2")
    assert code == 3 and str(empty) in err
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.txt").write_text("x")
    code, _, err = srtool("bench", "-d", "folder", "--data-dir", str(junk), "-m", "bicubic", "-s", "2")
    assert code == 3 and str(junk) in err
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tiny / "t.png")
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(tiny / "u.png")
    code, out, err = srtool("bench", "-d", "folder", "--data-dir", str(tiny), "-m", "bicubic", "-s", "4", "--json")
    assert code == 1 and "smaller than the scale" in err and "t.png" in err
    assert [i["image"] for i in json.loads(out)["results"][0]["images"]] == ["u"]


def test_models_lists_every_architecture_with_json() -> None:
    code, out, _ = srtool("models", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["registry"]}
    assert set(rows) == {"nearest", "bilinear", "bicubic", "srcnn", "fsrcnn", "espcn", "srresnet", "edsr",
                         "edsr-large", "mdsr", "esrgan", "csd", "compact"}
    for name, spec in MODELS.items():
        assert rows[name]["scales"] == [2, 3, 4]
        for scale, paper in spec.paper_params.items():
            got = rows[name]["params"][str(scale)]
            assert abs(got - paper) <= spec.paper_params_tolerance * paper, (name, scale, got, paper)
    assert rows["espcn"]["params"] == {"2": 21284, "3": 22729, "4": 24752}
    assert rows["edsr"]["weights_params"] == rows["edsr"]["params"] and rows["edsr-large"]["weights_params"] == {}
    assert rows["csd"]["weights_params"] == {"2": 121987, "3": 168227, "4": 158979}  # the shipped small student
    assert rows["srcnn"]["space"] == "y" and rows["edsr"]["space"] == "rgb"
    assert rows["srresnet"]["discriminator"] and rows["esrgan"]["discriminator"]
    code, out, _ = srtool("models")
    assert code == 0 and "edsr-large" in out
    assert "0.168M" in out and "2.74M" not in out  # csd's row: the shipped student (x3), not the registry network
