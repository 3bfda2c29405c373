"""The shipped weights: each file's metadata, its card line, its Set5 score and out-of-the-box ``upscale``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sr_cli.cli.app import app
from sr_cli.registry import MODELS, shipped_weights, shipped_weights_dir
from sr_cli.weights import read_metadata

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [(spec.name, s) for spec in MODELS.values() if spec.learned for s in spec.scales
           if shipped_weights(spec, s).is_file()]
# What this release ships (the README and the model card say so): a file lost from the package fails here.
RELEASED = {(m, s) for m in ("srcnn", "fsrcnn", "espcn") for s in (2, 3, 4)} | {("csd", 4)}
BICUBIC_SET5 = {2: 33.6734, 3: 30.4033, 4: 28.4290}  # REFERENCE §2
REQUIRED = {"architecture", "scale", "options", "steps", "data", "training_command", "train_seconds", "device",
            "storage", "bench", "srtool_version"}


def test_weights_ship_and_stay_small() -> None:
    assert RELEASED <= set(SHIPPED)
    files = sorted((ROOT / "weights").glob("*.safetensors"))
    assert sum(p.stat().st_size for p in files) < 100 * 2**20
    for path in [*files, ROOT / "weights" / "README.md"]:  # the installed package holds the same files
        assert (shipped_weights_dir() / path.name).read_bytes() == path.read_bytes()


def _at_scale(meta: dict, key: str, scale: int) -> dict:
    """A multi-scale file (MDSR) keys its bench figures by scale; a single-scale file holds them directly."""
    return meta[key][f"x{scale}"] if "scales" in meta else meta[key]


@pytest.mark.parametrize(("name", "scale"), SHIPPED)
def test_shipped_file_metadata_card_and_set5_score(name: str, scale: int) -> None:
    path = shipped_weights(MODELS[name], scale)
    meta = read_metadata(path)
    assert REQUIRED <= set(meta)
    assert meta["architecture"] == name and scale in meta.get("scales", [meta["scale"]])
    assert MODELS[name].multi_scale == ("scales" in meta)
    command = meta["training_command"]
    assert command.startswith(f"srtool train --model {name} --scale {meta['scale']} ") or (
        name == "csd" and command.startswith("srtool distill ") and f" --scale {scale} " in command)
    assert meta["storage"] in ("fp16", "fp32")
    if meta["storage"] == "fp16":
        assert all(v < 0.005 for v in _at_scale(meta, "fp16_psnr_change_db", scale).values())
    result = runner.invoke(app, ["bench", "-d", "set5", "-m", name, "-s", str(scale), "--json"])
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)["results"][0]
    stored = _at_scale(meta, "bench", scale)["set5"]
    assert row["psnr"] == pytest.approx(stored["psnr"], abs=1e-4)
    assert row["ssim"] == pytest.approx(stored["ssim"], abs=1e-4)
    assert row["psnr"] > BICUBIC_SET5[scale]  # every shipped model beats bicubic
    card = (ROOT / "weights" / "README.md").read_text()
    line = next(l for l in card.splitlines() if l.startswith(f"| {name} | x{scale} |"))
    assert f"{row['psnr']:.2f} / {row['ssim']:.4f}" in line


@pytest.mark.parametrize(("name", "scale"), SHIPPED)
def test_upscale_works_out_of_the_box(tmp_path: Path, name: str, scale: int) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(src)
    result = runner.invoke(app, ["upscale", str(src), "-m", name, "-s", str(scale)])
    assert result.exit_code == 0, result.stderr
    with Image.open(tmp_path / f"in_{name}_x{scale}.png") as out:
        assert out.size == (24 * scale, 20 * scale)


def test_models_marks_the_shipped_scales() -> None:
    result = runner.invoke(app, ["models", "--json"])
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    for spec in MODELS.values():
        for s in spec.scales:
            assert rows[spec.name]["weights"][str(s)] == (not spec.learned or (spec.name, s) in SHIPPED)
    assert {(n, int(s)) for n, r in rows.items() if MODELS[n].learned for s, ok in r["weights"].items() if ok} \
        >= RELEASED


def test_bare_upscale_uses_the_default_model_with_its_weights(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(src)
    result = runner.invoke(app, ["upscale", str(src)])
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["in.png", "in_srcnn_x4.png"]
