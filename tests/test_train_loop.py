"""The training loop: bitwise resume (also of a CUDA-tagged checkpoint on CPU), run artefacts, early stopping,
--init, GAN steps, DDP with 2 CPU processes, Ctrl-C, and bad input."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.serialization
from PIL import Image
from safetensors.torch import load_file
from testdata import HR, TRAIN, VGG_TO_RELU2_2
from tolerances import PSNR_PER_FLIP_DB

from sr_cli.degrade import degrade
from sr_cli.errors import InputError, OutputError, UsageError
from sr_cli.evaluate import run_bench
from sr_cli.metrics import psnr
from sr_cli.pipeline import Upscaler
from sr_cli.registry import get_spec
from sr_cli.train import runs, validate
from sr_cli.train.config import TrainConfig
from sr_cli.train.loop import Trainer, TrainResult
from sr_cli.train.objective import LossObjective, LossOutput
from sr_cli.train.reporter import Reporter
from sr_cli.train.state import resume_config
from sr_cli.train.validate import evaluate, load_val_set
from sr_cli.weights import load_model, read_metadata

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Four 40x40 T91 crops to train on and two 48x48 Set5 crops to validate on."""
    root = tmp_path_factory.mktemp("data")
    for i, path in enumerate(TRAIN[:4]):
        (root / "train" / f"sub{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.open(path).convert("RGB").crop((0, 0, 40, 40)).save(root / "train" / f"sub{i % 2}" / f"{i}.png")
    (root / "val").mkdir()
    for name in ("baby", "butterfly"):
        Image.open(HR / "Set5" / f"{name}.png").crop((100, 100, 148, 148)).save(root / "val" / f"{name}.png")
    return root / "train", root / "val"


def _config(folders: tuple[Path, Path], **changes: object) -> TrainConfig:
    base: dict[str, object] = dict(model="espcn", scale=2, data=[str(folders[0])], steps=20, batch=4, patch=8,
                                   lr=1e-3, val_data=str(folders[1]), val_every=10, checkpoint_every=5, log_every=5,
                                   workers=0, seed=0)
    return TrainConfig(**{**base, **changes})


class Recorder(Reporter):
    """Keeps notes and warnings; asks the trainer to stop after step ``stop_at``."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at = stop_at
        self.trainer: Trainer | None = None
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.steps: list[int] = []

    def step(self, step: int, loss: float, lr: float) -> None:
        self.steps.append(step)
        if step == self.stop_at:
            self.trainer.stop_requested = True  # what the SIGINT handler does

    def note(self, message: str) -> None:
        self.notes.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def _train(config: TrainConfig, run_dir: Path, reporter: Recorder | None = None, resume: bool = False) -> TrainResult:
    trainer = Trainer(config, run_dir, reporter, resume=resume)
    if reporter is not None:
        reporter.trainer = trainer
    return trainer.run()


RESUME_SETTINGS = dict(ema=0.9, schedule="cosine", warmup=3, grad_clip=0.5, optimizer="adamw", weight_decay=0.01)


@pytest.fixture(scope="module")
def straight(folders: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-step run without interruption."""
    run = tmp_path_factory.mktemp("runs") / "straight"
    result = _train(_config(folders, **RESUME_SETTINGS), run)
    assert (result.status, result.step) == ("completed", 20)
    return run


def _as_if_written_on_cuda(path: Path) -> None:
    """Rewrite a checkpoint so that its tensors are tagged as CUDA storage (loading it needs map_location)."""
    state = torch.load(path, weights_only=True)
    original = torch.serialization.location_tag
    torch.serialization.location_tag = lambda storage: "cuda:0"
    try:
        torch.save(state, path)
    finally:
        torch.serialization.location_tag = original
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)


def test_resume_is_bitwise_identical(folders: tuple[Path, Path], straight: Path, tmp_path: Path) -> None:
    """20 steps == 10 steps, Ctrl-C, resume, 10 steps (with a DataLoader worker this time, and the
    checkpoint tagged as CUDA storage)."""
    run = tmp_path / "interrupted"
    reporter = Recorder(stop_at=10)
    first = _train(_config(folders, workers=1, **RESUME_SETTINGS), run, reporter)
    assert (first.status, first.step) == ("interrupted", 10)
    _as_if_written_on_cuda(run / runs.CHECKPOINT)
    resumed = Recorder()
    second = _train(resume_config(run, {"workers": 0}), run, resumed, resume=True)
    assert (second.status, second.step) == ("completed", 20)
    assert resumed.steps == list(range(11, 21))  # it ran steps 11-20 only, from the checkpoint

    a = torch.load(straight / runs.CHECKPOINT, weights_only=True)
    b = torch.load(run / runs.CHECKPOINT, weights_only=True)
    for key in ("model",):
        assert a[key].keys() == b[key].keys()
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    assert all(torch.equal(a["ema"]["module"][k], b["ema"]["module"][k]) for k in a["ema"]["module"])
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert a["scheduler"] == b["scheduler"]
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    wa, wb = load_file(str(straight / runs.LAST)), load_file(str(run / runs.LAST))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)

    def rows(folder: Path) -> list[dict[str, str]]:
        with (folder / runs.METRICS).open() as f:
            return [{k: v for k, v in r.items() if k != "steps_per_s"} for r in csv.DictReader(f)]

    assert rows(straight) == rows(run)


def test_run_artefacts(folders: tuple[Path, Path], straight: Path) -> None:
    names = {p.name for p in straight.iterdir()}
    assert {"config.json", "metrics.csv", "loss.png", "val_psnr.png", "checkpoint.pt", "last.safetensors",
            "best.safetensors"} <= names
    assert TrainConfig.from_dict(json.loads((straight / "config.json").read_text())) == \
        _config(folders, **RESUME_SETTINGS)
    for plot in ("loss.png", "val_psnr.png"):
        with Image.open(straight / plot) as im:
            assert im.format == "PNG" and im.size[0] > 100
    with (straight / "metrics.csv").open() as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["step", "lr", "loss", "loss_l1", "steps_per_s", "val_psnr", "val_ssim"]
        table = list(reader)
    assert [int(r["step"]) for r in table] == [5, 10, 15, 20]
    assert [r["val_psnr"] != "" for r in table] == [False, True, False, True]
    assert all(float(r["loss"]) == float(r["loss_l1"]) > 0 for r in table)

    meta = read_metadata(straight / "last.safetensors")
    assert (meta["architecture"], meta["scale"], meta["steps"], meta["ema"]) == ("espcn", 2, 20, True)
    assert meta["data"] == {"folders": [str(folders[0])], "images": 4}
    assert meta["config"]["loss"] == "l1" and meta["val_psnr"] == pytest.approx(float(table[-1]["val_psnr"]), abs=PSNR_PER_FLIP_DB)
    best = read_metadata(straight / "best.safetensors")
    best_row = max(table[1::2], key=lambda r: float(r["val_psnr"]))
    assert best["val_psnr"] == pytest.approx(float(best_row["val_psnr"]), abs=PSNR_PER_FLIP_DB)
    assert best["validation"]["step"] == int(best_row["step"])

    # the saved weights load like shipped ones, and bench's path scores them as validation did
    load_model(get_spec("espcn"), 2, straight / "last.safetensors")
    upscaler = Upscaler("espcn", 2, weights=straight / "last.safetensors", device="cpu", precision="fp32", tile=0)
    scores = []
    for path in sorted(folders[1].glob("*.png")):
        hr = np.asarray(Image.open(path).convert("RGB"))
        scores.append(psnr(upscaler.upscale_uint8(degrade(hr, 2)), hr, shave=2))
    assert float(np.mean(scores)) == pytest.approx(float(table[-1]["val_psnr"]), abs=PSNR_PER_FLIP_DB)


def test_early_stopping(folders: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scores: Iterator[float] = iter([30.0, 31.0, 29.0, 28.0, 27.0])
    monkeypatch.setattr(validate, "evaluate", lambda *args: (next(scores), 0.5))
    reporter = Recorder()
    result = _train(_config(folders, steps=50, val_every=2, patience=2), tmp_path / "run", reporter)
    assert (result.status, result.step, result.best_psnr, result.last_psnr) == ("early-stopped", 8, 31.0, 28.0)
    assert any("stopping early" in n for n in reporter.notes)
    best = read_metadata(tmp_path / "run" / "best.safetensors")
    assert (best["val_psnr"], best["steps"]) == (31.0, 4)
    with (tmp_path / "run" / "metrics.csv").open() as f:
        assert [float(r["val_psnr"]) for r in csv.DictReader(f) if r["val_psnr"]] == [30, 31, 29, 28]


def test_init_copies_matching_tensors(folders: tuple[Path, Path], straight: Path, tmp_path: Path) -> None:
    reporter = Recorder()
    trainer = Trainer(_config(folders, scale=3, init=str(straight / "last.safetensors")), tmp_path / "x3", reporter)
    source = load_file(str(straight / "last.safetensors"))
    state = trainer.model.state_dict()
    copied = [k for k in state if torch.equal(state[k], source[k].float())]
    assert copied and len(copied) == len(state) - 2  # all but the x2-specific last conv
    note = next(n for n in reporter.notes if n.startswith("--init"))
    assert f"copied {len(copied)} of {len(state)} tensors" in note
    assert "last_part.0.weight (9, 32, 3, 3)" in note and "last_part.0.bias (9,)" in note


def test_gan_and_perceptual_steps(folders: tuple[Path, Path], tmp_path: Path) -> None:
    config = _config(folders, model="srresnet", model_options={"n_blocks": 1}, steps=2, val_every=2,
                     log_every=1, loss="1*l1+0.01*perceptual+0.001*gan", gan_type="vanilla",
                     perceptual_layer="relu2_2", vgg_weights=str(VGG_TO_RELU2_2))
    trainer = Trainer(config, tmp_path / "gan")
    d_before = {k: v.clone() for k, v in trainer.objective.discriminator.state_dict().items()}
    g_before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert trainer.run().status == "completed"
    d_after, g_after = trainer.objective.discriminator.state_dict(), trainer.model.state_dict()
    assert any(not torch.equal(d_before[k], d_after[k]) for k in d_before)
    assert any(not torch.equal(g_before[k], g_after[k]) for k in g_before)
    with (tmp_path / "gan" / "metrics.csv").open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0])[:7] == ["step", "lr", "loss", "loss_l1", "loss_perceptual", "loss_gan", "loss_d"]
    assert all(np.isfinite(float(r[c])) for r in table for c in ("loss_perceptual", "loss_gan", "loss_d"))
    assert "discriminator" in torch.load(tmp_path / "gan" / runs.CHECKPOINT, weights_only=True)


class NaNAtStep3(LossObjective):
    """An objective of its own, poisoning one step's loss."""

    calls = 0
    before: dict[str, torch.Tensor] = {}
    unchanged = False

    def loss(self, net: torch.nn.Module, lr: torch.Tensor, hr: torch.Tensor) -> LossOutput:
        self.calls += 1
        out = super().loss(net, lr, hr)
        if self.calls == 3:
            self.before = {k: v.clone() for k, v in net.state_dict().items()}
            out.total = out.total * float("nan")
        if self.calls == 4:
            self.unchanged = all(torch.equal(self.before[k], v) for k, v in net.state_dict().items())
        return out


class NaNTrainer(Trainer):
    """A run whose objective is :class:`NaNAtStep3` (the hook ``distill`` supplies its own objective through)."""

    def build_objective(self) -> NaNAtStep3:
        return NaNAtStep3(super().build_objective().criterion)


def test_nan_loss_skips_the_step_and_is_reported(folders: tuple[Path, Path], tmp_path: Path) -> None:
    reporter = Recorder()
    trainer = NaNTrainer(_config(folders, steps=5, log_every=1, val_every=5), tmp_path / "run", reporter)
    assert trainer.run().status == "completed"
    assert reporter.warnings == ["step 3: the loss is not finite; step skipped"]
    assert trainer.objective.unchanged and trainer.nan_skips == 1
    assert torch.load(tmp_path / "run" / runs.CHECKPOINT, weights_only=True)["nan_skips"] == 1
    with (tmp_path / "run" / "metrics.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 4, 5]


def test_bad_input(folders: tuple[Path, Path], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images in"):
        Trainer(_config(folders, data=[str(tmp_path / "empty")]), tmp_path / "a")
    with pytest.raises(UsageError, match="unknown loss term 'l3'"):
        Trainer(_config(folders, loss="l1+l3"), tmp_path / "b")
    with pytest.raises(InputError, match="too large for every training image"):
        Trainer(_config(folders, patch=30), tmp_path / "c")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()  # a bad start leaves no run folder
    with pytest.raises(UsageError, match="espcn has no discriminator"):
        Trainer(_config(folders, loss="l1+0.1*gan"), tmp_path / "d")
    with pytest.raises(UsageError, match="must be at least 1"):
        _config(folders, batch=0)
    run = tmp_path / "run"
    _train(_config(folders, steps=1), run)
    with pytest.raises(UsageError, match="is a espcn x2 run: it cannot be resumed as edsr x2"):
        resume_config(run, {}, model="edsr")
    with pytest.raises(UsageError, match="cannot be resumed as espcn x3"):
        resume_config(run, {}, scale=3)
    with pytest.raises(UsageError, match="cannot change loss"):
        resume_config(run, {"loss": "mse"})
    with pytest.raises(InputError, match="not a run folder"):
        resume_config(tmp_path / "empty", {})
    with pytest.raises(OutputError, match="already holds a run"):
        Trainer(_config(folders), run)


def _srtool(*args: str) -> list[str]:
    return [sys.executable, "-m", "sr_cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def test_ddp_two_cpu_processes(folders: tuple[Path, Path], tmp_path: Path) -> None:
    """torchrun with 2 gloo processes of batch 2 == one process of batch 4 (same samples, averaged gradients)."""
    common = ["train", "-m", "espcn", "-s", "2", "-d", str(folders[0]), "--steps", "4", "--patch", "8",
              "--lr", "1e-3", "--val-data", str(folders[1]), "--val-every", "4", "--log-every", "2", "--workers", "0"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "sr_cli",
           *common, "--batch", "2", "-o", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]  # rank 1 wrote nothing anywhere
    assert "2 processes" in done.stderr
    one = TrainConfig(model="espcn", scale=2, data=[str(folders[0])], steps=4, batch=4, patch=8, lr=1e-3,
                      val_data=str(folders[1]), val_every=4, log_every=2, workers=0)
    _train(one, tmp_path / "one")
    _train(dataclasses.replace(one, batch=2), tmp_path / "half")  # what one rank alone would learn
    ddp, one_rank, half = (torch.cat([t.flatten() for t in load_file(str(tmp_path / name / runs.LAST)).values()])
                           for name in ("ddp", "one", "half"))
    # Adam moves each weight by about lr per step whatever its gradient's size. The all-reduce sums in another order
    # (two sums of 2 samples, then their mean, against one sum of 4); that rounding changes most elements' steps by
    # a tiny share of lr, but an element whose gradient is near zero can flip its step's sign and move by up to
    # 2·lr. So no bound holds for every element: the mean change and the share of elements moved by more than
    # lr/100 are bounded instead (seen on an AVX-512 machine: mean 8.6e-7, 17 of 21,284 elements). Without rank 1's
    # samples (batch 2 alone) nearly every element moves by whole steps: mean 1.9e-4, 93 % of them.
    step = one.lr / 100
    assert (ddp - one_rank).abs().mean() <= step and ((ddp - one_rank).abs() > step).float().mean() <= 0.01
    assert (ddp - half).abs().mean() > 5 * step and ((ddp - half).abs() > step).float().mean() > 0.5


def test_ctrl_c_checkpoints_and_exits_130(folders: tuple[Path, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _srtool("train", "-m", "espcn", "-s", "2", "-d", str(folders[0]), "--steps", "100000", "--batch", "2",
                "--patch", "8", "--val-data", str(folders[1]), "--val-every", "100000", "--log-every", "1",
                "--workers", "1", "-o", str(run)),
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        metrics = run / runs.METRICS
        if metrics.exists() and len(metrics.read_text().splitlines()) > 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "--resume" in err
    step = torch.load(run / runs.CHECKPOINT, weights_only=True)["step"]
    assert step >= 2
    assert read_metadata(run / runs.LAST)["steps"] == step


@pytest.mark.parametrize("name", ["espcn", "edsr"])
def test_validation_scores_as_bench_does(name: str, tmp_path: Path) -> None:
    """Validation goes through bench's picture path: a gray picture is scored on its own values (it was turned to
    RGB and scored on the luma of that), an RGBA one without its alpha; the same scores to the last bit."""
    folder = tmp_path / "val"
    folder.mkdir()
    Image.open(HR / "Set5" / "baby.png").crop((0, 0, 62, 50)).convert("L").save(folder / "gray.png")
    Image.open(HR / "Set5" / "bird.png").crop((10, 10, 71, 60)).convert("RGBA").save(folder / "rgba.png")
    paths = sorted(folder.glob("*.png"))
    upscaler = Upscaler(name, 2, precision="fp32")
    bench = run_bench([("val", paths)], [name], {name: [2]}, lambda n, s: upscaler, on_error=pytest.fail)
    images = load_val_set("", str(folder), 2, "bicubic")
    assert [image.hr.shape for image in images] == [(50, 62, 1), (50, 60, 3)]
    assert evaluate(upscaler.model, images, name, 2, {}, torch.device("cpu")) == (bench[0].psnr, bench[0].ssim)
