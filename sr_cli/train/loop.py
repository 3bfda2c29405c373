"""The training loop: data → model → loss → optimiser, with AMP, EMA, DDP, validation, early stopping and
resumable checkpoints.

:class:`Trainer` is also the base of ``distill``: a subclass overrides :meth:`Trainer.compute_loss` (extra model
outputs, a teacher, extra loss terms) and :meth:`Trainer.term_names` (the CSV columns and plot curves of those
terms), and :meth:`Trainer.extra_state` / :meth:`Trainer.load_extra_state` for anything else it must checkpoint;
:meth:`Trainer.build_model`, :meth:`Trainer.export_model`, :meth:`Trainer.weights_metadata`,
:meth:`Trainer.log_columns` and :meth:`Trainer.validation_row` let it choose the trained module, what is
validated and shipped, and extra CSV columns; data, optimisation, checkpoints, validation and the run folder stay
the same.

A multi-scale model (MDSR) trains every scale of its registry entry in turn, one scale per step (each step's
patches all of one scale), is validated at every scale, and keeps the weights of the best mean PSNR.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in DistributedDataParallel (NCCL on CUDA, gloo
otherwise), each rank draws its own disjoint samples, and only rank 0 validates and writes. Ctrl-C (SIGINT) or
SIGTERM finishes the current step, writes a checkpoint and returns ``status == "interrupted"``; a second one
aborts.

A run can always be resumed: a new run folder gets its step-0 checkpoint before its config.json, and the loop
checkpoints every ``checkpoint_every`` steps, every ``checkpoint_minutes`` and at every validation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from sr_cli import signals
from sr_cli.atomic import remove_stale
from sr_cli.colour import rgb_to_y
from sr_cli.device import (
    precision_name,
    select_device,
    select_precision,
    use_channels_last,
)
from sr_cli.errors import SrtoolError, UsageError, WeightsError
from sr_cli.registry import MODELS, ModelSpec, get_spec
from sr_cli.train import runs
from sr_cli.train.config import TrainConfig
from sr_cli.train.data import (
    PatchPairs,
    ScaleCycle,
    StepBatches,
    WorkerInit,
    cache_key,
    degrade_images,
    find_images,
    load_images,
)
from sr_cli.train.losses import Adversarial, Criterion, Perceptual, parse_loss
from sr_cli.train.optim import EMA, build_optimizer, lr_factor
from sr_cli.train.reporter import Reporter
from sr_cli.train.validate import ValImage, evaluate, load_val_set
from sr_cli.train.vgg import load_vgg
from sr_cli.weights import load_state, save_weights

MAX_NAN_IN_A_ROW = 20
PLOT_INTERVAL_S = 60.0


@dataclass
class TrainResult:
    """How a run ended: ``completed``, ``early-stopped`` or ``interrupted`` (by ``stop_signal``)."""

    status: str
    step: int
    run_dir: Path | None
    best_psnr: float | None
    last_psnr: float | None
    stop_signal: int | None = None


@dataclass
class LossOutput:
    """What :meth:`Trainer.compute_loss` returns: the total to minimise, the named terms to log (unweighted
    values, one per :meth:`Trainer.term_names`), and the SR batch (the discriminator's fake input)."""

    total: Tensor
    terms: dict[str, Tensor]
    sr: Tensor


def _distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def leave_process_group() -> None:
    """End this process's part in a torchrun world, if it joined one (a gloo group left to the interpreter's exit
    can abort the process with ``terminate called without an active exception``)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def copy_matching(model: nn.Module, state: dict[str, Tensor]) -> tuple[int, list[str]]:
    """Copy every tensor of ``state`` whose name and shape match ``model``'s; returns (copied, not copied)."""
    own = model.state_dict()
    fits = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    model.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in fits.items()}})
    skipped = [f"{k} {tuple(v.shape)}" for k, v in own.items() if k not in fits]
    return len(fits), skipped


INIT_SHAPE_OPTIONS = ("variant", "n_blocks", "n_feats", "num_block", "num_feat", "num_grow_ch", "num_conv", "unshuffle")


def _init_shape(meta: dict[str, Any], model: str, scale: int) -> dict[str, Any]:
    """The network-shape options of an ``--init`` file holding ``model`` itself (none for another model, and
    never csd's width or slicing, which the run sets; a pixel-unshuffle input only at the file's own scale)."""
    if meta.get("architecture") != model:
        return {}
    same_scale = meta.get("scale") in (None, scale)
    return {k: v for k, v in (meta.get("options") or {}).items()
            if k in INIT_SHAPE_OPTIONS and (same_scale or k != "unshuffle")}


def resume_config(run_dir: Path, overrides: dict[str, Any], model: str | None = None,
                  scale: int | None = None, config_cls: type[TrainConfig] = TrainConfig) -> TrainConfig:
    """The config of the run in ``run_dir`` with ``overrides``; a ``model``/``scale`` other than the run's, or a
    run of another command than ``config_cls``'s, is a UsageError."""
    doc = runs.read_config(run_dir)
    command = doc.get("command", TrainConfig.COMMAND)
    if command != config_cls.COMMAND:
        raise UsageError(f"{run_dir} is a `srtool {command}` run: continue it with `srtool {command} --resume "
                         f"{run_dir}`")
    config = config_cls.from_dict(doc)
    if (model is not None and get_spec(model).name != config.model) or (scale is not None and scale != config.scale):
        raise UsageError(f"{run_dir} is a {config.model} x{config.scale} run: it cannot be resumed as "
                         f"{model or config.model} x{scale or config.scale}")
    return config.resumed(overrides)


class Trainer:
    """One training run (see the module notes). ``resume``: a run folder to continue."""

    def __init__(self, config: TrainConfig, run_dir: Path | None, reporter: Reporter | None = None, *,
                 resume: bool = False) -> None:
        self.rank, self.world, local_rank = _distributed()
        self.main = self.rank == 0
        self.reporter = reporter if (reporter is not None and self.main) else Reporter()
        self.spec: ModelSpec = get_spec(config.model)
        self.spec.check_scale(config.scale)
        if not self.spec.learned:
            raise UsageError(f"{self.spec.name} has no weights to train: choose a learned model")
        init_state, init_meta = load_state(config.init) if config.init and not resume else (None, {})
        shape = _init_shape(init_meta, self.spec.name, config.scale)
        if shape:  # the --init file's network shape (a BasicSR MSRResNet fine-tunes as one); options given win
            config = dataclasses.replace(config, model_options={**shape, **config.model_options})
        self.config = config
        self.terms = parse_loss(config.loss)
        self.device = self._setup_device(local_rank)
        self.amp_dtype = select_precision(config.precision, self.device)  # fp16 trains with a GradScaler
        self.channels_last = use_channels_last(self.device)
        self.scale = config.scale
        self.scales: tuple[int, ...] = self.spec.scales if self.spec.multi_scale else (config.scale,)
        checkpoint = self._read_checkpoint(run_dir) if resume else None
        self.run_dir = run_dir if self.main else None
        if self.run_dir is not None and not resume:
            runs.check_new(self.run_dir)
        elif self.run_dir is not None:
            remove_stale(self.run_dir)  # a checkpoint half-written when the run was killed
        self.images = self._load_data()
        if self.spec.multi_scale:
            self.reporter.note(f"{self.spec.name} is one model for {', '.join(f'x{s}' for s in self.scales)}: "
                               "each step trains one scale, in turn")
        self.val_sets: dict[int, list[ValImage]] = {
            s: load_val_set(config.val_set, config.val_data, s, config.degradation)
            for s in self.scales
        } if self.main else {}
        self.val_images = self.val_sets.get(config.scale, [])
        torch.manual_seed(config.seed)
        self.model = self.build_model()
        if init_state is not None:  # before the run folder: a file that fits nothing leaves none behind
            self._init_from(config.init, init_state, shape)
        self.criterion = self._build_criterion()
        self.optimizer = build_optimizer(self.model.parameters(), config, config.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(config))
        self.adversarial = self.criterion.adversarial
        if self.adversarial is not None:
            self.optimizer_d = build_optimizer(self.adversarial.discriminator.parameters(), config,
                                               config.d_lr or config.lr)
            self.scheduler_d = torch.optim.lr_scheduler.LambdaLR(self.optimizer_d, lr_factor(config))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.ema = EMA(self.model, config.ema) if config.ema > 0 else None
        self.step = 0
        self.best: dict[str, float] | None = None
        self.last_val: dict[str, float] | None = None
        self.bad_validations = 0
        self.nan_skips = 0
        self.log_sums: dict[str, float] = {}  # the loss sums and count of the metrics row being gathered
        self.log_count = 0
        self.stop_requested = False
        self.stop_signal: int = signal.SIGINT  # the signal that set stop_requested
        self._plotted, self._warned_plots = time.monotonic(), False
        self._checkpointed = time.monotonic()
        if checkpoint is not None:
            self._restore(checkpoint)
        self.net = self._wrap(self.model)
        self.critic = self._wrap(self.adversarial.discriminator) if self.adversarial is not None else None
        self.log: runs.MetricsLog | None = None
        if self.run_dir is not None:  # every input checked: now the run folder, resumable from the start
            if resume:
                runs.write_config(self.run_dir, config.to_dict())
            else:
                runs.create_run(self.run_dir, config.to_dict(), self._save_state)
            self.log = runs.MetricsLog(self.run_dir, self.log_columns(), self.step if resume else None)

    # ------------------------------------------------------------------------------------------ building

    def _setup_device(self, local_rank: int) -> torch.device:
        device = select_device(self.config.device)
        if self.world > 1:
            if device.type == "cuda":
                device = torch.device("cuda", local_rank)
                torch.cuda.set_device(device)
            if not dist.is_initialized():
                dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return device

    def _load_data(self) -> list[np.ndarray]:
        config = self.config
        paths = find_images(config.data)
        loaded = load_images(paths, config.patch * max(self.scales), max(self.scales),
                             cache_dir=Path(config.cache_dir) if config.cache_dir else None)
        if loaded.skipped:
            self.reporter.warn(f"skipped {loaded.skipped} of {len(paths)} training images smaller than the "
                               f"{config.patch * max(self.scales)}-pixel HR patch")
        self.reporter.note(f"training on {len(loaded.images)} images from {', '.join(map(str, config.data))}")
        self.image_paths = loaded.paths
        return loaded.images

    def build_model(self) -> nn.Module:
        """The module the optimiser trains (called once, before the run folder is made: check inputs here)."""
        model = self.spec.build(self.scale, **self.config.model_options).to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def _build_criterion(self) -> Criterion:
        config = self.config
        names = {t.name for t in self.terms}
        perceptual = None
        if "perceptual" in names:
            features = load_vgg([config.perceptual_layer], config.vgg_weights, quiet=not self.main)
            perceptual = Perceptual(features, config.perceptual_layer)
        adversarial = None
        if "gan" in names:
            if self.spec.discriminator is None:
                have = [name for name, spec in MODELS.items() if spec.discriminator is not None]
                raise UsageError(f"{self.spec.name} has no discriminator for the gan loss: use {' or '.join(have)}")
            adversarial = Adversarial(self._checked_discriminator(), config.gan_type)
        return Criterion(self.terms, perceptual, adversarial).to(self.device)

    def _checked_discriminator(self) -> nn.Module:
        """The registry's discriminator, checked to accept this run's HR patches."""
        disc = self.spec.discriminator()
        hr = self.config.patch * self.scale
        try:
            with torch.no_grad():
                disc.eval()(torch.zeros(2, 3, hr, hr))
        except (RuntimeError, ValueError) as err:
            raise UsageError(f"the {self.spec.name} discriminator cannot take {hr}x{hr} HR patches "
                             f"({str(err).splitlines()[0]}): choose another --patch") from None
        return disc.train().to(self.device)

    def _wrap(self, module: nn.Module) -> nn.Module:
        if self.world == 1:
            return module
        return DistributedDataParallel(module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                       find_unused_parameters=self.spec.multi_scale)  # the idle scales' branches

    def _init_from(self, path: str, state: dict[str, Tensor], shape: dict[str, Any]) -> None:
        copied, skipped = copy_matching(self.model, state)
        if copied == 0:
            raise WeightsError(f"--init {path}: no tensor fits {self.spec.name} x{self.scale} (names or shapes differ)")
        message = f"--init: copied {copied} of {copied + len(skipped)} tensors from {path}"
        if shape:
            message += " into its network (" + ", ".join(f"{k} {v}" for k, v in shape.items()) + ")"
        self.reporter.note(message + (f"; not copied: {', '.join(skipped)}" if skipped else ""))

    # -------------------------------------------------------------------------------------- checkpoints

    def _read_checkpoint(self, run_dir: Path | None) -> dict[str, Any]:
        assert run_dir is not None
        try:
            checkpoint = torch.load(run_dir / runs.CHECKPOINT, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as err:
            raise WeightsError(f"cannot read {run_dir / runs.CHECKPOINT}: {str(err).splitlines()[0]}") from None
        return checkpoint

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything --resume restores."""
        state: dict[str, Any] = {
            "config": self.config.to_dict(),
            "step": self.step,
            "world": self.world,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": _rng_state(),
            "best": self.best,
            "last_val": self.last_val,
            "bad_validations": self.bad_validations,
            "nan_skips": self.nan_skips,
            "log": {"sums": self.log_sums, "count": self.log_count},
            "extra": self.extra_state(),
        }
        if self.adversarial is not None:
            state["discriminator"] = self.adversarial.discriminator.state_dict()
            state["optimizer_d"] = self.optimizer_d.state_dict()
            state["scheduler_d"] = self.scheduler_d.state_dict()
        return state

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if self.scaler.is_enabled() and checkpoint["scaler"]:
            self.scaler.load_state_dict(checkpoint["scaler"])
        if self.ema is not None and checkpoint["ema"] is not None:
            self.ema.load_state_dict(checkpoint["ema"])
        if self.adversarial is not None and "discriminator" in checkpoint:
            self.adversarial.discriminator.load_state_dict(checkpoint["discriminator"])
            self.optimizer_d.load_state_dict(checkpoint["optimizer_d"])
            self.scheduler_d.load_state_dict(checkpoint["scheduler_d"])
        _set_rng_state(checkpoint["rng"])
        self.step = int(checkpoint["step"])
        self.best, self.last_val = checkpoint["best"], checkpoint["last_val"]
        self.bad_validations = int(checkpoint["bad_validations"])
        self.nan_skips = int(checkpoint["nan_skips"])
        log = checkpoint.get("log", {})  # older checkpoints were taken at log steps
        self.log_sums, self.log_count = dict(log.get("sums", {})), int(log.get("count", 0))
        self.load_extra_state(checkpoint["extra"])
        if int(checkpoint["world"]) != self.world:
            self.reporter.warn(f"resuming a {checkpoint['world']}-process run with {self.world}: the data order "
                               "differs from an uninterrupted run")
        self.reporter.note(f"resumed at step {self.step}")

    def extra_state(self) -> dict[str, Any]:
        """Subclass hook: more state to checkpoint."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Subclass hook: restore :meth:`extra_state`."""

    def _save_state(self, path: Path) -> None:
        """Write :meth:`checkpoint_state` to ``path``."""
        torch.save(self.checkpoint_state(), path)

    def save_checkpoint(self, final: bool = False) -> None:
        """Write checkpoint.pt and last.safetensors, and the plots when ``final`` or a minute after the last
        ones (rank 0)."""
        if self.run_dir is None:
            return
        runs.write_checkpoint(self.run_dir, self._save_state)
        self._checkpointed = time.monotonic()
        self.save_weights(self.run_dir / runs.LAST, self.last_val)
        if final or time.monotonic() - self._plotted >= PLOT_INTERVAL_S:
            self._plotted = time.monotonic()
            if not runs.write_plots(self.run_dir, self.log) and not self._warned_plots:
                self._warned_plots = True
                self.reporter.warn("matplotlib is not installed: no plots (pip install 'srtool[plots]')")

    def export_model(self) -> nn.Module:
        """The weights a run ships: the EMA when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def weights_metadata(self, val: dict[str, float] | None) -> dict[str, Any]:
        """The metadata of the exported weights, ``val`` being their validation."""
        config = self.config
        return {
            "architecture": self.spec.name,
            "scale": self.scale,
            **({"scales": list(self.scales)} if self.spec.multi_scale else {}),
            "options": config.model_options,
            "steps": self.step,
            "data": {"folders": config.data, "images": len(self.images)},
            "validation": {"set": config.val_data or config.val_set, **(val or {})},
            "val_psnr": val["psnr"] if val else None,
            "ema": self.ema is not None,
            "command": config.command_line(),
            "config": config.to_dict(),
        }

    def save_weights(self, path: Path, val: dict[str, float] | None) -> None:
        """The exported weights with srtool's metadata."""
        save_weights(path, self.export_model().state_dict(), self.weights_metadata(val))

    # ------------------------------------------------------------------------------------------ the loop

    def log_columns(self) -> list[str]:
        """The metrics CSV header (a multi-scale model adds its per-scale validation PSNR)."""
        per_scale = [f"val_psnr_x{s}" for s in self.scales] if self.spec.multi_scale else []
        return [*runs.metric_columns(self.term_names()), *per_scale]

    def validation_row(self) -> dict[str, Any]:
        """The CSV cells of the last validation (rank 0; empty elsewhere)."""
        if not self.main or self.last_val is None:
            return {}
        per_scale = {k: v for k, v in self.last_val.items() if k.startswith("psnr_x")}
        return {"val_psnr": self.last_val["psnr"], "val_ssim": self.last_val["ssim"],
                **{f"val_{k}": v for k, v in per_scale.items()}}

    def term_names(self) -> list[str]:
        """The loss terms logged each step (CSV columns ``loss_<name>``)."""
        names = [t.name for t in self.terms]
        return [*names, "d"] if self.adversarial is not None else names

    def compute_loss(self, lr: Tensor, hr: Tensor) -> LossOutput:
        """The generator's loss on one batch (runs under autocast). Override for distillation."""
        sr = self.net(lr)
        total, terms = self.criterion(sr, hr)
        return LossOutput(total, terms, sr)

    def _batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        config = self.config
        cache = Path(config.cache_dir) if config.cache_dir else None
        keys = [cache_key(p) for p in self.image_paths] if cache else None
        sets = []
        for s in self.scales:
            self.reporter.note(f"degrading the {len(self.images)} training images to x{s} ({config.degradation}), "
                               + ("or reading them from --cache-dir" if cache else "once, in memory"))
            low = degrade_images(self.images, s, config.degradation, keys=keys, cache_dir=cache)
            sets.append(PatchPairs(self.images, config.patch, s, config.degradation, config.seed, config.augment, low))
        dataset = ScaleCycle(sets, config.batch * self.world)
        loader = DataLoader(
            dataset, batch_sampler=StepBatches(config.batch, self.step, self.rank, self.world),
            num_workers=config.workers, worker_init_fn=WorkerInit(config.seed, self.rank),
            pin_memory=self.device.type == "cuda", prefetch_factor=4 if config.workers else None,
            generator=torch.Generator().manual_seed(config.seed),  # leaves the global RNG alone
        )
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        for hr, lr in loader:
            hr = hr.to(self.device, non_blocking=True).float().div_(255)
            lr = lr.to(self.device, non_blocking=True).float().div_(255)
            if self.spec.space == "y":
                hr, lr = rgb_to_y(hr), rgb_to_y(lr)
            yield lr.contiguous(memory_format=fmt), hr.contiguous(memory_format=fmt)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _all_ranks(self, values: list[float]) -> list[float]:
        """Sum ``values`` over ranks (identity for one process)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return t.tolist()

    def _backward(self, loss: Tensor, optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
        self.scaler.scale(loss).backward()
        if self.config.grad_clip > 0:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        self.scaler.step(optimizer)

    def train_step(self, lr: Tensor, hr: Tensor) -> dict[str, float] | None:
        """One optimisation step (and one discriminator step with a gan term); None when the loss was not
        finite on some rank and the step was skipped. A multi-scale model runs the batch's scale."""
        if self.spec.multi_scale:
            self.model.set_scale(hr.shape[-1] // lr.shape[-1])
        self.optimizer.zero_grad(set_to_none=True)
        if self.adversarial is not None:
            self.adversarial.discriminator.requires_grad_(False)
        with self._autocast():
            out = self.compute_loss(lr, hr)
        names = self.term_names()
        values = [out.total.detach().float()] + [out.terms[n].detach().float() for n in names if n in out.terms]
        sums = self._all_ranks(torch.stack(values).tolist())
        if not all(np.isfinite(sums)):
            self.scheduler.step()  # the schedule follows the step count, skipped steps included
            if self.adversarial is not None:
                self.scheduler_d.step()
            return None
        self._backward(out.total, self.optimizer, list(self.model.parameters()))
        logged = dict(zip(["loss", *[n for n in names if n in out.terms]], [v / self.world for v in sums]))
        if self.adversarial is not None:
            disc = self.adversarial.discriminator
            disc.requires_grad_(True)
            self.optimizer_d.zero_grad(set_to_none=True)
            with self._autocast():
                d_loss = self.adversarial.discriminator_loss(out.sr.detach(), hr, critic=self.critic)
            d_sum = self._all_ranks([float(d_loss.detach())])[0]
            if np.isfinite(d_sum):
                self._backward(d_loss, self.optimizer_d, list(disc.parameters()))
            else:
                self.reporter.warn("the discriminator loss is not finite; its step skipped")
            logged["d"] = d_sum / self.world
            self.scheduler_d.step()
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return logged

    def validate(self) -> bool:
        """Validate (rank 0), keep the best weights, and say whether to stop early (agreed by every rank)."""
        stop = 0.0
        if self.main:
            model = self.export_model()
            scores = {}
            for scale, images in self.val_sets.items():
                if self.spec.multi_scale:
                    model.set_scale(scale)
                scores[scale] = evaluate(model, images, self.spec.name, scale, self.config.model_options,
                                         self.device)
            self.model.train()
            psnr, ssim = (float(np.mean([v[i] for v in scores.values()])) for i in (0, 1))
            self.last_val = {"psnr": psnr, "ssim": ssim, "step": self.step}
            if self.spec.multi_scale:
                self.last_val.update({f"psnr_x{s}": v[0] for s, v in scores.items()})
                self.reporter.note("validation per scale: " + ", ".join(f"x{s} {v[0]:.3f} dB"
                                                                         for s, v in scores.items()))
            improved = self.best is None or psnr > self.best["psnr"]
            if improved:
                self.best = dict(self.last_val)
                self.bad_validations = 0
                self.save_weights(self.run_dir / runs.BEST, self.best)
            else:
                self.bad_validations += 1
            self.reporter.validated(self.step, psnr, ssim, improved)
            stop = float(self.config.patience > 0 and self.bad_validations >= self.config.patience)
        return self._all_ranks([stop])[0] > 0

    def _on_signal(self, signum: int) -> None:
        """The first SIGINT or SIGTERM: stop after this step; the second: abort."""
        if self.stop_requested:
            raise signals.Stopped(signum)
        self.stop_requested, self.stop_signal = True, signum

    def _checkpoint_due(self) -> bool:
        """Whether ``checkpoint_every`` steps or ``checkpoint_minutes`` have passed since the last checkpoint."""
        return self.step % self.config.checkpoint_every == 0 or \
            time.monotonic() - self._checkpointed >= self.config.checkpoint_minutes * 60

    def run(self) -> TrainResult:
        """Train up to ``config.steps``; returns how it ended."""
        config = self.config
        status = "completed"
        self.model.train()
        self.reporter.start(self.run_dir, config.steps, self.step)
        self.reporter.note(f"precision {precision_name(self.amp_dtype)} on {self.device}"
                           + (f", {self.world} processes" if self.world > 1 else ""))
        nan_in_a_row, tick = 0, (self.step, time.perf_counter())
        batches = self._batches()
        with signals.handling(self._on_signal):
            while self.step < config.steps:
                if self._all_ranks([float(self.stop_requested)])[0] > 0:
                    status = "interrupted"
                    break
                lr, hr = next(batches)
                logged = self.train_step(lr, hr)
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
                    for k, v in logged.items():
                        self.log_sums[k] = self.log_sums.get(k, 0.0) + v
                    self.log_count += 1
                    self.reporter.step(self.step, logged["loss"], current_lr)
                row: dict[str, Any] = {}
                if self.log_count and (self.step % config.log_every == 0 or self.step == config.steps):
                    now = time.perf_counter()
                    row = {"step": self.step, "lr": current_lr,
                           **{("loss" if k == "loss" else f"loss_{k}"): v / self.log_count
                              for k, v in self.log_sums.items()},
                           "steps_per_s": (self.step - tick[0]) / (now - tick[1])}
                    self.log_sums, self.log_count, tick = {}, 0, (self.step, now)
                stop = False
                validating = self.step % config.val_every == 0 or self.step == config.steps
                if validating:
                    stop = self.validate()
                    row.update(step=self.step, **self.validation_row())
                if row and self.log is not None:
                    self.log.append(row)
                if not stop and self.step < config.steps and (validating or self._checkpoint_due()):
                    self.save_checkpoint()
                if stop:
                    status = "early-stopped"
                    self.reporter.note(f"no better validation PSNR in {self.bad_validations} validations: "
                                       "stopping early")
                    break
        batches.close()
        self.save_checkpoint(final=True)
        return TrainResult(status, self.step, self.run_dir,
                           self.best["psnr"] if self.best else None, self.last_val["psnr"] if self.last_val else None,
                           self.stop_signal if status == "interrupted" else None)

