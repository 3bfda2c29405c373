"""The parts of a training run, built and checked in this order before its run folder is made (so that a bad input
leaves none behind): the device (a torchrun rank joins its group), the ``--init`` file, the training data
(feed.py), the validation sets (validate.py, rank 0), the network (seeded), the objective (objective.py), the
optimiser and schedule, the EMA, the validation tracking (tracking.py), the restored checkpoint of a resumed run
(state.py), then the run folder and its metrics sink (logbook.py). :class:`sr_cli.train.loop.Trainer` runs them.

``distill`` overrides :meth:`Parts.build_model` (the trained module), :meth:`Parts.build_objective`, and what a
run ships: :meth:`Parts.export_model`, :meth:`Parts.weights_metadata` and :meth:`Parts.save_weights`.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sr_cli.atomic import remove_stale
from sr_cli.device import select_device, select_precision, use_channels_last
from sr_cli.errors import UsageError
from sr_cli.registry import ModelSpec, get_spec
from sr_cli.train import runs, state
from sr_cli.train.config import TrainConfig
from sr_cli.train.distributed import rank_and_world, training_device, wrap
from sr_cli.train.feed import Feed
from sr_cli.train.init_weights import InitWeights
from sr_cli.train.logbook import LossSums, Sink
from sr_cli.train.losses import parse_loss
from sr_cli.train.objective import Objective, loss_objective
from sr_cli.train.optim import EMA, Amp, build_optimizer, lr_factor
from sr_cli.train.reporter import Reporter
from sr_cli.train.tensorboard_log import summary_writer
from sr_cli.train.tracking import Tracker
from sr_cli.train.validate import Validation
from sr_cli.weights import save_weights


def _check_model_options(spec: ModelSpec, config: TrainConfig) -> None:
    """A UsageError when the network cannot be built and run with the run's ``--model-option`` settings: built and
    run on a small input on the meta device (shapes only, no values, no random numbers drawn)."""
    if not config.model_options:
        return
    given = " ".join(f"{k}={v}" for k, v in config.model_options.items())
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on zero-element tensors: the error says more
            spec.build(config.scale, **config.model_options)(torch.empty(1, spec.channels, 8, 8))
    except TypeError as err:
        raise UsageError(f"{spec.name} does not take --model-option {given} ({err})") from None
    except (ValueError, RuntimeError) as err:
        raise UsageError(f"{spec.name} cannot be built with --model-option {given} "
                         f"({str(err).splitlines()[0]})") from None


class Parts:
    """The parts of one run (see the module notes). ``resume``: ``run_dir`` is a run to continue."""

    def __init__(self, config: TrainConfig, run_dir: Path | None, reporter: Reporter | None = None, *,
                 resume: bool = False) -> None:
        self.rank, self.world = rank_and_world()
        self.main = self.rank == 0
        self.reporter = reporter if (reporter is not None and self.main) else Reporter()
        self.spec: ModelSpec = get_spec(config.model)
        self.spec.check_scale(config.scale)
        if not self.spec.learned:
            raise UsageError(f"{self.spec.name} has no weights to train: choose a learned model")
        if config.tensorboard:
            summary_writer()  # installed? (say how, before anything runs)
        init = InitWeights(config.init, self.spec.name, config.scale) if config.init and not resume else None
        self.config = config = init.configure(config) if init is not None else config
        _check_model_options(self.spec, config)
        self.terms = parse_loss(config.loss)
        self.device = training_device(select_device(config.device))
        self.amp_dtype = select_precision(config.precision, self.device)  # fp16 trains with a GradScaler
        self.amp = Amp(self.device, self.amp_dtype, config.grad_clip)
        self.channels_last = use_channels_last(self.device)
        self.scale = config.scale
        self.scales: tuple[int, ...] = self.spec.scales if self.spec.multi_scale else (config.scale,)
        checkpoint = state.read(run_dir) if resume else None
        self.run_dir = run_dir if self.main else None
        if self.run_dir is not None and not resume:
            runs.check_new(self.run_dir)
        elif self.run_dir is not None:
            remove_stale(self.run_dir)  # a checkpoint half-written when the run was killed
        self.feed = Feed(config, self.scales, self.device, luma=self.spec.space == "y",
                         channels_last=self.channels_last, rank=self.rank, world=self.world, reporter=self.reporter)
        if self.spec.multi_scale:
            self.reporter.note(f"{self.spec.name} is one model for {', '.join(f'x{s}' for s in self.scales)}: "
                               "each step trains one scale, in turn")
        self.validation = Validation(config, self.spec, self.scales, self.device, self.reporter.note) \
            if self.main else None
        torch.manual_seed(config.seed)
        self.model = self.build_model()
        if init is not None:  # before the run folder: a file that fits nothing leaves none behind
            self.reporter.note(init.copy_into(self.model, f"{self.spec.name} x{self.scale}"))
        self.objective = self.build_objective()
        self.optimizer = build_optimizer(self.model.parameters(), config, config.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(config))
        self.ema = EMA(self.model, config.ema) if config.ema > 0 else None
        self.step = self.nan_skips = 0
        self.tracker = Tracker(config.patience)
        self.sums = LossSums()
        if checkpoint is not None:
            state.restore(self, checkpoint)
        self.net = wrap(self.model, self.device, find_unused=self.spec.multi_scale)  # the idle scales' branches
        self.sink: Sink | None = None
        if self.run_dir is not None:  # every input checked: now the run folder, resumable from the start
            if resume:
                runs.write_config(self.run_dir, config.to_dict())
            else:
                runs.create_run(self.run_dir, config.to_dict(), functools.partial(state.save, self))
            self.sink = Sink(self.run_dir, self.log_columns(), self.step if resume else None, config.tensorboard,
                             self.reporter.warn)

    def build_model(self) -> nn.Module:
        """The module the optimiser trains (called once, before the run folder is made: check inputs here)."""
        model = self.spec.build(self.scale, **self.config.model_options).to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def build_objective(self) -> Objective:
        """The objective of ``--loss`` (built after the model and ``--init``)."""
        return loss_objective(self.terms, self.config, self.spec, self.amp, self.reporter.warn, quiet=not self.main)

    def log_columns(self) -> list[str]:
        """The metrics CSV header (a multi-scale model adds its per-scale validation PSNR)."""
        per_scale = [f"val_psnr_x{s}" for s in self.scales] if self.spec.multi_scale else []
        return [*runs.metric_columns(self.objective.term_names()), *per_scale, *self.objective.columns()]

    def _batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        """The (LR, HR) batches of the steps after this one."""
        return self.feed.batches(self.step)

    def trained_model(self) -> nn.Module:
        """The trained module as the run keeps it: its EMA when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def export_model(self) -> nn.Module:
        """The network a run validates and ships."""
        return self.trained_model()

    def weights_metadata(self, val: dict[str, float] | None) -> dict[str, Any]:
        """The metadata of the exported weights, ``val`` being their validation."""
        config = self.config
        return {
            "architecture": self.spec.name,
            "scale": self.scale,
            **({"scales": list(self.scales)} if self.spec.multi_scale else {}),
            "options": config.model_options,
            "steps": self.step,
            "data": {"folders": config.data, "images": len(self.feed.images)},
            "validation": {"set": config.val_data or config.val_set, **(val or {})},
            "val_psnr": val["psnr"] if val else None,
            "ema": self.ema is not None,
            "command": config.command_line(),
            "config": config.to_dict(),
        }

    def save_weights(self, path: Path, val: dict[str, float] | None) -> None:
        """The exported weights with srtool's metadata."""
        save_weights(path, self.export_model().state_dict(), self.weights_metadata(val))
