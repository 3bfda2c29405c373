"""``srtool train``: train a registry model on folders of HR images (see sr_cli/train/)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from sr_cli.cli.common import err_console, interactive, out_console, print_json, run_command, warn
from sr_cli.errors import EXIT_INTERRUPTED, UsageError
from sr_cli.registry import get_spec
from sr_cli.train.config import TrainConfig
from sr_cli.train.loop import Reporter, Trainer, resume_config

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)
             if f.default is not dataclasses.MISSING}


def _d(name: str) -> str:
    """' (default X)' for the help text (options default to None so that --resume sees what was given)."""
    return f" (default {_DEFAULTS[name]})"


class ConsoleReporter(Reporter):
    """A rich progress bar (steps/s, ETA, loss, last validation PSNR) on a terminal, else a line per log step."""

    def __init__(self, log_every: int, bar: bool) -> None:
        self.log_every = log_every
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
                TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} steps/s"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), TextColumn("loss {task.fields[loss]}  val {task.fields[val]}"),
                console=err_console,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=total, completed=done, loss="-", val="-", rate="-")

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


def train(
    data: Annotated[list[Path] | None, typer.Option("--data", "-d", help="Folder of HR training images "
                                                    "(searched recursively); repeat for more.",
                                                    show_default=False)] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model to train (see `srtool models`).",
                                              show_default=False)] = None,
    scale: Annotated[int | None, typer.Option("--scale", "-s", help="Upscaling factor: 2, 3 or 4.",
                                              show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder. Default: "
                                             "runs/<model>_x<scale>_<time>.", show_default=False)] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the run in this folder (its own "
                                                "settings; --steps etc. may change).", show_default=False)] = None,
    init: Annotated[Path | None, typer.Option("--init", help="Start from these weights: copies every tensor "
                                              "whose name and shape match.", show_default=False)] = None,
    steps: Annotated[int | None, typer.Option(help="Training steps." + _d("steps"), show_default=False)] = None,
    batch: Annotated[int | None, typer.Option(help="Patches per step (per process)." + _d("batch"),
                                              show_default=False)] = None,
    patch: Annotated[int | None, typer.Option(help="LR patch size in pixels (HR = patch x scale)." + _d("patch"),
                                              show_default=False)] = None,
    loss: Annotated[str | None, typer.Option(help="Loss expression, e.g. 1*l1+0.006*perceptual+0.001*gan; "
                                             "terms: l1, mse, charbonnier, perceptual, gan." + _d("loss"),
                                             show_default=False)] = None,
    gan_type: Annotated[str | None, typer.Option(help="vanilla (SRGAN) or ragan (ESRGAN)." + _d("gan_type"),
                                                 show_default=False)] = None,
    perceptual_layer: Annotated[str | None, typer.Option(help="VGG19 layer of the perceptual loss (conv5_4 = "
                                                         "ESRGAN, relu5_4 = SRGAN)." + _d("perceptual_layer"),
                                                         show_default=False)] = None,
    vgg_weights: Annotated[Path | None, typer.Option(help="VGG19 weights file (default: downloaded once into "
                                                     "the user cache).", show_default=False)] = None,
    optimizer: Annotated[str | None, typer.Option(help="adam or adamw." + _d("optimizer"),
                                                  show_default=False)] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate." + _d("lr"), show_default=False)] = None,
    d_lr: Annotated[float | None, typer.Option(help="Discriminator learning rate (default --lr).",
                                               show_default=False)] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Weight decay." + _d("weight_decay"),
                                                       show_default=False)] = None,
    schedule: Annotated[str | None, typer.Option(help="step (x gamma every --decay-every steps or at "
                                                 "--milestones), cosine or constant." + _d("schedule"),
                                                 show_default=False)] = None,
    decay_every: Annotated[int | None, typer.Option(help="Step schedule period." + _d("decay_every"),
                                                    show_default=False)] = None,
    milestones: Annotated[str | None, typer.Option(help="Step schedule milestones, e.g. 50000,100000.",
                                                   show_default=False)] = None,
    gamma: Annotated[float | None, typer.Option(help="Step schedule factor." + _d("gamma"),
                                                show_default=False)] = None,
    warmup: Annotated[int | None, typer.Option(help="Linear warmup steps." + _d("warmup"),
                                               show_default=False)] = None,
    min_lr: Annotated[float | None, typer.Option(help="Cosine schedule floor." + _d("min_lr"),
                                                 show_default=False)] = None,
    grad_clip: Annotated[float | None, typer.Option(help="Clip the gradient norm to this; 0 = off."
                                                    + _d("grad_clip"), show_default=False)] = None,
    ema: Annotated[float | None, typer.Option(help="EMA decay of the weights (e.g. 0.999); 0 = off. The EMA is "
                                              "what is validated and saved." + _d("ema"),
                                              show_default=False)] = None,
    precision: Annotated[str | None, typer.Option(help="auto|fp32|bf16|fp16: autocast dtype; auto = fp16 with a "
                                                  "GradScaler on CUDA, bf16 on CPUs with native bf16, else fp32.",
                                                  show_default=False)] = None,
    device: Annotated[str | None, typer.Option(help="auto|cpu|cuda|cuda:N|mps.", show_default=False)] = None,
    degradation: Annotated[str | None, typer.Option(help="How LR patches are made: bicubic (MATLAB), "
                                                    "blur-decimate, bilinear, nearest." + _d("degradation"),
                                                    show_default=False)] = None,
    augment: Annotated[bool | None, typer.Option("--augment/--no-augment", help="Random flips and 90-degree "
                                                 "rotations (default on).", show_default=False)] = None,
    val_set: Annotated[str | None, typer.Option(help="Validation data set." + _d("val_set"),
                                                show_default=False)] = None,
    val_data: Annotated[Path | None, typer.Option(help="Folder of HR validation images (instead of --val-set).",
                                                  show_default=False)] = None,
    val_every: Annotated[int | None, typer.Option(help="Validate every N steps." + _d("val_every"),
                                                  show_default=False)] = None,
    patience: Annotated[int | None, typer.Option(help="Stop after N validations without a better PSNR; "
                                                 "0 = never." + _d("patience"), show_default=False)] = None,
    checkpoint_every: Annotated[int | None, typer.Option(help="Checkpoint every N steps."
                                                         + _d("checkpoint_every"), show_default=False)] = None,
    log_every: Annotated[int | None, typer.Option(help="Metrics CSV row every N steps." + _d("log_every"),
                                                  show_default=False)] = None,
    workers: Annotated[int | None, typer.Option(help="DataLoader worker processes." + _d("workers"),
                                                show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (data, init)." + _d("seed"),
                                             show_default=False)] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Keep decoded images here as memory-mapped .npy files "
                                                   "(for data sets larger than memory).", show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Train a model on folders of HR images; Ctrl-C checkpoints and stops (exit 130), --resume continues."""
    given: dict[str, Any] = {k: v for k, v in {
        "steps": steps, "batch": batch, "patch": patch, "loss": loss, "gan_type": gan_type,
        "perceptual_layer": perceptual_layer, "vgg_weights": vgg_weights, "optimizer": optimizer, "lr": lr,
        "d_lr": d_lr, "weight_decay": weight_decay, "schedule": schedule, "decay_every": decay_every,
        "milestones": [int(m) for m in milestones.split(",") if m.strip()] if milestones is not None else None,
        "gamma": gamma, "warmup": warmup, "min_lr": min_lr, "grad_clip": grad_clip, "ema": ema,
        "precision": precision, "device": device, "degradation": degradation, "augment": augment,
        "val_set": val_set, "val_data": val_data, "val_every": val_every, "patience": patience,
        "checkpoint_every": checkpoint_every, "log_every": log_every, "workers": workers, "seed": seed,
        "cache_dir": cache_dir, "init": init,
    }.items() if v is not None}
    given = {k: str(v) if isinstance(v, Path) else v for k, v in given.items()}

    def body() -> int:
        if resume is not None:
            if data:
                raise UsageError("--resume uses the run's own --data; do not pass --data with it")
            config = resume_config(resume, given, model, scale)
            run_dir = resume
        else:
            if model is None or scale is None or not data:
                raise UsageError("--model, --scale and --data are needed (or --resume RUN_DIR)")
            config = TrainConfig(model=get_spec(model).name, scale=scale, data=[str(d) for d in data], **given)
            run_dir = out or Path("runs") / f"{model}_x{scale}_{time.strftime('%Y%m%d-%H%M%S')}"
        reporter = ConsoleReporter(config.log_every, interactive() and not json_out)
        try:
            trainer = Trainer(config, run_dir, reporter, resume=resume is not None)
            result = trainer.run()
        finally:
            reporter.close()
        summary = {"status": result.status, "steps": result.step, "run_dir": str(result.run_dir),
                   "best_psnr": result.best_psnr, "last_psnr": result.last_psnr}
        if json_out:
            print_json(summary)
        elif trainer.main:
            best = f"{result.best_psnr:.3f} dB" if result.best_psnr is not None else "-"
            out_console.print(f"{result.status} at step {result.step}: best validation Y-PSNR {best}; "
                              f"weights in {result.run_dir}", soft_wrap=True)
        if result.status == "interrupted":
            warn(f"interrupted: checkpoint written; continue with `srtool train --resume {result.run_dir}`")
            return EXIT_INTERRUPTED
        return 0

    code = run_command(body)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``train`` to the app."""
    app.command("train")(train)
