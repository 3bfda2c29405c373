"""What a run minimises. An :class:`Objective` gives the generator's loss on a batch and the names of the terms it
logs; anything else it trains (a discriminator), validates (a teacher) or checkpoints rides along with it.

- :class:`LossObjective`: the weighted terms of ``--loss`` (pixel, perceptual; see losses.py).
- :class:`GanObjective`: ``--loss`` with a ``gan`` term: the discriminator is frozen in the generator's step, then
  trained one step of its own on the same batch (its own optimiser and schedule; its loss logged as ``d``).
- ``srtool distill`` supplies its own (sr_cli/train/distill.py): a teacher and the contrastive term.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from sr_cli.errors import UsageError
from sr_cli.registry import MODELS, ModelSpec
from sr_cli.train.config import TrainConfig
from sr_cli.train.distributed import mean_over_ranks, wrap
from sr_cli.train.losses import Adversarial, Criterion, Perceptual, Term
from sr_cli.train.optim import Amp, build_optimizer, lr_factor
from sr_cli.train.vgg import load_vgg

if TYPE_CHECKING:
    from sr_cli.train.parts import Parts


@dataclass
class LossOutput:
    """The generator's loss on one batch: the total to minimise, the named terms to log (unweighted values, one per
    :meth:`Objective.term_names`), and the SR batch (the discriminator's fake input)."""

    total: Tensor
    terms: dict[str, Tensor]
    sr: Tensor


class Objective:
    """The base of every objective: :meth:`term_names` and :meth:`loss` to write; the other hooks do nothing."""

    def term_names(self) -> list[str]:
        """The terms logged each step (CSV columns ``loss_<name>``)."""
        raise NotImplementedError

    def loss(self, net: nn.Module, lr: Tensor, hr: Tensor) -> LossOutput:
        """The generator's loss of the trained network ``net`` on one batch (runs under autocast)."""
        raise NotImplementedError

    def step(self, sr: Tensor, hr: Tensor) -> dict[str, float]:
        """Train whatever else trains on this batch, after the generator's step; the values to log."""
        return {}

    def skip(self) -> None:
        """The generator's step was skipped (a loss not finite): schedules of the objective's own follow the count."""

    def columns(self) -> list[str]:
        """Metrics CSV columns of the objective's own validation (:meth:`validate`)."""
        return []

    def validate(self, run: Parts) -> dict[str, float]:
        """At each validation of ``run`` (rank 0), before the network's: the cells of :meth:`columns`."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint keys of the objective: ``extra`` (its own state), a gan's discriminator parts."""
        return {"extra": {}}

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` from a whole checkpoint."""


class LossObjective(Objective):
    """The weighted terms of ``--loss`` (a :class:`Criterion`)."""

    def __init__(self, criterion: Criterion) -> None:
        self.criterion = criterion

    def term_names(self) -> list[str]:
        return [t.name for t in self.criterion.terms]

    def loss(self, net: nn.Module, lr: Tensor, hr: Tensor) -> LossOutput:
        sr = net(lr)
        total, terms = self.criterion(sr, hr)
        return LossOutput(total, terms, sr)


class GanObjective(LossObjective):
    """``--loss`` with a gan term, and the discriminator's own step (see the module notes). ``warn``: how to say
    that a discriminator step was skipped."""

    def __init__(self, criterion: Criterion, config: TrainConfig, amp: Amp, warn: Callable[[str], None]) -> None:
        super().__init__(criterion)
        self.adversarial: Adversarial = criterion.adversarial
        self.discriminator = self.adversarial.discriminator
        self.optimizer = build_optimizer(self.discriminator.parameters(), config, config.d_lr or config.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(config))
        self.critic = wrap(self.discriminator, amp.device)  # as called in a step (DistributedDataParallel)
        self.amp, self.warn = amp, warn

    def term_names(self) -> list[str]:
        return [*super().term_names(), "d"]

    def loss(self, net: nn.Module, lr: Tensor, hr: Tensor) -> LossOutput:
        self.discriminator.requires_grad_(False)
        return super().loss(net, lr, hr)

    def step(self, sr: Tensor, hr: Tensor) -> dict[str, float]:
        """One discriminator step on the real ``hr`` and the generated ``sr``."""
        self.discriminator.requires_grad_(True)
        self.optimizer.zero_grad(set_to_none=True)
        with self.amp.autocast():
            d_loss = self.adversarial.discriminator_loss(sr.detach(), hr, critic=self.critic)
        d_mean = mean_over_ranks([float(d_loss.detach())], self.amp.device)[0]
        if np.isfinite(d_mean):
            self.amp.step(d_loss, self.optimizer, list(self.discriminator.parameters()))
        else:
            self.warn("the discriminator loss is not finite; its step skipped")
        self.scheduler.step()
        return {"d": d_mean}

    def skip(self) -> None:
        self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "discriminator": self.discriminator.state_dict(),
                "optimizer_d": self.optimizer.state_dict(), "scheduler_d": self.scheduler.state_dict()}

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        if "discriminator" in checkpoint:
            self.discriminator.load_state_dict(checkpoint["discriminator"])
            self.optimizer.load_state_dict(checkpoint["optimizer_d"])
            self.scheduler.load_state_dict(checkpoint["scheduler_d"])


def _discriminator(spec: ModelSpec, config: TrainConfig, device: torch.device) -> nn.Module:
    """The registry's discriminator of ``spec``, checked to accept the run's HR patches."""
    if spec.discriminator is None:
        have = [name for name, other in MODELS.items() if other.discriminator is not None]
        raise UsageError(f"{spec.name} has no discriminator for the gan loss: use {' or '.join(have)}")
    disc = spec.discriminator()
    hr = config.patch * config.scale
    try:
        with torch.no_grad():
            disc.eval()(torch.zeros(2, 3, hr, hr))
    except (RuntimeError, ValueError) as err:
        raise UsageError(f"the {spec.name} discriminator cannot take {hr}x{hr} HR patches "
                         f"({str(err).splitlines()[0]}): choose another --patch") from None
    return disc.train().to(device)


def loss_objective(terms: list[Term], config: TrainConfig, spec: ModelSpec, amp: Amp, warn: Callable[[str], None],
                   quiet: bool) -> LossObjective:
    """The objective of the parsed ``--loss`` ``terms`` for a run of ``spec`` (``quiet``: no download notes)."""
    names = {t.name for t in terms}
    perceptual = None
    if "perceptual" in names:
        features = load_vgg([config.perceptual_layer], config.vgg_weights, quiet=quiet)
        perceptual = Perceptual(features, config.perceptual_layer)
    adversarial = Adversarial(_discriminator(spec, config, amp.device), config.gan_type) if "gan" in names else None
    criterion = Criterion(terms, perceptual, adversarial).to(amp.device)
    return GanObjective(criterion, config, amp, warn) if adversarial is not None else LossObjective(criterion)
