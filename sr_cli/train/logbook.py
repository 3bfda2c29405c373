"""The metrics of a run: each step's logged losses summed into the next metrics row (every ``--log-every`` steps:
their means, the learning rate and steps/s; validation steps add their scores), and the one sink the rows go to:
``RUN/metrics.csv``, its plots (at most a minute apart) and, with ``--tensorboard``, TensorBoard (written by rank 0)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sr_cli.train import runs
from sr_cli.train.tensorboard_log import TensorBoardLog

PLOT_INTERVAL_S = 60.0


class LossSums:
    """The logged losses since the last metrics row."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0
        self.tick = (0, time.perf_counter())  # the step and time the row's steps/s counts from

    def start(self, step: int) -> None:
        """Training (re)starts after ``step``: steps/s counts from now."""
        self.tick = (step, time.perf_counter())

    def add(self, logged: dict[str, float]) -> None:
        """Add one step's values (``loss`` and each term)."""
        for k, v in logged.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1

    def row(self, step: int, lr: float) -> dict[str, Any]:
        """The metrics row at ``step`` (empty when no step since the last one was logged), and a new start."""
        if not self.count:
            return {}
        now = time.perf_counter()
        row = {"step": step, "lr": lr,
               **{("loss" if k == "loss" else f"loss_{k}"): v / self.count for k, v in self.sums.items()},
               "steps_per_s": (step - self.tick[0]) / (now - self.tick[1])}
        self.sums, self.count, self.tick = {}, 0, (step, now)
        return row

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's ``log``."""
        return {"sums": self.sums, "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.sums, self.count = dict(state.get("sums", {})), int(state.get("count", 0))


class Sink:
    """Where the rows of the run in ``run_dir`` go (see the module notes); opened at ``resume_step`` it drops what
    was written after that checkpoint. ``warn`` says once that plots need matplotlib."""

    def __init__(self, run_dir: Path, columns: list[str], resume_step: int | None, tensorboard: bool,
                 warn: Callable[[str], None]) -> None:
        self.run_dir, self.warn = run_dir, warn
        self.csv = runs.MetricsLog(run_dir, columns, resume_step)
        self.board = TensorBoardLog(run_dir, resume_step) if tensorboard else None
        self._plotted, self._warned = time.monotonic(), False

    def append(self, row: dict[str, Any]) -> None:
        """Write one metrics row."""
        self.csv.append(row)
        if self.board is not None:
            self.board.append(row)

    def plot(self, final: bool) -> None:
        """Draw the plots when ``final`` or a minute after the last ones."""
        if final or time.monotonic() - self._plotted >= PLOT_INTERVAL_S:
            self._plotted = time.monotonic()
            if not runs.write_plots(self.run_dir, self.csv) and not self._warned:
                self._warned = True
                self.warn("matplotlib is not installed: no plots (pip install 'srtool[plots]')")

    def close(self) -> None:
        """Close what stays open (TensorBoard's event file)."""
        if self.board is not None:
            self.board.close()
