"""The run state: what ``checkpoint.pt`` holds and how ``--resume`` puts it back.

A checkpoint is one dict (its key names kept since the first version, so that older checkpoints resume): the config,
the step and world size, the network, optimiser, schedule, GradScaler and EMA, the random generators of Python, NumPy,
torch and CUDA, the validation tracking (``best``, ``last_val``, ``bad_validations``), ``nan_skips``, the loss sums of
the metrics row being gathered (``log``) and the objective's own state (``extra``; a gan run's ``discriminator``,
``optimizer_d`` and ``scheduler_d``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sr_cli.errors import UsageError, WeightsError
from sr_cli.registry import get_spec
from sr_cli.train import runs
from sr_cli.train.config import TrainConfig

if TYPE_CHECKING:
    from sr_cli.train.parts import Parts


def rng_state() -> dict[str, Any]:
    """The state of every random generator a run draws from."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state` (CUDA's only on as many GPUs as it was taken on)."""
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def snapshot(run: Parts) -> dict[str, Any]:
    """Everything --resume restores (see the module notes)."""
    return {
        "config": run.config.to_dict(),
        "step": run.step,
        "world": run.world,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.amp.scaler.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else None,
        "rng": rng_state(),
        **run.tracker.state_dict(),
        "nan_skips": run.nan_skips,
        "log": run.sums.state_dict(),
        **run.objective.state_dict(),
    }


def save(run: Parts, path: Path) -> None:
    """Write :func:`snapshot` to ``path``."""
    torch.save(snapshot(run), path)


def read(run_dir: Path) -> dict[str, Any]:
    """The checkpoint of the run in ``run_dir`` (tensors on the CPU, wherever they were saved)."""
    try:
        return torch.load(run_dir / runs.CHECKPOINT, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as err:
        raise WeightsError(f"cannot read {run_dir / runs.CHECKPOINT}: {str(err).splitlines()[0]}") from None


def restore(run: Parts, checkpoint: dict[str, Any]) -> None:
    """Put ``checkpoint`` back into ``run``, whose parts are built as the checkpointed run's were."""
    run.model.load_state_dict(checkpoint["model"])
    run.optimizer.load_state_dict(checkpoint["optimizer"])
    run.scheduler.load_state_dict(checkpoint["scheduler"])
    if run.amp.scaler.is_enabled() and checkpoint["scaler"]:
        run.amp.scaler.load_state_dict(checkpoint["scaler"])
    if run.ema is not None and checkpoint["ema"] is not None:
        run.ema.load_state_dict(checkpoint["ema"])
    run.objective.load_state_dict(checkpoint)
    set_rng_state(checkpoint["rng"])
    run.step = int(checkpoint["step"])
    run.tracker.load_state_dict(checkpoint)
    run.nan_skips = int(checkpoint["nan_skips"])
    run.sums.load_state_dict(checkpoint.get("log", {}))  # older checkpoints were taken at log steps
    if int(checkpoint["world"]) != run.world:
        run.reporter.warn(f"resuming a {checkpoint['world']}-process run with {run.world}: the data order "
                          "differs from an uninterrupted run")
    run.reporter.note(f"resumed at step {run.step}")


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
