"""``--tensorboard``: every metrics row also in TensorBoard event files (RUN/tensorboard/), the same values as the
CSV's at the same steps, also across a resume; without TensorBoard installed, one usage error saying how to get it."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sr_cli.cli.app import app
from sr_cli.errors import EXIT_USAGE
from sr_cli.train import runs
from sr_cli.train.config import TrainConfig
from sr_cli.train.loop import Trainer
from sr_cli.train.reporter import Reporter
from sr_cli.train.tensorboard_log import FOLDER
from testdata import train_folders

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return train_folders(tmp_path_factory.mktemp("tb"), 2, 36)


def _train(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["train", *args])
    return result.exit_code, result.stderr


def _tiny(data: tuple[Path, Path], run: Path) -> list[str]:
    return ["-m", "espcn", "-s", "2", "-d", str(data[0]), "--batch", "2", "--patch", "6", "--val-data", str(data[1]),
            "--val-every", "2", "--log-every", "1", "--workers", "0", "-o", str(run)]


def _scalars(run: Path, tag: str) -> dict[int, float]:
    events = event_accumulator.EventAccumulator(str(run / FOLDER))
    events.Reload()
    steps = [e.step for e in events.Scalars(tag)]
    assert len(steps) == len(set(steps)), steps  # one value a step (a resume hides what it replaces)
    return {e.step: e.value for e in events.Scalars(tag)}


def _column(run: Path, name: str) -> dict[int, float]:
    with (run / runs.METRICS).open() as f:
        return {int(r["step"]): float(r[name]) for r in csv.DictReader(f) if r[name]}


def _same(run: Path) -> None:
    for tag in ("loss", "lr", "steps_per_s", "val_psnr", "val_ssim"):
        board, table = _scalars(run, tag), _column(run, tag)
        assert board.keys() == table.keys() and table, tag
        assert all(board[s] == pytest.approx(v, rel=1e-5) for s, v in table.items()), tag  # the CSV has 6 digits


def test_rows_go_to_tensorboard_too(data: tuple[Path, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, err = _train(*_tiny(data, run), "--steps", "4", "--tensorboard")
    assert code == 0, err
    assert list((run / FOLDER).glob("events.out.tfevents.*"))
    assert sorted(_column(run, "val_psnr")) == [2, 4]
    _same(run)


class KeepCheckpoint(Reporter):
    """Copies checkpoint.pt when step ``at`` ends (before its row is written): the checkpoint a run killed then
    would resume from."""

    def __init__(self, run: Path, at: int) -> None:
        self.run, self.at = run, at

    def step(self, step: int, loss: float, lr: float) -> None:
        if step == self.at:
            shutil.copy(self.run / runs.CHECKPOINT, self.run / "kept.pt")


def test_a_resume_keeps_one_value_a_step(data: tuple[Path, Path], tmp_path: Path) -> None:
    """Rows written after the checkpoint a run resumes from are dropped from the CSV and hidden in TensorBoard."""
    run = tmp_path / "run"
    config = TrainConfig(model="espcn", scale=2, data=[str(data[0])], steps=4, batch=2, patch=6, val_data=str(data[1]),
                         val_every=2, checkpoint_every=2, log_every=1, workers=0, tensorboard=True)
    assert Trainer(config, run, KeepCheckpoint(run, 3)).run().status == "completed"
    assert sorted(_scalars(run, "loss")) == [1, 2, 3, 4]
    (run / "kept.pt").replace(run / runs.CHECKPOINT)  # killed in step 3: back to the step-2 checkpoint
    code, err = _train("--resume", str(run), "--steps", "5")
    assert code == 0, err
    assert "resumed at step 2" in err
    assert sorted(_column(run, "loss")) == [1, 2, 3, 4, 5]
    _same(run)


def test_without_tensorboard_one_usage_error(data: tuple[Path, Path], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # what an import of a missing package does
    code, err = _train(*_tiny(data, tmp_path / "run"), "--steps", "1", "--tensorboard")
    assert code == EXIT_USAGE
    assert err.strip().splitlines() == [
        'srtool: error: --tensorboard needs TensorBoard, an optional extra: pip install "srtool[tensorboard]"']
    assert not (tmp_path / "run").exists()
