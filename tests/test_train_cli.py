"""``srtool train`` on the command line: a run, its resume with more steps, and one-line errors for bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sr_cli.cli.app import app
from sr_cli.errors import EXIT_INPUT, EXIT_USAGE
from sr_cli.pipeline import Upscaler
from sr_cli.weights import held_model, read_metadata
from testdata import train_folders
from tolerances import CSV_DB



@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return train_folders(tmp_path_factory.mktemp("cli"), 2, 36)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["train", *args])
    return result.exit_code, result.stdout, result.stderr


def _tiny(data: tuple[Path, Path]) -> list[str]:
    return ["-m", "espcn", "-s", "3", "-d", str(data[0]), "--batch", "2", "--patch", "6", "--val-data", str(data[1]),
            "--val-every", "2", "--log-every", "1", "--workers", "0"]


def test_train_then_resume_with_more_steps(data: tuple[Path, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, out, err = _run(*_tiny(data), "--steps", "2", "-o", str(run), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["status"] == "completed" and summary["steps"] == 2 and summary["best_psnr"] > 10
    code, out, err = _run("--resume", str(run), "--steps", "4", "--json")
    assert code == 0, err
    assert json.loads(out)["steps"] == 4
    assert "resumed at step 2" in err, err
    with (run / "metrics.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]
    assert json.loads((run / "config.json").read_text())["steps"] == 4


@pytest.mark.parametrize(("extra", "code", "message"), [
    ([], EXIT_USAGE, "--model, --scale and --data are needed"),
    (["--loss", "l1+0.1*tv"], EXIT_USAGE, "unknown loss term 'tv'"),
    (["--patch", "40"], EXIT_INPUT, "too large for every training image"),
    (["--optimizer", "sgd"], EXIT_USAGE, "unknown --optimizer 'sgd'"),
])
def test_bad_options_give_one_line(data: tuple[Path, Path], tmp_path: Path, extra: list[str], code: int,
                                   message: str) -> None:
    args = [] if not extra else [*_tiny(data), *extra]
    got, _, err = _run(*args, "-o", str(tmp_path / "r"))
    assert got == code
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_empty_folder_and_foreign_resume(data: tuple[Path, Path], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = _run("-m", "espcn", "-s", "3", "-d", str(tmp_path / "empty"), "-o", str(tmp_path / "r"))
    assert code == EXIT_INPUT and "no images in" in err and len(err.strip().splitlines()) == 1
    run = tmp_path / "run"
    assert _run(*_tiny(data), "--steps", "1", "-o", str(run))[0] == 0
    code, _, err = _run("--resume", str(run), "-m", "edsr", "-s", "3")
    assert code == EXIT_USAGE and "is a espcn x3 run: it cannot be resumed as edsr x3" in err
    code, _, err = _run("--resume", str(run), "--lr", "0.1")
    assert code == EXIT_USAGE and "cannot change lr" in err
    code, _, err = _run("--resume", str(run), "--lr", "0.0001", "--batch", "2", "--steps", "2")  # its own values
    assert code == 0, err


def test_mdsr_trains_every_scale_in_one_file(data: tuple[Path, Path], tmp_path: Path) -> None:
    run = tmp_path / "mdsr"
    code, out, err = _run("-m", "mdsr", "-d", str(data[0]), "--batch", "1", "--patch", "6", "--steps", "3",
                          "--val-data", str(data[1]), "--val-every", "3", "--workers", "0", "-o", str(run), "--json")
    assert code == 0, err
    assert "mdsr is one model for x2, x3, x4: each step trains one scale, in turn" in err
    meta = read_metadata(run / "best.safetensors")
    assert meta["architecture"] == "mdsr" and meta["scales"] == [2, 3, 4]
    assert held_model(run / "best.safetensors") == ("mdsr", None)  # one file for every scale
    val = meta["validation"]
    per_scale = [val[f"psnr_x{s}"] for s in (2, 3, 4)]
    assert val["psnr"] == pytest.approx(sum(per_scale) / 3) and min(per_scale) > 5
    assert json.loads(out)["best_psnr"] == pytest.approx(val["psnr"])
    with (run / "metrics.csv").open() as f:  # the per-scale validation is logged too
        last = list(csv.DictReader(f))[-1]
    assert [float(last[f"val_psnr_x{s}"]) for s in (2, 3, 4)] == pytest.approx(per_scale, abs=CSV_DB)
    bird = np.asarray(Image.open(data[1] / "bird.png"))
    for s in (2, 3, 4):  # the one file upscales at every scale
        result = CliRunner().invoke(app, ["upscale", str(data[1] / "bird.png"), "--weights",
                                          str(run / "best.safetensors"), "-s", str(s), "-o", str(tmp_path / f"x{s}.png"),
                                          "--precision", "fp32"])
        assert result.exit_code == 0, result.stderr
        assert Image.open(tmp_path / f"x{s}.png").size == (48 * s, 48 * s)
        want = Upscaler("mdsr", s, weights=run / "best.safetensors", precision="fp32").upscale_uint8(bird)
        assert np.array_equal(np.asarray(Image.open(tmp_path / f"x{s}.png")), want), s  # the trained file's network


def test_model_options_shape_the_network_and_its_command_line(data: tuple[Path, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["-m", "compact", "-s", "2", "-d", str(data[0]), "--batch", "2", "--patch", "6", "--val-data", str(data[1]),
            "--workers", "0", "--steps", "1", "--model-option", "num_conv=2", "--model-option", "num_feat=8",
            "--degradation", "realesrgan", "-o", str(run)]
    code, _, err = _run(*args)
    assert code == 0, err
    meta = read_metadata(run / "last.safetensors")
    assert meta["options"] == {"num_conv": 2, "num_feat": 8}
    assert "--model-option num_conv=2 --model-option num_feat=8" in meta["command"]
    assert "--degradation realesrgan" in meta["command"]
    # the file rebuilds that shape: conv 3->8 and PReLU, 2 x (conv 8->8, PReLU), conv 8->3*2*2
    params = Upscaler("compact", 2, weights=run / "last.safetensors").params
    assert params == (3 * 8 * 9 + 8 + 8) + 2 * (8 * 8 * 9 + 8 + 8) + (8 * 12 * 9 + 12)
    code, _, err = _run(*args[:-2], "--model-option", "num_cnv=2", "-o", str(tmp_path / "bad"))
    assert code == EXIT_USAGE and len(err.strip().splitlines()) == 1, err
    assert "compact does not take --model-option num_conv=2 num_feat=8 num_cnv=2 (" in err and "num_cnv" in err
    assert not (tmp_path / "bad").exists()
    code, _, err = _run(*args[:-2], "--model-option", "num_conv", "-o", str(tmp_path / "bad"))
    assert code == EXIT_USAGE and "--model-option takes KEY=VALUE, got 'num_conv'" in err


@pytest.mark.parametrize(("extra", "message"), [
    (["--milestones", "5k"], "--milestones takes steps like 50000,100000, got '5k'"),
    (["--seed", "-1"], "--seed and --weight-decay cannot be negative"),
    (["--decay-every", "0"], "--decay-every must be at least 1, got 0"),
    (["--d-lr", "-1"], "--d-lr must be positive, got -1.0"),
    (["--model-option", "num_channels=0"], "espcn cannot be built with --model-option num_channels=0"),
    (["--model-option", "num_feat=0", "-m", "compact"], "compact cannot be built with --model-option num_feat=0"),
])
def test_bad_numbers_give_one_line_and_no_run_folder(data: tuple[Path, Path], tmp_path: Path, extra: list[str],
                                                      message: str) -> None:
    code, _, err = _run(*_tiny(data), *extra, "-o", str(tmp_path / "r"))
    assert code == EXIT_USAGE and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()
