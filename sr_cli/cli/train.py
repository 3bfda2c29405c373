"""``srtool train``: train a registry model on folders of HR images (see sr_cli/train/)."""

from __future__ import annotations

import dataclasses
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
from sr_cli.errors import UsageError
from sr_cli.signals import EXIT_CODES
from sr_cli.train.config import TrainConfig
from sr_cli.train.reporter import Reporter

if TYPE_CHECKING:
    from sr_cli.train.loop import Trainer

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)
             if f.default is not dataclasses.MISSING}


def _d(name: str) -> str:
    """' (default X)' for the help text (options default to None so that --resume sees what was given)."""
    return f" (default {_DEFAULTS[name]})"


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


def _opt(kind: Any, help: str, *names: str) -> Any:
    """An optional (default None) option of ``kind``; its flag is the parameter's name unless ``names``."""
    return Annotated[kind | None, typer.Option(*names, help=help, show_default=False)]


# Options shared by `train` and `distill` (defaults None, so that --resume sees what was given).
DataOpt = _opt(list[Path], "Folder of HR training images (searched recursively); repeat for more.", "--data", "-d")
ScaleOpt = _opt(int, "Upscaling factor: 2, 3 or 4.", "--scale", "-s")
ResumeOpt = _opt(Path, "Continue the run in this folder (its own settings; --steps etc. may change).", "--resume")
StepsOpt = _opt(int, "Training steps." + _d("steps"))
BatchOpt = _opt(int, "Patches per step (per process)." + _d("batch"))
PatchOpt = _opt(int, "LR patch size in pixels (HR = patch x scale)." + _d("patch"))
VggWeightsOpt = _opt(Path, "VGG19 weights file (default: downloaded once into the user cache).")
OptimizerOpt = _opt(str, "adam or adamw." + _d("optimizer"))
LrOpt = _opt(float, "Learning rate." + _d("lr"))
WeightDecayOpt = _opt(float, "Weight decay." + _d("weight_decay"))
ScheduleOpt = _opt(str, "step (x gamma every --decay-every steps or at --milestones), cosine or constant."
                   + _d("schedule"))
DecayEveryOpt = _opt(int, "Step schedule period." + _d("decay_every"))
MilestonesOpt = _opt(str, "Step schedule milestones, e.g. 50000,100000.")
GammaOpt = _opt(float, "Step schedule factor." + _d("gamma"))
WarmupOpt = _opt(int, "Linear warmup steps." + _d("warmup"))
MinLrOpt = _opt(float, "Cosine schedule floor." + _d("min_lr"))
GradClipOpt = _opt(float, "Clip the gradient norm to this; 0 = off." + _d("grad_clip"))
EmaOpt = _opt(float, "EMA decay of the weights (e.g. 0.999); 0 = off. The EMA is what is validated and saved."
              + _d("ema"))
PrecisionOpt = _opt(str, "auto|fp32|bf16|fp16: autocast dtype; auto = fp16 with a GradScaler on CUDA, bf16 on "
                    "CPUs with native bf16, else fp32.")
DeviceOpt = _opt(str, "auto|cpu|cuda|cuda:N|mps.")
DegradationOpt = _opt(str, "How LR patches are made: bicubic (MATLAB), blur-decimate, bilinear, nearest."
                      + _d("degradation"))
AugmentOpt = _opt(bool, "Random flips and 90-degree rotations (default on).", "--augment/--no-augment")
ValSetOpt = _opt(str, "Validation data set." + _d("val_set"))
ValDataOpt = _opt(Path, "Folder of HR validation images (instead of --val-set).")
ValEveryOpt = _opt(int, "Validate every N steps." + _d("val_every"))
PatienceOpt = _opt(int, "Stop after N validations without a better PSNR; 0 = never." + _d("patience"))
CheckpointEveryOpt = _opt(int, "Checkpoint every N steps (and at every validation)." + _d("checkpoint_every"))
CheckpointMinutesOpt = _opt(float, "Also checkpoint when this many minutes have passed since the last checkpoint."
                            + _d("checkpoint_minutes"))
LogEveryOpt = _opt(int, "Metrics CSV row every N steps." + _d("log_every"))
WorkersOpt = _opt(int, "DataLoader worker processes." + _d("workers"))
SeedOpt = _opt(int, "Random seed (data, init)." + _d("seed"))
CacheDirOpt = _opt(Path, "Keep decoded images and their LR versions here as memory-mapped .npy files (for data "
                  "sets larger than memory; resumes and later runs reuse them).")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]


def given_settings(values: dict[str, Any]) -> dict[str, Any]:
    """The TrainConfig settings given on the command line (None = not given): paths as strings, milestones
    parsed."""
    given = {k: str(v) if isinstance(v, Path) else v for k, v in values.items() if v is not None}
    if "milestones" in given:
        given["milestones"] = [int(m) for m in given["milestones"].split(",") if m.strip()]
    return given


def run_trainer(build: Callable[[Reporter], Trainer], log_every: int, json_out: bool, command: str,
                extra: Callable[[Trainer], dict[str, Any]] | None = None) -> int:
    """Build a trainer with a console reporter, run it, print the summary; the exit code (130 when interrupted
    by SIGINT, 143 by SIGTERM). ``extra`` adds to the summary. A torchrun rank ends its process here."""
    from sr_cli.train.loop import leave_process_group  # here, not at the top: --help never loads torch

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


def train(
    data: DataOpt = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model to train (see `srtool models`).",
                                              show_default=False)] = None,
    scale: Annotated[int | None, typer.Option("--scale", "-s", help="Upscaling factor: 2, 3 or 4 (mdsr trains "
                                              "all three in turn and needs none).", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder. Default: runs/<model>_x<scale>_<time>"
                                             " (mdsr without --scale: runs/mdsr_<time>).", show_default=False)] = None,
    resume: ResumeOpt = None,
    init: Annotated[Path | None, typer.Option("--init", help="Start from these weights (a file or a catalogue name, "
                                              "see srtool models): copies every tensor "
                                              "whose name and shape match (a file of the same model also brings its "
                                              "network options, e.g. BasicSR's MSRResNet).", show_default=False)] = None,
    steps: StepsOpt = None,
    batch: BatchOpt = None,
    patch: PatchOpt = None,
    loss: Annotated[str | None, typer.Option(help="Loss expression, e.g. 1*l1+0.006*perceptual+0.001*gan; "
                                             "terms: l1, mse, charbonnier, perceptual, gan." + _d("loss"),
                                             show_default=False)] = None,
    gan_type: Annotated[str | None, typer.Option(help="vanilla (SRGAN) or ragan (ESRGAN)." + _d("gan_type"),
                                                 show_default=False)] = None,
    perceptual_layer: Annotated[str | None, typer.Option(help="VGG19 layer of the perceptual loss (conv5_4 = "
                                                         "ESRGAN, relu5_4 = SRGAN)." + _d("perceptual_layer"),
                                                         show_default=False)] = None,
    vgg_weights: VggWeightsOpt = None,
    optimizer: OptimizerOpt = None,
    lr: LrOpt = None,
    d_lr: Annotated[float | None, typer.Option(help="Discriminator learning rate (default --lr).",
                                               show_default=False)] = None,
    weight_decay: WeightDecayOpt = None,
    schedule: ScheduleOpt = None,
    decay_every: DecayEveryOpt = None,
    milestones: MilestonesOpt = None,
    gamma: GammaOpt = None,
    warmup: WarmupOpt = None,
    min_lr: MinLrOpt = None,
    grad_clip: GradClipOpt = None,
    ema: EmaOpt = None,
    precision: PrecisionOpt = None,
    device: DeviceOpt = None,
    degradation: DegradationOpt = None,
    augment: AugmentOpt = None,
    val_set: ValSetOpt = None,
    val_data: ValDataOpt = None,
    val_every: ValEveryOpt = None,
    patience: PatienceOpt = None,
    checkpoint_every: CheckpointEveryOpt = None,
    checkpoint_minutes: CheckpointMinutesOpt = None,
    log_every: LogEveryOpt = None,
    workers: WorkersOpt = None,
    seed: SeedOpt = None,
    cache_dir: CacheDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a model on folders of HR images; Ctrl-C or SIGTERM checkpoints and stops (exit 130 or 143), --resume
    continues."""
    given = given_settings({
        "steps": steps, "batch": batch, "patch": patch, "loss": loss, "gan_type": gan_type,
        "perceptual_layer": perceptual_layer, "vgg_weights": vgg_weights, "optimizer": optimizer, "lr": lr,
        "d_lr": d_lr, "weight_decay": weight_decay, "schedule": schedule, "decay_every": decay_every,
        "milestones": milestones, "gamma": gamma, "warmup": warmup, "min_lr": min_lr, "grad_clip": grad_clip,
        "ema": ema, "precision": precision, "device": device, "degradation": degradation, "augment": augment,
        "val_set": val_set, "val_data": val_data, "val_every": val_every, "patience": patience,
        "checkpoint_every": checkpoint_every, "checkpoint_minutes": checkpoint_minutes, "log_every": log_every,
        "workers": workers, "seed": seed, "cache_dir": cache_dir, "init": init,
    })

    def body() -> int:
        from sr_cli.registry import get_spec
        from sr_cli.train.loop import Trainer, resume_config

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
            config = TrainConfig(model=get_spec(model).name, scale=run_scale, data=[str(d) for d in data], **given)
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
