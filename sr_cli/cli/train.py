"""``srtool train``: train a registry model on folders of HR images (see sr_cli/train/)."""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from sr_cli.cli.common import (
    catalogue_file,
    err_console,
    interactive,
    out_console,
    print_json,
    run_command,
    warn,
)
from sr_cli.cli.config_options import given_settings, with_options
from sr_cli.errors import UsageError
from sr_cli.signals import EXIT_CODES
from sr_cli.train.config import TrainConfig
from sr_cli.train.distributed import leave_process_group
from sr_cli.train.reporter import Reporter

if TYPE_CHECKING:
    from sr_cli.train.loop import Trainer


class ConsoleReporter(Reporter):
    """A rich progress bar (steps/s, ETA, loss, last validation PSNR) on a terminal, else a line per log step."""

    def __init__(self, log_every: int, bar: bool, label: str = "train") -> None:
        self.log_every = log_every
        self.label = label
        self.bar = bar
        self.progress: Progress | None = None
        self.val = "-"
        self.tick = (0, time.perf_counter())

    def start(self, run_dir: Path, total: int, done: int) -> None:
        err_console.print(f"run folder: {run_dir}")
        self.total = total
        self.tick = (done, time.perf_counter())
        if self.bar:
            self.progress = Progress(
                TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} steps/s"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), TextColumn("loss {task.fields[loss]}  val {task.fields[val]}"),
                console=err_console,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total, completed=done, loss="-", val="-", rate="-")

    def step(self, step: int, loss: float, lr: float) -> None:
        if self.progress is not None:
            speed = self.progress.tasks[0].speed
            self.progress.update(self.task, completed=step, loss=f"{loss:.4g}", val=self.val,
                                 rate=f"{speed:.2f}" if speed else "-")
        elif step % self.log_every == 0:
            done, then = self.tick
            now = time.perf_counter()
            self.tick = (step, now)
            rate = (step - done) / max(now - then, 1e-9)
            err_console.print(f"step {step}/{self.total}  loss {loss:.4g}  lr {lr:.3g}  {rate:.2f} steps/s  "
                              f"val {self.val}")

    def validated(self, step: int, psnr: float, ssim: float, best: bool) -> None:
        self.val = f"{psnr:.2f} dB" + (" (best)" if best else "")
        if self.progress is None:
            err_console.print(f"step {step}: validation Y-PSNR {psnr:.3f} dB, SSIM {ssim:.4f}"
                              + (" (best)" if best else ""))

    def note(self, message: str) -> None:
        err_console.print(message, soft_wrap=True)

    def warn(self, message: str) -> None:
        warn(message)

    def close(self) -> None:
        """Stop the bar."""
        if self.progress is not None:
            self.progress.stop()


# Options of `train` and `distill` besides their config's (see config_options.py).
ResumeOpt = Annotated[Path | None, typer.Option("--resume", help="Continue the run in this folder (its own settings; "
                                                "--steps etc. may change).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]


def run_trainer(build: Callable[[Reporter], Trainer], log_every: int, json_out: bool, command: str,
                extra: Callable[[Trainer], dict[str, Any]] | None = None) -> int:
    """Build a trainer with a console reporter, run it, print the summary; the exit code (130 when interrupted
    by SIGINT, 143 by SIGTERM). ``extra`` adds to the summary. A torchrun rank ends its process here."""
    reporter = ConsoleReporter(log_every, interactive() and not json_out, command)
    trainer: Trainer | None = None
    try:
        trainer = build(reporter)
        result = trainer.run()
        summary = {"status": result.status, "steps": result.step, "run_dir": str(result.run_dir),
                   "best_psnr": result.best_psnr, "last_psnr": result.last_psnr,
                   **(extra(trainer) if extra else {})}
        main, world = trainer.main, trainer.world
    finally:
        reporter.close()
        trainer = None  # DDP holds the process group: free it (reference cycles too) before leaving the group
        gc.collect()
        leave_process_group()
    if json_out:
        print_json(summary)
    elif main:
        best = f"{result.best_psnr:.3f} dB" if result.best_psnr is not None else "-"
        out_console.print(f"{result.status} at step {result.step}: best validation Y-PSNR {best}; "
                          f"weights in {result.run_dir}", soft_wrap=True)
    code = 0
    if result.status == "interrupted":
        warn(f"interrupted: checkpoint written; continue with `srtool {command} --resume {result.run_dir}`")
        code = EXIT_CODES[result.stop_signal]
    if world > 1:  # torchrun: skip the interpreter's teardown, where gloo's threads aborted a rank in CI
        sys.stdout.flush()  # ("terminate called without an active exception", after destroy_process_group)
        sys.stderr.flush()
        os._exit(code)
    return code


@with_options(TrainConfig)
def train(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder. Default: runs/<model>_x<scale>_<time>"
                                             " (mdsr without --scale: runs/mdsr_<time>).", show_default=False)] = None,
    resume: ResumeOpt = None,
    json_out: JsonOpt = False,
    **settings: Any,
) -> None:
    """Train a model on folders of HR images; Ctrl-C or SIGTERM checkpoints and stops (exit 130 or 143), --resume
    continues."""
    def body() -> int:
        # here, not at the top: --help never loads torch
        from sr_cli.registry import get_spec
        from sr_cli.train.loop import Trainer
        from sr_cli.train.state import resume_config

        given = given_settings(TrainConfig, settings)
        model, scale, data = given.pop("model", None), given.pop("scale", None), given.pop("data", None)
        if given.get("init") is not None:
            given["init"] = str(catalogue_file(given["init"]))
        if resume is not None:
            if data:
                raise UsageError("--resume uses the run's own --data; do not pass --data with it")
            config = resume_config(resume, given, model, scale)
            run_dir = resume
        else:
            run_scale = scale
            if model is not None and run_scale is None and get_spec(model).multi_scale:
                run_scale = max(get_spec(model).scales)  # a multi-scale model trains every scale anyway
            if model is None or run_scale is None or not data:
                raise UsageError("--model, --scale and --data are needed (or --resume RUN_DIR)")
            config = TrainConfig(model=get_spec(model).name, scale=run_scale, data=data, **given)
            named = model if scale is None else f"{model}_x{run_scale}"
            run_dir = out or Path("runs") / f"{named}_{time.strftime('%Y%m%d-%H%M%S')}"
        return run_trainer(lambda reporter: Trainer(config, run_dir, reporter, resume=resume is not None),
                           config.log_every, json_out, "train")

    code = run_command(body)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``train`` to the app."""
    app.command("train")(train)
