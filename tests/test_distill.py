"""``srtool distill``: shared CSD weights, exact slicing, the contrastive loss against a hand computation, the
export through ``srtool upscale``/``bench``, the teacher modes, one-line errors, run artefacts and resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from testdata import VGG_FULL, needs_shared, train_folders
from tolerances import CSV_REL, LOSS_REL, NET_ABS
from torch import nn
from typer.testing import CliRunner

from sr_cli.cli.app import app
from sr_cli.errors import EXIT_USAGE, EXIT_WEIGHTS, UsageError
from sr_cli.models import CSDEDSR, EDSR, ESPCN
from sr_cli.models.csd import narrow_state_dict, slice_state_dict
from sr_cli.resize import imresize
from sr_cli.train import distill, runs
from sr_cli.train.contrastive import LAYER_WEIGHTS, ContrastiveLoss, negatives
from sr_cli.train.distill import DistillTrainer
from sr_cli.train.distill_config import DistillConfig
from sr_cli.train.loop import TrainResult
from sr_cli.train.reporter import Reporter
from sr_cli.weights import read_metadata, save_weights

C, WIDTH, C_STUDENT = 16, 0.25, 4  # the tiny network: 2 blocks x 16 features, student 4 channels


class TinyFeatures(nn.Module):
    """A fixed random conv net with 5 taps (stand-in for VGG19 relu1_1 ... relu5_1), halving the size after
    each tap."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.weights = nn.ParameterList(nn.Parameter(torch.randn(4, 3 if i == 0 else 4, 3, 3, generator=g) * 0.3)
                                        for i in range(5))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, w in enumerate(self.weights):
            x = torch.relu(F.conv2d(x if i == 0 else F.max_pool2d(x, 2), w, padding=1) + 0.05)
            out.append(x)
        return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Four 40x40 T91 crops to train on, one 48x48 Set5 crop to validate on."""
    return train_folders(tmp_path_factory.mktemp("data"), 4, 40)


@pytest.fixture
def tiny_features(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every DistillTrainer (also those the CLI makes) gets TinyFeatures instead of VGG19."""
    monkeypatch.setattr(distill, "load_feature_net", lambda *a, **k: TinyFeatures())


def _config(folders: tuple[Path, Path], **changes: object) -> DistillConfig:
    base: dict[str, object] = dict(model="csd", scale=2, data=[str(folders[0])], model_options={"n_blocks": 2,
                                   "n_feats": C}, steps=4, batch=4, patch=8, lr=1e-3, negatives=3,
                                   val_data=str(folders[1]), val_every=2, checkpoint_every=2, log_every=1, workers=0)
    return DistillConfig(**{**base, **changes})


def _cli_args(folders: tuple[Path, Path]) -> list[str]:
    return ["distill", "-d", str(folders[0]), "-s", "2", "--blocks", "2", "--feats", str(C), "--batch", "4",
            "--patch", "8", "--negatives", "3", "--val-data", str(folders[1]), "--val-every", "2", "--log-every", "1",
            "--workers", "0", "--lr", "1e-3"]


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(4, 3, 8, 8, generator=g), torch.rand(4, 3, 16, 16, generator=g)


def _region(key: str, c: int) -> tuple[slice, ...]:
    """By hand: the part of a full-width tensor that width ``c`` uses (×2: one upsampler stage, 4c outputs)."""
    layer, kind = key.rsplit(".", 1)
    rows = {"head": c, "tail_conv": 3}.get(layer, 4 * c if layer.startswith("upsampler") else c)
    return (slice(0, rows),) if kind == "bias" else (slice(0, rows), slice(0, 3 if layer == "head" else c))


def test_student_step_changes_only_the_teachers_slice(folders: tuple[Path, Path], tmp_path: Path) -> None:
    """With only the student's L1 (λ_t = 0, K = 0), one step moves exactly the channels the student uses,
    in the full-width tensors the teacher runs on."""
    trainer = DistillTrainer(_config(folders, lambda_teacher=0.0, negatives=0), tmp_path / "run",
                             features=TinyFeatures())
    assert trainer.objective.term_names() == ["student_l1", "teacher_l1"]
    before = {k: v.clone() for k, v in trainer.model.net.state_dict().items()}
    assert trainer.train_step(*_batch()) is not None
    after = trainer.model.net.state_dict()
    for key, old in before.items():
        if key.startswith(("sub_mean", "add_mean")):
            assert torch.equal(after[key], old), key
            continue
        inside = torch.zeros_like(old, dtype=torch.bool)
        inside[_region(key, C_STUDENT)] = True
        assert not torch.equal(after[key][inside], old[inside]), f"{key}: the student's slice did not move"
        assert torch.equal(after[key][~inside], old[~inside]), f"{key}: moved outside the student's slice"


def test_slicing_is_the_exact_sub_network(folders: tuple[Path, Path], tmp_path: Path) -> None:
    trainer = DistillTrainer(_config(folders), tmp_path / "run", features=TinyFeatures())
    trainer.train_step(*_batch())
    full = trainer.model.net.eval()
    full.set_width(WIDTH)
    x = torch.rand(2, 3, 11, 13)
    student = trainer.export_model()
    assert isinstance(student, CSDEDSR) and student.n_feats == C_STUDENT
    dense = EDSR(2, n_blocks=2, n_feats=C_STUDENT, res_scale=0.1).eval()
    dense.load_state_dict(slice_state_dict(full.state_dict(), WIDTH), strict=True)
    with torch.no_grad():
        want = full(x)
        assert (student(x) - want).abs().max().item() <= NET_ABS
        assert (dense(x) - want).abs().max().item() <= NET_ABS
    assert sum(p.numel() for p in student.parameters()) == full.active_params(WIDTH)


def _hand_contrastive(features: nn.Module, s: torch.Tensor, t: torch.Tensor, n: torch.Tensor) -> float:
    """REFERENCE §6 with explicit loops: per layer d_ts = mean|φt − φs|,
    d_sn = (Σ_b Σ_k Σ |φn_k − φs_b|) / #elements (the same K negatives for every sample),
    term d_ts / (d_sn + 1e-7), weights 1/32 ... 1."""
    with torch.no_grad():
        fs, ft, fn = ([m.double() for m in features(x)] for x in (s, t, n))
    total = 0.0
    for layer, weight in enumerate([1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0]):
        elements = fs[layer].numel()
        d_ts = sum(float((ft[layer][b] - fs[layer][b]).abs().sum()) for b in range(s.shape[0])) / elements
        d_sn = 0.0
        for b in range(s.shape[0]):
            for k in range(n.shape[0]):
                d_sn += float((fn[layer][k] - fs[layer][b]).abs().sum())
        total += weight * d_ts / (d_sn / elements + 1e-7)
    return total


def test_contrastive_loss_matches_a_hand_computation() -> None:
    g = torch.Generator().manual_seed(1)
    s, t, n = torch.rand(3, 3, 16, 16, generator=g), torch.rand(3, 3, 16, 16, generator=g), torch.rand(
        2, 3, 16, 16, generator=g)
    features = TinyFeatures()
    loss_fn = ContrastiveLoss(features)
    assert loss_fn.weights == LAYER_WEIGHTS
    student = s.clone().requires_grad_(True)
    teacher = t.clone().requires_grad_(True)
    loss = loss_fn(student, loss_fn.anchors(teacher, n))
    assert abs(loss.item() - _hand_contrastive(features, s, t, n)) <= LOSS_REL * loss.item()
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None  # the teacher side is detached

    # the negatives: K patches of the batch in randperm order, MATLAB-bicubic upsampled, no gradient
    lr = torch.rand(5, 3, 6, 6, generator=g, requires_grad=True)
    torch.manual_seed(3)
    pick = torch.randperm(5)[:3]
    torch.manual_seed(3)
    neg = negatives(lr, 3, 2)
    assert torch.equal(neg, imresize(lr.detach()[pick], scale=2)) and not neg.requires_grad
    with pytest.raises(UsageError, match="3 negatives need a batch of at least 3 patches, got 2"):
        negatives(lr[:2], 3, 2)


def test_three_widths_each_student_against_the_largest(folders: tuple[Path, Path], tmp_path: Path) -> None:
    trainer = DistillTrainer(_config(folders, widths=[1.0, 0.5, 0.25]), tmp_path / "run", features=TinyFeatures())
    assert trainer.objective.term_names() == ["student_l1_w0.25", "contrastive_w0.25", "student_l1_w0.5",
                                              "contrastive_w0.5", "teacher_l1"]
    lr, hr = _batch()
    torch.manual_seed(5)
    out = trainer.objective.loss(trainer.net, lr, hr)
    net = trainer.model.net
    outs = {}
    for w in (0.25, 0.5, 1.0):
        net.set_width(w)
        outs[w] = net(lr)
    torch.manual_seed(5)
    neg = imresize(lr[torch.randperm(4)[:3]], scale=2)
    loss_fn = ContrastiveLoss(TinyFeatures())
    anchors = loss_fn.anchors(outs[1.0], neg)
    want = {"teacher_l1": F.l1_loss(outs[1.0], hr)}
    for w in (0.25, 0.5):
        want[f"student_l1_w{w:g}"] = F.l1_loss(outs[w], hr)
        want[f"contrastive_w{w:g}"] = loss_fn(outs[w], anchors)
    assert out.terms.keys() == want.keys()
    for key, value in want.items():
        assert abs(out.terms[key].item() - value.item()) <= LOSS_REL * value.item(), key
    total = want["teacher_l1"] + sum(want[f"student_l1_w{w:g}"] + 200 / 255 * want[f"contrastive_w{w:g}"]
                                     for w in (0.25, 0.5))
    assert abs(out.total.item() - total.item()) <= LOSS_REL * total.item()


class StopAt(Reporter):
    """Asks the trainer to stop after step ``stop_at`` (what Ctrl-C does)."""

    def __init__(self, stop_at: int) -> None:
        self.stop_at = stop_at
        self.trainer: DistillTrainer | None = None

    def step(self, step: int, loss: float, lr: float) -> None:
        if step == self.stop_at:
            self.trainer.stop_requested = True


def _train(config: DistillConfig, run: Path, stop_at: int | None = None) -> tuple[DistillTrainer, TrainResult]:
    reporter = StopAt(stop_at or 0)
    trainer = DistillTrainer(config, run, reporter, features=TinyFeatures())
    reporter.trainer = trainer
    return trainer, trainer.run()


def test_export_runs_in_upscale_and_bench(folders: tuple[Path, Path], tmp_path: Path) -> None:
    trainer, result = _train(_config(folders, steps=2), tmp_path / "run")
    assert (result.status, result.step) == ("completed", 2)
    meta = read_metadata(tmp_path / "run" / runs.LAST)
    assert (meta["architecture"], meta["scale"], meta["steps"]) == ("csd", 2, 2)
    assert meta["options"] == {"width": WIDTH, "n_blocks": 2, "n_feats": C, "sliced": True}
    assert meta["widths"] == [WIDTH, 1.0] and meta["mode"] == "csd" and meta["command"].startswith(
        f"srtool distill --data {folders[0]} --scale 2 --mode csd --blocks 2 --feats {C} --steps 2")
    assert read_metadata(tmp_path / "run" / "teacher_last.safetensors")["options"] == \
        {"width": 1.0, "n_blocks": 2, "n_feats": C, "sliced": False}

    image = folders[1] / "bird.png"
    x = torch.from_numpy(np.array(Image.open(image).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        want = trainer.export_model()(x)[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    for name in ("last.safetensors", "teacher_last.safetensors"):
        out = tmp_path / f"{name}.png"
        code, _, err = _invoke("upscale", str(image), "-m", "csd", "-s", "2", "--width", str(WIDTH), "--weights",
                               str(tmp_path / "run" / name), "--device", "cpu", "--precision", "fp32",
                               "-o", str(out))
        assert code == 0, err
        assert np.array_equal(np.asarray(Image.open(out)), want), name
    code, out, err = _invoke("bench", "-m", "csd", "-s", "2", "--weights", str(tmp_path / "run" / runs.LAST),
                             "--device", "cpu", "--json")
    assert code == 0, err
    assert json.loads(out)["results"][0]["params"] == CSDEDSR(2, 2, C).active_params(WIDTH)


@pytest.fixture(scope="module")
def teachers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A full-width csd x2 teacher, and weights that cannot be one."""
    root = tmp_path_factory.mktemp("teachers")
    torch.manual_seed(7)
    full = CSDEDSR(2, n_blocks=2, n_feats=C)
    files = {
        "good": (full.state_dict(), {"architecture": "csd", "scale": 2,
                                     "options": {"width": 1.0, "n_blocks": 2, "n_feats": C, "sliced": False}}),
        "espcn": (ESPCN(2).state_dict(), {"architecture": "espcn", "scale": 2}),
        "x4": (CSDEDSR(4, n_blocks=2, n_feats=C).state_dict(), {"architecture": "csd", "scale": 4, "options": {
            "width": 1.0, "n_blocks": 2, "n_feats": C, "sliced": False}}),
        "trained": (CSDEDSR(2, n_blocks=2, n_feats=C).state_dict(), {"architecture": "csd", "scale": 2}),
        "student": (narrow_state_dict(full.state_dict(), WIDTH), {"architecture": "csd", "scale": 2, "options": {
            "width": WIDTH, "n_blocks": 2, "n_feats": C, "sliced": True}}),
    }
    return {name: save_weights(root / f"{name}.safetensors", state, meta) for name, (state, meta) in files.items()}


def test_a_student_file_runs_at_its_own_width_only(teachers: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)).save(src)
    result = CliRunner().invoke(app, ["upscale", str(src), "-m", "csd", "-s", "2", "--width", "0.5",
                                      "--weights", str(teachers["student"])])
    assert result.exit_code == EXIT_WEIGHTS
    assert f"is a width-{WIDTH:g} csd network: run it at --width {WIDTH:g}" in result.stderr
    for width in ("0.5", "1"):  # a full-width file runs at any width
        result = CliRunner().invoke(app, ["upscale", str(src), "-m", "csd", "-s", "2", "--width", width,
                                          "--weights", str(teachers["good"]), "-o", str(tmp_path / f"w{width}.png")])
        assert result.exit_code == 0, result.stderr
        assert Image.open(tmp_path / f"w{width}.png").size == (22, 18)


def test_teacher_first_and_output_kd(folders: tuple[Path, Path], teachers: dict[str, Path], tmp_path: Path) -> None:
    lr, hr = _batch()
    trainer = DistillTrainer(_config(folders, mode="teacher-first", teacher=str(teachers["good"])),
                             tmp_path / "tf", features=TinyFeatures())
    assert trainer.config.model_options == {"n_blocks": 2, "n_feats": C}  # from the teacher
    assert trainer.objective.term_names() == ["student_l1", "contrastive", "teacher_l1"]
    teacher = {k: v.clone() for k, v in trainer.teacher.state_dict().items()}
    with torch.no_grad():  # the student starts as the teacher's channel slice
        trainer.teacher.set_width(WIDTH)
        assert (trainer.model(lr) - trainer.teacher(lr)).abs().max().item() <= NET_ABS
        trainer.teacher.set_width(1.0)
    assert trainer.train_step(lr, hr) is not None
    assert all(torch.equal(v, teacher[k]) for k, v in trainer.teacher.state_dict().items())  # frozen

    trainer = DistillTrainer(_config(folders, mode="output-kd", teacher=str(teachers["good"]), lambda_teacher=0.5),
                             tmp_path / "kd", features=TinyFeatures())
    assert trainer.objective.term_names() == ["student_l1", "kd_l1", "teacher_l1"]
    out = trainer.objective.loss(trainer.net, lr, hr)
    with torch.no_grad():
        s, t = trainer.model(lr), trainer.teacher(lr)
    assert abs(out.terms["kd_l1"].item() - F.l1_loss(s, t).item()) <= LOSS_REL * out.terms["kd_l1"].item()
    assert abs(out.total.item() - (F.l1_loss(s, hr) + 0.5 * F.l1_loss(s, t)).item()) <= LOSS_REL * out.total.item()


@pytest.mark.parametrize(("extra", "code", "message"), [
    (["--widths", "0,1"], EXIT_USAGE, "--widths must be in (0, 1], got 0.0"),
    (["--widths", "1"], EXIT_USAGE, "--mode csd needs at least two --widths"),
    (["--no-distill", "--export-width", "1.5"], EXIT_USAGE, "--export-width must be in (0, 1], got 1.5"),
    (["--widths", "0.25,0.5,1", "--export-width", "0.75"], EXIT_USAGE, "--export-width 0.75 is not one of --widths"),
    (["--negatives", "5"], EXIT_USAGE, "--negatives 5 needs --batch 5 or more"),
    (["--mode", "output-kd"], EXIT_USAGE, "--mode output-kd needs --teacher WEIGHTS"),
    (["--mode", "teacher-first"], EXIT_USAGE, "--mode teacher-first needs --teacher WEIGHTS"),
    (["--mode", "none", "--widths", "0.5,1"], EXIT_USAGE, "--widths is for --mode csd"),
    (["--mode", "csd", "--no-distill"], EXIT_USAGE, "--no-distill is --mode none"),
    (["--mode", "fancy"], EXIT_USAGE, "unknown --mode 'fancy'"),
    (["--mode", "output-kd", "--teacher", "espcn"], EXIT_WEIGHTS, "holds espcn x2 weights, expected csd x2"),
    (["--mode", "output-kd", "--teacher", "x4"], EXIT_WEIGHTS, "holds csd x4 weights, expected csd x2"),
    (["--mode", "output-kd", "--teacher", "trained"], EXIT_WEIGHTS, "is a width-0.25 csd student"),
    (["--mode", "teacher-first", "--teacher", "student"], EXIT_WEIGHTS, "is a width-0.25 csd student, not a"),
    (["--mode", "csd", "--teacher", "good"], EXIT_USAGE, "--teacher is for --mode teacher-first or output-kd"),
])
def test_bad_input_gives_one_line(folders: tuple[Path, Path], teachers: dict[str, Path], tmp_path: Path,
                                  tiny_features: None, extra: list[str], code: int, message: str) -> None:
    extra = [str(teachers[a]) if a in teachers else a for a in extra]
    got, _, err = _invoke(*_cli_args(folders), *extra, "-o", str(tmp_path / "r"))
    assert got == code, err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


@needs_shared(VGG_FULL)
def test_run_folder_with_vgg19(folders: tuple[Path, Path], tmp_path: Path) -> None:
    """The shared VGG19 file, as the real runs use it: every loss term is a metrics column and a curve."""
    run = tmp_path / "run"
    code, out, err = _invoke(*_cli_args(folders), "--steps", "2", "--vgg-weights", str(VGG_FULL), "-o", str(run), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["status"], summary["steps"], summary["mode"]) == ("completed", 2, "csd")
    assert summary["best_psnr"] > 10 and summary["teacher_psnr"] > 10
    with (run / runs.METRICS).open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "lr", "loss", "loss_student_l1", "loss_contrastive", "loss_teacher_l1",
                             "steps_per_s", "val_psnr", "val_ssim", "teacher_val_psnr", "teacher_val_ssim"]
    for row in rows:  # loss = L1(student) + 1 * L1(teacher) + 200/255 * contrastive, at 6 significant digits
        parts = (float(row["loss_student_l1"]) + float(row["loss_teacher_l1"])
                 + 200 / 255 * float(row["loss_contrastive"]))
        assert abs(float(row["loss"]) - parts) <= CSV_REL * float(row["loss"]) and float(row["loss_contrastive"]) > 0
    assert rows[1]["val_psnr"] and rows[1]["teacher_val_psnr"]
    assert {"loss.png", "val_psnr.png", "best.safetensors", "last.safetensors", "teacher_best.safetensors",
            "teacher_last.safetensors", "checkpoint.pt"} <= {p.name for p in run.iterdir()}


def test_resume_continues_from_the_checkpoint(folders: tuple[Path, Path], tmp_path: Path,
                                              tiny_features: None) -> None:
    """4 steps straight == 3 steps, stop (Ctrl-C), `srtool distill --resume RUN --steps 4`, bit for bit; and
    == a completed 2-step run continued to 4 (its checkpoint was written before the exported weights)."""
    config = _config(folders, ema=0.9)
    _, straight = _train(config, tmp_path / "straight")
    _, first = _train(config, tmp_path / "stopped", stop_at=3)
    _, short = _train(_config(folders, ema=0.9, steps=2), tmp_path / "short")
    assert (straight.step, first.status, first.step, short.status) == (4, "interrupted", 3, "completed")
    code, _, err = _invoke("distill", "--resume", str(tmp_path / "stopped"), "--steps", "4", "--negatives", "2")
    assert code == EXIT_USAGE and "cannot change negatives" in err
    code, _, err = _invoke("train", "--resume", str(tmp_path / "stopped"))
    assert code == EXIT_USAGE and "is a `srtool distill` run: continue it with `srtool distill --resume" in err
    a = torch.load(tmp_path / "straight" / runs.CHECKPOINT, weights_only=True)

    def rows(folder: Path) -> list[dict[str, str]]:
        with (folder / runs.METRICS).open() as f:
            return [{k: v for k, v in r.items() if k != "steps_per_s"} for r in csv.DictReader(f)]

    for name in ("stopped", "short"):
        code, out, err = _invoke("distill", "--resume", str(tmp_path / name), "--steps", "4", "--json")
        assert code == 0, err
        assert json.loads(out)["steps"] == 4
        assert f"resumed at step {3 if name == 'stopped' else 2}" in err, err
        b = torch.load(tmp_path / name / runs.CHECKPOINT, weights_only=True)
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), name
        assert all(torch.equal(a["ema"]["module"][k], b["ema"]["module"][k]) for k in a["ema"]["module"]), name
        assert [r["step"] for r in rows(tmp_path / name)] == ["1", "2", "3", "4"]
        assert rows(tmp_path / "straight") == rows(tmp_path / name), name


def test_settings_another_mode_ignores_are_warned(folders: tuple[Path, Path], tmp_path: Path) -> None:
    got, _, err = _invoke(*_cli_args(folders), "--no-distill", "--lambda-teacher", "2", "--steps", "1",
                          "-o", str(tmp_path / "r"))
    assert got == 0, err
    assert "warning: --negatives and --lambda-teacher have no effect in --mode none" in err
    assert (tmp_path / "r" / "best.safetensors").is_file()
