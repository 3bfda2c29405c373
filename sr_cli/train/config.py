"""The full configuration of a training run: what ``config.json`` in a run folder holds. A field made with
:func:`setting` is also a command-line option of ``srtool train`` (and ``distill``): its flags and help are written
here, once (sr_cli/cli/config_options.py makes the options)."""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, get_origin

from sr_cli.choices import ALL_DEGRADATIONS
from sr_cli.errors import UsageError

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("step", "cosine", "constant")
# What --resume may change; everything else comes from the run's own config.
RESUME_OVERRIDES = frozenset({"steps", "device", "precision", "workers", "val_every", "patience",
                              "checkpoint_every", "checkpoint_minutes", "log_every", "tensorboard"})


def setting(default: Any = dataclasses.MISSING, help: str = "", *, flags: tuple[str, ...] = (), cli: Any = None,
            parse: Callable[[Any], Any] | None = None) -> Any:
    """A config field that is a command-line option too: ``help`` (``{default}`` in it shows the default),
    ``flags`` (default ``--<name>``), ``cli`` the option's type where it is not the field's (``list[...]``: a
    repeated option), ``parse`` what turns the option's value into the setting."""
    meta = {"help": help, "flags": flags, "cli": cli, "parse": parse, "repeat": get_origin(cli) is list}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def parse_model_options(items: list[str]) -> dict[str, Any]:
    """``["n_blocks=32", "res_scale=0.1"]`` → {"n_blocks": 32, "res_scale": 0.1}: each value read as JSON (numbers,
    true/false), else kept as text."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--model-option takes KEY=VALUE, got {item!r}")
        try:
            options[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            options[key.strip()] = text
    return options


def parse_ints(text: str) -> list[int]:
    """``50000,100000`` → [50000, 100000]; a UsageError for anything else."""
    try:
        return [int(m) for m in text.split(",") if m.strip()]
    except ValueError:
        raise UsageError(f"--milestones takes steps like 50000,100000, got {text!r}") from None


@dataclass
class TrainConfig:
    """Every setting of a run (patch sizes in LR pixels; the HR patch is ``patch * scale``)."""

    COMMAND: ClassVar[str] = "train"  # the srtool command whose runs these are (``command`` in config.json)
    model: str = setting(help="Model to train (see `srtool models`).", flags=("--model", "-m"))
    scale: int = setting(help="Upscaling factor: 2, 3 or 4 (mdsr trains all three in turn and needs none).",
                         flags=("--scale", "-s"))
    data: list[str] = setting(help="Folder of HR training images (searched recursively); repeat for more.",
                              flags=("--data", "-d"), cli=list[Path])
    data_lr: list[str] = setting([], "A folder of LR images paired with each --data folder by file name (DIV2K's LR "
                                 "folders: 0001x4.png for 0001.png).", cli=list[Path])
    model_options: dict[str, Any] = setting({}, "A network option of the model as KEY=VALUE, e.g. num_conv=16 for "
                                            "compact (the model's constructor arguments); repeat for more.",
                                            flags=("--model-option",), cli=list[str], parse=parse_model_options)
    steps: int = setting(100_000, "Training steps. (default {default})")
    batch: int = setting(16, "Patches per step (per process). (default {default})")
    patch: int = setting(48, "LR patch size in pixels (HR = patch x scale). (default {default})")
    loss: str = setting("l1", "Loss expression, e.g. 1*l1+0.006*perceptual+0.001*gan; terms: l1, mse, charbonnier, "
                        "perceptual, gan. (default {default})")
    gan_type: str = setting("ragan", "vanilla (SRGAN) or ragan (ESRGAN). (default {default})")
    perceptual_layer: str = setting("conv5_4", "VGG19 layer of the perceptual loss (conv5_4 = ESRGAN, relu5_4 = "
                                    "SRGAN). (default {default})")
    vgg_weights: str | None = setting(None, "VGG19 weights file (default: downloaded once into the user cache).",
                                      cli=Path)
    optimizer: str = setting("adam", "adam or adamw. (default {default})")
    lr: float = setting(1e-4, "Learning rate. (default {default})")
    d_lr: float | None = setting(None, "Discriminator learning rate (default --lr).")
    weight_decay: float = setting(0.0, "Weight decay. (default {default})")
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = setting("step", "step (x gamma every --decay-every steps or at --milestones), cosine or "
                            "constant. (default {default})")
    decay_every: int = setting(200_000, "Step schedule period. (default {default})")
    milestones: list[int] = setting([], "Step schedule milestones, e.g. 50000,100000.", cli=str, parse=parse_ints)
    gamma: float = setting(0.5, "Step schedule factor. (default {default})")
    warmup: int = setting(0, "Linear warmup steps. (default {default})")
    min_lr: float = setting(0.0, "Cosine schedule floor. (default {default})")
    grad_clip: float = setting(0.0, "Clip the gradient norm to this; 0 = off. (default {default})")
    ema: float = setting(0.0, "EMA decay of the weights (e.g. 0.999); 0 = off. The EMA is what is validated and "
                         "saved. (default {default})")
    precision: str = setting("auto", "auto|fp32|bf16|fp16: autocast dtype; auto = fp16 with a GradScaler on CUDA, "
                             "bf16 on CPUs with native bf16, else fp32.")
    device: str = setting("auto", "auto|cpu|cuda|cuda:N|mps.")
    degradation: str = setting("bicubic", "How LR patches are made: bicubic (MATLAB), blur-decimate, bilinear, "
                               "nearest, or realesrgan (Real-ESRGAN's random second-order blur, resize, noise and "
                               "JPEG, a new one for every patch; validation pictures get one each, seeded). (default {default})")
    augment: bool = setting(True, "Random flips and 90-degree rotations (default on).",
                            flags=("--augment/--no-augment",))
    val_set: str = setting("set5", "Validation data set. (default {default})")
    val_data: str | None = setting(None, "Folder of HR validation images (instead of --val-set).", cli=Path)
    val_every: int = setting(1000, "Validate every N steps. (default {default})")
    patience: int = setting(0, "Stop after N validations without a better PSNR; 0 = never. (default {default})")
    checkpoint_every: int = setting(1000, "Checkpoint every N steps (and at every validation). (default {default})")
    checkpoint_minutes: float = setting(5.0, "Also checkpoint when this many minutes have passed since the last "
                                        "checkpoint. (default {default})")
    log_every: int = setting(100, "Metrics CSV row every N steps. (default {default})")
    workers: int = setting(2, "DataLoader worker processes. (default {default})")
    seed: int = setting(0, "Random seed (data, init). (default {default})")
    cache_dir: str | None = setting(None, "Keep decoded images and their LR versions here as memory-mapped .npy "
                                    "files (for data sets larger than memory; resumes and later runs reuse them).",
                                    cli=Path)
    init: str | None = setting(None, "Start from these weights (a file or a catalogue name, see srtool models): "
                               "copies every tensor whose name and shape match (a file of the same model also "
                               "brings its network options, e.g. BasicSR's MSRResNet).", cli=Path)
    tensorboard: bool = setting(False, "Also log every metrics row to TensorBoard event files in RUN/tensorboard/ "
                                '(pip install "srtool\\[tensorboard]").', flags=("--tensorboard/--no-tensorboard",))

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
        if min(self.workers, self.patience, self.warmup, self.grad_clip, self.seed, self.weight_decay) < 0:
            raise UsageError("--workers, --patience, --warmup, --grad-clip, --seed and --weight-decay cannot be "
                             "negative")
        if int(self.decay_every) < 1:
            raise UsageError(f"--decay-every must be at least 1, got {self.decay_every}")
        if self.d_lr is not None and not float(self.d_lr) > 0:
            raise UsageError(f"--d-lr must be positive, got {self.d_lr}")
        if self.degradation not in ALL_DEGRADATIONS:
            raise UsageError(f"unknown --degradation {self.degradation!r}: choose one of "
                             f"{', '.join(ALL_DEGRADATIONS)}")
        if self.data_lr and len(self.data_lr) != len(self.data):
            raise UsageError(f"--data-lr pairs one LR folder with each --data folder: got {len(self.data_lr)} "
                             f"for {len(self.data)}")
        if self.data_lr and self.degradation != TrainConfig.degradation:
            raise UsageError(f"--data-lr gives the LR images: --degradation {self.degradation} cannot apply")

    def command_head(self) -> tuple[list[str], set[str]]:
        """The first arguments of :meth:`command_line` and the settings they already give."""
        data = [a for d in self.data for a in ("--data", d)]
        return ["srtool", self.COMMAND, "--model", self.model, "--scale", str(self.scale), *data], \
            {"model", "scale", "data"}

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
            flag = (f.metadata.get("flags") or ("--" + f.name.replace("_", "-"),))[0].split("/")[0]  # its long flag
            if isinstance(value, dict):
                args += [a for k, v in value.items() for a in (flag, f"{k}={json.dumps(v)}")]
            elif isinstance(value, bool):
                args.append(flag if value else f"--no-{flag[2:]}")
            elif f.metadata.get("repeat"):
                args += [a for v in value for a in (flag, str(v))]
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
        doc = {k: v for k, v in doc.items() if k != "command"}  # checked by the caller (state.resume_config)
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
