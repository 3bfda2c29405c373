"""``srtool distill``: CSD contrastive self-distillation and its baselines (see sr_cli/train/distill.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sr_cli.cli.common import catalogue_file, run_command
from sr_cli.cli.train import (
    AugmentOpt,
    BatchOpt,
    CacheDirOpt,
    CheckpointEveryOpt,
    CheckpointMinutesOpt,
    DataOpt,
    DecayEveryOpt,
    DegradationOpt,
    DeviceOpt,
    EmaOpt,
    GammaOpt,
    GradClipOpt,
    JsonOpt,
    LogEveryOpt,
    LrOpt,
    MilestonesOpt,
    MinLrOpt,
    OptimizerOpt,
    PatchOpt,
    PatienceOpt,
    PrecisionOpt,
    ResumeOpt,
    ScaleOpt,
    ScheduleOpt,
    SeedOpt,
    StepsOpt,
    ValDataOpt,
    ValEveryOpt,
    ValSetOpt,
    VggWeightsOpt,
    WarmupOpt,
    WeightDecayOpt,
    WorkersOpt,
    given_settings,
    run_trainer,
)
from sr_cli.errors import UsageError
from sr_cli.train.distill_config import MODES, DistillConfig
from sr_cli.train.reporter import Reporter

if TYPE_CHECKING:
    from sr_cli.train.distill import DistillTrainer
    from sr_cli.train.loop import Trainer

_D = DistillConfig(model="csd", scale=4, data=[])
# Settings that only some modes read: giving one to another mode gets a warning rather than silence.
UNUSED_OUTSIDE = {"negatives": ("csd", "teacher-first"), "lambda_con": ("csd", "teacher-first"),
                  "lambda_teacher": ("csd", "output-kd")}


def _widths(text: str) -> list[float]:
    try:
        return [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise UsageError(f"--widths takes fractions like 0.25,1.0, got {text!r}") from None


def distill(
    data: DataOpt = None,
    scale: ScaleOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder. Default: runs/csd_<mode>_x<scale>_"
                                             "<time>.", show_default=False)] = None,
    resume: ResumeOpt = None,
    mode: Annotated[str | None, typer.Option(
        help=f"{' | '.join(MODES)}. csd: one shared-weight network trained at every --widths each step "
             "(L1 of each width + lambda-con x contrastive of each student against the largest width); "
             "teacher-first: a frozen --teacher, the student initialised with its channel slice, same loss; "
             "output-kd: a fresh student, L1 + lambda-teacher x L1 to the teacher's output; none: the "
             f"--export-width trained alone with L1 (default {_D.mode}).", show_default=False)] = None,
    no_distill: Annotated[bool, typer.Option("--no-distill", help="Same as --mode none: the baseline.")] = False,
    teacher: Annotated[Path | None, typer.Option(help="Trained full-width csd weights (e.g. a csd run's "
                                                 "teacher_best.safetensors, or best.safetensors of a run with "
                                                 "--no-distill --export-width 1); teacher-first and output-kd.",
                                                 show_default=False)] = None,
    widths: Annotated[str | None, typer.Option(help="csd mode: the widths trained together; the largest is the "
                                               "teacher, each other one a student of it (default 0.25,1.0).",
                                               show_default=False)] = None,
    export_width: Annotated[float | None, typer.Option(
        help="The student width that best/last.safetensors hold and validation scores (default: the smallest "
             "width).", show_default=False)] = None,
    negatives: Annotated[int | None, typer.Option(help="Negatives K of the contrastive loss: K LR patches of the "
                                                  "batch, bicubic-upsampled; 0 = no contrastive term (default "
                                                  f"{_D.negatives}).", show_default=False)] = None,
    lambda_con: Annotated[float | None, typer.Option(help="Weight of the contrastive term in the official "
                                                     "code's units (L1 on 0-255 pixels; added as weight/255 to srtool's "
                                                     f"0-1 L1; default {_D.lambda_con:g}).", show_default=False)] = None,
    lambda_teacher: Annotated[float | None, typer.Option(help="csd: weight of the teacher's L1; output-kd: of the "
                                                         f"L1 to the teacher (default {_D.lambda_teacher:g}).",
                                                         show_default=False)] = None,
    blocks: Annotated[int | None, typer.Option(help="Residual blocks (default 32, or the --teacher's).",
                                               show_default=False)] = None,
    feats: Annotated[int | None, typer.Option(help="Features of the full width (default 256, or the --teacher's).",
                                              show_default=False)] = None,
    steps: StepsOpt = None,
    batch: BatchOpt = None,
    patch: PatchOpt = None,
    vgg_weights: VggWeightsOpt = None,
    optimizer: OptimizerOpt = None,
    lr: LrOpt = None,
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
    """Distill the CSD width-switchable EDSR (Wang et al. 2021) on folders of HR images.

    best.safetensors and last.safetensors hold the student at --export-width as a standalone sliced network
    (`srtool upscale --model csd --width W --weights RUN/best.safetensors`); validation (val_psnr) is the
    student's, teacher_val_psnr the teacher's. In csd mode teacher_best/teacher_last.safetensors hold the whole
    shared network at the same steps, which runs at any --width. Ctrl-C or SIGTERM checkpoints and stops
    (exit 130 or 143), --resume continues.
    """
    given = given_settings({
        "steps": steps, "batch": batch, "patch": patch, "vgg_weights": vgg_weights, "optimizer": optimizer,
        "lr": lr, "weight_decay": weight_decay, "schedule": schedule, "decay_every": decay_every,
        "milestones": milestones, "gamma": gamma, "warmup": warmup, "min_lr": min_lr, "grad_clip": grad_clip,
        "ema": ema, "precision": precision, "device": device, "degradation": degradation, "augment": augment,
        "val_set": val_set, "val_data": val_data, "val_every": val_every, "patience": patience,
        "checkpoint_every": checkpoint_every, "checkpoint_minutes": checkpoint_minutes, "log_every": log_every,
        "workers": workers, "seed": seed, "cache_dir": cache_dir, "export_width": export_width, "negatives": negatives,
        "lambda_con": lambda_con, "lambda_teacher": lambda_teacher, "teacher": teacher,
    })

    def body() -> int:
        from sr_cli.train.distill import (
            DistillTrainer,  # here, not at the top: --help never loads torch
        )
        from sr_cli.train.loop import resume_config

        if given.get("teacher") is not None:
            given["teacher"] = str(catalogue_file(given["teacher"]))
        if no_distill and mode not in (None, "none"):
            raise UsageError(f"--no-distill is --mode none: it cannot go with --mode {mode}")
        chosen = "none" if no_distill else mode
        if chosen is not None:
            given["mode"] = chosen
        if widths is not None:
            if (chosen or _D.mode) != "csd":
                raise UsageError(f"--widths is for --mode csd; --mode {chosen} trains --export-width alone")
            given["widths"] = _widths(widths)
        architecture = {k: v for k, v in (("n_blocks", blocks), ("n_feats", feats)) if v is not None}
        if resume is not None:
            if data or architecture:
                raise UsageError("--resume uses the run's own --data, --blocks and --feats; do not pass them")
            config = resume_config(resume, given, scale=scale, config_cls=DistillConfig)
            run_dir = resume
        else:
            if scale is None or not data:
                raise UsageError("--scale and --data are needed (or --resume RUN_DIR)")
            config = DistillConfig(model="csd", scale=scale, data=[str(d) for d in data],
                                   model_options=architecture, **given)
            run_dir = out or Path("runs") / f"csd_{config.mode}_x{scale}_{time.strftime('%Y%m%d-%H%M%S')}"
        unused = [f"--{k.replace('_', '-')}" for k, modes in UNUSED_OUTSIDE.items()
                  if k in given and config.mode not in modes]

        def build(reporter: Reporter) -> DistillTrainer:
            trainer = DistillTrainer(config, run_dir, reporter, resume=resume is not None)
            if unused:  # said once the run is known to start: a refused run keeps its one error line
                verb = "has" if len(unused) == 1 else "have"
                trainer.reporter.warn(f"{' and '.join(unused)} {verb} no effect in --mode {config.mode}")
            return trainer

        def extra(trainer: Trainer) -> dict[str, Any]:
            val = getattr(trainer, "teacher_val", None)
            return {"mode": trainer.config.mode, "export_width": trainer.config.export_width,
                    "teacher_psnr": val["psnr"] if val else None}

        return run_trainer(build, config.log_every, json_out, "distill", extra)

    code = run_command(body)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``distill`` to the app."""
    app.command("distill")(distill)
