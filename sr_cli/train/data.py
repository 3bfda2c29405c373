"""Training patch data sets: random aligned HR/LR patch pairs of the decoded training pictures (sources.py), the
sampler of each step's indices, and the DataLoader workers' seeding.

Sample ``i`` is a pure function of ``(seed, i)``: which image (a fresh permutation of the images every
``len(images)`` samples), where the patch is, and which of the 8 flips/rotations it gets. So a run is the same for
any number of DataLoader workers, ranks take disjoint indices, and resuming at step ``t`` only needs ``t``.

The degradations of ``srtool bench`` are deterministic, so each image is degraded whole once, when the data set is
made (in threads), and a sample is two aligned slices: the LR patch is exactly the same crop of the whole degraded
image that ``srtool bench`` would score against. ``--data-lr`` gives those whole LR images instead (read from
files). ``realesrgan`` is random: each HR patch is degraded when it is sampled, from ``(seed, index)`` too.
Patches are returned as uint8 (C, H, W) RGB; the trainer moves them to the device and converts them.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from sr_cli.degrade import crop_to_scale
from sr_cli.realworld import DEFAULTS, RealWorldParams, degrade_realworld
from sr_cli.train.config import TrainConfig
from sr_cli.train.sources import cache_key, degrade_images, paired_lr_images


def training_sets(config: TrainConfig, images: list[np.ndarray], paths: list[Path], scales: tuple[int, ...],
                  note: Callable[[str], None]) -> list[Dataset]:
    """One patch data set per scale for the decoded training ``images`` (read from ``paths``): paired with the
    LR images of ``--data-lr``, degraded on the fly (``realesrgan``), or degraded whole once (kept in
    ``--cache-dir`` when given). ``note`` tells the user what is being done."""
    if config.degradation == "realesrgan":
        note(f"degrading each patch of the {len(images)} training images on the fly (realesrgan)")
        return [RealWorldPairs(images, config.patch, s, config.seed, config.augment) for s in scales]
    cache = Path(config.cache_dir) if config.cache_dir else None
    keys = [cache_key(p) for p in paths] if cache else None
    sets: list[Dataset] = []
    for s in scales:
        if config.data_lr:
            note(f"reading the x{s} LR images of the {len(images)} training images from {', '.join(config.data_lr)}")
            low = paired_lr_images(paths, images, config.data, config.data_lr, s, cache_dir=cache)
        else:
            note(f"degrading the {len(images)} training images to x{s} ({config.degradation}), "
                 + ("or reading them from --cache-dir" if cache else "once, in memory"))
            low = degrade_images(images, s, config.degradation, keys=keys, cache_dir=cache)
        sets.append(PatchPairs(images, config.patch, s, seed=config.seed, augment=config.augment, lr_images=low))
    return sets


def augment(arr: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 flips/90° rotations of an (H, W, C) array: bit 0 flips rows, bit 1 flips columns, bit 2
    transposes."""
    if code & 1:
        arr = arr[::-1]
    if code & 2:
        arr = arr[:, ::-1]
    if code & 4:
        arr = arr.transpose(1, 0, 2)
    return arr


class HRPatches(Dataset):
    """The sampling scheme of every patch data set: sample ``index`` → image, aligned position and augmentation,
    a pure function of ``(seed, index)``; ``images`` are cropped to a multiple of ``scale``."""

    def __init__(self, images: list[np.ndarray], patch: int, scale: int, seed: int = 0, augment: bool = True) -> None:
        self.images = [crop_to_scale(img, scale) for img in images]
        self.patch = patch
        self.scale = scale
        self.seed = seed
        self.augment = augment
        self._epoch: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.images)

    def image_index(self, index: int) -> int:
        """Which image sample ``index`` uses: position ``index mod n`` of a per-epoch permutation."""
        n = len(self.images)
        epoch = index // n
        if self._epoch is None or self._epoch[0] != epoch:
            self._epoch = (epoch, np.random.default_rng([self.seed, 1, epoch]).permutation(n))
        return int(self._epoch[1][index % n])

    def place(self, index: int) -> tuple[int, int, int, int]:
        """Sample ``index``'s image, top-left corner ``(y, x)`` in LR pixels and augmentation code."""
        rng = np.random.default_rng([self.seed, 0, index])
        k = self.image_index(index)
        h, w = (n // self.scale for n in self.images[k].shape[:2])
        y, x = int(rng.integers(0, h - self.patch + 1)), int(rng.integers(0, w - self.patch + 1))
        return k, y, x, int(rng.integers(0, 8)) if self.augment else 0

    def hr_patch(self, k: int, y: int, x: int) -> np.ndarray:
        """The HR patch of image ``k`` at LR position ``(y, x)``."""
        s, p = self.scale, self.patch
        return self.images[k][y * s:(y + p) * s, x * s:(x + p) * s]


class PatchPairs(HRPatches):
    """Random aligned (HR, LR) patch pairs; index ``i`` → uint8 tensors (3, P·s, P·s) and (3, P, P), the LR patch a
    crop of the whole LR image. ``lr_images``: the images already degraded (:func:`degrade_images`) or read
    (:func:`paired_lr_images`), else degraded here."""

    def __init__(self, images: list[np.ndarray], patch: int, scale: int, degradation: str = "bicubic",
                 seed: int = 0, augment: bool = True, lr_images: list[np.ndarray] | None = None) -> None:
        super().__init__(images, patch, scale, seed, augment)
        self.lr_images = lr_images if lr_images is not None else degrade_images(images, scale, degradation)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        k, y, x, code = self.place(index)
        p = self.patch
        return _chw(augment(self.hr_patch(k, y, x), code)), _chw(augment(self.lr_images[k][y:y + p, x:x + p], code))


class RealWorldPairs(HRPatches):
    """(HR, LR) patch pairs whose LR is made on the fly by Real-ESRGAN's random degradation
    (:mod:`sr_cli.realworld`) of the augmented HR patch, from ``default_rng([seed, 2, index])``."""

    def __init__(self, images: list[np.ndarray], patch: int, scale: int, seed: int = 0, augment: bool = True,
                 params: RealWorldParams = DEFAULTS) -> None:
        super().__init__(images, patch, scale, seed, augment)
        self.params = params

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        k, y, x, code = self.place(index)
        hr = np.ascontiguousarray(augment(self.hr_patch(k, y, x), code))
        lr = degrade_realworld(hr, self.scale, np.random.default_rng([self.seed, 2, index]), self.params)
        return _chw(hr), _chw(lr)


class ScaleCycle(Dataset):
    """Patch pairs of several scales in turn, one scale per step: sample ``i`` belongs to step
    ``i // step_samples`` (``step_samples`` = batch × processes) and comes from ``sets[step % len(sets)]``, so
    every batch holds patches of one scale. With one set it is that set."""

    def __init__(self, sets: Sequence[Dataset], step_samples: int) -> None:
        self.sets, self.step_samples = list(sets), step_samples

    def __len__(self) -> int:
        return len(self.sets[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sets[(index // self.step_samples) % len(self.sets)][index]


def _chw(arr: np.ndarray) -> torch.Tensor:
    """(H, W, C) array → (C, H, W) tensor, contiguous."""
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


class StepBatches(Sampler[list[int]]):
    """Endless batches of sample indices from ``start_step`` on: step ``t`` of rank ``r`` in a world of ``w``
    takes indices ``(t·w + r)·b … (t·w + r)·b + b - 1`` — disjoint across ranks and steps."""

    def __init__(self, batch: int, start_step: int = 0, rank: int = 0, world: int = 1) -> None:
        self.batch, self.start_step, self.rank, self.world = batch, start_step, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while True:
            first = (step * self.world + self.rank) * self.batch
            yield list(range(first, first + self.batch))
            step += 1


@dataclass(frozen=True)
class WorkerInit:
    """A ``worker_init_fn``: seeds the worker's global RNGs from (seed, rank, worker) and leaves Ctrl-C to the
    main process, and SIGTERM too (the main process checkpoints and then stops the workers itself)."""

    seed: int
    rank: int

    def __call__(self, worker_id: int) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C or a process group's SIGTERM
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        state = np.random.SeedSequence([self.seed, self.rank, worker_id]).generate_state(2)
        random.seed(int(state[0]))
        np.random.seed(int(state[1]))
        torch.manual_seed(int(state[0]) << 32 | int(state[1]))
