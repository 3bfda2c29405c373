"""``--tensorboard``: every metrics row also as TensorBoard scalars in ``RUN/tensorboard/``, one per metrics CSV column
(tagged with the column's name) at the row's step. TensorBoard is an optional extra:
``pip install "srtool[tensorboard]"``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sr_cli.errors import UsageError

FOLDER = "tensorboard"
INSTALL = 'pip install "srtool[tensorboard]"'


def summary_writer() -> type:
    """torch's ``SummaryWriter``; a UsageError saying how to install TensorBoard when it is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError(f"--tensorboard needs TensorBoard, an optional extra: {INSTALL}") from None
    return SummaryWriter


class TensorBoardLog:
    """The event files of a run in ``run_dir``; resuming at ``resume_step`` hides the events written after it."""

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        self.writer = summary_writer()(str(run_dir / FOLDER),
                                       purge_step=resume_step + 1 if resume_step is not None else None)

    def append(self, row: dict[str, Any]) -> None:
        """Add one metrics row (its numbers; flushed at once, so that a killed run loses nothing)."""
        for name, value in row.items():
            if name != "step" and isinstance(value, (int, float)):
                self.writer.add_scalar(name, value, row["step"])
        self.writer.flush()

    def close(self) -> None:
        """Close the event file."""
        self.writer.close()
