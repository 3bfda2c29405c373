"""What feeds the loop: a run's HR training images, loaded once (checked against the HR patch size, optionally kept
in ``--cache-dir``), and the batches of each step from their patch data sets (data.py), moved to the device.

Each rank draws its own samples of a step (``StepBatches``); a multi-scale model's steps take the scales in turn
(``ScaleCycle``), each step's patches all of one scale.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from sr_cli.colour import rgb_to_y
from sr_cli.train.config import TrainConfig
from sr_cli.train.data import ScaleCycle, StepBatches, WorkerInit, training_sets
from sr_cli.train.reporter import Reporter
from sr_cli.train.sources import find_images, load_images


class Feed:
    """The training data of a run at ``scales`` on ``device`` (see the module notes): ``luma`` feeds Y only,
    ``channels_last`` batches in that memory format; ``rank`` of ``world`` processes."""

    def __init__(self, config: TrainConfig, scales: tuple[int, ...], device: torch.device, *, luma: bool,
                 channels_last: bool, rank: int, world: int, reporter: Reporter) -> None:
        self.config, self.scales, self.device, self.reporter = config, scales, device, reporter
        self.luma, self.channels_last, self.rank, self.world = luma, channels_last, rank, world
        paths = find_images(config.data)
        hr_patch = config.patch * max(scales)
        loaded = load_images(paths, hr_patch, max(scales),
                             cache_dir=Path(config.cache_dir) if config.cache_dir else None)
        if loaded.skipped:
            reporter.warn(f"skipped {loaded.skipped} of {len(paths)} training images smaller than the "
                          f"{hr_patch}-pixel HR patch")
        reporter.note(f"training on {len(loaded.images)} images from {', '.join(map(str, config.data))}")
        self.images = loaded.images
        self.sets = training_sets(config, loaded.images, loaded.paths, scales, reporter.note)

    def batches(self, step: int) -> Iterator[tuple[Tensor, Tensor]]:
        """(LR, HR) batches of this rank for steps ``step + 1``, ``step + 2``, ...: floats in [0, 1] on the device."""
        config = self.config
        loader = DataLoader(
            ScaleCycle(self.sets, config.batch * self.world),
            batch_sampler=StepBatches(config.batch, step, self.rank, self.world),
            num_workers=config.workers, worker_init_fn=WorkerInit(config.seed, self.rank),
            pin_memory=self.device.type == "cuda", prefetch_factor=4 if config.workers else None,
            generator=torch.Generator().manual_seed(config.seed),  # leaves the global RNG alone
        )
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        for hr, lr in loader:
            hr = hr.to(self.device, non_blocking=True).float().div_(255)
            lr = lr.to(self.device, non_blocking=True).float().div_(255)
            if self.luma:
                hr, lr = rgb_to_y(hr), rgb_to_y(lr)
            yield lr.contiguous(memory_format=fmt), hr.contiguous(memory_format=fmt)
