"""Optimisers, learning-rate schedules (with warmup), mixed-precision steps and the weight EMA."""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from sr_cli.train.config import TrainConfig


def build_optimizer(params: Iterable[nn.Parameter], config: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """Adam or AdamW (β, ε = 1e-8 and weight decay from ``config``)."""
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=lr, betas=config.betas, eps=1e-8, weight_decay=config.weight_decay)


def lr_factor(config: TrainConfig) -> Callable[[int], float]:
    """The multiplier of the base learning rate at (0-based) step ``t``: linear warmup over ``warmup`` steps,
    then ``step`` (× gamma every ``decay_every`` steps or at each milestone), ``cosine`` (down to ``min_lr``
    at ``steps``) or ``constant``."""
    warmup, floor = config.warmup, config.min_lr / config.lr

    def factor(t: int) -> float:
        if t < warmup:
            return (t + 1) / warmup
        if config.schedule == "step":
            k = sum(t >= m for m in config.milestones) if config.milestones else t // config.decay_every
            return config.gamma**k
        if config.schedule == "cosine":
            progress = min((t - warmup) / max(config.steps - warmup, 1), 1.0)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0

    return factor


class Amp:
    """Mixed precision of a run's steps: autocast at ``dtype`` (none for fp32) and, for fp16, a GradScaler shared by
    every optimiser of a step (:meth:`update` once a step); gradients clipped to norm ``grad_clip`` (0 = off)."""

    def __init__(self, device: torch.device, dtype: torch.dtype, grad_clip: float) -> None:
        self.device, self.dtype, self.grad_clip = device, dtype, grad_clip
        self.scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward passes' autocast."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def step(self, loss: Tensor, optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
        """Backpropagate ``loss`` and step ``optimizer`` (``params``: the ones to clip)."""
        self.scaler.scale(loss).backward()
        if self.grad_clip > 0:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.scaler.step(optimizer)

    def update(self) -> None:
        """End the step: the GradScaler adjusts its scale."""
        self.scaler.update()


class EMA:
    """Exponential moving average of a model's parameters and float buffers (other buffers are copied).

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so early averages are not
    dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        pairs = list(zip(self.module.state_dict().values(), model.state_dict().values(), strict=True))
        floats = [(e, m) for e, m in pairs if e.is_floating_point()]
        if floats:
            torch._foreach_lerp_([e for e, _ in floats], [m for _, m in floats], 1 - decay)
        for e, m in pairs:
            if not e.is_floating_point():
                e.copy_(m)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
