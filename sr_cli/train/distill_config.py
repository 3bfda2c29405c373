"""The settings of a ``srtool distill`` run (torch-free: the command line reads its defaults for ``--help``).

See ``sr_cli/train/distill.py`` for what each mode trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from sr_cli.errors import UsageError
from sr_cli.train.config import TrainConfig, setting

MODES = ("csd", "teacher-first", "output-kd", "none")
TEACHER_MODES = ("teacher-first", "output-kd")
N_BLOCKS, N_FEATS = 32, 256  # the paper's network


def parse_widths(text: str) -> list[float]:
    """``0.25,1.0`` → [0.25, 1.0]; a UsageError for anything else."""
    try:
        return [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise UsageError(f"--widths takes fractions like 0.25,1.0, got {text!r}") from None


@dataclass
class DistillConfig(TrainConfig):
    """A distillation run: the training settings plus the teacher, widths and loss weights (see the module
    notes). ``model_options`` holds ``n_blocks`` and ``n_feats`` of the full-width network."""

    COMMAND: ClassVar[str] = "distill"

    scale: int = setting(help="Upscaling factor: 2, 3 or 4.", flags=("--scale", "-s"))
    mode: str = setting(
        "csd", f"{' | '.join(MODES)}. csd: one shared-weight network trained at every --widths each step (L1 of each "
        "width + lambda-con x contrastive of each student against the largest width); teacher-first: a frozen "
        "--teacher, the student initialised with its channel slice, same loss; output-kd: a fresh student, L1 + "
        "lambda-teacher x L1 to the teacher's output; none: the --export-width trained alone with L1 (default "
        "{default}).")
    widths: list[float] = setting([0.25, 1.0], "csd mode: the widths trained together; the largest is the teacher, "
                                  "each other one a student of it (default {default}).", cli=str, parse=parse_widths)
    export_width: float | None = setting(None, "The student width that best/last.safetensors hold and validation "
                                         "scores (default: the smallest width).")
    negatives: int = setting(10, "Negatives K of the contrastive loss: K LR patches of the batch, bicubic-upsampled; "
                             "0 = no contrastive term (default {default}).")
    lambda_con: float = setting(200.0, "Weight of the contrastive term in the official code's units (L1 on 0-255 "
                                "pixels; added as weight/255 to srtool's 0-1 L1; default {default:g}).")
    lambda_teacher: float = setting(1.0, "csd: weight of the teacher's L1; output-kd: of the L1 to the teacher "
                                    "(default {default:g}).")
    teacher: str | None = setting(None, "Trained full-width csd weights (e.g. a csd run's teacher_best.safetensors, "
                                  "or best.safetensors of a run with --no-distill --export-width 1); teacher-first "
                                  "and output-kd.", cli=Path)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model != "csd":
            raise UsageError(f"distill trains the csd network, not {self.model}")
        if self.mode not in MODES:
            raise UsageError(f"unknown --mode {self.mode!r}: choose one of {', '.join(MODES)}")
        self.widths = sorted({float(w) for w in self.widths})
        for name, values in (("--widths", self.widths), ("--export-width", [self.export_width])):
            bad = [w for w in values if w is not None and not 0 < w <= 1]
            if bad or not values:
                raise UsageError(f"{name} must be in (0, 1], got {bad[0] if bad else 'nothing'}")
        if self.export_width is None:
            self.export_width = self.widths[0]
        self.export_width = float(self.export_width)
        if self.mode == "csd" and len(self.widths) < 2:
            raise UsageError("--mode csd needs at least two --widths (the students and the teacher), e.g. 0.25,1.0")
        if self.mode == "csd" and self.export_width not in self.widths:
            raise UsageError(f"--export-width {self.export_width:g} is not one of --widths "
                             f"{','.join(f'{w:g}' for w in self.widths)}")
        if self.mode in TEACHER_MODES and not self.teacher:
            raise UsageError(f"--mode {self.mode} needs --teacher WEIGHTS (a trained full-width csd network)")
        if self.mode not in TEACHER_MODES and self.teacher:
            raise UsageError(f"--teacher is for --mode {' or '.join(TEACHER_MODES)}, not {self.mode}")
        if self.negatives < 0 or self.lambda_con < 0 or self.lambda_teacher < 0:
            raise UsageError("--negatives, --lambda-con and --lambda-teacher cannot be negative")
        if self.uses_contrast and self.negatives > self.batch:
            raise UsageError(f"--negatives {self.negatives} needs --batch {self.negatives} or more (the negatives "
                             f"are LR patches of the batch), got --batch {self.batch}")

    @property
    def uses_contrast(self) -> bool:
        """Whether the loss has the contrastive term (K = 0 or λ_con = 0 switch it off)."""
        return self.mode in ("csd", "teacher-first") and self.negatives > 0 and self.lambda_con > 0

    @property
    def student_widths(self) -> list[float]:
        """The widths trained as students: every width but the largest (csd), else the export width."""
        return self.widths[:-1] if self.mode == "csd" else [self.export_width]

    def command_head(self) -> tuple[list[str], set[str]]:
        """``srtool distill`` names no model; the network size, mode and teacher come first."""
        opts = self.model_options
        data = [a for d in self.data for a in ("--data", d)]
        return ["srtool", "distill", *data, "--scale", str(self.scale), "--mode", self.mode,
                *(["--teacher", self.teacher] if self.teacher else []),
                "--blocks", str(opts.get("n_blocks", N_BLOCKS)), "--feats", str(opts.get("n_feats", N_FEATS))], \
            {"model", "scale", "data", "mode", "teacher", "model_options"}

    def defaults(self) -> DistillConfig:
        """This config with every optional setting at its default."""
        return DistillConfig(model="csd", scale=self.scale, data=self.data)
