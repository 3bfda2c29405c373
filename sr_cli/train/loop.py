"""The training loop: batch → loss → optimiser step, metrics rows, validation, early stopping, checkpoints (every
``checkpoint_every`` steps, every ``checkpoint_minutes`` and at every validation). :class:`Trainer` runs the parts
that parts.py builds (sr_cli/train/__init__.py says which module does what). Under ``torchrun`` every rank steps on
its own samples and only rank 0 validates and writes. Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes a
checkpoint and returns ``status == "interrupted"``; a second one aborts."""

from __future__ import annotations

import functools
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sr_cli import signals
from sr_cli.device import precision_name
from sr_cli.errors import SrtoolError
from sr_cli.train import runs, state
from sr_cli.train.distributed import any_rank, mean_over_ranks
from sr_cli.train.parts import Parts

MAX_NAN_IN_A_ROW = 20


@dataclass
class TrainResult:
    """How a run ended: ``completed``, ``early-stopped`` or ``interrupted`` (by ``stop_signal``)."""

    status: str
    step: int
    run_dir: Path | None
    best_psnr: float | None
    last_psnr: float | None
    stop_signal: int | None = None


class Trainer(Parts):
    """One training run (see the module notes); ``stop_requested`` (set by the first SIGINT or SIGTERM) ends it after
    the current step."""

    stop_requested, stop_signal = False, signal.SIGINT  # stop_signal: the one that set stop_requested

    def train_step(self, lr: Tensor, hr: Tensor) -> dict[str, float] | None:
        """One optimisation step (and the objective's own, e.g. a discriminator's); its logged values, None when the
        loss was not finite on some rank and the step was skipped. A multi-scale model runs the batch's scale."""
        if self.spec.multi_scale:
            self.model.set_scale(hr.shape[-1] // lr.shape[-1])
        self.optimizer.zero_grad(set_to_none=True)
        with self.amp.autocast():
            out = self.objective.loss(self.net, lr, hr)
        names = [n for n in self.objective.term_names() if n in out.terms]
        values = torch.stack([out.total.detach().float(), *(out.terms[n].detach().float() for n in names)])
        means = mean_over_ranks(values.tolist(), self.device)
        if not all(np.isfinite(means)):
            self.scheduler.step()  # the schedule follows the step count, skipped steps included
            self.objective.skip()
            return None
        self.amp.step(out.total, self.optimizer, list(self.model.parameters()))
        logged = {**dict(zip(["loss", *names], means)), **self.objective.step(out.sr, hr)}
        self.amp.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return logged

    def validate(self) -> tuple[bool, dict[str, float]]:
        """Validate (rank 0), keep the best weights; whether to stop early (agreed by every rank), the CSV cells."""
        cells: dict[str, float] = {}
        if self.main:
            cells = self.objective.validate(self)
            val = self.validation.run(self.export_model(), self.step)
            self.model.train()
            improved = self.tracker.add(val)
            if improved:
                self.save_weights(self.run_dir / runs.BEST, self.tracker.best)
            self.reporter.validated(self.step, val["psnr"], val["ssim"], improved)
            cells = {**self.tracker.row(), **cells}
        return any_rank(self.tracker.out_of_patience, self.device), cells

    def save_checkpoint(self, final: bool = False) -> None:
        """Write checkpoint.pt and last.safetensors, and the plots a minute after the last ones (rank 0); ``final``:
        the run ends, the plots are drawn and the metrics sink is closed."""
        if self.run_dir is None:
            return
        runs.write_checkpoint(self.run_dir, functools.partial(state.save, self))
        self._checkpointed = time.monotonic()
        self.save_weights(self.run_dir / runs.LAST, self.tracker.last)
        self.sink.plot(final)
        if final:
            self.sink.close()

    def _on_signal(self, signum: int) -> None:
        """The first SIGINT or SIGTERM: stop after this step; the second: abort."""
        if self.stop_requested:
            raise signals.Stopped(signum)
        self.stop_requested, self.stop_signal = True, signum

    def run(self) -> TrainResult:
        """Train up to ``config.steps``; returns how it ended."""
        config, status = self.config, "completed"
        self.model.train()
        self.reporter.start(self.run_dir, config.steps, self.step)
        self.reporter.note(f"precision {precision_name(self.amp_dtype)} on {self.device}"
                           + (f", {self.world} processes" if self.world > 1 else ""))
        nan_in_a_row, self._checkpointed = 0, time.monotonic()
        self.sums.start(self.step)
        batches = self._batches()
        with signals.handling(self._on_signal):
            while self.step < config.steps:
                if any_rank(self.stop_requested, self.device):
                    status = "interrupted"
                    break
                logged = self.train_step(*next(batches))
                self.step += 1
                current_lr = self.optimizer.param_groups[0]["lr"]
                if logged is None:
                    self.nan_skips += 1
                    nan_in_a_row += 1
                    self.reporter.warn(f"step {self.step}: the loss is not finite; step skipped")
                    if nan_in_a_row >= MAX_NAN_IN_A_ROW:
                        self.save_checkpoint(final=True)
                        raise SrtoolError(f"training diverged: {nan_in_a_row} non-finite losses in a row at step "
                                          f"{self.step}; lower --lr or use --precision fp32")
                else:
                    nan_in_a_row = 0
                    self.sums.add(logged)
                    self.reporter.step(self.step, logged["loss"], current_lr)
                logging = self.step % config.log_every == 0 or self.step == config.steps
                row: dict[str, Any] = self.sums.row(self.step, current_lr) if logging else {}
                stop, validating = False, self.step % config.val_every == 0 or self.step == config.steps
                if validating:
                    stop, cells = self.validate()
                    row.update(step=self.step, **cells)
                if row and self.sink is not None:
                    self.sink.append(row)
                checkpoint_due = self.step % config.checkpoint_every == 0 or \
                    time.monotonic() - self._checkpointed >= config.checkpoint_minutes * 60
                if not stop and self.step < config.steps and (validating or checkpoint_due):
                    self.save_checkpoint()
                if stop:
                    status = "early-stopped"
                    self.reporter.note(f"no better validation PSNR in {self.tracker.bad} validations: stopping early")
                    break
        batches.close()
        self.save_checkpoint(final=True)
        best, last = self.tracker.best, self.tracker.last
        return TrainResult(status, self.step, self.run_dir, best["psnr"] if best else None,
                           last["psnr"] if last else None, self.stop_signal if status == "interrupted" else None)
