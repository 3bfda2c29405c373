"""Learning-rate schedules, the weight EMA (buffers included) and the training precision rule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sr_cli.errors import UsageError
from sr_cli.train.config import TrainConfig
from sr_cli.train.optim import EMA, lr_factor


def _cfg(**kw: object) -> TrainConfig:
    return TrainConfig(model="espcn", scale=2, data=["x"], **kw)


def test_step_schedule_halves_with_warmup() -> None:
    f = lr_factor(_cfg(schedule="step", decay_every=10, warmup=4))
    assert [f(t) for t in (0, 1, 3)] == [0.25, 0.5, 1.0]
    assert [f(t) for t in (4, 9, 10, 19, 20, 35)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]
    g = lr_factor(_cfg(schedule="step", milestones=[5, 8], gamma=0.1))
    assert [g(t) for t in (0, 4, 5, 7, 8, 100)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_schedule() -> None:
    f = lr_factor(_cfg(schedule="cosine", steps=12, warmup=2, lr=1e-3, min_lr=1e-4))
    assert f(0) == 0.5 and f(1) == 1.0
    assert f(2) == pytest.approx(1.0)
    assert f(7) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))  # halfway: 0.55
    assert f(12) == pytest.approx(0.1) and f(50) == pytest.approx(0.1)
    assert lr_factor(_cfg(schedule="constant", warmup=0))(12345) == 1.0


def test_ema_averages_parameters_and_float_buffers() -> None:
    model = nn.BatchNorm1d(2)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(3.0)  # from 1
        model.running_mean.fill_(2.0)  # from 0
        model.num_batches_tracked.fill_(7)
    ema.update(model)  # first update: decay min(0.9, 2/11)
    d = 2 / 11
    assert ema.module.weight.tolist() == pytest.approx([d * 1 + (1 - d) * 3] * 2)
    assert ema.module.running_mean.tolist() == pytest.approx([(1 - d) * 2] * 2)
    assert ema.module.num_batches_tracked.item() == 7
    for _ in range(200):
        ema.update(model)
    assert ema.module.weight.tolist() == pytest.approx([3.0, 3.0], abs=1e-6)
    assert not any(p.requires_grad for p in ema.module.parameters())
    restored = EMA(nn.BatchNorm1d(2), decay=0.9)
    restored.load_state_dict(ema.state_dict())
    assert restored.updates == 201 and torch.equal(restored.module.weight, ema.module.weight)


def test_config_checks() -> None:
    with pytest.raises(UsageError, match="--schedule"):
        _cfg(schedule="linear")
    with pytest.raises(UsageError, match="--ema"):
        _cfg(ema=1.0)
    cfg = _cfg(steps=10)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.resumed({"steps": 20}).steps == 20
    with pytest.raises(UsageError, match="unknown settings: colour"):
        TrainConfig.from_dict({**cfg.to_dict(), "colour": 1})
