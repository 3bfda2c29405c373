"""The full configuration of a training run: what ``config.json`` in a run folder holds."""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sr_cli.errors import UsageError

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("step", "cosine", "constant")
# What --resume may change; everything else comes from the run's own config.
RESUME_OVERRIDES = frozenset({"steps", "device", "precision", "workers", "val_every", "patience",
                              "checkpoint_every", "checkpoint_minutes", "log_every"})


@dataclass
class TrainConfig:
    """Every setting of a run (patch sizes in LR pixels; the HR patch is ``patch * scale``)."""

    COMMAND: ClassVar[str] = "train"  # the srtool command whose runs these are (``command`` in config.json)
    model: str
    scale: int
    data: list[str]
    model_options: dict[str, Any] = field(default_factory=dict)
    steps: int = 100_000
    batch: int = 16
    patch: int = 48
    loss: str = "l1"
    gan_type: str = "ragan"
    perceptual_layer: str = "conv5_4"
    vgg_weights: str | None = None
    optimizer: str = "adam"
    lr: float = 1e-4
    d_lr: float | None = None  # discriminator learning rate (default: lr)
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "step"
    decay_every: int = 200_000  # step schedule: multiply by gamma every N steps ...
    milestones: list[int] = field(default_factory=list)  # ... or at these steps
    gamma: float = 0.5
    warmup: int = 0
    min_lr: float = 0.0  # cosine floor
    grad_clip: float = 0.0  # max global gradient norm; 0 = off
    ema: float = 0.0  # EMA decay (e.g. 0.999); 0 = off
    precision: str = "auto"
    device: str = "auto"
    degradation: str = "bicubic"
    augment: bool = True
    val_set: str = "set5"
    val_data: str | None = None  # a folder of HR images instead of val_set
    val_every: int = 1000
    patience: int = 0  # stop after this many validations without a new best; 0 = never
    checkpoint_every: int = 1000
    checkpoint_minutes: float = 5.0  # also checkpoint once this long has passed since the last checkpoint
    log_every: int = 100
    workers: int = 2
    seed: int = 0
    cache_dir: str | None = None
    init: str | None = None

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # JSON gives lists
        for name in ("steps", "batch", "patch", "val_every", "checkpoint_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "gamma", "checkpoint_minutes"):
            if not float(getattr(self, name)) > 0:
                raise UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown --optimizer {self.optimizer!r}: choose {' or '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise UsageError(f"unknown --schedule {self.schedule!r}: choose one of {', '.join(SCHEDULES)}")
        if not 0 <= self.ema < 1:
            raise UsageError(f"--ema must be in [0, 1), got {self.ema}")
        if self.workers < 0 or self.patience < 0 or self.warmup < 0 or self.grad_clip < 0:
            raise UsageError("--workers, --patience, --warmup and --grad-clip cannot be negative")

    def command_head(self) -> tuple[list[str], set[str]]:
        """The first arguments of :meth:`command_line` and the settings they already give."""
        data = [a for d in self.data for a in ("--data", d)]
        return ["srtool", self.COMMAND, "--model", self.model, "--scale", str(self.scale), *data], \
            {"model", "scale", "data", "model_options"}

    def defaults(self) -> TrainConfig:
        """This command's config with every optional setting at its default."""
        return type(self)(model=self.model, scale=self.scale, data=self.data)

    def command_line(self) -> str:
        """The ``srtool`` command that makes this run (settings at their defaults left out)."""
        args, written = self.command_head()
        defaults = self.defaults()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in written or value == getattr(defaults, f.name):
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                args.append(flag if value else f"--no-{f.name.replace('_', '-')}")
            elif isinstance(value, (list, tuple)):
                args += [flag, ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)]
            elif value is not None:
                args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
        return shlex.join(args)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values."""
        out = {"command": self.COMMAND, **dataclasses.asdict(self)}
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict` output (unknown keys are an error: the file is from another version)."""
        doc = {k: v for k, v in doc.items() if k != "command"}  # checked by the caller (loop.resume_config)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(doc) - names)
        if unknown:
            raise UsageError(f"run config has unknown settings: {', '.join(unknown)}")
        return cls(**doc)

    def resumed(self, overrides: dict[str, Any]) -> TrainConfig:
        """This config with the resume-time ``overrides`` applied: :data:`RESUME_OVERRIDES` keys, or any other
        setting repeated with the run's own value (a script may pass its usual options)."""
        own = self.to_dict()
        bad = sorted(k for k, v in overrides.items() if k not in RESUME_OVERRIDES and own.get(k) != v)
        if bad:
            raise UsageError(f"--resume continues a run with its own settings; cannot change {', '.join(bad)}")
        return dataclasses.replace(self, **overrides)
