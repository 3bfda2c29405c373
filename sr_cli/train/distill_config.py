"""The settings of a ``srtool distill`` run (torch-free: the command line reads its defaults for ``--help``).

See ``sr_cli/train/distill.py`` for what each mode trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from sr_cli.errors import UsageError
from sr_cli.train.config import TrainConfig

MODES = ("csd", "teacher-first", "output-kd", "none")
TEACHER_MODES = ("teacher-first", "output-kd")
N_BLOCKS, N_FEATS = 32, 256  # the paper's network


@dataclass
class DistillConfig(TrainConfig):
    """A distillation run: the training settings plus the teacher, widths and loss weights (see the module
    notes). ``model_options`` holds ``n_blocks`` and ``n_feats`` of the full-width network."""

    COMMAND: ClassVar[str] = "distill"

    mode: str = "csd"
    widths: list[float] = field(default_factory=lambda: [0.25, 1.0])
    export_width: float | None = None  # default: the smallest of widths
    negatives: int = 10
    lambda_con: float = 200.0
    lambda_teacher: float = 1.0
    teacher: str | None = None

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
