"""``srtool distill``: CSD contrastive self-distillation and its baselines (see sr_cli/train/distill.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sr_cli.cli.common import catalogue_file, run_command
from sr_cli.cli.config_options import given_settings, with_options
from sr_cli.cli.train import JsonOpt, ResumeOpt, run_trainer
from sr_cli.errors import UsageError
from sr_cli.train.distill_config import DistillConfig
from sr_cli.train.reporter import Reporter

if TYPE_CHECKING:
    from sr_cli.train.distill import DistillTrainer

# TrainConfig settings that distill does not take: it trains csd, with its own loss.
NOT_DISTILL = ("model", "model_options", "init", "loss", "gan_type", "perceptual_layer", "d_lr")
# Settings that only some modes read: giving one to another mode gets a warning rather than silence.
UNUSED_OUTSIDE = {"negatives": ("csd", "teacher-first"), "lambda_con": ("csd", "teacher-first"),
                  "lambda_teacher": ("csd", "output-kd")}


@with_options(DistillConfig, omit=NOT_DISTILL)
def distill(
    no_distill: Annotated[bool, typer.Option("--no-distill", help="Same as --mode none: the baseline.")] = False,
    blocks: Annotated[int | None, typer.Option(help="Residual blocks (default 32, or the --teacher's).",
                                               show_default=False)] = None,
    feats: Annotated[int | None, typer.Option(help="Features of the full width (default 256, or the --teacher's).",
                                              show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder. Default: runs/csd_<mode>_x<scale>_"
                                             "<time>.", show_default=False)] = None,
    resume: ResumeOpt = None,
    json_out: JsonOpt = False,
    **settings: Any,
) -> None:
    """Distill the CSD width-switchable EDSR (Wang et al. 2021) on folders of HR images.

    best.safetensors and last.safetensors hold the student at --export-width as a standalone sliced network
    (`srtool upscale --model csd --width W --weights RUN/best.safetensors`); validation (val_psnr) is the
    student's, teacher_val_psnr the teacher's. In csd mode teacher_best/teacher_last.safetensors hold the whole
    shared network at the same steps, which runs at any --width. Ctrl-C or SIGTERM checkpoints and stops
    (exit 130 or 143), --resume continues.
    """
    def body() -> int:
        from sr_cli.train.distill import (
            DistillTrainer,  # here, not at the top: --help never loads torch
        )
        from sr_cli.train.state import resume_config

        mode, widths = settings["mode"], settings.pop("widths")  # --widths read once checked against --mode
        given = given_settings(DistillConfig, settings)
        scale, data = given.pop("scale", None), given.pop("data", None)
        if given.get("teacher") is not None:
            given["teacher"] = str(catalogue_file(given["teacher"]))
        if no_distill and mode not in (None, "none"):
            raise UsageError(f"--no-distill is --mode none: it cannot go with --mode {mode}")
        chosen = "none" if no_distill else mode
        if chosen is not None:
            given["mode"] = chosen
        if widths is not None:
            if (chosen or DistillConfig.mode) != "csd":
                raise UsageError(f"--widths is for --mode csd; --mode {chosen} trains --export-width alone")
            given.update(given_settings(DistillConfig, {"widths": widths}))
        architecture = {k: v for k, v in (("n_blocks", blocks), ("n_feats", feats)) if v is not None}
        if resume is not None:
            if data or architecture:
                raise UsageError("--resume uses the run's own --data, --blocks and --feats; do not pass them")
            config = resume_config(resume, given, scale=scale, config_cls=DistillConfig)
            run_dir = resume
        else:
            if scale is None or not data:
                raise UsageError("--scale and --data are needed (or --resume RUN_DIR)")
            config = DistillConfig(model="csd", scale=scale, data=data, model_options=architecture, **given)
            run_dir = out or Path("runs") / f"csd_{config.mode}_x{scale}_{time.strftime('%Y%m%d-%H%M%S')}"
        unused = [f"--{k.replace('_', '-')}" for k, modes in UNUSED_OUTSIDE.items()
                  if k in given and config.mode not in modes]

        def build(reporter: Reporter) -> DistillTrainer:
            trainer = DistillTrainer(config, run_dir, reporter, resume=resume is not None)
            if unused:  # said once the run is known to start: a refused run keeps its one error line
                verb = "has" if len(unused) == 1 else "have"
                trainer.reporter.warn(f"{' and '.join(unused)} {verb} no effect in --mode {config.mode}")
            return trainer

        def extra(trainer: DistillTrainer) -> dict[str, Any]:
            val = trainer.objective.teacher_val
            return {"mode": trainer.config.mode, "export_width": trainer.config.export_width,
                    "teacher_psnr": val["psnr"] if val else None}

        return run_trainer(build, config.log_every, json_out, "distill", extra)

    code = run_command(body)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``distill`` to the app."""
    app.command("distill")(distill)
