"""The run folder: config, metrics CSV, plots, checkpoint and weights, all written atomically by rank 0.

    RUN/config.json         the full TrainConfig
    RUN/metrics.csv         step, lr, loss and each loss term (means over the log interval), steps/s,
                            validation PSNR/SSIM (on validation steps; distill adds the teacher's)
    RUN/loss.png            loss curves             RUN/val_psnr.png   validation PSNR curves (matplotlib extra)
    RUN/checkpoint.pt       everything --resume needs (the last one; written before config.json, so that a
                            folder with a config can always be resumed)
    RUN/last.safetensors    final weights           RUN/best.safetensors   best-validation weights
    RUN/tensorboard/        with --tensorboard: the metrics rows as TensorBoard event files (tensorboard_log.py)
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sr_cli.atomic import atomic_path
from sr_cli.errors import InputError, OutputError

CONFIG = "config.json"
METRICS = "metrics.csv"
CHECKPOINT = "checkpoint.pt"
LAST = "last.safetensors"
BEST = "best.safetensors"
PLOTS = ("loss.png", "val_psnr.png")


def metric_columns(terms: Sequence[str]) -> list[str]:
    """The CSV header for a run whose loss has ``terms``."""
    return ["step", "lr", "loss", *(f"loss_{t}" for t in terms), "steps_per_s", "val_psnr", "val_ssim"]


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _no_checkpoint(folder: Path) -> str:
    return (f"{folder} has {CONFIG} but no {CHECKPOINT} (killed before its first checkpoint): delete the folder "
            "or choose another --out to start again")


def check_new(folder: Path) -> None:
    """An OutputError when ``folder`` already holds a run."""
    if (folder / CONFIG).exists():
        if not (folder / CHECKPOINT).exists():
            raise OutputError(_no_checkpoint(folder))
        raise OutputError(f"{folder} already holds a run: continue it with --resume {folder} or choose another --out")


def write_checkpoint(folder: Path, save: Callable[[Path], None]) -> None:
    """Replace ``checkpoint.pt`` atomically with what ``save(path)`` writes."""
    with atomic_path(folder / CHECKPOINT) as tmp:
        save(tmp)


def create_run(folder: Path, config: dict[str, Any], save: Callable[[Path], None]) -> None:
    """Make a new run folder (see :func:`check_new`): its first checkpoint, written by ``save(path)``, then
    ``config``, so that the run can be resumed as soon as it is one."""
    check_new(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_checkpoint(folder, save)
    write_config(folder, config)


def write_config(folder: Path, config: dict[str, Any]) -> None:
    """(Re)write ``config.json``."""
    write_text(folder / CONFIG, json.dumps(config, indent=2) + "\n")


def read_config(folder: Path) -> dict[str, Any]:
    """The config of an existing run; InputError when ``folder`` is not a run folder."""
    path = folder / CONFIG
    if not path.is_file():
        raise InputError(f"{folder} is not a run folder to resume (no {CONFIG} in it)")
    if not (folder / CHECKPOINT).is_file():
        raise InputError(_no_checkpoint(folder))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not valid JSON: {err}") from None


class MetricsLog:
    """The metrics CSV; opening it for step ``resume_step`` drops rows written after that checkpoint."""

    def __init__(self, folder: Path, columns: list[str], resume_step: int | None = None) -> None:
        self.path = folder / METRICS
        self.columns = columns
        rows = self.read() if resume_step is not None and self.path.exists() else []
        kept = [r for r in rows if int(r["step"]) <= (resume_step or 0)]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
        write_text(self.path, buf.getvalue())

    def append(self, row: dict[str, Any]) -> None:
        """Add one row (missing columns empty; floats to 6 significant digits)."""
        cells = {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
        with self.path.open("a", encoding="utf-8", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore", lineterminator="\n").writerow(cells)

    def read(self) -> list[dict[str, str]]:
        """All rows as strings."""
        with self.path.open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))


def _series(rows: list[dict[str, str]], column: str) -> tuple[list[int], list[float]]:
    pairs = [(int(r["step"]), float(r[column])) for r in rows if r.get(column) not in (None, "")]
    pairs = [(s, v) for s, v in pairs if math.isfinite(v)]
    return [s for s, _ in pairs], [v for _, v in pairs]


def write_plots(folder: Path, log: MetricsLog) -> bool:
    """Draw ``loss.png`` and ``val_psnr.png`` from the CSV; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = log.read()
    curves = [c for c in log.columns if c.startswith("loss")]
    psnrs = [c for c in log.columns if c.endswith("val_psnr")]
    for name, columns, ylabel in (("loss.png", curves, "loss"), ("val_psnr.png", psnrs, "Y-PSNR (dB)")):
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        for column in columns:
            steps, values = _series(rows, column)
            ax.plot(steps, values, label=column, marker="o" if column.endswith("val_psnr") else None, markersize=3)
        if name == "loss.png" and any(_series(rows, c)[1] for c in columns) and \
                all(v > 0 for c in columns for v in _series(rows, c)[1]):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if len(columns) > 1:
            ax.legend()
        fig.tight_layout()
        with atomic_path(folder / name) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig.savefig(tmp, format="png")
        plt.close(fig)
    return True
